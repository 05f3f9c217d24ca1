"""``like:<arXiv id>``: the papers of a window whose embedding is near that paper's.

A window's :class:`~digest.matching.corpus.Corpus` indexes words, not embeddings, so before its
filters are evaluated, :func:`prepare_likes` finds the ``like:`` ids they name, reads those papers'
embeddings (one query for all of them; the named paper need not be in the window) and the window's
(cached per process, :func:`~digest.matching.profiles.load_window`), and hands the corpus one
bitset per id: the candidates whose cosine to it is at least :data:`LIKE_SIMILARITY`, and always its
:data:`LIKE_NEIGHBOURS` nearest (the named paper itself included; a digest never sends it back), with
each candidate's cosine, which orders the matches of a reader whose lines are all ``like:``. A batch, a preview or ``digest explain`` whose filters name no ``like:``
costs nothing more (one substring test per distinct filter text).

An id no stored paper has (or whose paper has no embedding yet) matches nothing, and is looked up
again by the next batch: once ingest stores that paper, it counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db import among
from digest.matching.expression import terms_of
from digest.matching.profiles import load_window
from digest.matching.topics import Filter
from digest.matching.trending import Candidates
from digest.models import Paper, PaperVector

#: Centred cosine of two unit embeddings (``digest.papers.vectors``) from which a paper counts as
#: "like" another. Among the 61 packaged sample papers, pairs on one topic average 0.14 and pairs on
#: different topics −0.14; at 0.3 a paper has one such neighbour on average (the four quantisation
#: papers are within 0.33–0.47 of each other; the best pair of two different topics, 0.24).
LIKE_SIMILARITY = 0.3
#: ... and the papers of a window nearest to it, however far: on real abstracts most papers of a
#: broad topic have no neighbour at 0.3, and ``like:`` alone kept only the named paper. So a
#: ``like:`` line is never only that paper; a reader whose lines are all ``like:`` gets its
#: matches nearest first (:meth:`digest.matching.select.Matcher.select`).
LIKE_NEIGHBOURS = 10


def like_ids(filters: Iterable[Filter]) -> set[str]:
    """The arXiv ids these filters name in ``like:`` terms."""
    return {t.words[0] for f in filters if "like:" in f.key for t, _ in terms_of(f.expr) if t.field == "like"}


def known_ids(session: Session, arxiv_ids: Iterable[str]) -> dict[str, int]:
    """Which of these arXiv ids are stored papers: id -> paper id (one query)."""
    ids = sorted(set(arxiv_ids))
    if not ids:
        return {}
    return {
        arxiv_id: paper_id
        for arxiv_id, paper_id in session.execute(select(Paper.arxiv_id, Paper.id).where(among(session, Paper.arxiv_id, ids)))
    }


def likes_bits(window_dense: np.ndarray, present: np.ndarray, seeds: dict[str, np.ndarray]) -> tuple[dict[str, int], dict[str, np.ndarray]]:
    """For each id's embedding, the bitset of window positions (trending order) at least
    :data:`LIKE_SIMILARITY` from it or among its :data:`LIKE_NEIGHBOURS` nearest (beside itself),
    and its similarity to each position (-inf where a paper has no embedding)."""
    bits_of: dict[str, int] = {}
    scores: dict[str, np.ndarray] = {}
    if not seeds:
        return bits_of, scores
    ids = list(seeds)
    similarity = np.stack([np.asarray(seeds[i], dtype=np.float32) for i in ids]) @ window_dense.T
    similarity = np.where(present, similarity, -np.inf).astype(np.float32)
    close = similarity >= LIKE_SIMILARITY
    k = min(LIKE_NEIGHBOURS + 1, int(present.sum()))  # + the named paper itself, when it is in the window
    if k:
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        np.put_along_axis(close, nearest, True, axis=1)
    close &= present
    for row, arxiv_id in enumerate(ids):
        bits = 0
        for position in np.flatnonzero(close[row]).tolist():
            bits |= 1 << position
        bits_of[arxiv_id] = bits
        scores[arxiv_id] = similarity[row]
    return bits_of, scores


def only_likes(f: Filter) -> bool:
    """A line of ``like:`` terms only (``like:a``, ``like:a OR like:b``): it asks for papers near
    those, and its matches are ordered by how near they are."""
    terms = terms_of(f.expr)
    return "like:" in f.key and all(t.field == "like" and not negated for t, negated in terms)


def prepare_likes(session: Session, candidates: Candidates, filters: Sequence[Filter], name: Callable[[str], str] | None = None) -> None:
    """Give ``candidates.corpus`` what the ``like:`` terms of ``filters`` match, if it lacks any,
    how near each candidate is, and the named papers' titles as ``name`` writes them (a "why" line)."""
    wanted = like_ids(filters)
    corpus = candidates.corpus
    if not wanted or corpus.has_likes(wanted):
        return
    rows = session.execute(
        select(Paper.arxiv_id, Paper.title, PaperVector.dense)
        .join(PaperVector, PaperVector.paper_id == Paper.id)
        .where(among(session, Paper.arxiv_id, sorted(wanted)))
    ).all()
    seeds = {r.arxiv_id: r.dense for r in rows}
    if seeds:  # an id not found stays unknown to the corpus (matching nothing) and is looked up again next time
        window = load_window(session, candidates)
        bits, scores = likes_bits(window.dense, window.present, seeds)
        corpus.add_likes(bits, scores, {r.arxiv_id: (name or str)(r.title) for r in rows})
