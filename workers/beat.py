"""Celery beat's schedule: the jobs of ``digest.jobs.INTERVALS``, by task name."""

from digest.jobs import INTERVALS

BEAT_SCHEDULE = {f"digest.{name}": {"task": f"digest.{name}", "schedule": every} for name, every in INTERVALS.items()}
