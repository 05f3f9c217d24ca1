"""The state machine of an address, decided from what came back (as warehouse decides from SES's
events): plain functions over times, no database.

- a hard bounce suppresses the address;
- a complaint unsubscribes the reader at once;
- a soft bounce is transient, unless it makes more than :data:`SOFT_LIMIT` soft bounces within
  :data:`SOFT_WINDOW` with no successful delivery between them: then it suppresses;
- auto-replies, forged reports and anything else change nothing.

A soft bounce is placed in time where the message it reports was sent (its digest's ``sent_at``;
the report's own time for a confirmation), and so is a successful delivery: a bounce that arrives a
day late, after the next digest went out, still follows the digest it reports, and a streak of
daily digests that each bounce is a streak however late their reports come.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from datetime import datetime, timedelta

from digest.models import EventKind

SOFT_LIMIT = 5  # soft bounces in a row that are still transient; one more suppresses
SOFT_WINDOW = timedelta(days=30)


class Verdict(str, enum.Enum):
    suppress = "suppress"
    unsubscribe = "unsubscribe"
    transient = "transient"  # recorded; the address stays
    ignore = "ignore"


def verdict(kind: EventKind, soft_bounces: Iterable[datetime] = (), successes: Iterable[datetime] = (), *, now: datetime) -> Verdict:
    """What an event of ``kind`` does to its address, given (for a soft bounce) the times of the
    address's soft bounces, this one included, and of its successful deliveries."""
    if kind is EventKind.hard:
        return Verdict.suppress
    if kind is EventKind.complaint:
        return Verdict.unsubscribe
    if kind is EventKind.soft:
        return Verdict.suppress if too_many_soft(soft_bounces, successes, now=now) else Verdict.transient
    return Verdict.ignore


def too_many_soft(soft_bounces: Iterable[datetime], successes: Iterable[datetime], *, now: datetime) -> bool:
    """More than :data:`SOFT_LIMIT` soft bounces within :data:`SOFT_WINDOW` before ``now``, with no
    successful delivery between them. A success at the same moment as a bounce comes first."""
    start = now - SOFT_WINDOW
    marks = sorted([(t, 1) for t in soft_bounces if start <= t <= now] + [(t, 0) for t in successes if start <= t <= now])
    streak = longest = 0
    for _, soft in marks:
        streak = streak + 1 if soft else 0
        longest = max(longest, streak)
    return longest > SOFT_LIMIT
