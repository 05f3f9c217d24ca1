"""The peers' ranking methods, as each project does it, for ``bench ranking`` to set beside ours.

- :class:`SvmRank`: arxiv-sanity-lite's ``svm_rank`` (serve.py, karpathy/arxiv-sanity-lite at
  d7a303b): TF-IDF of ``title summary authors`` (compute.py's ``TfidfVectorizer``: English stop
  words, word 1- and 2-grams, sublinear tf, l2), one ``LinearSVC(class_weight="balanced",
  max_iter=10000, tol=1e-6, C=0.01)`` per reader fitted on every paper it knows, the reader's liked
  papers 1 and all the rest 0 (a "less like this" is just one more 0: it has no dislikes), the
  candidates ordered by ``decision_function``. compute.py's document-frequency cut-offs
  (``min_df=5, max_df=0.1``) are made for its corpus of ~10⁵ arXiv papers: on 61 papers they keep
  only the words of 5 or 6 papers, and ``max_df=0.1`` drops every word of a topic with more than a
  tenth of the papers (here most topics' own words). :data:`DF_CUTOFFS` has both: ``"none"``
  (min_df=1, max_df=1.0) and ``"theirs"``.
- :func:`recency_weighted_similarity`: zotero-arxiv-daily's reranker (reranker/base.py,
  TideDra/zotero-arxiv-daily at 916cae5): the reader's library (here: the papers they liked) sorted
  newest first, weights ``1 / (1 + log10(rank + 1))`` normalised to sum 1, a candidate's score
  ``10 · Σ weight · cos(candidate, liked)``. It embeds abstracts with a sentence-transformers model;
  here the project's own dense embedding (``digest.papers.vectors``, wordllama over title and
  abstract, centred, unit) stands in, so the comparison is of the method, not of the model.

Without a liked paper neither has anything to rank by (arxiv-sanity returns nothing, a zotero
library is never empty): both then keep today's trending order, as our digest does.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.svm import LinearSVC

C = 0.01  # serve.py: "sensible default, i think"
DF_CUTOFFS = {"none": (1, 1.0), "theirs": (5, 0.1)}


def svm_text(title: str, abstract: str, authors: Sequence[str]) -> str:
    """What compute.py feeds its vectorizer for one paper."""
    return " ".join([title, abstract, " ".join(authors)])


class SvmRank:
    """arxiv-sanity-lite's features over a set of known papers, and its per-reader SVM over them."""

    def __init__(self, texts: Sequence[str], cutoffs: str = "none") -> None:
        min_df, max_df = DF_CUTOFFS[cutoffs]
        vectorizer = TfidfVectorizer(
            input="content",
            encoding="utf-8",
            decode_error="replace",
            strip_accents="unicode",
            lowercase=True,
            analyzer="word",
            stop_words="english",
            token_pattern=r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b",
            ngram_range=(1, 2),
            max_features=20000,
            norm="l2",
            use_idf=True,
            smooth_idf=True,
            sublinear_tf=True,
            max_df=max_df,
            min_df=min_df,
        )
        self.x = vectorizer.fit_transform(texts).astype(np.float32)

    def scores(self, liked: Sequence[int], candidates: Sequence[int]) -> np.ndarray | None:
        """Decision values of ``candidates`` (rows of the known papers) for a reader who liked the
        rows ``liked``; None without a liked paper (nothing to learn from)."""
        if not len(liked):
            return None
        y = np.zeros(self.x.shape[0], dtype=np.float32)
        y[list(liked)] = 1.0
        if y.all():
            return np.zeros(len(candidates))
        clf = LinearSVC(class_weight="balanced", verbose=False, max_iter=10000, tol=1e-6, C=C)
        clf.fit(self.x, y)
        return clf.decision_function(self.x[list(candidates)])


def recency_weighted_similarity(candidates: np.ndarray, liked_newest_first: np.ndarray) -> np.ndarray | None:
    """zotero-arxiv-daily's score of each candidate embedding (rows, unit) against the liked papers'
    (rows, unit, the most recently liked first); None without a liked paper."""
    if not len(liked_newest_first):
        return None
    weight = 1 / (1 + np.log10(np.arange(len(liked_newest_first)) + 1))
    weight = weight / weight.sum()
    return (candidates @ liked_newest_first.T * weight).sum(axis=1) * 10
