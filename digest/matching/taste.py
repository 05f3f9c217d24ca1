"""A reader's taste: a profile fitted from their votes and seed papers.

The profile (:func:`fit`) is a linear scorer over a paper's two representations (its unit dense
embedding ``d`` and its unit sparse term vector ``s``, both stored at ingest by
``digest.papers.vectors``): ``f(paper) = w_d · d + w_s · s``.

- Below ``CENTROID_BELOW`` signals, or with only likes (or only dislikes), it is the weighted
  centroid (Rocchio): ``w = mean(liked) − DISLIKE_WEIGHT · mean(disliked)`` on each part, a seed
  counting ``SEED_WEIGHT`` of a like.
- From then on, a per-reader logistic regression (liked = 1, disliked = 0, classes balanced) fitted by
  ``STEPS`` gradient steps from that centroid, with an L2 pull of strength ``L2`` back towards it:
  the centroid generalised, that a few noisy votes cannot swing far.

It keeps ``w_d`` (256 float16), the ``PROFILE_TERMS`` heaviest term weights, the counts, and up to
six anchors (the latest liked, seed and disliked papers, each with a 128-dim int8 sketch of its
embedding: wordllama is Matryoshka-trained, so its first 128 dimensions are themselves an
embedding) for the "why" line: 1,824 bytes at most (:data:`PROFILE_MAX_BYTES` is 2 KB). Votes are
the record; a profile is rebuilt from them whenever one arrives (:mod:`digest.matching.profiles`).
How profiles order a digest is :mod:`digest.matching.scoring`.

Math on stored vectors only, no database. Votes belong to subscribers in spirit, but delivery
(below subscribers) must score them, so recording them (``profiles``), fitting (here) and scoring
(``scoring``) all live in matching, the room delivery already reads for a digest's order.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from digest.models import SparseVector

DIM = 256  # the dense embedding
SKETCH_DIM = 128  # an anchor's sketch: the embedding's first 128 dimensions

# the profile
CENTROID_BELOW = 5  # signals (votes + seeds) under which the profile is the centroid
SEED_WEIGHT = 1.0  # a seed paper, against a "more like this" vote
DISLIKE_WEIGHT = 0.5  # Rocchio's gamma: a dislike pulls half as hard as a like pushes
MAX_SIGNALS = 200  # the latest votes and seeds a profile is fitted on
PROFILE_TERMS = 64  # term weights kept
ANCHORS_LIKED, ANCHORS_DISLIKED = 4, 2
PROFILE_MAX_BYTES = 2048

# the per-reader model
L2 = 0.05  # pull towards the centroid
PRIOR_NORM = 3.0  # the centroid's length as a starting point (logistic margins)
STEPS = 100
TRAIN_TERMS = 256  # terms the model may weigh: the heaviest among the voted papers

# the parts a profile may use (the benchmark's ablations take one)
BOTH = ("dense", "sparse")
HALF_CONFIDENCE = 2.0  # signals at which a profile gets half its weight in the blend (digest.matching.scoring)

_HEADER = struct.Struct("<BBHHHBB")  # version, flags, likes, dislikes, seeds, terms, anchors
_ANCHOR = struct.Struct("<qb16s")  # paper id, vote (2 = seed), arXiv id
#: An anchor as stored: ``_ANCHOR`` then its int8 sketch, packed; the anchors of a profile are read in one call.
_ANCHOR_RECORD = np.dtype([("paper_id", "<i8"), ("vote", "i1"), ("arxiv", "S16"), ("sketch", "i1", (SKETCH_DIM,))])
_VERSION = 1


@dataclass(frozen=True)
class Signal:
    """A vote or a seed, with the paper's stored vectors: what a profile is fitted on."""

    paper_id: int
    arxiv_id: str
    vote: int  # +1 or -1 (a seed is +1)
    seed: bool
    dense: np.ndarray
    sparse: SparseVector


@dataclass(frozen=True)
class Anchor:
    """A paper the reader voted on, kept in the profile to say why a paper is there."""

    paper_id: int
    arxiv_id: str
    vote: int
    seed: bool
    sketch: np.ndarray  # unit, SKETCH_DIM


