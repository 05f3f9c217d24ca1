"""Whoever left stays left: no import, with or without --confirmed, brings an address back, even
after the purge forgot its row (issue 12)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from processes import digest_cli
from sqlalchemy import select, text
from support import subprocess_env

from digest.db import session_scope, upgrade
from digest.models import Subscriber, SubscriberState, Suppression, address_hash
from digest.subscribers.subscriptions import confirm, confirmation_token, request_subscription, unsubscribe

NOW = datetime.now(timezone.utc)


def left_and_purged(settings, email: str) -> None:
    """Subscribed, confirmed, unsubscribed, then a stranger's sign-up made it pending again (in the
    old code) and the purge deleted the row: nothing of the subscriber is left but its hash."""
    with session_scope(settings) as s:
        sub = request_subscription(s, settings, email, [], "daily", "UTC", NOW - timedelta(days=30))
        confirm(s, settings, confirmation_token(s, settings, sub), NOW - timedelta(days=30))
        unsubscribe(s, sub, NOW - timedelta(days=20))
    with session_scope(settings) as s:
        s.execute(text("DELETE FROM subscribers"))


@pytest.mark.parametrize("confirmed", [True, False])
def test_an_import_never_brings_back_an_address_that_left(settings, smtp_server, tmp_path, confirmed):
    left_and_purged(settings, "gone@example.org")
    csv = tmp_path / "old_list.csv"
    csv.write_text("email,topics,frequency,timezone\ngone@example.org,robotics,daily,UTC\nnew@example.org,robotics,daily,UTC\n")
    env = subprocess_env(settings, DIGEST_SMTP_URL=f"smtp://127.0.0.1:{smtp_server.port}")

    result = digest_cli(env, "subscribers", "import", str(csv), *(["--confirmed"] if confirmed else []))

    assert result.returncode == 0, result.stderr
    assert "imported 1" in result.stdout and "left before (not re-subscribed) 1" in result.stdout
    with session_scope(settings) as s:
        assert s.scalars(select(Subscriber.email)).all() == ["new@example.org"]
        state = s.scalar(select(Subscriber.state))
        assert state == (SubscriberState.active if confirmed else SubscriberState.pending)
    assert smtp_server.to("gone@example.org") == []  # not even a confirmation mail


def test_the_migration_remembers_everyone_who_left_before_it(tmp_path):
    url = f"sqlite:///{tmp_path}/old.sqlite3"
    upgrade(url, "0002")
    from digest.db import engine_for

    with engine_for(url).begin() as conn:
        for i, state in enumerate(["active", "unsubscribed", "suppressed", "pending"]):
            conn.execute(
                text("INSERT INTO subscribers (public_id, email, state) VALUES (:p, :e, :s)"),
                {"p": f"p{i}", "e": f"{state}@example.org", "s": state},
            )
    upgrade(url)
    with engine_for(url).connect() as conn:
        kept = dict(conn.execute(select(Suppression.address_hash, Suppression.reason)).all())
    assert kept == {address_hash("unsubscribed@example.org"): "unsubscribed", address_hash("suppressed@example.org"): "suppressed"}
