"""When digests are due: daily at the subscriber's hour in their time zone, weekly on Monday then.

A subscriber row keeps ``next_due_at`` (UTC); planners scan it with an index. The digest period
("2026-11-30" for a daily digest, "2026-W49" for a weekly one) names one digest: the ledger's unique
(subscriber, period) constraint makes sending it twice impossible.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DEFAULT_HOUR = 7


@lru_cache(maxsize=1)
def timezone_names() -> frozenset[str]:
    return frozenset(available_timezones())


@lru_cache(maxsize=1024)
def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def is_valid_timezone(name: str) -> bool:
    return name in timezone_names()


def _local_slot(day: date, hour: int, tz: ZoneInfo) -> datetime:
    """``hour`` o'clock local time on ``day``, as UTC (a nonexistent hour moves forward with fold rules)."""
    local = datetime.combine(day, time(hour), tzinfo=tz)
    return local.astimezone(timezone.utc)


def next_slot(frequency: str, tz_name: str, hour: int, after: datetime) -> datetime:
    """The first delivery instant strictly after ``after`` (UTC)."""
    tz = zone(tz_name)
    day = after.astimezone(tz).date()
    for offset in range(0, 9):
        candidate_day = day + timedelta(days=offset)
        if frequency == "weekly" and candidate_day.weekday() != 0:
            continue
        slot = _local_slot(candidate_day, hour, tz)
        if slot > after:
            return slot
    raise AssertionError("unreachable: a slot exists within 8 days")


def slot_at_or_before(frequency: str, tz_name: str, hour: int, moment: datetime) -> datetime:
    """The latest delivery instant at or before ``moment`` (UTC)."""
    tz = zone(tz_name)
    day = moment.astimezone(tz).date()
    for offset in range(0, 9):
        candidate_day = day - timedelta(days=offset)
        if frequency == "weekly" and candidate_day.weekday() != 0:
            continue
        slot = _local_slot(candidate_day, hour, tz)
        if slot <= moment:
            return slot
    raise AssertionError("unreachable")


def period_of(frequency: str, tz_name: str, slot: datetime) -> str:
    local_day = slot.astimezone(zone(tz_name)).date()
    if frequency == "weekly":
        year, week, _ = local_day.isocalendar()
        return f"{year}-W{week:02d}"
    return local_day.isoformat()
