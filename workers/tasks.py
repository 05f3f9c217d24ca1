"""Thin Celery tasks over the functions in ``digest/``: ids in, no ORM objects across the queue."""

from __future__ import annotations

from datetime import datetime, timezone

import redis
from celery import shared_task
from celery.utils.log import get_task_logger

from digest import jobs, queue
from digest.delivery.batch import send_deliveries
from digest.mail.transport import TransientError
from digest.subscribers.subscriptions import send_confirmation
from workers.app import VISIBILITY_TIMEOUT, app

log = get_task_logger(__name__)
MAX_RETRY_DELAY = 900  # well below the broker's visibility timeout
assert MAX_RETRY_DELAY < VISIBILITY_TIMEOUT


def _settings():
    return app.conf.digest_settings


def _now() -> datetime:
    return datetime.now(timezone.utc)


def once_per_slot(name: str, seconds: int) -> bool:
    """True for the first caller in this time slot: two beats started by mistake still run a job once."""
    client = redis.Redis.from_url(_settings().broker_url)
    slot = int(_now().timestamp()) // seconds
    return bool(client.set(f"digest:lock:{name}:{slot}", "1", nx=True, ex=seconds * 2))


@shared_task(name="digest.ingest")
def ingest_task(force: bool = False) -> str:
    """Beat's ingest, once per slot however many beats run; ``force``: an operator asked for one now (/admin)."""
    if not force and not once_per_slot("ingest", 25 * 60):
        return "skipped: another beat ran it"
    return "; ".join(jobs.run_ingest(_settings()).lines())


@shared_task(name="digest.ingest_arxiv")
def ingest_arxiv_task() -> str:
    if not _settings().arxiv_categories:
        return "arXiv off: DIGEST_ARXIV_CATEGORIES is unset"
    if not once_per_slot("ingest_arxiv", 50 * 60):
        return "skipped: another beat ran it"
    return "; ".join(jobs.run_arxiv_ingest(_settings()).lines())


@shared_task(name="digest.plan")
def plan_task(at: str | None = None) -> str:
    if at is None and not once_per_slot("plan", 4 * 60):
        return "skipped: another beat ran it"
    moment = datetime.fromisoformat(at) if at else _now()
    return jobs.plan_and_dispatch(_settings(), moment, queue.CeleryQueue(_settings(), app)).line()


@shared_task(name="digest.purge")
def purge_task() -> str:
    if not once_per_slot("purge", 50 * 60):
        return "skipped: another beat ran it"
    purged = jobs.run_purge(_settings())
    waited = jobs.send_waiting_confirmations(_settings(), queue.CeleryQueue(_settings(), app))
    return f"purged {purged}, mailed {waited} waiting confirmations"


@shared_task(name=queue.SEND_BATCH, bind=True, max_retries=8)
def send_batch(self, delivery_ids: list[int]) -> str:
    report = send_deliveries(_settings(), delivery_ids, _now())
    if report.deferred:  # transient SMTP trouble, or a domain's pace: try those rows again later
        delay = 30 * 2**self.request.retries
        if report.not_before is not None:  # no claim takes them before then (past the cap, a retry finds them waiting, and retries)
            delay = max(delay, (report.not_before - _now()).total_seconds())
        raise self.retry(args=[list(report.deferred)], countdown=min(delay, MAX_RETRY_DELAY))
    return report.line()


@shared_task(name=queue.SEND_CONFIRMATION, bind=True, max_retries=6, acks_late=True)
def send_confirmation_task(self, subscriber_id: int) -> None:
    try:
        send_confirmation(_settings(), subscriber_id)
    except TransientError as exc:
        raise self.retry(exc=exc, countdown=min(30 * 2**self.request.retries, MAX_RETRY_DELAY))
