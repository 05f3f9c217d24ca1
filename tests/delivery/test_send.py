"""Sending digests for real: a real SMTP server (aiosmtpd) captures every message, which is parsed and
checked against what each subscriber's filters select; then the faults (4xx, 5xx, the server gone
mid-batch, a crashed sender, two senders at once) and "never twice". Both SQLite and PostgreSQL.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest
from digest_helpers import AT, DAY, add_subscriber, expected_picks, matched_lines, shown_papers, with_smtp
from sqlalchemy import event, func, select, update
from support import FaultySmtpServer, subprocess_env

from digest.db import engine_for, session_factory, session_scope
from digest.delivery.batch import MAX_ATTEMPTS, load_batch, send_deliveries
from digest.delivery.ledger import SentRecorder, claim
from digest.delivery.planning import plan
from digest.delivery.run import send_due
from digest.models import Delivery, DeliveryItem, DeliveryStatus, Subscriber, SubscriberState

D = timedelta(days=1)
NO_RETRY = dict(retry_delays=())


@pytest.fixture(params=[False, True], ids=["one command at a time", "PIPELINING"])
def pipelining(request) -> bool:
    """Every SMTP test here runs against a server without and with PIPELINING (RFC 2920): with
    it, a batch sends each message's end and the next envelope in one write."""
    return request.param


@pytest.fixture
def world(session, make_paper) -> dict[str, Subscriber]:
    """Papers of Nov 26-30 and subscribers with different filters, all due at AT (Monday 07:00 UTC);
    the subscribers by name."""
    make_paper("2611.00001", "Video diffusion at scale", upvotes=90, org_name="acme", session=session)
    make_paper("2611.00002", "Agents for science", upvotes=70, session=session)
    make_paper("2611.00003", "Robot agents in the wild", upvotes=60, session=session)
    make_paper("2611.00004", "Small models reason too", upvotes=40, authors=["Grace Hopper"], session=session)
    make_paper("2611.00005", "Sparse video diffusion", upvotes=40, abstract="Faster video diffusion.", session=session)
    make_paper("2611.00006", "Video diffusion last week", day=DAY - 3 * D, upvotes=200, session=session)
    make_paper("2611.00007", "Video diffusion today", day=DAY + D, upvotes=300, session=session)  # Nov 30 has not ended
    people = {
        "alice": add_subscriber(session, "alice@example.org", ['"video diffusion"']),
        "bob": add_subscriber(session, "bob@example.org", ["agents -robot", "author:hopper"]),
        "carol": add_subscriber(session, "carol@example.org"),  # no filters: everything
        "dave": add_subscriber(session, "dave@example.org", ["quantum"]),  # nothing matches
        "erin": add_subscriber(session, "erin@example.org", ["video"], frequency="weekly"),
        "frank": add_subscriber(session, "frank@example.org", state=SubscriberState.unsubscribed, due=None),
        "gina": add_subscriber(session, "gina@example.org", state=SubscriberState.pending, due=None),
        "hal": add_subscriber(session, "hal@example.org", ["video"], due=AT + timedelta(hours=1)),  # not yet due
    }
    session.commit()
    return people


def rows(session, **where) -> list[Delivery]:
    session.expire_all()
    return list(session.scalars(select(Delivery).filter_by(**where).order_by(Delivery.id)))


# ---------------------------------------------------------------- the normal run


