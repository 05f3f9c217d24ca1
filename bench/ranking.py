"""``python -m bench ranking``: an offline evaluation of the learned ranking, reported like a paper's table.

The corpus: the packaged sample papers (``digest/papers/sample_data/papers.json``), each put in one
of :data:`TOPICS` by keyword rules on its title and abstract (rules of ours, independent of both
representations), then synthesised into 14 Daily Papers days of 60 papers: a paper of a topic takes
the title of one of that topic's real papers (with a variation), three sentences from that topic's
abstracts and one from another topic's, two to eight authors mostly from the topic's pool of names,
and heavy-tailed upvotes scaled by its topic's popularity (the popular topics are not everyone's).

The readers: ``readers`` simulated readers with hidden interests, a mixture over the topics
(Dirichlet, α = 0.3: most care about one or two); a paper is relevant to a reader when its topic's
share of their interest is ≥ 0.2 (nDCG uses the share itself as the gain). Each has one or two
keyword filters from their main topic (and sometimes a second topic), as people write them.
Every day each reader is shown the top 10 of each ranking (each ranking keeps its own readers'
votes) and votes on each shown paper with probability 0.3: "more like this" if relevant, "less"
if not, the other way round with probability 0.1.

The rankings: (a) upvotes only (today's order), (b) filters + upvotes (today's digest: the matching
papers in trending order, fewer than 10 when fewer match), (c) the learned ranking
(``digest.matching.taste`` and ``scoring``: the profile fitted on the reader's votes so far, blended with trending,
no filters), its ablations dense-only and sparse-only, and (d) filters + learned. Representations
are computed by the ingest code (``digest.papers.vectors``), days in order, so each paper's IDF is
that of its day.
"""

from __future__ import annotations

import os
import random
import re
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from datetime import time as clock

import numpy as np

from bench.data import FIRST, LAST, _sentences, real_papers
from bench.report import Row
from digest.matching.scoring import Taste, Window
from digest.matching.select import Matcher, Recipient
from digest.matching.taste import Signal, fit
from digest.models import Paper, SparseVector
from digest.papers.vectors import dense_text, embed, term_frequencies, tf_idf

#: name → (keyword rule for the real papers, filter lines a reader of it writes, popularity)
TOPICS: dict[str, tuple[str, tuple[str, ...], float]] = {
    "quantization": (r"quantiz|fp8|fp4|bf16|low-bit|4-bit|mixed precision", ("quantization", "low-bit", "FP8 OR FP4"), 2.0),
    "safety": (r"jailbreak|unlearning|erasure|refusal|safety|guard", ("jailbreak", "unlearning", "safety"), 1.0),
    "interpretability": (
        r"interpretab|circuit|mechanistic|steering|oracle|explain|feature visuali|traces|latent direction",
        ("interpretability", "steering", "circuit"),
        1.5,
    ),
    "architecture": (
        r"experts?\b|mixture|moe|glu|kolmogorov|normalizing|memory network|feed-forward|attention",
        ("mixture-of-experts", "attention", "architecture"),
        1.0,
    ),
    "training": (
        r"pre-training|backpropagation|optimizer|instabilit|sparsity|sparsing|scaling law|training",
        ("pre-training", "training efficiency", "optimizer"),
        1.2,
    ),
    "vision": (
        r"3d|vision|segmentation|face|cnn|image|inception|visual|embodied|musculoskeletal|fmri|residual",
        ("vision", "3D", "segmentation"),
        0.8,
    ),
    "evaluation": (
        r"evaluation|benchmark|agents?\b|cognitive|users|clinical|affect|emotion|metacognit|predicting|chatgpt|scale",
        ("benchmark", "evaluation", "agents"),
        0.6,
    ),
    "reasoning": (r"reasoning|retrieval|rag\b|knowledge|generation", ("reasoning", "retrieval", "knowledge"), 1.0),
}
DAYS, PER_DAY, SHOWN = 14, 60, 10
VOTE_P, NOISE, RELEVANT = 0.3, 0.1, 0.2
ALPHA = 0.3
VARIANTS = ["", " v2", " at Scale", " Revisited", ": A Closer Look", " for Agents", " in the Wild", " Made Simple", ", Efficiently"]
METHODS = ("upvotes", "filters", "learned", "dense only", "sparse only", "filters+learned")
LEARNED = {"learned": ("dense", "sparse"), "dense only": ("dense",), "sparse only": ("sparse",), "filters+learned": ("dense", "sparse")}


