"""Per-domain pacing (``DIGEST_DOMAIN_RATE``): how many messages a second each recipient domain
gets, and how long a domain that deferred a message (a 4xx such as ``421 4.7.0 try again later``) is
left alone.

A :class:`DomainPacer` keeps both for every sender that shares it: :class:`LocalPacer` in this
process (the embedded mode, the demo, ``digest send`` without a broker), :class:`RedisPacer` in
Redis, shared by every worker (with ``DIGEST_BROKER_URL``). :func:`pacer_for` picks one.

- The rate is the moving window of the ``limits`` library (the one Flask-Limiter uses, here in
  memory or in Redis): never more than ``rate`` messages to a domain in any one second.
- A deferral holds the domain back for 60 s; one that follows the end of that hold doubles it, up
  to an hour; a message the domain accepts starts it over, and a domain quiet for an hour past its
  hold is forgotten. A deferral during a hold (a message already on its way) changes nothing.

What a batch does with this (wait a moment, or put rows back with a ``not_before``) is
:mod:`digest.delivery.batch`'s. Without ``DIGEST_DOMAIN_RATE`` there is no pacer: nothing is asked
per message or per batch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Protocol

import redis
from limits import RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

from digest.config import Settings

FIRST_HOLD = 60.0  # seconds a domain is left alone after a deferral…
LONGEST_HOLD = 3600.0  # …doubling with each one after the last hold ended, up to this
FORGET_AFTER = 3600.0  # a domain quiet this long past its hold starts again at FIRST_HOLD


def hold_seconds(level: int) -> float:
    """How long the ``level``-th deferral in a row holds a domain back."""
    return min(FIRST_HOLD * 2 ** min(level - 1, 32), LONGEST_HOLD)


def domain_of(address: str) -> str:
    return address.rpartition("@")[2].lower()


@dataclass(frozen=True)
class Hold:
    """A domain that deferred mail: left alone until ``until``; ``level`` deferrals in a row."""

    until: datetime
    level: int


class DomainPacer(Protocol):
    def take(self, domain: str) -> float:
        """Count one message to ``domain`` if its rate has room now: 0.0. Otherwise the seconds
        until it has (nothing counted)."""

    def holds(self, domains: Collection[str], now: datetime) -> dict[str, Hold]:
        """The domains of ``domains`` that deferred mail and have accepted none since (their hold
        may have ended by ``now``)."""

    def deferred(self, domain: str, now: datetime) -> datetime:
        """``domain`` deferred a message at ``now``: the moment it is left alone until."""

    def recovered(self, domain: str) -> None:
        """``domain`` accepted a message after a hold: the next deferral starts at FIRST_HOLD."""


class _Rate:
    """The per-domain moving window, over a ``limits`` storage."""

    def __init__(self, rate: int, storage: Storage) -> None:
        self.rate = rate
        self.item = RateLimitItemPerSecond(rate)
        self.limiter = MovingWindowRateLimiter(storage)

    def take(self, domain: str) -> float:
        if self.limiter.hit(self.item, "domain", domain):
            return 0.0
        reset, _ = self.limiter.get_window_stats(self.item, "domain", domain)
        return max(reset - time.time(), 0.001)


class LocalPacer(_Rate):
    """The pacer of one process: the window in ``limits``' memory storage, holds in a dict (both
    behind locks: a process's batches may run in threads)."""

    def __init__(self, rate: int) -> None:
        super().__init__(rate, MemoryStorage())
        self._lock = threading.Lock()
        self._holds: dict[str, Hold] = {}

    def holds(self, domains: Collection[str], now: datetime) -> dict[str, Hold]:
        forget = timedelta(seconds=FORGET_AFTER)
        found = {}
        with self._lock:
            for domain in domains:
                hold = self._holds.get(domain)
                if hold is not None and now >= hold.until + forget:
                    del self._holds[domain]
                elif hold is not None:
                    found[domain] = hold
        return found

    def deferred(self, domain: str, now: datetime) -> datetime:
        with self._lock:
            hold = self._holds.get(domain)
            if hold is not None and hold.until > now:
                return hold.until
            level = hold.level + 1 if hold is not None and now < hold.until + timedelta(seconds=FORGET_AFTER) else 1
            self._holds[domain] = Hold(now + timedelta(seconds=hold_seconds(level)), level)
            return self._holds[domain].until

    def recovered(self, domain: str) -> None:
        with self._lock:
            self._holds.pop(domain, None)


# KEYS[1]: the domain's hold (a hash: until in ms, level). ARGV: now (ms), first and longest hold
# (ms), forget after (s). One step, so that two workers told 421 at once hold the domain once.
_DEFER = """
local now = tonumber(ARGV[1])
local held = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if held > now then return held end
local level = redis.call('HINCRBY', KEYS[1], 'level', 1)
local hold = math.min(tonumber(ARGV[2]) * 2 ^ math.min(level - 1, 32), tonumber(ARGV[3]))
local untl = now + hold
redis.call('HSET', KEYS[1], 'until', string.format('%d', untl))
redis.call('EXPIRE', KEYS[1], string.format('%d', math.ceil(hold / 1000) + tonumber(ARGV[4])))
return untl
"""


