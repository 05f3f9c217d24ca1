"""Reading one message that came back: what it reports, and about whose mail.

What: an ARF complaint (RFC 5965, ``message/feedback-report``); else a bounce, by flufl.bounce
(RFC 3464 reports and the common MTA formats: Exim, Postfix, Yahoo, Exchange…), hard or soft by the
status it gives (a 4.x.x, a full mailbox X.2.2 or a message too big X.3.4 is soft, as is a report
that only says "delayed"); else an auto-reply (RFC 3834 ``Auto-Submitted``, ``X-Autoreply``,
``Precedence: auto_reply``, an "Out of Office" subject); else something else, kept as ``other``.

Whose: the bounce address the message came to (:mod:`digest.mail.verp`) names the digest or the
confirmation, whatever the report says; a complaint may name it instead by the envelope sender it
quotes (a feedback loop mails its own address). No valid bounce address: the report is forged.

Each event's key is the message's Message-ID (or a hash of its bytes) with the bounce address it
came to, so a report read twice, over SMTP and again from a Maildir, is one event.
"""

from __future__ import annotations

import email
import hashlib
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.header import decode_header, make_header
from email.message import Message
from email.utils import getaddresses, parseaddr

import flufl.bounce

from digest.bounces.events import Event
from digest.config import Settings
from digest.mail import verp
from digest.models import EventKind

log = logging.getLogger(__name__)

