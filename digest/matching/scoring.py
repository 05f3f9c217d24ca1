"""Personal scores for a whole batch at once, and the blend with today's trending order.

For N readers and M candidates (:class:`Window`, in trending order: a position is today's rank),
``W_d · Dᵀ`` and ``W_s · Sᵀ`` are two matrix products. Each part is standardised per reader over
the candidates (z-scores), mixed ``DENSE_SHARE : SPARSE_SHARE``, standardised again and clipped to
±``PERSONAL_CLIP``: the personal score ``P``.

The blend (README, "How a digest is ordered")::

    final = TREND_WEIGHT · T + PERSONAL_WEIGHT · c · P,    c = n / (n + HALF_CONFIDENCE)

``T`` is ``log(1 + upvotes)`` standardised over the candidates; ``n`` the reader's votes and seeds;
ties go to today's order. A reader without a profile gets today's order exactly; "less like this"
lowers ``P`` (by ``PERSONAL_CLIP`` at most), so it moves papers down, never out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice

import numpy as np

from digest.matching.taste import BOTH, DIM, Anchor, Profile, sketch
from digest.models import SparseVector

DENSE_SHARE, SPARSE_SHARE = 0.6, 0.4
PERSONAL_CLIP = 2.5
TREND_WEIGHT = 1.0
#: Chosen on the simulated set of ``python -m bench ranking`` (docs/benchmarks.md, "Issue 21"): P@5
#: and nDCG@10 rise with the weight up to about 8 and are flat beyond it; 3.0 (before issue 21) left
#: the top of a digest to upvotes after 3 votes. With HALF_CONFIDENCE = 2 the weight is 2.7 after one
#: vote, 4.8 after three, 6.7 after ten.
PERSONAL_WEIGHT = 8.0

# "You may also like" and the "why" line
ALSO_LIKE_MAX = 3
ALSO_LIKE_CONFIDENCE = 0.7  # c ≥ 0.7: at least 5 votes and seeds
ALSO_LIKE_SCORE = 1.5  # P ≥ 1.5: well above the reader's average candidate
#: Above this many candidates (an arXiv section) a reader's order and why are computed for the papers
#: asked about, not for the whole window at once for every reader of the batch (an argsort of each
#: profile's row and an anchors × candidates product, most of it never read)
BATCH_ORDER_MAX = 256
WHY_SIMILARITY = 0.35  # sketch cosine to a liked paper for "like …": 8 in 10 such pairs share a topic (bench)


def standardize(x: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """Each row as z-scores over its ``present`` columns (others 0); a constant row is all 0."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    every = present is None or bool(present.all())  # the usual case: no fancy indexing
    if (x.shape[1] if every else int(present.sum())) < 2:
        return np.zeros_like(x)
    columns = x if every else x[:, present]
    mean = columns.mean(axis=1, keepdims=True)
    std = columns.std(axis=1, keepdims=True)
    ok = std > 1e-6
    out = np.where(ok, (x - mean) / np.where(ok, std, 1), 0).astype(np.float32)
    if not every:
        out[:, ~present] = 0
    return out


