"""Planning as beat runs it: page by page, each page committed before its batches go to senders."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from digest.db import session_scope
from digest.jobs import plan_and_dispatch
from digest.models import Delivery, DeliveryStatus, Frequency, Paper, Subscriber, SubscriberState

AT = datetime.now(timezone.utc).replace(microsecond=0)  # the stuck-row check compares with the clock


def add_due(settings, count: int) -> None:
    with session_scope(settings) as s:
        s.add(Paper(arxiv_id="2611.00001", title="A paper", daily_date=AT.date() - timedelta(days=1), upvotes=3))
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


def test_each_page_is_committed_before_its_batches_are_dispatched(settings):
    add_due(settings, 7)
    seen: list[tuple[list[int], int]] = []
    report = plan_and_dispatch(settings, AT, lambda ids: seen.append((ids, committed_rows(settings))), page_size=3)
    assert [len(ids) for ids, _ in seen] == [3, 3, 1]
    assert [rows for _, rows in seen] == [3, 6, 7]  # the senders of page 1 did not wait for page 3
    assert report.planned == 7 and report.batches == 3
    assert sorted(i for ids, _ in seen for i in ids) == sorted(set(i for ids, _ in seen for i in ids))


def test_a_planner_stopped_half_way_keeps_its_pages_and_the_next_run_plans_the_rest(settings):
    add_due(settings, 7)

    def dies_after_first_page(ids):
        raise RuntimeError("soft time limit")

    with pytest.raises(RuntimeError):
        plan_and_dispatch(settings, AT, dies_after_first_page, page_size=3)
    assert committed_rows(settings) == 3
    got: list[int] = []
    report = plan_and_dispatch(settings, AT, got.extend, page_size=3)
    assert report.planned == 4 and committed_rows(settings) == 7
    assert len(got) == 4
    # the first page's rows were never handed to a sender: once the claim timeout has passed,
    # the next run re-queues every row still pending (nobody sent those 4 either)
    later = datetime.now(timezone.utc) + timedelta(seconds=settings.claim_timeout + 1)
    again: list[int] = []
    report = plan_and_dispatch(settings, later, again.extend, page_size=3)
    assert report.planned == 0 and report.requeued == 7
    with session_scope(settings) as s:
        pending = set(s.scalars(select(Delivery.id).where(Delivery.status == DeliveryStatus.pending)))
        assert sorted(again) == sorted(pending) and len(pending) == 7 and set(got) < pending
        assert s.scalar(select(func.count(func.distinct(Delivery.subscriber_id)))) == 7
