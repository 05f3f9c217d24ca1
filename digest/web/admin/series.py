"""The console's data series, each read with ONE aggregate query (``GROUP BY`` a UTC day or minute)
over a bounded span of time, the same on SQLite and PostgreSQL; nothing loads a row per subscriber
or per delivery into Python.

Time buckets are whole numbers computed in SQL from the epoch (:func:`bucket`): UTC days and minutes
on both backends, whatever the server's time zone. A grouping over computed columns is written as a
subquery grouped by its columns (:func:`grouped`), so that PostgreSQL never compares two copies of an
expression with bound parameters.

What the tables do not store, and how it is derived here:

* **A send run** is not recorded. It is read from the ledger: every row a sender decided (sent,
  skipped, failed, or put back to pending with an error: *deferred*) is dated by its last activity
  (``sent_at``, else ``claimed_at``); a pause of more than :data:`RUN_GAP_MINUTES` minutes with no
  such activity ends a run (:func:`detect_runs`). Beat plans every hour, so each hour that sent
  anything is a run; a demo's "send now" is one too. The ledger keeps a row's latest state only: a
  row deferred in one run and sent in the next counts as sent, in the next.
* **A subscriber's state on a past day** is rebuilt from its times (:func:`subscriber_days`):
  created (pending), ``confirmed_at`` (active), left (its current state, unsubscribed or
  suppressed). Suppression has no time of its own: it is dated by the subscriber's last bounce or
  complaint, else its last failed delivery. A re-confirmation overwrites ``confirmed_at``, and
  unconfirmed sign-ups purged after 7 days are gone: the past is what the rows still say.
* **Whether the learned order moved a digest** (:func:`learned_order`): a digest's trending section
  (its papers of a Daily Papers day inside its window) is compared with the same papers in
  trending order (:func:`digest.matching.trending.rank_key`, in SQL, by today's upvotes); "moved"
  when the first paper shown is not the first in that order. Only readers with a taste profile are
  read item by item: without one, a digest is in trending order by construction
  (:func:`digest.delivery.compose.compose`); beyond :data:`LEARNED_SAMPLE` such readers, an even
  sample of them, and the share is an estimate (said so in the caption).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import BigInteger, ColumnElement, Integer, String, and_, case, cast, func, literal, literal_column, or_, select, text
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.delivery.ledger import claim_cutoff, claimable
from digest.models import (
    Delivery,
    DeliveryItem,
    DeliveryStatus,
    EventKind,
    IngestRun,
    MailEvent,
    Paper,
    ReaderProfile,
    Subscriber,
    SubscriberState,
    TopicFilter,
    Vote,
    VoteSource,
)

DAYS = 30  # the span of every per-day series, today included
RUN_GAP_MINUTES = 10  # a pause longer than this with nothing sent or tried ends a send run
RUNS_SHOWN = 20
INGESTS_SHOWN = 20
TOP = 10  # rows of the top-filters and most-sent tables
LEARNED_SAMPLE = 1_000  # readers with a taste profile whose digests "learned order" reads item by item, at most
DAY, MINUTE = 86_400, 60
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
BEFORE = -1  # the bucket of a time before the window

OUTCOMES = ("sent", "skipped", "failed", "deferred")  # what a sender made of a ledger row
STATES = tuple(s.value for s in SubscriberState)
#: how a subscriber left (``subscribers.unsubscribe_method``, once the column exists); rows without one: "unknown"
METHODS = ("one_click", "link", "preferences", "complaint", "bounce", "admin", "import")
UNKNOWN = "unknown"
BOUNCE_KINDS = (EventKind.hard, EventKind.soft, EventKind.complaint)


# ---------------------------------------------------------------- buckets and windows


def no_jit(session: Session) -> None:
    """PostgreSQL, for the rest of this transaction: no JIT compilation, and sorts in memory.
    These scans of a few hundred thousand rows cost enough to trigger JIT, and compiling took a
    second per query (1.0 s of JIT for 20 ms of work on 100,000 subscribers); the per-minute
    grouping of 300,000 ledger rows sorted on disk with the default 4 MB of ``work_mem``."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))
        session.execute(text("SET LOCAL work_mem = '32MB'"))


