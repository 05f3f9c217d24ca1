"""Stages (d) and (e): the whole run through real Celery workers, and the workers' memory.

A database of its own (``digest_bench`` on the local PostgreSQL) is filled with COPY: papers for the
last days (synthesised from the real ones, ~60 a day like Daily Papers), N active daily subscribers
all due at the run's moment, with the filter mix of :mod:`bench.data`. Then, with Redis as broker
(db 5) and Postfix's ``smtp-sink`` as the SMTP server:

    celery -A workers.app worker -Q digest.default,digest.send -c <workers>

and one ``digest.plan`` task (``at`` = the run's moment) sent as beat would. The clock runs from
sending that task until no ledger row is pending or sending; digests/s counts the messages the
sink accepted (``sent``; ``skipped`` rows — nothing matched — send no mail).

Every worker process's RSS is sampled (psutil) every 0.1 s; the peak of the largest process is the
memory figure. Stage (e) is the same run with 1,000,000 subscribers (memory flat in N).

``--arxiv N`` (issue 22): the same run twice, back to back, without arXiv (as above) and with it:
arXiv on means the two Daily Papers days the readers' windows fall on (the run's last two) each get
an announcement of N papers (cs.CL+cs.LG+cs.CV, 20 of that day's trending papers among them as
cross-announced) stored by the real ``ingest_arxiv`` from the local arXiv server (vectors included,
polite interval 0 for the local server), and 30 % of the readers get 1-3 lines naming an arXiv
category or a source (:func:`bench.data.add_arxiv_lines`); everything else is the same workload.

Baseline: a naive cron script over the same database (``naive_send``): per subscriber, its filters
and the day's papers queried, each filter evaluated on each paper, premailer on the HTML, an
``EmailMessage``, a new SMTP connection per message. It runs on a sample and is scaled to N.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bench.data import make_papers, make_subscribers
from bench.report import Row, faster, rate

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = os.environ.get("BENCH_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
DB_NAME = os.environ.get("BENCH_DATABASE", "digest_bench")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
TARGET_E2E_S = 60.0
TARGET_RSS_MB = 300.0
PAPERS_PER_DAY = 60
DAYS = 10
TIMEZONES = [
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "Asia/Shanghai",
    "Asia/Kolkata",
    "Asia/Tokyo",
]


def database_url() -> str:
    return PG_ADMIN.rsplit("/", 1)[0] + f"/{DB_NAME}"


def settings_env(smtp_port: int) -> dict[str, str]:
    return {
        "DIGEST_DATABASE_URL": database_url(),
        "DIGEST_BROKER_URL": REDIS_URL,
        "DIGEST_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "DIGEST_SECRET_KEY": "bench-secret-key-0123456789abcdef",
        "DIGEST_MAIL_FROM": "Trending Papers <digest@papers.example.org>",
        "DIGEST_BASE_URL": "https://papers.example.org",
    }


def run_moment() -> datetime:
    """A fixed Wednesday 12:00 UTC (no weekly digests due): every subscriber's hour has passed."""
    return datetime(2026, 3, 4, 12, 0, tzinfo=timezone.utc)


# ---------------------------------------------------------------- filling the database


def fresh_database(log=print) -> str:
    import psycopg

    from digest.db import upgrade

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    url = "postgresql+psycopg://" + database_url().split("://", 1)[1]
    upgrade(url)
    log(f"e2e: database {DB_NAME} migrated")
    return url


