"""Planning: one ledger row per due subscriber and digest period, and each subscriber's next due moment.

``plan`` creates the rows of due digests (``INSERT … ON CONFLICT DO NOTHING`` on the unique
(subscriber, period) constraint: planning twice, or two planners at once, makes one row) and moves
each subscriber's ``next_due_at`` on. Due subscribers are read by keyset pages on id.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import BigInteger, Date, DateTime, String, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from digest import metrics
from digest.config import Settings
from digest.db import among, session_scope
from digest.delivery.schedule import Due, due_digest, zone
from digest.models import Delivery, DeliveryStatus, Paper, Subscriber, SubscriberState, new_public_id, sending_paused

log = logging.getLogger(__name__)

PAGE_SIZE = 500  # due subscribers read per keyset page while planning
PAPER_DAYS_LOOKBACK = timedelta(days=60)  # how far back "the latest day with papers" is looked for


def paper_days(session: Session, at: datetime) -> list[date]:
    """The days that have papers, up to ``at`` (ascending): one query per planning run."""
    today = at.astimezone(timezone.utc).date()
    return list(
        session.scalars(
            select(Paper.daily_date)
            .where(Paper.daily_date >= today - PAPER_DAYS_LOOKBACK, Paper.daily_date <= today)
            .distinct()
            .order_by(Paper.daily_date)
        )
    )


def previous_ends(session: Session, subscriber_ids: Iterable[int]) -> dict[int, date]:
    """Each subscriber's latest digest ``window_end`` in the ledger, any status (one query)."""
    ids = list(subscriber_ids)
    if not ids:
        return {}
    rows = session.execute(
        select(Delivery.subscriber_id, func.max(Delivery.window_end))
        .where(among(session, Delivery.subscriber_id, ids))
        .group_by(Delivery.subscriber_id)
    )
    return {subscriber_id: end for subscriber_id, end in rows}


@dataclass(frozen=True)
class NextDue:
    """The first moment after now that some active subscriber is due: one of them, and how many."""

    at: datetime
    email: str
    timezone: str
    count: int

    def line(self) -> str:
        local = self.at.astimezone(zone(self.timezone))
        when = f"{self.at:%Y-%m-%d %H:%M} UTC"
        if self.timezone not in {"UTC", "Etc/UTC"}:
            when += f" ({self.timezone} {local:%H:%M})" if local.date() == self.at.date() else f" ({self.timezone} {local:%Y-%m-%d %H:%M})"
        others = f", {self.count} subscribers then" if self.count > 1 else ""
        return f"next due: {self.email} at {when}{others}"


def next_due(session: Session, after: datetime) -> NextDue | None:
    """Who is due next after ``after``, and when (one query, over the ``ix_subscribers_due`` index)."""
    active = Subscriber.state == SubscriberState.active
    first = select(func.min(Subscriber.next_due_at)).where(active, Subscriber.next_due_at > after).scalar_subquery()
    row = session.execute(
        select(Subscriber.next_due_at, Subscriber.email, Subscriber.timezone, func.count().over())
        .where(active, Subscriber.next_due_at == first)
        .order_by(Subscriber.id)
        .limit(1)
    ).first()
    return NextDue(*row) if row else None


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
_DUE = (
    func.unnest(
        bindparam("public_id", type_=ARRAY(String)),
        bindparam("subscriber_id", type_=ARRAY(BigInteger)),
        bindparam("period", type_=ARRAY(String)),
        bindparam("scheduled_for", type_=ARRAY(DateTime(timezone=True))),
        bindparam("window_start", type_=ARRAY(Date)),
        bindparam("window_end", type_=ARRAY(Date)),
    )
    .table_valued("public_id", "subscriber_id", "period", "scheduled_for", "window_start", "window_end")
    .render_derived(name="due")
)
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
        created = session.execute(  # Core's executemany (the table, not the entity): it tells how many rows it made
            sqlite.insert(Delivery.__table__).on_conflict_do_nothing(index_elements=["subscriber_id", "period"]),
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
            execution_options={"preserve_rowcount": True},
        )
        session.execute(update(Subscriber), [{"id": d.subscriber_id, "next_due_at": d.next_due_at} for d in dues])
        metrics.count_digests(planned=max(created.rowcount, 0))  # rows made: a period planned already is not counted again
        return
    created = session.execute(
        _PLAN_ROWS,
        {
            "public_id": [new_public_id() for _ in dues],
            "subscriber_id": [d.subscriber_id for d in dues],
            "period": [d.period for d in dues],
            "scheduled_for": [d.slot for d in dues],
            "window_start": [d.window_start for d in dues],
            "window_end": [d.window_end for d in dues],
        },
        execution_options={"preserve_rowcount": True},
    )
    session.execute(
        _MOVE_ON.execution_options(synchronize_session=False),
        {"ids": [d.subscriber_id for d in dues], "moments": [d.next_due_at for d in dues]},
    )
    metrics.count_digests(planned=max(created.rowcount, 0))


