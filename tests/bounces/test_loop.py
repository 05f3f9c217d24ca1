"""Issue 23's check, end to end: digests are sent for real through a relay (aiosmtpd) from VERP
addresses; the relay later mails back DSNs, ARF complaints and auto-replies, in the shapes Postfix,
Exim, Gmail, Outlook and Yahoo send, to the bounce listener (started as ``digest bounces serve``
starts it); those readers are suppressed or unsubscribed as the rules say, the others untouched,
forged reports counted and changing nothing, and the next send skips whoever left. Both SQLite and
PostgreSQL, through a relay without and with PIPELINING."""

from __future__ import annotations

import smtplib
from datetime import timedelta

import pytest
from digest_helpers import AT, DAY, add_subscriber, shown_papers
from relay import fill, send
from sqlalchemy import select, update
from web_helpers import mailed_link, subscribe

from digest.delivery.run import send_due
from digest.mail import verp
from digest.models import Delivery, EventKind, MailEvent, Subscriber, SubscriberState, Suppression, address_hash
from digest.stats import stats
from digest.web import create_app

D = timedelta(days=1)
NO_RETRY = dict(retry_delays=())
#: each reader's mail: what the relay (or their provider) sends back about it, what it is, what it makes of them
REPORTS = {
    "pat@example.net": ("postfix-hard", EventKind.hard, SubscriberState.suppressed),
    "ed@example.net": ("exim-hard", EventKind.hard, SubscriberState.suppressed),
    "gil@example.net": ("gmail-hard", EventKind.hard, SubscriberState.suppressed),
    "olga@example.net": ("outlook-hard", EventKind.hard, SubscriberState.suppressed),
    "yan@example.net": ("yahoo-hard", EventKind.hard, SubscriberState.suppressed),
    "sam@example.net": ("postfix-delayed", EventKind.soft, SubscriberState.active),  # one soft bounce: transient
    "quinn@example.net": ("gmail-over-quota", EventKind.soft, SubscriberState.active),
    "cy@example.net": ("arf-yahoo", EventKind.complaint, SubscriberState.unsubscribed),
    "cole@example.net": ("arf-outlook", EventKind.complaint, SubscriberState.unsubscribed),
    "otto@example.net": ("autoreply-outlook", EventKind.auto_reply, SubscriberState.active),
    "val@example.net": ("autoreply-vacation", EventKind.auto_reply, SubscriberState.active),
    "pre@example.net": ("autoreply-precedence", EventKind.auto_reply, SubscriberState.active),
}
UNTOUCHED = ["una@example.net", "ugo@example.net"]


@pytest.fixture(params=[False, True], ids=["relay one command at a time", "relay with PIPELINING"])
def pipelining(request) -> bool:
    return request.param


def due_at(session, subscriber: Subscriber, moment) -> None:
    session.execute(update(Subscriber).where(Subscriber.id == subscriber.id).values(next_due_at=moment))
    session.commit()


