"""Who gets which papers: a batch's readers matched against the papers of their windows, never a
paper a reader was already sent (the windows themselves are in :mod:`digest.delivery.schedule`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db import among
from digest.mail.latex import short_title
from digest.matching.profiles import day_between, known_papers, liked_names, load_profiles, load_window
from digest.matching.scoring import Taste
from digest.matching.select import FilterCache, Matcher, Pick, Recipient, select_for
from digest.matching.similar import prepare_likes
from digest.matching.taste import Profile
from digest.matching.trending import Candidates, arxiv_candidates, window_candidates
from digest.models import Delivery, DeliveryItem, DeliveryStatus, Paper, TopicFilter


def load_sent(session: Session, subscriber_ids: Iterable[int], start: date, end: date, day=Paper.daily_date) -> dict[int, set[int]]:
    """Paper ids already mailed to each subscriber, among the papers whose ``day`` (their Daily Papers
    day, or ``Paper.announced_on``: their arXiv announcement day; or a tuple of both, either in it)
    is in ``start..end`` (one query).

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
            day_between(day, start, end),
            Delivery.status == DeliveryStatus.sent,
        )
    )
    for subscriber_id, paper_id in rows:
        sent[subscriber_id].add(paper_id)
    return sent


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
    session: Session,
    recipients: Sequence[tuple[object, Recipient]],
    size: int,
    filters: FilterCache | None = None,
    profiles: Mapping[int, Profile] | None = None,
    arxiv_size: int = 10,
) -> dict[object, list[Pick]]:
    """The papers of every recipient of a batch, in a few queries whatever the batch size.

    ``recipients`` are ``(key, Recipient)`` pairs, in the order their digests go out (a subscriber's
    older digest first). The candidates are the papers of the union of the windows; the batch's
    taste profiles (votes and seeds) order each reader's matches, all scored at once: ``profiles``
    as the caller read them with its own rows (:func:`digest.matching.profiles.decode_profiles`), else
    one query (:func:`~digest.matching.profiles.load_profiles`); then, when a reader has one, the
    window's vectors, cached per process while the window stays the same.

    Two sections, each its own candidates, order and cap: the trending papers of the windows
    (``size``: what every reader gets, as before arXiv was a source), then, for readers with a line
    naming a category or a source (``cat:``, ``source:``), the papers arXiv announced as new on those
    days (``arxiv_size``; their lines that name one are matched there). A batch where nobody names
    one never reads arXiv's papers.
    """
    windows = [(r.window_start, r.window_end) for _, r in recipients if r.window_start <= r.window_end]
    if not windows:
        return {key: [] for key, _ in recipients}
    start, end = min(w[0] for w in windows), max(w[1] for w in windows)
    filters = filters or FilterCache()
    subscriber_ids = {r.subscriber_id for _, r in recipients}
    if profiles is None:
        profiles = load_profiles(session, subscriber_ids)  # a batch where nobody voted skips the vectors
    names = liked_names(session, profiles, short_title) if profiles else {}
    scoped = [(key, replace(r, filters=lines)) for key, r in recipients if (lines := scoped_lines(filters, r.filters))]
    trending = _section(session, window_candidates(session, start, end), recipients, filters, profiles, names)
    # one read of what each reader got or knows for both sections: a paper of the window by its Daily
    # Papers day or by its announcement; each section's candidates are of one of the two kinds only
    sent = exclusions(session, subscriber_ids, start, end, (Paper.daily_date, Paper.announced_on) if scoped else Paper.daily_date)
    out = select_for(trending[0], recipients, sent, size, trending[1])
    if scoped:
        ours = {r.subscriber_id for _, r in scoped}  # only they are scored there: a row of the taste depends on its reader alone
        mine = {i: p for i, p in profiles.items() if i in ours} if profiles else profiles
        arxiv = _section(session, arxiv_candidates(session, start, end), scoped, filters, mine, names)
        if arxiv[0].papers:
            for key, picks in select_for(arxiv[0], scoped, sent, arxiv_size, arxiv[1]).items():
                out[key] = out[key] + picks
    return out


def _section(session: Session, candidates: Candidates, recipients, filters: FilterCache, profiles, names) -> tuple[Matcher, Taste | None]:
    """One section's matcher, with the papers the ``like:`` lines name and the batch's taste."""
    matcher = Matcher(candidates, filters)
    if not candidates.papers:
        return matcher, None
    likes = {text for _, r in recipients for text in r.filters if "like:" in text.lower()}
    if likes:  # papers like one a reader named: the window's embeddings, when a filter asks
        prepare_likes(session, candidates, [f for f in map(filters.get, likes) if f is not None], short_title)
    taste = Taste(load_window(session, candidates), profiles, names=names) if profiles else None
    return matcher, taste


def scoped_lines(filters: FilterCache, texts: Sequence[str]) -> tuple[str, ...]:
    """A reader's lines that name a category or a source (:attr:`Filter.scoped`): the ones matched
    against arXiv's new papers too."""
    return tuple(t for t in texts if filters.scoped(t))


def exclusions(session: Session, subscriber_ids: Iterable[int], start: date, end: date, day=Paper.daily_date) -> dict[int, set[int]]:
    """The papers of ``start..end`` (by ``day``, as :func:`load_sent`) each reader's digests leave out:
    those already mailed to them (:func:`load_sent`) and those they told us they know, voted on or
    named as seeds or in a ``like:`` (:func:`~digest.matching.profiles.known_papers`; they still
    shape the order)."""
    ids = list(subscriber_ids)
    sent = load_sent(session, ids, start, end, day)
    for subscriber_id, known in known_papers(session, ids, start, end, day).items():
        sent[subscriber_id] |= known
    return sent
