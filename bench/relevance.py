"""Relevance after n votes, ours beside the peers' methods, on real text and on the simulated set (issue 21).

Two sets of papers, each with a topic per paper:

- **real**: the 61 packaged sample papers as shipped (titles, abstracts, upvotes, three Daily
  Papers days), topics by hand (``bench/data/real_labels.json``, which says how they were chosen);
  the project's code never sees the labels. Nothing is tuned on this set.
- **simulated**: the corpus of :mod:`bench.ranking` (14 days of 60 papers synthesised from the real
  ones, topics by its keyword rules), on which the project's parameters were chosen.

Vectors are the ingest code's (:func:`bench.ranking.represent`: ``digest.papers.vectors``, a day
at a time). Readers have hidden interests as in :mod:`bench.ranking` (Dirichlet α = 0.3 over the
topics a reader can mean — the real set's ``other`` is not one; relevant when the topic has ≥ 0.2
of the interest, nDCG's gain that share). Each reader is shown a digest (the top 10 of a method's
ranking of its window), presses "more like this" or "less like this" on one shown paper picked at
random (more when relevant, flipped with probability 0.1), and is shown the next, 10 times. The
ranking each reader sees after 0, 1, 3, 5 and 10 votes is scored (P@5, nDCG@10 over its window).
Every method keeps its own readers' votes; the readers and their interests are the same.

Windows: **simulated**, step s is day s's 60 papers (voted papers are of earlier days);
**real**, every step is all 61 papers less the ones the reader voted on (a digest never shows a
voted paper again, ``digest.delivery.compose.exclusions``), as ``explain --window`` ranks three
days again — papers shown but not voted on stay, since a digest that also left out everything
mailed before would run out of 61 papers in six digests.

Methods: upvotes only (today's trending order, ``digest.matching.trending.rank_key``), ours (the
profile of ``digest.matching.taste.fit`` blended by ``digest.matching.scoring.Taste``: the project's
code as it is when run), and the peers of :mod:`bench.peers`. Intervals: 95 %, mean ± 1.96 · s / √n
over readers (normal approximation; n ≥ 300); the difference ours − a peer is paired by reader.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from dataclasses import dataclass
from datetime import date, datetime
from itertools import combinations
from pathlib import Path

import numpy as np

from bench import peers
from bench.data import SAMPLE_JSON
from bench.ranking import ALPHA, NOISE, RELEVANT, SHOWN, SimPaper, _ndcg, _topic_list, make_corpus, orm, represent
from bench.report import Row
from digest.matching import scoring
from digest.matching import taste as taste_module
from digest.matching.scoring import Taste, Window
from digest.matching.taste import Signal, fit
from digest.matching.trending import rank_key
from digest.models import Paper

LABELS = Path(__file__).resolve().parent / "data" / "real_labels.json"
VOTES = (0, 1, 3, 5, 10)
STEPS = max(VOTES)
METHODS = ("upvotes", "ours", "ours, P only", "svm", "svm, their df", "zotero")
NAMES = {
    "upvotes": "upvotes only (today)",
    "ours": "ours (Taste)",
    "ours, P only": "ours, personal score alone",
    "svm": "arxiv-sanity svm_rank",
    "svm, their df": "arxiv-sanity, min_df 5 max_df 0.1",
    "zotero": "zotero-arxiv-daily",
}
PEERS = ("svm", "svm, their df", "zotero")
OURS = ("ours", "ours, P only")
TRIPLES = 120  # item 3: scripted readers per topic (random triples of its papers)


@dataclass
class TextSet:
    name: str
    papers: list[SimPaper]
    topics: list[str]  # names; SimPaper.topic indexes them
    meant: list[int]  # the topics a reader's interest is spread over
    vectors: dict  # paper id → (dense, sparse)
    windows: list[list[int]]  # per step: paper indices, in trending order
    known: list[list[int]]  # per step: the papers a peer's index holds (arxiv-sanity's database)


def real_set() -> TextSet:
    labels = json.loads(LABELS.read_text("utf-8"))["labels"]
    items = json.loads(SAMPLE_JSON.read_text("utf-8"))
    topics = sorted(set(labels.values()) - {"other"}) + ["other"]
    days = sorted({item["publishedAt"][:10] for item in items})
    papers, rows = [], []
    for n, item in enumerate(items, 1):
        p = item["paper"]
        title, abstract = " ".join(p["title"].split()), " ".join(p["summary"].split())
        authors = tuple(a["name"] for a in p.get("authors") or () if a.get("name"))
        day = days.index(item["publishedAt"][:10])
        papers.append(SimPaper(n, p["id"], title, abstract, authors, topics.index(labels[p["id"]]), int(p.get("upvotes") or 0), day))
        rows.append(
            Paper(
                id=n,
                arxiv_id=p["id"],
                title=title,
                abstract=abstract,
                authors=list(authors),
                upvotes=papers[-1].upvotes,
                daily_date=date.fromisoformat(item["publishedAt"][:10]),
                published_at=datetime.fromisoformat(p["publishedAt"].replace("Z", "+00:00")),
            )
        )
    order = sorted(range(len(rows)), key=lambda i: rank_key(rows[i]))
    every = list(range(len(papers)))
    return TextSet("real", papers, topics, list(range(len(topics) - 1)), represent(papers), [order] * (STEPS + 1), [every] * (STEPS + 1))


def simulated_set() -> TextSet:
    papers, keys = make_corpus(random.Random(7))  # the corpus of bench.ranking, same seed
    names = [_topic_list()[k][0] for k in keys]
    papers = [SimPaper(p.id, p.arxiv_id, p.title, p.abstract, p.authors, keys.index(p.topic), p.upvotes, p.day) for p in papers]
    windows, known = [], []
    for day in range(STEPS + 1):
        todays = [i for i, p in enumerate(papers) if p.day == day]
        windows.append(sorted(todays, key=lambda i: rank_key(orm(papers[i]))))
        known.append([i for i, p in enumerate(papers) if p.day <= day])
    return TextSet("simulated", papers, names, list(range(len(names))), represent(papers), windows, known)


def _ordered(positions: list[int], scores: np.ndarray | None) -> list[int]:
    """Positions (trending ranks, ascending) by score, ties in today's order; unchanged without scores."""
    if scores is None:
        return positions
    at = np.asarray(positions)
    return [int(i) for i in at[np.lexsort((at, -np.asarray(scores)))]]


