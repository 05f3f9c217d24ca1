"""The whole loop through real Celery workers: Redis, PostgreSQL, aiosmtpd, a local papers API.

ingest → plan → send gives each due subscriber exactly one digest; then the faults, injected from
outside as an operator would meet them: kill -9 of a worker mid-send, Redis restarted mid-run (it
keeps nothing on disk, so queued tasks are lost), the SMTP server gone for a while. Each time every
due subscriber ends with exactly one digest in the ledger and one Message-ID in the mailbox.

A message the SMTP server had fully received when the sender died, but whose "250" the sender never
read, is sent again on the retry (SMTP cannot tell the two apart); it carries the same Message-ID, so
receivers fold it. The kill test counts such copies and bounds them by the messages that can be in
flight (one per pool process).
"""

from __future__ import annotations

import re
import subprocess
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from celery import Celery
from papers_api import PAPERS_PER_DAY
from processes import BIN, CeleryWorker, PrivateRedis, digest_cli, wait_for
from sqlalchemy import func, select
from support import free_port, subprocess_env
from web_helpers import body_text, subscribe

from digest.config import SmtpSettings
from digest.db import session_scope
from digest.delivery.planning import plan
from digest.models import Delivery, DeliveryStatus, Frequency, Paper, Subscriber, SubscriberState, TopicFilter
from digest.web import create_app

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

CONCURRENCY = 2


def make_env(settings, broker_url, smtp_server, papers_api) -> dict[str, str]:
    return subprocess_env(
        settings,
        DIGEST_BROKER_URL=broker_url,
        DIGEST_SMTP_URL=smtp_server.url,
        DIGEST_SOURCE_URL=papers_api.url,
        DIGEST_CLAIM_TIMEOUT="10",
    )


def add_subscribers(settings, count: int, *, matching_nothing: int = 0) -> set[str]:
    """``count`` active daily subscribers due now; the last ``matching_nothing`` match no paper.

    Their hour is this hour (UTC), so today's slot has just come and the digest covers yesterday.
    """
    now = datetime.now(timezone.utc)
    slot = now.replace(minute=0, second=0, microsecond=0)
    due = set()
    with session_scope(settings) as s:
        for i in range(count):
            quiet = i >= count - matching_nothing
            email = f"reader{i:05d}@example.org"
            s.add(
                Subscriber(
                    email=email,
                    state=SubscriberState.active,
                    frequency=Frequency.daily,
                    timezone="UTC",
                    delivery_hour=slot.hour,
                    created_at=now - timedelta(days=3),
                    confirmed_at=now - timedelta(days=3),
                    next_due_at=slot,
                    filters=[TopicFilter(position=0, text="quantum chromodynamics" if quiet else "diffusion")],
                )
            )
            if not quiet:
                due.add(email)
    return due


def ledger(settings) -> Counter:
    with session_scope(settings) as s:
        return Counter(dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all()))


def unfinished(settings) -> int:
    counts = ledger(settings)
    return counts[DeliveryStatus.pending] + counts[DeliveryStatus.sending]


def check_exactly_one_digest_each(settings, smtp_server, due: set[str], *, max_copies: int = 0) -> None:
    with session_scope(settings) as s:
        sent = s.execute(
            select(Subscriber.email, func.count()).join(Delivery).where(Delivery.status == DeliveryStatus.sent).group_by(Subscriber.email)
        ).all()
    assert dict(sent) == {email: 1 for email in due}, "the ledger must hold one sent digest per due subscriber"
    ids_by_rcpt: dict[str, set[str]] = {}
    copies = 0
    for c in smtp_server.captured:
        (rcpt,) = c.rcpt_tos
        ids = ids_by_rcpt.setdefault(rcpt, set())
        message_id = c.message["Message-ID"]
        copies += message_id in ids
        ids.add(message_id)
    assert set(ids_by_rcpt) == due, "every due subscriber, and only they, got mail"
    assert all(len(ids) == 1 for ids in ids_by_rcpt.values()), "one digest (one Message-ID) per subscriber"
    assert copies <= max_copies, f"{copies} resent copies of a message in flight"


def send_until_done(env, settings, timeout: float) -> None:
    """What beat does every few minutes: plan, which also re-queues rows whose claim expired."""

    def done() -> bool:
        if unfinished(settings) == 0:
            return True
        result = digest_cli(env, "send")
        assert result.returncode == 0, result.stderr
        return False

    wait_for(done, timeout, "every digest sent or skipped", interval=3)


