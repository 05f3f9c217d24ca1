"""The console's charts and tables (digest.web.admin.charts), on SQLite and PostgreSQL, from data made
through the real code paths: sign-ups, confirmations and unsubscribes by the subscription functions,
bounces and complaints through digest.bounces.events.record, sends through digest.delivery.run with
aiosmtpd, votes through the taste's record_vote, an ingest through the ingest. Each chart's rows are
checked against counts computed here, independently, from the tables or from what the test did; each
drawing parses as XML and has one bar or point per row.
"""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path

import pytest
from defusedxml import ElementTree
from digest_helpers import AT, DAY, add_subscriber
from flask import render_template
from sqlalchemy import select

from digest.bounces.events import Event, record
from digest.delivery.ledger import claim, postpone
from digest.delivery.planning import plan
from digest.delivery.run import send_due
from digest.matching.profiles import record_vote
from digest.matching.topics import parse_topics
from digest.matching.trending import rank_key
from digest.models import (
    Delivery,
    DeliveryItem,
    DeliveryStatus,
    EventKind,
    IngestRun,
    MailEvent,
    Paper,
    ReaderProfile,
    Subscriber,
    SubscriberState,
    TopicFilter,
    UnsubscribeMethod,
    Vote,
    VoteSource,
)
from digest.papers.ingest import ingest_file
from digest.papers.vectors import represent
from digest.subscribers.subscriptions import confirm, confirmation_token, request_subscription, unsubscribe
from digest.web.admin import series
from digest.web.admin.charts import Chart, dashboard_charts, dashboard_tables
from digest.web.admin.svg import nice_ticks

UTC = timezone.utc
SVG = "{http://www.w3.org/2000/svg}"
DATA = Path(__file__).parent.parent / "data"


def utcnow() -> datetime:
    return datetime.now(UTC)


def charts_by_id(session, settings, now=None) -> dict[str, Chart]:
    charts = dashboard_charts(session, settings, now or utcnow())
    assert len({c.id for c in charts}) == len(charts)
    return {c.id: c for c in charts}


def body(chart: Chart) -> dict[str, tuple]:
    """A chart's data rows by their first cell (its day, run or minute)."""
    return {row[0]: row[1:] for row in chart.rows[1:]}


def check_drawn(chart: Chart) -> None:
    """The SVG parses, is an image with a title, and has one bar group or point group per data row."""
    root = ElementTree.fromstring(str(chart.svg))
    assert root.tag == f"{SVG}svg" and root.get("role") == "img"
    assert root.find(f"{SVG}title").text == chart.title
    assert root.get("aria-labelledby") == f"chart-{chart.id}-title chart-{chart.id}-desc"
    datums = [g for g in root.iter(f"{SVG}g") if g.get("class") == "datum"]
    assert len(datums) == len(chart.rows) - 1
    assert all(g.find(f"{SVG}title") is not None for g in datums)
    assert not [e for e in root.iter() if e.tag.endswith("script") or e.tag.endswith("style") or e.get("style")]
    assert "http" not in str(chart.svg).replace("http://www.w3.org/2000/svg", "")  # nothing external
    assert chart.caption and "\n" not in chart.caption


def noon(days_ago: int, today: date) -> datetime:
    return datetime.combine(today - timedelta(days=days_ago), time(12, 0), tzinfo=UTC)


# ---------------------------------------------------------------- subscribers


def sign_up(session, settings, email: str, at: datetime) -> Subscriber:
    subscriber = request_subscription(session, settings, email, parse_topics("diffusion"), "daily", "UTC", at)
    session.commit()
    assert subscriber is not None
    return subscriber


def confirmed(session, settings, subscriber: Subscriber, at: datetime) -> None:
    confirm(session, settings, confirmation_token(session, settings, subscriber), at)
    session.commit()


