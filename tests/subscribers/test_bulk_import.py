"""The set-based `subscribers import` (issue 24): the same rules and report as the row-at-a-time
import it replaced, a chunk at a time; what a file's `state` column says people agreed to; the
columns it does not apply; progress lines. The expectations are written from the rules."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from processes import digest_cli
from sqlalchemy import func, select, text
from support import subprocess_env

from digest.db import session_factory, session_scope
from digest.matching.topics import TopicsError, parse_topics, shown_errors
from digest.models import SignupRequest, Subscriber, SubscriberState, Suppression, address_hash
from digest.subscribers.addresses import normalize_email
from digest.subscribers.lists import APPLIED_COLUMNS, import_csv
from digest.subscribers.subscriptions import confirm, confirmation_token, request_subscription, unsubscribe

NOW = datetime.now(timezone.utc)
COLUMNS = ["email", "topics", "frequency", "timezone", "delivery_hour", "state", "name"]
LONGEST_DOMAIN = ".".join(["d" * 63, "d" * 63, "d" * 57, "org"])


def email_problem(raw: str) -> str:
    with pytest.raises(ValueError) as caught:
        normalize_email(raw)
    return str(caught.value)


def topics_problem(raw: str) -> str:
    with pytest.raises(TopicsError) as caught:
        parse_topics(raw)
    return "topics: " + "; ".join(shown_errors([e.message for e in caught.value.errors]))


def row(email: str, topics: str = "agents", frequency: str = "daily", tz: str = "UTC", hour: str = "", state: str = "", name: str = "x"):
    return [email, topics, frequency, tz, hour, state, name]


#: (the row, what the rules make of it: "imported", "present", "left", "opted out", or the problem's text)
LINES = [
    (row("ok1@example.org"), "imported"),  # line 2
    (row("not an address"), email_problem("not an address")),
    (row("PRESENT@example.org"), "present"),  # here already (any case: addresses are stored lower-case)
    (row("gone@example.org"), "left"),  # left here, row purged since: never brought back
    (row("unsub@example.org"), "present"),  # an unsubscribed row here: present, untouched
    (row("ok1@example.org"), "present"),  # repeats line 2
    (row("gone@example.org"), "present"),  # repeats line 5: an earlier line had it
    (row("tz@example.org", tz="Mars/Olympus"), "unknown time zone 'Mars/Olympus'"),
    (row("freq@example.org", frequency="hourly"), "frequency must be daily or weekly, got 'hourly'"),  # line 10
    (row("topic@example.org", topics="upvotes:>="), topics_problem("upvotes:>=")),
    (row("a" * 65 + "@example.org"), "The part before @ is 65 characters long; mail servers accept at most 64."),
    (row("b" + "a" * 64 + "@" + LONGEST_DOMAIN), "This address is 255 characters long; mail servers accept at most 254."),
    (row("hour@example.org", hour="24"), "delivery hour must be 0-23, got '24'"),
    (row("state@example.org", state="bogus"), "state must be pending, active, unsubscribed, suppressed (or empty), got 'bogus'"),  # 15
    (row("opted@example.org", state="unsubscribed"), "opted out"),  # left where the file comes from
    (row("opted@example.org"), "present"),  # repeats line 16
    (row("pend@example.org", state="pending"), "imported"),  # kept pending (with --confirmed), not mailed
    (row("nine@example.org", hour="9"), "imported"),
    (row("OK1@Example.org"), "present"),  # line 20: repeats line 2 in another case
    (row("fix@example.org", tz="Nowhere/Land"), "unknown time zone 'Nowhere/Land'"),
    (row("fix@example.org"), "imported"),  # the line before was rejected: this one is the first
    (row("sup@example.org", state="suppressed"), "opted out"),
    (row("a" * 64 + "@" + LONGEST_DOMAIN, state="active"), "imported"),  # at the limits exactly: fine
    (row("cells@example.org") + ["past", "the header"], "imported"),  # line 25
]


def expected_report(lines=LINES, *, kept_pending: int = 1) -> list[str]:
    outcome = [what for _, what in lines]
    named = ("imported", "present", "left", "opted out")
    errors = [f"  line {n}: {what}" for n, what in enumerate(outcome, start=2) if what not in named]
    return [
        f"imported {outcome.count('imported')}, already present {outcome.count('present')}, "
        f"left before (not re-subscribed) {outcome.count('left')}, rejected {len(errors)}",
        *(
            [
                f"  of those imported, {kept_pending} pending in the file (never confirmed where they come from): kept pending, "
                "not mailed (--mail-pending mails them a confirmation link)"
            ]
            if kept_pending
            else []
        ),
        f"opt-outs carried {outcome.count('opted out')}: unsubscribed or suppressed in the file, remembered here as ones that left "
        "(no row, never mailed, no import brings them back)",
        f"columns not applied: name (this import reads {', '.join(APPLIED_COLUMNS)})",
        "cells past the header's columns, not applied: on 1 line",
        *errors,
    ]


def write(path: Path, lines=LINES) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(r for r, _ in lines)
    return path


def the_instance(settings) -> None:
    """present@ is active here; unsub@ unsubscribed here; gone@ left and was purged (its hash remains)."""
    with session_scope(settings) as s:
        s.add(Subscriber(email="present@example.org", state=SubscriberState.active, created_at=NOW, confirmed_at=NOW))
        unsub = request_subscription(s, settings, "unsub@example.org", [], "daily", "UTC", NOW - timedelta(days=9))
        confirm(s, settings, confirmation_token(s, settings, unsub), NOW - timedelta(days=9))
        unsubscribe(s, unsub, NOW - timedelta(days=2))
        gone = request_subscription(s, settings, "gone@example.org", [], "daily", "UTC", NOW - timedelta(days=30))
        confirm(s, settings, confirmation_token(s, settings, gone), NOW - timedelta(days=30))
        unsubscribe(s, gone, NOW - timedelta(days=20))
    with session_scope(settings) as s:
        s.execute(text("DELETE FROM subscribers WHERE email = 'gone@example.org'"))


def states(settings) -> dict[str, tuple[SubscriberState, int]]:
    with session_scope(settings) as s:
        return {e: (st, h) for e, st, h in s.execute(select(Subscriber.email, Subscriber.state, Subscriber.delivery_hour))}


@pytest.mark.parametrize("commit_every, parallel", [(None, False), (1, False), (3, False), (500, False), (3, True)])
def test_a_file_with_every_kind_of_line_is_reported_line_by_line_by_the_rules(settings, tmp_path, commit_every, parallel):
    """Chunks of 1 and 3 lines put repeats and their first lines in different transactions; with
    ``parallel`` the helper process checks the lines (as the command does for a big file)."""
    the_instance(settings)
    committed: list[list[int]] = []
    with session_factory(settings)() as session, write(tmp_path / "list.csv").open(encoding="utf-8") as f:
        report = import_csv(
            session,
            settings,
            f,
            NOW,
            confirmed=True,
            commit_every=commit_every,
            committed=committed.append if commit_every else None,
            parallel=parallel,
        )
        session.commit()
    assert report.lines() == expected_report()
    assert report.lines_read == len(LINES) + 1 and report.stopped is None
    assert report.to_confirm == [] and report.confirmations == 0 and all(ids == [] for ids in committed)  # nobody is mailed
    if commit_every:
        assert len(committed) == -(-len(LINES) // commit_every) + (len(LINES) % commit_every == 0)
    imported = {r[0].lower() for r, what in LINES if what == "imported"}
    assert states(settings) == {
        "present@example.org": (SubscriberState.active, 7),
        "unsub@example.org": (SubscriberState.unsubscribed, 7),
        **{email: (SubscriberState.active, 9 if email == "nine@example.org" else 7) for email in imported - {"pend@example.org"}},
        "pend@example.org": (SubscriberState.pending, 7),
    }
    with session_scope(settings) as s:
        left = set(s.scalars(select(Suppression.address_hash)))
        pend = s.scalar(select(Subscriber).where(Subscriber.email == "pend@example.org"))
        request = s.get(SignupRequest, pend.id)
        assert (request.topics, request.frequency.value, request.timezone) == ("agents", "daily", "UTC")  # its sign-up, waiting
        assert pend.confirmed_at is None and pend.next_due_at is None
    assert left == {address_hash(e) for e in ("unsub@example.org", "gone@example.org", "opted@example.org", "sup@example.org")}


def test_the_command_prints_the_same_report_and_exits_1_for_rejected_lines(settings, smtp_server, tmp_path):
    the_instance(settings)
    env = subprocess_env(settings, DIGEST_SMTP_URL=smtp_server.url)
    result = digest_cli(env, "subscribers", "import", "--confirmed", str(write(tmp_path / "list.csv")))
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.splitlines() == expected_report()
    assert smtp_server.captured == []


def test_without_confirmed_every_new_row_is_pending_and_mailed_and_opt_outs_still_travel(settings, smtp_server, tmp_path):
    the_instance(settings)
    env = subprocess_env(settings, DIGEST_SMTP_URL=smtp_server.url)
    result = digest_cli(env, "subscribers", "import", str(write(tmp_path / "list.csv")))
    assert result.returncode == 1
    assert result.stdout.splitlines()[:-1] == expected_report(kept_pending=0) + []  # pending rows are mailed like the others
    imported = sorted({r[0].lower() for r, what in LINES if what == "imported"})
    assert result.stdout.splitlines()[-1] == f"confirmation emails: {len(imported)} sent"
    assert sorted(c.rcpt_tos[0] for c in smtp_server.captured) == imported
    assert all(states(settings)[e][0] == SubscriberState.pending for e in imported)


def test_an_exported_list_imported_with_confirmed_keeps_pending_and_opt_outs(settings, sqlite_database, smtp_server, tmp_path):
    """The adversarial pass of issue 24: a demo (one unsubscribed, some never confirmed) exported,
    then imported with --confirmed elsewhere. Only the confirmed become active."""
    with session_scope(settings) as s:
        for i in range(3):
            sub = request_subscription(s, settings, f"yes{i}@example.org", parse_topics("agents"), "weekly", "Asia/Tokyo", NOW)
            confirm(s, settings, confirmation_token(s, settings, sub), NOW)
        for i in range(4):
            request_subscription(s, settings, f"never{i}@example.org", [], "daily", "UTC", NOW)
        unsubscribe(s, request_subscription(s, settings, "left@example.org", [], "daily", "UTC", NOW), NOW)
    env = subprocess_env(settings, DIGEST_SMTP_URL=smtp_server.url)
    exported = digest_cli(env, "subscribers", "export", "-o", str(tmp_path / "out.csv"))
    assert exported.returncode == 0, exported.stderr

    fresh = settings.with_(database_url=sqlite_database("fresh"))
    result = digest_cli(
        subprocess_env(fresh, DIGEST_SMTP_URL=smtp_server.url), "subscribers", "import", "--confirmed", str(tmp_path / "out.csv")
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[:3] == [
        "imported 7, already present 0, left before (not re-subscribed) 0, rejected 0",
        "  of those imported, 4 pending in the file (never confirmed where they come from): kept pending, "
        "not mailed (--mail-pending mails them a confirmation link)",
        "opt-outs carried 1: unsubscribed or suppressed in the file, remembered here as ones that left "
        "(no row, never mailed, no import brings them back)",
    ]
    assert smtp_server.captured == []
    assert {e: st for e, (st, _) in states(fresh).items()} == {
        **{f"yes{i}@example.org": SubscriberState.active for i in range(3)},
        **{f"never{i}@example.org": SubscriberState.pending for i in range(4)},
    }
    again = digest_cli(
        subprocess_env(fresh, DIGEST_SMTP_URL=smtp_server.url), "subscribers", "import", "--confirmed", str(tmp_path / "out.csv")
    )
    assert again.stdout.startswith("imported 0, already present 7, left before (not re-subscribed) 1, rejected 0")

    mailed = settings.with_(database_url=sqlite_database("mailed"))
    env = subprocess_env(mailed, DIGEST_SMTP_URL=smtp_server.url)
    result = digest_cli(env, "subscribers", "import", "--confirmed", "--mail-pending", str(tmp_path / "out.csv"))
    assert "kept pending, each mailed a confirmation link" in result.stdout and "confirmation emails: 4 sent" in result.stdout
    assert sorted(c.rcpt_tos[0] for c in smtp_server.captured) == [f"never{i}@example.org" for i in range(4)]


def test_an_opt_out_carried_by_one_import_keeps_the_address_out_of_the_next(settings, smtp_server, tmp_path):
    env = subprocess_env(settings, DIGEST_SMTP_URL=smtp_server.url)
    first = tmp_path / "first.csv"
    first.write_text("email,state\nann@example.org,unsubscribed\n")
    assert "opt-outs carried 1" in digest_cli(env, "subscribers", "import", "--confirmed", str(first)).stdout
    second = tmp_path / "second.csv"
    second.write_text("email,topics\nAnn@example.org,agents\nbob@example.org,agents\n")
    for flags in (["--confirmed"], []):
        result = digest_cli(env, "subscribers", "import", *flags, str(second))
        assert "left before (not re-subscribed) 1" in result.stdout
    assert smtp_server.to("ann@example.org") == [] and list(states(settings)) == ["bob@example.org"]


def test_a_sign_up_made_during_the_import_is_already_present_and_never_changed(settings, monkeypatch):
    """The INSERT … ON CONFLICT DO NOTHING: an address a web sign-up made between the chunk's check
    and its insert is counted present, and its row is the sign-up's."""
    import digest.subscribers.bulk as bulk

    real = bulk._insert_subscribers

    def race(session, values):
        with session_scope(settings) as other:
            request_subscription(other, settings, "racer@example.org", [], "weekly", "UTC", NOW)
        return real(session, values)

    monkeypatch.setattr(bulk, "_insert_subscribers", race)
    if settings.database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer: no sign-up can commit inside the import's transaction")
    with session_factory(settings)() as session:
        report = import_csv(session, settings, io.StringIO("email\nracer@example.org\nann@example.org\n"), NOW, confirmed=True)
        session.commit()
    assert (report.created, report.unchanged) == (1, 1)
    assert states(settings)["racer@example.org"][0] == SubscriberState.pending


