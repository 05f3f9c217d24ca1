"""``like:<arXiv id>``: the papers of a window whose embedding is near that paper's.

A window's :class:`~digest.matching.corpus.Corpus` indexes words, not embeddings, so before its
filters are evaluated, :func:`prepare_likes` finds the ``like:`` ids they name, reads those papers'
embeddings (one query for all of them; the named paper need not be in the window) and the window's
(cached per process, :func:`~digest.matching.profiles.load_window`), and hands the corpus one
bitset per id: the candidates whose cosine to it is at least :data:`LIKE_SIMILARITY`, the named
paper itself included. A batch, a preview or ``digest explain`` whose filters name no ``like:``
costs nothing more (one substring test per distinct filter text).

An id no stored paper has (or whose paper has no embedding yet) matches nothing, and is looked up
again by the next batch: once ingest stores that paper, it counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

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


def likes_bits(window_dense: np.ndarray, present: np.ndarray, seeds: dict[str, np.ndarray]) -> dict[str, int]:
    """For each id's embedding, the bitset of window positions (trending order) at least
    :data:`LIKE_SIMILARITY` from it."""
    out: dict[str, int] = {}
    if not seeds:
        return out
    ids = list(seeds)
    similarity = np.stack([np.asarray(seeds[i], dtype=np.float32) for i in ids]) @ window_dense.T
    close = (similarity >= LIKE_SIMILARITY) & present
    for row, arxiv_id in enumerate(ids):
        bits = 0
        for position in np.flatnonzero(close[row]).tolist():
            bits |= 1 << position
        out[arxiv_id] = bits
    return out


def prepare_likes(session: Session, candidates: Candidates, filters: Sequence[Filter]) -> None:
    """Give ``candidates.corpus`` what the ``like:`` terms of ``filters`` match, if it lacks any."""
    wanted = like_ids(filters)
    corpus = candidates.corpus
    if not wanted or corpus.has_likes(wanted):
        return
    rows = session.execute(
        select(Paper.arxiv_id, PaperVector.dense)
        .join(PaperVector, PaperVector.paper_id == Paper.id)
        .where(among(session, Paper.arxiv_id, sorted(wanted)))
    )
    seeds = {arxiv_id: dense for arxiv_id, dense in rows}
    if seeds:  # an id not found stays unknown to the corpus (matching nothing) and is looked up again next time
        window = load_window(session, candidates)
        corpus.add_likes(likes_bits(window.dense, window.present, seeds))