def test_subscribers_by_state_and_signups_confirmations_unsubscribes_by_method(session, settings):
    now = utcnow()
    today = now.date()
    t = lambda days_ago: noon(days_ago, today)  # noqa: E731
    # (email, signed up, confirmed, left, how), days ago; what each is now follows from it
    plan_ = [
        ("ann@example.org", 40, 40, None, None),  # before the window: active throughout
        ("bob@example.org", 10, 9, 5, UnsubscribeMethod.one_click),
        ("cat@example.org", 10, 8, 2, UnsubscribeMethod.link),
        ("dan@example.org", 3, None, None, None),  # never confirms
        ("eve@example.org", 7, 7, 1, "complaint"),
        ("fay@example.org", 6, 6, 4, "bounce"),
        ("gus@example.org", 5, 5, 3, None),  # left, method not recorded: "unknown"
        ("hal@example.org", 20, 20, 0, UnsubscribeMethod.one_click),
    ]
    for email, signed, confirmed_ago, left, how in plan_:
        subscriber = sign_up(session, settings, email, t(signed))
        if confirmed_ago is not None:
            confirmed(session, settings, subscriber, t(confirmed_ago))
        if left is None:
            continue
        if how == "complaint":
            assert record(session, Event(EventKind.complaint, t(left), f"c-{email}", address=email)).value == "unsubscribed"
        elif how == "bounce":
            bounce = Event(EventKind.hard, t(left), f"h-{email}", address=email, diagnostic="550 5.1.1 no such user")
            assert record(session, bounce).value == "suppressed"
        else:
            unsubscribe(session, session.get(Subscriber, subscriber.id), t(left), how)
        session.commit()
    charts = charts_by_id(session, settings, now)

    def state_on(row, day_ago: int) -> str | None:
        _, signed, confirmed_ago, left, how = row
        if signed < day_ago:
            return None
        if left is not None and left >= day_ago:
            return "suppressed" if how == "bounce" else "unsubscribed"
        if confirmed_ago is not None and confirmed_ago >= day_ago:
            return "active"
        return "pending"

    days = [today - timedelta(days=i) for i in range(series.DAYS - 1, -1, -1)]
    expected = {
        d.isoformat(): tuple(sum(1 for row in plan_ if state_on(row, (today - d).days) == state) for state in series.STATES) for d in days
    }
    assert body(charts["subscribers"]) == expected
    assert charts["subscribers"].rows[0] == ("day", "pending", "active", "unsubscribed", "suppressed")
    assert expected[today.isoformat()] == (1, 1, 5, 1)
    # the same, counted from the table: today's column is the states as they are
    now_states = Counter(s.value for s in session.scalars(select(Subscriber.state)))
    assert expected[today.isoformat()] == tuple(now_states[s] for s in series.STATES)

    rows = list(
        session.execute(
            select(
                Subscriber.created_at, Subscriber.confirmed_at, Subscriber.unsubscribed_at, Subscriber.state, Subscriber.unsubscribe_method
            )
        )
    )
    signups = Counter(created.date() for created, *_ in rows)
    confirmations = Counter(c.date() for _, c, *_ in rows if c is not None)
    unsubscribes = Counter(u.date() for _, _, u, state, _ in rows if state == SubscriberState.unsubscribed)
    one_click = Counter(
        u.date() for _, _, u, state, m in rows if state == SubscriberState.unsubscribed and m == UnsubscribeMethod.one_click
    )
    assert body(charts["signups"]) == {d.isoformat(): (signups[d], confirmations[d], unsubscribes[d], one_click[d]) for d in days}
    assert charts["signups"].caption == "30 days: 7 sign-ups, 6 confirmations, 5 unsubscribes, 2 by one-click (40 %)"

    methods = charts["unsubscribes"].rows[0][1:]
    assert methods == ("one_click", "link", "complaint", "unknown")  # those that occur; one-click always
    by_method = Counter((u.date(), m.value if m else "unknown") for _, _, u, state, m in rows if state == SubscriberState.unsubscribed)
    assert body(charts["unsubscribes"]) == {d.isoformat(): tuple(by_method[d, m] for m in methods) for d in days}
    assert "2 one-click (40 %)" in charts["unsubscribes"].caption

    events = Counter((e.created_at.date(), e.kind.value) for e in session.scalars(select(MailEvent)))
    assert body(charts["bounces"]) == {d.isoformat(): (events[d, "hard"], events[d, "soft"], events[d, "complaint"]) for d in days}
    assert sum(sum(r) for r in body(charts["bounces"]).values()) == 2
    for chart in charts.values():
        check_drawn(chart)


