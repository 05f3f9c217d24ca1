"""The delivery ledger: one row per (subscriber, digest period), and every change of its state.

``plan`` creates the rows of due digests (``INSERT … ON CONFLICT DO NOTHING`` on the unique
(subscriber, period) constraint: planning twice, or two planners at once, makes one row) and moves
each subscriber's ``next_due_at`` on. A sender ``claim``s rows (``pending``, or ``sending`` with a
claim older than ``DIGEST_CLAIM_TIMEOUT``), locked by key with ``SKIP LOCKED`` on PostgreSQL, so two
senders never hold the same row; it writes the batch's items, then ``finish``es each row as it
goes: ``sent`` right after the SMTP server accepted it, ``skipped``, ``failed``, or back to
``pending`` for a later run.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from datetime import date, datetime, timedelta

from sqlalchemy import BigInteger, Date, DateTime, String, and_, bindparam, delete, func, insert, null, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from digest.compose import Due, Pick, due_digest, paper_days, previous_ends
from digest.config import Settings
from digest.db import among, session_scope
from digest.models import Delivery, DeliveryItem, DeliveryStatus, Subscriber, SubscriberState, new_public_id

log = logging.getLogger(__name__)

PAGE_SIZE = 500  # due subscribers read per keyset page while planning

def _due_page(session: Session, at: datetime, after: int, page: int) -> list:
    return session.execute(
        select(Subscriber.id, Subscriber.email, Subscriber.frequency, Subscriber.timezone, Subscriber.delivery_hour)
        .where(Subscriber.state == SubscriberState.active, Subscriber.next_due_at <= at, Subscriber.id > after)
        .order_by(Subscriber.id)
        .limit(page)
    ).all()


def due_pages(session: Session, at: datetime, page: int = PAGE_SIZE) -> Iterator[list]:
    """Active subscribers due at ``at``, by id, a keyset page at a time."""
    last = 0
    while rows := _due_page(session, at, last, page):
        yield rows
        last = rows[-1].id


def dues_of(session: Session, rows: Sequence, at: datetime, days: list[date]) -> list[Due]:
    ends = previous_ends(session, [r.id for r in rows])
    return [due_digest(r.id, r.frequency.value, r.timezone, r.delivery_hour, at, ends.get(r.id), days) for r in rows]


def existing(session: Session, dues: Sequence[Due]) -> dict[tuple[int, str], tuple[int, DeliveryStatus]]:
    """The existing ledger rows of these (subscriber, period) pairs: id and status (one query)."""
    wanted = {(d.subscriber_id, d.period) for d in dues}
    if not wanted:
        return {}
    rows = session.execute(
        select(Delivery.subscriber_id, Delivery.period, Delivery.id, Delivery.status).where(
            among(session, Delivery.subscriber_id, {s for s, _ in wanted}), Delivery.period.in_({p for _, p in wanted})
        )
    )
    return {(s, p): (i, st) for s, p, i, st in rows if (s, p) in wanted}


# PostgreSQL: a page of rows in one statement each, from arrays (``unnest``), instead of one INSERT
# and one UPDATE per due subscriber (the driver's executemany): a third of a send run's work
# went to those (docs/benchmarks.md).
_DUE = func.unnest(
    bindparam("public_id", type_=ARRAY(String)),
    bindparam("subscriber_id", type_=ARRAY(BigInteger)),
    bindparam("period", type_=ARRAY(String)),
    bindparam("scheduled_for", type_=ARRAY(DateTime(timezone=True))),
    bindparam("window_start", type_=ARRAY(Date)),
    bindparam("window_end", type_=ARRAY(Date)),
).table_valued("public_id", "subscriber_id", "period", "scheduled_for", "window_start", "window_end").render_derived(name="due")
_PLAN_ROWS = (
    postgresql.insert(Delivery.__table__)
    .from_select(
        [*_DUE.c.keys(), "status"],
        select(*_DUE.c, bindparam("status", DeliveryStatus.pending, type_=Delivery.__table__.c.status.type)),
    )
    .on_conflict_do_nothing(index_elements=["subscriber_id", "period"])
)
_MOVED = (
    func.unnest(bindparam("ids", type_=ARRAY(BigInteger)), bindparam("moments", type_=ARRAY(DateTime(timezone=True))))
    .table_valued("id", "moment")
    .render_derived(name="moved")
)
_MOVE_ON = update(Subscriber).where(Subscriber.id == _MOVED.c.id).values(next_due_at=_MOVED.c.moment)


def _write_plan(session: Session, dues: Sequence[Due]) -> None:
    """The ledger rows of ``dues`` (an existing (subscriber, period) row is left as it is), and
    each subscriber's next due moment."""
    if not dues:
        return
    if session.get_bind().dialect.name == "sqlite":  # executemany is cheap in-process
        session.execute(
            sqlite.insert(Delivery).on_conflict_do_nothing(index_elements=["subscriber_id", "period"]),
            [
                dict(
                    subscriber_id=d.subscriber_id,
                    period=d.period,
                    scheduled_for=d.slot,
                    window_start=d.window_start,
                    window_end=d.window_end,
                    status=DeliveryStatus.pending,
                )
                for d in dues
            ],
        )
        session.execute(update(Subscriber), [{"id": d.subscriber_id, "next_due_at": d.next_due_at} for d in dues])
        return
    session.execute(
        _PLAN_ROWS,
        {
            "public_id": [new_public_id() for _ in dues],
            "subscriber_id": [d.subscriber_id for d in dues],
            "period": [d.period for d in dues],
            "scheduled_for": [d.slot for d in dues],
            "window_start": [d.window_start for d in dues],
            "window_end": [d.window_end for d in dues],
        },
    )
    session.execute(
        _MOVE_ON.execution_options(synchronize_session=False),
        {"ids": [d.subscriber_id for d in dues], "moments": [d.next_due_at for d in dues]},
    )