def populate(n: int, at: datetime, seed: int = 21, log=print, profiles: float = 0.0, arxiv: int = 0) -> dict:
    """Papers for the last DAYS days and ``n`` due daily subscribers with filters, by COPY; the
    papers' vectors as ingest stores them, a day at a time; ``profiles``: the share of subscribers
    with votes and a taste profile (:func:`taste_profiles`); ``arxiv``: that many papers announced on
    each of the last two days, through ``ingest_arxiv`` (:func:`ingest_arxiv_days`), and 30 % of the
    readers with lines naming a category or a source."""
    import psycopg

    t0 = time.perf_counter()
    end = at.date() - timedelta(days=1)
    papers = make_papers(PAPERS_PER_DAY * DAYS, seed=seed, days=DAYS, end=end)
    subscribers = make_subscribers(min(n, 200_000), papers, seed=seed + 1)  # reused cyclically past 200k
    arxiv_days = []
    if arxiv:
        from bench.data import ARXIV_SHARE, add_arxiv_lines, make_arxiv_day

        arxiv_days = [end - timedelta(days=1), end]  # the days the readers' windows fall on at this moment
        vocabulary = make_arxiv_day(arxiv, 0, seed=seed + 41, day=end)  # the texts of the last day's announcement
        subscribers = add_arxiv_lines(subscribers, vocabulary, ARXIV_SHARE, seed=seed + 2)
    rng = random.Random(seed)
    filters = 0
    with psycopg.connect(database_url()) as conn:
        with conn.cursor() as cur:
            with cur.copy(
                "COPY papers (id, arxiv_id, title, abstract, authors, org_name, org_fullname, published_at, "
                "submitted_at, daily_date, upvotes, num_comments, github_repo, ai_summary) FROM STDIN"
            ) as copy:
                for p in papers:
                    submitted = datetime.combine(p.daily_date, datetime.min.time(), timezone.utc) + timedelta(hours=3)
                    copy.write_row(
                        (
                            p.id,
                            p.arxiv_id,
                            p.title,
                            p.abstract,
                            json.dumps(list(p.authors)),
                            p.org or None,
                            p.org_fullname or None,
                            submitted - timedelta(days=2, seconds=p.id),
                            submitted,
                            p.daily_date,
                            p.upvotes,
                            0,
                            p.github_repo,
                            p.ai_summary,
                        )
                    )
            due = at - timedelta(minutes=1)
            with cur.copy(
                "COPY subscribers (id, public_id, email, state, frequency, timezone, delivery_hour, next_due_at, confirmed_at) FROM STDIN"
            ) as copy:
                zones = []
                for i in range(1, n + 1):
                    zones.append((rng.choice(TIMEZONES), rng.choice((6, 7, 7, 7, 8, 9))))
                    copy.write_row(
                        (
                            i,
                            uuid.UUID(int=rng.getrandbits(128)).hex,
                            f"reader{i}@example.org",
                            "active",
                            "daily",
                            *zones[-1],
                            due,
                            due - timedelta(days=30),
                        )
                    )
            with cur.copy("COPY topic_filters (subscriber_id, position, text) FROM STDIN") as copy:
                for i in range(1, n + 1):
                    for position, text in enumerate(subscribers[(i - 1) % len(subscribers)]):
                        copy.write_row((i, position, text))
                        filters += 1
            history = _yesterday(cur, zones, at, papers, rng)
            for table in ("papers", "subscribers", "deliveries"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        conn.commit()
        represent_days(papers)
        ingested = ingest_arxiv_days(arxiv_days, arxiv, papers, seed, log) if arxiv else {}
        voters = taste_profiles(conn, n, profiles, papers, at, seed, log) if profiles > 0 else {"readers": 0, "votes": 0}
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
    seconds = time.perf_counter() - t0
    log(
        f"e2e: {n:,} subscribers, {filters:,} filters, {len(papers)} papers (with vectors), yesterday's {history:,} sent items, "
        f"{voters['readers']:,} readers with a taste profile ({voters['votes']:,} votes) loaded in {seconds:.0f} s"
    )
    return {
        "subscribers": n,
        "filters": filters,
        "papers": len(papers),
        "papers_per_day": PAPERS_PER_DAY,
        "history_items": history,
        "profiles_share": profiles,
        "profile_readers": voters["readers"],
        "votes": voters["votes"],
        "load_seconds": seconds,
        "readers_with_scoped_lines": sum(
            1 for i in range(n) if any("cat:" in t or "source:" in t for t in subscribers[i % len(subscribers)])
        ),
    } | ingested


def ingest_arxiv_days(days, per_day: int, papers, seed: int, log=print) -> dict:
    """An announcement of ``per_day`` papers for each of ``days``, each stored by ``ingest_arxiv``
    (the RSS feed, the API in batches of 100, vectors) from the local arXiv server, as an operator's
    hourly job would have stored them; 20 of the day's trending papers are in its announcement too."""
    from bench.arxiv_ingest import CATEGORIES, MAIL_FROM, announcement_papers, local_server
    from digest.papers.ingest import ingest_arxiv
    from digest.papers.sources.arxiv import ArxivClient

    ArxivServer, _ = local_server()
    settings = _settings()
    seconds, stored, lines = [], 0, []
    for k, day in enumerate(days):
        trending = [p for p in papers if p.daily_date == day][:20]
        server = ArxivServer(
            day=day, papers=announcement_papers(per_day, day, seed=seed + 40 + k, trending=trending, id_base=10000 * (k + 1))
        )
        server.start()
        try:
            local = settings.with_(arxiv_categories=CATEGORIES, arxiv_rss_url=server.rss_url, arxiv_api_url=server.api_url)
            t0 = time.perf_counter()
            report = ingest_arxiv(local, client=ArxivClient(MAIL_FROM, min_interval=0.0))
            seconds.append(time.perf_counter() - t0)
            stored += report.new
            lines.append(f"{day}: {report.fetched} fetched, {report.new} new, {report.updated} updated in {seconds[-1]:.1f} s")
        finally:
            server.stop()
    log(f"e2e: arXiv ingest (local server, vectors): {'; '.join(lines)}")
    return {"arxiv_days": [d.isoformat() for d in days], "arxiv_per_day": per_day, "arxiv_stored": stored, "arxiv_ingest_seconds": seconds}


def represent_days(papers) -> None:
    """Every paper's dense embedding and TF-IDF terms, by ``digest.papers.vectors.represent`` one
    Daily Papers day at a time, oldest first, as the day's ingest would have stored them."""
    from digest.db import session_scope
    from digest.papers.vectors import represent

    settings = _settings()
    days: dict = {}
    for p in papers:
        days.setdefault(p.daily_date, []).append(p.arxiv_id)
    for day in sorted(days):
        with session_scope(settings) as session:
            represent(session, days[day])


#: Distinct vote sets fitted through the product's own code; readers with a profile share them
#: cyclically (each gets the set's votes and its fitted profile bytes, by COPY).
VOTE_SETS = 300
#: Signals (votes) per vote set: a few for most readers, enough for the learned model for some.
VOTE_COUNTS = (1, 1, 2, 2, 3, 3, 4, 5, 6, 8, 10, 14, 20, 30)


def taste_profiles(conn, n: int, share: float, papers, at: datetime, seed: int, log=print) -> dict:
    """``share`` of the ``n`` subscribers (drawn at random) get votes and a taste profile.

    ``VOTE_SETS`` of them vote through :func:`digest.matching.profiles.record_vote` (the rows a
    "more / less like this" POST writes: ``votes``, and ``reader_profiles`` refitted by
    ``taste.fit`` on each vote); every other one copies one of those sets' votes and profile bytes.
    A set likes papers near one paper of an earlier day (by their stored embeddings: a topic) and
    dislikes a few others at random; no vote is on a paper of the days this run sends.
    """
    import numpy as np
    from sqlalchemy import select

    from digest.db import session_scope
    from digest.matching.profiles import record_vote
    from digest.models import PaperVector, ReaderProfile, Vote

    rng = random.Random(seed + 7)
    voters = sorted(rng.sample(range(1, n + 1), round(n * share)))
    if not voters:
        return {"readers": 0, "votes": 0}
    latest = max(p.daily_date for p in papers)
    earlier = [p.id for p in papers if p.daily_date < latest - timedelta(days=1)]  # shown in past digests
    settings = _settings()
    with session_scope(settings) as session:
        rows = session.execute(select(PaperVector.paper_id, PaperVector.dense).where(PaperVector.paper_id.in_(earlier))).all()
    ids = np.array([r[0] for r in rows])
    dense = np.stack([r[1] for r in rows])
    templates = voters[:VOTE_SETS]
    t0 = at - timedelta(days=20)
    for subscriber_id in templates:
        count = rng.choice(VOTE_COUNTS)
        centre = rng.randrange(len(ids))
        near = ids[np.argsort(-(dense @ dense[centre]))[: max(12, 2 * count)]].tolist()
        likes = rng.sample(near, max(1, round(count * 0.7)))
        others = [i for i in rng.sample(ids.tolist(), min(len(ids), 4 * count + 4)) if i not in near]
        ballots = [(i, 1) for i in likes] + [(i, -1) for i in others[: count - len(likes)]]
        rng.shuffle(ballots)
        with session_scope(settings) as session:
            for j, (paper_id, vote) in enumerate(ballots):
                record_vote(session, subscriber_id, int(paper_id), vote, t0 + timedelta(minutes=j))
    with session_scope(settings) as session:
        sets = {sid: [] for sid in templates}
        for sid, paper_id, vote, source, created in session.execute(
            select(Vote.subscriber_id, Vote.paper_id, Vote.vote, Vote.source, Vote.created_at).where(Vote.subscriber_id.in_(templates))
        ):
            sets[sid].append((paper_id, vote, source.value, created))
        fitted = dict(
            session.execute(
                select(ReaderProfile.subscriber_id, ReaderProfile.profile).where(ReaderProfile.subscriber_id.in_(templates))
            ).all()
        )
    copies = [(sid, templates[k % len(templates)]) for k, sid in enumerate(voters) if k >= len(templates)]
    votes = sum(len(v) for v in sets.values())
    with conn.cursor() as cur:
        with cur.copy("COPY votes (subscriber_id, paper_id, vote, source, created_at) FROM STDIN") as copy:
            for sid, template in copies:
                for row in sets[template]:
                    copy.write_row((sid, *row))
                votes += len(sets[template])
        with cur.copy("COPY reader_profiles (subscriber_id, profile, updated_at) FROM STDIN") as copy:
            for sid, template in copies:
                copy.write_row((sid, fitted[template], t0))
    conn.commit()
    sizes = [len(b) for b in fitted.values()]
    log(
        f"e2e: {len(voters):,} readers with a profile ({len(templates)} vote sets fitted by record_vote, profiles {min(sizes)}–{max(sizes)} bytes)"
    )
    return {"readers": len(voters), "votes": votes}


def _settings():
    from digest.config import load_settings

    return load_settings({"DIGEST_DATABASE_URL": database_url(), "DIGEST_SECRET_KEY": "bench-secret-key-0123456789abcdef"})


def _yesterday(cur, zones: list[tuple[str, int]], at: datetime, papers, rng: random.Random) -> int:
    """The ledger as the previous day's run left it: each subscriber's digest of yesterday, ``sent``,
    with ~6 of that day's papers as items (none for ~11 %), so the run meets a ledger in steady
    state — rows to read for "never a paper twice" and statistics the planner can use — not an
    empty one that grows from nothing under its feet."""
    from digest.delivery.schedule import due_digest

    days = sorted({p.daily_date for p in papers})
    by_day: dict = {}
    for p in papers:
        by_day.setdefault(p.daily_date, []).append(p.id)
    rows, items = [], 0
    with cur.copy(
        "COPY deliveries (id, public_id, subscriber_id, period, scheduled_for, window_start, window_end, status, "
        "attempts, sent_at, message_id, paper_count) FROM STDIN"
    ) as copy:
        for i, (zone, hour) in enumerate(zones, start=1):
            today = due_digest(i, "daily", zone, hour, at, None, days)  # what this run will plan
            due = due_digest(i, "daily", zone, hour, today.slot - timedelta(seconds=1), None, [d for d in days if d < today.window_start])
            count = 0 if rng.random() < 0.11 else rng.randint(1, 10)
            shown = rng.sample(by_day[due.window_end], min(count, len(by_day[due.window_end])))
            public_id = uuid.UUID(int=rng.getrandbits(128)).hex
            copy.write_row(
                (
                    i,
                    public_id,
                    i,
                    due.period,
                    due.slot,
                    due.window_start,
                    due.window_end,
                    "sent" if shown else "skipped",
                    1,
                    due.slot if shown else None,
                    f"digest.{public_id}@papers.example.org" if shown else None,
                    len(shown),
                )
            )
            rows.append((i, shown))
    with cur.copy("COPY delivery_items (delivery_id, paper_id, subscriber_id, position) FROM STDIN") as copy:
        for i, shown in rows:
            for position, paper_id in enumerate(shown):
                copy.write_row((i, paper_id, i, position))
                items += 1
    return items


# ---------------------------------------------------------------- workers and memory


@dataclass
class RssSampler:
    """Peak RSS per process of a Celery worker tree, sampled every ``interval`` seconds."""

    root_pid: int
    interval: float = 0.1
    peak: dict[int, int] = field(default_factory=dict)
    names: dict[int, str] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> RssSampler:
        threading.Thread(target=self._loop, daemon=True).start()
        return self

    def _loop(self) -> None:
        import psutil

        root = psutil.Process(self.root_pid)
        while not self._stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                return
            for p in procs:
                try:
                    rss = p.memory_info().rss
                except psutil.Error:
                    continue
                if rss > self.peak.get(p.pid, 0):
                    self.peak[p.pid] = rss
                    self.names.setdefault(p.pid, "main" if p.pid == self.root_pid else "child")
            self._stop.wait(self.interval)

    def stop(self) -> None:
        self._stop.set()

    def summary(self) -> dict:
        mb = {pid: rss / 2**20 for pid, rss in self.peak.items()}
        children = [v for pid, v in mb.items() if pid != self.root_pid]
        return {
            "peak_rss_mb_max_process": max(mb.values(), default=0.0),
            "peak_rss_mb_main": mb.get(self.root_pid, 0.0),
            "peak_rss_mb_children": sorted(children, reverse=True),
        }


def start_workers(env: dict[str, str], workers: int, log_path: Path) -> subprocess.Popen:
    celery = [str(Path(sys.executable).parent / "celery")]
    cmd = [
        *celery,
        "-A",
        "workers.app",
        "worker",
        "-Q",
        "digest.default,digest.send",
        "-c",
        str(workers),
        "--loglevel=WARNING",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        "-n",
        f"bench{os.getpid()}@%h",
    ]
    log = open(log_path, "w")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=os.environ | env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc


def wait_ready(app, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"celery worker exited with {proc.returncode}")
        try:
            if app.control.ping(timeout=0.5):
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise RuntimeError("celery worker did not answer a ping in time")


def stop_workers(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _counts(engine, after: int) -> dict[str, int]:
    """This run's ledger rows by status (ids past ``after``: yesterday's rows are 1..n)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return dict(conn.execute(text("SELECT status, count(*) FROM deliveries WHERE id > :after GROUP BY status"), {"after": after}).all())


def _busy(engine, after: int) -> tuple[bool, bool]:
    """(any ledger row yet, any row pending or sending): two index lookups, cheap enough to poll
    every 0.25 s without taking CPU from the run (a full count is only taken once it looks done)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        return tuple(
            conn.execute(
                text(
                    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE id > :after), "
                    "EXISTS (SELECT 1 FROM deliveries WHERE status IN ('pending', 'sending'))"
                ),
                {"after": after},
            ).one()
        )


_PG_BACKGROUND = ("checkpointer", "background writer", "walwriter", "autovacuum", "logical replication", "archiver")


class CpuAccount:
    """CPU seconds (user + system) each kind of process spent between :meth:`start` and :meth:`stop`:
    the Celery workers, PostgreSQL, Redis, the SMTP sink, this bench, the rest of the machine."""

    def __init__(self, worker_pid: int) -> None:
        self.worker_pid = worker_pid
        self.before: dict[int, float] = {}
        self.wall = 0.0
        self.seconds: dict[str, float] = {}

    @staticmethod
    def _snapshot() -> dict[int, tuple[str, float]]:
        import psutil

        out = {}
        for p in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            times = p.info["cpu_times"]
            if times is not None:
                name = p.info["name"] or "?"
                if name == "postgres" and p.info["cmdline"]:  # "postgres: 15/main: walwriter", "…: postgres db 127.0.0.1(…) idle"
                    title = " ".join(p.info["cmdline"])
                    background = any(word in title for word in _PG_BACKGROUND) or not title.startswith("postgres:")
                    name = "postgres (background: vacuum, WAL…)" if background else "postgres (sessions)"
                out[p.pid] = (name, times.user + times.system)
        return out

    def _kind(self, pid: int, name: str, workers: set[int]) -> str:
        if pid in workers:
            return "celery workers"
        if pid == os.getpid():
            return "bench (polling)"
        if name.startswith("postgres ("):
            return name
        for kind in ("postgres", "redis-server", "smtp-sink"):
            if name.startswith(kind):
                return kind
        return "other"

    def start(self) -> CpuAccount:
        self.before = {pid: cpu for pid, (_, cpu) in self._snapshot().items()}
        self.wall = time.perf_counter()
        return self

    def stop(self) -> dict[str, float]:
        import psutil

        self.wall = time.perf_counter() - self.wall
        try:
            workers = {self.worker_pid, *(c.pid for c in psutil.Process(self.worker_pid).children(recursive=True))}
        except psutil.Error:
            workers = {self.worker_pid}
        for pid, (name, cpu) in self._snapshot().items():
            kind = self._kind(pid, name, workers)
            self.seconds[kind] = self.seconds.get(kind, 0.0) + cpu - self.before.get(pid, 0.0)
        return self.seconds

    def line(self) -> str:
        total = sum(self.seconds.values())
        parts = ", ".join(f"{k} {v:.0f} s" for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1]))
        return f"CPU {total:.0f} s in {self.wall:.0f} s wall ({total / self.wall:.2f} cores busy): {parts}"


