"""When a digest is due and which days it covers: schedule slots in the subscriber's time zone, windows."""

from __future__ import annotations

from datetime import datetime, timedelta

from digest_helpers import AT, DAY, UTC

from digest.delivery.schedule import due_digest, period_day, window_for

D = timedelta(days=1)


# ---------------------------------------------------------------- windows and slots


def test_first_daily_digest_covers_the_last_ended_day():
    due = due_digest(1, "daily", "UTC", 7, AT, None, [DAY - D, DAY, DAY + D])
    assert (due.window_start, due.window_end) == (DAY, DAY)  # today (Nov 30) has not ended yet
    assert due.period == "2026-11-30"
    assert due.slot == AT
    assert due.next_due_at == AT + D


def test_first_weekly_digest_covers_the_last_seven_days_and_is_named_by_iso_week():
    due = due_digest(1, "weekly", "UTC", 7, AT + timedelta(hours=3), None, [DAY])
    assert (due.window_start, due.window_end) == (DAY - 6 * D, DAY)
    assert due.period == "2026-W49"
    assert due.next_due_at == AT + 7 * D


def test_next_digest_starts_the_day_after_the_previous_one_ended():
    assert window_for("daily", DAY + 2 * D, DAY) == (DAY + D, DAY + 2 * D)


def test_nothing_new_since_the_previous_digest_is_an_empty_window():
    start, end = window_for("daily", DAY, DAY)
    assert start > end


def test_after_a_long_gap_the_window_starts_afresh():
    assert window_for("daily", DAY, DAY - 30 * D) == (DAY, DAY)
    assert window_for("weekly", DAY, DAY - 30 * D) == (DAY - 6 * D, DAY)


def test_an_ingest_outage_moves_the_window_only_as_far_as_the_papers_we_have():
    # papers up to Nov 27 only: the digest of Nov 30 covers Nov 27, the next one the days that come late
    assert period_day(AT, [DAY - 3 * D, DAY - 2 * D]) == DAY - 2 * D
    due = due_digest(1, "daily", "UTC", 7, AT + D, DAY - 2 * D, [DAY - 2 * D, DAY - D, DAY, DAY + D])
    assert (due.window_start, due.window_end) == (DAY - D, DAY + D)


def test_slot_is_the_delivery_hour_in_the_subscribers_time_zone():
    at = datetime(2026, 11, 30, 6, 30, tzinfo=UTC)  # 07:30 in Berlin
    due = due_digest(1, "daily", "Europe/Berlin", 7, at, None, [DAY])
    assert due.slot == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert due.period == "2026-11-30"
    assert due.next_due_at == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_a_long_overdue_subscriber_gets_one_digest_not_a_backlog():
    due = due_digest(1, "daily", "UTC", 7, AT + 5 * D + timedelta(hours=1), AT.date() - D, [DAY + i * D for i in range(6)])
    assert due.period == "2026-12-05"
    assert due.next_due_at == AT + 6 * D
