"""What every source's HTTP client shares: which failures are worth another try, and how long a
server asked us to wait (``Retry-After``)."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

import httpx


class Transient(Exception):
    """Worth another try: a connection problem, a timeout, HTTP 429 or 5xx; ``wait``: what the server asked."""

    def __init__(self, problem: str, wait: float | None = None) -> None:
        super().__init__(problem)
        self.wait = wait


def retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())


def read_some(response: httpx.Response, limit: int) -> bytes:
    """The first bytes of a body (a hint for an error message), nothing if it cannot be read."""
    try:
        for chunk in response.iter_bytes():
            return chunk[:limit]
    except httpx.HTTPError:
        pass
    return b""


def first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [exc.__class__.__name__])[0][:200]


def backoff(attempt: int, base: float, cap: float) -> float:
    """Seconds before try ``attempt + 1`` (the first retry is attempt 1): ``base`` × 2ⁿ⁻¹, at most
    ``cap``. The exponent stops growing at 64: a server that fails fast under a long deadline
    would otherwise take a client past a thousand attempts, where 2ⁿ no longer fits a float."""
    return min(cap, base * 2.0 ** min(attempt - 1, 64))