# ---------------------------------------------------------------- a real send

QUANTIZATION = [
    ("Low-bit weight quantization of LLMs", "We quantize the weights of large language models to 4 bits with per-channel scales."),
    ("FP8 training with scaled activations", "Training in 8-bit floating point needs scaling factors for activations and gradients."),
    ("Post-training quantization with rotations", "Random Hadamard rotations spread outliers before rounding to INT4 weights."),
    ("Mixed-precision kernels for quantized inference", "GPU kernels multiply INT4 weights by FP16 activations for quantized LLMs."),
]
DIFFUSION = [
    ("Video diffusion with temporal attention", "A latent video diffusion model adds temporal attention layers to an image denoiser."),
    ("Text-to-video generation at high resolution", "A cascaded diffusion model turns text prompts into high-resolution videos."),
    ("Consistent characters in generated videos", "A video generator keeps a character's identity by conditioning the diffusion denoiser."),
]


def papers_and_readers(session, make_paper):
    """Quantization papers liked yesterday, more upvoted diffusion papers today: a reader who voted
    gets quantization first (the learned order moved it), a reader without votes diffusion."""
    before = DAY - timedelta(days=1)
    liked = [
        make_paper(f"2611.{i:05d}", t, session=session, abstract=a, upvotes=5 - i, day=before) for i, (t, a) in enumerate(QUANTIZATION[:2])
    ]
    (disliked,) = [make_paper("2612.00001", t, session=session, abstract=a, upvotes=5, day=before) for t, a in DIFFUSION[:1]]
    for i, (t, a) in enumerate(QUANTIZATION[2:]):
        make_paper(f"2613.{i:05d}", t, session=session, abstract=a, upvotes=3 - i)
    for i, (t, a) in enumerate(DIFFUSION[1:]):
        make_paper(f"2614.{i:05d}", t, session=session, abstract=a, upvotes=40 - 10 * i)
    represent(session)
    reader = add_subscriber(session, "reader@example.org")
    add_subscriber(session, "plain@example.org", ["video", "quantization"])
    add_subscriber(session, "nothing@example.org", ["zebrafish"])  # nothing matches: skipped
    add_subscriber(session, "refused@example.org")  # 550 at RCPT: failed, suppressed
    add_subscriber(session, "later@example.org")  # 451 at RCPT: deferred
    now = utcnow()
    for hours, paper in enumerate(liked, start=2):
        record_vote(session, reader.id, paper.id, 1, now - timedelta(hours=hours))
    record_vote(session, reader.id, disliked.id, -1, now - timedelta(hours=1))
    session.commit()
    return reader


def expected_moved(session) -> tuple[int, int, int]:
    """(digests sent, of readers with a profile, whose first trending paper is not the first by
    rank_key), from the items in Python."""
    sent = session.scalars(select(Delivery).where(Delivery.status == DeliveryStatus.sent)).all()
    tasted = set(session.scalars(select(ReaderProfile.subscriber_id)))
    with_profile = moved = 0
    for delivery in sent:
        items = [i for i in delivery.items if i.paper.daily_date and delivery.window_start <= i.paper.daily_date <= delivery.window_end]
        if delivery.subscriber_id not in tasted or not items:
            continue
        with_profile += 1
        matched = [i for i in items if i.matched_filter is not None] or items
        moved += min(items, key=lambda i: i.position).paper_id != min(matched, key=lambda i: rank_key(i.paper)).paper_id
    return len(sent), with_profile, moved


