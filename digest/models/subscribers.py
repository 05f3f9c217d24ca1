"""Subscribers, their topic filters, the sign-up waiting for its confirmation, and what is
remembered of an address that left (a hash) and of a mailbox's confirmation mails."""

from __future__ import annotations

import enum
import hashlib
from datetime import datetime

from sqlalchemy import (
    Enum,
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from digest.models.base import Base, Count, Created, IntPK, enum_type, new_public_id


class SubscriberState(str, enum.Enum):
    pending = "pending"  # signed up, confirmation not yet clicked
    active = "active"
    unsubscribed = "unsubscribed"
    suppressed = "suppressed"  # the mail server refused the address permanently


class UnsubscribeMethod(str, enum.Enum):
    """How a subscriber stopped getting mail (``subscribers.unsubscribe_method``): None while they get it."""

    one_click = "one_click"  # RFC 8058: the mail client's button, a POST with List-Unsubscribe=One-Click
    link = "link"  # the button of the unsubscribe page the email links to
    preferences = "preferences"  # from the preferences page
    complaint = "complaint"  # an ARF abuse report ("this is spam")
    bounce = "bounce"  # suppressed: a hard bounce, too many soft ones, or a 5xx at send time
    admin = "admin"  # suppressed by an operator (console or command line)
    imported = "import"  # came in with an import that carried the opt-out


def _values(cls: type[enum.Enum]) -> list[str]:
    return [member.value for member in cls]  # stored as the values ("import"), not the names


class Frequency(str, enum.Enum):
    daily = "daily"
    weekly = "weekly"


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[IntPK]
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # normalised, lower-case domain
    state: Mapped[SubscriberState] = mapped_column(
        enum_type(SubscriberState, "subscriber_state"), server_default=SubscriberState.pending.value
    )
    frequency: Mapped[Frequency] = mapped_column(enum_type(Frequency, "frequency"), server_default=Frequency.daily.value)
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    delivery_hour: Mapped[int] = mapped_column(SmallInteger, server_default=text("7"))
    next_due_at: Mapped[datetime | None]  # UTC instant of the next digest; planners scan this
    created_at: Mapped[Created]
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    suppressed_reason: Mapped[str | None] = mapped_column(Text)
    #: how they left (unsubscribed or suppressed); cleared when they confirm again
    unsubscribe_method: Mapped[UnsubscribeMethod | None] = mapped_column(
        Enum(UnsubscribeMethod, name="unsubscribe_method", native_enum=False, length=16, validate_strings=True, values_callable=_values)
    )

    filters: Mapped[list[TopicFilter]] = relationship(
        back_populates="subscriber", order_by="TopicFilter.position", cascade="all, delete-orphan"
    )

    __table_args__ = (Index("ix_subscribers_due", "state", "next_due_at", "id"),)

    @property
    def topics_text(self) -> str:
        return "\n".join(f.text for f in self.filters)


def address_hash(email: str) -> str:
    """How an address that left is remembered (:class:`Suppression`): SHA-256 of the stored form."""
    return hashlib.sha256(email.encode("utf-8")).hexdigest()


class SignupRequest(Base):
    """The latest sign-up for an address, waiting for its confirmation link to be used.

    Nothing of it applies to the subscriber until then (so a stranger's sign-up changes nothing of
    someone who left); a newer request replaces it, and its ``nonce`` (carried by the confirmation
    link) with it, so every older link is dead. Unsubscribing deletes it.
    """

    __tablename__ = "signup_requests"

    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True)
    nonce: Mapped[str] = mapped_column(String(32))
    topics: Mapped[str] = mapped_column(Text, server_default="")  # filter lines, already validated
    seeds: Mapped[str] = mapped_column(Text, server_default="")  # arXiv ids of papers they like, one per line
    frequency: Mapped[Frequency] = mapped_column(enum_type(Frequency, "frequency"))
    timezone: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime]


class Suppression(Base):
    """An address that left (unsubscribed, or refused for good by its mail server), remembered as a
    hash after its subscriber row is gone: no import ever brings it back. Only its owner's own
    confirmation lifts it."""

    __tablename__ = "suppressions"

    address_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[Created]


class ConfirmationQuota(Base):
    """Confirmation mails per mailbox per 24-hour window, keyed by a hash of the mailbox an address
    reaches (:func:`digest.subscribers.addresses.mailbox_hash`: its variants together).

    A request over the quota is not dropped: the latest one waits (``waiting_subscriber_id``) and
    is mailed when the window ends, so nobody can lock an address's owner out.
    """

    __tablename__ = "confirmation_quotas"

    mailbox_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[datetime]
    sent: Mapped[Count]
    waiting_subscriber_id: Mapped[int | None] = mapped_column(ForeignKey("subscribers.id", ondelete="SET NULL"))


class TopicFilter(Base):
    __tablename__ = "topic_filters"

    id: Mapped[IntPK]
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(SmallInteger)
    text: Mapped[str] = mapped_column(String(200))

    subscriber: Mapped[Subscriber] = relationship(back_populates="filters")

    __table_args__ = (UniqueConstraint("subscriber_id", "position"),)
