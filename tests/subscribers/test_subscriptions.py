"""Double opt-in as plain functions over a Session, on SQLite and PostgreSQL, mail through real SMTP."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select
from web_helpers import body_html, body_text, mailed_link, old_token

from digest import tokens
from digest.config import Settings
from digest.db import session_factory
from digest.delivery.schedule import next_slot
from digest.mail.transport import TransientError
from digest.matching.topics import parse_topics
from digest.models import ConfirmationQuota, SignupRequest, Subscriber, SubscriberState, Suppression, TopicFilter, address_hash
from digest.subscribers.addresses import normalize_email
from digest.subscribers.subscriptions import (
    Confirmation,
    confirm,
    confirmation_token,
    has_left,
    peek_confirmation,
    purge_unconfirmed,
    release_waiting_confirmations,
    request_subscription,
    send_confirmation,
    unsubscribe,
    update_preferences,
)

NOW = datetime(2026, 11, 25, 10, 30, tzinfo=timezone.utc)  # a Wednesday


def sign_up(session, settings, email="ann@example.org", topics="diffusion video", frequency="daily", tz="UTC", now=NOW):
    subscriber = request_subscription(session, settings, email, parse_topics(topics), frequency, tz, now)
    session.commit()
    return subscriber


def reload(session, email="ann@example.org") -> Subscriber:
    session.flush()
    session.expire_all()
    return session.scalars(select(Subscriber).where(Subscriber.email == email)).one()


def token_from(message, purpose: str) -> str:
    return mailed_link(message, purpose).rsplit("/", 1)[1]


def link(session, settings, email="ann@example.org") -> str:
    """The confirmation token of the address's latest sign-up, as the mail carries it."""
    return confirmation_token(session, settings, reload(session, email))


def quota_sent(session) -> int:
    return session.scalar(select(func.sum(ConfirmationQuota.sent))) or 0


# ---------------------------------------------------------------- signing up


def test_a_new_address_becomes_pending_and_confirming_applies_its_filters_in_order(session, settings):
    sub = sign_up(session, settings, topics='diffusion video\nauthor:"Yann LeCun"', frequency="weekly", tz="Europe/Berlin")
    assert sub is not None
    row = reload(session)
    assert row.state == SubscriberState.pending and row.filters == []
    assert row.next_due_at is None and row.confirmed_at is None
    assert quota_sent(session) == 1
    assert confirm(session, settings, link(session, settings), NOW) == Confirmation.confirmed
    session.commit()
    row = reload(session)
    assert (row.frequency.value, row.timezone, row.delivery_hour) == ("weekly", "Europe/Berlin", 7)
    assert [f.text for f in row.filters] == ["diffusion video", 'author:"Yann LeCun"']


def test_confirmation_mail_is_multipart_with_a_signed_48_hour_link(session, mail_settings, smtp_server):
    sub = sign_up(session, mail_settings)
    assert send_confirmation(mail_settings, sub.id) is True

    [captured] = smtp_server.captured
    assert captured.mail_from == "digest@example.org" and captured.rcpt_tos == ["ann@example.org"]
    message = captured.message
    assert message["From"] == "Trending Papers <digest@example.org>"
    assert message["To"] == "ann@example.org"
    assert message["Subject"] == "Confirm your Trending Papers subscription"
    assert message["Date"] and message["Message-ID"].endswith("@example.org>")
    assert message["Auto-Submitted"] == "auto-generated"
    token = token_from(message, "confirm")
    assert f"https://digest.example.org/confirm/{token}" in body_html(message)
    assert "48 hours" in body_text(message)
    public_id, _, nonce = tokens.read_token(mail_settings, "confirm", token, max_age=tokens.CONFIRM_MAX_AGE).partition(".")
    assert public_id == sub.public_id and nonce == session.get(SignupRequest, sub.id).nonce


def test_confirmation_mail_never_carries_the_sign_up_text(session, mail_settings, smtp_server):
    """Whoever signs an address up cannot put their words into a mail to it."""
    sub = sign_up(session, mail_settings, topics="cheap pills wwwspamexamplecom")
    send_confirmation(mail_settings, sub.id)
    message = smtp_server.captured[0].message
    assert "pills" not in body_text(message) and "pills" not in body_html(message)