def test_each_subscriber_gets_exactly_what_their_filters_select(session, mail_settings, smtp_server, world):
    expected = {
        name: expected_picks(session, world[name], start, DAY)
        for name, start in [("alice", DAY), ("bob", DAY), ("carol", DAY), ("dave", DAY), ("erin", DAY - 6 * D)]
    }
    assert [a for a, _ in expected["alice"]] == ["2611.00001", "2611.00005"]
    assert expected["bob"] == [("2611.00002", "agents -robot"), ("2611.00004", "author:hopper")]
    assert expected["dave"] == []

    report = send_due(mail_settings, AT, **NO_RETRY)

    assert (report.sent, report.skipped, report.failed, report.deferred) == (4, 1, 0, [])
    assert sorted(r for c in smtp_server.captured for r in c.rcpt_tos) == sorted(
        f"{n}@example.org" for n in ("alice", "bob", "carol", "erin")
    )
    for name, picks in expected.items():
        messages = smtp_server.to(f"{name}@example.org")
        if not picks:
            assert messages == []
            continue
        (msg,) = messages
        assert shown_papers(msg) == [arxiv_id for arxiv_id, _ in picks]
        assert matched_lines(msg) == [m or "all trending papers" for _, m in picks]
        assert msg["To"] == f"{name}@example.org"
        assert msg["List-Unsubscribe"].startswith("<https://digest.example.org/unsubscribe/")
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["Subject"].startswith(f"{len(picks)} trending paper")

    by_email = {r.subscriber.email: r for r in rows(session)}
    assert set(by_email) == {f"{n}@example.org" for n in ("alice", "bob", "carol", "dave", "erin")}
    assert by_email["dave@example.org"].status == DeliveryStatus.skipped
    alice = by_email["alice@example.org"]
    assert alice.status == DeliveryStatus.sent and alice.paper_count == 2 and alice.period == "2026-11-30"
    assert f"<{alice.message_id}>" == smtp_server.to("alice@example.org")[0]["Message-ID"]
    assert [(i.paper.arxiv_id, i.matched_filter) for i in alice.items] == expected["alice"]
    assert by_email["erin@example.org"].period == "2026-W49"
    session.expire_all()
    assert world["alice"].next_due_at == AT + D
    assert world["erin"].next_due_at == AT + 7 * D
    assert world["hal"].next_due_at == AT + timedelta(hours=1)


def test_sending_again_sends_nothing_and_the_next_days_never_repeat_a_paper(session, mail_settings, smtp_server, world, make_paper):
    send_due(mail_settings, AT, **NO_RETRY)
    first = len(smtp_server.captured)

    again = send_due(mail_settings, AT, **NO_RETRY)
    assert (again.sent, len(smtp_server.captured)) == (0, first)

    make_paper("2611.00008", "Agents that plan video diffusion", day=DAY + D, upvotes=5, session=session)
    session.commit()
    next_day = send_due(mail_settings, AT + D, **NO_RETRY)
    assert (next_day.sent, next_day.skipped) == (4, 1)  # alice, bob, carol, hal (first); dave; erin is weekly
    (alice_2,) = smtp_server.to("alice@example.org")[1:]
    assert shown_papers(alice_2) == ["2611.00007", "2611.00008"]  # only Nov 30's papers

    quiet = send_due(mail_settings, AT + 2 * D, **NO_RETRY)  # no papers on Dec 1
    assert quiet.sent == 0 and quiet.skipped == 5

    for address in {r for c in smtp_server.captured for r in c.rcpt_tos}:
        shown = [a for msg in smtp_server.to(address) for a in shown_papers(msg)]
        assert len(shown) == len(set(shown)), f"{address} got a paper twice"
    per_subscriber = session.execute(
        select(DeliveryItem.subscriber_id, DeliveryItem.paper_id, func.count())
        .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
        .where(Delivery.status == DeliveryStatus.sent)
        .group_by(DeliveryItem.subscriber_id, DeliveryItem.paper_id)
    ).all()
    assert all(count == 1 for *_, count in per_subscriber)


def test_dry_run_says_who_gets_what_and_writes_nothing(session, mail_settings, smtp_server, world):
    report = send_due(mail_settings, AT, dry_run=True)
    previews = {p.email: p for p in report.previews}
    assert set(previews) == {f"{n}@example.org" for n in ("alice", "bob", "carol", "dave", "erin")}
    assert previews["bob@example.org"].papers == [
        ("Agents for science", "agents -robot"),
        ("Small models reason too", "author:hopper"),
    ]
    assert previews["dave@example.org"].papers == []
    assert report.line().startswith("dry run: 4 digests would be sent, 1 skipped")
    assert rows(session) == [] and smtp_server.captured == []
    assert world["alice"].next_due_at == AT


