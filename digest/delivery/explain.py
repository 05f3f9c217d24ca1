"""``digest explain EMAIL``: the candidates of one reader's next digest, ranked, with the parts of
each score (trending, personal, the personal weight, final) and the filter that matched, beside the
reader's votes and seeds as they are stored. Reads only.

The same pieces a send uses (:mod:`digest.delivery.schedule` for the window, :mod:`digest.delivery.compose`
for the filters and what a digest leaves out, :class:`digest.matching.select.Matcher` and the batch's
taste), for one reader: what it says is what the digest would show.

Right after a send, the next digest usually has no papers yet (its window starts the day after the
one just sent, and that day is not ingested). Then the explanation looks at the window of the
reader's last digest instead, and says so: its papers ranked as the reader's profile orders them
now, each marked as sent or known, so a vote's effect is visible before the next day arrives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.delivery.compose import load_filters, load_sent, scoped_lines
from digest.delivery.planning import paper_days, previous_ends
from digest.delivery.schedule import due_digest
from digest.mail.latex import readable, short_title
from digest.matching.corpus import iter_bits
from digest.matching.profiles import known_papers, load_profiles, load_taste
from digest.matching.scoring import ScoreParts
from digest.matching.select import FilterCache, Matcher, Recipient
from digest.matching.similar import prepare_likes
from digest.matching.trending import Candidates, arxiv_candidates, window_candidates
from digest.models import Delivery, Paper, Subscriber, Vote, VoteSource

OUTSIDE = "outside filters"


@dataclass(frozen=True)
class Candidate:
    """One paper of the window looked at, in the reader's order."""

    paper: Paper
    title: str  # as the email shows it (LaTeX as text)
    parts: ScoreParts
    matched: str  # the filter that matched, "all papers" without filters, or OUTSIDE
    why: str | None
    #: "digest", "also like" (You may also like): in the next digest; "sent": mailed to the reader
    #: already; "known": the reader voted on it or named it; None: a candidate this digest leaves out
    shown: str | None


@dataclass(frozen=True)
class Signal:
    """A vote or a seed as stored."""

    arxiv_id: str
    title: str
    kind: str  # "more", "less" or "seed"
    at: datetime


@dataclass(frozen=True)
class Explanation:
    email: str
    at: datetime
    period: str
    window: tuple[date, date]  # the next digest's Daily Papers days (start > end: none yet)
    looked_at: tuple[date, date] | None  # the days whose papers are ranked below (None: none)
    note: str | None  # why the window looked at is not the next digest's, or why it is empty
    filters: tuple[str, ...]
    votes: list[Signal]  # the reader's votes and seeds, newest first
    signals: int  # of them, those in the profile (0: no profile, today's trending order)
    candidates: list[Candidate]
    chosen: bool = False  # ``looked_at`` is the days asked for (``--window``), ranked as a digest of them
    #: the papers arXiv announced as new on those days that the reader's ``cat:``/``source:`` lines
    #: match, in their order ("New on arXiv"); empty without such lines
    arxiv: list[Candidate] = field(default_factory=list)

    @property
    def considered(self) -> int:
        """Candidates the digest chooses among (not sent, not known; none when the papers ranked
        are the last digest's window, the next one having none yet)."""
        if self.looked_at != self.window and not self.chosen:
            return 0
        return sum(1 for c in self.candidates if c.shown not in ("sent", "known"))


def stored_signals(session: Session, subscriber_id: int) -> list[Signal]:
    rows = session.execute(
        select(Paper.arxiv_id, Paper.title, Vote.vote, Vote.source, Vote.created_at)
        .join(Paper, Paper.id == Vote.paper_id)
        .where(Vote.subscriber_id == subscriber_id)
        .order_by(Vote.created_at.desc(), Vote.paper_id.desc())
    )
    return [
        Signal(
            r.arxiv_id,
            short_title(r.title, 60),
            "seed" if r.source == VoteSource.seed else ("more" if r.vote > 0 else "less"),
            r.created_at,
        )
        for r in rows
    ]


