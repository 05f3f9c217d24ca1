"""Votes and seeds in, taste profiles out; a batch's taste loaded in two queries.

``record_vote`` / ``remove_vote`` / ``add_seed`` / ``set_seeds`` write the reader's word on a paper
(``votes``: one row per reader and paper, so a second vote replaces the first and the same vote
twice changes nothing) and rebuild the reader's profile from all of it at once, in the caller's
transaction: a vote counts from the next digest on, with no nightly job. Rebuilding (a query and a
few hundred microseconds of numpy, :func:`digest.matching.taste.fit`) rather than updating
in place keeps the profile a pure function of the votes, so replacing or undoing a vote is exact.

:func:`load_taste` is what composing a batch calls: the candidates' vectors (cached per process
while the window stays the same) and the batch's profiles, scored all at once.

These functions live in matching, not subscribers, because delivery (below subscribers) must read
the profiles they write; see :mod:`digest.matching.taste`. Each function takes a session and ids,
never ORM objects from elsewhere, and leaves the commit to its caller.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digest.db import among
from digest.matching.scoring import Taste, Window
from digest.matching.taste import MAX_SIGNALS, Profile, Signal, fit
from digest.matching.trending import Candidates
from digest.models import Paper, PaperVector, ReaderProfile, Subscriber, Vote, VoteSource

log = logging.getLogger(__name__)


def _insert(session: Session):
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[session.get_bind().dialect.name]


def _lock_reader(session: Session, subscriber_id: int) -> None:
    """One writer per reader at a time, so two votes at once both end up in the profile."""
    if session.scalar(select(Subscriber.id).where(Subscriber.id == subscriber_id).with_for_update()) is None:
        raise LookupError(f"no subscriber {subscriber_id}")


def _put(session: Session, subscriber_id: int, paper_id: int, vote: int, source: VoteSource, now: datetime) -> None:
    stmt = _insert(session)(Vote).values(subscriber_id=subscriber_id, paper_id=paper_id, vote=vote, source=source, created_at=now)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[Vote.subscriber_id, Vote.paper_id],
            set_={"vote": stmt.excluded.vote, "source": stmt.excluded.source, "created_at": stmt.excluded.created_at},
        )
    )


def record_vote(session: Session, subscriber_id: int, paper_id: int, vote: int, now: datetime) -> Profile | None:
    """ "More like this" (``vote=1``) or "less like this" (``-1``) on a paper; replaces the reader's
    earlier vote or seed on it. Returns the new profile. The caller commits (and checks that the
    reader may vote on that paper: the link's signature, the digest it came from)."""
    if vote not in (1, -1):
        raise ValueError(f"a vote is +1 or -1, not {vote!r}")
    _lock_reader(session, subscriber_id)
    _put(session, subscriber_id, paper_id, vote, VoteSource.vote, now)
    return refresh_profile(session, subscriber_id, now)


def remove_vote(session: Session, subscriber_id: int, paper_id: int, now: datetime) -> Profile | None:
    """Undo: the reader's vote (or seed) on a paper is gone, and the profile is as if it never was."""
    _lock_reader(session, subscriber_id)
    session.execute(delete(Vote).where(Vote.subscriber_id == subscriber_id, Vote.paper_id == paper_id))
    return refresh_profile(session, subscriber_id, now)


def add_seed(session: Session, subscriber_id: int, paper_id: int, now: datetime) -> Profile | None:
    """A paper the reader named as one they like (the sign-up or preferences form)."""
    _lock_reader(session, subscriber_id)
    _put(session, subscriber_id, paper_id, 1, VoteSource.seed, now)
    return refresh_profile(session, subscriber_id, now)


def set_seeds(session: Session, subscriber_id: int, paper_ids: Iterable[int], now: datetime) -> Profile | None:
    """The form's list of seed papers replaces the reader's seeds (their votes stay)."""
    wanted = set(paper_ids)
    _lock_reader(session, subscriber_id)
    session.execute(
        delete(Vote).where(Vote.subscriber_id == subscriber_id, Vote.source == VoteSource.seed, Vote.paper_id.not_in(wanted or {-1}))
    )
    voted = set(session.scalars(select(Vote.paper_id).where(Vote.subscriber_id == subscriber_id, Vote.source == VoteSource.vote)))
    for paper_id in sorted(wanted - voted):
        _put(session, subscriber_id, paper_id, 1, VoteSource.seed, now)
    return refresh_profile(session, subscriber_id, now)


def seed_ids(session: Session, subscriber_id: int) -> list[str]:
    """The arXiv ids of the reader's seed papers, in the order they were given."""
    return list(
        session.scalars(
            select(Paper.arxiv_id)
            .join(Vote, Vote.paper_id == Paper.id)
            .where(Vote.subscriber_id == subscriber_id, Vote.source == VoteSource.seed)
            .order_by(Vote.created_at, Vote.paper_id)
        )
    )


def signals(session: Session, subscriber_id: int) -> list[Signal]:
    """The reader's latest ``MAX_SIGNALS`` votes and seeds with their papers' vectors, newest first
    (a paper without vectors yet does not count until it has them)."""
    rows = session.execute(
        select(Vote.paper_id, Paper.arxiv_id, Vote.vote, Vote.source, PaperVector.dense, PaperVector.sparse)
        .join(Paper, Paper.id == Vote.paper_id)
        .join(PaperVector, PaperVector.paper_id == Vote.paper_id)
        .where(Vote.subscriber_id == subscriber_id)
        .order_by(Vote.created_at.desc(), Vote.paper_id.desc())
        .limit(MAX_SIGNALS)
    )
    return [Signal(r.paper_id, r.arxiv_id, r.vote, r.source == VoteSource.seed, r.dense, r.sparse) for r in rows]


def refresh_profile(session: Session, subscriber_id: int, now: datetime) -> Profile | None:
    """Fit the reader's profile from their signals and store it (none left: no profile)."""
    profile = fit(signals(session, subscriber_id))
    if profile is None:
        session.execute(delete(ReaderProfile).where(ReaderProfile.subscriber_id == subscriber_id))
        return None
    stmt = _insert(session)(ReaderProfile).values(subscriber_id=subscriber_id, profile=profile.to_bytes(), updated_at=now)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[ReaderProfile.subscriber_id],
            set_={"profile": stmt.excluded.profile, "updated_at": stmt.excluded.updated_at},
        )
    )
    return profile


