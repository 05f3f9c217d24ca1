"""``GET /metrics``: the service's metrics in Prometheus' text format, for a scraper.

Two kinds of figures. What the service *did* (digests planned, sent, skipped, failed, deferred;
ingest runs and papers; SMTP and batch timings) is counted by the processes that did it
(:mod:`digest.metrics`): with ``DIGEST_METRICS_DIR`` every process's files there, added up; without
it, this process's own counts. What the database *is* (subscribers by state, the ledger's queue and
its rows stuck past ``DIGEST_CLAIM_TIMEOUT``, votes, the last ingest, the broker's queues) is read at
scrape time by :class:`DatabaseCollector`, a few aggregate queries, never kept in memory.

Who may scrape: with ``DIGEST_METRICS_TOKEN``, a request carrying ``Authorization: Bearer <token>``
(compared in constant time; 401 otherwise); with ``DIGEST_METRICS_ALLOW``, only from those networks
(403 otherwise); with neither, only from this machine (loopback, not forwarded by a proxy).
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterator
from datetime import datetime, timezone

from flask import Flask, Response, current_app, request
from flask_wtf.csrf import CSRFProtect
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import and_, case, func, select

from digest import metrics
from digest.config import Settings
from digest.db import session_factory
from digest.delivery.ledger import claim_cutoff
from digest.models import Delivery, DeliveryStatus, IngestRun, Subscriber, SubscriberState, Vote
from digest.queue import QUEUES
from digest.web.outbox import FORWARDING_HEADERS, is_loopback

log = logging.getLogger(__name__)

KOMBU_PRIORITY_STEPS = (3, 6, 9)  # kombu's Redis transport keeps a task sent with a priority in "<queue>\x06\x16<step>"


class DatabaseCollector:
    """The gauges that are facts of the database (and of the broker), read when scraped."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("digest_database_up", "1 if the database answered this scrape's queries, else 0")
        try:
            families = list(self._database())
        except Exception as exc:  # the database is down: say so, and serve the counters anyway
            log.warning("/metrics: the database did not answer: %s", exc)
            families = []
        up.add_metric([], 1 if families else 0)
        yield up
        yield from families
        if self.settings.broker_url:
            yield from self._broker()

    def _database(self) -> Iterator[Metric]:
        now = datetime.now(timezone.utc)
        stuck_before = claim_cutoff(self.settings, now)
        with session_factory(self.settings)() as session:
            states = dict(session.execute(select(Subscriber.state, func.count()).group_by(Subscriber.state)).all())
            queue = session.execute(
                select(
                    Delivery.status,
                    func.count(),
                    func.sum(case((and_(Delivery.status == DeliveryStatus.sending, Delivery.claimed_at < stuck_before), 1), else_=0)),
                )
                .where(Delivery.status.in_([DeliveryStatus.pending, DeliveryStatus.sending]))
                .group_by(Delivery.status)
            ).all()
            votes = session.execute(select(Vote.source, Vote.vote, func.count()).group_by(Vote.source, Vote.vote)).all()
            last_ingest = session.scalar(select(func.max(IngestRun.finished_at)))
        subscribers = GaugeMetricFamily("digest_subscribers", "Subscribers by state", labels=["state"])
        for state in SubscriberState:
            subscribers.add_metric([state.value], states.get(state, 0))
        yield subscribers
        depth = GaugeMetricFamily(
            "digest_queue_depth",
            "Ledger rows waiting to be sent (pending) or held by a sender (sending)",
            labels=["status"],
        )
        counts = {status: (n, stuck or 0) for status, n, stuck in queue}
        for status in (DeliveryStatus.pending, DeliveryStatus.sending):
            depth.add_metric([status.value], counts.get(status, (0, 0))[0])
        yield depth
        yield GaugeMetricFamily(
            "digest_queue_stuck",
            "Ledger rows claimed by a sender longer ago than DIGEST_CLAIM_TIMEOUT (the next plan job re-queues them)",
            value=counts.get(DeliveryStatus.sending, (0, 0))[1],
        )
        family = GaugeMetricFamily(
            "digest_votes", "Readers' votes and seed papers held, by source and direction", labels=["source", "vote"]
        )
        for source, vote, n in votes:
            family.add_metric([getattr(source, "value", str(source)), "more" if vote > 0 else "less"], n)
        yield family
        if last_ingest is not None:
            if last_ingest.tzinfo is None:  # SQLite gives naive UTC
                last_ingest = last_ingest.replace(tzinfo=timezone.utc)
            yield GaugeMetricFamily(
                "digest_ingest_last_success_timestamp_seconds",
                "When the last ingest run that stored papers finished (Unix time)",
                value=last_ingest.timestamp(),
            )

    def _broker(self) -> Iterator[Metric]:
        import redis

        family = GaugeMetricFamily("digest_broker_queue_length", "Tasks waiting in the broker, by Celery queue", labels=["queue"])
        try:
            client = redis.Redis.from_url(self.settings.broker_url, socket_timeout=2, socket_connect_timeout=2)
            try:
                with client.pipeline(transaction=False) as pipe:
                    for name in QUEUES:
                        pipe.llen(name)
                        for step in KOMBU_PRIORITY_STEPS:
                            pipe.llen(f"{name}\x06\x16{step}")
                    lengths = pipe.execute()
            finally:
                client.close()
        except Exception as exc:  # the broker is down: no figure rather than a wrong one
            log.warning("/metrics: the broker did not answer: %s", exc)
            return
        per_queue = 1 + len(KOMBU_PRIORITY_STEPS)
        for index, name in enumerate(QUEUES):
            family.add_metric([name], sum(lengths[index * per_queue : (index + 1) * per_queue]))
        yield family


