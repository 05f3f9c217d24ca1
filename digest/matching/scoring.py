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

import numpy as np

from digest.matching.taste import BOTH, DIM, Profile, sketch
from digest.models import SparseVector

DENSE_SHARE, SPARSE_SHARE = 0.6, 0.4
PERSONAL_CLIP = 2.5
TREND_WEIGHT = 1.0
PERSONAL_WEIGHT = 3.0

# "You may also like" and the "why" line
ALSO_LIKE_MAX = 3
ALSO_LIKE_CONFIDENCE = 0.6  # c ≥ 0.6: at least 5 votes and seeds
ALSO_LIKE_SCORE = 1.5  # P ≥ 1.5: well above the reader's average candidate
WHY_SIMILARITY = 0.35  # sketch cosine to a liked paper for "like …": 8 in 10 such pairs share a topic (bench)


def standardize(x: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    """Each row as z-scores over its ``present`` columns (others 0); a constant row is all 0."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    present = np.ones(x.shape[1], bool) if present is None else present
    out = np.zeros_like(x)
    if present.sum() < 2:
        return out
    mean = x[:, present].mean(axis=1, keepdims=True)
    std = x[:, present].std(axis=1, keepdims=True)
    ok = std[:, 0] > 1e-6
    out[np.ix_(ok, present)] = (x[np.ix_(ok, present)] - mean[ok]) / std[ok]
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
        self._rows = np.concatenate(rows) if rows else np.zeros(0, int)
        self._terms = np.concatenate(terms) if terms else np.zeros(0, np.uint32)
        self._weights = np.concatenate(weights).astype(np.float32) if weights else np.zeros(0, np.float32)
        self.trend = standardize(np.log1p(np.maximum(np.asarray(upvotes, dtype=np.float32), 0)))[0] if self.size else np.zeros(0)

    def personal(self, profiles: Sequence[Profile], parts: Sequence[str] = BOTH) -> np.ndarray:
        """The personal score ``P`` of every candidate for every profile: N × M, in a few matrix products."""
        n = len(profiles)
        if not n or not self.size:
            return np.zeros((n, self.size), dtype=np.float32)
        mixed = np.zeros((n, self.size), dtype=np.float32)
        if "dense" in parts:
            raw = np.stack([p.dense for p in profiles]) @ self.dense.T
            mixed += DENSE_SHARE * standardize(raw, self.present)
        if "sparse" in parts:
            mixed += SPARSE_SHARE * standardize(self._sparse_scores(profiles), self.present)
        return np.clip(standardize(mixed, self.present), -PERSONAL_CLIP, PERSONAL_CLIP)

    def _sparse_scores(self, profiles: Sequence[Profile]) -> np.ndarray:
        """``W_s · Sᵀ`` over the terms the profiles use (the candidates' other terms cannot count)."""
        used = np.unique(np.concatenate([p.terms for p in profiles]))
        weights = np.zeros((len(profiles), len(used)), dtype=np.float32)
        for r, p in enumerate(profiles):
            weights[r, np.searchsorted(used, p.terms)] = p.weights
        papers = np.zeros((self.size, len(used)), dtype=np.float32)
        if len(used) and len(self._terms):
            column = np.minimum(np.searchsorted(used, self._terms), len(used) - 1)
            hit = used[column] == self._terms
            papers[self._rows[hit], column[hit]] = self._weights[hit]
        return weights @ papers.T

    def most_like(self, dense: np.ndarray, limit: int = 3, exclude: Iterable[int] = ()) -> list[int]:
        """Positions of the ``limit`` candidates nearest to an embedding (cosine), nearest first."""
        similarity = np.where(self.present, self.dense @ np.asarray(dense, dtype=np.float32), -np.inf)
        similarity[list(exclude)] = -np.inf
        best = np.argsort(-similarity, kind="stable")[:limit]
        return [int(i) for i in best if np.isfinite(similarity[i])]


@dataclass(frozen=True)
class ScoreParts:
    """What ordered one paper for one reader (``digest explain``)."""

    trending: float  # T
    personal: float  # P (0 without a profile)
    weight: float  # PERSONAL_WEIGHT · c (0 without a profile)
    final: float


class Taste:
    """One batch's readers scored against one window, all at once: the order, why, "you may also like"."""

    def __init__(self, window: Window, profiles: Mapping[int, Profile], parts: Sequence[str] = BOTH) -> None:
        self.window = window
        self.profiles = dict(profiles)
        self._row = {subscriber_id: i for i, subscriber_id in enumerate(self.profiles)}
        self.personal = window.personal(list(self.profiles.values()), parts)
        self._weight = np.array([PERSONAL_WEIGHT * p.confidence for p in self.profiles.values()], dtype=np.float32)

    def order(self, subscriber_id: int, positions: Iterable[int]) -> list[int]:
        """``positions`` (trending ranks, ascending) in this reader's order: unchanged without a profile."""
        positions = list(positions)
        r = self._row.get(subscriber_id)
        if r is None or not positions:
            return positions
        at = np.asarray(positions)
        final = self.window.trend[at] + self._weight[r] * self.personal[r, at]
        return [int(i) for i in at[np.lexsort((at, -final))]]

    def parts(self, subscriber_id: int, position: int) -> ScoreParts:
        trending = float(self.window.trend[position])
        r = self._row.get(subscriber_id)
        if r is None:
            return ScoreParts(trending, 0.0, 0.0, trending)
        personal, weight = float(self.personal[r, position]), float(self._weight[r])
        return ScoreParts(trending, personal, weight, trending + weight * personal)

    def why(self, subscriber_id: int, position: int) -> str | None:
        """ "like 2501.12345, which you liked": the nearest liked or seed paper, when near enough."""
        profile = self.profiles.get(subscriber_id)
        if profile is None or not self.window.present[position] or self.personal[self._row[subscriber_id], position] <= 0:
            return None
        best, similarity = None, WHY_SIMILARITY
        for anchor in profile.anchors:
            s = float(anchor.sketch @ self.window.sketch[position])
            if anchor.vote > 0 and s >= similarity:
                best, similarity = anchor, s
        if best is None:
            return None
        return f"like {best.arxiv_id}, " + ("one of your seed papers" if best.seed else "which you liked")

    def also_like(self, subscriber_id: int, positions: Iterable[int], limit: int = ALSO_LIKE_MAX) -> list[int]:
        """At most ``limit`` of ``positions`` (papers outside the reader's filters) for a "You may also
        like" block: only for a confident profile, only papers scored well above the reader's average
        and near a paper they liked; best first. Usually none."""
        profile = self.profiles.get(subscriber_id)
        if profile is None or profile.confidence < ALSO_LIKE_CONFIDENCE:
            return []
        r = self._row[subscriber_id]
        chosen = [p for p in self.order(subscriber_id, positions) if self.personal[r, p] >= ALSO_LIKE_SCORE]
        return [p for p in chosen if self.why(subscriber_id, p)][:limit]