def test_a_real_send_is_counted_per_day_per_run_and_per_minute(session, mail_settings, smtp_server, make_paper, app):
    reader = papers_and_readers(session, make_paper)
    smtp_server.fail_rcpt["refused@example.org"] = "550 5.1.1 no such user"
    smtp_server.fail_rcpt["later@example.org"] = "451 4.3.0 try later"
    report = send_due(mail_settings, AT, retry_delays=())
    assert (report.sent, report.skipped, report.failed, len(report.deferred)) == (2, 1, 1, 1)
    session.expire_all()
    charts = charts_by_id(session, mail_settings)
    tables = {t.id: t for t in dashboard_tables(session, mail_settings, utcnow())}

    deliveries = session.scalars(select(Delivery)).all()
    by_day = Counter()
    for d in deliveries:
        outcome = "deferred" if d.status == DeliveryStatus.pending and d.error else d.status.value
        by_day[(d.sent_at or d.claimed_at).date(), outcome] += 1
    days = body(charts["deliveries"])
    assert days == {day: tuple(by_day[date.fromisoformat(day), o] for o in series.OUTCOMES) for day in days}
    assert sum(sum(v) for v in days.values()) == 5

    (run,) = charts["runs"].rows[1:]
    assert run[1:5] == (2, 1, 1, 1)
    started = min(d.claimed_at for d in deliveries if d.claimed_at)
    ended = max(d.sent_at or d.claimed_at for d in deliveries if d.claimed_at)
    assert run[0] == started.strftime("%Y-%m-%d %H:%M:%S") and run[5] == round((ended - started).total_seconds(), 1)
    minutes = body(charts["send-rate"])
    sent_minutes = Counter(d.sent_at.strftime("%Y-%m-%d %H:%M") for d in deliveries if d.sent_at)
    assert {m: n for m, (n,) in minutes.items() if n} == dict(sent_minutes)
    assert charts["send-rate"].caption.startswith("last run: 2 sent in ") and charts["send-rate"].caption.endswith("/s")

    sent, tasted, moved = expected_moved(session)
    assert (sent, tasted, moved) == (2, 1, 1)  # the reader who voted: moved; the one without votes: trending order
    today = [row for row in charts["learned-order"].rows[1:] if row[1]]
    assert [row[1:] for row in today] == [(2, 1, 1, 1, 50.0)]
    assert "estimated" not in charts["learned-order"].caption
    halved = series.learned_order(session, series.Window.ending(utcnow()), sample=0.5)  # 1 in 2 readers: ids even
    assert halved.every == 2 and sum(n for n, _ in halved.days.values()) == (1 if reader.id % 2 == 0 else 0)
    first = select(Paper.arxiv_id).join(DeliveryItem, DeliveryItem.paper_id == Paper.id).where(DeliveryItem.position == 0)
    assert session.scalar(first.where(DeliveryItem.subscriber_id == reader.id)).startswith("2613")  # like the liked ones, less upvoted

    votes = Counter(
        (v.created_at.date(), "more" if v.vote > 0 else "less") for v in session.scalars(select(Vote).where(Vote.source == VoteSource.vote))
    )
    assert body(charts["votes"]) == {
        day: (votes[date.fromisoformat(day), "more"], votes[date.fromisoformat(day), "less"]) for day in body(charts["votes"])
    }
    assert sum(sum(v) for v in body(charts["votes"]).values()) == 3

    items = session.execute(
        select(DeliveryItem.paper_id).join(Delivery, Delivery.id == DeliveryItem.delivery_id).where(Delivery.status == DeliveryStatus.sent)
    ).scalars()
    most = Counter(items)
    arxiv = dict(session.execute(select(Paper.id, Paper.arxiv_id)).all())
    expected = [(arxiv[p], n) for p, n in sorted(most.items(), key=lambda kv: (-kv[1], kv[0]))[:10]]
    assert [(row[1], row[4]) for row in tables["most-sent"].rows[1:]] == expected
    held = Counter(
        session.scalars(
            select(TopicFilter.text)
            .join(Subscriber, Subscriber.id == TopicFilter.subscriber_id)
            .where(Subscriber.state == SubscriberState.active)
        )
    )
    assert dict(tables["top-filters"].rows[1:]) == dict(held)
    assert tables["queue"].rows[1][1] == 1  # the deferred row, pending again: ready for the next run

    for chart in charts.values():
        check_drawn(chart)
    with app.test_request_context():
        html = render_template("admin/_charts.html", charts=list(charts.values()), tables=list(tables.values()))
    for chart_id in charts:
        assert f'<figure class="chart-figure" id="chart-{chart_id}">' in html
    assert html.count("<figcaption>") == len(charts) and html.count("<details>") == len(charts)
    assert "<script" not in html and " style=" not in html
    assert 'id="table-queue"' in html and "Papers sent most" in html


