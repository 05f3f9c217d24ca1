"""/metrics in one process (the demo's case: no DIGEST_METRICS_DIR) and who may read it.

The multi-process case, a send through Celery checked against the ledger, is
tests/workers/test_worker_metrics.py."""

from __future__ import annotations

import pytest
from digest_helpers import AT, add_subscriber, with_smtp
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from digest.config import ConfigError, load_settings
from digest.delivery.run import send_due
from digest.models import Delivery, DeliveryStatus, SubscriberState
from digest.web import create_app

TOKEN = "a-long-random-metrics-token"


def scrape(client, **headers) -> dict[tuple[str, frozenset], float]:
    answer = client.get("/metrics", headers=headers)
    assert answer.status_code == 200, answer.data
    text = answer.get_data(as_text=True)
    return {(s.name, frozenset(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples}


def value(scraped, name: str, **labels: str) -> float:
    return scraped.get((name, frozenset(labels.items())), 0.0)


def test_a_send_in_this_process_is_counted_and_the_gauges_read_the_tables(settings, session, smtp_server, make_paper):
    make_paper("2611.00001", "Video diffusion at scale", upvotes=90, session=session)
    for i in range(3):
        add_subscriber(session, f"reader{i}@example.org", ["diffusion"])
    add_subscriber(session, "quiet@example.org", ["quantum chromodynamics"])
    add_subscriber(session, "later@example.org", state=SubscriberState.pending, due=None)
    session.commit()
    client = create_app(settings).test_client()  # from 127.0.0.1 (the test client's address), no token: allowed
    before = scrape(client)

    report = send_due(with_smtp(settings, smtp_server), AT)
    assert (report.sent, report.skipped) == (3, 1)

    after = scrape(client)
    for outcome, n in (("planned", 4), ("sent", 3), ("skipped", 1), ("failed", 0)):
        delta = value(after, "digest_digests_total", outcome=outcome) - value(before, "digest_digests_total", outcome=outcome)
        assert delta == n, outcome
    assert value(after, "digest_smtp_send_seconds_count") - value(before, "digest_smtp_send_seconds_count") == 3
    assert value(after, "digest_batch_seconds_count") - value(before, "digest_batch_seconds_count") == 1
    sent = session.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == DeliveryStatus.sent))
    assert sent == 3
    assert value(after, "digest_subscribers", state="active") == 4
    assert value(after, "digest_subscribers", state="pending") == 1
    assert value(after, "digest_subscribers", state="suppressed") == 0
    assert value(after, "digest_queue_depth", status="pending") == 0
    assert value(after, "digest_database_up") == 1


def test_without_a_token_only_this_machine_may_scrape(settings):
    client = create_app(settings).test_client()
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 403
    # a proxy on this machine forwarding a client from elsewhere is not this machine
    assert client.get("/metrics", headers={"X-Forwarded-For": "192.0.2.7"}).status_code == 403
    assert client.post("/metrics").status_code == 405


def test_with_a_token_the_bearer_is_required_from_anywhere(settings):
    client = create_app(settings.with_(metrics_token=TOKEN)).test_client()
    far = {"REMOTE_ADDR": "192.0.2.7"}
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": TOKEN}, {"Authorization": "Bearer é\udcff"}):
        try:
            answer = client.get("/metrics", headers=headers, environ_base=far)
        except UnicodeEncodeError:  # the test client itself cannot send that header
            continue
        assert answer.status_code == 401, headers
        assert answer.headers["WWW-Authenticate"] == 'Bearer realm="metrics"'
        assert b"digest_" not in answer.data
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, environ_base=far).status_code == 200
    assert client.get("/metrics", headers={"Authorization": f"bearer  {TOKEN}"}, environ_base=far).status_code == 200


def test_an_allow_list_narrows_who_may_scrape(settings):
    allow = load_settings({"DIGEST_METRICS_ALLOW": "10.0.0.0/8, ::1", "DIGEST_DEMO": "1"}).metrics_allow
    client = create_app(settings.with_(metrics_allow=allow)).test_client()
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "127.0.0.1"}).status_code == 403
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "not an address"}).status_code == 403
    both = create_app(settings.with_(metrics_allow=allow, metrics_token=TOKEN)).test_client()
    assert both.get("/metrics", environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 401
    assert both.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, environ_base={"REMOTE_ADDR": "10.1.2.3"}).status_code == 200


def test_the_database_down_is_a_gauge_not_an_error(settings):
    client = create_app(settings.with_(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")).test_client()
    scraped = scrape(client)
    assert value(scraped, "digest_database_up") == 0


@pytest.mark.parametrize(
    ("variable", "raw", "says"),
    [
        ("DIGEST_METRICS_DIR", "/nonexistent/metrics", "is not a directory"),
        ("DIGEST_METRICS_TOKEN", "short", "too short"),
        ("DIGEST_METRICS_TOKEN", "has spaces in it, sixteen+", "without spaces"),
        ("DIGEST_METRICS_ALLOW", "10.0.0.0/8, intranet", "'intranet'"),
        ("DIGEST_METRICS_ALLOW", " , ", "no address"),
    ],
)
def test_bad_metrics_settings_stop_start_up_naming_the_variable(variable, raw, says):
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: raw, "DIGEST_DEMO": "1"})
    assert variable in str(caught.value) and says in str(caught.value)


def test_metrics_settings_parse(tmp_path):
    settings = load_settings(
        {"DIGEST_DEMO": "1", "DIGEST_METRICS_DIR": str(tmp_path), "DIGEST_METRICS_TOKEN": TOKEN, "DIGEST_METRICS_ALLOW": "192.0.2.1"}
    )
    assert settings.metrics_dir == tmp_path and settings.metrics_token == TOKEN
    assert [str(n) for n in settings.metrics_allow] == ["192.0.2.1/32"]
