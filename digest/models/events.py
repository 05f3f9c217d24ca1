"""What came back after a message was sent: bounces, complaints, auto-replies, and forged reports,
each stored once per reported message (:mod:`digest.bounces`)."""

from __future__ import annotations

import enum

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from digest.models.base import ID, Base, Created, IntPK, enum_type

MAX_DIAGNOSTIC = 1000  # characters of a report's diagnostic kept


class EventKind(str, enum.Enum):
    hard = "hard"  # a permanent failure (5.x.x): the address is suppressed
    soft = "soft"  # a temporary one (4.x.x, a delay, a full mailbox): counted
    complaint = "complaint"  # an ARF abuse report (RFC 5965): the reader is unsubscribed
    auto_reply = "auto_reply"  # out of office and other auto-replies (RFC 3834): ignored
    delivered = "delivered"  # a provider says the message reached the mailbox (an SES delivery notification)
    other = "other"  # mail to a bounce address that is none of those (a reply by hand, a positive report): kept
    forged = "forged"  # no valid bounce token, or not for the bounce domain: changes nothing, counted


class MailEvent(Base):
    """One event per reported message and bounce address (``report_key``): the same report read
    twice (a relay that delivered it twice, a Maildir processed again) is stored once."""

    __tablename__ = "mail_events"

    id: Mapped[IntPK]
    # the reported message's Message-ID (or a hash of its bytes) with the address it came to, hashed;
    # NULL for a recipient refused at RCPT (no message was taken)
    report_key: Mapped[str | None] = mapped_column(String(64), unique=True)
    kind: Mapped[EventKind] = mapped_column(enum_type(EventKind, "mail_event_kind"))
    subscriber_id: Mapped[int | None] = mapped_column(ID, ForeignKey("subscribers.id", ondelete="SET NULL"))
    delivery_id: Mapped[int | None] = mapped_column(ID, ForeignKey("deliveries.id", ondelete="SET NULL"), index=True)
    address: Mapped[str] = mapped_column(String(254), server_default="")  # the address the report is about
    diagnostic: Mapped[str] = mapped_column(Text, server_default="")  # the status and the server's words, cut at MAX_DIAGNOSTIC
    created_at: Mapped[Created]  # when it was reported (received)

    __table_args__ = (
        Index("ix_mail_events_subscriber_created", "subscriber_id", "created_at"),
        Index("ix_mail_events_kind", "kind"),
    )


def clip(text: str) -> str:
    """A diagnostic as stored: one line, at most :data:`MAX_DIAGNOSTIC` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= MAX_DIAGNOSTIC else flat[: MAX_DIAGNOSTIC - 1] + "…"