def test_confirming_activates_and_schedules_the_first_digest(session, mail_settings, smtp_server):
    sub = sign_up(session, mail_settings, tz="America/New_York")
    send_confirmation(mail_settings, sub.id)
    token = token_from(smtp_server.captured[0].message, "confirm")
    later = NOW + timedelta(hours=3)

    assert confirm(session, mail_settings, token, later) == Confirmation.confirmed
    session.commit()
    row = reload(session)
    assert row.state == SubscriberState.active and row.confirmed_at == later
    assert row.next_due_at == next_slot("daily", "America/New_York", 7, later)


def test_confirming_twice_is_harmless(session, settings):
    sign_up(session, settings)
    token = link(session, settings)
    confirm(session, settings, token, NOW)
    session.commit()
    assert confirm(session, settings, token, NOW + timedelta(hours=1)) == Confirmation.already_confirmed
    session.commit()
    assert reload(session).confirmed_at == NOW


def test_an_expired_confirmation_link_changes_nothing(session, settings):
    sub = sign_up(session, settings)
    token = old_token(settings, "confirm", f"{sub.public_id}.{session.get(SignupRequest, sub.id).nonce}", timedelta(hours=49))
    with pytest.raises(tokens.BadToken) as error:
        confirm(session, settings, token, NOW)
    assert error.value.expired
    assert reload(session).state == SubscriberState.pending


def test_a_link_just_inside_48_hours_still_confirms(session, settings):
    sub = sign_up(session, settings)
    token = old_token(settings, "confirm", f"{sub.public_id}.{session.get(SignupRequest, sub.id).nonce}", timedelta(hours=47))
    assert confirm(session, settings, token, NOW) == Confirmation.confirmed


@pytest.mark.parametrize("purpose", ["preferences", "unsubscribe"])
def test_a_tampered_or_other_purpose_link_cannot_confirm(session, settings, purpose):
    sub = sign_up(session, settings)
    good = link(session, settings)
    value = tokens.read_token(settings, "confirm", good)
    others = (
        good[:-2] + ("AA" if not good.endswith("AA") else "BB"),  # tampered
        tokens.make_token(settings, purpose, value),  # another purpose
        tokens.make_token(settings, "confirm", sub.public_id),  # no request named
        tokens.make_token(settings, "confirm", sub.public_id + ".not-the-nonce"),
    )
    for bad in others:
        with pytest.raises(tokens.BadToken):
            confirm(session, settings, bad, NOW)
    assert reload(session).state == SubscriberState.pending


def test_links_are_itsdangerous_tokens_so_links_already_mailed_keep_working():
    from itsdangerous import URLSafeTimedSerializer

    settings = Settings(database_url="sqlite://", secret_key="k" * 32)
    library = URLSafeTimedSerializer(settings.secret_key, salt="digest.unsubscribe")
    public_id = "q3tH0Ew2W7lYk8F1uJf0xA"
    ours = tokens.make_token(settings, "unsubscribe", public_id)
    assert ours.split(".")[0] == library.dumps(public_id).split(".")[0]  # the same payload
    assert library.loads(ours) == public_id  # and signed as the library signs
    compressed = library.dumps("x" * 300)  # a payload zlib does shorten: the library's own form
    assert compressed.startswith(".")
    assert tokens.read_token(settings, "unsubscribe", compressed) == "x" * 300


def test_an_active_subscriber_signing_up_again_keeps_everything_and_gets_a_preferences_link(session, mail_settings, smtp_server):
    sub = sign_up(session, mail_settings, topics="robotics", frequency="daily")
    confirm(session, mail_settings, link(session, mail_settings), NOW)
    session.commit()
    due = reload(session).next_due_at

    again = sign_up(session, mail_settings, topics="something else", frequency="weekly", tz="Asia/Tokyo")
    assert again is not None and again.id == sub.id
    send_confirmation(mail_settings, again.id)

    row = reload(session)
    assert row.state == SubscriberState.active and row.next_due_at == due
    assert (row.topics_text, row.frequency.value, row.timezone) == ("robotics", "daily", "UTC")
    message = smtp_server.captured[-1].message
    assert message["Subject"] == "You're already subscribed to Trending Papers"
    token = token_from(message, "preferences")
    assert tokens.read_token(mail_settings, "preferences", token) == sub.public_id
    assert "/confirm/" not in body_text(message)


