"""The delivery ledger: one row per (subscriber, digest period), and every change of its state
after planning (:mod:`digest.delivery.planning` creates the rows).

A sender ``claim``s rows that are :func:`claimable` (``pending`` and past their ``not_before``, or
``sending`` with a claim older than ``DIGEST_CLAIM_TIMEOUT``), locked by key with ``SKIP LOCKED`` on
PostgreSQL, so two senders never hold the same row; it writes the batch's items, then ``finish``es
each row as it goes: ``sent`` right after the SMTP server accepted it (:class:`SentRecorder`),
``skipped``, ``failed``, or back to ``pending`` for a later run; a row its recipient's domain cannot
take yet is put back by :func:`postpone` (:mod:`digest.delivery.pacing`).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, String, and_, bindparam, delete, func, insert, null, or_, select, type_coerce, update
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.db import among
from digest.matching.select import Pick
from digest.models import Delivery, DeliveryItem, DeliveryStatus, Subscriber, SubscriberState, Suppression, UnsubscribeMethod, address_hash

log = logging.getLogger(__name__)


def claim_cutoff(settings: Settings, now: datetime) -> datetime:
    """A ``sending`` row claimed before this moment belongs to a sender presumed dead."""
    return now - timedelta(seconds=settings.claim_timeout)


def claimable(cutoff: datetime, now: datetime, *, by_key: bool = False) -> ColumnElement[bool]:
    """THE rule for "may a sender take this row": pending (and, if its recipient's domain deferred
    it, ``now`` is past its ``not_before``), or claimed before ``cutoff`` by a sender presumed dead.
    Every query that finds or takes rows for sending uses it.

    ``by_key``: for a statement that already names its rows by primary key (a claim). The status is
    then read through an expression no index covers, so the planner keeps to the key: statistics
    taken at steady state (no row pending) make the status index look free, and a claim would then
    walk every pending row, seconds a batch at 100,000 due (docs/benchmarks.md).
    """
    status = type_coerce(type_coerce(Delivery.status, String).concat(""), Delivery.status.type) if by_key else Delivery.status
    return or_(
        and_(status == DeliveryStatus.pending, or_(Delivery.not_before.is_(None), Delivery.not_before <= now)),
        and_(status == DeliveryStatus.sending, Delivery.claimed_at < cutoff),
    )


def claimable_ids(
    session: Session, cutoff: datetime, now: datetime, *, due_by: datetime | None = None, idle: bool = False, page: int = 5000
) -> Iterator[int]:
    """Ids of :func:`claimable` rows, by id, read a keyset page at a time.

    ``due_by``: only rows scheduled at or before it. ``idle``: only rows nobody touched since
    ``cutoff`` (created or last claimed before it): the ones lost by a queue or a dead worker, not
    the ones a planner handed out a moment ago.
    """
    where = [claimable(cutoff, now)]
    if due_by is not None:
        where.append(Delivery.scheduled_for <= due_by)
    if idle:
        where.append(func.coalesce(Delivery.claimed_at, Delivery.created_at) < cutoff)
    last = 0
    while ids := session.scalars(select(Delivery.id).where(Delivery.id > last, *where).order_by(Delivery.id).limit(page)).all():
        yield from ids
        last = ids[-1]


def claim(session: Session, settings: Settings, ids: Sequence[int], now: datetime) -> dict[int, int]:
    """Take the rows of ``ids`` that are :func:`claimable` and no other sender holds: id -> attempts
    (this one included). Commits.

    The rows are locked by primary key (``FOR UPDATE SKIP LOCKED`` on PostgreSQL: a row another
    sender is claiming right now is simply not ours), then taken if :func:`claimable` (read by key).
    """
    held = session.scalars(select(Delivery.id).where(among(session, Delivery.id, ids)).with_for_update(skip_locked=True)).all()
    if not held:
        session.commit()
        return {}
    result = session.execute(
        update(Delivery)
        .where(among(session, Delivery.id, held), claimable(claim_cutoff(settings, now), now, by_key=True))
        .values(status=DeliveryStatus.sending, claimed_at=now, attempts=Delivery.attempts + 1)
        .returning(Delivery.id, Delivery.attempts)
        .execution_options(synchronize_session=False)
    )
    claimed = {i: attempts for i, attempts in result}
    session.commit()
    return claimed


def finish(session: Session, ids: Sequence[int], **values) -> int:
    """Move rows we hold (still ``sending``) to their outcome; commits; returns how many moved."""
    if not ids:
        return 0
    result = session.execute(
        update(Delivery)
        .where(among(session, Delivery.id, ids), Delivery.status == DeliveryStatus.sending)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return result.rowcount or 0


def postpone(session: Session, ids: Sequence[int], not_before: datetime, reason: str) -> list[int]:
    """Rows we hold go back to ``pending``, not to be claimed before ``not_before``, unsent and
    untried: their recipient's domain could not take them yet (:mod:`digest.delivery.pacing`). This
    claim does not count as an attempt, and the items written for it (never mailed) go, so the next
    claim writes them afresh (:func:`write_items` rewrites only after a counted attempt). Commits;
    returns the rows moved."""
    if not ids:
        return []
    moved = session.scalars(
        update(Delivery)
        .where(among(session, Delivery.id, ids), Delivery.status == DeliveryStatus.sending)
        .values(status=DeliveryStatus.pending, not_before=not_before, attempts=Delivery.attempts - 1, error=reason)
        .returning(Delivery.id)
        .execution_options(synchronize_session=False)
    ).all()
    if moved:
        session.execute(
            delete(DeliveryItem).where(among(session, DeliveryItem.delivery_id, moved)).execution_options(synchronize_session=False)
        )
    session.commit()
    return list(moved)


def waiting(session: Session, ids: Sequence[int], now: datetime) -> dict[int, datetime]:
    """The rows of ``ids`` still pending because their ``not_before`` is after ``now``, with it."""
    if not ids:
        return {}
    rows = session.execute(
        select(Delivery.id, Delivery.not_before).where(
            among(session, Delivery.id, ids), Delivery.status == DeliveryStatus.pending, Delivery.not_before > now
        )
    ).all()
    return {delivery_id: not_before for delivery_id, not_before in rows}


def write_items(session: Session, contents: Sequence[tuple[int, int, Sequence[Pick]]], rewrite: Collection[int] = ()) -> None:
    """What each (delivery id, subscriber id, picks shown) of a batch contains, before any is sent.

    All rows in one statement and one commit, instead of an INSERT per message: on PostgreSQL a
    ``COPY`` (a third of a multi-row INSERT's cost, docs/benchmarks.md). Items count as mailed only
    once their delivery is ``sent`` (:func:`digest.delivery.compose.load_sent` and the archive read them
    through it). ``rewrite``: deliveries claimed before (attempts > 1), which may hold items from a
    try that was not sent; theirs are deleted first.
    """
    if not contents:
        return
    if rewrite:
        session.execute(
            delete(DeliveryItem).where(among(session, DeliveryItem.delivery_id, rewrite)).execution_options(synchronize_session=False)
        )
    rows = [
        (delivery_id, pick.paper.id, subscriber_id, position, pick.matched, pick.why and pick.why[:WHY_MAX])
        for delivery_id, subscriber_id, shown in contents
        for position, pick in enumerate(shown)
    ]
    connection = session.connection()
    if rows and connection.dialect.name == "postgresql":
        with connection.connection.dbapi_connection.cursor() as cursor:
            with cursor.copy(_COPY_ITEMS) as copy:
                for row in rows:
                    copy.write_row(row)
    elif rows:
        session.execute(insert(DeliveryItem), [dict(zip(_ITEM_COLUMNS, row)) for row in rows])
    session.commit()


_ITEM_COLUMNS = ("delivery_id", "paper_id", "subscriber_id", "position", "matched_filter", "why")
WHY_MAX = DeliveryItem.why.type.length  # a why line names a short title: never near it
_COPY_ITEMS = f"COPY {DeliveryItem.__tablename__} ({', '.join(_ITEM_COLUMNS)}) FROM STDIN"


_MARK_SENT = (
    update(Delivery)
    .where(Delivery.id == bindparam("delivery_id"), Delivery.status == bindparam("held"))
    .values(
        status=bindparam("sent"),
        sent_at=bindparam("now"),
        message_id=bindparam("message_id"),
        paper_count=bindparam("paper_count"),
        error=null(),
    )
)


class SentRecorder:
    """Marks a row ``sent`` the moment the SMTP server accepted its message: one autocommitted
    UPDATE per message on a connection of its own, so a sender that dies mid-batch resends at most
    the message in flight.

    On PostgreSQL that connection does not wait for the WAL flush (``synchronous_commit`` off):
    a crashed *worker* loses nothing, and only a crash of the database server itself could forget
    the last fraction of a second of sends (they would go out again with the same Message-ID).
    There the UPDATE, compiled by SQLAlchemy once per log, goes straight to the driver's cursor:
    it runs once per message, and SQLAlchemy's own work per execution cost more than the
    statement itself (docs/benchmarks.md).
    """

    def __init__(self, session: Session) -> None:
        self.connection = session.get_bind().connect().execution_options(isolation_level="AUTOCOMMIT")
        dialect = self.connection.dialect
        self.postgres = dialect.name == "postgresql"
        self.constants = {"held": DeliveryStatus.sending, "sent": DeliveryStatus.sent}
        self.cursor = None
        if self.postgres:
            status = Delivery.__table__.c.status.type.bind_processor(dialect) or (lambda value: value)
            self.constants = {name: status(value) for name, value in self.constants.items()}
            self.connection.exec_driver_sql("SET synchronous_commit TO OFF")
            self.sql = _MARK_SENT.compile(dialect=dialect).string
            self.cursor = self.connection.connection.dbapi_connection.cursor()

    def __enter__(self) -> SentRecorder:
        return self

    def __exit__(self, *exc_info) -> None:
        try:
            if self.cursor is not None:
                self.cursor.close()
            if self.postgres and not self.connection.invalidated:
                self.connection.exec_driver_sql("RESET synchronous_commit")  # the pool's next user gets the default
        finally:
            self.connection.close()

    def record(self, delivery_id: int, message_id: str, paper_count: int, now: datetime) -> bool:
        """True if the row was still ours; False if our claim timed out and another sender took it."""
        values = {"delivery_id": delivery_id, "now": now, "message_id": message_id, "paper_count": paper_count, **self.constants}
        if self.cursor is not None:
            self.cursor.execute(self.sql, values)
            moved = self.cursor.rowcount
        else:
            moved = self.connection.execute(_MARK_SENT, values).rowcount
        if not moved:
            log.warning("delivery %s was sent but is no longer ours; left as the other sender records it", delivery_id)
        return bool(moved)


def suppress(session: Session, delivery_id: int, subscriber_id: int, reason: str) -> None:
    """A permanent refusal: the subscriber gets no more mail (:func:`suppress_subscriber`), the row ``failed``."""
    suppress_subscriber(session, subscriber_id, reason, remembered="refused")
    finish(session, [delivery_id], status=DeliveryStatus.failed, error=reason)


def suppress_subscriber(
    session: Session, subscriber_id: int, reason: str, *, remembered: str, method: UnsubscribeMethod = UnsubscribeMethod.bounce
) -> bool:
    """The address gets no more mail: an active (or still pending) subscriber becomes ``suppressed``
    with ``reason`` (and ``method``: a bounce, or an operator), and the address is remembered as one
    that left (``remembered``: why, in a word), so no import brings it back. Only its owner's
    confirmation lifts it (or an operator's restore, :mod:`digest.web.admin`). True if the state
    changed (an unsubscribed or already suppressed subscriber keeps theirs). The caller commits."""
    email = session.scalar(select(Subscriber.email).where(Subscriber.id == subscriber_id))
    result = session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber_id, Subscriber.state.in_([SubscriberState.active, SubscriberState.pending]))
        .values(state=SubscriberState.suppressed, suppressed_reason=reason, unsubscribe_method=method, next_due_at=None)
        .execution_options(synchronize_session=False)
    )
    if email is not None:
        session.merge(Suppression(address_hash=address_hash(email), reason=remembered))
    return bool(result.rowcount)