@dataclass(frozen=True)
class Profile:
    dense: np.ndarray  # w_d, unit length (float32, DIM)
    terms: np.ndarray  # uint32 term ids of w_s
    weights: np.ndarray  # their weights, unit length
    likes: int
    dislikes: int
    seeds: int
    learned: bool  # the logistic model (else the centroid)
    anchors: tuple[Anchor, ...] = ()

    @property
    def signals(self) -> int:
        return self.likes + self.dislikes + self.seeds

    @property
    def confidence(self) -> float:
        """How much of ``PERSONAL_WEIGHT`` this profile gets: n / (n + HALF_CONFIDENCE)."""
        return self.signals / (self.signals + HALF_CONFIDENCE)

    def to_bytes(self) -> bytes:
        flags = 1 if self.learned else 0
        out = [_HEADER.pack(_VERSION, flags, self.likes, self.dislikes, self.seeds, len(self.terms), len(self.anchors))]
        out += [self.dense.astype("<f2").tobytes(), self.terms.astype("<u4").tobytes(), self.weights.astype("<f2").tobytes()]
        for a in self.anchors:
            out.append(_ANCHOR.pack(a.paper_id, 2 if a.seed else a.vote, a.arxiv_id.encode("ascii", "replace")[:16]))
            out.append(np.clip(np.round(a.sketch * 127), -127, 127).astype(np.int8).tobytes())
        data = b"".join(out)
        if len(data) > PROFILE_MAX_BYTES:
            raise ValueError(f"a profile of {len(data)} bytes is over {PROFILE_MAX_BYTES}")
        return data

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        """Raises ValueError for anything but what :meth:`to_bytes` wrote in this version."""
        try:
            return cls._decode(data)
        except (struct.error, IndexError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a profile: {exc}") from exc

    @classmethod
    def _decode(cls, data: bytes) -> Profile:
        version, flags, likes, dislikes, seeds, n_terms, n_anchors = _HEADER.unpack_from(data)
        if version != _VERSION:
            raise ValueError(f"profile version {version} is not {_VERSION}")
        at = _HEADER.size
        dense = np.frombuffer(data, "<f2", DIM, at).astype(np.float32)
        at += 2 * DIM
        terms = np.frombuffer(data, "<u4", n_terms, at).astype(np.uint32)
        at += 4 * n_terms
        weights = np.frombuffer(data, "<f2", n_terms, at).astype(np.float32)
        at += 2 * n_terms
        records = np.frombuffer(data, _ANCHOR_RECORD, n_anchors, at)  # a batch decodes a profile per reader: no loop of struct reads
        sketches = _unit_rows(records["sketch"].astype(np.float32))  # int8 squares sum exactly: same as one at a time
        anchors = [
            Anchor(paper_id, arxiv.decode("ascii"), 1 if vote == 2 else vote, vote == 2, sketch)
            for paper_id, vote, arxiv, sketch in zip(
                records["paper_id"].tolist(), records["vote"].tolist(), records["arxiv"].tolist(), sketches
            )
        ]
        return cls(dense, terms, weights, likes, dislikes, seeds, bool(flags & 1), tuple(anchors))


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return (v / norm).astype(np.float32) if norm > 0 else v.astype(np.float32)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def sketch(dense: np.ndarray) -> np.ndarray:
    """The first ``SKETCH_DIM`` dimensions of unit embeddings, unit again (one row or a matrix)."""
    head = np.asarray(dense, dtype=np.float32)[..., :SKETCH_DIM]
    norms = np.linalg.norm(head, axis=-1, keepdims=True)
    return head / np.where(norms > 0, norms, 1.0)


# ---------------------------------------------------------------- fitting


def fit(signals: Sequence[Signal], parts: Sequence[str] = BOTH) -> Profile | None:
    """A profile from the reader's signals, newest first (None: no signals).

    ``parts``: the representations the profile may use (the benchmark's ablations).
    """
    signals = list(signals)[:MAX_SIGNALS]
    if not signals:
        return None
    liked = np.array([s.vote > 0 for s in signals])
    weight = np.array([SEED_WEIGHT if s.seed else 1.0 for s in signals], dtype=np.float32)
    dense = np.stack([s.dense for s in signals]).astype(np.float32)
    vocabulary, sparse = _term_matrix([s.sparse for s in signals])

    def centroid(x: np.ndarray) -> np.ndarray:
        out = np.zeros(x.shape[1], dtype=np.float32)
        if liked.any():
            out += np.average(x[liked], axis=0, weights=weight[liked])
        if (~liked).any():
            out -= DISLIKE_WEIGHT * np.average(x[~liked], axis=0, weights=weight[~liked])
        return out

    w_dense, w_sparse = centroid(dense), centroid(sparse)
    if "dense" not in parts:
        w_dense[:] = 0
    if "sparse" not in parts:
        w_sparse[:] = 0
    learned = len(signals) >= CENTROID_BELOW and liked.any() and (~liked).any()
    if learned:
        w_dense, w_sparse = _logistic(dense, sparse, liked, weight, w_dense, w_sparse, parts)
    keep = np.argsort(-np.abs(w_sparse), kind="stable")[:PROFILE_TERMS]
    keep = keep[w_sparse[keep] != 0]
    likes = sum(1 for s in signals if s.vote > 0 and not s.seed)
    seeds = sum(1 for s in signals if s.seed)
    return Profile(
        dense=_unit(w_dense),
        terms=vocabulary[keep],
        weights=_unit(w_sparse[keep]),
        likes=likes,
        dislikes=len(signals) - likes - seeds,
        seeds=seeds,
        learned=bool(learned),
        anchors=_anchors(signals),
    )


def _term_matrix(vectors: Sequence[SparseVector]) -> tuple[np.ndarray, np.ndarray]:
    """The ``TRAIN_TERMS`` heaviest terms of these vectors, and their weights as a dense matrix."""
    if not vectors or not sum(len(v.terms) for v in vectors):
        return np.zeros(0, np.uint32), np.zeros((len(vectors), 0), np.float32)
    rows = np.concatenate([np.full(len(v.terms), i) for i, v in enumerate(vectors)])
    terms = np.concatenate([v.terms for v in vectors])
    weights = np.concatenate([v.weights for v in vectors]).astype(np.float32)
    vocabulary, column = np.unique(terms, return_inverse=True)
    matrix = np.zeros((len(vectors), len(vocabulary)), dtype=np.float32)
    matrix[rows, column] = weights
    if len(vocabulary) > TRAIN_TERMS:
        top = np.sort(np.argsort(-np.abs(matrix).sum(axis=0), kind="stable")[:TRAIN_TERMS])
        vocabulary, matrix = vocabulary[top], matrix[:, top]
    return vocabulary, matrix


def _logistic(dense, sparse, liked, weight, w_dense, w_sparse, parts) -> tuple[np.ndarray, np.ndarray]:
    """Class-balanced logistic regression from the centroid, pulled back to it by ``L2``."""
    x = np.hstack([dense if "dense" in parts else np.zeros_like(dense), sparse if "sparse" in parts else np.zeros_like(sparse)])
    x = x - x.mean(axis=0)  # the bias takes what all papers share
    y = np.where(liked, 1.0, -1.0)
    c = weight * np.where(liked, 0.5 / max(liked.sum(), 1), 0.5 / max((~liked).sum(), 1))
    prior = np.concatenate([w_dense, w_sparse])
    norm = float(np.linalg.norm(prior))
    prior = prior * (PRIOR_NORM / norm) if norm > 0 else prior
    w, b = prior.copy(), 0.0
    rate = 1.0 / (0.25 * float((x * x).sum(axis=1).max()) + L2)
    for _ in range(STEPS):
        margin = y * (x @ w + b)
        g = -c * y / (1.0 + np.exp(np.clip(margin, -30, 30)))  # d loss / d score
        w -= rate * (x.T @ g + L2 * (w - prior))
        b -= rate * float(g.sum())
    return w[:DIM].astype(np.float32), w[DIM:].astype(np.float32)


def _anchors(signals: Sequence[Signal]) -> tuple[Anchor, ...]:
    positive = [s for s in signals if s.vote > 0][:ANCHORS_LIKED]
    negative = [s for s in signals if s.vote < 0][:ANCHORS_DISLIKED]
    return tuple(Anchor(s.paper_id, s.arxiv_id, s.vote, s.seed, sketch(s.dense)) for s in positive + negative)
