"""How the Celery app is built from the settings; importing this builds nothing (the web uses it as a client)."""

from __future__ import annotations

from celery import Celery

from digest.config import ConfigError, load_settings
from workers.schedule import BEAT_SCHEDULE

#: Redis re-delivers an unacknowledged task after this long; every retry delay stays below it.
VISIBILITY_TIMEOUT = 3600
SEND_QUEUE = "digest.send"
DEFAULT_QUEUE = "digest.default"


def make_celery(settings=None) -> Celery:
    settings = settings or load_settings()
    if not settings.broker_url:
        raise ConfigError("DIGEST_BROKER_URL", "Celery workers need a Redis broker URL (redis://host:6379/0)")
    app = Celery("digest", broker=settings.broker_url, include=["workers.tasks"])
    app.conf.update(
        digest_settings=settings,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,  # a task is acknowledged only when done…
        task_reject_on_worker_lost=True,  # …and re-delivered if its worker dies mid-way
        worker_prefetch_multiplier=1,  # a worker holds one send batch at a time
        task_default_queue=DEFAULT_QUEUE,
        task_routes={"digest.send_batch": {"queue": SEND_QUEUE}},
        task_soft_time_limit=240,
        task_time_limit=300,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        broker_connection_retry_on_startup=True,
        worker_cancel_long_running_tasks_on_connection_loss=False,
        beat_schedule=BEAT_SCHEDULE,
        timezone="UTC",
        enable_utc=True,
    )
    return app