def _topic_list():
    return [(name, spec[0], spec[1], spec[2] if len(spec) > 2 else 1.0) for name, spec in TOPICS.items()]


@dataclass(frozen=True)
class SimPaper:
    id: int
    arxiv_id: str
    title: str
    abstract: str
    authors: tuple[str, ...]
    topic: int
    upvotes: int
    day: int


def assign_topics(seeds) -> list[int | None]:
    topics = _topic_list()
    out = []
    for s in seeds:
        text = f"{s.title} {s.abstract[:400]}".lower()
        out.append(next((k for k, (_, rule, _, _) in enumerate(topics) if re.search(rule, s.title.lower())), None))
        if out[-1] is None:
            out[-1] = next((k for k, (_, rule, _, _) in enumerate(topics) if re.search(rule, text)), None)
    return out


def make_corpus(rng: random.Random) -> tuple[list[SimPaper], list[int]]:
    seeds, _ = real_papers(rng)
    labels = assign_topics(seeds)
    topics = _topic_list()
    by_topic = {k: [s for s, t in zip(seeds, labels) if t == k] for k in range(len(topics))}
    by_topic = {k: v for k, v in by_topic.items() if v}
    keys = sorted(by_topic)
    pools = {k: [f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(25)] for k in keys}
    popularity = [topics[k][3] for k in keys]
    papers = []
    for day in range(DAYS):
        for _ in range(PER_DAY):
            k = rng.choices(keys, weights=[len(by_topic[t]) for t in keys])[0]
            base = rng.choice(by_topic[k])
            same = [s for p in rng.sample(by_topic[k], min(3, len(by_topic[k]))) for s in _sentences(p.abstract)]
            other = _sentences(rng.choice(by_topic[rng.choice([t for t in keys if t != k])]).abstract)
            sentences = rng.sample(same, min(3, len(same))) + [rng.choice(other)]
            rng.shuffle(sentences)
            authors = tuple(
                rng.choice(pools[k]) if rng.random() < 0.8 else f"{rng.choice(FIRST)} {rng.choice(LAST)}" for _ in range(rng.randint(2, 8))
            )
            upvotes = int(rng.paretovariate(1.2) * 2 * popularity[keys.index(k)]) - 2
            n = len(papers) + 1
            papers.append(
                SimPaper(n, f"2603.{n:05d}", base.title + rng.choice(VARIANTS), " ".join(sentences), authors, k, max(upvotes, 0), day)
            )
    return papers, keys


def represent(papers: list[SimPaper]) -> dict[int, tuple[np.ndarray, SparseVector]]:
    """The ingest code's vectors, one day at a time (IDF as of each paper's day)."""
    dense = embed([dense_text(p.title, p.abstract) for p in papers])
    df: dict[int, int] = {}
    out = {}
    for day in range(DAYS):
        todays = [(i, p) for i, p in enumerate(papers) if p.day == day]
        counts = {p.id: term_frequencies(p.title, p.abstract, p.authors) for _, p in todays}
        for c in counts.values():
            for t in c:
                df[t] = df.get(t, 0) + 1
        n = sum(1 for p in papers if p.day <= day)
        for i, p in todays:
            out[p.id] = (dense[i], tf_idf(counts[p.id], df, n))
    return out