def _in(address: str | None, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    ip = getattr(ip, "ipv4_mapped", None) or ip
    return any(ip in network for network in networks)


def _refusal(settings: Settings) -> Response | None:
    """Why this request may not scrape, as the answer to give; None if it may."""
    if settings.metrics_allow is not None:
        if not _in(request.remote_addr, settings.metrics_allow):
            return Response("forbidden: this address may not read /metrics (DIGEST_METRICS_ALLOW)\n", 403, mimetype="text/plain")
    elif settings.metrics_token is None:
        forwarded = not settings.trusted_proxies and any(h in request.headers for h in FORWARDING_HEADERS)
        if forwarded or not is_loopback(request.remote_addr):
            return Response("forbidden: without DIGEST_METRICS_TOKEN, /metrics answers only on this machine\n", 403, mimetype="text/plain")
    if settings.metrics_token is not None:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        expected = settings.metrics_token.encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode("latin-1", "replace"), expected):
            return Response(
                "unauthorized: send Authorization: Bearer <DIGEST_METRICS_TOKEN>\n",
                401,
                mimetype="text/plain",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
    return None


def exposition(settings: Settings) -> bytes:
    """The text a scrape gets: the counters (every process's, or this one's), then the database's gauges."""
    if settings.metrics_dir is not None:
        counted = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(counted, path=str(settings.metrics_dir))
    else:
        metrics.metrics()  # made, so that their HELP lines show before anything was counted
        counted = metrics.REGISTRY
    facts = CollectorRegistry(auto_describe=False)
    facts.register(DatabaseCollector(settings))
    return generate_latest(counted) + generate_latest(facts)


def scrape() -> Response:
    settings: Settings = current_app.config["DIGEST_SETTINGS"]
    refused = _refusal(settings)
    if refused is not None:
        return refused
    return Response(exposition(settings), 200, headers={"Content-Type": CONTENT_TYPE_LATEST, "Cache-Control": "no-store"})


def register(app: Flask, csrf: CSRFProtect, settings: Settings) -> None:
    csrf.exempt(scrape)  # a scraper has no session; GET changes nothing
    app.add_url_rule("/metrics", "metrics", scrape, methods=["GET"])
    if settings.metrics_token is None and settings.metrics_allow is None:
        log.info("/metrics answers only on this machine (set DIGEST_METRICS_TOKEN for a scraper elsewhere)")
