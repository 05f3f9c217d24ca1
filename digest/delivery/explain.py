"""``digest explain EMAIL``: the candidates of one reader's next digest, ranked, with the parts of
each score (trending, personal, the personal weight, final) and the filter that matched. Reads only.

The same pieces a send uses (:mod:`digest.delivery.schedule` for the window, :mod:`digest.delivery.compose`
for the filters and the papers already sent, :class:`digest.matching.select.Matcher` and the batch's
taste), for one reader: what it says is what the digest would show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.delivery.compose import load_filters, load_sent
from digest.delivery.planning import paper_days, previous_ends
from digest.delivery.schedule import due_digest
from digest.matching.corpus import iter_bits
from digest.matching.profiles import load_taste
from digest.matching.scoring import ScoreParts
from digest.matching.select import Matcher, Recipient
from digest.matching.similar import prepare_likes
from digest.matching.trending import window_candidates
from digest.models import Paper, Subscriber

OUTSIDE = "outside filters"


@dataclass(frozen=True)
class Candidate:
    """One unsent paper of the window, in the reader's order."""

    paper: Paper
    parts: ScoreParts
    matched: str  # the filter that matched, "all papers" without filters, or OUTSIDE
    why: str | None
    shown: str | None  # "digest", "also like" (You may also like), None: not in this digest


@dataclass(frozen=True)
class Explanation:
    email: str
    at: datetime
    period: str
    window: tuple[date, date]
    filters: tuple[str, ...]
    signals: int  # the reader's votes and seeds in their profile (0: no profile, today's order)
    candidates: list[Candidate]


def explain(session: Session, email: str, size: int, at: datetime | None = None) -> Explanation | None:
    """The reader ``email``'s digest due next (or the one due at ``at``); None: no such reader."""
    row = session.execute(
        select(Subscriber.id, Subscriber.frequency, Subscriber.timezone, Subscriber.delivery_hour, Subscriber.next_due_at).where(
            Subscriber.email == email
        )
    ).one_or_none()
    if row is None:
        return None
    moment = at or row.next_due_at or datetime.now(timezone.utc)
    due = due_digest(
        row.id,
        row.frequency.value,
        row.timezone,
        row.delivery_hour,
        moment,
        previous_ends(session, [row.id]).get(row.id),
        paper_days(session, moment),
    )
    filters = load_filters(session, [row.id])[row.id]
    start, end = due.window_start, due.window_end
    explanation = Explanation(email, moment, due.period, (start, end), filters, 0, [])
    if start > end:
        return explanation
    candidates = window_candidates(session, start, end)
    matcher = Matcher(candidates)
    compiled = [f for f in map(matcher.filters.get, filters) if f is not None]
    prepare_likes(session, candidates, compiled)
    sent = load_sent(session, [row.id], start, end)[row.id]
    taste = load_taste(session, matcher.papers, [row.id])
    picks = matcher.select(Recipient(row.id, filters, start, end), set(sent), size, taste)
    shown = {p.paper.id: "also like" if p.also else "digest" for p in picks}
    positions = [i for i in iter_bits(matcher.window_mask(start, end)) if matcher.papers[i].id not in sent]
    candidates = []
    for position in taste.order(row.id, positions):
        paper = matcher.papers[position]
        if not filters:
            matched = "all papers"
        else:
            first = matcher.corpus.first_match(compiled, position) if compiled else None
            matched = first.text if first is not None else OUTSIDE
        candidates.append(Candidate(paper, taste.parts(row.id, position), matched, taste.why(row.id, position), shown.get(paper.id)))
    profile = taste.profiles.get(row.id)
    return Explanation(email, moment, due.period, (start, end), filters, profile.signals if profile else 0, candidates)
