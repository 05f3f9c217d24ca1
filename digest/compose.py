"""Who gets which papers: digest windows, trending order, and matching by topic filters.

The cost of a batch is one pass over the candidate papers' text (building a
:class:`~digest.corpus.Corpus`) plus one evaluation per *distinct* filter; each recipient is then a
few bitset operations. Never subscribers × papers.

Windows
-------
A digest covers Daily Papers days (``Paper.daily_date``), an inclusive ``[start, end]`` range.

*The period's day* (``end``) is the latest Daily Papers day that had **ended** when the digest's
slot came, and for which papers are stored: ``max(daily_date <= slot's UTC date - 1)``.

- Daily Papers days are UTC days (``submittedOnDailyAt``), and papers keep arriving and collecting
  upvotes all day. Taking the local date of the slot instead would, at 07:00 in Berlin, send the
  first few hours of a day just begun, and the rest of that day would never be sent (the next
  window starts the day after). A finished day is complete and ranked by its real upvotes.
- Taking the latest day *with papers* (rather than the calendar day) means an ingest outage loses
  nothing: the window does not move past the data we have, and the digest after the outage covers
  the days that came in late. A day with no papers at all (a quiet weekend) costs nothing either.

``start`` is the day after the previous digest's ``end``: the latest ``window_end`` in the ledger for
this subscriber, whatever that row's status (a digest still pending or deferred has claimed its days
too, so two digests of one subscriber never cover the same day). A first digest covers the last day
(daily) or the last 7 days (weekly); so does one after a long gap (more than :data:`MAX_WINDOW_DAYS`,
e.g. a re-subscription months later). When nothing new has ended since the previous digest, the
window is empty (``start > end``) and the digest is skipped.
"""

from __future__ import annotations

import functools
import logging
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.db import among
from digest.models import Delivery, DeliveryItem, DeliveryStatus, Paper, TopicFilter
from digest.schedule import next_slot, period_of, slot_at_or_before
from digest.corpus import Corpus, iter_bits
from digest.topics import Filter, FilterError, PaperText, parse_filter

log = logging.getLogger(__name__)

FIRST_WINDOW_DAYS = {"daily": 1, "weekly": 7}
MAX_WINDOW_DAYS = {"daily": 7, "weekly": 14}
PAPER_DAYS_LOOKBACK = timedelta(days=60)  # how far back "the latest day with papers" is looked for


# ---------------------------------------------------------------- windows


def last_ended_day(slot: datetime) -> date:
    """The latest Daily Papers (UTC) day that had ended at ``slot``."""
    return slot.astimezone(timezone.utc).date() - timedelta(days=1)


def period_day(slot: datetime, paper_days: Sequence[date]) -> date:
    """The period's day: the latest day in ``paper_days`` (sorted) that had ended at ``slot``."""
    limit = last_ended_day(slot)
    i = bisect_right(paper_days, limit)
    return paper_days[i - 1] if i else limit


def window_for(frequency: str, end: date, previous_end: date | None) -> tuple[date, date]:
    """The inclusive day range a digest covers (empty when ``start > end``); see the module docs."""
    if previous_end is not None and (end - previous_end).days <= MAX_WINDOW_DAYS[frequency]:
        return previous_end + timedelta(days=1), max(end, previous_end)
    return end - timedelta(days=FIRST_WINDOW_DAYS[frequency] - 1), end


@dataclass(frozen=True)
class Due:
    """A digest to plan for one subscriber at one moment."""

    subscriber_id: int
    period: str
    slot: datetime
    window_start: date
    window_end: date
    next_due_at: datetime


def due_digest(
    subscriber_id: int,
    frequency: str,
    tz_name: str,
    hour: int,
    at: datetime,
    previous_end: date | None,
    paper_days: Sequence[date],
) -> Due:
    """The digest of the latest slot at or before ``at``, and when the one after it is due."""
    slot = slot_at_or_before(frequency, tz_name, hour, at)
    start, end = window_for(frequency, period_day(slot, paper_days), previous_end)
    return Due(
        subscriber_id=subscriber_id,
        period=period_of(frequency, tz_name, slot),
        slot=slot,
        window_start=start,
        window_end=end,
        next_due_at=next_slot(frequency, tz_name, hour, after=at),
    )


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


# ---------------------------------------------------------------- loading a batch


def trending_order():
    """ORDER BY for trending: upvotes, then the more recent day, then publication, then arXiv id."""
    return (
        Paper.upvotes.desc(),
        Paper.daily_date.desc(),
        Paper.published_at.desc().nulls_last(),
        Paper.arxiv_id,
    )


