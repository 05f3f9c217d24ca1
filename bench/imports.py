"""``python -m bench import``: ``digest subscribers import --confirmed`` of a generated N-row CSV
(100,000 by default; ``--rows 1000000`` for the memory check), beside the same-run COPY of the
same file.

The file: N distinct addresses (names and domains drawn from a seeded generator, some in mixed
case), the filter lines of :func:`bench.data.make_subscribers` (reused cyclically past 200,000),
daily or weekly, one of the e2e stage's time zones, and a delivery hour: what ``subscribers
export`` writes, as a list moved from another instance would be.

In a fresh migrated database of its own (``BENCH_IMPORT_DATABASE``, default ``digest_bench_import``
on ``BENCH_POSTGRES_ADMIN_URL``'s server), first the baseline: the file streamed by psycopg's
``COPY … FROM STDIN (FORMAT csv, HEADER)`` into a plain table with the file's columns (the fastest way
its bytes get into PostgreSQL: no check, no index, no filter rows). Then ours: the real command,
``digest subscribers import --confirmed FILE``, run as an operator runs it (a new process, from
the start of Python to its exit), timed by the wall clock; its peak RSS is the kernel's
(``wait4``'s ``ru_maxrss`` for that process), and the helper process that checks the lines
beside it (``python -m digest.subscribers.checks``) is sampled every 0.1 s. Then the rows are
counted (every address active, every filter line stored) so a fast wrong import cannot pass. The
machine's load average is printed with the figures: others' runs share its two cores.
"""

from __future__ import annotations

import csv
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from bench.data import make_papers, make_subscribers
from bench.e2e import PG_ADMIN, TIMEZONES
from bench.report import Row

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = os.environ.get("BENCH_IMPORT_DATABASE", "digest_bench_import")
TARGET_S = 15.0  # issue 24: 100,000 rows
TARGET_RSS_MB = 300.0  # issue 24: 1,000,000 rows
DOMAINS = ["gmail.com", "outlook.com", "example.org", "uni-heidelberg.de", "cs.stanford.edu", "mit.edu", "yahoo.co.jp", "proton.me"]
FIRST = "ada alan grace ken linus barbara margaret john edsger donald frances tony leslie niklaus".split()
LAST = "lovelace turing hopper thompson torvalds liskov hamilton mccarthy dijkstra knuth allen hoare lamport wirth".split()


def database_url() -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{DB_NAME}"


def write_file(path: Path, n: int, seed: int = 24) -> dict:
    """N distinct rows; returns what the import must store (rows, filter lines: as parsed, equivalent lines once)."""
    from digest.matching.topics import parse_topics

    rng = random.Random(seed)
    papers = make_papers(600, seed=seed)
    profiles = make_subscribers(min(n, 200_000), papers, seed=seed + 1)
    kept = [len(parse_topics("\n".join(lines))) for lines in profiles]
    filters = 0
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["email", "topics", "frequency", "timezone", "delivery_hour"])
        for i in range(n):
            name = f"{rng.choice(FIRST)}.{rng.choice(LAST)}{i}"
            if rng.random() < 0.1:
                name = name.capitalize()
            lines = profiles[i % len(profiles)]
            filters += kept[i % len(profiles)]
            writer.writerow(
                [
                    f"{name}@{rng.choice(DOMAINS)}",
                    "\n".join(lines),
                    "weekly" if rng.random() < 0.2 else "daily",
                    rng.choice(TIMEZONES),
                    rng.choice((6, 7, 7, 7, 8, 9)),
                ]
            )
    return {"rows": n, "filters": filters, "bytes": path.stat().st_size}


def fresh_database() -> str:
    import psycopg

    from digest.db import engine_for, upgrade

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    url = "postgresql+psycopg://" + database_url().split("://", 1)[1]
    upgrade(url)
    engine_for(url).dispose()
    return url


def copy_file(path: Path) -> float:
    """The baseline: the file's bytes through COPY into a plain table of its columns; seconds."""
    import psycopg

    with psycopg.connect(database_url()) as conn:
        conn.execute("CREATE TABLE copy_baseline (email text, topics text, frequency text, timezone text, delivery_hour smallint)")
        conn.commit()
        t0 = time.perf_counter()
        with conn.cursor() as cur, cur.copy("COPY copy_baseline FROM STDIN (FORMAT csv, HEADER true)") as copy, path.open("rb") as f:
            while block := f.read(1 << 20):
                copy.write(block)
        conn.commit()
        seconds = time.perf_counter() - t0
        conn.execute("DROP TABLE copy_baseline")
        conn.commit()
    return seconds


