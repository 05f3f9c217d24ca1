"""Matching one batch of readers against a window's papers: each distinct filter evaluated once
over the :class:`~digest.matching.corpus.Corpus`, then a few bitset operations per reader. Never
subscribers × papers.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from digest.matching.corpus import iter_bits
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