class Rankers:
    """Every method's ranking of one step's window, for readers given by their votes."""

    def __init__(self, s: TextSet) -> None:
        self.s = s
        self.dense = np.stack([s.vectors[p.id][0] for p in s.papers]).astype(np.float32)
        self._windows: dict[tuple, Window] = {}
        self._svms: dict[tuple, peers.SvmRank] = {}

    def window(self, step: int) -> Window:
        key = tuple(self.s.windows[step])
        if key not in self._windows:
            papers = [self.s.papers[i] for i in key]
            self._windows[key] = Window([p.upvotes for p in papers], [self.s.vectors[p.id] for p in papers])
        return self._windows[key]

    def svm(self, step: int, cutoffs: str) -> tuple[peers.SvmRank, dict[int, int]]:
        key = (tuple(self.s.known[step]), cutoffs)
        if key not in self._svms:
            texts = [peers.svm_text(p.title, p.abstract, p.authors) for p in (self.s.papers[i] for i in key[0])]
            self._svms[key] = peers.SvmRank(texts, cutoffs)
        return self._svms[key], {paper: row for row, paper in enumerate(key[0])}

    def taste(self, step: int, votes: dict[int, list[tuple[int, int]]]) -> Taste:
        """Ours for every reader at once: ``votes`` reader → [(paper index, ±1)], newest first."""
        profiles = {}
        for r, vs in votes.items():
            signals = [
                Signal(self.s.papers[i].id, self.s.papers[i].arxiv_id, v, False, *self.s.vectors[self.s.papers[i].id]) for i, v in vs
            ]
            profile = fit(signals)
            if profile is not None:
                profiles[r] = profile
        return Taste(self.window(step), profiles)

    def rank(self, method: str, step: int, positions: list[int], votes: list[tuple[int, int]], taste: Taste | None, r: int) -> list[int]:
        """``positions`` of step's window in this method's order for a reader with ``votes``."""
        if method == "upvotes":
            return positions
        if method == "ours":
            return taste.order(r, positions)
        if method == "ours, P only":  # a diagnostic: the learned score without the blend with trending
            return _ordered(positions, np.array([taste.parts(r, k).personal for k in positions]) if r in taste.profiles else None)
        window = self.s.windows[step]
        liked = [i for i, v in votes if v > 0]  # newest first
        if method == "zotero":
            scores = peers.recency_weighted_similarity(self.dense[[window[p] for p in positions]], self.dense[liked])
            return _ordered(positions, scores)
        svm, row = self.svm(step, "none" if method == "svm" else "theirs")
        return _ordered(positions, svm.scores([row[i] for i in liked], [row[window[p]] for p in positions]))


