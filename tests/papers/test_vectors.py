"""Paper vectors: computed by ingest, once, for the papers it stores; the model loads offline."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import date

import numpy as np
from click.testing import CliRunner
from papers_api import GOOD_DAY
from sqlalchemy import delete, func, select
from support import subprocess_env

from digest.cli import main
from digest.db import session_scope
from digest.models import Paper, PaperVector, TermCount
from digest.papers.ingest import ingest_days
from digest.papers.sources.daily_papers import PapersClient
from digest.papers.vectors import DIM, MODEL, TERMS_KEPT, model_files, term_frequencies, term_id, tf_idf

FAST = dict(connect_timeout=1.0, read_timeout=1.0, deadline=5.0, retries=1, backoff=0.01, max_retry_after=1.0)


def ingest(settings):
    return ingest_days(settings, [date.fromisoformat(GOOD_DAY)], client=PapersClient(settings, **FAST))


def vectors(settings) -> dict[str, PaperVector]:
    with session_scope(settings) as session:
        rows = session.execute(select(Paper.arxiv_id, PaperVector).join(PaperVector, PaperVector.paper_id == Paper.id))
        return {arxiv_id: vector for arxiv_id, vector in rows}


def test_ingest_stores_both_representations_of_every_new_paper(settings, api):
    live = settings.with_(source_url=api.url)
    api.scenario(GOOD_DAY, "good")
    ingest(live)
    stored = vectors(live)
    assert len(stored) == 5
    for v in stored.values():
        assert v.model == MODEL
        assert v.dense.shape == (DIM,) and abs(float(np.linalg.norm(v.dense)) - 1) < 1e-2
        assert 0 < len(v.sparse.terms) <= TERMS_KEPT and abs(float(np.linalg.norm(v.sparse.weights)) - 1) < 1e-2
    with session_scope(live) as session:
        raw = session.execute(select(func.length(PaperVector.dense))).scalars().all()
        assert set(raw) == {2 * DIM}  # float16
        lovelace = session.scalar(select(TermCount.papers).where(TermCount.term == term_id("author:xingtai lv")))
        assert lovelace == 1


def test_a_second_ingest_computes_nothing_again(settings, api):
    live = settings.with_(source_url=api.url)
    api.scenario(GOOD_DAY, "good")
    ingest(live)
    before = {k: (v.created_at, v.dense.tobytes()) for k, v in vectors(live).items()}
    with session_scope(live) as session:
        counts = dict(session.execute(select(TermCount.term, TermCount.papers)).all())
    ingest(live)
    assert {k: (v.created_at, v.dense.tobytes()) for k, v in vectors(live).items()} == before
    with session_scope(live) as session:
        assert dict(session.execute(select(TermCount.term, TermCount.papers)).all()) == counts


def test_terms_weigh_the_title_over_the_abstract_and_count_authors():
    counts = term_frequencies("Video diffusion", "Diffusion of videos, again diffusion.", ["Ada  Lovelace"])
    assert counts[term_id("diffusion")] == 2.0 + 2 * 1.0
    assert counts[term_id("video diffusion")] == 1.5
    assert counts[term_id("author:ada lovelace")] == 1.5
    assert counts[term_id("video")] == 2.0 + 1.0  # "videos" folded to "video"
    assert term_id("of") not in counts and term_id("again") not in counts  # stop words
    vector = tf_idf(counts, {term_id("diffusion"): 50}, n_papers=100)
    assert vector.terms[0] != term_id("diffusion")  # common across papers: weighs less
    assert abs(float(np.linalg.norm(vector.weights)) - 1) < 1e-6


def test_the_model_files_are_where_the_wordllama_wheel_puts_them():
    """WordLlama.load finds its tokenizer under ``<cache_dir>/tokenizers/``, not its own
    ``tokenizer/``: we pass the package folder as the cache. If a release moves either, this fails."""
    from wordllama import WordLlama

    weights, tokenizer = model_files()
    assert weights.is_file() and tokenizer.is_file()
    assert WordLlama.get_file_path("tokenizer", weights.parent.parent) == tokenizer.parent


def test_the_model_loads_and_embeds_with_no_network_and_no_cache(tmp_path):
    """A fresh HOME (no ~/.cache), HF_HUB_OFFLINE=1 and every socket refused: loading must not try."""
    script = textwrap.dedent(
        """
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network is unreachable in this test")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse
        from digest.papers.vectors import embed
        vectors = embed(["Video diffusion with temporal attention", "Low-bit quantization of LLMs"])
        print(vectors.shape)
        """
    )
    env = {"HOME": str(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(2, 256)"
    assert list(tmp_path.iterdir()) == []  # nothing cached, nothing downloaded


def test_digest_represent_backfills_papers_stored_without_vectors_batch_by_batch(settings, api):
    live = settings.with_(source_url=api.url)
    api.scenario(GOOD_DAY, "good")
    ingest(live)
    before = {k: v.dense.astype(np.float32) for k, v in vectors(live).items()}
    with session_scope(live) as session:  # as papers stored before migration 0005 are
        session.execute(delete(PaperVector))
        session.execute(delete(TermCount))

    env = subprocess_env(live)
    result = CliRunner().invoke(main, ["represent", "--batch", "2"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "represented 5 papers"
    after = vectors(live)
    assert after.keys() == before.keys() and all(v.model == MODEL for v in after.values())
    assert all(np.allclose(after[k].dense.astype(np.float32), before[k], atol=2e-3) for k in before)

    again = CliRunner().invoke(main, ["represent"], env=env, catch_exceptions=False)
    assert again.exit_code == 0 and again.output.strip() == "every stored paper has its vectors already"