def rank_key(paper: Paper) -> tuple:
    """The same order in Python (for papers already loaded)."""
    published = paper.published_at.timestamp() if paper.published_at is not None else float("-inf")
    return (-paper.upvotes, -paper.daily_date.toordinal(), -published, paper.arxiv_id)


def load_candidates(session: Session, start: date, end: date) -> list[Paper]:
    """Every paper of the days ``start..end``, in trending order (one query)."""
    if start > end:
        return []
    papers = session.scalars(
        select(Paper).where(Paper.daily_date >= start, Paper.daily_date <= end).order_by(*trending_order())
    ).all()
    return sorted(papers, key=rank_key)  # one order whatever the backend's collation


def load_sent(session: Session, subscriber_ids: Iterable[int], start: date, end: date) -> dict[int, set[int]]:
    """Paper ids already mailed to each subscriber, among the days ``start..end`` (one query).

    Items of a delivery not ``sent`` (written for a batch before it went out) do not count.
    """
    ids = list(subscriber_ids)
    sent: dict[int, set[int]] = {i: set() for i in ids}
    if not ids or start > end:
        return sent
    rows = session.execute(
        select(DeliveryItem.subscriber_id, DeliveryItem.paper_id)
        .join(Paper, Paper.id == DeliveryItem.paper_id)
        .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
        .where(
            among(session, DeliveryItem.subscriber_id, ids),
            Paper.daily_date >= start,
            Paper.daily_date <= end,
            Delivery.status == DeliveryStatus.sent,
        )
    )
    for subscriber_id, paper_id in rows:
        sent[subscriber_id].add(paper_id)
    return sent


# ---------------------------------------------------------------- matching


class FilterCache:
    """Each distinct filter text parsed once. A stored filter that no longer parses matches nothing."""

    def __init__(self) -> None:
        self._cache: dict[str, Filter | None] = {}

    def get(self, text: str) -> Filter | None:
        try:
            return self._cache[text]
        except KeyError:
            pass
        try:
            compiled: Filter | None = parse_filter(text)
        except FilterError as exc:
            log.warning("stored filter %r does not parse (%s); it matches nothing", text, exc)
            compiled = None
        self._cache[text] = compiled
        return compiled


def paper_text(paper: Paper) -> PaperText:
    return PaperText(
        title=paper.title,
        abstract=paper.abstract or "",
        authors=tuple(paper.authors or ()),
        org=paper.org_name or "",
        org_fullname=paper.org_fullname or "",
        upvotes=paper.upvotes,
    )


@dataclass(frozen=True)
class Pick:
    """One paper in one digest; ``matched`` is the subscriber's filter text (None: no filters)."""

    paper: Paper
    matched: str | None


@dataclass(frozen=True)
class Recipient:
    subscriber_id: int
    filters: tuple[str, ...]  # filter texts in the subscriber's order; () = all papers
    window_start: date
    window_end: date


@functools.lru_cache(maxsize=4)
def shared_corpus(texts: tuple[PaperText, ...]) -> Corpus:
    """One index per distinct candidate set, per process.

    Consecutive batches of a planning run share their window (the same day's papers, same
    upvotes), so a worker indexes those papers once, and each distinct filter is evaluated once
    for all its batches (the Corpus memoises evaluations), not once per batch of 100.
    A re-ingest that changes an upvote or an organisation makes a new key, so a new index.
    """
    return Corpus(list(texts))


class Candidates:
    """A window's papers in trending order, indexed: what every batch of a send run shares."""

    def __init__(self, papers: Sequence[Paper]) -> None:
        self.papers = list(papers)
        self.corpus = shared_corpus(tuple(paper_text(p) for p in self.papers))
        self.position = {p.id: i for i, p in enumerate(self.papers)}
        self.by_day: dict[date, int] = {}
        for i, p in enumerate(self.papers):
            self.by_day[p.daily_date] = self.by_day.get(p.daily_date, 0) | 1 << i


_CANDIDATES: dict[tuple[str, date, date], tuple[tuple, Candidates]] = {}
_CANDIDATES_MAX = 8


