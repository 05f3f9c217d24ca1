"""Many filters over many papers at once: per field, stem and adjacent-pair bitsets over the
papers of a matching run, so each distinct filter is one evaluation (memoised) and each
subscriber one OR of bitsets. Gives exactly what :meth:`digest.matching.topics.Filter.matches` gives
(``tests/matching/test_topics.py`` checks it on generated papers and filters).

The papers are tokenised and stemmed here, once, when the index is built
(:func:`~digest.matching.words.paper_fields`); a filter's words were stemmed when it was parsed.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from itertools import repeat

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


class _Ids(dict):
    """key → a small integer, each new key the next one."""

    def __missing__(self, key: str) -> int:
        value = self[key] = len(self)
        return value


def _to_bits(positions: np.ndarray, n: int) -> int:
    """A bitset of ``n`` papers from the positions of its set bits."""
    if len(positions) == 1:
        return 1 << int(positions[0])
    flags = np.zeros(n, dtype=bool)
    flags[positions] = True
    return int.from_bytes(np.packbits(flags, bitorder="little").tobytes(), "little")


class _Postings:
    """One field's keys (words, or words as written) → the papers having them, and its adjacent
    word pairs → the papers having them side by side. Built in one pass of appends (key ids and
    paper positions in flat arrays), sorted once by numpy; a key's bitset is made on its first
    lookup. Far less than a dict of bitsets: 4,000 abstracts hold ~600,000 distinct word pairs,
    and a bitset of a paper at position i is an i-bit integer."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.ids = _Ids()
        self._keys, self._papers = array("i"), array("i")  # (key id, paper) per distinct key of a paper
        self._tokens, self._owners = array("i"), array("i")  # each paper's word sequence, concatenated
        self._bits: dict[object, int] = {}

    def add(self, i: int, keys: Iterable[str], seq: Sequence[str] = ()) -> None:
        before = len(self._keys)
        self._keys.extend(map(self.ids.__getitem__, keys))
        self._papers.extend(repeat(i, len(self._keys) - before))
        if len(seq) > 1:
            self._tokens.extend(map(self.ids.__getitem__, seq))
            self._owners.extend(repeat(i, len(seq)))

    def freeze(self) -> None:
        keys = np.frombuffer(self._keys, dtype=np.int32) if self._keys else np.zeros(0, np.int32)
        order = np.argsort(keys, kind="stable")  # a key's papers stay in ascending order
        self._by_key = (np.frombuffer(self._papers, dtype=np.int32) if self._papers else np.zeros(0, np.int32))[order]
        self._offsets = np.concatenate(([0], np.cumsum(np.bincount(keys, minlength=len(self.ids)))))
        tokens = np.frombuffer(self._tokens, dtype=np.int32).astype(np.int64) if self._tokens else np.zeros(0, np.int64)
        owners = np.frombuffer(self._owners, dtype=np.int32) if self._owners else np.zeros(0, np.int32)
        same = owners[:-1] == owners[1:]
        codes, owners = ((tokens[:-1] << 32) | tokens[1:])[same], owners[:-1][same]
        order = np.lexsort((owners, codes))
        codes, owners = codes[order], owners[order]
        new = np.ones(len(codes), dtype=bool)
        new[1:] = (codes[1:] != codes[:-1]) | (owners[1:] != owners[:-1])  # a pair twice in one paper: once
        self._pair_codes, self._pair_papers = codes[new], owners[new]
        del self._keys, self._papers, self._tokens, self._owners

    def positions(self, key: str) -> np.ndarray:
        k = self.ids.get(key)
        return self._by_key[self._offsets[k] : self._offsets[k + 1]] if k is not None else self._by_key[:0]

    def get(self, key: str, default: int = 0) -> int:
        bits = self._bits.get(key)
        if bits is None:
            k = self.ids.get(key)
            if k is None:
                return default
            bits = self._bits[key] = _to_bits(self._by_key[self._offsets[k] : self._offsets[k + 1]], self.n)
        return bits

    def pair(self, first: str, second: str) -> int:
        key = (first, second)
        bits = self._bits.get(key)
        if bits is None:
            a, b = self.ids.get(first), self.ids.get(second)
            if a is None or b is None:
                return 0
            code = a << 32 | b
            lo, hi = np.searchsorted(self._pair_codes, [code, code + 1])
            bits = self._bits[key] = _to_bits(self._pair_papers[lo:hi], self.n) if hi > lo else 0
        return bits


class Corpus:
    """The papers of one matching run, in rank order (position 0 = most trending).

    Per field: stem -> papers (hyphenated compounds run together count as words) and adjacent stem
    pair -> papers (so a two-word phrase is one lookup), plus each paper's stem sequence to confirm
    longer phrases, and its words as written -> papers, for prefixes (:class:`_Postings`).
    """

    def __init__(self, papers: Sequence[PaperText]) -> None:
        self._n = n = len(papers)
        self._all = (1 << n) - 1
        self._upvotes = [p.upvotes for p in papers]
        self._seqs: dict[str, list[tuple[str, ...]]] = {f: [] for f in FIELDS}
        self._index = {f: _Postings(n) for f in FIELDS}
        self._written = {f: _Postings(n) for f in FIELDS}  # words as written (casefolded): for prefixes
        self._prefixes: dict[str, list[str]] = {}
        stems = Stems()
        for i, paper in enumerate(papers):
            for name, field in paper_fields(paper, stems).items():
                seq = field.stems
                self._seqs[name].append(seq)
                self._index[name].add(i, field.words, seq)
                self._written[name].add(i, {w for part in field.raw for w in part})
        for postings in (*self._index.values(), *self._written.values()):
            postings.freeze()
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
        return self.first_matches(filters, (position,))[0]

    def first_matches(self, filters: Sequence[Filter], positions: Sequence[int]) -> list[Filter | None]:
        """:meth:`first_match` of each of ``positions``, each filter's bits looked up once for all
        of them (a digest's picks), not once per paper."""
        out: list[Filter | None] = [None] * len(positions)
        left: Sequence[int] = range(len(positions))
        for f in filters:
            bits, rest = self.evaluate(f), []
            for k in left:
                if bits >> positions[k] & 1:
                    out[k] = f
                else:
                    rest.append(k)
            if not rest:
                break
            left = rest
        return out

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
        index, bits = self._index[field], self._all
        for first, second in zip(stems, stems[1:]):
            bits &= index.pair(first, second)
            if not bits:
                return 0
        if len(stems) > 2:  # adjacent pairs present; check they line up
            seqs = self._seqs[field]
            for i in iter_bits(bits):
                if not _has_phrase(seqs[i], stems):
                    bits &= ~(1 << i)
        return bits

    def _prefix(self, field: str, prefix: str) -> int:
        """Papers with a word (as written) starting with ``prefix``: the field's words sorted once."""
        written = self._written[field]
        keys = self._prefixes.get(field)
        if keys is None:
            keys = self._prefixes[field] = sorted(written.ids)
        found, at = [], bisect_left(keys, prefix)
        while at < len(keys) and keys[at].startswith(prefix):
            found.append(written.positions(keys[at]))
            at += 1
        return _to_bits(np.unique(np.concatenate(found)), self._n) if found else 0
