"""What a hostile or careless client can try against the web app, and what it gets."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from digest_helpers import add_subscriber
from sqlalchemy import func, select
from web_helpers import csrf_token, form_post, mailed_link, strip_csrf, subscribe, subscriber, text

from digest import tokens
from digest.models import ConfirmationQuota, Subscriber, SubscriberState
from digest.subscribers.subscriptions import CONFIRMATIONS_PER_WINDOW
from digest.web import create_app


def count_subscribers(session) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(Subscriber))


# ---------------------------------------------------------------- forged and automated posts


def test_a_post_without_the_csrf_token_is_refused_and_nothing_is_stored(client, session, smtp_server):
    client.get("/")  # a session cookie, but no token in the form: what a cross-site form would send
    response = client.post("/", data={"email": "ann@example.org", "frequency": "daily", "timezone": "UTC"})
    assert response.status_code == 400 and "This form has expired" in text(response)
    assert count_subscribers(session) == 0 and smtp_server.captured == []


def test_a_csrf_token_from_another_browser_session_is_refused(app, session, smtp_server):
    token = csrf_token(app.test_client().get("/").data)
    attacker = app.test_client()
    response = attacker.post("/", data={"csrf_token": token, "email": "ann@example.org", "frequency": "daily", "timezone": "UTC"})
    assert response.status_code == 400
    assert count_subscribers(session) == 0 and smtp_server.captured == []


def test_preferences_cannot_be_changed_without_the_csrf_token(client, session, smtp_server, mail_settings):
    subscribe(client, "ann@example.org", "robot")
    client.post(mailed_link(smtp_server.to("ann@example.org")[0], "confirm"))
    row = subscriber(session, "ann@example.org")
    path = f"/preferences/{tokens.make_token(mail_settings, 'preferences', row.public_id)}"
    response = client.post(path, data={"topics": "hijacked", "frequency": "weekly", "timezone": "UTC", "delivery_hour": "3"})
    assert response.status_code == 400
    assert subscriber(session, "ann@example.org").topics_text == "robot"


def test_a_filled_honeypot_gets_the_same_page_but_nothing_is_stored_or_sent(client, session, smtp_server):
    human = subscribe(client, "human@example.org")
    bot = subscribe(client, "bot-target@example.org", website="http://spam.example")
    assert (bot.status_code, bot.headers["Location"]) == (human.status_code, human.headers["Location"])
    assert subscriber(session, "bot-target@example.org") is None
    assert smtp_server.to("bot-target@example.org") == [] and len(smtp_server.to("human@example.org")) == 1


def test_the_honeypot_wins_even_when_the_rest_of_the_form_is_garbage(client, session, smtp_server):
    response = subscribe(client, "not an address", "OR OR", website="x")
    assert response.status_code == 303 and response.headers["Location"] == "/check-your-inbox"
    assert count_subscribers(session) == 0


def test_sign_ups_are_rate_limited_per_client_with_a_friendly_429(mail_settings, session):
    client = create_app(mail_settings.with_(extra={"rate_limit_subscribe": "3 per minute"})).test_client()
    codes = [subscribe(client, f"user{i}@example.org").status_code for i in range(4)]
    assert codes == [303, 303, 303, 429]
    limited = subscribe(client, "user9@example.org")
    assert limited.status_code == 429 and "Slow down a little" in text(limited)
    assert count_subscribers(session) == 3
    assert client.get("/").status_code == 200  # reading the page is not the limited action


def test_rate_limits_count_per_client_address(mail_settings):
    client = create_app(mail_settings.with_(extra={"rate_limit_subscribe": "1 per minute"})).test_client()
    first = {"REMOTE_ADDR": "192.0.2.1"}
    second = {"REMOTE_ADDR": "192.0.2.2"}
    page = client.get("/", environ_base=first)
    data = {"csrf_token": csrf_token(page.data), "email": "a@example.org", "frequency": "daily", "timezone": "UTC"}
    assert client.post("/", data=data, environ_base=first).status_code == 303
    assert client.post("/", data=data, environ_base=first).status_code == 429
    assert client.post("/", data=data, environ_base=second).status_code == 303


def test_behind_a_trusted_proxy_the_limit_counts_the_forwarded_client_not_the_proxy(mail_settings):
    client = create_app(mail_settings.with_(trusted_proxies=1, extra={"rate_limit_subscribe": "1 per minute"})).test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.5"}
    page = client.get("/", environ_base=proxy)
    data = {"csrf_token": csrf_token(page.data), "email": "a@example.org", "frequency": "daily", "timezone": "UTC"}
    ann, bob = {"X-Forwarded-For": "198.51.100.7"}, {"X-Forwarded-For": "198.51.100.8"}
    assert client.post("/", data=data, headers=ann, environ_base=proxy).status_code == 303
    assert client.post("/", data=data, headers=ann, environ_base=proxy).status_code == 429
    assert client.post("/", data=data, headers=bob, environ_base=proxy).status_code == 303
    # without trusting the proxy, a client cannot dodge the limit by inventing X-Forwarded-For
    direct = create_app(mail_settings.with_(extra={"rate_limit_subscribe": "1 per minute"})).test_client()
    page = direct.get("/", environ_base=proxy)
    data["csrf_token"] = csrf_token(page.data)
    assert direct.post("/", data=data, headers=ann, environ_base=proxy).status_code == 303
    assert direct.post("/", data=data, headers=bob, environ_base=proxy).status_code == 429


@pytest.mark.redis
def test_with_a_broker_the_limit_is_shared_by_every_web_worker(mail_settings, redis_url):
    """Two app instances (two gunicorn workers) count in the same Redis."""
    settings = mail_settings.with_(
        broker_url=redis_url, extra={"rate_limit_subscribe": "2 per minute", "ratelimit_key_prefix": f"test-{uuid.uuid4().hex}"}
    )
    one, two = create_app(settings).test_client(), create_app(settings).test_client()
    assert subscribe(one, "a@example.org").status_code == 303
    assert subscribe(two, "b@example.org").status_code == 303
    assert subscribe(one, "c@example.org").status_code == 429
    assert subscribe(two, "d@example.org").status_code == 429


def test_link_pages_are_rate_limited_too(mail_settings):
    client = create_app(mail_settings.with_(extra={"rate_limit_links": "2 per minute"})).test_client()
    assert [client.get("/confirm/guess").status_code for _ in range(3)] == [400, 400, 429]


# ---------------------------------------------------------------- repeated sign-ups and enumeration


def test_repeated_sign_ups_of_one_address_send_at_most_three_mails_a_day(client, session, smtp_server):
    responses = [subscribe(client, "victim@example.org") for _ in range(5)]
    assert {(r.status_code, r.headers["Location"]) for r in responses} == {(303, "/check-your-inbox")}
    assert len(smtp_server.to("victim@example.org")) == 3
    assert session.scalar(select(ConfirmationQuota.sent)) == 3
    assert session.scalar(select(ConfirmationQuota.waiting_subscriber_id)) == subscriber(session, "victim@example.org").id


def test_plus_variants_cannot_multiply_the_mails_to_one_mailbox(client, smtp_server):
    for i in range(10):
        subscribe(client, f"victim+{i}@example.org")
    assert len(smtp_server.captured) == CONFIRMATIONS_PER_WINDOW


def test_eight_sign_ups_for_variants_of_one_gmail_mailbox_mail_it_at_most_the_quota(client, session, smtp_server):
    variants = [
        "ann.lee@gmail.com",
        "annlee@googlemail.com",
        "Ann.Lee+1@GoogleMail.com",
        "a.n.n.l.e.e@gmail.com",
        "annlee+x@gmail.com",
        "ANNLEE@gmail.com",
        "ann.lee+news@googlemail.com",
        "annl.ee@gmail.com",
    ]
    responses = [subscribe(client, email) for email in variants]
    assert {(r.status_code, r.headers["Location"]) for r in responses} == {(303, "/check-your-inbox")}
    assert len(smtp_server.captured) == CONFIRMATIONS_PER_WINDOW
    assert session.scalar(select(func.count()).select_from(ConfirmationQuota)) == 1


def test_sign_ups_for_a_dotted_address_leave_the_undotted_ones_quota_alone(client, smtp_server):
    for _ in range(3):
        subscribe(client, "j.smith@corp.example.org")
    subscribe(client, "jsmith@corp.example.org")  # another person at the same company
    assert len(smtp_server.to("j.smith@corp.example.org")) == 3
    assert len(smtp_server.to("jsmith@corp.example.org")) == 1


def test_a_strangers_sign_up_cannot_undo_an_unsubscribe(app, session, smtp_server, mail_settings):
    """Issue 12, as an attacker would try it through the pages."""
    owner = app.test_client()
    subscribe(owner, "tok@example.org", topics="robotics")
    owner.post(mailed_link(smtp_server.to("tok@example.org")[0], "confirm"))
    subscribe(owner, "tok@example.org", topics="robotics")  # active: an "already subscribed" note
    row = subscriber(session, "tok@example.org")
    owner.post(f"/unsubscribe/{tokens.make_token(mail_settings, 'unsubscribe', row.public_id)}")
    old_links = [mailed_link(m, "confirm") for m in smtp_server.to("tok@example.org") if "/confirm/" in str(m.get_body(("plain",)))]

    attacker = app.test_client()
    assert subscribe(attacker, "tok@example.org", topics="attacker topics").status_code == 303
    session.expire_all()
    row = subscriber(session, "tok@example.org")
    assert row.state == SubscriberState.unsubscribed and row.topics_text == "robotics"
    for link in old_links:
        assert attacker.post(link).status_code == 400
    session.expire_all()
    assert subscriber(session, "tok@example.org").state == SubscriberState.unsubscribed
    # the owner's own click on the newest mail is what brings them back
    newest = mailed_link(smtp_server.to("tok@example.org")[-1], "confirm")
    assert owner.post(newest).status_code == 200
    session.expire_all()
    assert subscriber(session, "tok@example.org").state == SubscriberState.active


def test_the_sign_up_runs_the_same_statements_whatever_the_addresss_state(app, session, smtp_server, mail_settings):
    """No timing oracle: pending, active, unsubscribed and suppressed addresses cost the same queries."""
    from sqlalchemy import event

    from digest.db import engine_for

    setup = app.test_client()
    for email in ("pending@example.org", "active@example.org", "left@example.org", "bounced@example.org"):
        subscribe(setup, email)
    for email in ("active@example.org", "left@example.org", "bounced@example.org"):
        setup.post(mailed_link(smtp_server.to(email)[0], "confirm"))
    left = subscriber(session, "left@example.org")
    setup.post(f"/unsubscribe/{tokens.make_token(mail_settings, 'unsubscribe', left.public_id)}")
    session.execute(Subscriber.__table__.update().where(Subscriber.email == "bounced@example.org").values(state=SubscriberState.suppressed))
    session.commit()
    statements: list[str] = []

    def count(conn, cursor, statement, *args):
        statements.append(statement.split()[0])

    engine = engine_for(mail_settings.database_url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        shapes = {}
        for email in ("pending@example.org", "active@example.org", "left@example.org", "bounced@example.org"):
            statements.clear()
            assert subscribe(app.test_client(), email, topics="new topics").status_code == 303
            shapes[email] = list(statements)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert len({tuple(v) for v in shapes.values()}) == 1, shapes


def test_the_answer_is_byte_identical_whether_the_address_is_new_pending_active_or_unsubscribed(app, session, smtp_server, mail_settings):
    setup = app.test_client()
    subscribe(setup, "pending@example.org")
    for email in ("active@example.org", "left@example.org"):
        subscribe(setup, email)
        setup.post(mailed_link(smtp_server.to(email)[0], "confirm"))
    left = subscriber(session, "left@example.org")
    setup.post(f"/unsubscribe/{tokens.make_token(mail_settings, 'unsubscribe', left.public_id)}")
    assert subscriber(session, "active@example.org").state == SubscriberState.active
    assert subscriber(session, "left@example.org").state == SubscriberState.unsubscribed

    answers = []
    for email in ("new@example.org", "pending@example.org", "active@example.org", "left@example.org"):
        visitor = app.test_client()
        posted = subscribe(visitor, email, "robot")
        landing = visitor.get(posted.headers["Location"])
        answers.append(
            (
                posted.status_code,
                sorted((k, v) for k, v in posted.headers.items() if k not in {"Date"}),
                strip_csrf(posted.data),
                landing.status_code,
                strip_csrf(landing.data),
            )
        )
    assert all(answer == answers[0] for answer in answers[1:])
    assert answers[0][0] == 303
    assert subscriber(session, "active@example.org").topics_text == ""  # an active subscription is not changed


# ---------------------------------------------------------------- hostile input


def test_huge_topics_are_refused_with_the_limit_named(client, session):
    response = subscribe(client, "ann@example.org", "word " * 1000)
    assert response.status_code == 400 and "at most 2000 in all" in text(response)
    assert count_subscribers(session) == 0


def test_too_many_filters_are_refused_naming_the_line(client, session):
    response = subscribe(client, "ann@example.org", "\n".join(f"topic{i}" for i in range(25)))
    assert response.status_code == 400 and "Line 21: too many filters (at most 20" in text(response)


def test_an_oversized_request_gets_a_friendly_413(client, session):
    token = csrf_token(client.get("/").data)
    response = client.post("/", data={"csrf_token": token, "email": "a@example.org", "topics": "x" * 200_000})
    assert response.status_code == 413 and "more than we accept" in text(response)
    assert count_subscribers(session) == 0


def test_markup_in_topics_comes_back_escaped(client):
    response = subscribe(client, "ann@example.org", '<script>alert(1)</script>\n"><img src=x onerror=alert(2)> nope:')
    raw = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "<script>alert(1)" not in raw and "<img src=x" not in raw
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in raw


@pytest.mark.parametrize(
    "email",
    [
        "ann@example.org\r\nBcc: everyone@example.org",
        "ann@example.org\nSubject: buy now",
        "ann@example.org%0d%0aBcc:x@example.org",
        "Ann <ann@example.org>, bob@example.org",
        "a" * 300 + "@example.org",
    ],
)
def test_header_injection_and_oversized_addresses_are_refused_and_nothing_is_sent(client, session, smtp_server, email):
    response = subscribe(client, email)
    assert response.status_code == 400 and 'id="email-error"' in text(response)
    assert count_subscribers(session) == 0 and smtp_server.captured == []


LONGEST_DOMAIN = ".".join(["d" * 63, "d" * 63, "d" * 57, "org"])  # with a 64-octet local part: 254 octets


@pytest.mark.parametrize(
    "email, message",
    [
        ("a" * 65 + "@example.org", "The part before @ is 65 characters long; mail servers accept at most 64."),
        ("a" * 70 + "@example.org", "The part before @ is 70 characters long; mail servers accept at most 64."),
        ("b" + "a" * 64 + "@" + LONGEST_DOMAIN, "This address is 255 characters long; mail servers accept at most 254."),
    ],
)
def test_addresses_over_rfc_5321_limits_are_refused_next_to_the_field_keeping_what_was_typed(client, session, smtp_server, email, message):
    response = subscribe(client, email, topics="diffusion")
    assert response.status_code == 400
    page = text(response)
    errors = re.search(r'<ul class="field-errors" id="email-error">(.*?)</ul>', page, re.S)
    assert errors and message in errors.group(1)
    assert f'value="{email}"' in page and "diffusion</textarea>" in page
    assert count_subscribers(session) == 0 and smtp_server.captured == []


def test_the_longest_address_mail_servers_accept_is_taken(client, session, smtp_server):
    email = "a" * 64 + "@" + LONGEST_DOMAIN
    assert len(email) == 254 and subscribe(client, email).status_code == 303
    assert [m.rcpt_tos for m in smtp_server.captured] == [[email]]


def test_a_token_for_one_purpose_is_refused_for_another(client, session, smtp_server, mail_settings):
    subscribe(client, "ann@example.org")
    row = subscriber(session, "ann@example.org")
    unsubscribe_token = tokens.make_token(mail_settings, "unsubscribe", row.public_id)
    preferences_token = tokens.make_token(mail_settings, "preferences", row.public_id)
    assert client.post(f"/confirm/{unsubscribe_token}").status_code == 400
    assert client.post(f"/unsubscribe/{preferences_token}").status_code == 400
    assert client.get(f"/preferences/{unsubscribe_token}").status_code == 400
    assert subscriber(session, "ann@example.org").state == SubscriberState.pending


def test_there_is_no_redirect_to_anywhere_but_our_own_pages(client):
    """No view takes a redirect target; the only redirects are to fixed paths on this site."""
    for response in (
        subscribe(client, "ann@example.org", next="https://evil.example/"),
        subscribe(client, "ann@example.org", website="x", next="//evil.example"),
        client.get("/?next=https://evil.example/"),
    ):
        location = response.headers.get("Location")
        assert location is None or re.fullmatch(r"/[a-z\-/]*", location), location


def test_nothing_answers_with_a_traceback(client):
    for response in (
        client.post("/confirm/" + "A" * 5000),
        client.get("/preferences/%00%ff"),
        client.post("/unsubscribe/x", data=b"\xff\xfe", content_type="multipart/form-data; boundary=zz"),
        client.post("/", data="%%%", content_type="application/x-www-form-urlencoded"),
    ):
        body = text(response)
        assert response.status_code in {400, 404} and "Traceback" not in body and 'File "' not in body


# ---------------------------------------------------------------- control characters, error floods, non-zones


def preferences_of(session, settings, email: str = "reader@example.org") -> str:
    """The preferences page of a new active subscriber with the topic "robot"."""
    row = add_subscriber(session, email, ["robot"])
    session.commit()
    return f"/preferences/{tokens.make_token(settings, 'preferences', row.public_id)}"


def post_topics(client, form: str, topics: str, tz: str = "UTC"):
    """The sign-up ("/") or a preferences form, posted as multipart so ~60 KB of topics fit under the request limit."""
    data = {"topics": topics, "frequency": "daily", "timezone": tz}
    data.update({"email": "ann@example.org", "website": ""} if form == "/" else {"delivery_hour": "7"})
    return form_post(client, form, data, content_type="multipart/form-data")


@pytest.mark.parametrize("form", ["sign-up", "preferences"])
def test_control_characters_in_topics_are_refused_and_never_stored(client, session, mail_settings, form):
    path = "/" if form == "sign-up" else preferences_of(session, mail_settings)
    response = post_topics(client, path, "agents\x00\nvideo \x1b[31mdiffusion")
    html = text(response)
    assert response.status_code == 400
    assert "Line 1: control characters are not allowed" in html and "Line 2: control characters are not allowed" in html
    assert subscriber(session, "ann@example.org") is None
    if form == "preferences":
        assert subscriber(session, "reader@example.org").topics_text == "robot"


@pytest.mark.parametrize("form", ["sign-up", "preferences"])
@pytest.mark.parametrize("flood", ['"\n', "OR\n"], ids=["quote lines", "OR lines"])
def test_thousands_of_bad_lines_get_twenty_errors_and_a_count_in_a_small_page(client, session, mail_settings, form, flood):
    path = "/" if form == "sign-up" else preferences_of(session, mail_settings)
    normal = len(client.get(path).data)  # the time-zone list alone makes a page of ~35 KB
    topics = flood * (58_000 // len(flood))
    started = time.perf_counter()
    response = post_topics(client, path, topics)
    elapsed = time.perf_counter() - started
    html = text(response)
    assert response.status_code == 400 and elapsed < 3
    shown = re.search(r'<ul class="field-errors" id="topics-error">(.*?)</ul>', html, re.S).group(1)
    items = re.findall(r"<li>(.*?)</li>", shown)
    assert len(items) == 21 and all(item.startswith("Line ") for item in items[:20])
    assert re.fullmatch(r"…and \d+ more problems", items[20]) and int(items[20].split()[1]) > 19_000
    assert len(response.data) < normal + 24_000, f"{len(response.data)} bytes for {len(topics)} bytes of topics"


@pytest.mark.parametrize("name", ["localtime", "posixrules", "Factory"])
def test_files_of_the_zone_database_that_are_not_zones_are_refused_by_both_forms(client, session, mail_settings, smtp_server, name):
    response = post_topics(client, "/", "robot", tz=name)
    assert response.status_code == 400 and "Choose a time zone from the list." in text(response)
    assert subscriber(session, "ann@example.org") is None and smtp_server.captured == []
    response = post_topics(client, preferences_of(session, mail_settings), "robot", tz=name)
    assert response.status_code == 400 and "Choose a time zone from the list." in text(response)
    assert subscriber(session, "reader@example.org").timezone == "UTC"
