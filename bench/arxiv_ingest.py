"""Stage ``arxiv-ingest`` (issue 22): the arXiv ingest of a 2,000-paper day, vectors included.

The local arXiv server (:mod:`digest.papers.sources.local_arxiv`, or the tests' copy before it
moved there) runs in this process and serves one announcement of ``--arxiv`` papers (default 2,000)
in cs.CL+cs.LG+cs.CV: each paper's primary category drawn from what its text is about
(:func:`bench.data.arxiv_categories`), 0-2 cross-lists, so a paper whose primary is cs.AI or stat.ML
is a ``cross`` item of the combined feed. The API answers in batches of 100 ids.

The ingest itself runs in a child process (``python -m bench.arxiv_ingest child …``), so its peak
RSS (``ru_maxrss``) is the ingest's own, imports and the embedding model included, not the
server's: ``digest.papers.ingest.ingest_arxiv(settings, ("cs.CL", "cs.LG", "cs.CV"),
client=ArxivClient(mail_from, min_interval=0))`` into a fresh database (SQLite in a temporary
folder, and a PostgreSQL database created for the run and dropped after), the polite interval 0
only because the server is on this machine. The child times its parts by wrapping the client's
HTTP round trip (``ArxivClient._attempt``), the two fetches (``announcement``, ``details``: their
parse is the difference) and ``represent`` (the vectors; the embedding model's load on first use
counted apart), counts every ``sleep`` the client asks for, and checks what it stored.

Baseline (same run, same child): the same ingest with ``represent`` replaced by a no-op (what the
vectors cost is the difference), and the packaged Daily Papers sample (``ingest_sample``, vectors
included) as the per-paper cost of the first source.

A real run adds arXiv's waits: at least 3 s between the end of one request and the start of the next
to the same host (``ArxivClient.min_interval``): the RSS feed (rss.arxiv.org) once, then the API
(export.arxiv.org) in batches of 100 — for 2,000 papers 21 requests, 19 waits on the API's host.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from bench.report import Row, faster

ROOT = Path(__file__).resolve().parent.parent
TARGET_S = 60.0
TARGET_RSS_MB = 300.0
POLITE_S = 3.0  # ArxivClient's default min_interval: arXiv's terms
CATEGORIES = ("cs.CL", "cs.LG", "cs.CV")
DAY = date(2026, 3, 3)
MAIL_FROM = "Trending Papers <digest@papers.example.org>"
SECRET = "bench-secret-key-0123456789abcdef"
PG_ADMIN = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_DB = os.environ.get("BENCH_ARXIV_DATABASE", "digest_bench_arxiv")


def local_server():
    """``(ArxivServer, ArxivPaper)`` of the local arXiv server: the package's own module once it is
    there, else the tests' copy (imported lazily: neither is needed by the other stages)."""
    try:
        from digest.papers.sources import local_arxiv

        return local_arxiv.ArxivServer, local_arxiv.ArxivPaper
    except ImportError:
        sys.path.insert(0, str(ROOT / "tests" / "papers"))
        import arxiv_server  # type: ignore[import-not-found]

        return arxiv_server.ArxivServer, arxiv_server.Paper


def announcement_papers(n: int, day: date = DAY, seed: int = 41, trending=(), id_base: int = 10000):
    """``n`` papers of one announcement as the local server holds them (texts from
    :func:`bench.data.make_arxiv_day`, every one listed in at least one of :data:`CATEGORIES`),
    ids ``2603.<id_base + i>``; ``trending``: Daily Papers papers (``BenchPaper``) announced the
    same day too, in categories drawn from their text, so the ingest updates them (their
    categories, announcement day) instead of storing new ones."""
    import random

    from bench.data import arxiv_categories, make_arxiv_day

    _, ArxivPaper = local_server()
    rng = random.Random(seed)
    papers = []
    published = datetime.combine(day - timedelta(days=1), datetime.min.time(), timezone.utc) + timedelta(hours=18)
    for i, p in enumerate(make_arxiv_day(n, 0, seed=seed, day=day)):
        papers.append(
            ArxivPaper(
                arxiv_id=f"2603.{id_base + i:05d}",
                title=p.title,
                categories=p.categories,
                authors=p.authors,
                abstract=p.abstract,
                published=published - timedelta(minutes=i),
                comment=f"{8 + i % 20} pages, {1 + i % 9} figures" if i % 3 else None,
            )
        )
    for p in trending:
        papers.append(
            ArxivPaper(
                arxiv_id=p.arxiv_id,
                title=p.title,
                categories=p.categories or arxiv_categories(p.title, p.abstract, rng),
                authors=p.authors,
                abstract=p.abstract,
                published=published - timedelta(days=1),
            )
        )
    return papers