def test_two_sends_an_hour_apart_are_two_runs(session, mail_settings, smtp_server, make_paper):
    make_paper("2611.00001", "Video diffusion", session=session, upvotes=9)
    make_paper("2611.00002", "Image diffusion", session=session, upvotes=5)
    add_subscriber(session, "ann@example.org")
    session.commit()
    assert send_due(mail_settings, AT, retry_delays=()).sent == 1
    shifted = timedelta(hours=1)
    for delivery in session.scalars(select(Delivery)):  # that run was an hour earlier
        delivery.sent_at, delivery.claimed_at = delivery.sent_at - shifted, delivery.claimed_at - shifted
    add_subscriber(session, "bob@example.org")
    add_subscriber(session, "cat@example.org", ["zebrafish"])
    session.commit()
    assert send_due(mail_settings, AT, retry_delays=()).sent == 1
    charts = charts_by_id(session, mail_settings)
    runs = charts["runs"].rows[1:]
    assert [r[1:5] for r in runs] == [(1, 0, 0, 0), (1, 1, 0, 0)]
    first, second = sorted(session.scalars(select(Delivery.claimed_at).where(Delivery.claimed_at.is_not(None))))[:2]
    assert runs[0][0] == first.strftime("%Y-%m-%d %H:%M:%S")
    assert charts["runs"].caption.startswith("2 runs in 30 days")
    assert sum(n for (n,) in body(charts["send-rate"]).values()) == 1  # the last run only
    check_drawn(charts["runs"])
    most = {t.id: t for t in dashboard_tables(session, mail_settings, utcnow())}["most-sent"]
    assert [(row[1], row[4]) for row in most.rows[1:]] == [("2611.00001", 1), ("2611.00002", 1)]  # bob's digest: the last run
    assert most.title == "Papers sent most in the last run" and most.note.startswith("In the 1 digests of the run")


def bucket(minute: int, outcome: str = "sent", n: int = 1) -> series.MinuteBucket:
    moment = series.minute_of(minute)
    return series.MinuteBucket(minute, outcome, n, moment, moment + timedelta(seconds=30))


def test_runs_split_on_more_quiet_minutes_than_the_gap():
    gap = series.RUN_GAP_MINUTES
    at = 29_000_000
    runs = series.detect_runs([bucket(at), bucket(at + 1, "skipped"), bucket(at + 1 + gap + 1), bucket(at + 1 + gap + 1 + gap + 2, n=3)])
    assert [(r.first_minute - at, r.last_minute - at) for r in runs] == [(0, gap + 2), (2 * gap + 4, 2 * gap + 4)]
    assert runs[0].counts == Counter(sent=2, skipped=1) and runs[1].counts == Counter(sent=3)
    assert runs[0].minutes()[1] == (series.minute_of(at + 1), 0) and len(runs[0].minutes()) == gap + 3
    assert runs[1].duration == timedelta(seconds=30) and runs[1].rate == pytest.approx(0.1)
    assert series.detect_runs([]) == []