def run_import(url: str, path: Path) -> tuple[float, float, dict, str]:
    """``digest subscribers import --confirmed FILE`` in its own process: seconds, its peak RSS (MB),
    the peaks of it and its helper sampled every 0.1 s, its output."""
    from bench.e2e import RssSampler

    env = {
        **os.environ,
        "DIGEST_DATABASE_URL": url,
        "DIGEST_SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "DIGEST_BASE_URL": "https://papers.example.org",
        "DIGEST_MAIL_FROM": "Trending Papers <digest@papers.example.org>",
    }
    env.pop("DIGEST_BROKER_URL", None)
    out = path.with_suffix(".out")
    with out.open("w") as sink:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "digest"), "subscribers", "import", "--confirmed", str(path)],
            env=env,
            cwd=ROOT,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        sampler = RssSampler(proc.pid).start()
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - t0
        sampler.stop()
        proc.returncode = os.waitstatus_to_exitcode(status)
    text = out.read_text()
    if proc.returncode != 0:
        raise RuntimeError(f"the import failed ({proc.returncode}): {text[-2000:]}")
    tree = sampler.summary()
    return (
        seconds,
        usage.ru_maxrss / 1024,
        {"main": tree["peak_rss_mb_main"], "helper": max(tree["peak_rss_mb_children"], default=0.0)},
        text,
    )


def stored(url: str) -> dict:
    import psycopg

    with psycopg.connect(database_url()) as conn:
        active = conn.execute("SELECT count(*) FROM subscribers WHERE state = 'active' AND next_due_at IS NOT NULL").fetchone()[0]
        filters = conn.execute("SELECT count(*) FROM topic_filters").fetchone()[0]
    return {"active": active, "filters": filters}


def run(n: int = 100_000, log=print) -> list[Row]:
    folder = ROOT / "bench" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"import_{n}.csv"
    t0 = time.perf_counter()
    wrote = write_file(path, n)
    log(
        f"import: wrote {path.name}: {n:,} rows, {wrote['filters']:,} filter lines, {wrote['bytes'] / 2**20:.1f} MiB in {time.perf_counter() - t0:.0f} s"
    )
    url = fresh_database()
    copy_seconds = copy_file(path)
    log(f"import: COPY of the file: {copy_seconds:.2f} s")
    load = os.getloadavg()[0]
    seconds, rss, peaks, output = run_import(url, path)
    found = stored(url)
    log(
        f"import: `digest subscribers import --confirmed`: {seconds:.2f} s, peak RSS {rss:.0f} MB "
        f"(its checking helper {peaks['helper']:.0f} MB); stored {found}; load average {load:.1f} before, {os.getloadavg()[0]:.1f} after"
    )
    log("import: its report: " + " | ".join(line for line in output.splitlines() if not line.startswith("import: "))[:400])
    if found != {"active": n, "filters": wrote["filters"]}:
        raise RuntimeError(f"the import stored {found}, expected {n} active and {wrote['filters']} filters")
    path.unlink()
    path.with_suffix(".out").unlink()
    detail = (
        wrote
        | found
        | {
            "copy_seconds": copy_seconds,
            "import_seconds": seconds,
            "peak_rss_mb": rss,
            "peak_rss_mb_helper": peaks["helper"],
            "load_average_before": load,
        }
    )
    rows = [
        Row(
            "import",
            f"`subscribers import --confirmed`, {n:,} rows (PostgreSQL)",
            seconds,
            "s",
            copy_seconds,
            "COPY of the same file",
            ratio=copy_seconds / seconds,
            target=f"≤ {TARGET_S:.0f} s for 100,000" if n == 100_000 else "",
            met=seconds <= TARGET_S if n == 100_000 else None,
            note=f"{n / seconds:,.0f} rows/s; {seconds / copy_seconds:.1f}× the COPY",
            detail=detail,
        ),
        Row(
            "import",
            f"peak RSS of the import, {n:,} rows (its checking helper beside it)",
            rss,
            "MB",
            note=f"helper process {peaks['helper']:.0f} MB; both together at most {rss + peaks['helper']:.0f} MB",
            target=f"≤ {TARGET_RSS_MB:.0f} MB for 1,000,000" if n >= 1_000_000 else "",
            met=rss <= TARGET_RSS_MB if n >= 1_000_000 else None,
            detail=detail,
        ),
    ]
    return rows