def real_waits(server) -> tuple[int, int, float]:
    """(requests, waits, seconds) a run against arXiv itself would add for the requests ``server``
    saw: ``POLITE_S`` between consecutive requests to one host (the feed's host and the API's differ)."""
    from urllib.parse import urlsplit

    from digest.config import DEFAULT_ARXIV_API_URL, DEFAULT_ARXIV_RSS_URL

    hosts = {"rss": urlsplit(DEFAULT_ARXIV_RSS_URL).netloc, "api": urlsplit(DEFAULT_ARXIV_API_URL).netloc}
    per_host: dict[str, int] = {}
    for r in server.requests:
        host = hosts["rss"] if r.path.startswith("/rss/") else hosts["api"]
        per_host[host] = per_host.get(host, 0) + 1
    waits = sum(max(0, k - 1) for k in per_host.values())
    return len(server.requests), waits, waits * POLITE_S


# ---------------------------------------------------------------- the child: one ingest, measured


def child(url: str, rss_url: str, api_url: str, vectors: bool, what: str) -> dict:
    import resource

    import psutil

    t_import = time.perf_counter()
    from sqlalchemy import func, select

    import digest.papers.ingest as ingest
    from digest.config import load_settings
    from digest.db import session_scope
    from digest.models import IngestRun, Paper, PaperVector
    from digest.papers.sources import arxiv as arxiv_source
    from digest.papers.vectors import embedder

    imported = time.perf_counter() - t_import
    settings = load_settings(
        {
            "DIGEST_DATABASE_URL": url,
            "DIGEST_SECRET_KEY": SECRET,
            "DIGEST_MAIL_FROM": MAIL_FROM,
            "DIGEST_ARXIV_CATEGORIES": ",".join(CATEGORIES),
            "DIGEST_ARXIV_RSS_URL": rss_url,
            "DIGEST_ARXIV_API_URL": api_url,
        }
    )
    clock: dict[str, float] = {"http": 0.0, "announcement": 0.0, "details": 0.0, "represent": 0.0, "model_load": 0.0, "slept": 0.0}
    counts = {"http": 0, "sleeps": 0}

    def timed(name, fn):
        def wrapper(*a, **kw):
            t0 = time.perf_counter()
            try:
                return fn(*a, **kw)
            finally:
                clock[name] += time.perf_counter() - t0
                counts[name] = counts.get(name, 0) + 1

        return wrapper

    def sleep(seconds: float) -> None:
        counts["sleeps"] += 1
        clock["slept"] += seconds
        time.sleep(seconds)

    client_cls = arxiv_source.ArxivClient
    client_cls._attempt = timed("http", client_cls._attempt)
    client_cls.announcement = timed("announcement", client_cls.announcement)
    client_cls.details = timed("details", client_cls.details)
    real_represent = ingest.represent

    def represent(session, arxiv_ids=None):
        t0 = time.perf_counter()
        if vectors:
            embedder()  # the model's first load, counted apart (a worker pays it once)
        clock["model_load"] += time.perf_counter() - t0
        return real_represent(session, arxiv_ids) if vectors else 0

    ingest.represent = timed("represent", represent)
    rss_before = psutil.Process().memory_info().rss
    maxrss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0 = time.perf_counter()
    if what == "arxiv":
        client = client_cls(settings.mail_from, min_interval=0.0, sleep=sleep)
        report = ingest.ingest_arxiv(settings, client=client)
    else:
        report = ingest.ingest_sample(settings, DAY + timedelta(days=1))
    wall = time.perf_counter() - t0
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with session_scope(settings) as session:
        stored = {
            "papers": session.scalar(select(func.count()).select_from(Paper)),
            "arxiv_only": session.scalar(select(func.count()).select_from(Paper).where(Paper.daily_date.is_(None))),
            "with_categories": session.scalar(select(func.count()).select_from(Paper).where(Paper.primary_category.is_not(None))),
            "announced": session.scalar(select(func.count()).select_from(Paper).where(Paper.announced_on.is_not(None))),
            "vectors": session.scalar(select(func.count()).select_from(PaperVector)),
            "runs": session.scalar(select(func.count()).select_from(IngestRun)),
        }
    return {
        "what": what,
        "vectors": vectors,
        "database": url.split(":", 1)[0],
        "wall_s": wall,
        "import_s": imported,
        "clock": clock,
        "counts": counts,
        "rss_before_mb": rss_before / 2**20,
        "maxrss_before_mb": maxrss_before / 1024,
        "peak_rss_mb": maxrss / 1024,
        "report": report.lines() if hasattr(report, "lines") else str(report),
        "fetched": report.fetched,
        "new": report.new,
        "updated": report.updated,
        "stored": stored,
    }


# ---------------------------------------------------------------- the parent: databases, server, children


def _sqlite_url(folder: Path, name: str) -> str:
    return f"sqlite:///{folder / name}.db"


def _fresh_postgres() -> str:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{PG_DB}"')
    return "postgresql+psycopg://" + PG_ADMIN.split("://", 1)[1].rsplit("/", 1)[0] + f"/{PG_DB}"


def _drop_postgres() -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{PG_DB}" WITH (FORCE)')