#: Feedback types (RFC 5965, 6650) that are a reader's complaint; "not-spam", "virus" are not.
COMPLAINTS = frozenset({"abuse", "fraud"})
#: Soft whatever its class: a full mailbox (X.2.2), a message too big for the mailbox (X.3.4).
SOFT_DETAILS = frozenset({"2.2", "3.4"})
ENHANCED = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?!\.?\d)")
REPLY = re.compile(r"(?:^|(?:said|error|reply|response)[^:\n]{0,40}:)\s*([45]\d\d)\b", re.IGNORECASE)
AUTO_SUBJECT = re.compile(
    r"^\s*(?:out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response|antwort)\b|auto:|"
    r"abwesenheitsnotiz|r[ée]ponse automatique|respuesta autom[áa]tica|vacation reply|on vacation)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Finding:
    """What a message reports, before anyone is named."""

    kind: EventKind
    diagnostic: str
    address: str = ""  # the recipient the report names (the failed one, the one who complained)
    senders: tuple[str, ...] = ()  # envelope senders a complaint quotes: bounce addresses when its recipient is none


def read(settings: Settings, data: bytes, recipients: Sequence[str], at: datetime) -> list[Event]:
    """The events of one message ``data`` delivered to ``recipients`` (the SMTP envelope's, or the
    ones its delivery headers name: :func:`delivered_to`), one per distinct recipient."""
    msg = email.message_from_bytes(data)
    finding = classify(msg)
    message_key = _message_key(msg, data)
    events = []
    for recipient in _distinct(recipients) or [""]:
        key = hashlib.sha256(f"{message_key}\n{recipient.lower()}".encode()).hexdigest()
        named, why = _named(settings, recipient, finding)
        if named is None:
            diagnostic = f"{why}; it reads as {finding.kind.value}: {finding.diagnostic}"
            events.append(Event(EventKind.forged, at, key, address=finding.address or recipient, diagnostic=diagnostic))
            continue
        events.append(
            Event(finding.kind, at, key, finding.address, finding.diagnostic, delivery=named.delivery, subscriber=named.subscriber)
        )
    return events


def delivered_to(msg: Message) -> list[str]:
    """The recipients a stored message was delivered to, as its delivery headers say
    (``Delivered-To``, ``X-Original-To``, ``Envelope-To``), else its ``To``."""
    for header in ("Delivered-To", "X-Original-To", "Envelope-To"):
        found = [address for _, address in getaddresses([str(v) for v in msg.get_all(header, [])]) if address]
        if found:
            return found
    return [address for _, address in getaddresses([str(v) for v in msg.get_all("To", [])]) if address]


def _named(settings: Settings, recipient: str, finding: Finding) -> tuple[verp.Named | None, str]:
    """What the bounce address ``recipient`` names (for a complaint, else one it quotes), or why none."""
    try:
        return verp.read(settings, recipient), ""
    except verp.NotOurs as exc:
        why = str(exc) if recipient else "no recipient"
    if finding.kind is EventKind.complaint:
        for sender in finding.senders:
            try:
                return verp.read(settings, sender), ""
            except verp.NotOurs:
                continue
        why += ", and the complaint quotes no bounce address of ours"
    return None, why


def _distinct(addresses: Sequence[str]) -> list[str]:
    seen: dict[str, str] = {}
    for address in addresses:
        address = address.strip().strip("<>")
        if address:
            seen.setdefault(address.lower(), address)
    return list(seen.values())


def _message_key(msg: Message, data: bytes) -> str:
    message_id = " ".join(str(msg.get("Message-ID", "")).split()).strip("<>")
    return f"id:{message_id}" if message_id else "sha256:" + hashlib.sha256(data).hexdigest()


# ---------------------------------------------------------------- what a message reports


def classify(msg: Message) -> Finding:
    """What ``msg`` reports: a complaint, a hard or soft bounce, an auto-reply, or ``other``."""
    feedback = next(_parts(msg, "message/feedback-report"), None)
    if feedback is not None:
        return _complaint(msg, feedback)
    temporary, permanent = _failures(msg)
    if temporary or permanent:
        return _bounce(msg, temporary, permanent)
    reports = list(_dsn_blocks(msg))
    if reports:
        actions = ", ".join(sorted({str(block.get("Action", "?")).strip().lower() for block in reports}))
        return Finding(EventKind.other, f"a delivery report with no failure (action: {actions})")
    subject = _subject(msg)
    if _auto_reply(msg, subject):
        return Finding(EventKind.auto_reply, f"auto-reply: {subject}")
    return Finding(EventKind.other, f"not a report: {subject}")


def _parts(msg: Message, content_type: str) -> Iterator[Message]:
    return (part for part in msg.walk() if part.get_content_type() == content_type)


def _fields(part: Message) -> Message:
    """The fields of a ``message/feedback-report`` part (the parser makes them a message, unless
    the part was encoded)."""
    payload = part.get_payload()
    if isinstance(payload, list) and payload:
        return payload[0]
    text = part.get_payload(decode=True) or b""
    return email.message_from_bytes(text.lstrip())


def _complaint(msg: Message, feedback: Message) -> Finding:
    fields = _fields(feedback)
    kind = str(fields.get("Feedback-Type", "")).strip().lower()
    senders = [parseaddr(str(fields.get("Original-Mail-From", "")))[1]]
    for original in _originals(msg):
        senders += [parseaddr(str(v))[1] for v in original.get_all("Return-Path", [])]
    agent = str(fields.get("User-Agent", "")).strip()
    return Finding(
        EventKind.complaint if kind in COMPLAINTS else EventKind.other,
        f"feedback report: {kind or 'no type'}" + (f" ({agent})" if agent else ""),
        address=parseaddr(str(fields.get("Original-Rcpt-To", "")))[1],
        senders=tuple(s for s in senders if s),
    )


def _originals(msg: Message) -> Iterator[Message]:
    """The original message (or its headers) a report carries."""
    for part in msg.walk():
        if part.get_content_type() == "message/rfc822" and isinstance(part.get_payload(), list):
            yield part.get_payload(0)
        elif part.get_content_type() == "text/rfc822-headers":
            yield email.message_from_bytes((part.get_payload(decode=True) or b"").lstrip())


def _failures(msg: Message) -> tuple[set[str], set[str]]:
    """(temporary, permanent) failed recipients, as flufl.bounce reads them."""
    try:
        temporary, permanent = flufl.bounce.all_failures(msg)
    except Exception:  # a detector tripped over a malformed message: as if it found nothing
        log.exception("flufl.bounce could not read a message")
        return set(), set()
    return {a.decode("ascii", "replace").lower() for a in temporary}, {a.decode("ascii", "replace").lower() for a in permanent}


def _bounce(msg: Message, temporary: set[str], permanent: set[str]) -> Finding:
    address = min(permanent) if permanent else min(temporary)
    blocks = list(_dsn_blocks(msg))
    block = next((b for b in blocks if address in _recipient(b)), blocks[0] if blocks else None)
    reported = str(block.get("Status", "")).strip() if block is not None else ""
    said = " ".join(str(block.get("Diagnostic-Code", "")).split()) if block is not None else ""
    said = said or _reply_line(msg)
    status = reported or _status_in(said)
    klass, _, detail = status.partition(".")
    hard = address in permanent and klass != "4" and detail not in SOFT_DETAILS
    return Finding(EventKind.hard if hard else EventKind.soft, " ".join(p for p in (reported, said) if p) or "no status given", address)


def _status_in(said: str) -> str:
    """The status a server's reply gives: its enhanced code (``5.1.1``), else its class (``5``)."""
    enhanced = ENHANCED.search(said)
    if enhanced:
        return ".".join(enhanced.groups())
    reply = REPLY.search(said)
    return reply.group(1)[0] if reply else ""


def _dsn_blocks(msg: Message) -> Iterator[Message]:
    """The per-recipient blocks (those with an ``Action``) of a report's ``message/delivery-status`` parts."""
    for part in _parts(msg, "message/delivery-status"):
        payload = part.get_payload()
        if not isinstance(payload, list):  # an encoded part: parse its blocks
            text = (part.get_payload(decode=True) or b"").decode("ascii", "replace")
            payload = [email.message_from_string(block) for block in re.split(r"\r?\n\s*\r?\n", text.strip())]
        yield from (block for block in payload if block.get("Action"))


def _recipient(block: Message) -> str:
    values = " ".join(str(block.get(h, "")) for h in ("Final-Recipient", "Original-Recipient", "X-Actual-Recipient"))
    return values.lower()


def _reply_line(msg: Message) -> str:
    """The line of a plain-text bounce that quotes the server's reply (``550 5.1.1 …``)."""
    for part in _parts(msg, "text/plain"):
        text = (part.get_payload(decode=True) or b"").decode(part.get_content_charset() or "ascii", "replace")
        for line in text.splitlines():
            if REPLY.search(line) or ENHANCED.search(line):
                return " ".join(line.split())
        if part is not msg:
            break  # the first text part is the notification; a later one is the returned message
    return ""


def _subject(msg: Message) -> str:
    raw = msg.get("Subject", "")
    try:
        return " ".join(str(make_header(decode_header(str(raw)))).split())
    except (ValueError, LookupError):
        return " ".join(str(raw).split())


def _auto_reply(msg: Message, subject: str) -> bool:
    submitted = str(msg.get("Auto-Submitted", "")).strip().lower()
    if submitted and not submitted.startswith("no"):
        return True
    if any(msg.get(h) is not None for h in ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Vacation")):
        return True
    if str(msg.get("Precedence", "")).strip().lower() == "auto_reply":
        return True
    return bool(AUTO_SUBJECT.match(subject))