def explain(
    session: Session,
    email: str,
    size: int,
    at: datetime | None = None,
    days: tuple[date, date] | None = None,
    arxiv_size: int = 10,
) -> Explanation | None:
    """The reader ``email``'s digest due next (or the one due at ``at``); None: no such reader.
    ``days``: rank the papers of those Daily Papers days as a digest of them would, leaving out what
    was sent to the reader or what they know (the effect of a vote, without a new day of papers)."""
    row = session.execute(
        select(Subscriber.id, Subscriber.frequency, Subscriber.timezone, Subscriber.delivery_hour, Subscriber.next_due_at).where(
            Subscriber.email == email
        )
    ).one_or_none()
    if row is None:
        return None
    moment = at or row.next_due_at or datetime.now(timezone.utc)
    previous = previous_ends(session, [row.id]).get(row.id)
    due = due_digest(row.id, row.frequency.value, row.timezone, row.delivery_hour, moment, previous, paper_days(session, moment))
    filters = load_filters(session, [row.id])[row.id]
    votes = stored_signals(session, row.id)
    start, end = due.window_start, due.window_end
    look: tuple[date, date] | None = (start, end)
    note = None
    if days is not None:
        look, note = days, f"papers of {_days(*days)} ranked as a digest of them would be, leaving out what you were sent or named"
    elif start > end:
        last = session.execute(
            select(Delivery.window_start, Delivery.window_end)
            .where(Delivery.subscriber_id == row.id)
            .order_by(Delivery.window_end.desc(), Delivery.id.desc())
            .limit(1)
        ).one_or_none()
        after = f"the day after {previous}" if previous else "its first day"
        if last is None:
            look, note = None, f"the next digest has no papers: no Daily Papers day up to {moment:%Y-%m-%d} is stored yet"
        else:
            look = (last.window_start, last.window_end)
            note = (
                f"the next digest's papers start {after}, which is not ingested yet; "
                f"ranked below: the papers of your last digest ({_days(*look)}), as your votes order them now"
            )
    if look is None:
        profile = load_profiles(session, [row.id]).get(row.id)  # no papers to score
        return Explanation(email, moment, due.period, (start, end), None, note, filters, votes, profile.signals if profile else 0, [])

    lo, hi = look
    own = look == (start, end) or days is not None  # the digest's own window: what it would pick
    out = _ranked(session, window_candidates(session, lo, hi), row.id, filters, look, size if own else 0)
    cache = FilterCache()
    scoped = scoped_lines(cache, filters)
    arxiv = _ranked(session, arxiv_candidates(session, lo, hi), row.id, scoped, look, arxiv_size if own else 0) if scoped else []
    if note is None and out and all(c.shown in ("sent", "known") for c in out):
        note = "every paper of this window was sent to you already or is one you voted on or named"
    elif note is None and not out:
        note = f"no papers stored for {_days(lo, hi)}"
    profile = load_profiles(session, [row.id]).get(row.id)
    return Explanation(
        email,
        moment,
        due.period,
        (start, end),
        look,
        note,
        filters,
        votes,
        profile.signals if profile else 0,
        out,
        chosen=days is not None,
        arxiv=arxiv,
    )


def _ranked(session: Session, candidates: Candidates, subscriber_id: int, filters: tuple[str, ...], look, size: int) -> list[Candidate]:
    """One section's candidates in the reader's order, marked as the digest would show them (with
    ``size`` > 0: what it picks). The arXiv section lists only the papers its lines match (a day of
    arXiv is thousands of papers), each naming its categories."""
    lo, hi = look
    day = Paper.announced_on if candidates.section == "arxiv" else Paper.daily_date
    matcher = Matcher(candidates)
    compiled = [f for f in map(matcher.filters.get, filters) if f is not None]
    prepare_likes(session, candidates, compiled, short_title)
    sent = load_sent(session, [subscriber_id], lo, hi, day)[subscriber_id]
    known = known_papers(session, [subscriber_id], lo, hi, day).get(subscriber_id, set())
    taste = load_taste(session, matcher.papers, [subscriber_id], short_title)
    shown: dict[int, str] = {}
    if size:
        picks = matcher.select(Recipient(subscriber_id, filters, lo, hi), sent | known, size, taste)  # what compose.exclusions leaves out
        shown = {p.paper.id: "also like" if p.also else "digest" for p in picks}
    mask = matcher.window_mask(lo, hi)
    if candidates.section == "arxiv":
        mask &= matcher.corpus.match_any(compiled) | sum(1 << candidates.position[i] for i in shown)
    out = []
    for position in taste.order(subscriber_id, list(iter_bits(mask))):
        paper = matcher.papers[position]
        if not filters:
            matched = "all papers"
        else:
            first = matcher.corpus.first_match(compiled, position) if compiled else None
            matched = first.text if first is not None else OUTSIDE
        if candidates.section == "arxiv":
            matched += f" · {in_categories(paper)}"
        status = "sent" if paper.id in sent else "known" if paper.id in known else shown.get(paper.id)
        why = taste.why(subscriber_id, position) if paper.id not in known else None  # a paper they voted on or named is not "like itself"
        out.append(Candidate(paper, readable(" ".join(paper.title.split())), taste.parts(subscriber_id, position), matched, why, status))
    return out


def in_categories(paper: Paper) -> str:
    """Where arXiv lists a paper: "in cs.CL" or "in cs.LG, cross-listed in cs.CL, stat.ML"."""
    primary, *rest = paper.categories or [paper.primary_category or "?"]
    return f"in {primary}" + (f", cross-listed in {', '.join(rest)}" if rest else "")


def _days(start: date, end: date) -> str:
    return f"{start}" if start == end else f"{start}..{end}"