def time_representations(papers: list[SimPaper], n: int = 1000) -> tuple[float, float]:
    """Seconds to represent ``n`` papers on one core: (embedding, everything)."""
    sample = [papers[i % len(papers)] for i in range(n)]
    texts = [dense_text(p.title + ("" if i < len(papers) else f" {i}"), p.abstract) for i, p in enumerate(sample)]
    cpus = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {min(cpus)})
    try:
        embed(texts[:10])  # the model loaded once per process, as in a worker
        t0 = time.perf_counter()
        embed(texts)
        t1 = time.perf_counter()
        df: dict[int, int] = {}
        counts = [term_frequencies(p.title, p.abstract, p.authors) for p in sample]
        for c in counts:
            for t in c:
                df[t] = df.get(t, 0) + 1
        for c in counts:
            tf_idf(c, df, n)
        t2 = time.perf_counter()
    finally:
        os.sched_setaffinity(0, cpus)
    return t1 - t0, (t1 - t0) + (t2 - t1)


def orm(p: SimPaper) -> Paper:
    day = date(2026, 3, 1) + timedelta(days=p.day)
    published = datetime.combine(day, clock(12), timezone.utc) - timedelta(seconds=p.id)
    return Paper(
        id=p.id,
        arxiv_id=p.arxiv_id,
        title=p.title,
        abstract=p.abstract,
        authors=list(p.authors),
        upvotes=p.upvotes,
        daily_date=day,
        published_at=published,
    )


def _ndcg(gains: list[float], ideal: list[float], k: int = 10) -> float:
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    best = float(np.sum(np.array(sorted(ideal, reverse=True)[:k] + [0.0] * k)[:k] * discount))
    got = float(np.sum(np.array((gains + [0.0] * k)[:k]) * discount))
    return got / best if best > 0 else 0.0


def simulate(readers: int, seed: int = 7) -> dict:
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    papers, keys = make_corpus(rng)
    topics = _topic_list()
    t0 = time.perf_counter()
    vectors = represent(papers)
    represent_s = time.perf_counter() - t0
    interests = nrng.dirichlet([ALPHA] * len(keys), size=readers)
    filters = []
    for theta in interests:
        order = np.argsort(-theta)
        lines = [rng.choice(topics[keys[order[0]]][2])]
        if rng.random() < 0.5:
            lines.append(rng.choice([f for f in topics[keys[order[0]]][2] if f not in lines]))
        if theta[order[1]] >= RELEVANT and rng.random() < 0.4:
            lines.append(rng.choice(topics[keys[order[1]]][2]))
        filters.append(tuple(lines))
    votes: dict[str, list[list[Signal]]] = {m: [[] for _ in range(readers)] for m in LEARNED}
    results = {m: {"p5": [], "ndcg": []} for m in METHODS}
    why_hits = why_total = also_shown = also_relevant = 0
    for day in range(DAYS):
        todays = sorted((p for p in papers if p.day == day), key=lambda p: (-p.upvotes, p.arxiv_id))
        window = Window([p.upvotes for p in todays], [vectors[p.id] for p in todays])
        matcher = Matcher([orm(p) for p in todays])
        profiles = {m: {r: fit(votes[m][r], parts) for r in range(readers)} for m, parts in LEARNED.items()}
        tastes = {m: Taste(window, {r: p for r, p in profiles[m].items() if p is not None}, LEARNED[m]) for m in LEARNED}
        scores = {m: {"p5": [], "ndcg": []} for m in METHODS}
        the_day = orm(todays[0]).daily_date
        index = {p.id: i for i, p in enumerate(todays)}
        for r in range(readers):
            share = interests[r][[keys.index(p.topic) for p in todays]]
            relevant = share >= RELEVANT
            matched = [index[pick.paper.id] for pick in matcher.select(Recipient(r, filters[r], the_day, the_day), set(), PER_DAY)]
            lists = {"upvotes": list(range(len(todays))), "filters": matched}
            for m in LEARNED:
                lists[m] = tastes[m].order(r, matched if m == "filters+learned" else range(len(todays)))
            for m, ranked in lists.items():
                scores[m]["p5"].append(sum(relevant[i] for i in ranked[:5]) / 5)
                scores[m]["ndcg"].append(_ndcg([float(share[i]) for i in ranked[:10]], list(map(float, share))))
            for m in LEARNED:
                for i in lists[m][:SHOWN]:
                    if rng.random() < VOTE_P:
                        vote = 1 if relevant[i] else -1
                        if rng.random() < NOISE:
                            vote = -vote
                        p = todays[i]
                        votes[m][r].insert(0, Signal(p.id, p.arxiv_id, vote, False, *vectors[p.id]))
            taste = tastes["learned"]
            for i in lists["learned"][:SHOWN]:
                if taste.why(r, i):
                    why_total += 1
                    why_hits += bool(relevant[i])
            for i in taste.also_like(r, [i for i in range(len(todays)) if i not in set(matched)]):
                also_shown += 1
                also_relevant += bool(relevant[i])
        for m in METHODS:
            results[m]["p5"].append(float(np.mean(scores[m]["p5"])))
            results[m]["ndcg"].append(float(np.mean(scores[m]["ndcg"])))
    return {
        "results": results,
        "represent_s": represent_s,
        "papers": len(papers),
        "topics": [topics[k][0] for k in keys],
        "topic_sizes": [sum(1 for p in papers if p.topic == k) for k in keys],
        "why": (why_hits, why_total),
        "also_like": (also_relevant, also_shown),
    }