def test_a_pending_address_signing_up_again_confirms_the_new_preferences_and_kills_the_older_link(session, settings):
    sign_up(session, settings, topics="robotics\ngraphs", frequency="daily")
    first = link(session, settings)
    sign_up(session, settings, topics="vision", frequency="weekly", tz="Europe/Paris")
    with pytest.raises(tokens.BadToken):
        confirm(session, settings, first, NOW)
    assert confirm(session, settings, link(session, settings), NOW) == Confirmation.confirmed
    session.commit()
    row = reload(session)
    assert (row.topics_text, row.frequency.value, row.timezone) == ("vision", "weekly", "Europe/Paris")
    assert session.scalar(select(func.count()).select_from(TopicFilter)) == 1


def test_an_unsubscribed_address_signing_up_again_must_confirm_again(session, mail_settings, smtp_server):
    sign_up(session, mail_settings, topics="robotics")
    confirm(session, mail_settings, link(session, mail_settings), NOW)
    unsubscribe(session, reload(session), NOW + timedelta(days=1))
    session.commit()

    again = sign_up(session, mail_settings, topics="agents", now=NOW + timedelta(days=2))
    assert again is not None
    row = reload(session)  # a sign-up alone changes nothing: anyone can post this address
    assert (row.state, row.topics_text) == (SubscriberState.unsubscribed, "robotics")
    assert send_confirmation(mail_settings, again.id)
    assert smtp_server.captured[-1].message["Subject"] == "Confirm your Trending Papers subscription"
    token = token_from(smtp_server.captured[-1].message, "confirm")
    assert confirm(session, mail_settings, token, NOW + timedelta(days=2)) == Confirmation.confirmed
    session.commit()
    row = reload(session)
    assert row.state == SubscriberState.active and row.unsubscribed_at is None and row.topics_text == "agents"


def test_at_most_three_confirmation_mails_per_address_per_24_hours(session, settings):
    results = [sign_up(session, settings, now=NOW + timedelta(hours=h)) for h in (0, 1, 2, 3, 23.9)]
    assert [r is not None for r in results] == [True, True, True, False, False]
    assert sign_up(session, settings, now=NOW + timedelta(hours=24)) is not None  # a new window


def test_a_request_over_the_quota_waits_and_is_mailed_when_the_window_ends(session, settings):
    """Three sign-ups by a stranger cannot lock the owner out: their own request waits, then goes."""
    for h in (0, 1, 2):
        sign_up(session, settings, email="victim@example.org", topics="spam", now=NOW + timedelta(hours=h))
    assert sign_up(session, settings, email="victim@example.org", topics="robotics", now=NOW + timedelta(hours=3)) is None
    assert release_waiting_confirmations(session, NOW + timedelta(hours=23)) == []  # the window still runs
    [waiting] = release_waiting_confirmations(session, NOW + timedelta(hours=24, minutes=1))
    session.commit()
    assert waiting == reload(session, "victim@example.org").id
    assert release_waiting_confirmations(session, NOW + timedelta(hours=25)) == []  # once
    sub, request = peek_confirmation(session, settings, link(session, settings, "victim@example.org"))
    assert request.topics == "robotics"  # the mail carries the latest request: the owner's


def test_the_quota_counts_plus_variants_of_one_mailbox_together(session, settings):
    sent = [
        sign_up(session, settings, email=email) is not None
        for email in ("victim@example.org", "victim+0@example.org", "victim+a+b@example.org", "victim+9@example.org")
    ]
    assert sent == [True, True, True, False]
    assert sign_up(session, settings, email="other@example.org") is not None  # another mailbox


def test_the_quota_counts_gmail_and_googlemail_dot_variants_as_one_mailbox(session, settings):
    sent = [
        sign_up(session, settings, email=email) is not None
        for email in ("ann.lee@gmail.com", "annlee@googlemail.com", "a.n.n.lee+x@gmail.com", "annl.ee@googlemail.com")
    ]
    assert sent == [True, True, True, False]
    assert session.scalar(select(func.count()).select_from(ConfirmationQuota)) == 1


def test_dots_elsewhere_make_another_mailbox_with_its_own_quota(session, settings):
    for _ in range(3):
        assert sign_up(session, settings, email="j.smith@corp.example.org") is not None
    assert sign_up(session, settings, email="j.smith@corp.example.org") is None
    assert sign_up(session, settings, email="jsmith@corp.example.org") is not None  # someone else


