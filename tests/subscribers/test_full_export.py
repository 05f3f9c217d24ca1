"""`digest subscribers export --full` / `import --full` (issue 24): an instance's whole list moved
with what each person agreed to. Exported from one database, imported into a fresh one (SQLite and
PostgreSQL), exported again: the same lines; then a real send there mails only those who were active."""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone

import pytest
from processes import digest_cli
from sqlalchemy import select, text
from support import subprocess_env

from digest.db import session_scope
from digest.delivery.ledger import suppress_subscriber
from digest.matching.profiles import record_vote
from digest.matching.topics import parse_topics
from digest.models import Paper, ReaderProfile, SignupRequest, Subscriber, SubscriberState, Suppression, UnsubscribeMethod, address_hash
from digest.papers.vectors import represent
from digest.subscribers.subscriptions import confirm, confirmation_token, request_subscription, unsubscribe

NOW = datetime.now(timezone.utc)
SEND_AT = datetime.combine(NOW.date() + timedelta(days=9), time(23, 0), timezone.utc)  # every active reader is due by then
ACTIVE = ["ann@example.org", "bob@example.org", "cy@example.org"]
OTHERS = ["pat@example.org", "pia@example.org", "ulla@example.org", "ugo@example.org", "sam@example.org"]


def papers(session, make_paper, *, extra: bool = False, reverse: bool = False) -> dict[str, int]:
    """A paper a day on the 9 days before SEND_AT (their titles match every active reader's filters);
    ``reverse``: stored in the other order, so their ids differ from the first instance's."""
    for k in sorted(range(1, 10), reverse=reverse):
        make_paper(f"2611.{k:05d}", f"Diffusion agents, part {k}", session=session, day=SEND_AT.date() - timedelta(days=k), upvotes=k)
    if extra:
        make_paper("2611.09999", "A paper only the first instance stores", session=session, day=SEND_AT.date() - timedelta(days=20))
    represent(session)
    return dict(session.execute(select(Paper.arxiv_id, Paper.id)).all())


def source_instance(settings, make_paper) -> None:
    """Everyone a list holds: three active readers (preferences, seeds, votes), two who never
    confirmed, one who unsubscribed, one who unsubscribed and signed up again, one refused by
    their server, and one who left and was purged (a hash is all that is left of them)."""
    with session_scope(settings) as s:
        ids = papers(s, make_paper, extra=True)
        day = NOW - timedelta(days=30)

        def joined(email, topics, frequency="daily", tz="UTC", seeds=()):
            sub = request_subscription(s, settings, email, parse_topics(topics), frequency, tz, day, seeds=seeds)
            confirm(s, settings, confirmation_token(s, settings, sub), day + timedelta(minutes=3))
            return sub

        ann = joined("ann@example.org", "diffusion\n-survey", "weekly", "Europe/Berlin", seeds=["2611.00006", "2611.00001"])
        ann.delivery_hour = 9
        record_vote(s, ann.id, ids["2611.00002"], 1, day + timedelta(days=1))
        record_vote(s, ann.id, ids["2611.00003"], -1, day + timedelta(days=2))
        record_vote(s, ann.id, ids["2611.09999"], 1, day + timedelta(days=3))
        joined("bob@example.org", "")
        joined("cy@example.org", "agents\nlike:2611.00004", tz="Asia/Tokyo")
        request_subscription(
            s, settings, "pat@example.org", parse_topics("agents"), "weekly", "UTC", NOW - timedelta(hours=5), seeds=["2611.00005"]
        )
        request_subscription(s, settings, "pia@example.org", [], "daily", "America/New_York", NOW - timedelta(hours=1))
        unsubscribe(s, joined("ulla@example.org", "robots"), NOW - timedelta(days=2), UnsubscribeMethod.one_click)
        unsubscribe(s, joined("ugo@example.org", ""), NOW - timedelta(days=3), UnsubscribeMethod.link)
        request_subscription(s, settings, "ugo@example.org", parse_topics("agents"), "daily", "UTC", NOW - timedelta(hours=2))
        suppress_subscriber(s, joined("sam@example.org", "").id, "550 5.1.1 no such user", remembered="refused")
        unsubscribe(s, joined("purged@example.org", ""), NOW - timedelta(days=10))
    with session_scope(settings) as s:
        s.execute(text("DELETE FROM subscribers WHERE email = 'purged@example.org'"))


def export(settings, path) -> list[dict]:
    result = digest_cli(subprocess_env(settings), "subscribers", "export", "--full", "-o", str(path))
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in path.read_text().splitlines()]


def import_full(settings, path, *flags, smtp=None):
    env = subprocess_env(settings, **({"DIGEST_SMTP_URL": smtp.url} if smtp else {}))
    return digest_cli(env, "subscribers", "import", "--full", *flags, str(path))