def test_nothing_new_means_no_email_and_a_skipped_row(session, mail_settings, smtp_server):
    add_subscriber(session, "alice@example.org", ["video"])
    session.commit()
    report = send_due(mail_settings, AT, **NO_RETRY)
    assert (report.sent, report.skipped) == (0, 1) and smtp_server.captured == []
    (row,) = rows(session)
    assert row.status == DeliveryStatus.skipped and row.items == []


def test_someone_who_unsubscribed_after_planning_gets_nothing(session, mail_settings, smtp_server, make_paper):
    make_paper("2611.00001", "Video", upvotes=3, session=session)
    alice = add_subscriber(session, "alice@example.org")
    session.commit()
    with session_scope(mail_settings) as s:
        ids = plan(s, mail_settings, AT)
    session.execute(update(Subscriber).values(state=SubscriberState.unsubscribed))
    session.commit()
    report = send_deliveries(mail_settings, ids, datetime.now(timezone.utc))
    assert report.skipped == 1 and smtp_server.captured == []
    assert rows(session, subscriber_id=alice.id)[0].status == DeliveryStatus.skipped


# ---------------------------------------------------------------- planning


def test_planning_reads_due_subscribers_in_pages_and_twice_makes_one_row_each(session, mail_settings):
    subscribers = [add_subscriber(session, f"s{i}@example.org") for i in range(7)]
    session.commit()
    with session_scope(mail_settings) as s:
        first = plan(s, mail_settings, AT, page_size=2)
    assert len(first) == 7
    session.execute(update(Subscriber).values(next_due_at=AT))  # as if preferences moved the slot back
    session.commit()
    with session_scope(mail_settings) as s:
        second = plan(s, mail_settings, AT, page_size=3)
    assert second == first
    assert len(rows(session)) == 7
    assert {r.subscriber_id for r in rows(session)} == {s.id for s in subscribers}


# ---------------------------------------------------------------- faults


def test_the_sent_log_records_a_row_we_hold_once_and_only_while_we_hold_it(session, mail_settings, make_paper):
    make_paper("2611.00001", "Video", upvotes=3, session=session)
    add_subscriber(session, "alice@example.org")
    session.commit()
    with session_scope(mail_settings) as s:
        (row_id,) = plan(s, mail_settings, AT)
        claim(s, mail_settings, [row_id], datetime.now(timezone.utc))
    sent_at = datetime(2026, 11, 29, 7, 0, 1, tzinfo=timezone.utc)
    with session_scope(mail_settings) as s, SentRecorder(s) as sent_log:
        assert sent_log.record(row_id, "digest.abc@example.org", 4, sent_at) is True
        assert sent_log.record(row_id, "digest.other@example.org", 9, sent_at) is False  # no longer "sending"
    session.expire_all()
    (row,) = rows(session)
    assert (row.status, row.message_id, row.paper_count, row.sent_at, row.error) == (
        DeliveryStatus.sent,
        "digest.abc@example.org",
        4,
        sent_at,
        None,
    )


def test_451_then_250_is_sent_after_a_retry(session, mail_settings, smtp_server, make_paper):
    make_paper("2611.00001", "Video", upvotes=3, session=session)
    add_subscriber(session, "alice@example.org")
    session.commit()
    with session_scope(mail_settings) as s:
        ids = plan(s, mail_settings, AT)
    smtp_server.fail_next.append("451 4.3.0 Try again later")

    first = send_deliveries(mail_settings, ids, datetime.now(timezone.utc))
    assert (first.sent, first.deferred) == (0, ids)
    (row,) = rows(session)
    assert row.status == DeliveryStatus.pending and "451" in row.error

    second = send_deliveries(mail_settings, first.deferred, datetime.now(timezone.utc))
    assert second.sent == 1 and len(smtp_server.captured) == 1
    (row,) = rows(session)
    assert (row.status, row.attempts, row.error) == (DeliveryStatus.sent, 2, None)
    # the items written before the first try neither counted as mailed nor doubled on the second
    assert [item.paper.arxiv_id for item in row.items] == ["2611.00001"] == shown_papers(smtp_server.to("alice@example.org")[0])


