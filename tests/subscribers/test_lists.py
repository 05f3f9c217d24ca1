"""`digest subscribers import/export`, run as a user runs them: the real CLI."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone
from pathlib import Path

from processes import digest_cli
from sqlalchemy import select
from support import subprocess_env

from digest.db import session_scope
from digest.models import Subscriber, SubscriberState


def run(settings, *args, smtp_url=None):
    return digest_cli(subprocess_env(settings, **({"DIGEST_SMTP_URL": smtp_url} if smtp_url else {})), *args)


def write_csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["email", "topics", "frequency", "timezone"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_import_creates_pending_subscribers_and_mails_each_a_confirmation(settings, smtp_server, tmp_path):
    path = write_csv(
        tmp_path / "list.csv",
        [
            {"email": "Ann@Example.org", "topics": 'diffusion\n"video generation"', "frequency": "weekly", "timezone": "Europe/Berlin"},
            {"email": "bob@example.org", "topics": "", "frequency": "", "timezone": ""},
        ],
    )
    result = run(settings, "subscribers", "import", str(path), smtp_url=smtp_server.url)
    assert result.returncode == 0, result.stderr
    assert "imported 2, already present 0, rejected 0" in result.stdout
    assert "confirmation emails: 2 sent" in result.stdout
    with session_scope(settings) as s:
        ann = s.scalar(select(Subscriber).where(Subscriber.email == "ann@example.org"))
        assert ann.state == SubscriberState.pending
        assert ann.frequency.value == "weekly" and ann.timezone == "Europe/Berlin"
        assert [f.text for f in ann.filters] == ["diffusion", '"video generation"']
        bob = s.scalar(select(Subscriber).where(Subscriber.email == "bob@example.org"))
        assert bob.frequency.value == "daily" and bob.timezone == "UTC" and bob.filters == []
    assert sorted(m["To"] for m in smtp_server.messages) == ["ann@example.org", "bob@example.org"]
    assert all("/confirm/" in m.get_body(("plain",)).get_content() for m in smtp_server.messages)


def test_import_confirmed_makes_active_subscribers_with_a_due_time_and_sends_nothing(settings, smtp_server, tmp_path):
    path = write_csv(
        tmp_path / "list.csv", [{"email": "cy@example.org", "topics": "agents", "frequency": "daily", "timezone": "Asia/Tokyo"}]
    )
    result = run(settings, "subscribers", "import", "--confirmed", str(path), smtp_url=smtp_server.url)
    assert result.returncode == 0, result.stderr
    assert smtp_server.messages == []
    with session_scope(settings) as s:
        cy = s.scalar(select(Subscriber).where(Subscriber.email == "cy@example.org"))
        assert cy.state == SubscriberState.active and cy.confirmed_at is not None
        local = cy.next_due_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))
        assert (local.hour, local.minute) == (7, 0) and cy.next_due_at > datetime.now(timezone.utc)


def test_import_reports_bad_rows_by_line_imports_the_rest_and_never_touches_existing(settings, tmp_path):
    with session_scope(settings) as s:
        s.add(Subscriber(email="left@example.org", state=SubscriberState.unsubscribed, created_at=datetime.now(timezone.utc)))
    path = write_csv(
        tmp_path / "list.csv",
        [
            {"email": "not an address", "topics": "", "frequency": "daily", "timezone": "UTC"},
            {"email": "ok@example.org", "topics": "", "frequency": "daily", "timezone": "UTC"},
            {"email": "tz@example.org", "topics": "", "frequency": "daily", "timezone": "Mars/Olympus"},
            {"email": "freq@example.org", "topics": "", "frequency": "hourly", "timezone": "UTC"},
            {"email": "topic@example.org", "topics": "upvotes:>=", "frequency": "daily", "timezone": "UTC"},
            {"email": "LEFT@example.org", "topics": "", "frequency": "daily", "timezone": "UTC"},
            {"email": "ok@example.org", "topics": "", "frequency": "daily", "timezone": "UTC"},
        ],
    )
    result = run(settings, "subscribers", "import", "--confirmed", str(path))
    assert result.returncode == 1
    assert "imported 1, already present 2, rejected 4" in result.stdout
    for line in ("line 2:", "line 4: unknown time zone 'Mars/Olympus'", "line 5: frequency must be daily or weekly", "line 6: topics:"):
        assert line in result.stdout
    assert "Traceback" not in result.stderr
    with session_scope(settings) as s:
        states = dict(s.execute(select(Subscriber.email, Subscriber.state)).all())
    assert states == {"left@example.org": SubscriberState.unsubscribed, "ok@example.org": SubscriberState.active}


def test_import_without_an_email_column_fails_with_one_line(settings, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("address,topics\nx@example.org,\n")
    result = run(settings, "subscribers", "import", str(path))
    assert result.returncode == 1
    assert result.stderr.strip().startswith("error:") and "email" in result.stderr and "Traceback" not in result.stderr


def test_export_round_trips_through_import(settings, tmp_path):
    rows = [
        {
            "email": f"user{i}@example.org",
            "topics": f'topic{i}\nauthor:"Ann Lee"',
            "frequency": "weekly" if i % 2 else "daily",
            "timezone": "America/New_York",
        }
        for i in range(25)
    ]
    assert run(settings, "subscribers", "import", "--confirmed", str(write_csv(tmp_path / "in.csv", rows))).returncode == 0
    result = run(settings, "subscribers", "export")
    assert result.returncode == 0 and "exported 25 subscribers" in result.stderr
    exported = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [{k: r[k] for k in ("email", "topics", "frequency", "timezone")} for r in exported] == rows
    assert {r["state"] for r in exported} == {"active"} and {r["delivery_hour"] for r in exported} == {"7"}