def test_the_quota_counts_case_variants_of_one_address_together(session, settings):
    for spelling in ("Ann@Example.org", "ANN@example.org", "ann@EXAMPLE.org"):
        assert sign_up(session, settings, email=normalize_email(spelling)) is not None
    assert sign_up(session, settings, email=normalize_email("aNN@example.ORG")) is None
    assert session.scalar(select(func.count()).select_from(Subscriber)) == 1


def test_a_link_after_unsubscribing_does_not_resubscribe(session, settings):
    sign_up(session, settings)
    token = link(session, settings)
    unsubscribe(session, reload(session), NOW)
    session.commit()
    with pytest.raises(tokens.BadToken):
        confirm(session, settings, token, NOW)
    assert reload(session).state == SubscriberState.unsubscribed


def test_a_stranger_cannot_undo_an_unsubscribe_with_a_link_mailed_before_it(session, settings):
    """Issue 12: the link mailed before the unsubscribe, used after a stranger's sign-up, is dead."""
    sign_up(session, settings, topics="robotics")
    confirm(session, settings, link(session, settings), NOW)
    sign_up(session, settings, topics="robotics", now=NOW + timedelta(hours=1))  # the owner asks again (active: a note)
    old = link(session, settings)
    unsubscribe(session, reload(session), NOW + timedelta(hours=2))
    session.commit()
    sign_up(session, settings, topics="attacker topics", now=NOW + timedelta(hours=3))
    row = reload(session)
    assert (row.state, row.topics_text) == (SubscriberState.unsubscribed, "robotics")
    with pytest.raises(tokens.BadToken):
        confirm(session, settings, old, NOW + timedelta(hours=4))
    assert reload(session).state == SubscriberState.unsubscribed


def test_the_purge_never_forgets_that_an_address_left(session, settings):
    sign_up(session, settings)
    confirm(session, settings, link(session, settings), NOW)
    unsubscribe(session, reload(session), NOW + timedelta(days=1))
    session.commit()
    sign_up(session, settings, now=NOW + timedelta(days=2))  # a stranger: stays unsubscribed, not purged
    session.delete(reload(session))  # the row gone (an operator, or a future retention job)
    session.commit()
    assert has_left(session, "ann@example.org")
    assert session.get(Suppression, address_hash("ann@example.org")).reason == "unsubscribed"


def test_the_owners_own_confirmation_lifts_the_suppression(session, settings):
    sign_up(session, settings)
    confirm(session, settings, link(session, settings), NOW)
    unsubscribe(session, reload(session), NOW + timedelta(days=1))
    sign_up(session, settings, topics="agents", now=NOW + timedelta(days=2))
    assert confirm(session, settings, link(session, settings), NOW + timedelta(days=2)) == Confirmation.confirmed
    session.commit()
    assert not has_left(session, "ann@example.org")
    assert reload(session).topics_text == "agents"


def test_a_purged_subscription_link_is_refused(session, settings):
    sign_up(session, settings)
    token = link(session, settings)
    purge_unconfirmed(session, NOW + timedelta(days=8))
    session.commit()
    with pytest.raises(tokens.BadToken):
        confirm(session, settings, token, NOW + timedelta(days=8))


# ---------------------------------------------------------------- sending


def test_nothing_is_sent_to_unsubscribed_or_deleted_subscribers(session, mail_settings, smtp_server):
    sub = sign_up(session, mail_settings)
    unsubscribe(session, reload(session), NOW)
    session.commit()
    assert send_confirmation(mail_settings, sub.id) is False
    assert send_confirmation(mail_settings, 987654) is False
    assert smtp_server.captured == []


def test_a_temporary_smtp_failure_raises_for_a_retry(session, mail_settings, smtp_server):
    sub = sign_up(session, mail_settings)
    smtp_server.fail_next.append("451 4.3.0 try again later")
    with pytest.raises(TransientError):
        send_confirmation(mail_settings, sub.id)
    assert send_confirmation(mail_settings, sub.id) is True  # the retry goes through


def test_a_permanently_refused_address_is_logged_not_raised(session, mail_settings, smtp_server):
    sub = sign_up(session, mail_settings, email="nobody@example.org")
    smtp_server.fail_rcpt["nobody@example.org"] = "550 5.1.1 no such user"
    assert send_confirmation(mail_settings, sub.id) is False