def test_progress_lines_on_stderr_when_it_is_not_a_terminal(settings, tmp_path):
    path = tmp_path / "big.csv"
    path.write_text("email,topics\n" + "".join(f"reader{i}@example.org,agents\n" for i in range(5_000)))
    result = digest_cli(subprocess_env(settings), "subscribers", "import", "--confirmed", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["imported 5000, already present 0, left before (not re-subscribed) 0, rejected 0"]
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("import: ") and " lines read (" in line for line in lines), lines
    assert lines[-1].startswith("import: 5,001 lines read (100 %), ")  # the header is line 1
    assert len(lines) >= 2 or settings.database_url.startswith("postgresql")  # SQLite: 10 chunks, a line per tenth
    with session_scope(settings) as s:
        assert s.scalar(select(func.count()).select_from(Subscriber)) == 5_000


def test_a_file_of_json_lines_is_refused_with_a_pointer_to_full(settings, tmp_path):
    path = tmp_path / "list.jsonl"
    path.write_text('{"format": "paper-digest subscribers", "version": 1}\n')
    result = digest_cli(subprocess_env(settings), "subscribers", "import", str(path))
    assert result.returncode == 1 and "import it with --full" in result.stderr


def test_the_checking_helper_gives_the_checks_of_this_process_in_order_and_reports_its_failure():
    from digest.subscribers.checks import CSV, Checker, check_csv_rows

    chunks = [
        [(n, {"email": f"r{n}@example.org", "timezone": "Mars/x" if n % 7 == 0 else "UTC"}) for n in range(k, k + 5)]
        for k in range(2, 40, 5)
    ]
    with Checker(CSV, parallel=True, depth=2) as checker:
        assert checker.helper is not None
        got = [result for chunk in chunks for result in checker.submit(chunk)] + checker.drain()
    assert got == [check_csv_rows(chunk) for chunk in chunks]
    with pytest.raises(RuntimeError, match="checking the file failed"), Checker(CSV, parallel=True, depth=0) as checker:
        checker.submit([("not a line",)])