class Window:
    """Candidate papers' vectors as matrices, in trending order (position = today's rank).

    Built once per candidate set; ``None`` for a paper without vectors (it gets a neutral score).
    """

    def __init__(self, upvotes: Sequence[int], vectors: Sequence[tuple[np.ndarray, SparseVector] | None]) -> None:
        self.size = len(upvotes)
        self.present = np.array([v is not None for v in vectors], dtype=bool)
        self.dense = np.zeros((self.size, DIM), dtype=np.float32)
        rows, terms, weights = [], [], []
        for i, v in enumerate(vectors):
            if v is not None:
                self.dense[i] = v[0]
                rows.append(np.full(len(v[1].terms), i))
                terms.append(v[1].terms)
                weights.append(v[1].weights)
        self.sketch = sketch(self.dense)
        # the candidates' term weights as postings sorted by term: a profile's terms are looked up in them
        terms_all = np.concatenate(terms).astype(np.uint32) if terms else np.zeros(0, np.uint32)
        by_term = np.argsort(terms_all, kind="stable")
        self._terms = terms_all[by_term].astype(np.int64)  # numpy searches int64 keys several times faster than uint32
        self._rows = (np.concatenate(rows) if rows else np.zeros(0, np.int64))[by_term].astype(np.int64)
        self._weights = (np.concatenate(weights) if weights else np.zeros(0, np.float32))[by_term].astype(np.float32)
        self.trend = standardize(np.log1p(np.maximum(np.asarray(upvotes, dtype=np.float32), 0)))[0] if self.size else np.zeros(0)

    def personal(self, profiles: Sequence[Profile], parts: Sequence[str] = BOTH) -> np.ndarray:
        """The personal score ``P`` of every candidate for every profile: N × M, computed for all at once.

        Neither product goes through BLAS: a worker runs several processes on few cores, and
        OpenBLAS's threads, woken for a product this small, spin for longer than the product takes
        (measured: 0.8 ms of CPU per digest of a batch where 30 % of the readers have a profile).
        """
        n = len(profiles)
        if not n or not self.size:
            return np.zeros((n, self.size), dtype=np.float32)
        mixed = np.zeros((n, self.size), dtype=np.float32)
        if "dense" in parts:
            raw = np.einsum("rd,md->rm", np.stack([p.dense for p in profiles]), self.dense)  # W_d · Dᵀ, without BLAS
            mixed += DENSE_SHARE * standardize(raw, self.present)
        if "sparse" in parts:
            mixed += SPARSE_SHARE * standardize(self._sparse_scores(profiles), self.present)
        return np.clip(standardize(mixed, self.present), -PERSONAL_CLIP, PERSONAL_CLIP)

    def _sparse_scores(self, profiles: Sequence[Profile]) -> np.ndarray:
        """``W_s · Sᵀ``: each profile term found among the candidates' postings (sorted by term),
        every (profile term, candidate term) pair that agrees summed into its cell. Work in
        proportion to the pairs that match, no matrix over the vocabulary."""
        n = len(profiles)
        scores = np.zeros(n * self.size, dtype=np.float64)
        if not len(self._terms):
            return scores.reshape(n, self.size).astype(np.float32)
        owner = np.concatenate([np.full(len(p.terms), r, dtype=np.int64) for r, p in enumerate(profiles)])
        terms = np.concatenate([p.terms for p in profiles]).astype(np.int64)
        weights = np.concatenate([p.weights for p in profiles]).astype(np.float64)
        start = np.searchsorted(self._terms, terms, "left")
        hits = np.searchsorted(self._terms, terms, "right") - start
        if hits.sum():
            pair = np.repeat(np.arange(len(terms)), hits)  # each matching pair: its profile term…
            posting = np.repeat(start - np.cumsum(hits) + hits, hits) + np.arange(hits.sum())  # …and the candidate's
            cells = owner[pair] * self.size + self._rows[posting]
            scores = np.bincount(cells, weights=weights[pair] * self._weights[posting], minlength=n * self.size)
        return scores.reshape(n, self.size).astype(np.float32)

    def most_like(self, dense: np.ndarray, limit: int = 3, exclude: Iterable[int] = ()) -> list[int]:
        """Positions of the ``limit`` candidates nearest to an embedding (cosine), nearest first."""
        similarity = np.where(self.present, self.dense @ np.asarray(dense, dtype=np.float32), -np.inf)
        similarity[list(exclude)] = -np.inf
        best = np.argsort(-similarity, kind="stable")[:limit]
        return [int(i) for i in best if np.isfinite(similarity[i])]


def order_near(positions: Iterable[int], base: np.ndarray, personal: np.ndarray | None = None) -> list[int]:
    """``positions`` ordered by ``base`` (a score per candidate, higher first: how near each is to
    the papers a reader's ``like:`` lines name) in place of trending, as z-scores over these
    positions, plus ``personal`` (the reader's weighted personal part) when given; ties: trending."""
    at = np.asarray(list(positions), dtype=np.int64)
    if not len(at):
        return []
    score = np.asarray(base, dtype=np.float64)[at]
    finite = np.isfinite(score)
    score = np.where(finite, score, score[finite].min() if finite.any() else 0.0)
    std = score.std()
    score = (score - score.mean()) / std if std > 1e-9 else np.zeros_like(score)
    if personal is not None:
        score = score + personal[at]
    return [int(i) for i in at[np.lexsort((at, -score))]]


@dataclass(frozen=True)
class ScoreParts:
    """What ordered one paper for one reader (``digest explain``)."""

    trending: float  # T
    personal: float  # P (0 without a profile)
    weight: float  # PERSONAL_WEIGHT · c (0 without a profile)
    final: float