def test_without_smtp_the_mail_lands_in_the_outbox_folder(session, settings):
    sub = sign_up(session, settings)
    assert send_confirmation(settings, sub.id)
    [eml] = (settings.data_dir / "outbox").glob("*.eml")
    assert b"Subject: Confirm your Trending Papers subscription" in eml.read_bytes()


# ---------------------------------------------------------------- preferences and leaving


def test_saving_preferences_moves_the_next_digest_to_the_new_slot(session, settings):
    sign_up(session, settings, topics="a\nb\nc")
    confirm(session, settings, link(session, settings), NOW)
    row = reload(session)
    update_preferences(session, row, parse_topics("x\ny"), "weekly", "Asia/Tokyo", 18, NOW)
    session.commit()
    row = reload(session)
    assert [f.text for f in row.filters] == ["x", "y"] and [f.position for f in row.filters] == [0, 1]
    assert (row.frequency.value, row.timezone, row.delivery_hour) == ("weekly", "Asia/Tokyo", 18)
    assert row.next_due_at == next_slot("weekly", "Asia/Tokyo", 18, NOW)
    assert row.next_due_at.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo")).weekday() == 0


@pytest.mark.parametrize("frequency, tz, hour", [("hourly", "UTC", 7), ("daily", "Mars/Olympus", 7), ("daily", "UTC", 24)])
def test_preferences_refuse_impossible_values(session, settings, frequency, tz, hour):
    sign_up(session, settings)
    with pytest.raises(ValueError):
        update_preferences(session, reload(session), [], frequency, tz, hour, NOW)


def test_unsubscribing_stops_the_schedule_and_is_idempotent(session, settings):
    sign_up(session, settings)
    confirm(session, settings, link(session, settings), NOW)
    assert unsubscribe(session, reload(session), NOW + timedelta(days=1)) is True
    session.commit()
    assert unsubscribe(session, reload(session), NOW + timedelta(days=2)) is False
    row = reload(session)
    assert row.state == SubscriberState.unsubscribed and row.next_due_at is None
    assert row.unsubscribed_at == NOW + timedelta(days=1)


def test_purge_deletes_only_pending_sign_ups_older_than_seven_days(session, settings):
    sign_up(session, settings, email="old@example.org", now=NOW - timedelta(days=8))
    sign_up(session, settings, email="recent@example.org", now=NOW - timedelta(days=6))
    sign_up(session, settings, email="asked-again@example.org", now=NOW - timedelta(days=30))
    sign_up(session, settings, email="asked-again@example.org", now=NOW - timedelta(days=2))
    sign_up(session, settings, email="active@example.org", now=NOW - timedelta(days=30))
    confirm(session, settings, link(session, settings, "active@example.org"), NOW - timedelta(days=29))
    left = sign_up(session, settings, email="left@example.org", now=NOW - timedelta(days=30))
    unsubscribe(session, left, NOW - timedelta(days=20))
    session.commit()

    assert purge_unconfirmed(session, NOW) == 1
    session.commit()
    remaining = set(session.scalars(select(Subscriber.email)))
    assert remaining == {"recent@example.org", "asked-again@example.org", "active@example.org", "left@example.org"}
    assert (
        session.scalar(select(func.count()).select_from(SignupRequest)) == 2
    )  # the purged one's went with it (confirm and unsubscribe close theirs)


def test_two_simultaneous_sign_ups_of_one_new_address_make_one_row(pg_database_url, tmp_path):
    """PostgreSQL: the second insert waits on the unique index, fails, and falls back to the row."""
    pg = Settings(database_url=pg_database_url, secret_key="test-secret-key-0123456789", data_dir=tmp_path)
    factory = session_factory(pg)
    first_flushed = threading.Event()
    outcomes = []

    def first():
        with factory() as s:
            outcomes.append(request_subscription(s, pg, "ann@example.org", [], "daily", "UTC", NOW) is not None)
            first_flushed.set()
            time.sleep(0.3)
            s.commit()

    def second():
        first_flushed.wait(5)
        with factory() as s:
            outcomes.append(request_subscription(s, pg, "ann@example.org", [], "weekly", "UTC", NOW) is not None)
            s.commit()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert outcomes == [True, True]
    with factory() as s:
        [row] = s.scalars(select(Subscriber)).all()
        assert s.get(SignupRequest, row.id).frequency.value == "weekly"  # the later request stands
        assert s.scalar(select(ConfirmationQuota.sent)) == 2