def test_reports_that_come_back_later_suppress_unsubscribe_or_change_nothing_as_the_rules_say(
    session, bounce_settings, relay, listener, make_paper
):
    make_paper("2611.00001", "Video diffusion at scale", upvotes=90, session=session)
    make_paper("2611.00002", "Agents for science", upvotes=70, session=session)
    people = {email: add_subscriber(session, email) for email in [*REPORTS, *UNTOUCHED]}
    session.commit()
    relay.reports = {email: sample for email, (sample, _, _) in REPORTS.items()}

    first = send_due(bounce_settings, AT, **NO_RETRY)
    assert first.sent == len(people) == len(relay.captured)
    deliveries = dict(session.execute(select(Delivery.subscriber_id, Delivery.public_id)).all())
    for captured in relay.captured:  # each digest went out from the bounce address naming its own delivery
        (rcpt,) = captured.rcpt_tos
        assert captured.mail_from.endswith("@bounces.example.org") and len(captured.mail_from.split("@")[0]) == 47
        assert verp.read(bounce_settings, captured.mail_from) == verp.Named(delivery=deliveries[people[rcpt].id])

    sent_back = relay.flush(*listener)
    assert len(sent_back) == len(REPORTS)
    host, port = listener
    una_verp = next(c.mail_from for c in relay.captured if c.rcpt_tos == ["una@example.net"])
    bad_token = "bounces+" + "A" * 39 + "@bounces.example.org"
    send(host, port, bad_token, fill("postfix-hard", to=bad_token, verp=una_verp, rcpt="una@example.net"))
    send(
        host,
        port,
        "bounces@bounces.example.org",
        fill("gmail-hard", to="bounces@bounces.example.org", verp=una_verp, rcpt="ugo@example.net"),
    )
    elsewhere = una_verp.replace("@bounces.example.org", "@other.example.org")
    with pytest.raises(smtplib.SMTPRecipientsRefused) as refused:
        send(host, port, elsewhere, fill("postfix-hard", to=elsewhere, verp=una_verp, rcpt="una@example.net"))
    assert refused.value.recipients[elsewhere][0] == 550
    pat_report = next(data for data in sent_back if b"pat@example.net" in data)
    pat_verp = next(c.mail_from for c in relay.captured if c.rcpt_tos == ["pat@example.net"])
    send(host, port, pat_verp, pat_report)  # the relay hands the same report over again

    session.expire_all()
    states = dict(session.execute(select(Subscriber.email, Subscriber.state)).all())
    assert states == {
        **{email: after for email, (_, _, after) in REPORTS.items()},
        **dict.fromkeys(UNTOUCHED, SubscriberState.active),
    }
    for email, (_, _, after) in REPORTS.items():  # those who left are remembered: no import brings them back
        assert (session.get(Suppression, address_hash(email)) is not None) is (after is not SubscriberState.active), email
    events = session.scalars(select(MailEvent).order_by(MailEvent.id)).all()
    by_subscriber = {e.subscriber_id: e for e in events if e.subscriber_id is not None}
    assert len(by_subscriber) == len(REPORTS) == len(events) - 3  # the replay stored nothing; 3 forged
    for email, subscriber in people.items():
        if email in REPORTS:
            event = by_subscriber[subscriber.id]
            assert event.delivery_id == session.scalar(select(Delivery.id).where(Delivery.subscriber_id == subscriber.id))
            assert event.kind is REPORTS[email][1], email
        else:
            assert subscriber.id not in by_subscriber
    forged = [e for e in events if e.kind is EventKind.forged]
    assert [e.subscriber_id for e in forged] == [None] * 3
    assert ["bad bounce token" in forged[0].diagnostic, "no bounce token" in forged[1].diagnostic] == [True, True]
    assert forged[2].address == elsewhere and "refused at RCPT" in forged[2].diagnostic
    assert forged[2].diagnostic.endswith("(MAIL FROM:<>)")  # a report's null sender, written once as <>
    suppressed = session.scalar(select(Subscriber.suppressed_reason).where(Subscriber.email == "pat@example.net"))
    assert (
        suppressed
        == "hard bounce: 5.1.1 smtp; 550 5.1.1 <pat@example.net>: Recipient address rejected: User unknown in virtual mailbox table"
    )
    assert stats(session, AT)["mail_events"] == {
        "hard": 5,
        "soft": 2,
        "complaint": 2,
        "auto_reply": 3,
        "delivered": 0,
        "other": 0,
        "forged": 3,
    }

    make_paper("2611.00003", "Robot agents in the wild", day=DAY + D, upvotes=60, session=session)
    session.commit()
    before = len(relay.captured)
    second = send_due(bounce_settings, AT + D, **NO_RETRY)
    reached = sorted(r for c in relay.captured[before:] for r in c.rcpt_tos)
    assert reached == sorted(email for email, state in states.items() if state is SubscriberState.active)
    assert second.sent == len(reached) == 7