def test_nice_ticks():
    assert nice_ticks(0) == [0, 1]
    assert nice_ticks(3) == [0, 1, 2, 3]
    assert nice_ticks(7) == [0, 2, 4, 6, 8]
    assert nice_ticks(12_340) == [0, 5000, 10000, 15000]


# ---------------------------------------------------------------- the queue and the ingests


def test_queue_depth_follows_the_claimable_rule(session, settings, make_paper):
    make_paper("2611.00001", "Video diffusion", session=session, upvotes=9)
    for i in range(5):
        add_subscriber(session, f"r{i}@example.org")
    session.commit()
    ids = sorted(plan(session, settings, AT))
    session.commit()
    now = utcnow()
    claim(session, settings, ids[:1], now - timedelta(seconds=settings.claim_timeout + 60))  # a sender that died: stuck
    claim(session, settings, ids[1:2], now)  # being sent
    claim(session, settings, ids[2:3], now)
    postpone(session, ids[2:3], now + timedelta(hours=1), "domain out of room")  # waiting for its domain
    session.expire_all()
    rows = session.scalars(select(Delivery)).all()
    cutoff = now - timedelta(seconds=settings.claim_timeout)
    expected = (
        sum(1 for d in rows if d.status == DeliveryStatus.pending and (d.not_before is None or d.not_before <= now)),
        sum(1 for d in rows if d.status == DeliveryStatus.pending and d.not_before is not None and d.not_before > now),
        sum(1 for d in rows if d.status == DeliveryStatus.sending and d.claimed_at >= cutoff),
        sum(1 for d in rows if d.status == DeliveryStatus.sending and d.claimed_at < cutoff),
    )
    assert expected == (2, 1, 1, 1)
    queue = {t.id: t for t in dashboard_tables(session, settings, now)}["queue"]
    assert tuple(row[1] for row in queue.rows[1:]) == expected
    stuck = min(d.claimed_at for d in rows if d.status == DeliveryStatus.sending and d.claimed_at < cutoff)
    assert queue.rows[4][2] == stuck.strftime("%Y-%m-%d %H:%M:%S UTC")


def test_ingest_runs_are_drawn_and_listed_with_their_counts(session, settings):
    ingest_file(settings, DATA / "daily_papers_2025-09-08.json")
    ingest_file(settings, DATA / "daily_papers_2025-09-08.json")
    runs = session.scalars(select(IngestRun).order_by(IngestRun.id)).all()
    assert len(runs) == 2
    charts = charts_by_id(session, settings)
    expected = [(r.fetched, r.new, r.updated, r.fetched - r.new - r.updated - r.skipped, r.skipped) for r in runs]
    assert [row[2:] for row in charts["ingests"].rows[1:]] == expected
    assert expected[0][1] > 0 and expected[1][1] == 0  # the second found them all stored
    table = {t.id: t for t in dashboard_tables(session, settings, utcnow())}["ingests"]
    assert [row[3:7] for row in table.rows[1:]] == [(r.fetched, r.new, r.updated, r.skipped) for r in reversed(runs)]
    check_drawn(charts["ingests"])


def test_an_empty_database_draws_every_chart(session, settings):
    charts = dashboard_charts(session, settings, utcnow())
    assert [c.id for c in charts] == [
        "subscribers",
        "signups",
        "unsubscribes",
        "deliveries",
        "runs",
        "send-rate",
        "bounces",
        "votes",
        "learned-order",
        "ingests",
    ]
    for chart in charts:
        check_drawn(chart)
    assert all(len(t.rows) >= 1 for t in dashboard_tables(session, settings, utcnow()))