def _plan_rows(session: Session, rows: Sequence, at: datetime, days: list[date]) -> list[int]:
    dues = dues_of(session, rows, at, days)
    _write_plan(session, dues)
    ledger = existing(session, dues)
    return sorted(i for i, status in ledger.values() if status == DeliveryStatus.pending)


def plan(session: Session, settings: Settings, at: datetime, *, page_size: int = PAGE_SIZE) -> list[int]:
    """One ledger row per due subscriber for the period of ``at``; advance their ``next_due_at``.

    Returns the ids of those rows that are pending (a period already sent or skipped is not
    planned again). The caller commits; only then may a sender be handed the ids. While sending is
    paused it plans nothing (nobody's ``next_due_at`` moves: they are due when it resumes).
    """
    if (pause := sending_paused(session)) is not None:
        log.info("planned nothing: %s", pause.line())
        return []
    days = paper_days(session, at)
    planned: list[int] = []
    for rows in due_pages(session, at, page_size):
        planned += _plan_rows(session, rows, at, days)
    log.info("planned %d digests due at %s", len(planned), at.isoformat())
    return planned


def plan_next(session: Session, now: datetime, *, page_size: int = PAGE_SIZE) -> list[int]:
    """Every active subscriber's digest of their next slot, planned now (the demo's "send now"): a
    daily reader's of their next morning, a weekly reader's of their next Monday, each with the
    papers stored now; their ``next_due_at`` moves past that slot, so it is not sent twice. A
    reader already due is planned as :func:`plan` would. Returns the pending row ids; none while
    sending is paused."""
    if (pause := sending_paused(session)) is not None:
        log.info("planned nothing: %s", pause.line())
        return []
    days: dict[date, list[date]] = {}
    planned: list[int] = []
    last = 0
    while rows := session.execute(
        select(
            Subscriber.id,
            Subscriber.frequency,
            Subscriber.timezone,
            Subscriber.delivery_hour,
            Subscriber.next_due_at,
        )
        .where(Subscriber.state == SubscriberState.active, Subscriber.id > last)
        .order_by(Subscriber.id)
        .limit(page_size)
    ).all():
        last = rows[-1].id
        ends = previous_ends(session, [r.id for r in rows])
        dues = []
        for r in rows:
            due_at = r.next_due_at if r.next_due_at is not None and r.next_due_at > now else now
            day = due_at.astimezone(timezone.utc).date()
            if day not in days:
                days[day] = paper_days(session, due_at)
            dues.append(due_digest(r.id, r.frequency.value, r.timezone, r.delivery_hour, due_at, ends.get(r.id), days[day]))
        _write_plan(session, dues)
        planned += sorted(i for i, status in existing(session, dues).values() if status == DeliveryStatus.pending)
    log.info("planned %d next digests now (%s)", len(planned), now.isoformat())
    return planned


def plan_pages(settings: Settings, at: datetime, *, page_size: int = PAGE_SIZE) -> Iterator[list[int]]:
    """:func:`plan`, one committed transaction per keyset page: yields each page's pending ids.

    The caller can hand a page to the senders while the next one is planned, so sending starts
    within a second whatever the number due, and memory holds one page of ids. A planner stopped
    half-way (a time limit, a crash) keeps the pages it committed; the next run plans the rest
    (each page is idempotent: the unique (subscriber, period) row and the moved ``next_due_at``).
    Paused, it plans nothing.
    """
    with session_scope(settings) as session:
        if (pause := sending_paused(session)) is not None:
            log.info("planned nothing: %s", pause.line())
            return
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