def test_a_suppressed_address_that_signs_up_again_goes_through_double_opt_in(session, bounce_settings, relay, listener, make_paper):
    make_paper("2611.00001", "Video diffusion at scale", upvotes=90, session=session)
    session.commit()
    client = create_app(bounce_settings).test_client()
    subscribe(client, "ann@example.net")
    (confirmation,) = relay.captured
    ann = session.scalar(select(Subscriber).where(Subscriber.email == "ann@example.net"))
    assert verp.read(bounce_settings, confirmation.mail_from) == verp.Named(subscriber=ann.public_id)  # a bounce names the subscriber
    client.post(mailed_link(confirmation.message, "confirm"))
    due_at(session, ann, AT)  # the confirmation planned the next slot after today's clock; the papers are AT's
    relay.reports = {"ann@example.net": "gmail-hard"}
    assert send_due(bounce_settings, AT, **NO_RETRY).sent == 1
    relay.flush(*listener)
    session.expire_all()
    assert session.get(Subscriber, ann.id).state is SubscriberState.suppressed

    relay.reports = {}
    page = subscribe(client, "ann@example.net")  # the form, as for anyone
    assert page.headers["Location"].endswith("/check-your-inbox")
    session.expire_all()
    assert session.get(Subscriber, ann.id).state is SubscriberState.suppressed  # nothing changes before the link is used
    again = relay.captured[-1]
    assert again.rcpt_tos == ["ann@example.net"] and verp.read(bounce_settings, again.mail_from) == verp.Named(subscriber=ann.public_id)
    assert send_due(bounce_settings, AT + D, **NO_RETRY).sent == 0
    client.post(mailed_link(again.message, "confirm"))
    session.expire_all()
    assert session.get(Subscriber, ann.id).state is SubscriberState.active
    due_at(session, ann, AT + 2 * D)
    assert session.get(Suppression, address_hash("ann@example.net")) is None
    make_paper("2611.00002", "Agents for science", day=DAY + D, upvotes=70, session=session)
    session.commit()
    assert send_due(bounce_settings, AT + 2 * D, **NO_RETRY).sent == 1
    assert shown_papers(relay.captured[-1].message)


def test_a_flood_of_recipients_for_other_domains_is_refused_and_counted_but_stores_ten_rows_a_minute(session, listener):
    """A public MX is offered junk for other domains: every recipient is refused (550) and counted
    on /metrics, but the database keeps at most 10 of them a minute as forged events."""
    from digest.bounces.listener import REFUSED_ROWS_PER_MINUTE
    from digest.metrics import REGISTRY

    def refused_total() -> float:
        return REGISTRY.get_sample_value("digest_bounce_rcpt_refused_total") or 0.0

    before = refused_total()
    host, port = listener
    junk = [f"user{i}@spam{i}.example.com" for i in range(30)]
    with smtplib.SMTP(host, port, timeout=10) as client:
        client.ehlo("spammer.example.com")
        client.mail("spammer@example.com")
        codes = [client.rcpt(to)[0] for to in junk]
    assert codes == [550] * 30
    assert refused_total() - before == 30
    stored = session.scalars(select(MailEvent.address).where(MailEvent.kind == EventKind.forged).order_by(MailEvent.id)).all()
    # the first ten of each minute: one minute, or two if the minute turned during the thirty
    assert REFUSED_ROWS_PER_MINUTE <= len(stored) <= 2 * REFUSED_ROWS_PER_MINUTE
    assert stored[:REFUSED_ROWS_PER_MINUTE] == junk[:REFUSED_ROWS_PER_MINUTE]


def test_the_refusal_tally_stores_the_first_ten_of_each_minute_and_logs_the_rest(caplog):
    from datetime import datetime, timezone

    from digest.bounces.listener import RefusalTally

    tally = RefusalTally(per_minute=10)
    at = datetime(2026, 12, 7, 9, 0, 5, tzinfo=timezone.utc)
    first = [tally.store(at + timedelta(seconds=i)) for i in range(25)]  # 09:00:05 .. 09:00:29
    assert first == [True] * 10 + [False] * 15
    with caplog.at_level("WARNING", logger="digest.bounces.listener"):
        assert tally.store(at + timedelta(minutes=1)) is True  # a new minute: stored again
    assert "15 more recipients refused at RCPT in the minute from 09:00 UTC (not stored one by one)" in caplog.text