@dataclass
class Run:
    n: int
    seconds: float
    plan_seconds: float | None
    counts: dict
    rss: dict
    finished: bool
    workload: dict
    cpu_seconds: dict = field(default_factory=dict)  # CPU per kind of process during the run


def _items(engine, after: int) -> dict[str, int]:
    """This run's digest items: all, and those of papers only arXiv announced (the "New on arXiv" section)."""
    from sqlalchemy import text

    with engine.connect() as conn:
        total, arxiv = conn.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE p.daily_date IS NULL) FROM delivery_items i "
                "JOIN papers p ON p.id = i.paper_id WHERE i.delivery_id > :after"
            ),
            {"after": after},
        ).one()
    return {"items": total, "arxiv_items": arxiv}


def run_pipeline(
    n: int,
    workers: int,
    *,
    cap_seconds: float,
    profiles: float = 0.0,
    arxiv: int = 0,
    extra_env: dict[str, str] | None = None,
    dump: Path | None = None,
    log=print,
) -> Run:
    """Fill, start workers, send the plan task, wait for the ledger to settle; measure.

    ``extra_env``: more settings for this run's workers (DKIM keys); ``dump``: a folder where the
    SMTP sink writes every message it accepts (:func:`bench.smtp.smtp_sink`)."""
    import redis

    from bench.smtp import smtp_sink

    at = run_moment()
    url = fresh_database(log)
    workload = populate(n, at, log=log, profiles=profiles, arxiv=arxiv)
    redis.Redis.from_url(REDIS_URL).flushdb()
    from sqlalchemy import create_engine

    engine = create_engine(url)
    log_path = Path(__file__).resolve().parent / "results" / f"worker-{n}.log"
    log_path.parent.mkdir(exist_ok=True)
    saved = dict(os.environ)  # given back after the run: one run's settings (DKIM keys) are not the next one's
    with smtp_sink(dump=dump) as port:
        env = settings_env(port) | (extra_env or {})
        os.environ.update(env)  # the Celery app below reads the same settings
        from celery import Celery

        app = Celery("digest", broker=REDIS_URL)
        proc = start_workers(env, workers, log_path)
        try:
            wait_ready(app, proc)
            sampler = RssSampler(proc.pid).start()
            time.sleep(0.5)
            idle = dict(sampler.peak)
            cpu = CpuAccount(proc.pid).start()
            t0 = time.perf_counter()
            app.send_task("digest.plan", kwargs={"at": at.isoformat()}, queue="digest.default")
            plan_seconds, counts, finished = None, {}, False
            while time.perf_counter() - t0 < cap_seconds:
                time.sleep(0.25)
                started, busy = _busy(engine, n)
                if plan_seconds is None and started:
                    plan_seconds = time.perf_counter() - t0
                if started and not busy:
                    counts = _counts(engine, n)
                    if sum(counts.values()) >= n and not counts.get("pending") and not counts.get("sending"):
                        finished = True
                        break
                if proc.poll() is not None:
                    raise RuntimeError(f"celery worker died (exit {proc.returncode}); see {log_path}")
            seconds = time.perf_counter() - t0
            cpu.stop()
            sampler.stop()
            if not finished:
                counts = _counts(engine, n)
        finally:
            stop_workers(proc)
            os.environ.clear()
            os.environ.update(saved)
    workload = workload | _items(engine, n)
    engine.dispose()
    rss = sampler.summary() | {"idle_rss_mb": {str(k): v / 2**20 for k, v in idle.items()}}
    log(
        f"e2e: {n:,} due: {counts} in {seconds:.1f} s (plan committed at {plan_seconds or 0:.1f} s); {'finished' if finished else 'NOT finished (cap)'}; peak RSS {rss['peak_rss_mb_max_process']:.0f} MB"
    )
    log(f"e2e: {cpu.line()}; items {workload['items']:,} ({workload['arxiv_items']:,} arXiv-only papers)")
    return Run(n, seconds, plan_seconds, counts, rss, finished, workload, cpu.seconds)


