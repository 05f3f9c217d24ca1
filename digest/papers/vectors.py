"""A paper's two representations, computed once when ingest first stores it: nothing recomputes them.

**Dense**: the mean of WordLlama's token embeddings (``l2_supercat``, 256 dimensions) over the title
and the abstract, minus :data:`CENTER`, scaled to unit length and stored as float16 (512 bytes).
The model's weights and tokenizer ship inside the ``wordllama`` wheel; :func:`embedder` loads them
from the installed package's folder with downloads disabled, so no run, test or CI ever fetches
weights. ``CENTER`` is the mean embedding of the packaged sample papers (``embedding_center.npy``,
made by :func:`make_center`): every paper's raw embedding shares a large common direction (two
unrelated papers have a cosine of about 0.5), and without it a topic barely shows (same-topic
pairs of the sample 0.57 against 0.57 for different topics; centred, 0.14 against −0.14).

**Sparse**: TF-IDF over hashed terms. Terms are the title's and the abstract's words (lower-cased,
stop words and numbers dropped, a plural ``s`` folded), the title's word pairs, and the authors'
names (``author:ada lovelace``). Each occurrence counts ``FIELD_WEIGHTS`` (a title word twice an
abstract word); a term's weight is ``(1 + ln tf) · (ln((1 + N) / (1 + df)) + 1)`` with ``df`` the
number of represented papers containing it (``term_counts``, this batch included) and ``N`` their
count. The ``TERMS_KEPT`` heaviest stay, scaled to unit length, stored as uint32 term hashes (the
first four bytes of BLAKE2b) and float16 weights. A paper's IDF is that of the day it was stored.

Ingest calls :func:`represent` in its transaction for every paper it stored that has no vectors of
the current :data:`MODEL` yet (a paper's title, abstract and authors never change after it is first
seen, so those are the new ones, and older papers when the model changes).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
from collections.abc import Iterable, Sequence
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digest.db import among
from digest.models import Paper, PaperVector, SparseVector, TermCount, utcnow

WORDLLAMA_CONFIG = "l2_supercat"
DIM = 256
TERMS_KEPT = 48  # heaviest terms kept per paper
FIELD_WEIGHTS = {"title": 2.0, "abstract": 1.0, "title_pair": 1.5, "author": 1.5}
AUTHORS_KEPT = 20  # a 300-author paper is not about its 300 authors
TERMS_VERSION = 1  # bump when the term rules or weights change
CENTER_FILE = Path(__file__).parent / "embedding_center.npy"
CENTER = np.load(CENTER_FILE)  # shipped in the package, like the sample papers
MODEL = (  # what made a stored vector: a change of any part makes ingest compute it again
    f"wordllama {version('wordllama')} {WORDLLAMA_CONFIG}-{DIM}"
    f" c{hashlib.blake2b(CENTER.tobytes(), digest_size=4).hexdigest()} terms v{TERMS_VERSION}"
)
EMBED_BATCH = 32  # texts per padded batch (texts sorted by length first, so little padding)
CHUNK = 500  # rows per INSERT
IDS_PER_QUERY = 5000  # ids in one ANY/IN list

WORD_RE = re.compile(r"[^\W_]+")
STOPWORDS = frozenset(
    """a an the and or of to in on for with by from as at is are was were be been being this that these
    those it its we our us they their them which who whom whose what when where while than then there
    here such can could may might will would should shall do does did done not no nor but if so also
    into onto over under between among across via per both each other more most less least many much
    few some any all only own same very just even however thus hence therefore whereas although though
    since because about above below up down out off again further once new show shows shown propose
    proposed present presents paper work works approach approaches method methods result results using
    use used based two one three first second well yet within without toward towards often has have
    had how why existing significantly demonstrate demonstrates achieve achieves achieving extensive
    experiments experimental state art novel key large model models performance task tasks data""".split()
)

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- the embedding model


class EmbedderMissing(RuntimeError):
    """The wordllama package's weights or tokenizer are not where the wheel puts them."""


