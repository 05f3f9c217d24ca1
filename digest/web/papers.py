"""What the pages show of the papers: today's trending list and a preview of what filters match.

Each paper is shown as a card with what the digest's card shows (:func:`card`: the email's own
``paper_view``, so the pages and the email never disagree on a paper's title, summary or links).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.mail.cards import paper_view
from digest.matching.corpus import iter_bits
from digest.matching.explain import why_nothing
from digest.matching.scoring import order_near
from digest.matching.similar import like_ids, only_likes, prepare_likes
from digest.matching.topics import Filter
from digest.matching.trending import Candidates, arxiv_candidates, in_trending_order, window_candidates
from digest.models import Paper

PREVIEW_DAYS = 7
PREVIEW_LIMIT = 30


def paper_url(paper: Paper) -> str:
    return f"https://huggingface.co/papers/{paper.arxiv_id}"


def card(paper: Paper) -> dict:
    """What a paper's card shows: thumbnail, title (LaTeX as text), organisation and its avatar,
    authors, upvotes, comments, the AI summary (else the abstract's first sentences) and links.
    Links are http(s); images https only, as the pages' Content-Security-Policy allows."""
    view = paper_view(paper)
    for image in ("thumbnail", "org_avatar"):
        if view[image] and not view[image].lower().startswith("https://"):
            view[image] = None
    return view


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
    filters: tuple[Filter, ...] = ()  # every filter that matches it


@dataclass(frozen=True)
class Miss:
    filter: Filter
    reason: str  # which part of it matched nothing: "no paper in the last 7 days by Yann LeCun"


@dataclass(frozen=True)
class Section:
    """The papers arXiv announced as new on the window's days that did not trend on one of them
    (the digest's "New on arXiv" section), as the lines naming a category or a source match them."""

    first_day: date  # the preview's first day
    last_day: date  # its last, or arXiv's latest announcement day if that is later
    considered: int  # arXiv's new papers of those days
    matched: int  # of which those lines match
    matches: list[Match]  # the first of those in the digest's order, at most ``arxiv_limit``


@dataclass(frozen=True)
class Preview:
    first_day: date | None
    last_day: date | None
    considered: int  # papers in the window
    matched: int  # of which the filters match
    matches: list[Match]  # the most upvoted of those, at most ``limit``
    misses: list[Miss] = field(default_factory=list)  # the filters that match none of them, and why
    #: None when no line names a category or a source (``cat:``, ``source:``) or arXiv announced
    #: nothing new on the window's days: then the preview is the trending papers' alone
    arxiv: Section | None = None


def window_scope(first: date, last: date) -> str:
    """The papers of ``first..last``, for a sentence: "in the last 7 days", "on 3 December"."""
    days = (last - first).days + 1
    return f"in the last {days} days" if days > 1 else f"on {last.day} {last:%B}"


def preview(
    session: Session, filters: list[Filter], days: int = PREVIEW_DAYS, limit: int = PREVIEW_LIMIT, arxiv_limit: int = PREVIEW_LIMIT
) -> Preview:
    """Which papers of the last ``days`` Daily Papers days these filters match, most upvoted first;
    for a filter that matches none of them, which part of it matched nothing. The lines that name a
    category or a source are matched, as in a digest, against arXiv's new papers of those days (and
    of its latest announcement, when that is later) too (:attr:`Preview.arxiv`, at most
    ``arxiv_limit`` of them listed)."""
    recent = session.scalars(
        select(Paper.daily_date).where(Paper.daily_date.is_not(None)).distinct().order_by(Paper.daily_date.desc()).limit(days)
    ).all()
    if not recent:
        return Preview(None, None, 0, 0, [])
    first, last = min(recent), max(recent)
    candidates = window_candidates(session, first, last)  # indexed once per process, per window version
    prepare_likes(session, candidates, filters)
    papers, corpus = candidates.papers, candidates.corpus
    mask = corpus.match_any(filters)
    near = corpus.closeness(sorted(like_ids(filters))) if filters and all(only_likes(f) for f in filters) else None
    shown = order_near(iter_bits(mask), near[0])[:limit] if near else iter_bits(mask, limit)  # like: lines alone: nearest first
    matches = [Match(papers[i], corpus.first_match(filters, i), tuple(f for f in filters if corpus.evaluate(f) >> i & 1)) for i in shown]
    scope = window_scope(first, last)
    scoped = [f for f in filters if f.scoped]
    arxiv, arxiv_last = None, last
    if scoped:
        # arXiv announces at midnight UTC, hours before that day's Daily Papers fill up: its latest
        # announcement is often a day after the latest Daily Papers day, and it is the one to show
        latest = session.scalar(select(func.max(Paper.announced_on)).where(Paper.announced_on >= first))
        arxiv_last = max(last, latest) if latest is not None else last
        arxiv = arxiv_candidates(session, first, arxiv_last)
    if arxiv is None or not arxiv.papers:
        misses = [Miss(f, reason) for f in filters if (reason := why_nothing(corpus, f, scope)) is not None]
        return Preview(first, last, len(papers), mask.bit_count(), matches, misses)
    section = _section(session, arxiv, scoped, arxiv_limit, first, arxiv_last)
    misses = []
    for f in filters:
        if not f.scoped:
            reason = why_nothing(corpus, f, scope)
        elif corpus.evaluate(f) or arxiv.corpus.evaluate(f):
            reason = None
        else:  # a line for arXiv's new papers (mostly): why it matched none of those
            reason = why_nothing(arxiv.corpus, f, f"new on arXiv {window_scope(first, arxiv_last)}")
        if reason is not None:
            misses.append(Miss(f, reason))
    return Preview(first, last, len(papers), mask.bit_count(), matches, misses, section)


def _section(session: Session, candidates: Candidates, scoped: list[Filter], limit: int, first: date, last: date) -> Section:
    """arXiv's new papers that the lines naming a category or a source match, in the digest's order
    (:func:`digest.delivery.compose.compose` matches only those lines there, as here)."""
    prepare_likes(session, candidates, scoped)
    corpus = candidates.corpus
    mask = corpus.match_any(scoped)
    matches = [
        Match(candidates.papers[i], corpus.first_match(scoped, i), tuple(f for f in scoped if corpus.evaluate(f) >> i & 1))
        for i in iter_bits(mask, limit)
    ]
    return Section(first, last, len(candidates.papers), mask.bit_count(), matches)
