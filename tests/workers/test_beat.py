"""Beat's schedule: the jobs of ``digest.jobs.INTERVALS``, by task name, and what one cycle of them hands on."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from digest_helpers import add_subscriber

from digest.db import session_scope
from digest.jobs import INTERVALS, scheduled_jobs
from digest.models import Delivery, DeliveryStatus
from workers.beat import BEAT_SCHEDULE


def test_beat_schedules_each_job_of_the_intervals_table_by_its_task_name():
    assert {name: (entry["task"], entry["schedule"]) for name, entry in BEAT_SCHEDULE.items()} == {
        f"digest.{name}": (f"digest.{name}", every) for name, every in INTERVALS.items()
    }


def test_one_cycle_of_the_schedule_hands_each_stuck_delivery_to_the_queue_once(settings, papers_api, recording_queue):
    """A row planned long ago whose task was lost, and one whose worker died mid-send: every job of
    one cycle runs once (beat's tasks are exactly these jobs) and each row is re-queued once."""
    settings = settings.with_(source_url=papers_api.url)
    long_ago = datetime.now(timezone.utc) - timedelta(seconds=settings.claim_timeout + 60)
    day = long_ago.date() - timedelta(days=1)
    with session_scope(settings) as s:
        lost, dead = (add_subscriber(s, f"{name}@example.org", due=None) for name in ("lost", "dead"))
        rows = [
            Delivery(
                subscriber_id=lost.id,
                period=day.isoformat(),
                scheduled_for=long_ago,
                window_start=day,
                window_end=day,
                status=DeliveryStatus.pending,
                created_at=long_ago,
            ),
            Delivery(
                subscriber_id=dead.id,
                period=day.isoformat(),
                scheduled_for=long_ago,
                window_start=day,
                window_end=day,
                status=DeliveryStatus.sending,
                claimed_at=long_ago,
                attempts=1,
                created_at=long_ago,
            ),
        ]
        s.add_all(rows)
        s.flush()
        stuck = sorted(row.id for row in rows)

    jobs = scheduled_jobs(settings, recording_queue)
    assert {f"digest.{job.name}": job.every for job in jobs} == {entry["task"]: entry["schedule"] for entry in BEAT_SCHEDULE.values()}
    handed_by = {}
    for job in jobs:
        before = len(recording_queue.handed)
        job.run()
        handed_by[job.name] = recording_queue.handed[before:]

    assert sorted(recording_queue.handed) == stuck, handed_by
    assert [name for name, ids in handed_by.items() if ids] == ["plan"]  # no second job re-queues them