def model_files() -> tuple[Path, Path]:
    """Where the installed ``wordllama`` package keeps the weights and tokenizer we load.

    WordLlama.load looks for its tokenizer in ``<package>/tokenizer/`` (singular) first, but the
    wheel ships it in ``<package>/tokenizers/``; it then tries ``<cache_dir>/tokenizers/``. Giving
    the package folder itself as ``cache_dir`` makes that second place the shipped file.
    """
    spec = find_spec("wordllama")
    if spec is None or spec.origin is None:
        raise EmbedderMissing("the wordllama package is not installed")
    package = Path(spec.origin).parent
    return (
        package / "weights" / f"{WORDLLAMA_CONFIG}_{DIM}.safetensors",
        package / "tokenizers" / f"{WORDLLAMA_CONFIG}_tokenizer_config.json",
    )


@functools.lru_cache(maxsize=1)
def embedder():
    """WordLlama from the installed wheel's own files, downloads disabled; one per process.

    Imported here, not at the top: ``import wordllama`` takes about a second and calls
    ``logging.basicConfig(level=INFO)`` on the root logger, which we undo (the process's logging
    is the application's to configure).
    """
    weights, tokenizer = model_files()
    for path in (weights, tokenizer):
        if not path.is_file():
            raise EmbedderMissing(f"{path} is missing: reinstall wordllama (its wheel ships the model)")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing below may reach the hub, whatever happens
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        from wordllama import WordLlama
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    return WordLlama.load(WORDLLAMA_CONFIG, cache_dir=weights.parent.parent, dim=DIM, disable_download=True)


def embed_raw(texts: Sequence[str]) -> np.ndarray:
    """WordLlama's unit embeddings of ``texts`` (float32, ``len(texts)`` × 256), in one call.

    Texts go through the model shortest first, so each padded batch holds texts of similar length.
    """
    out = np.zeros((len(texts), DIM), dtype=np.float32)
    if not texts:
        return out
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = embedder().embed([texts[i] or " " for i in order], norm=False, batch_size=EMBED_BATCH)
    out[order] = _unit_rows(vectors)
    return out


def embed(texts: Sequence[str]) -> np.ndarray:
    """The stored dense vectors of ``texts``: unit embeddings, centred on :data:`CENTER`, unit again."""
    return _unit_rows(embed_raw(texts) - CENTER)


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def make_center(texts: Sequence[str], path: Path = CENTER_FILE) -> None:
    """Write the mean raw embedding of ``texts`` as the centre (done once, from the sample papers:
    ``[dense_text(i["paper"]["title"], i["paper"]["summary"]) for i in sample_items()]``).
    A new centre changes :data:`MODEL`, so ingest represents the papers it touches again."""
    np.save(path, embed_raw(texts).mean(axis=0).astype("<f4"))


def dense_text(title: str, abstract: str) -> str:
    return f"{title}. {abstract}" if abstract else title


# ---------------------------------------------------------------- terms


def term_id(term: str) -> int:
    """A term's uint32 id: the first four bytes of its BLAKE2b digest (stable across processes)."""
    return int.from_bytes(hashlib.blake2b(term.encode("utf-8"), digest_size=4).digest(), "little")


def _words(text: str) -> list[str]:
    out = []
    for word in WORD_RE.findall(text.lower()):
        if len(word) < 3 or word in STOPWORDS or word.isdigit():
            continue
        if len(word) > 4 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
            word = word[:-1]
        out.append(word)
    return out


def term_frequencies(title: str, abstract: str, authors: Iterable[str]) -> dict[int, float]:
    """A paper's field-weighted term counts, by term id."""
    counts: dict[int, float] = {}

    def add(term: str, weight: float) -> None:
        key = term_id(term)
        counts[key] = counts.get(key, 0.0) + weight

    title_words = _words(title)
    for word in title_words:
        add(word, FIELD_WEIGHTS["title"])
    for first, second in zip(title_words, title_words[1:]):
        add(f"{first} {second}", FIELD_WEIGHTS["title_pair"])
    for word in _words(abstract):
        add(word, FIELD_WEIGHTS["abstract"])
    for name in list(authors)[:AUTHORS_KEPT]:
        name = " ".join(name.lower().split())
        if name:
            add(f"author:{name}", FIELD_WEIGHTS["author"])
    return counts


