"""What the pages show of the papers: today's trending list and a preview of what filters match."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.matching.corpus import Corpus, iter_bits
from digest.matching.topics import Filter
from digest.matching.trending import in_trending_order, paper_text
from digest.models import Paper

PREVIEW_DAYS = 7
PREVIEW_LIMIT = 30


def paper_url(paper: Paper) -> str:
    return f"https://huggingface.co/papers/{paper.arxiv_id}"


def short_authors(paper: Paper, limit: int = 3) -> str:
    names = list(paper.authors or [])
    if len(names) <= limit:
        return ", ".join(names)
    return ", ".join(names[:limit]) + f" and {len(names) - limit} more"


@dataclass(frozen=True)
class Trending:
    day: date | None
    papers: list[Paper]


def trending(session: Session, limit: int = 5) -> Trending:
    """The most upvoted papers of the latest Daily Papers day in the database."""
    day = session.scalar(select(func.max(Paper.daily_date)))
    if day is None:
        return Trending(None, [])
    papers = in_trending_order(session.scalars(select(Paper).where(Paper.daily_date == day)).all())
    return Trending(day, papers[:limit])


@dataclass(frozen=True)
class Match:
    paper: Paper
    matched: Filter | None  # None: no filters, every trending paper is in


@dataclass(frozen=True)
class Preview:
    first_day: date | None
    last_day: date | None
    considered: int  # papers in the window
    matched: int  # of which the filters match
    matches: list[Match]  # the most upvoted of those, at most ``limit``


def preview(session: Session, filters: list[Filter], days: int = PREVIEW_DAYS, limit: int = PREVIEW_LIMIT) -> Preview:
    """Which papers of the last ``days`` Daily Papers days these filters match, most upvoted first."""
    recent = session.scalars(select(Paper.daily_date).distinct().order_by(Paper.daily_date.desc()).limit(days)).all()
    if not recent:
        return Preview(None, None, 0, 0, [])
    papers = in_trending_order(session.scalars(select(Paper).where(Paper.daily_date.in_(recent))).all())
    corpus = Corpus([paper_text(p) for p in papers])
    mask = corpus.match_any(filters)
    matches = [Match(papers[i], corpus.first_match(filters, i)) for i in iter_bits(mask, limit)]
    return Preview(min(recent), max(recent), len(papers), mask.bit_count(), matches)
