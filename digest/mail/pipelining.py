"""SMTP PIPELINING (RFC 2920) over ``smtplib``, which does not pipeline: a message's envelope
(MAIL, RCPT…, DATA) as one group, its replies read together with the errors ``sendmail`` raises
for them, and the message content as ``sendmail`` sends it. :mod:`digest.mail.transport` builds its
send paths on these.
"""

from __future__ import annotations

import re
import smtplib

PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*")


def quoteaddr(address: str) -> str:
    """``smtplib.quoteaddr``, without its full RFC 5322 parse for the plain addresses nearly all are
    (tests/test_transport.py checks both agree on them)."""
    return f"<{address}>" if PLAIN_ADDRESS.fullmatch(address) else smtplib.quoteaddr(address)


def mail_options(smtp: smtplib.SMTP) -> str:
    """MAIL FROM's parameters on this connection: ``BODY=8BITMIME`` where the server takes 8-bit
    content (RFC 6152), which then declares every message as one that may carry it."""
    return " BODY=8BITMIME" if smtp.has_extn("8bitmime") else ""


def envelope(sender: str, recipients: list[str], options: str = "") -> bytes | None:
    """MAIL (with ``options``: :func:`mail_options`), RCPT… and DATA as one pipelined group
    (RFC 2920), or None if an address is not ASCII."""
    command = "\r\n".join([f"MAIL FROM:{quoteaddr(sender)}{options}", *(f"RCPT TO:{quoteaddr(r)}" for r in recipients), "DATA"])
    return (command + "\r\n").encode("ascii") if command.isascii() else None


def envelope_replies(smtp: smtplib.SMTP, sender: str, recipients: list[str]) -> dict:
    """Read the replies to a pipelined envelope and raise what ``sendmail`` raises for them.

    Returns the refused recipients (only possible with several); the server then waits for data.
    A 421 to a RCPT means the server is closing the connection (RFC 5321 3.8): no reply comes after
    it, so none is read; the connection is closed and every recipient counts as refused with it.
    """
    code, reply = smtp.getreply()
    refused: dict[str, tuple[int, bytes]] = {}
    replies = []
    for _ in recipients:
        replies.append(smtp.getreply())
        if replies[-1][0] == 421 and code == 250:
            smtp.close()
            raise smtplib.SMTPRecipientsRefused({r: replies[-1] for r in recipients})
    data_code, data_text = smtp.getreply()
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
        raise smtplib.SMTPDataError(data_code, data_text)
    if len(refused) == len(recipients):  # DATA accepted with no recipient: send nothing, end it
        smtp.send(b".\r\n")
        smtp.getreply()
        raise smtplib.SMTPRecipientsRefused(refused)
    return refused


def content(data: bytes) -> bytes:
    """The message as ``sendmail`` sends bytes after DATA: dot-stuffed, CRLF and the final dot appended."""
    if data.startswith(b"."):
        data = b"." + data
    data = data.replace(b"\n.", b"\n..")  # smtplib's _quote_periods: a dot after every line break
    return data + (b".\r\n" if data.endswith(b"\r\n") else b"\r\n.\r\n")


def data_reply(smtp: smtplib.SMTP) -> None:
    code, reply = smtp.getreply()
    if code != 250:
        if code == 421:
            smtp.close()
        raise smtplib.SMTPDataError(code, reply)


def offered(smtp: smtplib.SMTP) -> bool:
    smtp.ehlo_or_helo_if_needed()
    return bool(smtp.does_esmtp and smtp.has_extn("pipelining"))


def sendmail(smtp: smtplib.SMTP, sender: str, recipients: list[str], data: bytes) -> dict:
    """``smtp.sendmail`` with the envelope pipelined (RFC 2920) when the server offers PIPELINING.

    MAIL, RCPT… and DATA go out in one write and their replies are read together: two round trips
    a message instead of 3 + recipients. Raises what ``sendmail`` raises for the same replies, so
    callers cannot tell the difference; falls back to ``sendmail`` without PIPELINING or with a
    non-ASCII address.
    """
    pipelined = offered(smtp)  # says EHLO first if need be
    options = mail_options(smtp)
    group = envelope(sender, recipients, options) if pipelined else None
    if group is None:
        return smtp.sendmail(sender, recipients, data, mail_options=options.split())
    smtp.send(group)
    refused = envelope_replies(smtp, sender, recipients)
    smtp.send(content(data))
    data_reply(smtp)
    return refused