def tf_idf(counts: dict[int, float], df: dict[int, int], n_papers: int, kept: int = TERMS_KEPT) -> SparseVector:
    """The ``kept`` heaviest terms of a paper, unit length (heaviest first)."""
    if not counts:
        return SparseVector(np.zeros(0, np.uint32), np.zeros(0, np.float32))
    terms = np.fromiter(counts.keys(), dtype=np.uint32, count=len(counts))
    tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
    papers = np.fromiter((df.get(t, 1) for t in counts), dtype=np.float64, count=len(counts))
    weights = (1.0 + np.log(tf)) * (np.log((1.0 + n_papers) / (1.0 + papers)) + 1.0)
    top = np.argsort(-weights, kind="stable")[:kept]
    weights = weights[top]
    return SparseVector(terms[top], (weights / np.linalg.norm(weights)).astype(np.float32))


# ---------------------------------------------------------------- storing


def _insert(session: Session):
    return {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[session.get_bind().dialect.name]


def count_terms(session: Session, new: Sequence[dict[int, float]], terms: Iterable[int]) -> tuple[dict[int, int], int]:
    """Add the ``new`` papers' terms to ``term_counts``; returns the document frequency of ``terms``
    and the number of represented papers, both counting the new ones. Terms go in sorted, so two
    ingests at once never deadlock."""
    increments: dict[int, int] = {}
    for paper in new:
        for term in paper:
            increments[term] = increments.get(term, 0) + 1
    insert = _insert(session)
    added = sorted(increments)
    for start in range(0, len(added), CHUNK):
        stmt = insert(TermCount).values([{"term": t, "papers": increments[t]} for t in added[start : start + CHUNK]])
        session.execute(
            stmt.on_conflict_do_update(index_elements=[TermCount.term], set_={"papers": TermCount.papers + stmt.excluded.papers})
        )
    wanted = sorted(set(terms))
    df: dict[int, int] = {}
    for start in range(0, len(wanted), IDS_PER_QUERY):
        chunk = wanted[start : start + IDS_PER_QUERY]
        df.update(
            tuple(row) for row in session.execute(select(TermCount.term, TermCount.papers).where(among(session, TermCount.term, chunk)))
        )
    n_papers = session.scalar(select(func.count()).select_from(PaperVector)) + len(new)
    return df, n_papers


def represent(session: Session, arxiv_ids: Iterable[str] | None = None) -> int:
    """Compute and store the vectors of these papers (all papers: ``None``) that have none of the
    current :data:`MODEL`, in one batch; returns how many. The caller commits.

    A paper represented by an older model is represented again; its terms were counted already.
    The papers' ``updated_at`` is stamped: a window's candidates, cached per process with their
    vectors, are then loaded again (:func:`digest.matching.trending.window_candidates`).
    """
    query = (
        select(Paper.id, Paper.title, Paper.abstract, Paper.authors, PaperVector.paper_id.is_not(None).label("had"))
        .outerjoin(PaperVector, PaperVector.paper_id == Paper.id)
        .where(or_(PaperVector.paper_id.is_(None), PaperVector.model != MODEL))
        .order_by(Paper.id)
    )
    if arxiv_ids is None:
        rows = list(session.execute(query))
    else:
        ids, rows = sorted(set(arxiv_ids)), []
        for start in range(0, len(ids), IDS_PER_QUERY):
            rows += session.execute(query.where(among(session, Paper.arxiv_id, ids[start : start + IDS_PER_QUERY]))).all()
    if not rows:
        return 0
    dense = embed([dense_text(r.title, r.abstract or "") for r in rows])
    counts = [term_frequencies(r.title, r.abstract or "", r.authors or ()) for r in rows]
    stale = [r.id for r in rows if r.had]
    if stale:
        session.execute(delete(PaperVector).where(among(session, PaperVector.paper_id, stale)))
    new = [c for c, r in zip(counts, rows) if not r.had]
    df, n_papers = count_terms(session, new, (t for c in counts for t in c))
    n_papers += len(rows) - len(new)
    values = [{"paper_id": r.id, "model": MODEL, "dense": dense[i], "sparse": tf_idf(counts[i], df, n_papers)} for i, r in enumerate(rows)]
    insert = _insert(session)
    for start in range(0, len(values), CHUNK):
        stmt = insert(PaperVector).values(values[start : start + CHUNK])
        session.execute(stmt.on_conflict_do_nothing(index_elements=[PaperVector.paper_id]))
    now = utcnow()
    for start in range(0, len(rows), IDS_PER_QUERY):
        session.execute(
            update(Paper).where(among(session, Paper.id, [r.id for r in rows[start : start + IDS_PER_QUERY]])).values(updated_at=now)
        )
    log.info("represented %d papers", len(values))
    return len(values)