@pytest.fixture
def exported(sqlite_database, settings, make_paper, tmp_path):
    """The source instance's export --full (a SQLite database of its own)."""
    source = settings.with_(database_url=sqlite_database("source"))
    source_instance(source, make_paper)
    return export(source, tmp_path / "list.jsonl"), tmp_path / "list.jsonl"


def test_the_export_carries_states_dates_preferences_requests_seeds_votes_and_who_left(exported):
    lines, _ = exported
    header, *rows = lines
    assert header["format"] == "paper-digest subscribers" and header["version"] == 1
    people = {r["email"]: r for r in rows if "email" in r}
    assert {e: p["state"] for e, p in people.items()} == {
        **dict.fromkeys(ACTIVE, "active"),
        "pat@example.org": "pending",
        "pia@example.org": "pending",
        "ulla@example.org": "unsubscribed",
        "ugo@example.org": "unsubscribed",
        "sam@example.org": "suppressed",
    }
    ann = people["ann@example.org"]
    assert (ann["frequency"], ann["timezone"], ann["delivery_hour"], ann["filters"]) == (
        "weekly",
        "Europe/Berlin",
        9,
        ["diffusion", "-survey"],
    )
    assert [s["paper"] for s in ann["seeds"]] == ["2611.00001", "2611.00006"]  # given at once: by arXiv id
    assert [(v["paper"], v["vote"]) for v in ann["votes"]] == [("2611.00002", 1), ("2611.00003", -1), ("2611.09999", 1)]
    assert people["pat@example.org"]["request"]["filters"] == ["agents"] and people["pat@example.org"]["request"]["seeds"] == ["2611.00005"]
    assert (
        people["ulla@example.org"]["unsubscribe_method"] == "one_click"
        and people["ulla@example.org"]["remembered"]["reason"] == "unsubscribed"
    )
    assert people["ugo@example.org"]["request"]["filters"] == ["agents"]  # signed up again: waits for their own confirmation
    assert (
        people["sam@example.org"]["suppressed_reason"] == "550 5.1.1 no such user"
        and people["sam@example.org"]["remembered"]["reason"] == "refused"
    )
    left = [r["left"] for r in rows if "left" in r]
    assert sorted(left) == sorted(address_hash(e) for e in ("ulla@example.org", "ugo@example.org", "sam@example.org", "purged@example.org"))


def test_round_trip_into_a_fresh_instance_then_a_send_mails_only_who_was_active(exported, settings, make_paper, smtp_server, tmp_path):
    lines, path = exported
    with session_scope(settings) as s:
        papers(s, make_paper, reverse=True)  # the same papers (other ids), but not 2611.09999
    result = import_full(settings, path, smtp=smtp_server)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "imported 8 (pending 2, active 3, unsubscribed 2, suppressed 1), already present 0, left before (not re-subscribed) 0, rejected 0",
        "  pending: kept pending, none mailed (--mail-pending mails them a confirmation link)",
        "addresses remembered as ones that left: 1 added, 3 remembered here already",
        "votes and seeds attached 5",
        "  not attached 1: on 1 paper this instance does not store (2611.09999); ingest those days first (digest ingest --days N) to keep them",
    ]
    assert smtp_server.captured == []  # an import mails nobody

    again = export(settings, tmp_path / "again.jsonl")
    ann_vote_elsewhere = {"paper": "2611.09999", "vote": 1}
    expected = [
        {**r, "votes": [v for v in r["votes"] if {k: v[k] for k in ("paper", "vote")} != ann_vote_elsewhere]} if "votes" in r else r
        for r in lines[1:]
    ]
    assert again[1:] == expected  # the same content: public ids, dates, requests, who left; ids are this instance's
    with session_scope(settings) as s:
        ann = s.scalar(select(Subscriber).where(Subscriber.email == "ann@example.org"))
        assert s.get(ReaderProfile, ann.id) is not None  # the votes count: a profile was fitted from them
        assert s.scalar(select(Subscriber.next_due_at).where(Subscriber.email == "ugo@example.org")) is None
        assert {r.subscriber_id for r in s.scalars(select(SignupRequest))} == set(
            s.scalars(select(Subscriber.id).where(Subscriber.email.in_(["pat@example.org", "pia@example.org", "ugo@example.org"])))
        )

    dry = digest_cli(subprocess_env(settings), "send", "--dry-run", "--at", SEND_AT.isoformat())
    assert dry.returncode == 0, dry.stderr
    listed = {line.split(" ")[0] for line in dry.stdout.splitlines() if "@" in line.split(" ")[0]}
    assert listed == set(ACTIVE)

    sent = digest_cli(subprocess_env(settings, DIGEST_SMTP_URL=smtp_server.url), "send", "--at", SEND_AT.isoformat())
    assert sent.returncode == 0, sent.stderr
    assert sorted(r for c in smtp_server.captured for r in c.rcpt_tos) == ACTIVE
    assert any(line.startswith("send: 3 of 3 digests (100 %), ") for line in sent.stderr.splitlines()), sent.stderr  # plain progress