def evaluate(s: TextSet, readers: int, seed: int = 21) -> dict:
    """The vote protocol on one set: per method, per vote count, each reader's P@5 and nDCG@10."""
    nrng = np.random.default_rng(seed)
    theta = np.zeros((readers, len(s.topics)))
    theta[:, s.meant] = nrng.dirichlet([ALPHA] * len(s.meant), size=readers)
    share = theta[:, [p.topic for p in s.papers]]  # reader × paper
    rankers = Rankers(s)
    votes = {m: {r: [] for r in range(readers)} for m in METHODS}
    rngs = {m: [random.Random(f"{seed} {m} {r}") for r in range(readers)] for m in METHODS}
    out = {m: {n: {"p5": [], "ndcg": []} for n in VOTES} for m in METHODS}
    consistent = {m: [] for m in METHODS}  # item 3, from these runs
    for step in range(STEPS + 1):
        window = s.windows[step]
        tastes = {m: rankers.taste(step, votes[m]) for m in OURS}
        for r in range(readers):
            for m in METHODS:
                vs = votes[m][r]
                voted = {i for i, _ in vs}
                positions = [k for k, i in enumerate(window) if i not in voted]
                ranked = rankers.rank(m, step, positions, vs, tastes.get(m), r)
                if m == "ours" and not vs:
                    assert ranked == positions, "a reader without votes must get today's order"
                gains = [float(share[r, window[k]]) for k in ranked]
                if step in VOTES:
                    out[m][step]["p5"].append(sum(g >= RELEVANT for g in gains[:5]) / 5)
                    out[m][step]["ndcg"].append(_ndcg(gains[:10], gains))
                if step == 3 and all(v > 0 for _, v in vs) and len({s.papers[i].topic for i, _ in vs}) == 1:
                    topic = s.papers[vs[0][0]].topic
                    if sum(s.papers[window[k]].topic == topic for k in positions) >= 5:
                        consistent[m].append(sum(s.papers[window[k]].topic == topic for k in ranked[:5]))
                if step < STEPS:
                    k = rngs[m][r].choice(ranked[:SHOWN])
                    vote = 1 if share[r, window[k]] >= RELEVANT else -1
                    vs.insert(0, (window[k], -vote if rngs[m][r].random() < NOISE else vote))
    return {"scores": out, "consistent": consistent}


def scripted(s: TextSet, seed: int = 21) -> dict:
    """Item 3 on a fixed window (step 0's): readers who pressed "more like this" on 3 papers of one
    topic, for every topic with ≥ 5 more papers in the window; that topic's papers in each method's top 5."""
    rng = random.Random(seed)
    rankers = Rankers(s)
    window = s.windows[0]
    out: dict[str, dict[str, list[int]]] = {}
    for t, name in enumerate(s.topics):
        members = [i for i in window if s.papers[i].topic == t]
        if t not in s.meant or len(members) < 8:
            continue
        triples = list(combinations(members, 3))
        triples = rng.sample(triples, min(TRIPLES, len(triples)))
        votes = {r: [(i, 1) for i in triple] for r, triple in enumerate(triples)}
        taste = rankers.taste(0, votes)
        out[name] = {m: [] for m in METHODS}
        for r, triple in enumerate(triples):
            positions = [k for k, i in enumerate(window) if i not in triple]
            for m in METHODS:
                ranked = rankers.rank(m, 0, positions, votes[r], taste, r)
                out[name][m].append(sum(s.papers[window[k]].topic == t for k in ranked[:5]))
    return out


