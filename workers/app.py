"""The Celery app, built from the same settings as everything else (``DIGEST_BROKER_URL``).

celery -A workers worker            # consumes digest.default and digest.send
celery -A workers.app worker -Q digest.send,digest.default
celery -A workers beat
"""

from __future__ import annotations

import os

from celery.signals import worker_process_shutdown

from digest import metrics
from digest.config import ConfigError
from digest.runtime import tune_collector
from workers.factory import VISIBILITY_TIMEOUT, make_celery

__all__ = ["app", "VISIBILITY_TIMEOUT"]

tune_collector()  # before the pool forks: every worker process inherits it

try:
    app = make_celery()
except ConfigError as exc:  # stop start-up with one line naming the variable, no traceback
    raise SystemExit(f"error: bad configuration: {exc}") from None


@worker_process_shutdown.connect
def _pool_process_exited(pid: int | None = None, **_) -> None:
    """A pool process that exits hands back its live metrics files (DIGEST_METRICS_DIR); its counters stay."""
    metrics.process_exited(pid or os.getpid())
