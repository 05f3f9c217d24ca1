"""The one trending order, and a window's papers loaded and indexed in it.

Trending: the most upvoted first, then the more recent Daily Papers day, then the later
publication, then the arXiv id (:func:`rank_key`). Every list of papers a reader sees, in a digest
or on a page, is sorted by it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from digest.matching.corpus import Corpus
from digest.matching.topics import PaperText
from digest.models import Paper


def rank_key(paper: Paper) -> tuple:
    """Trending order as a sort key: upvotes, then the more recent day (its Daily Papers day, else
    its arXiv announcement day), then publication, then arXiv id."""
    published = paper.published_at.timestamp() if paper.published_at is not None else float("-inf")
    day = paper.daily_date or paper.announced_on
    return (-paper.upvotes, -day.toordinal() if day is not None else 0, -published, paper.arxiv_id)


def in_trending_order(papers: Sequence[Paper]) -> list[Paper]:
    """``papers`` sorted by :func:`rank_key` (in Python: one order whatever the backend's collation)."""
    return sorted(papers, key=rank_key)


def paper_text(paper: Paper) -> PaperText:
    return PaperText(
        title=paper.title,
        abstract=paper.abstract or "",
        authors=tuple(paper.authors or ()),
        org=paper.org_name or "",
        org_fullname=paper.org_fullname or "",
        upvotes=paper.upvotes,
        categories=tuple(paper.categories or ()),
        sources=sources(paper),
    )


def sources(paper: Paper) -> tuple[str, ...]:
    """Where a paper came from: "hf" (it was on a Daily Papers day), "arxiv" (an arXiv announcement
    listed it, or the arXiv API described it)."""
    hf = ("hf",) if paper.daily_date is not None else ()
    return (*hf, "arxiv") if paper.announced_on is not None or paper.categories else hf


def load_candidates(session: Session, start: date, end: date) -> list[Paper]:
    """Every paper of the days ``start..end`` (but one arXiv withdrew), in trending order (one query)."""
    if start > end:
        return []
    return in_trending_order(session.scalars(select(Paper).where(*_trending_window(start, end))).all())


@functools.lru_cache(maxsize=4)
def shared_corpus(source: str, texts: tuple[PaperText, ...]) -> Corpus:
    """One index per distinct candidate set, per process.

    Consecutive batches of a planning run share their window (the same day's papers, same
    upvotes), so a worker indexes those papers once, and each distinct filter is evaluated once
    for all its batches (the Corpus memoises evaluations), not once per batch of 100.
    A re-ingest that changes an upvote or an organisation makes a new key, so a new index.
    ``source`` names the database: what ``like:`` terms match (:mod:`digest.matching.similar`)
    depends on its papers beyond these.
    """
    return Corpus(list(texts))


class Candidates:
    """A window's papers in trending order, indexed: what every batch of a send run shares. The
    trending papers of its Daily Papers days, or (``section="arxiv"``) the papers arXiv announced as
    new on its days that did not trend on one of them."""

    def __init__(self, papers: Sequence[Paper], source: str = "", versioned: bool = False, section: str = "trending") -> None:
        self.section = section
        self.papers = list(papers)
        #: made by :func:`window_candidates`, whose version covers the papers' vectors too: their
        #: ``Window`` (:func:`digest.matching.profiles.load_window`) is then kept here, built once
        self.versioned = versioned
        self.window: object | None = None
        self.corpus = shared_corpus(source, tuple(paper_text(p) for p in self.papers))
        self.ids = [p.id for p in self.papers]  # by position
        self.position = {paper_id: i for i, paper_id in enumerate(self.ids)}
        self.by_day: dict[date, int] = {}
        for i, p in enumerate(self.papers):
            day = p.announced_on if section == "arxiv" else p.daily_date
            self.by_day[day] = self.by_day.get(day, 0) | 1 << i


_CANDIDATES: dict[tuple[str, date, date, str], tuple[tuple, Candidates]] = {}
_CANDIDATES_MAX = 8


def window_candidates(session: Session, start: date, end: date) -> Candidates:
    """The papers of ``start..end``, loaded and indexed once per process while they stay the same.

    Every batch of a run asks for the same window: one small query (how many papers, when the
    last ingest touched them) replaces loading and indexing them all again. An ingest stamps
    ``updated_at`` on every paper it fetched, and storing a paper's vectors stamps it too
    (:func:`digest.papers.vectors.represent`), so any refresh of the window or of its vectors
    makes a new version.
    """
    return _cached(session, start, end, "trending")


def arxiv_candidates(session: Session, start: date, end: date) -> Candidates:
    """The papers arXiv announced as new (or cross-listed) on the days ``start..end`` that are not
    trending papers of those days: the "New on arXiv" section's candidates, cached as
    :func:`window_candidates` caches its own. An arXiv paper that trends on Hugging Face later is a
    trending paper of that later day (the ledger keeps it from anyone who got it already)."""
    return _cached(session, start, end, "arxiv")


def _trending_window(start: date, end: date) -> tuple:
    return (Paper.daily_date >= start, Paper.daily_date <= end, Paper.withdrawn.is_(False))


def _arxiv_window(start: date, end: date) -> tuple:
    return (
        Paper.announced_on >= start,
        Paper.announced_on <= end,
        or_(Paper.daily_date.is_(None), Paper.daily_date < start, Paper.daily_date > end),
        Paper.withdrawn.is_(False),
    )


def _cached(session: Session, start: date, end: date, section: str) -> Candidates:
    window = _arxiv_window(start, end) if section == "arxiv" else _trending_window(start, end)
    version = tuple(session.execute(select(func.count(), func.max(Paper.updated_at)).where(*window)).one())
    key = (str(session.get_bind().url), start, end, section)
    cached = _CANDIDATES.get(key)
    if cached is not None and cached[0] == version:
        return cached[1]
    if start > end:
        papers = []
    elif section == "arxiv":
        papers = in_trending_order(session.scalars(select(Paper).where(*window)).all())
    else:
        papers = load_candidates(session, start, end)
    for paper in papers:  # kept beyond this session: a rollback must not expire them
        session.expunge(paper)
    candidates = Candidates(papers, key[0], versioned=True, section=section)
    if len(_CANDIDATES) >= _CANDIDATES_MAX:
        _CANDIDATES.clear()
    _CANDIDATES[key] = (version, candidates)
    return candidates
