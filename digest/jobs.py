"""The scheduled jobs, as plain functions, and the one table of how often each runs.

Celery beat (``workers/beat.py``) and the embedded in-process scheduler both run :data:`JOBS`
on :data:`INTERVALS`; work they hand on (send batches) goes through a :class:`~digest.queue.Queue`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.batch import SendReport, chunks
from digest.delivery.ledger import claim_cutoff, claimable_ids
from digest.delivery.planning import plan_pages
from digest.delivery.run import send_next
from digest.models import IngestRun, Pause, sending_paused
from digest.papers.ingest import IngestReport, ingest_arxiv, ingest_days
from digest.queue import Queue
from digest.subscribers.subscriptions import purge_unconfirmed, release_waiting_confirmations

log = logging.getLogger(__name__)

#: How often each scheduled job runs: Celery beat's schedule and the in-process scheduler's.
INTERVALS = {
    "ingest": timedelta(minutes=30),
    "plan": timedelta(minutes=5),  # also re-queues rows a lost task or a dead worker left behind
    "purge": timedelta(hours=1),  # also mails the sign-ups that waited for their quota window
    # arXiv's feed changes once a day (midnight US Eastern; empty on weekends and holidays): an hourly
    # look stores each announcement within the hour of its update and asks arXiv nothing more until the
    # next (run_arxiv_ingest); without DIGEST_ARXIV_CATEGORIES it does nothing
    "ingest_arxiv": timedelta(hours=1),
}


@dataclass
class PlanReport:
    planned: int = 0
    requeued: int = 0
    batches: int = 0
    paused: Pause | None = None  # sending was paused: nothing planned or re-queued

    def line(self) -> str:
        if self.paused is not None:
            return f"{self.paused.line()}: nothing planned or re-queued"
        return f"planned {self.planned} digests, re-queued {self.requeued} stuck, in {self.batches} batches"


def plan_and_dispatch(settings: Settings, at: datetime, queue: Queue, *, page_size: int | None = None) -> PlanReport:
    """Re-queue rows stuck past the claim timeout, then plan everyone due at ``at``, page by page.

    Each keyset page is committed before its batches are handed to ``queue``, so a worker that picks
    one up finds its rows, and sending overlaps planning; memory holds one page of ids (and the
    stuck ones, normally none). While sending is paused it does nothing.
    """
    report = PlanReport()
    with session_scope(settings) as session:
        report.paused = sending_paused(session)
        if report.paused is not None:
            return report
        stuck = list(claimable_ids(session, claim_cutoff(settings, at), at, idle=True))
    for batch in chunks(stuck):
        queue.send_batch(batch)
        report.batches += 1
    report.requeued = len(stuck)
    requeued = set(stuck)
    for planned in plan_pages(settings, at, **({"page_size": page_size} if page_size else {})):
        planned = [i for i in planned if i not in requeued]  # a pending row of an earlier run
        for batch in chunks(planned):
            queue.send_batch(batch)
            report.batches += 1
        report.planned += len(planned)
    return report


def run_ingest(settings: Settings, now: datetime | None = None) -> IngestReport:
    today = (now or datetime.now(timezone.utc)).date()
    return ingest_days(settings, [today - timedelta(days=1), today])


ARXIV_ZONE = ZoneInfo("America/New_York")  # arXiv's feeds update at midnight there


def feed_updated_at(now: datetime) -> datetime:
    """The moment arXiv's feeds last changed, at or before ``now``: midnight US Eastern (UTC)."""
    local = now.astimezone(ARXIV_ZONE)
    return datetime.combine(local.date(), time(0), ARXIV_ZONE).astimezone(timezone.utc)


def run_arxiv_ingest(settings: Settings, now: datetime | None = None) -> IngestReport | None:
    """The latest arXiv announcement of ``DIGEST_ARXIV_CATEGORIES``; None when arXiv is off.

    Run hourly, it asks arXiv once per feed update: once an announcement was stored after the
    latest midnight US Eastern, it fetches nothing until the next one (a feed not yet updated
    when it looks stores nothing, so the next hour looks again)."""
    if not settings.arxiv_categories:
        return None
    now = now or datetime.now(timezone.utc)
    updated = feed_updated_at(now)
    prefix = f"arXiv {'+'.join(dict.fromkeys(settings.arxiv_categories))} ("
    with session_scope(settings) as session:
        last = session.scalar(select(func.max(IngestRun.started_at)).where(IngestRun.source.startswith(prefix, autoescape=True)))
    if last is not None and (last if last.tzinfo else last.replace(tzinfo=timezone.utc)) >= updated:
        following = feed_updated_at(updated + timedelta(hours=25))
        return IngestReport(
            f"arXiv {prefix[6:-2]}",
            notes=[
                f"the feed was read at {last:%Y-%m-%d %H:%M} UTC, after its last update ({updated:%Y-%m-%d %H:%M} UTC):"
                f" nothing fetched until the next one ({following:%Y-%m-%d %H:%M} UTC)"
            ],
        )
    return ingest_arxiv(settings)


def run_purge(settings: Settings, now: datetime | None = None) -> int:
    with session_scope(settings) as session:
        return purge_unconfirmed(session, now or datetime.now(timezone.utc))


def send_waiting_confirmations(settings: Settings, queue: Queue, now: datetime | None = None) -> int:
    """Mail the sign-ups that waited for a full confirmation quota window to end (hourly, with the purge)."""
    with session_scope(settings) as session:
        ids = release_waiting_confirmations(session, now or datetime.now(timezone.utc))
    for subscriber_id in ids:  # committed: now the mail may go
        queue.send_confirmation(subscriber_id)
    return len(ids)


def send_todays_digests(settings: Settings, now: datetime) -> SendReport:
    """The demo's "send the next digests now": every active subscriber, daily or weekly, gets now
    the digest of their next slot (:func:`digest.delivery.run.send_next`)."""
    return send_next(settings, now)


# ---------------------------------------------------------------- the embedded scheduler


@dataclass
class Job:
    name: str
    every: timedelta
    run: Callable[[], object]
    last: datetime | None = None


@dataclass
class InProcessScheduler:
    """Beat's job for the embedded default: runs each job on its interval in one daemon thread."""

    jobs: list[Job]
    tick: float = 5.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def run_pending(self, now: datetime) -> list[str]:
        ran = []
        for job in self.jobs:
            if job.last is None or now - job.last >= job.every:
                job.last = now
                try:
                    job.run()
                    ran.append(job.name)
                except Exception:  # a failing job must not stop the others
                    log.exception("scheduled job %s failed", job.name)
        return ran

    def start(self) -> None:
        def loop() -> None:
            while not self._stop.is_set():
                self.run_pending(datetime.now(timezone.utc))
                self._stop.wait(self.tick)

        self._thread = threading.Thread(target=loop, name="digest-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)


def scheduled_jobs(settings: Settings, queue: Queue, *, ingest: bool = True) -> list[Job]:
    """:data:`INTERVALS` as jobs over ``queue``: what beat runs, for the in-process scheduler."""

    def now() -> datetime:
        return datetime.now(timezone.utc)

    runs = {
        "ingest": lambda: run_ingest(settings, now()),
        "plan": lambda: plan_and_dispatch(settings, now(), queue),
        "purge": lambda: (run_purge(settings, now()), send_waiting_confirmations(settings, queue, now())),
        "ingest_arxiv": lambda: run_arxiv_ingest(settings),
    }
    return [Job(name, INTERVALS[name], runs[name]) for name in INTERVALS if ingest or not name.startswith("ingest")]
