"""The scheduled jobs, as plain functions: Celery beat and the in-process scheduler both run these.

``plan_and_dispatch`` takes a ``dispatch`` callable for batches of delivery ids: with a broker it
enqueues a Celery task (after the planning transaction committed); without one it sends in-process.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable, Iterator, Sequence

from sqlalchemy import or_, select

from digest.config import Settings
from digest.db import session_scope
from digest.models import Delivery, DeliveryStatus

log = logging.getLogger(__name__)

BATCH_SIZE = 100  # subscribers per send task: one SMTP connection each
Dispatch = Callable[[list[int]], None]


def chunks(ids: Sequence[int], size: int = BATCH_SIZE) -> Iterator[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def stuck_deliveries(settings: Settings, now: datetime, *, page: int = 5000) -> Iterator[int]:
    """Ids of rows pending or sending whose last claim (or creation) is older than the claim timeout.

    Read with keyset pagination on id, so a million rows never sit in memory at once.
    """
    cutoff = now - timedelta(seconds=settings.claim_timeout)
    last = 0
    while True:
        with session_scope(settings) as session:
            ids = session.scalars(
                select(Delivery.id)
                .where(
                    Delivery.id > last,
                    Delivery.status.in_([DeliveryStatus.pending, DeliveryStatus.sending]),
                    or_(Delivery.claimed_at < cutoff, Delivery.claimed_at.is_(None) & (Delivery.created_at < cutoff)),
                )
                .order_by(Delivery.id)
                .limit(page)
            ).all()
        if not ids:
            return
        yield from ids
        last = ids[-1]


@dataclass
class PlanReport:
    planned: int = 0
    requeued: int = 0
    batches: int = 0

    def line(self) -> str:
        return f"planned {self.planned} digests, re-queued {self.requeued} stuck, in {self.batches} batches"


def plan_and_dispatch(settings: Settings, at: datetime, dispatch: Dispatch, *, page_size: int | None = None) -> PlanReport:
    """Re-queue rows stuck past the claim timeout, then plan everyone due at ``at``, page by page.

    Each keyset page is committed before its batches are dispatched, so a worker that picks one
    up finds its rows, and sending overlaps planning; memory holds one page of ids (and the stuck
    ones, normally none).
    """
    from digest.ledger import plan_pages

    report = PlanReport()
    stuck = list(stuck_deliveries(settings, at))
    for batch in chunks(stuck):
        dispatch(batch)
        report.batches += 1
    report.requeued = len(stuck)
    requeued = set(stuck)
    for planned in plan_pages(settings, at, **({"page_size": page_size} if page_size else {})):
        planned = [i for i in planned if i not in requeued]  # a pending row of an earlier run
        for batch in chunks(planned):
            dispatch(batch)
            report.batches += 1
        report.planned += len(planned)
    return report


def run_ingest(settings: Settings, now: datetime | None = None):
    from digest.ingest import ingest_days

    today = (now or datetime.now(timezone.utc)).date()
    return ingest_days(settings, [today - timedelta(days=1), today])


def run_purge(settings: Settings, now: datetime | None = None) -> int:
    from digest.subscriptions import purge_unconfirmed

    with session_scope(settings) as session:
        return purge_unconfirmed(session, now or datetime.now(timezone.utc))


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


def in_process_dispatch(settings: Settings) -> Dispatch:
    from digest.deliver import send_deliveries

    def dispatch(ids: list[int]) -> None:
        send_deliveries(settings, ids, datetime.now(timezone.utc))

    return dispatch


def embedded_jobs(settings: Settings, *, ingest: bool = True) -> list[Job]:
    """The beat schedule, for the in-process scheduler (same intervals as workers/schedule.py)."""
    from workers.schedule import INTERVALS

    now = lambda: datetime.now(timezone.utc)  # noqa: E731
    jobs = [
        Job("plan", INTERVALS["plan"], lambda: plan_and_dispatch(settings, now(), in_process_dispatch(settings))),
        Job("purge", INTERVALS["purge"], lambda: run_purge(settings, now())),
    ]
    if ingest:
        jobs.insert(0, Job("ingest", INTERVALS["ingest"], lambda: run_ingest(settings, now())))
    return jobs
