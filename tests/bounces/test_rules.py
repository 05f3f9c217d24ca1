"""The state machine, with explicit times: a hard bounce suppresses; a complaint unsubscribes; more
than 5 soft bounces in 30 days with no successful delivery between them suppress, fewer or broken
by a delivery do not; auto-replies and forged reports change nothing; a report is stored once.
Through ``record``, the one entry point every intake uses, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest
from digest_helpers import add_subscriber
from sqlalchemy import func, select

from digest.bounces.events import Event, Outcome, record
from digest.bounces.rules import too_many_soft
from digest.models import Delivery, DeliveryStatus, EventKind, MailEvent, Subscriber, SubscriberState, Suppression, address_hash

UTC = timezone.utc
START = datetime(2026, 10, 1, 7, 0, tzinfo=UTC)
D = timedelta(days=1)


# ---------------------------------------------------------------- the rule itself


def test_six_soft_bounces_in_thirty_days_with_nothing_between_are_too_many_five_are_not():
    softs = [START + i * D for i in range(6)]
    now = START + 6 * D
    assert not too_many_soft(softs[:5], [], now=now)
    assert too_many_soft(softs, [], now=now)
    assert not too_many_soft(softs, [START + 2.5 * D], now=now)  # a delivery between the 3rd and 4th: 3 and 3
    assert too_many_soft(softs, [START - D, START + 7 * D], now=now + 2 * D)  # deliveries before and after do not break it
    assert not too_many_soft(softs, [], now=START + 31 * D)  # the first fell out of the 30 days
    weekly = [START + 7 * i * D for i in range(7)]
    assert not too_many_soft(weekly, [], now=weekly[-1])  # at most 5 of them in any 30 days


# ---------------------------------------------------------------- through record()


def sent_digests(session, subscriber: Subscriber, count: int, every: timedelta = D) -> list[Delivery]:
    """``count`` digests sent to ``subscriber`` at START, START + every, …"""
    rows = [
        Delivery(
            subscriber_id=subscriber.id,
            period=f"p{i}",
            scheduled_for=START + i * every,
            window_start=date(2026, 10, 1),
            window_end=date(2026, 10, 1),
            status=DeliveryStatus.sent,
            sent_at=START + i * every,
            paper_count=3,
        )
        for i in range(count)
    ]
    session.add_all(rows)
    session.commit()
    return rows


def report(kind: EventKind, digest: Delivery | None, at: datetime, key: str | None = None, **fields) -> Event:
    delivery = digest.public_id if digest is not None else None
    return Event(
        kind,
        at,
        key or f"{kind.value}:{delivery}:{at.isoformat()}",
        diagnostic=fields.pop("diagnostic", "4.2.2 mailbox full"),
        delivery=delivery,
        **fields,
    )


def fresh(session, subscriber: Subscriber) -> Subscriber:
    """The subscriber's row as the database has it now."""
    session.expire_all()
    return session.get(Subscriber, subscriber.id)


def state(session, subscriber: Subscriber) -> SubscriberState:
    return fresh(session, subscriber).state


@pytest.fixture
def ann(session) -> Subscriber:
    subscriber = add_subscriber(session, "ann@example.org", ["video"])
    session.commit()
    return subscriber


def test_the_sixth_soft_bounce_of_daily_digests_in_a_row_suppresses_even_when_each_report_comes_a_day_late(session, ann):
    digests = sent_digests(session, ann, 7)
    for i in range(5):  # each report arrives after the next digest went out
        assert record(session, report(EventKind.soft, digests[i], START + (i + 1) * D + timedelta(hours=2))) is Outcome.transient
        session.commit()
        assert state(session, ann) is SubscriberState.active
    assert record(session, report(EventKind.soft, digests[5], START + 6 * D + timedelta(hours=2))) is Outcome.suppressed
    session.commit()
    row = fresh(session, ann)
    assert row.state is SubscriberState.suppressed and row.next_due_at is None
    assert row.suppressed_reason == "more than 5 soft bounces in 30 days: 4.2.2 mailbox full"
    assert session.get(Suppression, address_hash("ann@example.org")).reason == "bounced"


def test_a_successful_delivery_between_soft_bounces_starts_the_count_again(session, ann):
    digests = sent_digests(session, ann, 7)
    for i in [0, 1, 2, 4, 5, 6]:  # the 4th digest was delivered: no report about it
        assert record(session, report(EventKind.soft, digests[i], START + i * D + timedelta(hours=1))) is Outcome.transient
    session.commit()
    assert state(session, ann) is SubscriberState.active


def test_a_soft_bounce_after_a_successful_delivery_is_transient(session, ann):
    digests = sent_digests(session, ann, 2)
    assert record(session, report(EventKind.soft, digests[1], START + D + timedelta(hours=1))) is Outcome.transient
    session.commit()
    assert state(session, ann) is SubscriberState.active
    assert session.scalar(select(func.count()).select_from(MailEvent).where(MailEvent.kind == EventKind.soft)) == 1


