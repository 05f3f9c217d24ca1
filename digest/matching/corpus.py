"""Many filters over many papers at once: per field, stem and adjacent-pair bitsets over the
papers of a matching run, so each distinct filter is one evaluation (memoised) and each
subscriber one OR of bitsets. Gives exactly what :meth:`digest.matching.topics.Filter.matches` gives
(``tests/matching/test_topics.py`` checks it on generated papers and filters).

The papers are tokenised and stemmed here, once, when the index is built
(:func:`~digest.matching.words.paper_fields`); a filter's words were stemmed when it was parsed.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence

import numpy as np

from digest.matching.expression import COMPARE, And, Node, Or, Term
from digest.matching.topics import Filter
from digest.matching.words import FIELDS, PaperText, Stems, paper_fields

MAX_MEMO = 200_000  # memoised filters (and terms) per index: a long-lived index forgets, never grows without end


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


def bit_positions(mask: int) -> np.ndarray:
    """Positions of set bits, ascending, as an array: one pass over the bytes, where
    :func:`iter_bits` costs a big-integer operation per bit (4,000-paper windows: ~1 ms)."""
    if mask < 0:
        raise ValueError("mask must not be negative")
    if not mask:
        return np.zeros(0, dtype=np.int64)
    raw = np.frombuffer(mask.to_bytes((mask.bit_length() + 7) // 8, "little"), dtype=np.uint8)
    return np.flatnonzero(np.unpackbits(raw, bitorder="little")).astype(np.int64)


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

    Per field: stem -> bitset (hyphenated compounds run together count as words) and adjacent stem
    pair -> bitset (so a two-word phrase is one lookup), plus each paper's stem sequence to confirm
    longer phrases, and its words as written for prefixes (indexed on the first prefix asked for).
    """

    def __init__(self, papers: Sequence[PaperText]) -> None:
        self._n = len(papers)
        self._all = (1 << self._n) - 1
        self._upvotes = [p.upvotes for p in papers]
        self._seqs: dict[str, list[tuple[str, ...]]] = {f: [] for f in FIELDS}
        self._raw: dict[str, list[tuple[tuple[str, ...], ...]]] = {f: [] for f in FIELDS}
        self._index: dict[str, dict[str, int]] = {f: {} for f in FIELDS}
        self._pairs: dict[str, dict[tuple[str, str], int]] = {f: {} for f in FIELDS}
        self._prefixes: dict[str, tuple[list[str], list[int]]] = {}
        stems = Stems()
        for i, paper in enumerate(papers):
            bit = 1 << i
            for name, field in paper_fields(paper, stems).items():
                seq = field.stems
                self._seqs[name].append(seq)
                self._raw[name].append(field.raw)
                index, pairs = self._index[name], self._pairs[name]
                for word in field.words:
                    index[word] = index.get(word, 0) | bit
                for pair in set(zip(seq, seq[1:])):
                    pairs[pair] = pairs.get(pair, 0) | bit
        self._trending = self._index["source"].get("hf", 0)  # what a line naming no source or category reaches
        self._filters: dict[str, int] = {}
        self._terms: dict[str, int] = {}  # by the term's text
        self._likes: dict[str, int] = {}  # arXiv id -> the papers like it (add_likes)
        self._like_scores: dict[str, np.ndarray] = {}  # arXiv id -> each paper's cosine to it
        self.like_names: dict[str, str] = {}  # arXiv id -> how a "why" line names it

    def __len__(self) -> int:
        return self._n

    def evaluate(self, f: Filter) -> int:
        """Bitset of the papers matching ``f`` (memoised)."""
        bits = self._filters.get(f.key)
        if bits is None:
            if len(self._filters) >= MAX_MEMO:
                self._filters.clear()
            bits = self.bits(f.expr)
            if not f.scoped:
                bits &= self._trending
            self._filters[f.key] = bits
        return bits

    def match_any(self, filters: Sequence[Filter]) -> int:
        """Papers matching any filter; all the trending papers when there are no filters."""
        if not filters:
            return self._trending
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

    def add_likes(self, likes: dict[str, int], scores: dict[str, np.ndarray] | None = None, names: dict[str, str] | None = None) -> None:
        """What ``like:<arXiv id>`` matches here, for ids not given before: the papers' embeddings are
        not in the index, so :mod:`digest.matching.similar` computes these bitsets (and each paper's
        cosine to the named one, and its title) and hands them over. An id never given matches
        nothing. Adding one forgets the evaluations it could change."""
        new = {arxiv_id: bits for arxiv_id, bits in likes.items() if arxiv_id not in self._likes}
        if not new:
            return
        self._likes.update(new)
        self._like_scores.update({i: v for i, v in (scores or {}).items() if i in new})
        self.like_names.update({i: v for i, v in (names or {}).items() if i in new})
        self._filters.clear()
        for text in [t for t in self._terms if t.startswith("like:")]:
            del self._terms[text]

    def closeness(self, arxiv_ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray] | None:
        """How near each paper is to the nearest of these named papers (cosine, -inf without an
        embedding), and which of them (an index into ``arxiv_ids``); None if none was given."""
        known = [i for i in arxiv_ids if i in self._like_scores]
        if not known:
            return None
        scores = np.stack([self._like_scores[i] for i in known])
        nearest = scores.argmax(axis=0)
        index = np.array([arxiv_ids.index(i) for i in known])[nearest]
        return scores.max(axis=0), index

    def has_likes(self, arxiv_ids) -> bool:
        """Whether every one of these ids was given to :meth:`add_likes`."""
        return all(i in self._likes for i in arxiv_ids)

    def bits(self, node: Node) -> int:
        """Bitset of the papers matching any part of a filter's expression. Terms are memoised by
        their text (a string hashes once; a term's tuple would hash its words and stems each time)."""
        kind = type(node)
        if kind is Term:
            bits = self._terms.get(node.text)
            if bits is None:
                if len(self._terms) >= MAX_MEMO:
                    self._terms.clear()
                bits = self._terms[node.text] = self._term(node)
            return bits
        terms = self._terms
        if kind is And:
            bits = self._all
            for child in node.children:
                known = terms.get(child.text) if type(child) is Term else None
                bits &= self.bits(child) if known is None else known
                if not bits:
                    break
            return bits
        if kind is Or:
            bits = 0
            for child in node.children:
                known = terms.get(child.text) if type(child) is Term else None
                bits |= self.bits(child) if known is None else known
            return bits
        return self._all & ~self.bits(node.child)

    def _term(self, t: Term) -> int:
        if t.field == "like":
            return self._likes.get(t.words[0], 0)
        if t.field == "upvotes":
            test = COMPARE[t.op]
            return sum(1 << i for i, v in enumerate(self._upvotes) if test(v, t.value))
        if t.op == "*":
            return self._prefix(t.field, t.words[0])
        bits = self._phrase(t.field, t.stems)
        if t.op == "-":
            bits |= self._index[t.field].get(t.joined, 0)
        return bits

    def _phrase(self, field: str, stems: tuple[str, ...]) -> int:
        if len(stems) == 1:
            return self._index[field].get(stems[0], 0)
        pairs, bits = self._pairs[field], self._all
        for pair in zip(stems, stems[1:]):
            bits &= pairs.get(pair, 0)
            if not bits:
                return 0
        if len(stems) > 2:  # adjacent pairs present; check they line up
            seqs = self._seqs[field]
            for i in iter_bits(bits):
                if not _has_phrase(seqs[i], stems):
                    bits &= ~(1 << i)
        return bits

    def _prefix(self, field: str, prefix: str) -> int:
        """Papers with a word (as written) starting with ``prefix``: one sorted index per field."""
        if field not in self._prefixes:
            index: dict[str, int] = {}
            for i, parts in enumerate(self._raw[field]):
                bit = 1 << i
                for word in {w for part in parts for w in part}:
                    index[word] = index.get(word, 0) | bit
            keys = sorted(index)
            self._prefixes[field] = (keys, [index[k] for k in keys])
        keys, masks = self._prefixes[field]
        bits, at = 0, bisect_left(keys, prefix)
        while at < len(keys) and keys[at].startswith(prefix):
            bits |= masks[at]
            at += 1
        return bits
