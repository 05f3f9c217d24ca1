"""The data model: papers and their vectors, subscribers with their topic filters, votes and taste
profiles, and the delivery ledger.

SQLAlchemy 2.0 typed models that work on PostgreSQL and SQLite. Every schema change is an
Alembic migration in ``alembic/versions``; server defaults are declared so Alembic sees them.
"""

from __future__ import annotations

import enum
import hashlib
import secrets
from datetime import date, datetime, timezone
from typing import Annotated, Any, NamedTuple

import numpy as np
from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_public_id() -> str:
    return secrets.token_urlsafe(16)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite returns naive values otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite server defaults come back as text
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[str]: JSON}


IntPK = Annotated[int, mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)]
Created = Annotated[datetime, mapped_column(server_default=func.now())]
Count = Annotated[int, mapped_column(Integer, server_default=text("0"))]
Url = Annotated[str | None, mapped_column(String(2048))]


class SubscriberState(str, enum.Enum):
    pending = "pending"  # signed up, confirmation not yet clicked
    active = "active"
    unsubscribed = "unsubscribed"
    suppressed = "suppressed"  # the mail server refused the address permanently


class Frequency(str, enum.Enum):
    daily = "daily"
    weekly = "weekly"


class DeliveryStatus(str, enum.Enum):
    pending = "pending"  # planned, waiting for a sender
    sending = "sending"  # claimed by a sender (claimed_at says since when)
    sent = "sent"
    skipped = "skipped"  # nothing new matched: no mail, on purpose
    failed = "failed"  # permanent failure (5xx); error says why


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    return Enum(cls, name=name, native_enum=False, length=16, validate_strings=True)


class Paper(Base):
    __tablename__ = "papers"

    id: Mapped[IntPK]
    arxiv_id: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text, server_default="")
    authors: Mapped[list[str]] = mapped_column(JSON, default=list)  # ordered names
    org_name: Mapped[str | None] = mapped_column(String(200))
    org_fullname: Mapped[str | None] = mapped_column(String(300))
    org_avatar: Mapped[Url]  # the organisation's logo, an http(s) image URL
    published_at: Mapped[datetime | None]  # arXiv publication time
    submitted_at: Mapped[datetime | None]  # when it went on Daily Papers
    daily_date: Mapped[date] = mapped_column(Date, index=True)  # the Daily Papers day it belongs to
    upvotes: Mapped[Count]
    num_comments: Mapped[Count]
    github_repo: Mapped[Url]
    github_stars: Mapped[int | None]
    project_page: Mapped[Url]
    thumbnail: Mapped[Url]
    ai_summary: Mapped[str | None] = mapped_column(Text)
    ai_keywords: Mapped[list[str] | None] = mapped_column(JSON)
    first_seen_at: Mapped[Created]
    updated_at: Mapped[Created]

    __table_args__ = (Index("ix_papers_trending", "daily_date", "upvotes"),)


class Subscriber(Base):
    __tablename__ = "subscribers"

    id: Mapped[IntPK]
    public_id: Mapped[str] = mapped_column(String(32), unique=True, default=new_public_id)
    email: Mapped[str] = mapped_column(String(254), unique=True)  # normalised, lower-case domain
    state: Mapped[SubscriberState] = mapped_column(_enum(SubscriberState, "subscriber_state"), server_default=SubscriberState.pending.value)
    frequency: Mapped[Frequency] = mapped_column(_enum(Frequency, "frequency"), server_default=Frequency.daily.value)
    timezone: Mapped[str] = mapped_column(String(64), server_default="UTC")
    delivery_hour: Mapped[int] = mapped_column(SmallInteger, server_default=text("7"))
    next_due_at: Mapped[datetime | None]  # UTC instant of the next digest; planners scan this
    created_at: Mapped[Created]
    confirmed_at: Mapped[datetime | None]
    unsubscribed_at: Mapped[datetime | None]
    suppressed_reason: Mapped[str | None] = mapped_column(Text)

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


