"""The one seam for handing work to a worker: in this process, or a Celery task sent by name.

The command line, the web app, the scheduled jobs and the demo hand work over through a
:class:`Queue`, never by calling a task: :func:`for_settings` gives the in-process kind without
``DIGEST_BROKER_URL`` and the Celery kind with it. The Celery kind sends tasks **by name** from a
plain client: this package never imports ``workers/`` (the Celery app there imports this package
and registers the task names below).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any, Protocol

from celery import Celery
from kombu import Exchange
from kombu import Queue as BrokerQueue

from digest.config import Settings
from digest.delivery.batch import send_deliveries
from digest.mail.transport import DeliveryError
from digest.subscribers.subscriptions import send_confirmation

log = logging.getLogger(__name__)

SEND_BATCH = "digest.send_batch"
SEND_CONFIRMATION = "digest.send_confirmation"
SEND_QUEUE = "digest.send"  # send batches: what most workers do
DEFAULT_QUEUE = "digest.default"  # everything else: ingest, plan, purge, confirmations
QUEUES = (DEFAULT_QUEUE, SEND_QUEUE)
ROUTES = {SEND_BATCH: {"queue": SEND_QUEUE}}
_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2}


class Queue(Protocol):
    in_process: bool

    def send_batch(self, delivery_ids: list[int]) -> None:
        """Send these ledger rows (one batch: one SMTP connection)."""

    def send_confirmation(self, subscriber_id: int) -> bool:
        """Mail this subscriber's confirmation (or "already subscribed" note); True when sent or queued."""


class InProcess:
    """Does the work now, in this process (the embedded default)."""

    in_process = True

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send_batch(self, delivery_ids: list[int]) -> None:
        send_deliveries(self.settings, delivery_ids, datetime.now(timezone.utc))

    def send_confirmation(self, subscriber_id: int) -> bool:
        """Never raises: a page or an import must not fail over mail (the person can ask again)."""
        try:
            return send_confirmation(self.settings, subscriber_id)
        except DeliveryError as exc:
            log.warning("could not send the confirmation to subscriber %s: %s", subscriber_id, exc)
        except Exception:
            log.exception("could not send the confirmation to subscriber %s", subscriber_id)
        return False


def celery_client(settings: Settings) -> Celery:
    """A Celery app that only sends: the broker, and which queue each task name goes to."""
    app = Celery("digest", broker=settings.broker_url, set_as_current=False)
    app.conf.update(celery_settings(settings))
    return app


def celery_settings(settings: Settings) -> dict[str, Any]:
    """What senders and workers must agree on (``workers/`` adds the worker-side settings)."""
    return {
        "broker_url": settings.broker_url,
        "task_serializer": "json",
        "accept_content": ["json"],
        "task_ignore_result": True,
        "task_default_queue": DEFAULT_QUEUE,
        # each queue its own exchange and routing key (what `-Q name` declares): a worker started
        # without -Q consumes both, and a task routed to a queue lands there whoever declared it
        "task_queues": [BrokerQueue(name, Exchange(name), routing_key=name) for name in QUEUES],
        "task_routes": ROUTES,
        "broker_connection_retry_on_startup": True,
    }


class CeleryQueue:
    """Sends tasks by name to the workers. A confirmation the broker cannot take (Redis down) is
    sent in-process rather than lost; a send batch raises, since its rows stay in the ledger and the
    next planning run re-queues them."""

    in_process = False

    def __init__(self, settings: Settings, app: Celery | None = None) -> None:
        self.settings = settings
        self.app = app or celery_client(settings)
        self.fallback = InProcess(settings)

    def send_batch(self, delivery_ids: list[int]) -> None:
        self.app.send_task(SEND_BATCH, args=(list(delivery_ids),), retry=True, retry_policy=_RETRY_POLICY)

    def send_confirmation(self, subscriber_id: int) -> bool:
        try:
            self.app.send_task(SEND_CONFIRMATION, args=(subscriber_id,), retry=True, retry_policy=_RETRY_POLICY)
        except Exception:
            log.warning("broker unavailable: sending the confirmation to subscriber %s in-process", subscriber_id)
            return self.fallback.send_confirmation(subscriber_id)
        return True


def for_settings(settings: Settings) -> Queue:
    return CeleryQueue(settings) if settings.broker_url else InProcess(settings)