def test_recording_sends_leaves_the_pooled_connections_as_it_found_them(pg_settings, smtp_server, make_paper):
    with session_scope(pg_settings) as s:
        make_paper("2611.00001", "Video", upvotes=3, session=s)
        add_subscriber(s, "alice@example.org")
    settings = with_smtp(pg_settings, smtp_server)
    with session_scope(settings) as s:
        ids = plan(s, settings, AT)
    assert send_deliveries(settings, ids, datetime.now(timezone.utc)).sent == 1
    engine = engine_for(settings.database_url)
    held = [engine.connect() for _ in range(engine.pool.size())]  # every pooled connection, the sender's too
    try:
        assert {c.exec_driver_sql("SHOW synchronous_commit").scalar() for c in held} == {"on"}
    finally:
        for c in held:
            c.close()


def test_send_due_retries_a_4xx_with_backoff(session, mail_settings, smtp_server, make_paper):
    make_paper("2611.00001", "Video", upvotes=3, session=session)
    add_subscriber(session, "alice@example.org")
    add_subscriber(session, "bob@example.org")
    session.commit()
    smtp_server.fail_next.append("451 4.3.0 Try again later")
    report = send_due(mail_settings, AT, retry_delays=(0.01,))
    assert (report.sent, report.deferred) == (2, [])
    assert sorted(r for c in smtp_server.captured for r in c.rcpt_tos) == ["alice@example.org", "bob@example.org"]


def test_550_suppresses_that_subscriber_and_the_others_are_still_sent(session, mail_settings, smtp_server, make_paper):
    make_paper("2611.00001", "Video", upvotes=3, session=session)
    for name in ("alice", "bob", "carol"):
        add_subscriber(session, f"{name}@example.org")
    session.commit()
    smtp_server.fail_rcpt["bob@example.org"] = "550 5.1.1 No such user"

    report = send_due(mail_settings, AT, **NO_RETRY)

    assert (report.sent, report.failed, report.suppressed) == (2, 1, 1)
    assert sorted(r for c in smtp_server.captured for r in c.rcpt_tos) == ["alice@example.org", "carol@example.org"]
    bob = session.scalar(select(Subscriber).where(Subscriber.email == "bob@example.org"))
    session.refresh(bob)
    assert bob.state == SubscriberState.suppressed and "550 5.1.1 No such user" in bob.suppressed_reason
    assert bob.next_due_at is None
    (row,) = rows(session, subscriber_id=bob.id)
    assert row.status == DeliveryStatus.failed and "550" in row.error
    assert send_due(mail_settings, AT + D, **NO_RETRY).sent == 0  # not planned again


def test_a_server_that_refuses_our_sender_suppresses_nobody(session, settings, pipelining, make_paper):
    make_paper("2611.00001", "Video", upvotes=3, session=session)
    add_subscriber(session, "alice@example.org")
    session.commit()
    server = FaultySmtpServer(pipelining=pipelining)
    server.refuse_sender = "553 5.7.1 Sender not allowed"
    server.start()
    try:
        report = send_due(with_smtp(settings, server), AT, **NO_RETRY)
    finally:
        server.stop()
    assert (report.sent, report.suppressed, len(report.deferred)) == (0, 0, 1)
    assert session.scalar(select(Subscriber.state)) == SubscriberState.active
    assert rows(session)[0].status == DeliveryStatus.pending


def test_a_4xx_every_time_is_given_up_after_max_attempts(session, mail_settings, smtp_server, make_paper):
    make_paper("2611.00001", "Video", upvotes=3, session=session)
    add_subscriber(session, "alice@example.org")
    session.commit()
    with session_scope(mail_settings) as s:
        ids = plan(s, mail_settings, AT)
    session.execute(update(Delivery).values(attempts=MAX_ATTEMPTS - 1))
    session.commit()
    smtp_server.fail_next.append("452 4.2.2 Mailbox full")
    report = send_deliveries(mail_settings, ids, datetime.now(timezone.utc))
    assert (report.failed, report.deferred) == (1, [])
    (row,) = rows(session)
    assert row.status == DeliveryStatus.failed and "gave up" in row.error
    assert session.scalar(select(Subscriber.state)) == SubscriberState.active