def test_an_import_never_brings_back_who_left_here_whatever_the_file_says(exported, settings, smtp_server):
    _, path = exported
    with session_scope(settings) as s:  # here, bob unsubscribed long ago and his row was purged; ulla is active here
        s.add(Suppression(address_hash=address_hash("bob@example.org"), reason="unsubscribed"))
        s.add(Subscriber(email="ulla@example.org", state=SubscriberState.active, created_at=NOW, confirmed_at=NOW))
    result = import_full(settings, path, smtp=smtp_server)
    assert result.stdout.startswith(
        "imported 6 (pending 2, active 2, unsubscribed 1, suppressed 1), already present 1, left before (not re-subscribed) 1, rejected 0"
    )
    with session_scope(settings) as s:
        st = dict(s.execute(select(Subscriber.email, Subscriber.state)).all())
    assert "bob@example.org" not in st and st["ulla@example.org"] == SubscriberState.active  # untouched either way


def test_mail_pending_mails_the_pending_a_new_confirmation_link_and_nobody_else(exported, settings, smtp_server):
    _, path = exported
    result = import_full(settings, path, "--mail-pending", smtp=smtp_server)
    assert result.returncode == 0, result.stderr
    assert "pending: kept pending, each mailed a confirmation link" in result.stdout
    assert result.stdout.splitlines()[-1] == "confirmation emails: 2 sent"
    assert sorted(r for c in smtp_server.captured for r in c.rcpt_tos) == ["pat@example.org", "pia@example.org"]
    with session_scope(settings) as s:
        pat = s.scalar(select(Subscriber).where(Subscriber.email == "pat@example.org"))
        assert pat.state == SubscriberState.pending and s.get(SignupRequest, pat.id).requested_at > NOW


def test_fields_it_does_not_apply_are_listed_and_a_bad_line_keeps_its_opt_out(settings, smtp_server, tmp_path):
    lines = [
        {"format": "paper-digest subscribers", "version": 1, "exported_at": NOW.isoformat()},
        {"email": "ann@example.org", "state": "active", "nickname": "Ann", "request": None},
        {"email": "bo@example.org", "state": "pending", "request": {"filters": ["agents"], "colour": "blue"}},
        {"email": "gone@example.org", "state": "unsubscribed", "timezone": "Mars/Olympus"},  # bad, but they left: remembered
        {"email": "cy@example.org", "state": "active", "delivery_hour": 25},
        {"left": "not a hash"},
        {"left": address_hash("purged@example.org"), "reason": "unsubscribed", "at": NOW.isoformat(), "by": "x"},
    ]
    path = tmp_path / "list.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines) + "\nnot json\n" + json.dumps({"email": "x" * 2_000_000}) + "\n")
    result = import_full(settings, path, smtp=smtp_server)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.splitlines() == [
        "imported 2 (pending 1, active 1, unsubscribed 0, suppressed 0), already present 0, left before (not re-subscribed) 0, rejected 5",
        "  pending: kept pending, none mailed (--mail-pending mails them a confirmation link)",
        "addresses remembered as ones that left: 1 added, 0 remembered here already, 1 more from lines rejected below",
        "votes and seeds attached 0",
        "fields not applied: nickname (on 1 line), request.colour (on 1 line), by (on 1 line)",
        "  line 4: unknown time zone 'Mars/Olympus'",
        "  line 5: delivery hour must be 0-23, got 25",
        "  line 6: left: not the SHA-256 of an address: 'not a hash'",
        "  line 8: not JSON (Expecting value: line 1 column 1 (char 0))",
        f"  line 9: longer than {1 << 20:,} characters",
    ]
    with session_scope(settings) as s:
        remembered = set(s.scalars(select(Suppression.address_hash)))
    assert remembered == {address_hash("gone@example.org"), address_hash("purged@example.org")}
    assert smtp_server.captured == []


def test_a_file_that_is_not_an_export_is_refused_in_one_line(settings, tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("email,topics\nann@example.org,agents\n")
    result = import_full(settings, path)
    assert result.returncode == 1 and result.stderr.strip().splitlines()[-1].startswith(f"error: {path}: line 1: not a file")
    both = digest_cli(subprocess_env(settings), "subscribers", "import", "--full", "--confirmed", str(path))
    assert both.returncode == 2 and "--full keeps each row's own state" in both.stderr


def test_the_checking_helper_process_gives_the_same_import(exported, settings, make_paper):
    from digest.db import session_factory
    from digest.subscribers.full import import_full as import_full_here

    _, path = exported
    with session_factory(settings)() as session, path.open(encoding="utf-8") as f:
        report = import_full_here(session, f, NOW, commit_every=2, parallel=True)
    assert report.lines()[0] == (
        "imported 8 (pending 2, active 3, unsubscribed 2, suppressed 1), already present 0, left before (not re-subscribed) 0, rejected 0"
    )
    assert report.remembered_added == 1 and report.missing == 6  # no paper is stored here: none of the 6 votes and seeds attach