def load_profiles(session: Session, subscriber_ids: Iterable[int]) -> dict[int, Profile]:
    """The profiles of these readers that have one (one query). One that no longer decodes (an older
    format) counts as none until the reader's next vote rebuilds it."""
    ids = list(subscriber_ids)
    if not ids:
        return {}
    return decode_profiles(
        session.execute(select(ReaderProfile.subscriber_id, ReaderProfile.profile).where(among(session, ReaderProfile.subscriber_id, ids)))
    )


def decode_profiles(rows: Iterable[tuple[int, bytes | None]]) -> dict[int, Profile]:
    """``(subscriber id, stored profile or None)`` rows, as a query that joins ``reader_profiles``
    gives them, to the profiles of the readers that have one."""
    out: dict[int, Profile] = {}
    for subscriber_id, data in rows:
        if data is None or subscriber_id in out:
            continue
        try:
            out[subscriber_id] = Profile.from_bytes(data)
        except ValueError as exc:
            log.warning("profile of subscriber %s does not decode (%s); ignored", subscriber_id, exc)
    return out


_WINDOWS: dict[tuple, tuple[tuple, Window]] = {}
_WINDOWS_MAX = 8


def load_window(session: Session, papers: Sequence[Paper] | Candidates) -> Window:
    """The vectors of ``papers`` (in trending order) as a :class:`Window`, built once per process
    while they stay the same. Candidates from :func:`~digest.matching.trending.window_candidates`
    keep theirs (their version covers the vectors: no query once built); other papers are keyed
    by the database, the papers and their upvotes, and checked against the count and latest
    ``created_at`` of their vectors (one small query)."""
    if isinstance(papers, Candidates):
        if papers.versioned:
            if papers.window is None:
                papers.window = _build_window(session, papers.papers)
            return papers.window
        papers = papers.papers
    ids = [p.id for p in papers]
    window = among(session, PaperVector.paper_id, ids)
    version = tuple(session.execute(select(func.count(), func.max(PaperVector.created_at)).where(window)).one()) if ids else ()
    key = (str(session.get_bind().url), tuple((p.id, p.upvotes) for p in papers))
    cached = _WINDOWS.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    built = _build_window(session, papers)
    if len(_WINDOWS) >= _WINDOWS_MAX:
        _WINDOWS.clear()
    _WINDOWS[key] = (version, built)
    return built