def bucket(session: Session, column: ColumnElement, seconds: int) -> ColumnElement[int]:
    """Whole UTC periods of ``seconds`` since the epoch (day: 86,400; minute: 60), computed in SQL."""
    size = literal_column(str(int(seconds)))
    if session.get_bind().dialect.name == "postgresql":  # date_part: double precision (extract's numeric is slower)
        return cast(func.floor(func.date_part("epoch", column) / size), BigInteger)
    # SQLite stores UTC text; its / of two integers is integer division (SQLAlchemy's / and // are not that)
    return cast(func.strftime("%s", column), Integer).op("/", return_type=Integer)(size)


def day_number(day: date) -> int:
    return (day - EPOCH.date()).days


def day_of(number: int) -> date:
    return EPOCH.date() + timedelta(days=number)


def minute_of(number: int) -> datetime:
    return EPOCH + timedelta(minutes=number)


@dataclass(frozen=True)
class Window:
    """The UTC days ``start..end`` (inclusive): the last :data:`DAYS` days up to ``now``'s."""

    start: date
    end: date

    @classmethod
    def ending(cls, now: datetime, days: int = DAYS) -> Window:
        end = now.astimezone(timezone.utc).date()
        return cls(end - timedelta(days=days - 1), end)

    @property
    def since(self) -> datetime:
        return datetime.combine(self.start, datetime.min.time(), tzinfo=timezone.utc)

    @property
    def days(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    @property
    def numbers(self) -> range:
        return range(day_number(self.start), day_number(self.end) + 1)


def grouped(session: Session, columns: dict[str, ColumnElement], *where, aggregates: Sequence[tuple[str, object]] = ()) -> list:
    """``SELECT columns…, count(*) [, aggregates…] … GROUP BY columns``, the computed columns in a
    subquery. ``aggregates``: (function name, inner column name), e.g. ("min", "claimed")."""
    inner = select(*(expr.label(name) for name, expr in columns.items())).where(*where).subquery()
    keys = [inner.c[name] for name in columns if name not in {column for _, column in aggregates}]
    extra = [getattr(func, fn)(inner.c[name]) for fn, name in aggregates]
    return session.execute(select(*keys, func.count(), *extra).group_by(*keys)).all()


def _clamped(session: Session, column: ColumnElement, since: datetime, seconds: int = DAY) -> ColumnElement:
    """The bucket of ``column``; :data:`BEFORE` for a time before ``since``; NULL stays NULL."""
    return case((column < since, literal_column(str(BEFORE))), else_=bucket(session, column, seconds))


# ---------------------------------------------------------------- subscribers


@dataclass(frozen=True)
class SubscriberDays:
    window: Window
    states: dict[date, Counter]  # day -> state -> subscribers in it at the end of the day
    signups: Counter  # day -> new subscriber rows (an address's first sign-up)
    confirmations: Counter  # day -> confirmations (the latest of each subscriber)
    unsubscribes: dict[date, Counter]  # day -> method -> subscribers now unsubscribed who left that day
    methods: tuple[str, ...]  # the methods to show: one_click always, the others when they occur


def has_method_column() -> bool:
    """Whether the schema has ``subscribers.unsubscribe_method`` (migration 0012 adds it)."""
    return "unsubscribe_method" in Subscriber.__table__.c


def subscriber_days(session: Session, window: Window) -> SubscriberDays:
    """Subscribers by state at the end of each day, and sign-ups, confirmations and unsubscribes per
    day (by method): a grouped query over ``subscribers``, and one over the suppressed alone (they
    are dated by their last bounce or failed delivery: a look-up each, for them only)."""
    s = Subscriber
    last_report = (
        select(func.max(MailEvent.created_at)).where(MailEvent.subscriber_id == s.id, MailEvent.kind.in_(BOUNCE_KINDS)).scalar_subquery()
    )
    last_failure = (
        select(func.max(Delivery.claimed_at))
        .where(Delivery.subscriber_id == s.id, Delivery.status == DeliveryStatus.failed)
        .scalar_subquery()
    )
    since = window.since
    method = cast(s.__table__.c.unsubscribe_method, String) if has_method_column() else literal(None, String)  # its stored value

    def by_times(left_at: ColumnElement, *where) -> list:
        return grouped(
            session,
            {
                "state": cast(s.__table__.c.state, String),
                "created": _clamped(session, s.created_at, since),
                "confirmed": _clamped(session, s.confirmed_at, since),
                "left": _clamped(session, left_at, since),
                "method": method,
            },
            *where,
        )

    rows = by_times(
        case((s.state == SubscriberState.unsubscribed, func.coalesce(s.unsubscribed_at, s.created_at)), else_=None),
        s.state != SubscriberState.suppressed,
    ) + by_times(
        func.coalesce(s.unsubscribed_at, last_report, last_failure, s.confirmed_at, s.created_at),
        s.state == SubscriberState.suppressed,
    )
    days = window.days
    states: dict[date, Counter] = {d: Counter({state: 0 for state in STATES}) for d in days}
    signups, confirmations = Counter(), Counter()
    unsubscribes: dict[date, Counter] = {d: Counter() for d in days}
    seen = set()
    for state, created, confirmed, left, how, n in rows:
        if state == SubscriberState.active.value and confirmed is None:
            confirmed = created  # made active without a confirmation (an import): active since it was created
        for number, day in zip(window.numbers, days):
            if created > number:
                continue
            if left is not None and left <= number:
                states[day][state] += n
            elif confirmed is not None and confirmed <= number:
                states[day][SubscriberState.active.value] += n
            else:
                states[day][SubscriberState.pending.value] += n
        if created != BEFORE:
            signups[day_of(created)] += n
        if confirmed is not None and confirmed != BEFORE:
            confirmations[day_of(confirmed)] += n
        if state == SubscriberState.unsubscribed.value and left is not None and day_of(left) in unsubscribes:
            how = how or UNKNOWN
            unsubscribes[day_of(left)][how] += n
            seen.add(how)
    order = ("one_click", *(m for m in METHODS if m != "one_click" and m in seen), *sorted(seen - {*METHODS, UNKNOWN}))
    methods = (*order, UNKNOWN) if UNKNOWN in seen else order
    return SubscriberDays(window, states, signups, confirmations, unsubscribes, methods)


# ---------------------------------------------------------------- deliveries and runs


@dataclass(frozen=True)
class MinuteBucket:
    """What senders made of ledger rows in one UTC minute (by the rows' last activity)."""

    minute: int  # minutes since the epoch
    outcome: str  # one of OUTCOMES
    count: int
    first_claim: datetime | None
    last_activity: datetime | None
    first_id: int = 0  # the rows' ids, lowest and highest
    last_id: int = 0
    tasted: int = 0  # 1: rows of readers with a taste profile


@dataclass
class Run:
    """A send run: ledger activity with no pause longer than :data:`RUN_GAP_MINUTES` minutes."""

    first_minute: int
    last_minute: int
    counts: Counter = field(default_factory=Counter)  # outcome -> rows
    sent_per_minute: dict[int, int] = field(default_factory=dict)
    started: datetime | None = None  # the run's first claim
    ended: datetime | None = None  # its last send (or decision)
    first_id: int = 0  # its ledger rows' ids lie between these
    last_id: int = 0

    @property
    def duration(self) -> timedelta:
        if self.started is None or self.ended is None:
            return timedelta(0)
        return max(self.ended - self.started, timedelta(0))

    @property
    def rate(self) -> float:
        """Digests sent per second over the run's duration."""
        seconds = self.duration.total_seconds()
        return self.counts["sent"] / seconds if seconds > 0 else float(self.counts["sent"])

    def minutes(self) -> list[tuple[datetime, int]]:
        """(minute, digests sent in it) for every minute of the run, quiet ones included."""
        return [(minute_of(m), self.sent_per_minute.get(m, 0)) for m in range(self.first_minute, self.last_minute + 1)]


def delivery_minutes(session: Session, settings: Settings, since: datetime) -> list[MinuteBucket]:
    """The ledger's decided rows since ``since`` per minute and outcome: one grouped query, read
    once per session and ``since`` (the charts and the tables share it).

    Dated by ``sent_at``, else ``claimed_at`` (skipped, failed and deferred rows: their last claim).
    Every decided row was claimed, and is sent within the claim timeout of its claim, so
    ``claimed_at`` bounds the scan too (the ledger's ``status, claimed_at`` index)."""
    memo = session.info.setdefault(MEMO, {})
    if since not in memo:
        memo.clear()
        memo[since] = _delivery_minutes(session, settings, since)
    return memo[since]


MEMO = "digest.admin.delivery_minutes"


def forget(session: Session) -> None:
    """Read the ledger afresh next time (:func:`delivery_minutes` keeps what it read on the session)."""
    session.info.pop(MEMO, None)


def _delivery_minutes(session: Session, settings: Settings, since: datetime) -> list[MinuteBucket]:
    activity = func.coalesce(Delivery.sent_at, Delivery.claimed_at)
    deferred = and_(Delivery.status == DeliveryStatus.pending, Delivery.error.is_not(None), Delivery.claimed_at.is_not(None))
    rows = grouped(
        session,
        {
            "minute": bucket(session, activity, MINUTE),
            "outcome": case(
                (Delivery.status == DeliveryStatus.pending, literal("deferred", String)), else_=cast(Delivery.__table__.c.status, String)
            ),
            "tasted": case((Delivery.subscriber_id.in_(select(ReaderProfile.subscriber_id)), 1), else_=0),
            "claimed": Delivery.claimed_at,
            "activity": activity,
            "id": Delivery.id,
        },
        or_(Delivery.status.in_([DeliveryStatus.sent, DeliveryStatus.skipped, DeliveryStatus.failed]), deferred),
        Delivery.claimed_at >= since - timedelta(seconds=settings.claim_timeout),
        activity >= since,
        aggregates=(("min", "claimed"), ("max", "activity"), ("min", "id"), ("max", "id")),
    )
    return [MinuteBucket(int(m), outcome, n, first, last, low, high, tasted) for m, outcome, tasted, n, first, last, low, high in rows]


def detect_runs(buckets: Iterable[MinuteBucket], gap_minutes: int = RUN_GAP_MINUTES) -> list[Run]:
    """Send runs, oldest first: minutes of activity no more than ``gap_minutes`` quiet minutes apart."""
    runs: list[Run] = []
    for b in sorted(buckets, key=lambda b: b.minute):
        if not runs or b.minute - runs[-1].last_minute - 1 > gap_minutes:  # more quiet minutes between than the gap
            runs.append(Run(b.minute, b.minute))
        run = runs[-1]
        run.last_minute = max(run.last_minute, b.minute)
        run.counts[b.outcome] += b.count
        if b.outcome == "sent":
            run.sent_per_minute[b.minute] = run.sent_per_minute.get(b.minute, 0) + b.count
        first = b.first_claim or minute_of(b.minute)
        last = b.last_activity or minute_of(b.minute)
        run.started = first if run.started is None else min(run.started, first)
        run.ended = last if run.ended is None else max(run.ended, last)
        run.first_id = b.first_id if not run.first_id else min(run.first_id, b.first_id)
        run.last_id = max(run.last_id, b.last_id)
    return runs


def outcomes_by_day(buckets: Iterable[MinuteBucket], window: Window) -> dict[date, Counter]:
    """Per day: rows by outcome, and (``"tasted"``) the digests sent to readers with a taste profile."""
    days = {d: Counter({o: 0 for o in (*OUTCOMES, "tasted")}) for d in window.days}
    for b in buckets:
        day = day_of(b.minute * MINUTE // DAY)
        if day in days:
            days[day][b.outcome] += b.count
            if b.outcome == "sent" and b.tasted:
                days[day]["tasted"] += b.count
    return days


# ---------------------------------------------------------------- what came back, votes, taste


def mail_events_by_day(session: Session, window: Window) -> dict[date, Counter]:
    """Hard and soft bounces and complaints per day (``mail_events``: when each was reported)."""
    rows = grouped(
        session,
        {"day": bucket(session, MailEvent.created_at, DAY), "kind": cast(MailEvent.__table__.c.kind, String)},
        MailEvent.created_at >= window.since,
        MailEvent.kind.in_(BOUNCE_KINDS),
    )
    days = {d: Counter({k.value: 0 for k in BOUNCE_KINDS}) for d in window.days}
    for number, kind, n in rows:
        if day_of(number) in days:
            days[day_of(number)][kind] += n
    return days


def votes_by_day(session: Session, window: Window) -> dict[date, Counter]:
    """Votes per day, "more like this" (+1) and "less like this" (-1), as they stand (a changed vote
    counts on the day of its change, an undone one not at all; seed papers are not votes)."""
    rows = grouped(
        session,
        {"day": bucket(session, Vote.created_at, DAY), "vote": Vote.vote},
        Vote.created_at >= window.since,
        Vote.source == VoteSource.vote,
    )
    days = {d: Counter({"more": 0, "less": 0}) for d in window.days}
    for number, vote, n in rows:
        if day_of(number) in days:
            days[day_of(number)]["more" if vote > 0 else "less"] += n
    return days


@dataclass(frozen=True)
class LearnedOrder:
    days: dict[date, tuple[int, int]]  # day -> (digests examined, those whose first paper moved)
    readers: int  # readers with a taste profile now
    every: int  # 1: the digests of all of them examined; n: of those whose id is a multiple of n


def learned_order(session: Session, window: Window, sample: float = LEARNED_SAMPLE) -> LearnedOrder:
    """Per day of sending: the digests examined (of readers with a taste profile, with a trending
    section) and those whose first trending paper is not the first in trending order. One query,
    and a count.

    Each digest examined is read item by item (about 6 rows), so the work is bounded: beyond
    ``sample`` readers with a profile, the digests of an even sample of them are read (ids that are
    multiples of ``every``), and the chart says it is an estimate.

    A digest's trending section: its items whose paper's Daily Papers day is inside the digest's
    window (the New on arXiv section's papers have none there). "You may also like" papers, outside
    a reader's filters, come after the matched ones and rank after them here too.
    """
    readers = session.scalar(select(func.count()).select_from(ReaderProfile)) or 0
    every = max(1, math.ceil(readers / sample))
    examined = select(ReaderProfile.subscriber_id)
    if every > 1:
        examined = examined.where(ReaderProfile.subscriber_id % every == 0)
    postgres = session.get_bind().dialect.name == "postgresql"
    trending_rank = (
        case((DeliveryItem.matched_filter.is_(None), 1), else_=0),  # "you may also like" (no filter) after the matched
        Paper.upvotes.desc(),
        Paper.daily_date.desc(),
        Paper.published_at.desc().nulls_last(),
        Paper.arxiv_id.collate("C") if postgres else Paper.arxiv_id,  # rank_key compares code points
    )
    by = DeliveryItem.delivery_id
    items = (
        select(
            by.label("delivery_id"),
            bucket(session, Delivery.sent_at, DAY).label("day"),
            DeliveryItem.paper_id.label("paper_id"),
            func.row_number().over(partition_by=by, order_by=DeliveryItem.position).label("by_position"),
            func.row_number().over(partition_by=by, order_by=trending_rank).label("by_rank"),
        )
        .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
        .join(Paper, Paper.id == DeliveryItem.paper_id)
        .where(
            Delivery.status == DeliveryStatus.sent,
            Delivery.sent_at >= window.since,
            Delivery.subscriber_id.in_(examined),
            Paper.daily_date >= Delivery.window_start,
            Paper.daily_date <= Delivery.window_end,
        )
        .subquery()
    )
    per_digest = (
        select(
            items.c.day,
            func.max(case((items.c.by_position == 1, items.c.paper_id))).label("shown"),
            func.max(case((items.c.by_rank == 1, items.c.paper_id))).label("top"),
        )
        .group_by(items.c.delivery_id, items.c.day)
        .subquery()
    )
    rows = session.execute(
        select(per_digest.c.day, func.count(), func.sum(case((per_digest.c.shown != per_digest.c.top, 1), else_=0))).group_by(
            per_digest.c.day
        )
    ).all()
    days = {day_of(int(number)): (n, int(moved or 0)) for number, n, moved in rows if window.start <= day_of(int(number)) <= window.end}
    return LearnedOrder(days, readers, every)


# ---------------------------------------------------------------- tables


def ingest_runs(session: Session, limit: int = INGESTS_SHOWN) -> list[IngestRun]:
    """The latest ingests, newest first (a failed ingest stores nothing, so none is here)."""
    return list(session.scalars(select(IngestRun).order_by(IngestRun.started_at.desc(), IngestRun.id.desc()).limit(limit)))


def top_filters(session: Session, limit: int = TOP) -> list[tuple[str, int]]:
    """The filter lines most active readers hold, with how many hold each."""
    count = func.count().label("readers")
    return [
        (text, n)
        for text, n in session.execute(
            select(TopicFilter.text, count)
            .join(Subscriber, Subscriber.id == TopicFilter.subscriber_id)
            .where(Subscriber.state == SubscriberState.active)
            .group_by(TopicFilter.text)
            .order_by(count.desc(), TopicFilter.text)
            .limit(limit)
        )
    ]


def most_sent(session: Session, run: Run | None, limit: int = TOP) -> list[tuple[Paper, int]]:
    """The papers in the most digests ``run`` sent, with how many.

    One run, not a month: the items of a month of digests at 100,000 readers are some 18 million
    rows, and no index leads with ``paper_id`` (one would cost every send). A run's rows are read
    by primary-key range (its lowest to highest ledger id), about 600,000 items at that size."""
    if run is None or not run.counts["sent"]:
        return []
    count = func.count().label("digests")
    rows = session.execute(
        select(DeliveryItem.paper_id, count)
        .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
        .where(
            DeliveryItem.delivery_id.between(run.first_id, run.last_id),
            Delivery.id.between(run.first_id, run.last_id),
            Delivery.status == DeliveryStatus.sent,
            Delivery.sent_at >= minute_of(run.first_minute),
            Delivery.sent_at < minute_of(run.last_minute + 1),
        )
        .group_by(DeliveryItem.paper_id)
        .order_by(count.desc(), DeliveryItem.paper_id)
        .limit(limit)
    ).all()
    papers = {p.id: p for p in session.scalars(select(Paper).where(Paper.id.in_([paper_id for paper_id, _ in rows])))}
    return [(papers[paper_id], n) for paper_id, n in rows if paper_id in papers]


@dataclass(frozen=True)
class QueueDepth:
    ready: int  # pending, claimable now
    waiting: int  # pending, held back until their not_before (a domain's pace)
    claimed: int  # sending, claimed within DIGEST_CLAIM_TIMEOUT
    stuck: int  # sending, claimed before it: claimable again (a sender presumed dead)
    oldest_stuck: datetime | None


def queue_depth(session: Session, settings: Settings, now: datetime) -> QueueDepth:
    """Pending and claimed ledger rows, by :func:`digest.delivery.ledger.claimable`: one grouped query."""
    cutoff = claim_cutoff(settings, now)
    rows = grouped(
        session,
        {
            "status": cast(Delivery.__table__.c.status, String),
            "claimable": case((claimable(cutoff, now), 1), else_=0),
            "claimed": Delivery.claimed_at,
        },
        Delivery.status.in_([DeliveryStatus.pending, DeliveryStatus.sending]),
        aggregates=(("min", "claimed"),),
    )
    counts: Counter = Counter()
    oldest = None
    for status, able, n, first in rows:
        key = {("pending", 1): "ready", ("pending", 0): "waiting", ("sending", 0): "claimed", ("sending", 1): "stuck"}[(status, able)]
        counts[key] += n
        if key == "stuck" and first is not None:
            oldest = first if oldest is None else min(oldest, first)
    return QueueDepth(counts["ready"], counts["waiting"], counts["claimed"], counts["stuck"], oldest)