def mailbox_hash(email: str) -> str:
    """One key for every variant of a mailbox: ``Ann.Lee+news@x.org`` and ``annlee@x.org`` count
    together against the confirmation quota (:class:`ConfirmationQuota`)."""
    local, _, domain = email.lower().rpartition("@")
    local = local.split("+", 1)[0].replace(".", "")
    return hashlib.sha256(f"{local}@{domain}".encode()).hexdigest()


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
    frequency: Mapped[Frequency] = mapped_column(_enum(Frequency, "frequency"))
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
    """Confirmation mails per mailbox (its plus- and dot-variants together) per 24-hour window.

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
    status: Mapped[DeliveryStatus] = mapped_column(_enum(DeliveryStatus, "delivery_status"), server_default=DeliveryStatus.pending.value)
    claimed_at: Mapped[datetime | None]
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

    delivery: Mapped[Delivery] = relationship(back_populates="items")
    paper: Mapped[Paper] = relationship(primaryjoin="DeliveryItem.paper_id == Paper.id", foreign_keys="DeliveryItem.paper_id")

    __table_args__ = (Index("ix_delivery_items_subscriber_paper", "subscriber_id", "paper_id"),)


class IngestRun(Base):
    """A successful ingest (a failed one changes nothing, this table included)."""

    __tablename__ = "ingest_runs"

    id: Mapped[IntPK]
    source: Mapped[str] = mapped_column(String(2048))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    fetched: Mapped[Count]
    new: Mapped[Count]
    updated: Mapped[Count]
    skipped: Mapped[Count]


# ---------------------------------------------------------------- taste: paper vectors, votes, profiles


ID = BigInteger().with_variant(Integer(), "sqlite")  # the type of every id column


class SparseVector(NamedTuple):
    """A paper's lexical vector: hashed term ids (uint32) and their weights, heaviest first."""

    terms: np.ndarray  # uint32
    weights: np.ndarray  # float32


class HalfFloats(TypeDecorator[np.ndarray]):
    """A float vector stored as little-endian float16 bytes, read back as float32 (a 256-dim embedding: 512 bytes)."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: np.ndarray | None, dialect) -> bytes | None:
        return None if value is None else np.asarray(value, dtype="<f2").tobytes()

    def process_result_value(self, value: bytes | None, dialect) -> np.ndarray | None:
        return None if value is None else np.frombuffer(value, dtype="<f2").astype(np.float32)


class PackedTerms(TypeDecorator[SparseVector]):
    """A :class:`SparseVector` as bytes: K little-endian uint32 term ids, then K float16 weights."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: SparseVector | None, dialect) -> bytes | None:
        if value is None:
            return None
        return np.asarray(value.terms, dtype="<u4").tobytes() + np.asarray(value.weights, dtype="<f2").tobytes()

    def process_result_value(self, value: bytes | None, dialect) -> SparseVector | None:
        if value is None:
            return None
        k = len(value) // 6
        terms = np.frombuffer(value, dtype="<u4", count=k).astype(np.uint32)
        return SparseVector(terms, np.frombuffer(value, dtype="<f2", offset=4 * k).astype(np.float32))


class PaperVector(Base):
    """A paper's two representations, computed once when ingest first stores it (``digest.papers.vectors``).

    ``model`` names what made them (embedding model and term weighting, with versions): a change of
    either makes ingest compute them again for the papers it touches.
    """

    __tablename__ = "paper_vectors"

    paper_id: Mapped[int] = mapped_column(ID, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    dense: Mapped[np.ndarray] = mapped_column(HalfFloats)  # unit length
    sparse: Mapped[SparseVector] = mapped_column(PackedTerms)  # unit length over the kept terms
    created_at: Mapped[Created]


class TermCount(Base):
    """How many represented papers contain a term (its document frequency, for the IDF of new papers)."""

    __tablename__ = "term_counts"

    term: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # the term's uint32 hash
    papers: Mapped[Count]


class VoteSource(str, enum.Enum):
    vote = "vote"  # "more / less like this" from a digest
    seed = "seed"  # a paper the reader named on the sign-up or preferences form (always +1)


class Vote(Base):
    """A reader's word on a paper: +1 (more like this) or -1 (less). A second vote on the same paper replaces the first."""

    __tablename__ = "votes"

    subscriber_id: Mapped[int] = mapped_column(ID, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True)
    paper_id: Mapped[int] = mapped_column(ID, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True)
    vote: Mapped[int] = mapped_column(SmallInteger)
    source: Mapped[VoteSource] = mapped_column(_enum(VoteSource, "vote_source"), server_default=VoteSource.vote.value)
    created_at: Mapped[Created]

    __table_args__ = (CheckConstraint("vote IN (-1, 1)", name="vote"),)


class ReaderProfile(Base):
    """A reader's taste, derived from their votes and seeds (``digest.matching.taste``): at most 2 KB."""

    __tablename__ = "reader_profiles"

    subscriber_id: Mapped[int] = mapped_column(ID, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True)
    profile: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime]