def _build_window(session: Session, papers: Sequence[Paper]) -> Window:
    ids = [p.id for p in papers]
    vectors = {}
    if ids:
        rows = session.execute(
            select(PaperVector.paper_id, PaperVector.dense, PaperVector.sparse).where(among(session, PaperVector.paper_id, ids))
        )
        vectors = {r.paper_id: (r.dense, r.sparse) for r in rows}
    return Window([p.upvotes for p in papers], [vectors.get(i) for i in ids])


def load_taste(session: Session, papers: Sequence[Paper], subscriber_ids: Iterable[int], name: Callable[[str], str] | None = None) -> Taste:
    """A batch's taste: ``papers`` are the batch's candidates in trending order (``Matcher.papers``);
    every reader with a profile is scored against all of them at once (an N × M matrix). ``name``
    makes a liked paper's title what a "why" line says (:func:`liked_names`)."""
    profiles = load_profiles(session, subscriber_ids)
    return Taste(load_window(session, papers), profiles, names=liked_names(session, profiles, name) if name else None)


def liked_names(session: Session, profiles: Mapping[int, Profile], name: Callable[[str], str]) -> dict[int, str]:
    """``name(title)`` of every paper the profiles' "why" lines may cite (their liked and seed
    anchors), by paper id: one query for a batch, none when nobody has a profile."""
    ids = sorted({a.paper_id for p in profiles.values() for a in p.anchors if a.vote > 0})
    if not ids:
        return {}
    return {
        paper_id: name(title) for paper_id, title in session.execute(select(Paper.id, Paper.title).where(among(session, Paper.id, ids)))
    }


def day_between(day, start: date, end: date):
    """``day`` in ``start..end``; ``day`` a paper's day column (``Paper.daily_date``,
    ``Paper.announced_on``) or a tuple of them: a paper whose day is in it by any of them."""
    days = day if isinstance(day, tuple) else (day,)
    both = [and_(d >= start, d <= end) for d in days]
    return both[0] if len(both) == 1 else or_(*both)


def known_papers(session: Session, subscriber_ids: Iterable[int], start: date, end: date, day=Paper.daily_date) -> dict[int, set[int]]:
    """The papers whose ``day`` (Daily Papers day, or ``Paper.announced_on``, or a tuple of both:
    :func:`day_between`) is in ``start..end`` each reader voted on or named (seeds, ``like:``),
    which their digests never show: they know them (one query; readers without any are left out)."""
    ids = list(subscriber_ids)
    out: dict[int, set[int]] = {}
    if not ids or start > end:
        return out
    rows = session.execute(
        select(Vote.subscriber_id, Vote.paper_id)
        .join(Paper, Paper.id == Vote.paper_id)
        .where(among(session, Vote.subscriber_id, ids), day_between(day, start, end))
    )
    for subscriber_id, paper_id in rows:
        out.setdefault(subscriber_id, set()).add(paper_id)
    return out


def similar_papers(
    session: Session, paper_id: int, papers: Sequence[Paper], limit: int = 3, subscriber_id: int | None = None
) -> list[Paper]:
    """The ``limit`` papers of ``papers`` most like ``paper_id`` (its dense vector's cosine), nearest
    first, itself excluded, and every paper ``subscriber_id`` voted on or named: the page after a
    vote shows them."""
    dense = session.scalar(select(PaperVector.dense).where(PaperVector.paper_id == paper_id))
    if dense is None:
        return []
    window = load_window(session, papers)
    known = {paper_id}
    if subscriber_id is not None:
        known |= set(session.scalars(select(Vote.paper_id).where(Vote.subscriber_id == subscriber_id)))
    exclude = [i for i, p in enumerate(papers) if p.id in known]
    return [papers[i] for i in window.most_like(dense, limit, exclude=exclude)]
