"""The beat schedule: one table, used by Celery beat and by the embedded in-process scheduler."""

from datetime import timedelta

INTERVALS = {
    "ingest": timedelta(minutes=30),
    "plan": timedelta(minutes=5),
    "reconcile": timedelta(minutes=5),
    "purge": timedelta(hours=1),
}

BEAT_SCHEDULE = {
    "ingest-papers": {"task": "digest.ingest", "schedule": INTERVALS["ingest"]},
    "plan-digests": {"task": "digest.plan", "schedule": INTERVALS["plan"]},
    "reconcile-deliveries": {"task": "digest.reconcile", "schedule": INTERVALS["reconcile"]},
    "purge-unconfirmed": {"task": "digest.purge", "schedule": INTERVALS["purge"]},
}
