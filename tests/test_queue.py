"""The one seam for handing work to a worker (``digest.queue``): in this process, or a Celery task by name."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import redis
from support import free_port

from digest.config import Settings
from digest.queue import DEFAULT_QUEUE, SEND_BATCH, SEND_CONFIRMATION, SEND_QUEUE, CeleryQueue, InProcess, for_settings
from digest.subscribers.subscriptions import request_subscription

SETTINGS = Settings(database_url="sqlite://")


@pytest.fixture
def pending(session) -> int:
    """A pending subscriber's id: what the sign-up page hands over for its confirmation."""
    subscriber = request_subscription(session, SETTINGS, "ann@example.org", [], "daily", "UTC", datetime.now(timezone.utc))
    session.commit()
    return subscriber.id


def test_without_a_broker_work_is_done_in_process_and_with_one_it_goes_to_celery(redis_url):
    assert isinstance(for_settings(SETTINGS), InProcess) and for_settings(SETTINGS).in_process
    celery = for_settings(SETTINGS.with_(broker_url=redis_url))
    assert isinstance(celery, CeleryQueue) and not celery.in_process


def test_celery_tasks_are_sent_by_name_batches_to_digest_send_the_rest_to_digest_default(redis_url):
    broker = redis_url.rsplit("/", 1)[0] + "/13"  # a database of its own: the queues are inspected
    client = redis.Redis.from_url(broker)
    client.flushdb()
    try:
        work = CeleryQueue(SETTINGS.with_(broker_url=broker))
        work.send_batch([3, 1, 2])
        assert work.send_confirmation(7) is True
        (batch,) = client.lrange(SEND_QUEUE, 0, -1)
        (confirmation,) = client.lrange(DEFAULT_QUEUE, 0, -1)
    finally:
        client.flushdb()
    assert json.loads(batch)["headers"]["task"] == SEND_BATCH == "digest.send_batch"
    assert json.loads(confirmation)["headers"]["task"] == SEND_CONFIRMATION == "digest.send_confirmation"


def test_with_the_broker_unreachable_a_confirmation_is_sent_in_process(mail_settings, smtp_server, pending):
    work = CeleryQueue(mail_settings.with_(broker_url=f"redis://127.0.0.1:{free_port()}/0"))  # nothing listens there
    assert work.send_confirmation(pending) is True
    [message] = smtp_server.to("ann@example.org")
    assert message["Subject"] == "Confirm your Trending Papers subscription"


def test_in_process_a_confirmation_the_mail_server_cannot_take_is_false_not_an_error(mail_settings, smtp_server, pending):
    smtp_server.stop()  # the page or the import that asked must go on
    assert InProcess(mail_settings).send_confirmation(pending) is False
    smtp_server.start()
    assert InProcess(mail_settings).send_confirmation(pending) is True  # the person can ask again
    assert len(smtp_server.to("ann@example.org")) == 1
