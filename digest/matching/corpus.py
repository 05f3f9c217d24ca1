"""Many filters over many papers at once: per field, token and adjacent-pair bitsets over the
papers of a matching run, so each distinct filter is one evaluation (memoised) and each
subscriber one OR of bitsets. Gives exactly what :meth:`digest.matching.topics.Filter.matches` gives
(``tests/test_topics.py`` checks it on generated papers and filters).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from digest.matching.topics import COMPARE, Filter, PaperText, Term, paper_fields


def iter_bits(mask: int, limit: int | None = None) -> Iterator[int]:
    """Positions of set bits, lowest first, at most ``limit`` of them."""
    if mask < 0:
        raise ValueError("mask must not be negative")
    remaining = -1 if limit is None else limit
    while mask and remaining != 0:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low
        remaining -= 1


def _has_phrase(seq: tuple[str, ...], words: tuple[str, ...]) -> bool:
    first, n, j = words[0], len(words), -1
    try:
        while True:
            j = seq.index(first, j + 1)
            if seq[j : j + n] == words:
                return True
    except ValueError:
        return False


class Corpus:
    """The papers of one matching run, in rank order (position 0 = most trending).

    Per field: token -> bitset and adjacent token pair -> bitset (so a two-word phrase is
    one lookup), plus each paper's token sequence to confirm longer phrases.
    """

    def __init__(self, papers: Sequence[PaperText]) -> None:
        self._n = len(papers)
        self._all = (1 << self._n) - 1
        self._upvotes = [p.upvotes for p in papers]
        self._seqs: dict[str, list[tuple[str, ...]]] = {f: [] for f in ("text", "title", "author", "org")}
        self._index: dict[str, dict[str, int]] = {f: {} for f in self._seqs}
        self._pairs: dict[str, dict[tuple[str, str], int]] = {f: {} for f in self._seqs}
        for i, paper in enumerate(papers):
            bit = 1 << i
            for name, seq in paper_fields(paper).items():
                self._seqs[name].append(seq)
                index, pairs = self._index[name], self._pairs[name]
                for token in set(seq):
                    index[token] = index.get(token, 0) | bit
                for pair in set(zip(seq, seq[1:])):
                    pairs[pair] = pairs.get(pair, 0) | bit
        self._filters: dict[str, int] = {}
        self._terms: dict[Term, int] = {}

    def __len__(self) -> int:
        return self._n

    def evaluate(self, f: Filter) -> int:
        """Bitset of the papers matching ``f`` (memoised)."""
        bits = self._filters.get(f.key)
        if bits is None:
            bits = self._filters[f.key] = self._compute(f)
        return bits

    def match_any(self, filters: Sequence[Filter]) -> int:
        """Papers matching any filter; all papers when there are no filters."""
        if not filters:
            return self._all
        memo, out = self._filters, 0
        for f in filters:
            bits = memo.get(f.key)
            out |= self.evaluate(f) if bits is None else bits
        return out

    def first_match(self, filters: Sequence[Filter], position: int) -> Filter | None:
        """The first filter (in the given order) matching the paper at ``position``."""
        for f in filters:
            if self.evaluate(f) >> position & 1:
                return f
        return None

    def _compute(self, f: Filter) -> int:
        bits = 0 if f.branches else self._all
        for branch in f.branches:
            b = self._all
            for t in branch:
                b &= self._term(t)
                if not b:
                    break
            bits |= b
        for t in f.excludes:
            if not bits:
                break
            bits &= ~self._term(t)
        return bits

    def _term(self, t: Term) -> int:
        bits = self._terms.get(t)
        if bits is None:
            bits = self._terms[t] = self._compute_term(t)
        return bits

    def _compute_term(self, t: Term) -> int:
        if t.field == "upvotes":
            test = COMPARE[t.op]
            return sum(1 << i for i, v in enumerate(self._upvotes) if test(v, t.value))
        if len(t.words) == 1:
            return self._index[t.field].get(t.words[0], 0)
        pairs, bits = self._pairs[t.field], self._all
        for pair in zip(t.words, t.words[1:]):
            bits &= pairs.get(pair, 0)
            if not bits:
                return 0
        if len(t.words) > 2:  # adjacent pairs present; check they line up
            seqs = self._seqs[t.field]
            for i in iter_bits(bits):
                if not _has_phrase(seqs[i], t.words):
                    bits &= ~(1 << i)
        return bits