def _plan_rows(session: Session, rows: Sequence, at: datetime, days: list[date]) -> list[int]:
    dues = dues_of(session, rows, at, days)
    _write_plan(session, dues)
    ledger = existing(session, dues)
    return sorted(i for i, status in ledger.values() if status == DeliveryStatus.pending)


def plan(session: Session, settings: Settings, at: datetime, *, page_size: int = PAGE_SIZE) -> list[int]:
    """One ledger row per due subscriber for the period of ``at``; advance their ``next_due_at``.

    Returns the ids of those rows that are pending (a period already sent or skipped is not
    planned again). The caller commits; only then may a sender be handed the ids.
    """
    days = paper_days(session, at)
    planned: list[int] = []
    for rows in due_pages(session, at, page_size):
        planned += _plan_rows(session, rows, at, days)
    log.info("planned %d digests due at %s", len(planned), at.isoformat())
    return planned


def plan_pages(settings: Settings, at: datetime, *, page_size: int = PAGE_SIZE) -> Iterator[list[int]]:
    """:func:`plan`, one committed transaction per keyset page: yields each page's pending ids.

    The caller can hand a page to the senders while the next one is planned, so sending starts
    within a second whatever the number due, and memory holds one page of ids. A planner stopped
    half-way (a time limit, a crash) keeps the pages it committed; the next run plans the rest
    (each page is idempotent: the unique (subscriber, period) row and the moved ``next_due_at``).
    """
    with session_scope(settings) as session:
        days = paper_days(session, at)
    last, total = 0, 0
    while True:
        with session_scope(settings) as session:
            rows = _due_page(session, at, last, page_size)
            if not rows:
                break
            ids = _plan_rows(session, rows, at, days)
        total += len(ids)
        yield ids
        last = rows[-1].id
    log.info("planned %d digests due at %s", total, at.isoformat())


def _claimable(cutoff: datetime):
    """Rows a sender may take: pending, or claimed before ``cutoff`` by a sender presumed dead."""
    return or_(
        Delivery.status == DeliveryStatus.pending,
        and_(Delivery.status == DeliveryStatus.sending, Delivery.claimed_at < cutoff),
    )


def waiting(session: Session, settings: Settings, at: datetime, now: datetime) -> list[int]:
    """Rows an earlier run left: pending (deferred) ones, and claims older than the claim timeout."""
    cutoff = now - timedelta(seconds=settings.claim_timeout)
    return list(
        session.scalars(
            select(Delivery.id)
            .where(Delivery.scheduled_for <= at, _claimable(cutoff))
            .order_by(Delivery.id)
        )
    )


def claim(session: Session, settings: Settings, ids: Sequence[int], now: datetime) -> dict[int, int]:
    """Take the rows no other sender holds: id -> attempts (this one included). Commits.

    The rows are found by primary key only, then tested here: a test on ``status`` in SQL lets the
    planner pick the status index, which statistics taken at steady state (no row pending) make look
    free, and each batch then walks every pending row: seconds a batch at 100,000 due.
    """
    cutoff = now - timedelta(seconds=settings.claim_timeout)
    # SKIP LOCKED (PostgreSQL): a row another sender is claiming right now is simply not ours; the
    # rows we read stay locked until the commit, so the UPDATE below needs no second test.
    rows = session.execute(
        select(Delivery.id, Delivery.status, Delivery.claimed_at)
        .where(among(session, Delivery.id, ids))
        .with_for_update(skip_locked=True)
    )
    free = [
        i
        for i, status, claimed_at in rows
        if status == DeliveryStatus.pending
        or (status == DeliveryStatus.sending and claimed_at is not None and claimed_at < cutoff)
    ]
    if not free:
        session.commit()
        return {}
    where = [among(session, Delivery.id, free)]
    if session.get_bind().dialect.name != "postgresql":  # no row locks: the UPDATE tests again, atomically
        where.append(_claimable(cutoff))
    result = session.execute(
        update(Delivery)
        .where(*where)
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


def write_items(session: Session, contents: Sequence[tuple[int, int, Sequence[Pick]]], rewrite: Collection[int] = ()) -> None:
    """What each (delivery id, subscriber id, picks shown) of a batch contains, before any is sent.

    All rows in one statement and one commit, instead of an INSERT per message: on PostgreSQL a
    ``COPY`` (a third of a multi-row INSERT's cost, docs/benchmarks.md). Items count as mailed only
    once their delivery is ``sent`` (:func:`digest.compose.load_sent` and the archive read them
    through it). ``rewrite``: deliveries claimed before (attempts > 1), which may hold items from a
    try that was not sent; theirs are deleted first.
    """
    if not contents:
        return
    if rewrite:
        session.execute(
            delete(DeliveryItem)
            .where(among(session, DeliveryItem.delivery_id, rewrite))
            .execution_options(synchronize_session=False)
        )
    rows = [
        (delivery_id, pick.paper.id, subscriber_id, position, pick.matched)
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


_ITEM_COLUMNS = ("delivery_id", "paper_id", "subscriber_id", "position", "matched_filter")
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


class SentLog:
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

    def __enter__(self) -> "SentLog":
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
    """A permanent refusal: the subscriber gets no more mail (reason kept), the row ``failed``."""
    session.execute(
        update(Subscriber)
        .where(Subscriber.id == subscriber_id, Subscriber.state == SubscriberState.active)
        .values(state=SubscriberState.suppressed, suppressed_reason=reason, next_due_at=None)
        .execution_options(synchronize_session=False)
    )
    finish(session, [delivery_id], status=DeliveryStatus.failed, error=reason)