def table(results: dict) -> str:
    head = (
        "day | " + " | ".join(f"{m} P@5" for m in METHODS) + " | " + " | ".join(f"{m} nDCG@10" for m in ("upvotes", "filters", "learned"))
    )
    lines = [head, "|".join("---" for _ in range(len(METHODS) + 4))]
    for d in range(DAYS):
        p5 = " | ".join(f"{results[m]['p5'][d]:.3f}" for m in METHODS)
        nd = " | ".join(f"{results[m]['ndcg'][d]:.3f}" for m in ("upvotes", "filters", "learned"))
        lines.append(f"{d + 1} | {p5} | {nd}")
    return "\n".join(lines)


def run(readers: int = 1000) -> list[Row]:
    t0 = time.perf_counter()
    out = simulate(readers)
    results = out["results"]
    rng = random.Random(7)
    papers, _ = make_corpus(rng)
    embed_s, total_s = time_representations(papers)
    print(f"corpus: {out['papers']} papers in {DAYS} days, topics {dict(zip(out['topics'], out['topic_sizes']))}; {readers} readers")
    print(table(results))
    why_hits, why_total = out["why"]
    also_relevant, also_shown = out["also_like"]
    print(f"'why' lines in the learned top 10: {why_total}, on relevant papers {why_hits / max(why_total, 1):.1%}")
    print(f"'you may also like' papers: {also_shown}, relevant {also_relevant / max(also_shown, 1):.1%}")
    print(f"representations of 1,000 papers on one core: embedding {embed_s:.2f} s, with terms and TF-IDF {total_s:.2f} s")
    day7 = 6
    up, fl, le = (results[m]["p5"][day7] for m in ("upvotes", "filters", "learned"))
    rows = [
        Row(
            "ranking",
            "P@5 day 7, learned",
            le,
            "",
            up,
            "upvotes only",
            ratio=le / up if up else None,
            target="≥ 2× upvotes only",
            met=le >= 2 * up,
        ),
        Row(
            "ranking",
            "P@5 day 7, learned vs filters+upvotes",
            le,
            "",
            fl,
            "filters + upvotes",
            ratio=le / fl if fl else None,
            target="> filters + upvotes",
            met=le > fl,
        ),
        Row("ranking", "P@5 day 14, learned", results["learned"]["p5"][-1], "", results["upvotes"]["p5"][-1], "upvotes only"),
        Row("ranking", "nDCG@10 day 7, learned", results["learned"]["ndcg"][day7], "", results["upvotes"]["ndcg"][day7], "upvotes only"),
        Row(
            "ranking",
            "embed 1,000 papers, one core",
            embed_s,
            "s",
            target="≤ 5 s",
            met=embed_s <= 5.0,
            note=f"with terms and TF-IDF {total_s:.2f} s",
        ),
        Row("ranking", "simulation", time.perf_counter() - t0, "s", note=f"{readers} readers × {DAYS} days", detail={"table": results}),
    ]
    return rows