# ---------------------------------------------------------------- the naive baseline


def naive_send(sample: int, smtp_port: int) -> tuple[float, int]:
    """A cron script done the obvious way, over the bench database: wall seconds, mails sent."""
    import smtplib

    from sqlalchemy import select
    from sqlalchemy.orm import Session

    from bench.rendering import SETTINGS, Naive
    from digest.db import engine_for
    from digest.delivery.schedule import last_ended_day
    from digest.mail.digest_email import Reader
    from digest.matching.select import Pick
    from digest.matching.topics import FilterError, parse_filter
    from digest.matching.trending import paper_text
    from digest.models import Paper, Subscriber, TopicFilter

    naive = Naive()
    at = run_moment()
    sent = 0
    engine = engine_for("postgresql+psycopg://" + database_url().split("://", 1)[1])
    t0 = time.perf_counter()
    with Session(engine) as session:
        subs = session.scalars(select(Subscriber).order_by(Subscriber.id).limit(sample)).all()
        for s in subs:
            texts = session.scalars(select(TopicFilter.text).where(TopicFilter.subscriber_id == s.id).order_by(TopicFilter.position)).all()
            day = last_ended_day(at)
            papers = session.scalars(select(Paper).where(Paper.daily_date == day).order_by(Paper.upvotes.desc(), Paper.id)).all()
            filters = []
            for t in texts:
                try:
                    filters.append(parse_filter(t))
                except FilterError:
                    pass
            picks = []
            for p in papers:
                text = paper_text(p)
                hit = next((f for f in filters if f.matches(text)), None)
                if hit or not texts:
                    picks.append(Pick(p, hit.text if hit else None))
                if len(picks) == SETTINGS.digest_size:
                    break
            if not picks:
                continue
            reader = Reader(s.email, "daily", s.timezone, s.delivery_hour, tuple(texts))
            data = naive.message(picks, reader, (day, day), s.public_id, f"naive{s.id}")
            with smtplib.SMTP("127.0.0.1", smtp_port) as smtp:
                smtp.sendmail("digest@papers.example.org", [s.email], data)
            sent += 1
    return time.perf_counter() - t0, sent


