"""How the Celery app is built from the settings (``workers.app`` builds the one the processes use)."""

from __future__ import annotations

from celery import Celery

from digest.config import ConfigError, Settings, load_settings
from digest.queue import celery_settings
from workers.beat import BEAT_SCHEDULE

#: Redis re-delivers an unacknowledged task after this long; every retry delay stays below it.
VISIBILITY_TIMEOUT = 3600


def make_celery(settings: Settings | None = None) -> Celery:
    settings = settings or load_settings()
    if not settings.broker_url:
        raise ConfigError("DIGEST_BROKER_URL", "Celery workers need a Redis broker URL (redis://host:6379/0)")
    app = Celery("digest", include=["workers.tasks"])
    app.conf.update(
        celery_settings(settings),
        digest_settings=settings,
        task_acks_late=True,  # a task is acknowledged only when done…
        task_reject_on_worker_lost=True,  # …and re-delivered if its worker dies mid-way
        worker_prefetch_multiplier=1,  # a worker holds one send batch at a time
        task_soft_time_limit=240,
        task_time_limit=300,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        worker_cancel_long_running_tasks_on_connection_loss=False,
        beat_schedule=BEAT_SCHEDULE,
        timezone="UTC",
        enable_utc=True,
    )
    return app
