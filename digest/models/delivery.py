"""The delivery ledger: one row per digest planned for a subscriber, its items (the papers it
carried) once it is written."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from digest.models.base import Base, Count, Created, IntPK, enum_type, new_public_id

if TYPE_CHECKING:
    from digest.models.papers import Paper
    from digest.models.subscribers import Subscriber


class DeliveryStatus(str, enum.Enum):
    pending = "pending"  # planned, waiting for a sender (from not_before on, if set)
    sending = "sending"  # claimed by a sender (claimed_at says since when)
    sent = "sent"
    skipped = "skipped"  # nothing new matched: no mail, on purpose
    failed = "failed"  # permanent failure (5xx); error says why


class Delivery(Base):
    """One row per (subscriber, digest period): the unique constraint is the last line against a double send."""

    __tablename__ = "deliveries"

    id: Mapped[IntPK]
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"))
    period: Mapped[str] = mapped_column(String(16))  # "2026-11-29" (daily) or "2026-W48" (weekly)
    scheduled_for: Mapped[datetime]
    window_start: Mapped[date] = mapped_column(Date)  # Daily Papers days covered, inclusive
    window_end: Mapped[date] = mapped_column(Date)
    status: Mapped[DeliveryStatus] = mapped_column(
        enum_type(DeliveryStatus, "delivery_status"), server_default=DeliveryStatus.pending.value
    )
    claimed_at: Mapped[datetime | None]
    not_before: Mapped[datetime | None]  # a pending row its recipient's domain deferred: not claimed before then
    attempts: Mapped[Count]
    sent_at: Mapped[datetime | None]
    message_id: Mapped[str | None] = mapped_column(String(255))
    paper_count: Mapped[Count]
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[Created]

    subscriber: Mapped[Subscriber] = relationship()
    items: Mapped[list[DeliveryItem]] = relationship(
        back_populates="delivery", order_by="DeliveryItem.position", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("subscriber_id", "period", name="uq_deliveries_subscriber_period"),
        Index("ix_deliveries_status_claimed", "status", "claimed_at"),
    )


class DeliveryItem(Base):
    """A paper in a sent digest, with the filter that matched it: 'never a paper twice' reads these."""

    __tablename__ = "delivery_items"

    # Only the delivery is a foreign key: its cascade already removes a subscriber's items, and
    # papers are never deleted. Each foreign key costs PostgreSQL a row lock per item written
    # (about 5 µs of its CPU), and a send run writes some 6 items per digest (docs/benchmarks.md).
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True)
    paper_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"))  # the delivery's
    position: Mapped[int] = mapped_column(SmallInteger)
    matched_filter: Mapped[str | None] = mapped_column(String(200))
    why: Mapped[str | None] = mapped_column(String(300))  # the email's why line from the reader's taste, if any

    delivery: Mapped[Delivery] = relationship(back_populates="items")
    paper: Mapped[Paper] = relationship(primaryjoin="DeliveryItem.paper_id == Paper.id", foreign_keys="DeliveryItem.paper_id")

    __table_args__ = (Index("ix_delivery_items_subscriber_paper", "subscriber_id", "paper_id"),)