class Taste:
    """One batch's readers scored against one window, all at once: the order, why, "you may also like"."""

    def __init__(
        self, window: Window, profiles: Mapping[int, Profile], parts: Sequence[str] = BOTH, names: Mapping[int, str] | None = None
    ) -> None:
        self.window = window
        self.profiles = dict(profiles)
        #: how a "why" line names a liked paper, by paper id (a short title); an arXiv id where absent
        self.names = names or {}
        self._row = {subscriber_id: i for i, subscriber_id in enumerate(self.profiles)}
        self.personal = window.personal(list(self.profiles.values()), parts)
        self._weight = np.array([PERSONAL_WEIGHT * p.confidence for p in self.profiles.values()], dtype=np.float32)
        self._nearest: tuple[list[Anchor], list[list[int]]] | None = None
        self._liked: dict[int, tuple[list[Anchor], np.ndarray | None]] = {}  # a large window's: per reader, on demand
        self._order: list[list[int]] | None = None

    def order(self, subscriber_id: int, positions: Iterable[int] | np.ndarray, limit: int | None = None) -> list[int]:
        """``positions`` (trending ranks, ascending) in this reader's order: unchanged without a profile;
        the first ``limit`` of them when given (a digest's section reads its cap of 1,000 matches).

        In a large window (an arXiv section of 4,000 candidates), or for a few positions, they are
        sorted on their own; many positions of a small window are read off the batch's sorted orders.
        Both give the same order: the same float32 sums, ties to today's order."""
        r = self._row.get(subscriber_id)
        if r is None:
            return [int(i) for i in islice(positions, limit)]
        at = positions if isinstance(positions, np.ndarray) else np.fromiter(positions, dtype=np.int64)
        if not len(at):
            return []
        if self.window.size > BATCH_ORDER_MAX or 8 * len(at) < self.window.size or len(np.unique(at)) < len(at):
            final = self.window.trend[at] + self._weight[r] * self.personal[r, at]  # (a position twice: never from select)
            return at[np.lexsort((at, -final))][:limit].tolist()
        wanted = set(at.tolist())
        return list(islice((i for i in self._orders()[r] if i in wanted), limit))

    def order_on(self, subscriber_id: int, positions: Iterable[int], base: np.ndarray) -> list[int]:
        """:func:`order_near` with this reader's weighted personal part added, if they have a profile."""
        r = self._row.get(subscriber_id)
        if r is None:
            return order_near(positions, base)
        return order_near(positions, base, float(self._weight[r]) * self.personal[r])

    def _orders(self) -> list[list[int]]:
        """Every reader's order of all the candidates (ties: today's order), sorted once for the
        batch the first time a digest asks: a reader's digest then only filters it."""
        if self._order is None:
            final = self.window.trend[None, :] + self._weight[:, None] * self.personal
            self._order = np.argsort(-final, axis=1, kind="stable").tolist()
        return self._order

    def parts(self, subscriber_id: int, position: int) -> ScoreParts:
        trending = float(self.window.trend[position])
        r = self._row.get(subscriber_id)
        if r is None:
            return ScoreParts(trending, 0.0, 0.0, trending)
        personal, weight = float(self.personal[r, position]), float(self._weight[r])
        return ScoreParts(trending, personal, weight, trending + weight * personal)

    def why(self, subscriber_id: int, position: int) -> str | None:
        """ "like “COAT: Compressing Optimizer states…”, which you liked": the nearest liked or seed
        paper, when near enough, named by :attr:`names` (else by its arXiv id)."""
        profile = self.profiles.get(subscriber_id)
        if profile is None or not self.window.present[position] or self.personal[self._row[subscriber_id], position] <= 0:
            return None
        if self.window.size > BATCH_ORDER_MAX:  # a large window: the reader's anchors against this paper only
            return self._large_whys(subscriber_id, [position])[0]
        anchors, nearest = self._nearest_liked()
        best = nearest[self._row[subscriber_id]][position]
        return self._named(anchors[best]) if best >= 0 else None

    def whys(self, subscriber_id: int, positions: Sequence[int]) -> list[str | None]:
        """:meth:`why` of each of ``positions``: in a large window, the reader's anchors against these
        papers in one product (a digest's section asks for its ten at once)."""
        if self.window.size <= BATCH_ORDER_MAX or subscriber_id not in self.profiles:
            return [self.why(subscriber_id, p) for p in positions]
        return self._large_whys(subscriber_id, positions)

    def _large_whys(self, subscriber_id: int, positions: Sequence[int]) -> list[str | None]:
        """A large window's why lines: for each paper asked about (present, scored above the
        reader's average), the reader's liked anchor nearest it, if ``WHY_SIMILARITY`` near; of a
        tie, the later one (as :meth:`_nearest_liked` decides it for a small window's batch)."""
        r = self._row[subscriber_id]
        at = np.asarray(positions, dtype=np.int64)
        asked = self.window.present[at] & (self.personal[r, at] > 0)
        out: list[str | None] = [None] * len(at)
        anchors, sketches = self._liked_of(subscriber_id)
        if sketches is None or not asked.any():
            return out
        similarity = np.einsum("ad,md->am", sketches, self.window.sketch[at[asked]])  # anchors × papers asked about
        best = similarity.max(axis=0)
        last = len(anchors) - 1 - np.argmax(similarity[::-1] == best, axis=0)  # of a tie, the later anchor
        for k, b, a in zip(np.flatnonzero(asked).tolist(), best.tolist(), last.tolist()):
            if b >= WHY_SIMILARITY:
                out[k] = self._named(anchors[a])
        return out

    def _named(self, anchor: Anchor) -> str:
        name = self.names.get(anchor.paper_id)
        named = f"\u201c{name}\u201d" if name else anchor.arxiv_id
        return f"like {named}, " + ("one of your seed papers" if anchor.seed else "which you liked")

    def _liked_of(self, subscriber_id: int) -> tuple[list[Anchor], np.ndarray | None]:
        """The reader's liked and seed anchors, and their sketches stacked (None without any)."""
        liked = self._liked.get(subscriber_id)
        if liked is None:
            anchors = [a for a in self.profiles[subscriber_id].anchors if a.vote > 0]
            liked = self._liked[subscriber_id] = (anchors, np.stack([a.sketch for a in anchors]) if anchors else None)
        return liked

    def _nearest_liked(self) -> tuple[list[Anchor], list[list[int]]]:
        """The liked and seed anchors of every profile, and for each profile (row) and candidate
        (column) the index of the nearest of its own anchors, -1 when none is ``WHY_SIMILARITY``
        near; of a tie, the later anchor, as a scan keeping the best so far with ``>=`` would. One
        product for the whole batch, made the first time a digest asks why."""
        if self._nearest is None:
            anchors: list[Anchor] = []
            starts: list[int] = []
            for profile in self.profiles.values():
                starts.append(len(anchors))
                anchors += [a for a in profile.anchors if a.vote > 0]
            nearest = np.full((len(starts), self.window.size), -1, dtype=np.int64)
            if anchors and self.window.size:
                similarity = np.einsum("ad,md->am", np.stack([a.sketch for a in anchors]), self.window.sketch)  # no BLAS threads
                owner = np.repeat(np.arange(len(starts)), np.diff([*starts, len(anchors)]))
                has = np.flatnonzero(np.bincount(owner, minlength=len(starts)))  # profiles with a liked anchor
                best = np.maximum.reduceat(similarity, np.asarray(starts)[has], axis=0)
                rows = np.where(similarity == best[np.searchsorted(has, owner)], np.arange(len(anchors))[:, None], -1)
                last = np.maximum.reduceat(rows, np.asarray(starts)[has], axis=0)
                nearest[has] = np.where(best >= WHY_SIMILARITY, last, -1)
            self._nearest = (anchors, nearest.tolist())
        return self._nearest

    def also_like(self, subscriber_id: int, positions: Iterable[int], limit: int = ALSO_LIKE_MAX) -> list[int]:
        """At most ``limit`` of ``positions`` (papers outside the reader's filters) for a "You may also
        like" block: only for a confident profile, only papers scored well above the reader's average
        and near a paper they liked; best first. Usually none."""
        profile = self.profiles.get(subscriber_id)
        if profile is None or profile.confidence < ALSO_LIKE_CONFIDENCE:
            return []
        r = self._row[subscriber_id]
        at = positions if isinstance(positions, np.ndarray) else np.fromiter(positions, dtype=np.int64)
        scored = at[self.personal[r, at] >= ALSO_LIKE_SCORE]  # few: ordered on their own
        chosen = (p for p in self.order(subscriber_id, scored) if self.why(subscriber_id, p))
        return list(islice(chosen, limit))