def window_candidates(session: Session, start: date, end: date) -> Candidates:
    """The papers of ``start..end``, loaded and indexed once per process while they stay the same.

    Every batch of a run asks for the same window: one small query (how many papers, when the
    last ingest touched them) replaces loading and indexing them all again. An ingest stamps
    ``updated_at`` on every paper it fetched, so any refresh of the window makes a new version.
    """
    window = (Paper.daily_date >= start, Paper.daily_date <= end)
    version = tuple(session.execute(select(func.count(), func.max(Paper.updated_at)).where(*window)).one())
    key = (str(session.get_bind().url), start, end)
    cached = _CANDIDATES.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    papers = load_candidates(session, start, end)
    for paper in papers:  # kept beyond this session: a rollback must not expire them
        session.expunge(paper)
    candidates = Candidates(papers)
    if len(_CANDIDATES) >= _CANDIDATES_MAX:
        _CANDIDATES.clear()
    _CANDIDATES[key] = (version, candidates)
    return candidates


class Matcher:
    """One batch's candidate papers in trending order, indexed once for every recipient."""

    def __init__(self, papers: Sequence[Paper] | Candidates, filters: FilterCache | None = None) -> None:
        candidates = papers if isinstance(papers, Candidates) else Candidates(papers)
        self.papers = candidates.papers
        self.corpus = candidates.corpus
        self.filters = filters or FilterCache()
        self._position = candidates.position
        self._by_day = candidates.by_day
        self._windows: dict[tuple[date, date], int] = {}

    def window_mask(self, start: date, end: date) -> int:
        mask = self._windows.get((start, end))
        if mask is None:
            mask = 0
            for day, bits in self._by_day.items():
                if start <= day <= end:
                    mask |= bits
            self._windows[(start, end)] = mask
        return mask

    def select(self, recipient: Recipient, already_sent: set[int], size: int) -> list[Pick]:
        """The top ``size`` papers of the window matching any filter, never one in ``already_sent``."""
        mask = self.window_mask(recipient.window_start, recipient.window_end)
        if not mask:
            return []
        for paper_id in already_sent:
            position = self._position.get(paper_id)
            if position is not None:
                mask &= ~(1 << position)
        compiled: list[Filter] = []
        if recipient.filters:
            compiled = [f for f in map(self.filters.get, recipient.filters) if f is not None]
            mask &= self.corpus.match_any(compiled) if compiled else 0
        picks = []
        for position in iter_bits(mask, size):
            matched = self.corpus.first_match(compiled, position) if compiled else None
            picks.append(Pick(self.papers[position], matched.text if matched is not None else None))
        return picks


def select_for(
    matcher: Matcher, recipients: Sequence[tuple[object, Recipient]], sent: dict[int, set[int]], size: int
) -> dict[object, list[Pick]]:
    """Picks per key, in the given order; a paper picked for a subscriber counts as sent for the
    rest of the batch (two digests of one subscriber in one batch never share a paper)."""
    out: dict[object, list[Pick]] = {}
    for key, recipient in recipients:
        already = sent.setdefault(recipient.subscriber_id, set())
        picks = matcher.select(recipient, already, size)
        already.update(p.paper.id for p in picks)
        out[key] = picks
    return out


def load_filters(session: Session, subscriber_ids: Iterable[int]) -> dict[int, tuple[str, ...]]:
    """Each subscriber's filter texts in their order (one query)."""
    ids = list(subscriber_ids)
    out: dict[int, list[str]] = {i: [] for i in ids}
    if ids:
        rows = session.execute(
            select(TopicFilter.subscriber_id, TopicFilter.text)
            .where(among(session, TopicFilter.subscriber_id, ids))
            .order_by(TopicFilter.subscriber_id, TopicFilter.position)
        )
        for subscriber_id, text in rows:
            out[subscriber_id].append(text)
    return {i: tuple(texts) for i, texts in out.items()}


def compose(
    session: Session, recipients: Sequence[tuple[object, Recipient]], size: int, filters: FilterCache | None = None
) -> dict[object, list[Pick]]:
    """The papers of every recipient of a batch, in two queries whatever the batch size.

    ``recipients`` are ``(key, Recipient)`` pairs, in the order their digests go out (a subscriber's
    older digest first). The candidates are the papers of the union of the windows.
    """
    windows = [(r.window_start, r.window_end) for _, r in recipients if r.window_start <= r.window_end]
    if not windows:
        return {key: [] for key, _ in recipients}
    start, end = min(w[0] for w in windows), max(w[1] for w in windows)
    matcher = Matcher(window_candidates(session, start, end), filters)
    sent = load_sent(session, {r.subscriber_id for _, r in recipients}, start, end)
    return select_for(matcher, recipients, sent, size)
