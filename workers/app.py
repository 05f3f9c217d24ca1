"""The Celery app, built from the same settings as everything else (``DIGEST_BROKER_URL``).

celery -A workers worker            # consumes digest.default and digest.send
celery -A workers.app worker -Q digest.send,digest.default
celery -A workers beat
"""

from __future__ import annotations

from digest.config import ConfigError
from workers.factory import VISIBILITY_TIMEOUT, make_celery

__all__ = ["app", "VISIBILITY_TIMEOUT"]

try:
    app = make_celery()
except ConfigError as exc:  # stop start-up with one line naming the variable, no traceback
    raise SystemExit(f"error: bad configuration: {exc}") from None
