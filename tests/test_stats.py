"""`digest stats`: what an operator reads about subscribers, papers, ingests and today's deliveries."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

from processes import digest_cli
from support import subprocess_env

from digest.db import session_scope
from digest.models import Delivery, DeliveryStatus, EventKind, IngestRun, Subscriber, SubscriberState


def test_stats_counts_subscribers_papers_ingests_and_todays_deliveries(settings, make_paper):
    now = datetime.now(timezone.utc)
    with session_scope(settings) as s:
        subs = [
            Subscriber(email=f"s{i}@example.org", state=state, created_at=now)
            for i, state in enumerate([SubscriberState.active, SubscriberState.active, SubscriberState.pending, SubscriberState.suppressed])
        ]
        s.add_all(subs)
        make_paper(day=date(2026, 1, 5), session=s)
        s.add(IngestRun(source="test", started_at=now, finished_at=now, fetched=7, new=1, updated=5, skipped=1))
        s.flush()
        for i, status in enumerate([DeliveryStatus.sent, DeliveryStatus.sent, DeliveryStatus.skipped]):
            s.add(
                Delivery(
                    subscriber_id=subs[i].id,
                    period=f"p{i}",
                    scheduled_for=now,
                    window_start=date(2026, 1, 5),
                    window_end=date(2026, 1, 5),
                    status=status,
                )
            )
    text = digest_cli(subprocess_env(settings), "stats")
    assert text.returncode == 0, text.stderr
    assert "subscribers: pending 1, active 2, unsubscribed 0, suppressed 1 (total 4)" in text.stdout
    assert "papers: 1 (latest Daily Papers day: 2026-01-05)" in text.stdout
    assert "fetched 7, new 1, updated 5, skipped 1" in text.stdout
    assert "deliveries today: sent 2, skipped 1, failed 0, pending 0" in text.stdout
    data = json.loads(digest_cli(subprocess_env(settings), "stats", "--json").stdout)
    assert data["subscribers"] == {"pending": 1, "active": 2, "unsubscribed": 0, "suppressed": 1}
    assert data["deliveries_today"] == {"sent": 2, "skipped": 1, "failed": 0, "pending": 0, "sending": 0}


def test_stats_json_prints_every_count_zeros_included(settings):
    result = digest_cli(subprocess_env(settings), "stats", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data == {
        "sending": {"paused": False, "since": None, "by": None},
        "subscribers": {state.value: 0 for state in SubscriberState},
        "papers": 0,
        "latest_paper_day": None,
        "last_ingest": None,
        "deliveries_today": {status.value: 0 for status in DeliveryStatus},
        "mail_events": {kind.value: 0 for kind in EventKind},
    }
    assert list(data["deliveries_today"]) == ["sent", "skipped", "failed", "pending", "sending"]  # as the text reads them
    text = digest_cli(subprocess_env(settings), "stats").stdout
    assert "deliveries today: sent 0, skipped 0, failed 0, pending 0, sending 0" in text
    assert "came back (since the start): hard 0, soft 0, complaint 0, auto_reply 0, delivered 0, other 0, forged 0" in text
