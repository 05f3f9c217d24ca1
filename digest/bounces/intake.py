"""Intake: messages that came back, read and recorded — one received over SMTP (the listener,
:mod:`digest.bounces.listener`), or every message of a file, an mbox or a Maildir
(``digest bounces process``). Each message is committed on its own; reading a mailbox again records
nothing twice (its reports count as duplicates)."""

from __future__ import annotations

import email
import mailbox
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from digest.bounces.events import Event, Outcome, record
from digest.bounces.reports import delivered_to, read
from digest.config import Settings
from digest.db import session_scope
from digest.models import EventKind

#: How the summary names each kind, in its order.
LABELS = {
    EventKind.hard: "hard",
    EventKind.soft: "soft",
    EventKind.complaint: "complaints",
    EventKind.auto_reply: "auto-replies",
    EventKind.delivered: "delivered",
    EventKind.other: "other",
    EventKind.forged: "forged",
}


@dataclass
class Summary:
    """What an intake read: messages, events by kind, duplicates, and what they changed."""

    messages: int = 0
    kinds: Counter = field(default_factory=Counter)
    outcomes: Counter = field(default_factory=Counter)
    seen: int = 0  # Maildir messages left alone: marked read (S) by an earlier run

    def add(self, recorded: Sequence[tuple[Event, Outcome]]) -> None:
        self.messages += 1
        for event, outcome in recorded:
            self.outcomes[outcome] += 1
            if outcome is not Outcome.duplicate:
                self.kinds[event.kind] += 1

    def line(self) -> str:
        kinds = ", ".join(f"{label} {self.kinds[kind]}" for kind, label in LABELS.items() if kind is not EventKind.delivered)
        return (
            f"processed {self.messages} message{'' if self.messages == 1 else 's'}: {kinds}, duplicates {self.outcomes[Outcome.duplicate]}; "
            f"suppressed {self.outcomes[Outcome.suppressed]}, unsubscribed {self.outcomes[Outcome.unsubscribed]}"
            + (f"; {self.seen} already read (marked S), left alone: --all reads them again" if self.seen else "")
        )


def receive(settings: Settings, data: bytes, recipients: Sequence[str], at: datetime) -> list[tuple[Event, Outcome]]:
    """Read and record one message delivered to ``recipients``, in one transaction."""
    events = read(settings, data, recipients, at)
    with session_scope(settings) as session:
        return [(event, record(session, event)) for event in events]


def refused(settings: Settings, recipient: str, sender: str, at: datetime) -> Outcome:
    """A recipient outside the bounce domain, refused at RCPT: counted as forged (no message was taken)."""
    # aiosmtpd keeps the null sender as "<>", an address without its brackets
    why = f"refused at RCPT: not for the bounce domain {settings.bounce_domain} (MAIL FROM:<{sender.removeprefix('<').removesuffix('>')}>)"
    event = Event(EventKind.forged, at, None, address=recipient, diagnostic=why)
    with session_scope(settings) as session:
        return record(session, event)


def process(settings: Settings, path: Path, at: datetime, every: bool = False) -> Summary:
    """Read and record every message at ``path``: one message, an mbox file or a Maildir.

    In a Maildir, as a mail client does, each message recorded is marked read (moved to ``cur/``
    with the ``S`` flag) once its transaction committed, and a message marked read is left alone
    unless ``every``: a mailbox that a relay keeps filling costs each run only what came since."""
    summary = Summary()
    if path.is_dir():
        box = maildir_at(path)
        for key in sorted(box.keys()):
            message = box.get_message(key)
            if "S" in message.get_flags() and not every:
                summary.seen += 1
                continue
            data = box.get_bytes(key)
            summary.add(receive(settings, data, delivered_to(email.message_from_bytes(data)), at))
            message.set_subdir("cur")
            message.add_flag("S")
            box[key] = message
        return summary
    for data in messages_at(path):
        summary.add(receive(settings, data, delivered_to(email.message_from_bytes(data)), at))
    return summary


def maildir_at(path: Path) -> mailbox.Maildir:
    if not ((path / "cur").is_dir() or (path / "new").is_dir()):
        raise ValueError(f"{path} is a folder but not a Maildir (it has no cur/ or new/)")
    return mailbox.Maildir(path, factory=None, create=False)


def messages_at(path: Path) -> Iterator[bytes]:
    """The raw messages at ``path``: a Maildir (a folder with ``cur/`` or ``new/``), an mbox (a file
    starting ``From ``), or a single message. Raises ``ValueError`` for a folder that is not a Maildir."""
    if path.is_dir():
        box = maildir_at(path)
        for key in sorted(box.keys()):
            yield box.get_bytes(key)
        return
    with path.open("rb") as file:
        mbox = file.read(5) == b"From "
    if mbox:
        box = mailbox.mbox(path, factory=None, create=False)
        for key in box.keys():
            yield box.get_bytes(key)
    else:
        yield path.read_bytes()