def naive_baseline(n: int, sample: int, log=print) -> tuple[float, dict]:
    from bench.smtp import smtp_sink

    with smtp_sink() as port:
        seconds, sent = naive_send(sample, port)
    scaled = seconds * n / sample
    log(f"e2e: naive cron script: {sample} subscribers ({sent} mails) in {seconds:.1f} s -> {scaled:,.0f} s for {n:,}")
    return scaled, {"sample": sample, "sample_seconds": seconds, "sample_sent": sent}


# ---------------------------------------------------------------- stages


def run_e2e(n: int, *, workers: int = 3, profiles: float = 0.0, naive: bool = True, log=print) -> list[Row]:
    run = run_pipeline(n, workers, cap_seconds=max(900.0, n / 100), profiles=profiles, log=log)
    label = f", {profiles:.0%} with a taste profile" if profiles else ""
    stage = "e2e"
    if naive:
        base_s, base_detail = naive_baseline(n, min(1000, max(200, n // 100)), log=log)
    else:
        base_s, base_detail = None, {"sample": 0, "sample_seconds": None, "sample_sent": 0}
    sent = run.counts.get("sent", 0)
    detail = (
        {
            "counts": run.counts,
            "plan_seconds": run.plan_seconds,
            "finished": run.finished,
            "workers": workers,
            "cpu_seconds": run.cpu_seconds,
        }
        | run.workload
        | run.rss
    )
    rows = [
        faster(
            stage,
            f"{n:,} due subscribers: plan + send, {workers} Celery workers{label}",
            run.seconds,
            base_s,
            baseline_label=f"naive cron script, {base_detail['sample']} sampled",
            target=f"≤ {TARGET_E2E_S:g} s" if n >= 100_000 else f"(≤ {TARGET_E2E_S:g} s at 100,000)",
            met=(run.finished and run.seconds <= TARGET_E2E_S) if n >= 100_000 else None,
            note=f"sent {sent:,}, skipped {run.counts.get('skipped', 0):,} (nothing matched), failed {run.counts.get('failed', 0):,}; "
            f"plan committed at {run.plan_seconds or 0:.1f} s" + ("" if run.finished else "; NOT FINISHED"),
            detail=detail | {"baseline": base_detail},
        ),
        rate(
            stage,
            f"digests delivered per second{label}",
            sent / run.seconds if run.seconds else 0.0,
            "digests/s",
            base_detail["sample_sent"] / base_detail["sample_seconds"] if naive else None,
            baseline_label="naive cron script",
        ),
        Row(
            stage,
            f"peak RSS of a worker process, {n:,} subscribers{label}",
            run.rss["peak_rss_mb_max_process"],
            "MB",
            note=f"children {', '.join(f'{v:.0f}' for v in run.rss['peak_rss_mb_children'])} MB; main {run.rss['peak_rss_mb_main']:.0f} MB",
            detail=run.rss,
        ),
    ]
    return rows


TARGET_ARXIV_RATIO = 1.25


def alternating(pairs: int) -> Iterator[tuple[int, str]]:
    """(pair, "off" or "on") for ``pairs`` pairs of runs, the order alternating pair by pair (off,
    on, on, off, …) so that a machine slowing down or speeding up weighs on both sides."""
    for k in range(pairs):
        for which in ("off", "on") if k % 2 == 0 else ("on", "off"):
            yield k, which


def ratio_row(
    stage: str,
    what: str,
    off_label: str,
    runs: dict[str, list[Run]],
    order: list[tuple[str, float]],
    target: float,
    *,
    correct: bool,
    note: str = "",
) -> Row:
    """The mean of the "on" runs against the mean of the "off" runs of the same bench, and whether
    it is within ``target`` times off (only when ``correct``: every run finished and was checked)."""
    off = sum(r.seconds for r in runs["off"]) / len(runs["off"])
    on = sum(r.seconds for r in runs["on"]) / len(runs["on"])
    pairs = len(runs["on"])
    return faster(
        stage,
        f"{what}, mean of {pairs} pair{'s' * (pairs > 1)} (order: {', '.join(f'{w} {s:.1f} s' for w, s in order)})",
        on,
        off,
        baseline_label=f"same run, {off_label}",
        target=f"≤ {target:.2f} × off",
        met=correct and on <= target * off,
        note=f"on/off = {on / off:.3f} ({(on / off - 1) * 100:+.1f} %)" + note,
    )


def run_e2e_arxiv(
    n: int, arxiv: int, *, workers: int = 3, profiles: float = 0.0, naive: bool = True, pairs: int = 1, log=print
) -> list[Row]:
    """Issue 22: ``pairs`` pairs of runs, without arXiv then with it (the order alternates pair by
    pair), each its own fresh database; the naive cron script once (the same for both: it sends
    trending papers only) unless ``naive`` is off."""
    cap = max(900.0, n / 100)
    label = f", {profiles:.0%} with a taste profile" if profiles else ""
    runs: dict[str, list[Run]] = {"off": [], "on": []}
    order = []
    for k, which in alternating(pairs):
        log(f"e2e: pair {k + 1}, arXiv {which}")
        runs[which].append(run_pipeline(n, workers, cap_seconds=cap, profiles=profiles, arxiv=arxiv if which == "on" else 0, log=log))
        order.append((which, runs[which][-1].seconds))
    if naive:
        base_s, base_detail = naive_baseline(n, min(1000, max(200, n // 100)), log=log)
    else:
        base_s, base_detail = None, {"sample": 0}
    rows = []
    for which, what in (("off", "arXiv off"), ("on", f"arXiv on: {arxiv:,} papers a day, 30 % of readers with cat:/source: lines")):
        for k, run in enumerate(runs[which]):
            w = run.workload
            rows.append(
                faster(
                    "e2e arxiv",
                    f"{n:,} due: plan + send, {workers} workers{label}, {what} (run {k + 1})",
                    run.seconds,
                    base_s,
                    baseline_label=f"naive cron script, {base_detail['sample']} sampled" if naive else "",
                    note=f"sent {run.counts.get('sent', 0):,}, skipped {run.counts.get('skipped', 0):,}, failed {run.counts.get('failed', 0):,}; "
                    f"items {w['items']:,} ({w['arxiv_items']:,} arXiv-only); CPU {sum(run.cpu_seconds.values()):.0f} s "
                    f"(workers {run.cpu_seconds.get('celery workers', 0):.0f} s); peak RSS {run.rss['peak_rss_mb_max_process']:.0f} MB"
                    + ("" if run.finished else "; NOT FINISHED"),
                    detail={
                        "counts": run.counts,
                        "plan_seconds": run.plan_seconds,
                        "finished": run.finished,
                        "cpu_seconds": run.cpu_seconds,
                    }
                    | w
                    | run.rss,
                )
            )
    finished = all(r.finished for rs in runs.values() for r in rs)
    rows.append(ratio_row("e2e arxiv", "arXiv on against off", "arXiv off", runs, order, TARGET_ARXIV_RATIO, correct=finished))
    return rows


TARGET_DKIM_RATIO = 1.20
DKIM_DOMAIN = "papers.example.org"  # DIGEST_MAIL_FROM's in settings_env: the signing domain


def dkim_keys(kinds: tuple[str, ...], folder: Path) -> tuple[dict[str, str], dict[str, bytes]]:
    """Keys made as an operator makes them, ``digest dkim keygen`` in a process of its own: the
    settings that name them, and the TXT records it printed (name -> text, as DNS would serve them)."""
    from digest.config import DKIM_VARIABLES

    env: dict[str, str] = {}
    records: dict[str, bytes] = {}
    for kind in kinds:
        selector, out = f"bench-{kind}", folder / f"{kind}.pem"
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "digest",
                "dkim",
                "keygen",
                "--selector",
                selector,
                "--type",
                kind,
                "--out",
                str(out),
                "--domain",
                DKIM_DOMAIN,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )
        line = done.stdout.strip()
        records[line.split()[0]] = "".join(line.split('"')[1::2]).encode("ascii")
        key_variable, selector_variable = DKIM_VARIABLES[kind]
        env |= {key_variable: str(out), selector_variable: selector}
    return env, records


def check_signatures(folder: Path, records: dict[str, bytes], expected: int, sample: int, seed: int = 5) -> tuple[int, int, int]:
    """(messages the sink kept, sampled, sampled whose ``expected`` signatures dkimpy accepts against
    ``records``); with ``expected`` 0, those that carry no signature at all."""
    import dkim

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return records.get(name.decode("ascii"))

    files = sorted(folder.iterdir())
    picked = random.Random(seed).sample(files, min(sample, len(files)))
    good = 0
    for path in picked:
        data = path.read_bytes()
        # the sink writes LF line ends, its envelope (X-Client-Addr: …) and a Received field first:
        # fields no signature covers, left in as a receiver would see them
        data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
        found = data.count(b"\r\nDKIM-Signature:") + data.startswith(b"DKIM-Signature:")
        if expected == 0:
            good += found == 0
            continue
        try:
            good += found == expected and all(dkim.DKIM(data).verify(idx=i, dnsfunc=dns) for i in range(expected))
        except dkim.DKIMException:
            pass
    return len(files), len(picked), good


def run_e2e_dkim(
    n: int, kinds: tuple[str, ...], *, workers: int = 3, profiles: float = 0.0, pairs: int = 1, sample: int = 50, log=print
) -> list[Row]:
    """Issue 23: ``pairs`` pairs of runs, unsigned then signed with ``kinds`` (the order alternates
    pair by pair), each its own fresh database. Both kinds of run keep every message the sink
    accepts (in /dev/shm, removed after the run) so that they cost the same; of each run, ``sample``
    messages are read back: signed ones must pass dkimpy against the records keygen printed,
    unsigned ones must carry no signature."""
    import shutil
    import tempfile

    cap = max(900.0, n / 100)
    label = f", {profiles:.0%} with a taste profile" if profiles else ""
    what = " + ".join({"rsa": "RSA-2048", "ed25519": "Ed25519"}[k] for k in kinds)
    runs: dict[str, list[Run]] = {"off": [], "on": []}
    checks: dict[str, list[tuple[int, int, int]]] = {"off": [], "on": []}
    order = []
    with tempfile.TemporaryDirectory(prefix="bench-dkim-") as keys_folder:
        env, records = dkim_keys(kinds, Path(keys_folder))
        for k, which in alternating(pairs):
            log(f"e2e: pair {k + 1}, DKIM {which}")
            dump = Path(tempfile.mkdtemp(prefix="bench-sink-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
            dump.chmod(0o777)
            try:
                run = run_pipeline(
                    n, workers, cap_seconds=cap, profiles=profiles, extra_env=env if which == "on" else {}, dump=dump, log=log
                )
                checks[which].append(check_signatures(dump, records, len(kinds) if which == "on" else 0, sample))
            finally:
                shutil.rmtree(dump, ignore_errors=True)
            runs[which].append(run)
            order.append((which, run.seconds))
            kept, sampled, good = checks[which][-1]
            log(f"e2e: DKIM {which}: the sink kept {kept:,} messages; {good} of {sampled} sampled as expected")
    rows = []
    for which, title in (("off", "DKIM off"), ("on", f"DKIM on: {what}")):
        for k, (run, (kept, sampled, good)) in enumerate(zip(runs[which], checks[which])):
            rows.append(
                Row(
                    "e2e dkim",
                    f"{n:,} due: plan + send, {workers} workers{label}, {title} (run {k + 1})",
                    run.seconds,
                    "s",
                    note=f"sent {run.counts.get('sent', 0):,} (sink kept {kept:,}); {good}/{sampled} sampled "
                    + ("verified by dkimpy" if which == "on" else "unsigned")
                    + f"; CPU {sum(run.cpu_seconds.values()):.0f} s (workers {run.cpu_seconds.get('celery workers', 0):.0f} s)"
                    + ("" if run.finished else "; NOT FINISHED"),
                    detail={
                        "counts": run.counts,
                        "finished": run.finished,
                        "cpu_seconds": run.cpu_seconds,
                        "kept": kept,
                        "sampled": sampled,
                        "good": good,
                    },
                )
            )
    cpu = {w: sum(r.cpu_seconds.get("celery workers", 0) for r in rs) / len(rs) for w, rs in runs.items()}
    sent = sum(r.counts.get("sent", 0) for r in runs["on"]) / len(runs["on"])
    correct = all(r.finished for rs in runs.values() for r in rs) and all(
        good == sampled > 0 for cs in checks.values() for _, sampled, good in cs
    )
    note = f"; workers' CPU {cpu['off']:.0f} → {cpu['on']:.0f} s" + (
        f" (+{(cpu['on'] - cpu['off']) / sent * 1000:.2f} ms a message)" if sent else ""
    )
    note += "" if correct else "; a run did not finish or a sampled message was not as expected"
    rows.append(
        ratio_row("e2e dkim", f"DKIM {what} against unsigned", "DKIM off", runs, order, TARGET_DKIM_RATIO, correct=correct, note=note)
    )
    return rows


def run_memory(n: int, *, workers: int = 3, quick: bool = False, profiles: float = 0.0, log=print) -> list[Row]:
    cap = 900.0 if not quick else 300.0
    run = run_pipeline(n, workers, cap_seconds=cap, profiles=profiles, log=log)
    label = f", {profiles:.0%} with a taste profile" if profiles else ""
    peak = run.rss["peak_rss_mb_max_process"]
    sent = run.counts.get("sent", 0)
    return [
        Row(
            "memory",
            f"peak RSS of a worker process, {n:,} subscribers{label}",
            peak,
            "MB",
            target=f"≤ {TARGET_RSS_MB:g} MB at 1,000,000",
            met=(peak <= TARGET_RSS_MB) if n >= 1_000_000 else None,
            note=f"children {', '.join(f'{v:.0f}' for v in run.rss['peak_rss_mb_children'])} MB; main {run.rss['peak_rss_mb_main']:.0f} MB; "
            f"{'all' if run.finished else 'NOT all'} delivered in {run.seconds:.0f} s (sent {sent:,}, {sent / run.seconds:,.0f}/s)",
            detail={"counts": run.counts, "seconds": run.seconds, "plan_seconds": run.plan_seconds, "finished": run.finished}
            | run.workload
            | run.rss,
        )
    ]
