"""When digests are due: daily at the subscriber's hour in their time zone, weekly on Monday then.

A subscriber row keeps ``next_due_at`` (UTC); planners scan it with an index. The digest period
("2026-11-30" for a daily digest, "2026-W49" for a weekly one) names one digest: the ledger's unique
(subscriber, period) constraint makes sending it twice impossible.

Windows
-------
-------
A digest covers Daily Papers days (``Paper.daily_date``), an inclusive ``[start, end]`` range.

*The period's day* (``end``) is the latest Daily Papers day that had **ended** when the digest's
slot came, and for which papers are stored: ``max(daily_date <= slot's UTC date - 1)``.

- Daily Papers days are UTC days (``submittedOnDailyAt``), and papers keep arriving and collecting
  upvotes all day. Taking the local date of the slot instead would, at 07:00 in Berlin, send the
  first few hours of a day just begun, and the rest of that day would never be sent (the next
  window starts the day after). A finished day is complete and ranked by its real upvotes.
- Taking the latest day *with papers* (rather than the calendar day) means an ingest outage loses
  nothing: the window does not move past the data we have, and the digest after the outage covers
  the days that came in late. A day with no papers at all (a quiet weekend) costs nothing either.

``start`` is the day after the previous digest's ``end``: the latest ``window_end`` in the ledger for
this subscriber, whatever that row's status (a digest still pending or deferred has claimed its days
too, so two digests of one subscriber never cover the same day). A first digest covers the last day
(daily) or the last 7 days (weekly); so does one after a long gap (more than :data:`MAX_WINDOW_DAYS`,
e.g. a re-subscription months later). When nothing new has ended since the previous digest, the
window is empty (``start > end``) and the digest is skipped.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

DEFAULT_HOUR = 7
FIRST_WINDOW_DAYS = {"daily": 1, "weekly": 7}
MAX_WINDOW_DAYS = {"daily": 7, "weekly": 14}


#: Files of the system's zone database that are not zones a reader lives in: "localtime" is
#: whatever the server's clock is set to, the others are tzdata's internals.
NOT_ZONES = frozenset({"localtime", "posixrules", "Factory"})


@lru_cache(maxsize=1)
def timezone_names() -> frozenset[str]:
    return frozenset(name for name in available_timezones() if name not in NOT_ZONES and not name.startswith(("posix/", "right/")))


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


# ---------------------------------------------------------------- windows


def last_ended_day(slot: datetime) -> date:
    """The latest Daily Papers (UTC) day that had ended at ``slot``."""
    return slot.astimezone(timezone.utc).date() - timedelta(days=1)


def period_day(slot: datetime, paper_days: Sequence[date]) -> date:
    """The period's day: the latest day in ``paper_days`` (sorted) that had ended at ``slot``."""
    limit = last_ended_day(slot)
    i = bisect_right(paper_days, limit)
    return paper_days[i - 1] if i else limit


def window_for(frequency: str, end: date, previous_end: date | None) -> tuple[date, date]:
    """The inclusive day range a digest covers (empty when ``start > end``); see the module docs."""
    if previous_end is not None and (end - previous_end).days <= MAX_WINDOW_DAYS[frequency]:
        return previous_end + timedelta(days=1), max(end, previous_end)
    return end - timedelta(days=FIRST_WINDOW_DAYS[frequency] - 1), end


@dataclass(frozen=True)
class Due:
    """A digest to plan for one subscriber at one moment."""

    subscriber_id: int
    period: str
    slot: datetime
    window_start: date
    window_end: date
    next_due_at: datetime


def due_digest(
    subscriber_id: int,
    frequency: str,
    tz_name: str,
    hour: int,
    at: datetime,
    previous_end: date | None,
    paper_days: Sequence[date],
) -> Due:
    """The digest of the latest slot at or before ``at``, and when the one after it is due."""
    slot = slot_at_or_before(frequency, tz_name, hour, at)
    start, end = window_for(frequency, period_day(slot, paper_days), previous_end)
    return Due(
        subscriber_id=subscriber_id,
        period=period_of(frequency, tz_name, slot),
        slot=slot,
        window_start=start,
        window_end=end,
        next_due_at=next_slot(frequency, tz_name, hour, after=at),
    )
