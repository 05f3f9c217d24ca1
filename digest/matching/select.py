"""Matching one batch of readers against a window's papers: each distinct filter evaluated once
over the :class:`~digest.matching.corpus.Corpus`, then a few bitset operations per reader. Never
subscribers × papers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from digest.matching.corpus import bit_positions, iter_bits
from digest.matching.scoring import Taste, order_near
from digest.matching.similar import like_ids, only_likes
from digest.matching.topics import Filter, FilterError, parse_filter
from digest.matching.trending import Candidates
from digest.models import Paper

log = logging.getLogger(__name__)


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

    def scoped(self, text: str) -> bool:
        """Whether a line parses and names a category or a source (:attr:`Filter.scoped`); a line
        without ``cat:`` or ``source:`` in it is not even looked up."""
        lowered = text.lower()
        if "cat:" not in lowered and "source:" not in lowered:
            return False
        f = self.get(text)
        return f is not None and f.scoped


@dataclass(slots=True)
class Pick:
    """One paper in one digest; ``matched`` is the subscriber's filter text (None: no filters);
    ``why`` what the reader's taste saw in it ("like *COAT: Compressing Optimizer…*, which you
    liked"); ``also`` marks a "You may also like" paper, outside the reader's filters; ``top`` the
    most upvoted paper of the reader's window (its "#1 today" pill, wherever the reader's order puts
    it); ``lifted`` a paper the reader's order placed above a more upvoted one; ``section`` where the
    digest shows it: "trending" (Hugging Face Daily Papers) or "arxiv" (new on arXiv).

    Slotted and not frozen (treat it as a value: ``dataclasses.replace`` to change one): a run
    builds one per paper per digest, over a million, and a frozen dataclass's ``__init__`` costs
    three times as much."""

    paper: Paper
    matched: str | None
    why: str | None = None
    also: bool = False
    top: bool = False
    lifted: bool = False
    section: str = "trending"


@dataclass(slots=True)
class Recipient:  # a value, as Pick (one per reader per batch: frozen's __init__ costs three times as much)
    subscriber_id: int
    filters: tuple[str, ...]  # filter texts in the subscriber's order; () = all papers
    window_start: date
    window_end: date


class Matcher:
    """One batch's candidate papers in trending order, indexed once for every recipient."""

    def __init__(self, papers: Sequence[Paper] | Candidates, filters: FilterCache | None = None) -> None:
        candidates = papers if isinstance(papers, Candidates) else Candidates(papers)
        self.papers = candidates.papers
        self.section = candidates.section
        self.corpus = candidates.corpus
        self.filters = filters or FilterCache()
        self._position = candidates.position
        self._by_day = candidates.by_day
        self._windows: dict[tuple[date, date], int] = {}
        self._by_arxiv: dict[str, int] | None = None
        self._ids = candidates.ids  # paper id by position
        self._likes: dict[str, tuple[bool, int]] = {}  # filter key -> (only names papers, their bits)
        self._near: dict[tuple[str, ...], tuple[np.ndarray, np.ndarray, list[str]]] = {}

    def _nearness(self, compiled: list[Filter]) -> tuple[np.ndarray, np.ndarray, list[str]] | None:
        """For lines that only name papers: each candidate's cosine to the nearest named paper, which
        one (an index), and how a "why" line names each; None until their embeddings are known.
        Once per set of named papers in a batch, whoever names them."""
        ids = tuple(sorted(like_ids(compiled)))
        near = self._near.get(ids)
        if near is None:
            found = self.corpus.closeness(list(ids))
            if found is None:
                return None
            near = self._near[ids] = (*found, [self.corpus.like_names.get(i, i) for i in ids])
        return near

    def _like_terms(self, f: Filter) -> tuple[bool, int]:
        """Whether a filter (one with ``like:``) only names papers, and the bits of the papers it
        names: once per filter in a batch, not per reader."""
        got = self._likes.get(f.key)
        if got is None:
            if self._by_arxiv is None:
                self._by_arxiv = {p.arxiv_id: i for i, p in enumerate(self.papers)}
            bits = 0
            for arxiv_id in like_ids([f]):
                if arxiv_id in self._by_arxiv:
                    bits |= 1 << self._by_arxiv[arxiv_id]
            got = self._likes[f.key] = (only_likes(f), bits)
        return got

    def window_mask(self, start: date, end: date) -> int:
        mask = self._windows.get((start, end))
        if mask is None:
            mask = 0
            for day, bits in self._by_day.items():
                if start <= day <= end:
                    mask |= bits
            self._windows[(start, end)] = mask
        return mask

    def select(self, recipient: Recipient, already_sent: set[int], size: int, taste: Taste | None = None) -> list[Pick]:
        """The top ``size`` papers of the window matching any filter, never one in ``already_sent``;
        in the reader's order if ``taste`` has a profile for them (else today's trending order), then
        the "You may also like" picks (``also``), if the taste is confident of any outside the filters."""
        return self.pick(recipient, already_sent, size, taste)[0]

    def pick(self, recipient: Recipient, already_sent: set[int], size: int, taste: Taste | None = None) -> tuple[list[Pick], list[int]]:
        """:meth:`select`'s picks and their papers' ids (read once per window, not off each pick)."""
        mask = window = self.window_mask(recipient.window_start, recipient.window_end)
        if not mask:
            return [], []
        for paper_id in already_sent:
            position = self._position.get(paper_id)
            if position is not None:
                mask &= ~(1 << position)
        compiled: list[Filter] = []
        only_named = False  # every line only names papers
        if recipient.filters:
            compiled = [f for f in map(self.filters.get, recipient.filters) if f is not None]
            only_named = bool(compiled)
            for f in compiled:  # the paper a ``like:`` names is the reader's, even before it is a stored seed
                if "like:" in f.key:
                    only, named = self._like_terms(f)
                    mask &= ~named
                    only_named = only_named and only
                else:
                    only_named = False
        unsent = mask
        if recipient.filters:
            mask &= self.corpus.match_any(compiled) if compiled else 0
        personal = taste is not None and recipient.subscriber_id in taste.profiles
        near = self._nearness(compiled) if only_named else None
        if near is not None:  # lines that only name papers: the papers nearest them first
            closeness, nearest, names = near
            if taste is not None:
                positions = taste.order_on(recipient.subscriber_id, iter_bits(mask), closeness)[:size]
            else:
                positions = order_near(iter_bits(mask), closeness)[:size]
        elif personal:
            positions = taste.order(recipient.subscriber_id, bit_positions(mask), size)
        else:
            positions = list(iter_bits(mask, size))
        top = _lowest(window) if self.section == "trending" else -1  # "#1 today" is trending's: arXiv's new papers have no upvotes
        if top >= 0 and len(positions) == size and top not in positions and mask >> top & 1:
            positions[-1] = top  # the window's #1 stays in every digest it matches: the reader's order may only move it down
        lifted = lifted_indexes([self.papers[p].upvotes for p in positions]) if personal else ()
        picks = []
        whys = taste.whys(recipient.subscriber_id, positions) if personal and near is None else None
        matched = _first_matches(self.corpus, compiled, positions)
        papers, section = self.papers, self.section
        for k, position in enumerate(positions):
            if near is not None:
                why = f"close to \u201c{names[nearest[position]]}\u201d"
            else:
                why = whys[k] if whys is not None else None
            picks.append(Pick(papers[position], matched[k], why, False, position == top, k in lifted, section))
        ids = self._ids
        picked = [ids[position] for position in positions]
        if personal and picks and recipient.filters:
            outside = unsent & ~mask
            for position in taste.also_like(recipient.subscriber_id, bit_positions(outside)):
                why = taste.why(recipient.subscriber_id, position)
                picks.append(Pick(papers[position], None, why, also=True, section=section))
                picked.append(ids[position])
        return picks, picked


