"""A relay for the bounce tests, and the reports it sends back: an aiosmtpd server that accepts
every message as a smarthost does and later (:meth:`Relay.flush`) mails a report about some of
them to the bounce listener — a DSN to the message's envelope sender, an ARF complaint to a
feedback-loop address, an auto-reply — in the shapes of ``samples/`` (see its README)."""

from __future__ import annotations

import smtplib
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from string import Template

from support import Captured, SmtpServer

SAMPLES = Path(__file__).parent / "samples"
SAMPLE_NAMES = sorted(p.stem for p in SAMPLES.glob("*.eml"))
ORIGINAL_HEADERS = (
    "From: Trending Papers <digest@example.org>\n"
    "To: {rcpt}\n"
    "Subject: 3 trending papers for you\n"
    "Date: Mon, 30 Nov 2026 07:00:05 +0000\n"
    "Message-ID: <digest.original@example.org>\n"
    "MIME-Version: 1.0\n"
    'Content-Type: multipart/alternative; boundary="===============1=="'
)


def fill(sample: str, *, to: str, verp: str, rcpt: str, original_headers: str | None = None, message_id: str | None = None) -> bytes:
    """The report ``samples/<sample>.eml`` about the message ``verp`` sent to ``rcpt``, mailed to
    ``to``: CRLF line ends, as it goes over SMTP."""
    text = Template((SAMPLES / f"{sample}.eml").read_text()).substitute(
        to=to,
        verp=verp,
        rcpt=rcpt,
        original_headers=(original_headers or ORIGINAL_HEADERS.format(rcpt=rcpt)).replace("\r\n", "\n").rstrip("\n"),
        message_id=message_id or f"{uuid.uuid4().hex}@reports.example",
        date=format_datetime(datetime.now(timezone.utc)),
    )
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


def send(host: str, port: int, recipient: str, data: bytes, sender: str = "") -> None:
    """Mail ``data`` to ``recipient`` at ``host:port``, from the null sender as reports are."""
    with smtplib.SMTP(host, port, timeout=10) as smtp:
        smtp.sendmail(sender, [recipient], data)


def header_block(captured: Captured) -> str:
    return captured.data.split(b"\r\n\r\n", 1)[0].decode("ascii", "replace")


@dataclass
class Relay(SmtpServer):
    """``reports``: recipient -> the sample to send back about each message to them."""

    reports: dict[str, str] = field(default_factory=dict)
    feedback_address: str = "fbl@bounces.example.org"  # where feedback loops mail their complaints
    flushed: int = 0  # captured messages already reported on

    def flush(self, host: str, port: int) -> list[bytes]:
        """Send the reports due since the last flush to the listener at ``host:port``; returns them."""
        sent = []
        for captured in self.captured[self.flushed :]:
            for rcpt in captured.rcpt_tos:
                sample = self.reports.get(rcpt)
                if sample is None:
                    continue
                to = self.feedback_address if sample.startswith("arf") else captured.mail_from
                data = fill(sample, to=to, verp=captured.mail_from, rcpt=rcpt, original_headers=header_block(captured))
                send(host, port, to, data)
                sent.append(data)
        self.flushed = len(self.captured)
        return sent
