"""Mail transports behind one small interface, chosen by configuration.

- :class:`SmtpTransport`: one connection reused for many messages (STARTTLS, SSL, AUTH from
  ``DIGEST_SMTP_URL``); it reconnects once when the server dropped the connection between messages.
- :class:`OutboxTransport`: writes ``.eml`` files into ``<data dir>/outbox`` when no SMTP server is
  configured (development and the demo's mail catcher read them there).

``send`` raises :class:`TransientError` (4xx, connection trouble: try again later) or
:class:`PermanentError` (5xx for this recipient: do not try again).
"""

from __future__ import annotations

import re
import smtplib
import ssl
import time
import uuid
from pathlib import Path
from typing import Protocol

from digest.config import Settings, SmtpSettings


class DeliveryError(Exception):
    pass


class TransientError(DeliveryError):
    """Worth retrying later: 4xx replies, refused or dropped connections, timeouts."""


class PermanentError(DeliveryError):
    """The server refused this recipient or message for good (5xx)."""


class Transport(Protocol):
    def send(self, sender: str, recipients: list[str], data: bytes) -> None: ...

    def close(self) -> None: ...

    def __enter__(self) -> "Transport": ...

    def __exit__(self, *exc) -> None: ...


class _Closing:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:  # pragma: no cover - overridden
        pass


def _classify(code: int, message: bytes | str, what: str) -> DeliveryError:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    error = f"{what}: {code} {text}".strip()
    return PermanentError(error) if 500 <= code < 600 else TransientError(error)


_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def _quoteaddr(address: str) -> str:
    """``smtplib.quoteaddr``, without its full RFC 5322 parse for the plain addresses nearly all are
    (tests/test_transport... checks both agree on them)."""
    return f"<{address}>" if _PLAIN_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)


def _sendmail(smtp: smtplib.SMTP, sender: str, recipients: list[str], data: bytes) -> dict:
    """``smtp.sendmail`` with the envelope pipelined (RFC 2920) when the server offers PIPELINING.

    MAIL, RCPT… and DATA go out in one write and their replies are read together: two round trips
    a message instead of 3 + recipients. Raises what ``sendmail`` raises for the same replies, so
    callers cannot tell the difference; falls back to ``sendmail`` for anything unusual (no
    PIPELINING, non-ASCII addresses, a line starting with a dot). The data goes out as ``sendmail``
    sends bytes: as given, CRLF and the final dot appended.
    """
    smtp.ehlo_or_helo_if_needed()
    envelope = [f"MAIL FROM:{_quoteaddr(sender)}", *(f"RCPT TO:{_quoteaddr(r)}" for r in recipients), "DATA"]
    command = "\r\n".join(envelope) + "\r\n"
    if (
        not smtp.does_esmtp
        or not smtp.has_extn("pipelining")
        or not command.isascii()
        or data.startswith(b".")
        or b"\n." in data  # dot-stuffing needed: smtplib does it (our messages never need it)
    ):
        return smtp.sendmail(sender, recipients, data)
    smtp.send(command)
    code, reply = smtp.getreply()
    refused: dict[str, tuple[int, bytes]] = {}
    replies = [smtp.getreply() for _ in recipients]
    data_code, data_reply = smtp.getreply()
    if code != 250:
        if data_code == 354:  # cannot happen after a refused MAIL, but never leave DATA open
            smtp.send(b".\r\n")
            smtp.getreply()
        if code == 421:
            smtp.close()
        raise smtplib.SMTPSenderRefused(code, reply, sender)
    for rcpt, (rcpt_code, rcpt_reply) in zip(recipients, replies):
        if rcpt_code not in (250, 251):
            refused[rcpt] = (rcpt_code, rcpt_reply)
    if data_code != 354:
        if len(refused) == len(recipients):
            raise smtplib.SMTPRecipientsRefused(refused)
        if data_code == 421:
            smtp.close()
        raise smtplib.SMTPDataError(data_code, data_reply)
    if len(refused) == len(recipients):  # DATA accepted with no recipient: send nothing, end it
        smtp.send(b".\r\n")
        smtp.getreply()
        raise smtplib.SMTPRecipientsRefused(refused)
    smtp.send(data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n"))
    code, reply = smtp.getreply()
    if code != 250:
        if code == 421:
            smtp.close()
        raise smtplib.SMTPDataError(code, reply)
    return refused


class SmtpTransport(_Closing):
    """A persistent SMTP session; many messages per connection."""

    def __init__(self, config: SmtpSettings, local_hostname: str | None = None) -> None:
        self.config = config
        self.local_hostname = local_hostname
        self._smtp: smtplib.SMTP | None = None
        self.connections_opened = 0

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        # only when TLS is used: building a default context loads the CA store (~30 ms a connection)
        context = ssl.create_default_context() if c.ssl or c.starttls else None
        try:
            if c.ssl:
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    c.host, c.port, local_hostname=self.local_hostname, timeout=c.timeout, context=context
                )
            else:
                smtp = smtplib.SMTP(c.host, c.port, local_hostname=self.local_hostname, timeout=c.timeout)
                if c.starttls:
                    smtp.starttls(context=context)
            if c.username:
                smtp.login(c.username, c.password or "")
        except smtplib.SMTPAuthenticationError as exc:
            raise _classify(exc.smtp_code, exc.smtp_error, "SMTP login refused") from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(f"cannot connect to SMTP server {c.host}:{c.port}: {exc}") from exc
        self.connections_opened += 1
        return smtp

    def send(self, sender: str, recipients: list[str], data: bytes) -> None:
        for attempt in (1, 2):
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                refused = _sendmail(self._smtp, sender, recipients, data)
            except smtplib.SMTPServerDisconnected as exc:
                self._smtp = None
                if attempt == 2:
                    raise TransientError(f"SMTP server closed the connection: {exc}") from exc
                continue  # an idle connection timed out: reconnect once
            except smtplib.SMTPRecipientsRefused as exc:
                code, message = next(iter(exc.recipients.values()))
                self._reset()
                raise _classify(code, message, "recipient refused") from exc
            except smtplib.SMTPResponseException as exc:
                self._reset()
                raise _classify(exc.smtp_code, exc.smtp_error, "message refused") from exc
            except (OSError, smtplib.SMTPException) as exc:
                self.close()
                raise TransientError(f"SMTP error: {exc}") from exc
            if refused:  # only possible with several recipients
                code, message = next(iter(refused.values()))
                raise _classify(code, message, "recipient refused")
            return

    def _reset(self) -> None:
        try:
            if self._smtp is not None:
                self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self.close()

    def close(self) -> None:
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self._smtp = None


class OutboxTransport(_Closing):
    """Writes each message as an ``.eml`` file; the demo's /outbox page lists them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)

    def send(self, sender: str, recipients: list[str], data: bytes) -> None:
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.eml"
        tmp = self.folder / f".{name}.tmp"
        tmp.write_bytes(data)
        tmp.rename(self.folder / name)  # readers never see half a file


def outbox_folder(settings: Settings) -> Path:
    return settings.data_dir / "outbox"


def make_transport(settings: Settings) -> SmtpTransport | OutboxTransport:
    if settings.smtp is None:
        return OutboxTransport(outbox_folder(settings))
    return SmtpTransport(settings.smtp, local_hostname=settings.mail_domain)
