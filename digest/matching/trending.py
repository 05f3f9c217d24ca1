"""The one trending order, and a window's papers loaded and indexed in it.

Trending: the most upvoted first, then the more recent Daily Papers day, then the later
publication, then the arXiv id (:func:`rank_key`). Every list of papers a reader sees, in a digest
or on a page, is sorted by it.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.matching.corpus import Corpus
from digest.matching.topics import PaperText
from digest.models import Paper


def rank_key(paper: Paper) -> tuple:
    """Trending order as a sort key: upvotes, then the more recent day, then publication, then arXiv id."""
    published = paper.published_at.timestamp() if paper.published_at is not None else float("-inf")
    return (-paper.upvotes, -paper.daily_date.toordinal(), -published, paper.arxiv_id)


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
    )


def load_candidates(session: Session, start: date, end: date) -> list[Paper]:
    """Every paper of the days ``start..end``, in trending order (one query)."""
    if start > end:
        return []
    return in_trending_order(session.scalars(select(Paper).where(Paper.daily_date >= start, Paper.daily_date <= end)).all())


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
    """A window's papers in trending order, indexed: what every batch of a send run shares."""

    def __init__(self, papers: Sequence[Paper], source: str = "", versioned: bool = False) -> None:
        self.papers = list(papers)
        #: made by :func:`window_candidates`, whose version covers the papers' vectors too: their
        #: ``Window`` (:func:`digest.matching.profiles.load_window`) is then kept here, built once
        self.versioned = versioned
        self.window: object | None = None
        self.corpus = shared_corpus(source, tuple(paper_text(p) for p in self.papers))
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
    ``updated_at`` on every paper it fetched, and storing a paper's vectors stamps it too
    (:func:`digest.papers.vectors.represent`), so any refresh of the window or of its vectors
    makes a new version.
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
    candidates = Candidates(papers, key[0], versioned=True)
    if len(_CANDIDATES) >= _CANDIDATES_MAX:
        _CANDIDATES.clear()
    _CANDIDATES[key] = (version, candidates)
    return candidates
