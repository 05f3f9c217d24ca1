"""Planning as beat runs it: page by page, each page committed before its batches are handed to the queue."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, update

from digest.db import session_scope
from digest.jobs import plan_and_dispatch
from digest.models import Delivery, DeliveryStatus, Frequency, Subscriber, SubscriberState

AT = datetime.now(timezone.utc).replace(microsecond=0)  # the stuck-row check compares with the clock


def add_due(settings, make_paper, count: int) -> None:
    with session_scope(settings) as s:
        make_paper("2611.00001", "A paper", day=AT.date() - timedelta(days=1), upvotes=3, session=s)
        for i in range(count):
            s.add(
                Subscriber(
                    email=f"r{i}@example.org",
                    state=SubscriberState.active,
                    frequency=Frequency.daily,
                    timezone="UTC",
                    delivery_hour=7,
                    created_at=AT - timedelta(days=2),
                    next_due_at=AT - timedelta(hours=5),
                )
            )


def committed_rows(settings) -> int:
    with session_scope(settings) as s:  # a separate connection: only committed rows are visible
        return s.scalar(select(func.count()).select_from(Delivery))


def test_each_page_is_committed_before_its_batches_are_handed_to_the_queue(settings, make_paper, recording_queue):
    add_due(settings, make_paper, 7)
    found: list[int] = []
    recording_queue.on_send = lambda task, ids: found.append(committed_rows(settings))  # a worker taking it at once
    report = plan_and_dispatch(settings, AT, recording_queue, page_size=3)
    assert [len(ids) for ids in recording_queue.batches] == [3, 3, 1]
    assert found == [3, 6, 7]  # the senders of page 1 did not wait for page 3
    assert report.planned == 7 and report.batches == 3
    assert len(recording_queue.handed) == len(set(recording_queue.handed)) == 7


def test_a_planner_stopped_half_way_keeps_its_pages_and_the_next_run_plans_the_rest(settings, make_paper, recording_queue):
    add_due(settings, make_paper, 7)
    recording_queue.down = True  # the broker refuses the first batch: the planner stops there
    with pytest.raises(ConnectionError):
        plan_and_dispatch(settings, AT, recording_queue, page_size=3)
    assert committed_rows(settings) == 3 and recording_queue.batches == []
    recording_queue.down = False
    report = plan_and_dispatch(settings, AT, recording_queue, page_size=3)
    got = recording_queue.handed
    assert report.planned == 4 and committed_rows(settings) == 7
    assert len(got) == 4
    # the first page's rows were never handed to a sender: once the claim timeout has passed,
    # the next run re-queues every row still pending (nobody sent those 4 either)
    # (the rows are made older rather than the run later: a run at now + the timeout would plan
    # today's digests too once it passes their delivery hour)
    with session_scope(settings) as s:
        s.execute(update(Delivery).values(created_at=AT - timedelta(seconds=settings.claim_timeout + 60)))
    recording_queue.sent.clear()
    report = plan_and_dispatch(settings, AT, recording_queue, page_size=3)
    again = recording_queue.handed
    assert report.planned == 0 and report.requeued == 7
    with session_scope(settings) as s:
        pending = set(s.scalars(select(Delivery.id).where(Delivery.status == DeliveryStatus.pending)))
        assert sorted(again) == sorted(pending) and len(pending) == 7 and set(got) < pending
        assert s.scalar(select(func.count(func.distinct(Delivery.subscriber_id)))) == 7