def _first_matches(corpus, compiled: list[Filter], positions: Sequence[int]) -> list[str | None]:
    """The text of the first of a reader's filters matching each picked paper
    (:meth:`Corpus.first_matches`); of one filter, the one every pick matched."""
    if len(compiled) <= 1:
        return [compiled[0].text if compiled else None] * len(positions)
    return [f.text if f is not None else None for f in corpus.first_matches(compiled, positions)]


def _lowest(mask: int) -> int:
    """The first position (trending rank) of a non-empty bitset."""
    return (mask & -mask).bit_length() - 1


def lifted_indexes(upvotes: Sequence[int]) -> set[int]:
    """The indexes of a digest's papers (their ``upvotes``, in the reader's order) placed above a
    paper with more upvotes: the ones the reader's taste moved up. Reordering papers of equal
    upvotes (trending's tie-breaks) lifts nothing: "for you" is for a paper that overtook a more
    upvoted one."""
    out: set[int] = set()
    most = None
    for k in range(len(upvotes) - 1, -1, -1):
        if most is not None and upvotes[k] < most:
            out.add(k)
        most = upvotes[k] if most is None else max(most, upvotes[k])
    return out


def select_for(
    matcher: Matcher,
    recipients: Sequence[tuple[object, Recipient]],
    sent: dict[int, set[int]],
    size: int,
    taste: Taste | None = None,
) -> dict[object, list[Pick]]:
    """Picks per key, in the given order; a paper picked for a subscriber (a "You may also like"
    one too) counts as sent for the rest of the batch (two digests of one subscriber in one batch
    never share a paper)."""
    out: dict[object, list[Pick]] = {}
    for key, recipient in recipients:
        already = sent.setdefault(recipient.subscriber_id, set())
        out[key], ids = matcher.pick(recipient, already, size, taste)
        already.update(ids)
    return out
