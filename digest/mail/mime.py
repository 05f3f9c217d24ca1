"""Build multipart/alternative messages as bytes.

Headers are encoded by the standard library (``email.header``, ``email.utils``); the MIME frame
around the two bodies is assembled directly, because ``EmailMessage.as_bytes()`` costs about
1.5 ms a message and a digest run builds hundreds of thousands. ``tests/test_emails.py`` parses
every shape back with the ``email`` package to prove the output is what the library would accept.
"""

from __future__ import annotations

import base64
import functools
import secrets
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formataddr, formatdate

import numpy as np


def one_line(value: str, limit: int = 250) -> str:
    """Collapse every run of whitespace (CR/LF included) to one space: safe in a header."""
    if not value.isprintable():  # the per-character pass only when there is something to replace
        value = "".join(ch if ch.isprintable() else " " for ch in value)
    value = " ".join(value.split())  # split() cuts at the runs re's \s matches, and trims
    return value if len(value) <= limit else value[: limit - 1].rstrip() + "…"


def _header(value: str) -> str:
    value = one_line(value, 998)
    if value.isascii():
        return value
    return _encoded_header(value)


@functools.lru_cache(maxsize=1024)  # a run's subjects repeat (same count, same top title): ~1 ms each
def _encoded_header(value: str) -> str:
    return Header(value, "utf-8", maxlinelen=76, header_name="Subject").encode(linesep="\r\n")  # never a bare LF


def _address(display: str, address: str) -> str:
    if "\r" in address or "\n" in address or any(c.isspace() for c in address):
        raise ValueError(f"bad address {address!r}")
    return formataddr((one_line(display), address), charset="utf-8")


def _b64(text: str) -> bytes:
    """Base64 in CRLF-terminated lines of 76 characters (what ``base64.encodebytes`` makes, with CRLF).

    The full lines are one array of 78-byte rows (76 characters, CR, LF) filled by two numpy
    copies: a 20 KB part is ~400 lines, and cutting them one slice at a time was half the cost.
    """
    encoded = base64.b64encode(text.encode("utf-8"))
    if not encoded:
        return b""
    full, rest = divmod(len(encoded), 76)
    lines = np.empty((full, 78), dtype=np.uint8)
    lines[:, :76] = np.frombuffer(encoded, dtype=np.uint8, count=full * 76).reshape(full, 76)
    lines[:, 76:] = _CRLF
    return lines.tobytes() + (encoded[full * 76 :] + b"\r\n" if rest else b"")


_CRLF = np.frombuffer(b"\r\n", dtype=np.uint8)

SEVEN_BIT_LINE = 998  # RFC 5322 2.1.1: at most 998 characters a line, CRLF excluded


def ascii_html(markup: str) -> str:
    """HTML with every non-ASCII character as a character reference (``&#220;`` for Ü), which an
    HTML reader reads as the same character: what a 7bit body can carry. Not for the inside of
    ``<style>`` or ``<script>`` (CSS and scripts do not read references: keep them ASCII)."""
    return markup if markup.isascii() else markup.encode("ascii", "xmlcharrefreplace").decode("ascii")


def _7bit_html(html: str) -> bytes | None:
    """``html`` as a 7bit body (:func:`ascii_html`, lines ending CRLF), or None if it cannot be one
    (:func:`_line_body`; then the part goes base64).

    The email templates render ASCII already (:mod:`digest.mail.templates`), so the encoding is a
    copy; a mostly-ASCII digest is then about 25 % fewer bytes on the wire than in base64.
    """
    return _line_body(ascii_html(html).encode("ascii"))


def _line_body(data: bytes) -> bytes | None:
    """``data`` as a 7bit or 8bit body: its lines ending CRLF; None if a line would be longer than
    :data:`SEVEN_BIT_LINE` or it holds a NUL, which neither may carry (RFC 5322 2.1.1, RFC 6152)."""
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if b"\0" in data or not _lines_fit(data, SEVEN_BIT_LINE):
        return None
    return data.replace(b"\n", b"\r\n") + (b"" if data.endswith(b"\n") else b"\r\n")


def _text_body(text: str, eight_bit: bool) -> tuple[str, bytes]:
    """The text part's transfer encoding and body: 7bit when it is ASCII, 8bit (its UTF-8 as it is)
    when the server takes 8BITMIME (``eight_bit``), else, or when lines are too long, base64."""
    data = text.encode("utf-8")
    ascii = data.isascii()
    if ascii or eight_bit:
        body = _line_body(data)
        if body is not None:
            return ("7bit" if ascii else "8bit"), body
    return "base64", _b64(text)


def _lines_fit(data: bytes, limit: int) -> bool:
    """Whether no line of ``data`` is longer than ``limit`` bytes: from each line's start, the last
    line break within ``limit`` bytes is the start of the next line to look from (a jump over all
    the lines between, which fit), so a 30 KB body takes a few dozen searches, not one per line."""
    start, end = 0, len(data)
    while end - start > limit:
        newline = data.rfind(b"\n", start, start + limit + 1)
        if newline < 0:
            return False
        start = newline + 1
    return True


@dataclass
class MessageSpec:
    from_name: str
    from_address: str
    to_address: str
    subject: str
    text: str
    html: str
    message_id: str  # without angle brackets, e.g. "delivery-12@example.org"
    headers: dict[str, str] = field(default_factory=dict)  # List-Unsubscribe, List-Id…
    date: float | None = None
    #: the text part may go 8bit: the server it goes to takes 8BITMIME (``Transport.eight_bit``)
    eight_bit: bool = False


def build_message(spec: MessageSpec) -> bytes:
    boundary = "=_" + secrets.token_hex(12)
    lines = [
        f"From: {_address(spec.from_name, spec.from_address)}",
        f"To: {_address('', spec.to_address)}",
        f"Subject: {_header(spec.subject)}",
        f"Date: {formatdate(spec.date, localtime=False, usegmt=True)}",
        f"Message-ID: <{one_line(spec.message_id)}>",
        "MIME-Version: 1.0",
    ]
    lines += [f"{one_line(name)}: {_header(value)}" for name, value in spec.headers.items()]
    lines.append(f'Content-Type: multipart/alternative; boundary="{boundary}"')
    head = "\r\n".join(lines).encode("ascii")
    part = ('--{b}\r\nContent-Type: text/{kind}; charset="utf-8"\r\nContent-Transfer-Encoding: {cte}\r\n\r\n').format
    # the text part has the digest's ▲ and · on every card: 8bit where the server takes it, else
    # base64; the HTML part (ASCII as rendered) 7bit when it can be
    text_cte, text = _text_body(spec.text, spec.eight_bit)
    html = _7bit_html(spec.html)
    return b"".join(
        (
            head,
            b"\r\n\r\n",
            part(b=boundary, kind="plain", cte=text_cte).encode("ascii"),
            text,
            part(b=boundary, kind="html", cte="base64" if html is None else "7bit").encode("ascii"),
            _b64(spec.html) if html is None else html,
            f"--{boundary}--\r\n".encode("ascii"),
        )
    )