def test_server_gone_mid_batch_sent_stay_sent_rest_pending_next_run_sends_each_once(session, settings, pipelining, make_paper):
    make_paper("2611.00001", "Video", upvotes=3, session=session)
    for i in range(6):
        add_subscriber(session, f"s{i}@example.org")
    session.commit()
    server = FaultySmtpServer(pipelining=pipelining)
    server.hang_after = 2
    server.start()
    out = {}
    fast = with_smtp(settings, server)
    fast = fast.with_(smtp=fast.smtp.__class__(host=server.host, port=server.port, timeout=3))
    sender = threading.Thread(target=lambda: out.setdefault("report", send_due(fast, AT, **NO_RETRY)))
    sender.start()
    assert server.hanging.wait(20), "the server never got its third message"
    server.stop()  # gone, under the third message
    sender.join(60)
    report = out["report"]
    assert report.sent == 2 and len(report.deferred) == 4
    assert Counter(r.status for r in rows(session)) == {DeliveryStatus.sent: 2, DeliveryStatus.pending: 4}
    assert all("SMTP" in r.error for r in rows(session, status=DeliveryStatus.pending))  # why, for the operator

    again = FaultySmtpServer(pipelining=pipelining)
    again.start()
    try:
        retry = send_due(with_smtp(settings, again), AT, **NO_RETRY)
    finally:
        again.stop()
    assert retry.sent == 4
    delivered = [r for c in server.captured + again.captured for r in c.rcpt_tos]
    assert sorted(delivered) == sorted(f"s{i}@example.org" for i in range(6))  # each exactly once
    assert Counter(r.status for r in rows(session)) == {DeliveryStatus.sent: 6}


def test_rows_of_a_crashed_sender_are_taken_over_only_after_the_claim_timeout(session, mail_settings, smtp_server, make_paper):
    make_paper("2611.00001", "Video", upvotes=3, session=session)
    add_subscriber(session, "alice@example.org")
    add_subscriber(session, "bob@example.org")
    session.commit()
    now = datetime.now(timezone.utc)
    with session_factory(mail_settings)() as s:
        ids = plan(s, mail_settings, AT)
        s.commit()
        claim(s, mail_settings, ids[:1], now)  # a live sender holds alice's row
        claim(s, mail_settings, ids[1:], now - timedelta(seconds=mail_settings.claim_timeout + 1))  # bob's died

    report = send_due(mail_settings, AT, **NO_RETRY)
    assert report.sent == 1 and [r for c in smtp_server.captured for r in c.rcpt_tos] == ["bob@example.org"]
    assert [r.status for r in rows(session)] == [DeliveryStatus.sending, DeliveryStatus.sent]


def test_the_same_send_started_twice_at_once_sends_every_digest_once(session, mail_settings, smtp_server, make_paper):
    make_paper("2611.00001", "Video diffusion", upvotes=3, session=session)
    make_paper("2611.00002", "Agents", upvotes=2, session=session)
    people = [add_subscriber(session, f"s{i}@example.org", ["video"] if i % 2 else []) for i in range(30)]
    session.commit()
    start = threading.Barrier(2)
    reports = []

    def run() -> None:
        start.wait()
        reports.append(send_due(mail_settings, AT, **NO_RETRY))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(reports) == 2
    assert sum(r.sent for r in reports) == 30
    delivered = Counter(r for c in smtp_server.captured for r in c.rcpt_tos)
    assert delivered == Counter(p.email for p in people)
    assert len(rows(session)) == 30


