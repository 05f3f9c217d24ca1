"""/metrics after a real run through Celery: every process counts into DIGEST_METRICS_DIR (the CLI's
ingest and planning, the worker's pool processes sending), and a scrape adds them up; its figures
are checked against the ledger and the tables, and without the token it is refused."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from processes import CeleryWorker, digest_cli, wait_for
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select
from test_workers import add_subscribers, ledger, make_env, unfinished

from digest.db import session_scope
from digest.models import Delivery, IngestRun, Paper, Subscriber, SubscriberState, Vote
from digest.web import create_app

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

TOKEN = "metrics-token-" + "x" * 20
REFUSED = "reader00003@example.org"  # the SMTP server refuses this one for good: a failed digest


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """(sample name, labels) -> value, from Prometheus' text format (its own parser)."""
    return {(s.name, frozenset(s.labels.items())): s.value for family in text_string_to_metric_families(text) for s in family.samples}


def broker_idle(url: str) -> bool:
    """No task waiting in any of our Celery queues (priority lists included), none unacknowledged."""
    import redis

    client = redis.Redis.from_url(url)
    return all(client.llen(key) == 0 for key in client.scan_iter(match="digest.*")) and client.hlen("unacked") == 0


def value(scraped: dict, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def test_metrics_after_a_send_through_celery_match_the_ledger(pg_settings, broker, smtp_server, papers_api, tmp_path):
    folder = tmp_path / "metrics"
    folder.mkdir()
    env = make_env(pg_settings, broker, smtp_server, papers_api) | {"DIGEST_METRICS_DIR": str(folder), "DIGEST_METRICS_TOKEN": TOKEN}
    smtp_server.fail_rcpt[REFUSED] = "550 5.1.1 no such user"

    result = digest_cli(env, "ingest")  # a process of its own: its counts go to a file of its own
    assert result.returncode == 0, result.stderr
    due = add_subscribers(pg_settings, 150, matching_nothing=7)
    now = datetime.now(timezone.utc)
    with session_scope(pg_settings) as s:  # the other states, and a vote, for the gauges
        s.add(Subscriber(email="waiting@example.org", state=SubscriberState.pending, timezone="UTC", delivery_hour=7))
        s.add(Subscriber(email="left@example.org", state=SubscriberState.unsubscribed, timezone="UTC", delivery_hour=7))
        s.flush()
        reader = s.scalar(select(Subscriber.id).where(Subscriber.email == "reader00000@example.org"))
        paper = s.scalar(select(Paper.id).limit(1))
        s.add(Vote(subscriber_id=reader, paper_id=paper, vote=1, created_at=now - timedelta(hours=1)))

    worker = CeleryWorker(env, tmp_path / "worker.log").start()
    try:
        result = digest_cli(env, "send")  # plans here, sends in the worker's pool processes
        assert result.returncode == 0, result.stderr
        assert "planned 150" in result.stdout
        wait_for(lambda: unfinished(pg_settings) == 0, 120, "the worker to send every batch")
        # and to take every task it was given: a send task whose rows another one finished before it
        # ran is still queued (or held, unacknowledged) when the ledger is done; stopped then, the
        # worker hands it back to the queue, and the queue-length gauge below would rightly count it
        wait_for(lambda: broker_idle(broker), 60, "the worker to take every task in the broker")
    finally:
        worker.stop()

    counts = ledger(pg_settings)
    assert counts["sent"] == len(due) - 1 and counts["skipped"] == 7 and counts["failed"] == 1  # the run did what the test needs
    counters = {f.name.split("_")[0] for f in folder.iterdir()}
    assert {"counter", "histogram"} <= counters
    writers = {f.stem.split("_", 1)[1] for f in folder.iterdir()}
    assert len(writers) >= 3, f"the CLI's ingest, its send and a pool process each wrote their own files: {writers}"

    app = create_app(pg_settings.with_(metrics_dir=folder, metrics_token=TOKEN, broker_url=broker))
    client = app.test_client()
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
    assert b"digest_digests_total" not in refused.data
    assert client.get("/metrics", headers={"Authorization": "Bearer " + TOKEN[:-1] + "y"}).status_code == 401
    assert client.get("/metrics", headers={"Authorization": "Basic " + TOKEN}).status_code == 401
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.data
    assert answer.headers["Content-Type"].startswith("text/plain")
    scraped = samples(answer.get_data(as_text=True))

    with session_scope(pg_settings) as s:
        rows = s.scalar(select(func.count()).select_from(Delivery))
        states = Counter(dict(s.execute(select(Subscriber.state, func.count()).group_by(Subscriber.state)).all()))
        runs = s.scalar(select(func.count()).select_from(IngestRun))
        papers = s.scalar(select(func.count()).select_from(Paper))
    # what was done, counted by the processes that did it, equals what the ledger holds
    assert value(scraped, "digest_digests_total", outcome="planned") == rows == 150
    for outcome in ("sent", "skipped", "failed"):
        assert value(scraped, "digest_digests_total", outcome=outcome) == counts[outcome], outcome
    assert value(scraped, "digest_digests_total", outcome="deferred") == 0
    # each message's SMTP exchange timed (the refused one too); one batch of 100 rows at most each
    assert value(scraped, "digest_smtp_send_seconds_count") == counts["sent"] + counts["failed"]
    assert value(scraped, "digest_smtp_send_seconds_bucket", le="+Inf") == counts["sent"] + counts["failed"]
    assert 0 < value(scraped, "digest_smtp_send_seconds_sum") < 60
    assert value(scraped, "digest_batch_seconds_count") >= math.ceil(150 / 100)
    # the ingest the CLI ran
    assert runs == 1 and value(scraped, "digest_ingest_runs_total", source="daily_papers", outcome="ok") == 1
    assert value(scraped, "digest_ingest_papers_total", source="daily_papers", outcome="new") == papers > 0
    # the facts of the database, read at scrape time
    for state in SubscriberState:
        assert value(scraped, "digest_subscribers", state=state.value) == states[state], state
    assert states[SubscriberState.suppressed] == 1  # the refused address
    assert value(scraped, "digest_queue_depth", status="pending") == 0
    assert value(scraped, "digest_queue_depth", status="sending") == 0
    assert value(scraped, "digest_queue_stuck") == 0
    assert value(scraped, "digest_votes", source="vote", vote="more") == 1
    assert value(scraped, "digest_database_up") == 1
    assert value(scraped, "digest_broker_queue_length", queue="digest.send") == 0
    assert value(scraped, "digest_ingest_last_success_timestamp_seconds") > now.timestamp() - 600