def run_child(url: str, server, vectors: bool = True, what: str = "arxiv", log=print) -> dict:
    from digest.db import upgrade

    upgrade(url)
    cmd = [sys.executable, "-m", "bench.arxiv_ingest", "child", url, server.rss_url, server.api_url, "1" if vectors else "0", what]
    server.requests.clear()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"ingest child failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if what == "arxiv":
        result["requests"], result["real_waits"], result["real_wait_s"] = real_waits(server)
    c = result["clock"]
    log(
        f"arxiv-ingest: {result['database']} {what}{'' if vectors else ' (no vectors)'}: {result['wall_s']:.2f} s wall "
        f"(HTTP {c['http']:.2f} s in {result['counts']['http']} requests, parse {c['announcement'] + c['details'] - c['http']:.2f} s, "
        f"vectors {c['represent'] - c['model_load']:.2f} s + model load {c['model_load']:.2f} s, slept {c['slept']:.2f} s in "
        f"{result['counts']['sleeps']}); peak RSS {result['peak_rss_mb']:.0f} MB (after imports {result['maxrss_before_mb']:.0f}); "
        f"stored {result['stored']}"
    )
    return result


def run(n: int = 2000, *, postgres: bool = True, log=print) -> list[Row]:
    ArxivServer, _ = local_server()
    papers = announcement_papers(n)
    cross = sum(1 for p in papers if p.categories[0] not in CATEGORIES)
    log(
        f"arxiv-ingest: one announcement of {len(papers):,} papers in {'+'.join(CATEGORIES)} ({cross} cross-lists of cs.AI/stat.ML primaries)"
    )
    server = ArxivServer(day=DAY, papers=papers).start()
    results: dict[str, dict] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-arxiv-") as tmp:
            folder = Path(tmp)
            results["sqlite"] = run_child(_sqlite_url(folder, "vectors"), server, log=log)
            results["sqlite_novec"] = run_child(_sqlite_url(folder, "novectors"), server, vectors=False, log=log)
            results["sqlite_sample"] = run_child(_sqlite_url(folder, "sample"), server, what="sample", log=log)
        if postgres:
            try:
                results["postgres"] = run_child(_fresh_postgres(), server, log=log)
                _drop_postgres()
                results["postgres_novec"] = run_child(_fresh_postgres(), server, vectors=False, log=log)
            finally:
                _drop_postgres()
    finally:
        server.stop()
    rows = []
    sample = results["sqlite_sample"]
    for key in ("sqlite", "postgres"):
        if key not in results:
            continue
        r, nv = results[key], results[f"{key}_novec"]
        c = r["clock"]
        slept = c["slept"]
        work = r["wall_s"] - slept
        ok = r["stored"]["vectors"] >= r["new"] and r["new"] == len(papers) and not r["counts"]["sleeps"]
        rows.append(
            faster(
                "arxiv-ingest",
                f"ingest_arxiv of a {len(papers):,}-paper announcement, vectors included, {key} (fresh database)",
                work,
                nv["wall_s"] - nv["clock"]["slept"],
                baseline_label="same ingest, represent a no-op",
                target=f"≤ {TARGET_S:g} s beyond the polite waits",
                met=work <= TARGET_S and ok,
                note=f"HTTP {c['http']:.1f} s ({r['counts']['http']} requests to the local server), parse "
                f"{c['announcement'] + c['details'] - c['http']:.1f} s, vectors {c['represent'] - c['model_load']:.1f} s "
                f"+ model load {c['model_load']:.1f} s, the rest (store, commit) "
                f"{work - c['announcement'] - c['details'] - c['represent']:.1f} s; waited {slept:.2f} s in {r['counts']['sleeps']} sleeps; "
                f"stored {r['stored']['papers']:,} papers, {r['stored']['vectors']:,} vectors; a real run adds "
                f"{r['real_waits']} waits × {POLITE_S:g} s = {r['real_wait_s']:.0f} s ({r['requests']} requests)",
                detail=r | {"no_vectors": nv},
            )
        )
        rows.append(
            Row(
                "arxiv-ingest",
                f"peak RSS of the ingest process, {key}",
                r["peak_rss_mb"],
                "MB",
                baseline=nv["peak_rss_mb"],
                baseline_label="same, no vectors",
                target=f"≤ {TARGET_RSS_MB:g} MB",
                met=r["peak_rss_mb"] <= TARGET_RSS_MB,
                note=f"after imports, before the ingest: {r['maxrss_before_mb']:.0f} MB (the embedding model loads during it)",
            )
        )
    ours_ms = 1000 * (results["sqlite"]["wall_s"] - results["sqlite"]["clock"]["model_load"]) / max(1, results["sqlite"]["new"])
    sample_ms = 1000 * (sample["wall_s"] - sample["clock"]["model_load"]) / max(1, sample["new"])
    rows.append(
        Row(
            "arxiv-ingest",
            f"per paper: arXiv ingest (sqlite, vectors, fetch included) against the Daily Papers sample ({sample['new']} papers)",
            ours_ms,
            "ms",
            sample_ms,
            baseline_label="ingest_sample (no fetch), vectors, per paper",
            ratio=sample_ms / ours_ms if ours_ms else None,
            note="the embedding model's load left out of both",
        )
    )
    return rows


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "child":
        _, _, url, rss, api, vec, what = sys.argv
        print(json.dumps(child(url, rss, api, vec == "1", what)))
    else:
        raise SystemExit("python -m bench arxiv-ingest")