def test_ingest_plan_send_through_a_worker_gives_each_due_subscriber_one_digest(pg_settings, broker, smtp_server, papers_api, tmp_path):
    env = make_env(pg_settings, broker, smtp_server, papers_api)
    worker = CeleryWorker(env, tmp_path / "worker.log").start()
    try:
        # what beat sends every 30 minutes, sent by hand: the worker fetches from the papers API
        subprocess.run([str(BIN / "celery"), "-A", "workers.app", "call", "digest.ingest"], env=env, check=True, capture_output=True)
        wait_for(lambda: _paper_count(pg_settings) == 2 * PAPERS_PER_DAY, 60, "the worker's ingest")

        due = add_subscribers(pg_settings, 230, matching_nothing=12)
        result = digest_cli(env, "send")
        assert result.returncode == 0, result.stderr
        assert "planned 230" in result.stdout
        wait_for(lambda: unfinished(pg_settings) == 0, 120, "the workers to send every batch")
        assert ledger(pg_settings)[DeliveryStatus.skipped] == 12
        check_exactly_one_digest_each(pg_settings, smtp_server, due)
        first = smtp_server.to("reader00000@example.org")[0]
        assert first["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

        # beat runs again (and again): nobody gets a second digest for the same day
        for _ in range(2):
            result = digest_cli(env, "send")
            assert result.returncode == 0 and "planned 0" in result.stdout, result.stdout
        wait_for(lambda: unfinished(pg_settings) == 0, 30, "quiet ledger")
        check_exactly_one_digest_each(pg_settings, smtp_server, due)
    finally:
        worker.stop()


def _paper_count(settings) -> int:
    with session_scope(settings) as s:
        return s.scalar(select(func.count()).select_from(Paper)) or 0


def _ingest(env) -> None:
    result = digest_cli(env, "ingest")
    assert result.returncode == 0, result.stderr


def test_two_workers_one_killed_mid_send_lose_nothing_and_send_nothing_twice(pg_settings, broker, smtp_server, papers_api, tmp_path):
    env = make_env(pg_settings, broker, smtp_server, papers_api)
    _ingest(env)
    due = add_subscribers(pg_settings, 600)
    smtp_server.rcpt_delay = 0.02  # ~6 s of sending for two workers: time to pull a plug
    first = CeleryWorker(env, tmp_path / "w1.log", name="w1", concurrency=CONCURRENCY).start()
    second = CeleryWorker(env, tmp_path / "w2.log", name="w2", concurrency=CONCURRENCY).start()
    try:
        assert digest_cli(env, "send").returncode == 0
        wait_for(lambda: len(smtp_server.captured) >= 100, 60, "the first messages")
        first.kill()
        assert len(smtp_server.captured) < len(due), "the kill came too late to test anything"
        assert unfinished(pg_settings) > 0
        assert re.search(r"Task digest\.send_batch\[\S+\] received", first.log())  # it had work when it died
        # the survivor goes on; the dead one's claimed rows wait for their claim to expire, and
        # the next planning run (beat's, every few minutes; here by hand) re-queues them
        third = CeleryWorker(env, tmp_path / "w3.log", name="w3", concurrency=CONCURRENCY).start()
        try:
            send_until_done(env, pg_settings, timeout=120)
        finally:
            third.stop()
    finally:
        first.stop()
        second.stop()
    check_exactly_one_digest_each(pg_settings, smtp_server, due, max_copies=CONCURRENCY)


@pytest.mark.skipif(
    not PrivateRedis.available(),
    reason="needs the redis-server program on the PATH (this test starts a Redis of its own and restarts it mid-run), "
    "but it is not installed. Install it with `apt-get install redis-server` (no server needs to be running)",
)
def test_redis_restarted_mid_run_loses_no_digest(pg_settings, smtp_server, papers_api, tmp_path):
    redis_server = PrivateRedis().start()
    env = make_env(pg_settings, redis_server.url, smtp_server, papers_api)
    _ingest(env)
    due = add_subscribers(pg_settings, 400)
    smtp_server.rcpt_delay = 0.02
    worker = CeleryWorker(env, tmp_path / "worker.log", concurrency=CONCURRENCY).start()
    try:
        assert digest_cli(env, "send").returncode == 0
        wait_for(lambda: len(smtp_server.captured) >= 40, 60, "the first messages")
        redis_server.stop()  # queued batches are gone with it: it keeps nothing on disk
        redis_server.start()
        assert len(smtp_server.captured) < len(due)
        send_until_done(env, pg_settings, timeout=150)
    finally:
        worker.stop()
        redis_server.stop()
    check_exactly_one_digest_each(pg_settings, smtp_server, due, max_copies=CONCURRENCY)


def test_smtp_server_gone_for_a_while_every_digest_arrives_once(pg_settings, broker, smtp_server, papers_api, tmp_path):
    env = make_env(pg_settings, broker, smtp_server, papers_api)
    _ingest(env)
    due = add_subscribers(pg_settings, 300)
    smtp_server.rcpt_delay = 0.01
    worker = CeleryWorker(env, tmp_path / "worker.log", concurrency=CONCURRENCY).start()
    try:
        assert digest_cli(env, "send").returncode == 0
        wait_for(lambda: len(smtp_server.captured) >= 30, 60, "the first messages")
        smtp_server.stop()
        stopped_at = len(smtp_server.captured)
        wait_for(lambda: "deferred" in worker.log() or "retry" in worker.log().lower(), 60, "the worker to notice")
        smtp_server.start()  # same port, back after the outage
        assert stopped_at < len(due)
        wait_for(lambda: unfinished(pg_settings) == 0, 150, "the retries to send the rest", interval=1)
    finally:
        worker.stop()
    check_exactly_one_digest_each(pg_settings, smtp_server, due, max_copies=CONCURRENCY)


# ---------------------------------------------------------------- confirmation mail through the queue


def test_with_a_broker_the_confirmation_is_sent_by_a_worker_not_the_web_request(pg_settings, broker, smtp_server, papers_api, tmp_path):
    web = pg_settings.with_(broker_url=broker, smtp=SmtpSettings(host=smtp_server.host, port=smtp_server.port))
    client = create_app(web).test_client()
    assert subscribe(client, "queued@example.org").status_code == 303
    assert smtp_server.captured == []  # the request only enqueued it
    worker = CeleryWorker(make_env(pg_settings, broker, smtp_server, papers_api), tmp_path / "worker.log").start()
    try:
        wait_for(lambda: smtp_server.to("queued@example.org"), 30, "the worker to send the confirmation")
    finally:
        worker.stop()
    assert "/confirm/" in body_text(smtp_server.to("queued@example.org")[0])


def test_with_the_broker_down_the_confirmation_is_still_sent(pg_settings, smtp_server):
    web = pg_settings.with_(
        broker_url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        smtp=SmtpSettings(host=smtp_server.host, port=smtp_server.port),
    )
    assert subscribe(create_app(web).test_client(), "fallback@example.org").status_code == 303
    assert len(smtp_server.to("fallback@example.org")) == 1


# ---------------------------------------------------------------- the short command


def test_a_worker_started_without_queues_takes_send_batches_from_digest_send(pg_settings, broker, smtp_server, make_paper, tmp_path):
    """``celery -A workers worker``, no ``-Q``: it consumes digest.send as well as digest.default."""
    now = datetime.now(timezone.utc)
    with session_scope(pg_settings) as s:
        make_paper("2611.00001", "Diffusion transformers, scaled", day=now.date() - timedelta(days=1), upvotes=5, session=s)
    (due,) = add_subscribers(pg_settings, 1)
    with session_scope(pg_settings) as s:
        ids = plan(s, pg_settings, now)
    assert len(ids) == 1
    env = subprocess_env(pg_settings, DIGEST_BROKER_URL=broker, DIGEST_SMTP_URL=smtp_server.url)
    worker = CeleryWorker(env, tmp_path / "worker.log", app="workers", queues=None).start()
    try:
        with Celery("sender", broker=broker, set_as_current=False) as sender:  # as beat or `digest send` would
            sender.send_task("digest.send_batch", args=[ids], queue="digest.send")
        wait_for(lambda: smtp_server.to(due), 30, "the worker to send the batch from digest.send")
    finally:
        worker.stop()
    assert {"digest.default", "digest.send"} <= set(re.findall(r"\.> (digest\.\w+) +exchange=", worker.log()))
    assert ledger(pg_settings) == Counter({DeliveryStatus.sent: 1})
    [message] = smtp_server.to(due)
    assert "Diffusion transformers, scaled" in message.get_body(("html",)).get_content()