class RedisPacer(_Rate):
    """The pacer every worker shares, in Redis: the window is ``limits``' moving window (a list per
    domain, trimmed and expiring, changed by one Lua script a message), a hold a hash per domain
    that expires FORGET_AFTER past its end. Keys under ``digest:pace:``."""

    def __init__(self, rate: int, url: str, prefix: str = "digest:pace") -> None:
        self.client = redis.Redis.from_url(url)
        super().__init__(rate, RedisStorage(url, connection_pool=self.client.connection_pool, key_prefix=prefix))
        self.prefix = prefix
        self._defer = self.client.register_script(_DEFER)

    def _key(self, domain: str) -> str:
        return f"{self.prefix}:hold:{domain}"

    def holds(self, domains: Collection[str], now: datetime) -> dict[str, Hold]:
        domains = list(domains)
        with self.client.pipeline(transaction=False) as pipe:
            for domain in domains:
                pipe.hmget(self._key(domain), "until", "level")
            replies = pipe.execute()
        return {
            domain: Hold(_from_ms(int(until)), int(level))
            for domain, (until, level) in zip(domains, replies)
            if until is not None and level is not None
        }

    def deferred(self, domain: str, now: datetime) -> datetime:
        until = self._defer(keys=[self._key(domain)], args=[_ms(now), int(FIRST_HOLD * 1000), int(LONGEST_HOLD * 1000), int(FORGET_AFTER)])
        return _from_ms(int(until))

    def recovered(self, domain: str) -> None:
        self.client.delete(self._key(domain))


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


_pacers: dict[tuple[int, str | None], DomainPacer] = {}
_pacers_lock = threading.Lock()


def pacer_for(settings: Settings) -> DomainPacer | None:
    """This process's pacer for ``settings``: None without ``DIGEST_DOMAIN_RATE``; in Redis with a
    broker (every worker shares it), else in this process. Made once per (rate, broker), so that
    what it knows outlives a batch."""
    if settings.domain_rate is None:
        return None
    key = (settings.domain_rate, settings.broker_url)
    with _pacers_lock:
        pacer = _pacers.get(key)
        if pacer is None:
            pacer = _pacers[key] = (
                RedisPacer(settings.domain_rate, settings.broker_url) if settings.broker_url else LocalPacer(settings.domain_rate)
            )
    return pacer


@dataclass
class Pace:
    """One batch's pacing over its ``pacer``: which of its rows go now, which wait for their domain's
    room within the batch, which are postponed (back to pending until a moment, untried: the batch
    writes them, :meth:`take_postponed`). Rows are named by (delivery id, domain)."""

    pacer: DomainPacer
    now: datetime
    slowed: dict[str, datetime] = field(default_factory=dict)  # domain -> held back until (it deferred mail)
    recovering: set[str] = field(default_factory=set)  # domains past a hold: the first message accepted ends it
    postponed: dict[tuple[datetime, str], list[int]] = field(default_factory=dict)  # (not before, why) -> rows
    started: float = field(default_factory=time.monotonic)

    def clock(self) -> datetime:
        """``now``, moved on by the time the batch has taken so far."""
        return self.now + timedelta(seconds=time.monotonic() - self.started)

    def hold_back(self, rows: Collection[tuple[int, str]]) -> set[int]:
        """The rows whose domain is still held back since it deferred mail: postponed until its hold ends."""
        holds = self.pacer.holds({domain for _, domain in rows}, self.now)
        self.slowed = {domain: hold.until for domain, hold in holds.items() if hold.until > self.now}
        self.recovering = set(holds) - set(self.slowed)
        return {delivery_id for delivery_id, domain in rows if self._held(delivery_id, domain)}

    def room(self, delivery_id: int, domain: str, full: dict[str, float]) -> bool | None:
        """Whether this row goes now (its domain's rate counts it): True; None: not yet, its domain
        is out of room (``full``: domain -> seconds until it has, in this pass); False: postponed."""
        if self._held(delivery_id, domain):
            return False
        if domain in full:
            return None
        wait = self.pacer.take(domain)
        if wait:
            full[domain] = wait
            return None
        return True

    def again(self, later: Collection[tuple[int, str]], full: dict[str, float], budget: float) -> tuple[set[int], float]:
        """After a pass: the rows of ``later`` worth another pass in this batch and the pause before
        it, the rest postponed. A domain whose room comes within ``budget`` seconds (what the
        batch may still wait) gets another pass."""
        soon = {domain: wait for domain, wait in full.items() if wait <= budget}
        now = self.clock()
        again = set()
        for delivery_id, domain in later:
            if self._held(delivery_id, domain):
                continue
            if domain in soon:
                again.add(delivery_id)
            else:
                self.postpone(delivery_id, now + timedelta(seconds=full[domain]), f"{domain} at its rate")
        return again, min((soon[domain] for _, domain in later if domain in soon and domain not in self.slowed), default=0.0)

    def refused(self, domain: str) -> datetime:
        """``domain`` deferred a message just now: it is held back (its rows from now on postponed) until the moment returned."""
        until = self.slowed[domain] = self.pacer.deferred(domain, self.clock())
        self.recovering.discard(domain)
        return until

    def accepted(self, domain: str) -> None:
        if domain in self.recovering:  # its hold is over
            self.recovering.discard(domain)
            self.pacer.recovered(domain)

    def postpone(self, delivery_id: int, not_before: datetime, why: str) -> None:
        self.postponed.setdefault((not_before, why), []).append(delivery_id)

    def take_postponed(self) -> list[tuple[datetime, str, list[int]]]:
        """The rows postponed so far, by moment and reason (and forgets them)."""
        taken = [(not_before, f"{why} until {not_before:%Y-%m-%d %H:%M:%S} UTC", ids) for (not_before, why), ids in self.postponed.items()]
        self.postponed = {}
        return taken

    def _held(self, delivery_id: int, domain: str) -> bool:
        until = self.slowed.get(domain)
        if until is not None:
            self.postpone(delivery_id, until, f"{domain} deferred mail; held back")
        return until is not None