def _ci(x) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(1.96 * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def tables(s: TextSet, result: dict, readers: int) -> str:
    scores = result["scores"]
    lines = [f"\n{s.name} set: {len(s.papers)} papers, {readers} readers; mean ± 95 % CI half-width"]
    for metric, label in (("p5", "P@5"), ("ndcg", "nDCG@10")):
        lines.append(f"| {label} | " + " | ".join(f"{n} votes" for n in VOTES) + " |")
        lines.append("|---" * (len(VOTES) + 1) + "|")
        for m in METHODS:
            cells = [_ci(scores[m][n][metric]) for n in VOTES]
            lines.append(f"| {NAMES[m]} | " + " | ".join(f"{mu:.3f} ± {h:.3f}" for mu, h in cells) + " |")
        for peer in PEERS:
            diffs = [_ci(np.subtract(scores["ours"][n][metric], scores[peer][n][metric])) for n in VOTES]
            lines.append(f"| ours − {NAMES[peer]} | " + " | ".join(f"{mu:+.3f} ± {h:.3f}" for mu, h in diffs) + " |")
        lines.append("")
    return "\n".join(lines)


def item3(s: TextSet, result: dict, script: dict) -> str:
    lines = [f"item 3 ({s.name}): that topic's papers in the top 5 after 3 consistent 'more like this' on it, window ≥ 5 of it"]
    runs = result["consistent"]
    lines.append("  from the runs: " + "; ".join(f"{NAMES[m]} {_fmt(runs[m])}" for m in METHODS))
    for topic, by in script.items():
        lines.append(f"  scripted, {topic}: " + "; ".join(f"{NAMES[m]} {_fmt(by[m])}" for m in METHODS))
    every = {m: [x for by in script.values() for x in by[m]] for m in METHODS}
    lines.append("  scripted, all: " + "; ".join(f"{NAMES[m]} {_fmt(every[m])}" for m in METHODS))
    return "\n".join(lines)


def _fmt(x: list[int]) -> str:
    if not x:
        return "n = 0"
    mu, h = _ci(x)
    return f"{mu:.2f} ± {h:.2f} (n = {len(x)}, ≥ 3 in {np.mean(np.asarray(x) >= 3):.0%})"


def measured() -> str:
    """Which code "ours" was: the commit, whether matching has changes on top, the blend's constants."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=LABELS.parents[2], capture_output=True, text=True, check=False)
        return done.stdout.strip()

    dirty = " + uncommitted changes in digest/matching" if git("status", "--porcelain", "digest/matching") else ""
    names = ("TREND_WEIGHT", "PERSONAL_WEIGHT", "PERSONAL_CLIP", "HALF_CONFIDENCE")
    constants = {n: getattr(scoring, n, getattr(taste_module, n, None)) for n in names}
    return f"ours measured at {git('rev-parse', '--short', 'HEAD')}{dirty}; " + ", ".join(f"{k} {v}" for k, v in constants.items())


def run(readers: int, sets: tuple[str, ...] = ("real", "simulated")) -> list[Row]:
    rows = []
    print("\n" + measured())
    for name in sets:
        t0 = time.perf_counter()
        s = real_set() if name == "real" else simulated_set()
        result = evaluate(s, readers)
        script = scripted(s)
        sizes = {t: sum(p.topic == k for p in s.papers) for k, t in enumerate(s.topics)}
        print(f"\n{name} set topics: {sizes}")
        print(tables(s, result, readers))
        print(item3(s, result, script))
        seconds = time.perf_counter() - t0
        print(f"[{name} set: {seconds:.0f} s]")
        p5 = {m: {n: _ci(result["scores"][m][n]["p5"])[0] for n in VOTES} for m in METHODS}
        for m in METHODS:
            rows.append(Row("ranking", f"{name}: P@5 after 3 votes, {NAMES[m]}", p5[m][3], "", p5["upvotes"][3], "upvotes only"))
        every = [x for by in script.values() for x in by["ours"]]
        if every:
            rows.append(
                Row(
                    "ranking",
                    f"{name}: topic papers in top 5 after 3 'more' on it, ours",
                    float(np.mean(every)),
                    "papers",
                    target="≥ 3",
                    met=float(np.mean(every)) >= 3,
                    note="scripted readers: every topic with ≥ 8 papers",
                )
            )
        detail = {m: {n: {k: _ci(v) for k, v in result["scores"][m][n].items()} for n in VOTES} for m in METHODS}
        rows.append(Row("ranking", f"{name}: vote protocol", seconds, "s", note=f"{readers} readers", detail={"table": detail}))
    return rows