def test_soft_bounces_of_weekly_digests_never_make_six_in_thirty_days(session, ann):
    digests = sent_digests(session, ann, 8, every=7 * D)
    for i, digest in enumerate(digests):
        assert record(session, report(EventKind.soft, digest, START + i * 7 * D + timedelta(hours=1))) is Outcome.transient
    session.commit()
    assert state(session, ann) is SubscriberState.active


def test_a_report_is_stored_once_and_two_reports_about_one_digest_count_once(session, ann):
    digests = sent_digests(session, ann, 6)
    first = report(EventKind.soft, digests[0], START + timedelta(hours=4), key="warning-1")
    assert record(session, first) is Outcome.transient
    assert record(session, first) is Outcome.duplicate  # the same report read again
    session.commit()
    for i in range(1, 5):
        record(session, report(EventKind.soft, digests[i], START + i * D + timedelta(hours=1)))
    # a second delay warning about the 5th digest: still 5 digests that bounced
    assert record(session, report(EventKind.soft, digests[4], START + 5 * D, key="warning-2")) is Outcome.transient
    session.commit()
    assert state(session, ann) is SubscriberState.active
    assert session.scalar(select(func.count()).select_from(MailEvent)) == 6


def test_a_report_key_longer_than_the_column_is_stored_once_all_the_same(session, ann):
    key = "0100018c2a9f6e3b-5d1c4b7e-8f2a-4c3d-9e1b-7a6f5e4d3c2b-000000:ann@example.org:bounce"  # an SES feedback id and more
    first = Event(EventKind.soft, START, key, address="ann@example.org", diagnostic="4.4.7 expired")
    assert record(session, first) is Outcome.transient
    assert record(session, first) is Outcome.duplicate
    session.commit()
    assert len(session.scalar(select(MailEvent.report_key))) == 64


def test_a_hard_bounce_suppresses_at_once_and_a_second_changes_nothing(session, ann):
    (digest,) = sent_digests(session, ann, 1)
    hard = report(EventKind.hard, digest, START + timedelta(hours=1), diagnostic="5.1.1 smtp; 550 5.1.1 User unknown")
    assert record(session, hard) is Outcome.suppressed
    assert record(session, report(EventKind.hard, digest, START + timedelta(hours=2), key="again")) is Outcome.unchanged
    session.commit()
    row = fresh(session, ann)
    assert (row.state, row.suppressed_reason) == (SubscriberState.suppressed, "hard bounce: 5.1.1 smtp; 550 5.1.1 User unknown")
    stored = session.scalars(select(MailEvent).order_by(MailEvent.id)).all()
    assert [(e.kind, e.subscriber_id, e.delivery_id, e.address) for e in stored] == [
        (EventKind.hard, ann.id, digest.id, "ann@example.org")
    ] * 2


def test_a_complaint_unsubscribes_at_once(session, ann):
    (digest,) = sent_digests(session, ann, 1)
    assert record(session, report(EventKind.complaint, digest, START + D, diagnostic="feedback report: abuse")) is Outcome.unsubscribed
    session.commit()
    row = fresh(session, ann)
    assert (row.state, row.unsubscribed_at, row.next_due_at) == (SubscriberState.unsubscribed, START + D, None)
    assert session.get(Suppression, address_hash("ann@example.org")) is not None
    assert record(session, report(EventKind.complaint, digest, START + 2 * D)) is Outcome.unchanged


def test_auto_replies_forged_reports_and_reports_about_nobody_change_nothing(session, ann):
    (digest,) = sent_digests(session, ann, 1)
    assert record(session, report(EventKind.auto_reply, digest, START + D)) is Outcome.ignored
    forged = Event(
        EventKind.forged, START + D, "forged-1", address="ann@example.org", diagnostic="bad bounce token", delivery=digest.public_id
    )
    assert record(session, forged) is Outcome.forged
    gone = Event(EventKind.hard, START + D, "gone-1", delivery="No_such_delivery_00001")
    assert record(session, gone) is Outcome.unchanged
    session.commit()
    assert state(session, ann) is SubscriberState.active
    stored = {e.kind: e for e in session.scalars(select(MailEvent))}
    assert stored[EventKind.forged].subscriber_id is None and stored[EventKind.forged].delivery_id is None  # matched to nobody
    assert stored[EventKind.hard].subscriber_id is None
    assert stored[EventKind.auto_reply].subscriber_id == ann.id


def test_an_event_naming_only_the_address_as_a_providers_webhook_does_is_matched_by_address(session, ann):
    hard = Event(
        EventKind.hard, START + D, "ses-feedback-0001:ann@example.org", address="Ann@Example.org", diagnostic="5.1.1 Permanent: General"
    )
    assert record(session, hard) is Outcome.suppressed
    session.commit()
    assert state(session, ann) is SubscriberState.suppressed


def test_a_confirmation_that_bounces_suppresses_the_pending_address(session):
    pending = add_subscriber(session, "new@example.org", state=SubscriberState.pending, due=None)
    session.commit()
    bounce = Event(EventKind.hard, START, "confirm-bounce", diagnostic="5.1.1 no such user", subscriber=pending.public_id)
    assert record(session, bounce) is Outcome.suppressed
    session.commit()
    assert state(session, pending) is SubscriberState.suppressed