def test_two_senders_given_overlapping_batches_send_each_digest_once(session, mail_settings, smtp_server, make_paper):
    make_paper("2611.00001", "Video diffusion", upvotes=3, session=session)
    for i in range(40):
        add_subscriber(session, f"s{i}@example.org")
    session.commit()
    with session_scope(mail_settings) as s:
        ids = plan(s, mail_settings, AT)
    start = threading.Barrier(4)
    reports = []

    def run(batch) -> None:
        start.wait()
        reports.append(send_deliveries(mail_settings, batch, datetime.now(timezone.utc)))

    batches = [ids[:30], ids[10:], ids[::-1], ids]  # a task re-delivered, a reconcile, a second beat…
    threads = [threading.Thread(target=run, args=(b,)) for b in batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert sum(r.sent for r in reports) == 40
    assert Counter(r for c in smtp_server.captured for r in c.rcpt_tos) == Counter(f"s{i}@example.org" for i in range(40))


# ---------------------------------------------------------------- query count


def count_queries(settings, work) -> int:
    engine = engine_for(settings.database_url)
    statements: list[str] = []

    def record(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        work()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    return len(statements)


def test_composing_a_batch_costs_the_same_queries_for_50_or_200_digests(session, mail_settings, make_paper):
    for i in range(60):
        make_paper(f"2611.{i:05d}", f"Paper {i} on {'video' if i % 3 else 'agents'}", day=DAY, upvotes=i, session=session)
    for i in range(200):
        add_subscriber(session, f"s{i}@example.org", ["video", f"paper {i % 7}"] if i % 4 else [])
    session.commit()
    with session_scope(mail_settings) as s:
        ids = plan(s, mail_settings, AT)
    assert len(ids) == 200

    def compose_batch(batch):
        with session_factory(mail_settings)() as s:
            built = load_batch(s, mail_settings, batch)
        assert len(built) == len(batch) and all(o.picks for o in built)

    compose_batch(ids[:10])  # the first batch of a process loads and indexes the window's papers
    small = count_queries(mail_settings, lambda: compose_batch(ids[:50]))
    large = count_queries(mail_settings, lambda: compose_batch(ids))
    assert small == large <= 7  # taste adds two: the batch's profiles, the window vectors' version


# ---------------------------------------------------------------- the command line


def cli(settings, *args: str, **env: str):
    from click.testing import CliRunner

    from digest.cli import main

    return CliRunner().invoke(main, ["send", *args], env=subprocess_env(settings, **env), catch_exceptions=False)


def test_cli_send_with_a_bad_moment_is_a_clear_usage_error(settings):
    result = cli(settings, "--at", "next tuesday")
    assert result.exit_code == 2
    assert "Invalid value for '--at'" in result.output and "expected an ISO-8601 moment" in result.output


def test_cli_dry_run_prints_each_subscriber_with_titles_and_matched_filters(session, settings, smtp_server, world):
    result = cli(settings, "--at", "2026-11-30T08:00:00+01:00", "--dry-run", DIGEST_SMTP_URL=smtp_server.url)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "bob@example.org (2026-11-30, papers of 2026-11-29): 2 papers" in out
    assert " 1. Agents for science  [matched: agents -robot]" in out
    assert " 2. Small models reason too  [matched: author:hopper]" in out
    assert "carol@example.org" in out and "[matched: no filters: all papers]" in out
    assert "dave@example.org (2026-11-30, papers of 2026-11-29): 0 papers" in out
    assert "erin@example.org (2026-W49, papers of 2026-11-23..2026-11-29)" in out
    assert out.rstrip().endswith("dry run: 4 digests would be sent, 1 skipped (nothing new); nothing was sent or written")
    assert smtp_server.captured == [] and rows(session) == []


def test_cli_dry_run_shows_latex_in_titles_as_text_as_the_email_does(session, settings, make_paper):
    make_paper("2611.00011", "D$^2$Quant: Accurate Low-bit Post-Training Weight Quantization for LLMs", upvotes=9, session=session)
    make_paper("2611.00012", r"$\pi_0$: A Vision-Language-Action Flow Model for General Robot Control", upvotes=5, session=session)
    add_subscriber(session, "alice@example.org")
    session.commit()
    result = cli(settings, "--at", "2026-11-30T07:00", "--dry-run")
    assert result.exit_code == 0, result.output
    assert " 1. D²Quant: Accurate Low-bit Post-Training Weight Quantization for LLMs  [matched: " in result.output
    assert " 2. π₀: A Vision-Language-Action Flow Model for General Robot Control  [matched: " in result.output
    assert "$" not in result.output


def test_cli_dry_run_with_nobody_due_says_who_is_due_next_and_when(session, settings):
    nobody = cli(settings, "--at", "2026-11-30T06:59", "--dry-run")
    assert nobody.exit_code == 0, nobody.output
    assert nobody.output.splitlines()[-1] == "next due: nobody (no confirmed subscriber)"

    add_subscriber(session, "ann@example.org", tz="Europe/Berlin", hour=8)  # 08:00 Berlin is AT, 07:00 UTC
    add_subscriber(session, "bob@example.org")
    add_subscriber(session, "cy@example.org", due=AT + timedelta(hours=1))
    add_subscriber(session, "dan@example.org", state=SubscriberState.pending, due=None)
    add_subscriber(session, "eve@example.org", tz="Pacific/Auckland", due=AT + timedelta(hours=11))  # 07:00 on Dec 1 there
    session.commit()
    result = cli(settings, "--at", "2026-11-30T06:59", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "dry run: 0 digests would be sent, 0 skipped (nothing new); nothing was sent or written",
        "next due: ann@example.org at 2026-11-30 07:00 UTC (Europe/Berlin 08:00), 2 subscribers then",
    ]
    later = cli(settings, "--at", "2026-11-30T07:30", "--dry-run")  # ann and bob are due, with nothing new: cy is next
    assert later.output.splitlines()[-2:] == [
        "dry run: 0 digests would be sent, 2 skipped (nothing new); nothing was sent or written",
        "next due: cy@example.org at 2026-11-30 08:00 UTC",
    ]
    last = cli(settings, "--at", "2026-11-30T12:00", "--dry-run")
    assert last.output.splitlines()[-1] == "next due: eve@example.org at 2026-11-30 18:00 UTC (Pacific/Auckland 2026-12-01 07:00)"
    everyone = cli(settings, "--at", "2026-11-30T19:00", "--dry-run")  # all four due, nothing new: not "no confirmed subscriber"
    assert everyone.output.splitlines()[-1] == (
        "next due: no later digest planned for the 4 confirmed subscribers (4 due by then, with nothing new since their last digest)"
    )
    assert rows(session) == []


def test_cli_send_sends_in_process_and_a_second_run_sends_nothing(session, settings, smtp_server, world):
    first = cli(settings, "--at", "2026-11-30T07:00", DIGEST_SMTP_URL=smtp_server.url)
    assert first.exit_code == 0, first.output
    assert "sent 4, skipped 1 (nothing new), failed 0 (0 suppressed), deferred 0" in first.output
    second = cli(settings, "--at", "2026-11-30T07:00", DIGEST_SMTP_URL=smtp_server.url)
    assert "sent 0, skipped 0" in second.output
    assert len(smtp_server.captured) == 4


def test_cli_send_with_a_broker_plans_and_queues_batches_for_the_workers(session, settings, redis_url, world):
    import json
    import subprocess
    import sys

    import redis

    broker = redis_url.rsplit("/", 1)[0] + "/14"  # a database of its own: the queue is inspected
    client = redis.Redis.from_url(broker)
    client.flushdb()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "digest", "send", "--at", "2026-11-30T07:00"],
            env=subprocess_env(settings, DIGEST_BROKER_URL=broker),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        assert "planned 5 digests" in result.stdout and "queued for the workers" in result.stdout
        (raw,) = client.lrange("digest.send", 0, -1)
        task = json.loads(raw)
        assert task["headers"]["task"] == "digest.send_batch"
    finally:
        client.flushdb()
    assert Counter(r.status for r in rows(session)) == {DeliveryStatus.pending: 5}  # the workers send them
