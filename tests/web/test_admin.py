"""The operator's console (/admin) through Flask's test client, on SQLite and PostgreSQL: every route
denied without a session, signing in and out (the cookie, a new session at sign-in, a disabled or
replaced login ends), CSRF, the sign-in rate limits, pause stopping a real send (aiosmtpd receives
nothing, then the digests after resume), each action's audit row, the suppress and restore rules,
how an unsubscribe happened, and the command line (``digest admin``, ``pause``, ``resume``, ``stats``).
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timezone

import pytest
from digest_helpers import AT, add_subscriber
from processes import BIN, ROOT, digest_cli
from sqlalchemy import func, select
from support import subprocess_env
from web_helpers import csrf_token, text

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.batch import send_deliveries
from digest.delivery.ledger import suppress_subscriber
from digest.delivery.planning import plan
from digest.delivery.run import send_due
from digest.jobs import plan_and_dispatch
from digest.models import (
    AuditEntry,
    Delivery,
    DeliveryStatus,
    Operator,
    Subscriber,
    SubscriberState,
    Suppression,
    UnsubscribeMethod,
    address_hash,
    sending_paused,
)
from digest.models.instance import pause_sending
from digest.models.operators import create_operator
from digest.papers.ingest import IngestReport
from digest.subscribers.subscriptions import has_left, unsubscribe
from digest.web import create_app

EMAIL, PASSWORD = "op@example.org", "correct horse battery staple"
NO_RETRY = dict(retry_delays=())


@pytest.fixture
def app(mail_settings):
    """The app, its sign-in limit out of the way (one test checks the real one)."""
    return create_app(mail_settings.with_(extra={**mail_settings.extra, "rate_limit_admin_login": "1000 per minute"}))


@pytest.fixture
def operator(settings) -> str:
    with session_scope(settings) as session:
        create_operator(session, EMAIL, PASSWORD)
    return EMAIL


def sign_in(client, email: str = EMAIL, password: str = PASSWORD, **kwargs):
    page = client.get("/admin/login", **kwargs)
    return client.post(
        "/admin/login", data={"csrf_token": csrf_token(page.data), "email": email, "password": password, "next": ""}, **kwargs
    )


def console_post(client, path: str, data: dict | None = None, page: str = "/admin/actions"):
    """POST a console form with the CSRF token of a console page, as the browser would."""
    return client.post(path, data={"csrf_token": csrf_token(client.get(page).data), **(data or {})})


def audit_rows(settings) -> list[tuple[str, str, str | None, dict | None]]:
    with session_scope(settings) as session:
        return [(e.operator, e.action, e.target, e.details) for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


def visible(response) -> str:
    """The page's text as a reader sees it: tags dropped, entities resolved, white space collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", text(response)).split())


def admin_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin")]


# ---------------------------------------------------------------- access


def test_every_console_route_is_denied_without_a_session(app, client):
    rules = admin_rules(app)
    assert {r.endpoint for r in rules} >= {
        "admin.dashboard",
        "admin.subscribers",
        "admin.actions",
        "admin.audit",
        "admin.pause",
        "admin.resume",
        "admin.ingest",
        "admin.suppress",
        "admin.restore",
        "admin.logout",
        "admin.login",
    }
    token = csrf_token(client.get("/admin/login").data)  # a valid token: the refusal is the session's, not CSRF's
    checked = 0
    for rule in rules:
        if rule.endpoint == "admin.login":
            continue
        assert not rule.arguments, rule  # every console URL is a plain path; look-ups are query strings
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            checked += 1
            if method == "GET":
                response = client.get(rule.rule)
                assert response.status_code == 303, rule.rule
                assert response.headers["Location"].startswith("/admin/login?next=")
            else:
                response = client.open(rule.rule, method=method, data={"csrf_token": token, "email": "a@example.org"})
                assert response.status_code == 401, (method, rule.rule)
                assert "Sign in first" in text(response)
    assert checked >= 10
    assert client.get("/admin").status_code in (301, 308)  # to /admin/, which redirects to sign in
    assert audit_rows(app.config["DIGEST_SETTINGS"]) == []
    with session_scope(app.config["DIGEST_SETTINGS"]) as session:
        assert sending_paused(session) is None


def test_signing_in_and_out(app, client, operator, settings):
    refused = sign_in(client, password="not the password at all")
    assert refused.status_code == 400 and "Wrong email or password" in text(refused)
    assert sign_in(client, email="nobody@example.org").status_code == 400

    before_login = csrf_token(client.get("/admin/login").data)
    response = sign_in(client)
    assert response.status_code == 303 and response.headers["Location"] == "/admin/"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("digest_session=") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" in cookie  # the base URL is https
    page = client.get("/admin/")
    assert page.status_code == 200 and "Dashboard" in text(page) and EMAIL in text(page)
    # a new session at sign-in: the form token of the session before it no longer works
    assert client.post("/admin/pause", data={"csrf_token": before_login}).status_code == 400
    with session_scope(settings) as session:
        assert sending_paused(session) is None
        op = session.scalars(select(Operator)).one()
        assert op.last_login_at is not None and op.session_nonce

    # next= brings you back to the page you asked for, never to another site
    other = app.test_client()
    asked = other.get("/admin/audit?before=5")
    assert asked.headers["Location"] == "/admin/login?next=/admin/audit?before%3D5"
    page = other.get(asked.headers["Location"])
    landed = other.post(
        "/admin/login", data={"csrf_token": csrf_token(page.data), "email": EMAIL, "password": PASSWORD, "next": "/admin/audit?before=5"}
    )
    assert landed.headers["Location"] == "/admin/audit?before=5"
    for elsewhere in ("https://evil.example/admin", "//evil.example/admin", "/\\evil.example", "/preferences/x"):
        page = other.get("/admin/login")
        gone = other.post(
            "/admin/login", data={"csrf_token": csrf_token(page.data), "email": EMAIL, "password": PASSWORD, "next": elsewhere}
        )
        assert gone.headers["Location"] == "/admin/", elsewhere
    # that last sign-in (another browser) ended the first one
    assert client.get("/admin/").status_code == 303

    assert console_post(other, "/admin/logout").headers["Location"] == "/admin/login?signed_out=1"
    assert other.get("/admin/").status_code == 303
    with session_scope(settings) as session:
        assert session.scalars(select(Operator)).one().session_nonce is None  # ended on the server too
    actions = [(who, action) for who, action, _target, _details in audit_rows(settings)]
    assert actions == [
        (EMAIL, "login_refused"),
        ("nobody@example.org", "login_refused"),
        (EMAIL, "login"),
        (EMAIL, "login"),
        *[(EMAIL, "login")] * 4,
        (EMAIL, "logout"),
    ]


def test_a_stolen_cookie_stops_working_after_sign_out(app, operator):
    browser = app.test_client()
    sign_in(browser)
    stolen = browser.get_cookie("digest_session").value
    console_post(browser, "/admin/logout")
    thief = app.test_client()
    thief.set_cookie("digest_session", stolen, domain="localhost")
    assert thief.get("/admin/").status_code == 303


def test_a_disabled_operator_is_signed_out_and_cannot_sign_in(client, operator, settings):
    sign_in(client)
    assert client.get("/admin/").status_code == 200
    with session_scope(settings) as session:
        session.scalars(select(Operator)).one().disabled = True  # as `digest admin disable` does (it also clears the nonce)
    assert client.get("/admin/").status_code == 303
    token = csrf_token(client.get("/admin/login").data)
    assert client.post("/admin/pause", data={"csrf_token": token}).status_code == 401
    with session_scope(settings) as session:
        assert sending_paused(session) is None
    assert sign_in(client).status_code == 400


def test_a_form_without_its_csrf_token_is_refused(client, operator, settings):
    sign_in(client)
    for path in ("/admin/pause", "/admin/resume", "/admin/ingest", "/admin/subscribers/suppress", "/admin/logout"):
        response = client.post(path, data={"email": "a@example.org"})
        assert response.status_code == 400 and "This form has expired" in text(response), path
        response = client.post(path, data={"csrf_token": "forged", "email": "a@example.org"})
        assert response.status_code == 400, path
    with session_scope(settings) as session:
        assert sending_paused(session) is None
    assert [action for _, action, _, _ in audit_rows(settings)] == ["login"]
    assert client.get("/admin/").status_code == 200  # still signed in


def test_signing_in_is_rate_limited_per_address_and_per_account(mail_settings, operator):
    app = create_app(mail_settings)
    client = app.test_client()
    for _ in range(5):
        assert sign_in(client, password="wrong wrong wrong").status_code == 400
    assert sign_in(client).status_code == 429  # from this address: even the right password waits
    # per account: a sixth try at the same account from yet another address is refused…
    for n in range(5):
        sign_in(app.test_client(), password="wrong wrong wrong", environ_base={"REMOTE_ADDR": f"10.0.0.{n}"})
    assert sign_in(app.test_client(), environ_base={"REMOTE_ADDR": "10.0.1.1"}).status_code == 429
    # …while another account from a fresh address is not
    assert sign_in(app.test_client(), email="other@example.org", environ_base={"REMOTE_ADDR": "10.0.2.2"}).status_code == 400
    # pages other than the sign-in POST are not limited by it
    assert app.test_client().get("/admin/login").status_code == 200


# ---------------------------------------------------------------- pause


@pytest.fixture
def due_readers(session, make_paper):
    make_paper("2611.00001", "Video diffusion at scale", upvotes=90, session=session)
    make_paper("2611.00002", "Agents for science", upvotes=70, session=session)
    people = [add_subscriber(session, "alice@example.org", ["video"]), add_subscriber(session, "bob@example.org")]
    session.commit()
    return people


def test_pause_stops_the_next_send_and_resume_sends_it(client, operator, mail_settings, smtp_server, due_readers, recording_queue):
    sign_in(client)
    paused = console_post(client, "/admin/pause", {"back": "/admin/"}, page="/admin/")
    assert paused.status_code == 303 and paused.headers["Location"] == "/admin/"
    page = text(client.get("/admin/"))
    assert "Sending is paused" in page and f"by {EMAIL}" in page

    report = send_due(mail_settings, AT, **NO_RETRY)  # a real run, as `digest send` makes it
    assert (report.sent, report.skipped, report.deferred) == (0, 0, [])
    assert smtp_server.messages == []
    assert "PAUSED" in plan_and_dispatch(mail_settings, AT, recording_queue).line() and recording_queue.sent == []
    with session_scope(mail_settings) as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0  # nothing planned…
        assert {s.next_due_at for s in session.scalars(select(Subscriber))} == {AT}  # …and nobody's slot moved on

    resumed = console_post(client, "/admin/resume", {"back": "/admin/actions"})
    assert resumed.headers["Location"] == "/admin/actions"
    assert "Sending is paused" not in text(client.get("/admin/"))
    report = send_due(mail_settings, AT, **NO_RETRY)
    assert report.sent == 2
    assert sorted(m["To"] for m in smtp_server.messages) == ["alice@example.org", "bob@example.org"]
    assert [(who, action) for who, action, _, _ in audit_rows(mail_settings)] == [(EMAIL, "login"), (EMAIL, "pause"), (EMAIL, "resume")]


def test_rows_handed_to_a_sender_while_paused_stay_pending_untouched(mail_settings, smtp_server, due_readers):
    with session_scope(mail_settings) as session:
        ids = plan(session, mail_settings, AT)  # planned before the pause, handed out after it
        pause_sending(session, "cli", AT)
    report = send_deliveries(mail_settings, ids, AT)
    assert (report.sent, report.failed, report.deferred) == (0, 0, [])
    assert smtp_server.messages == []
    with session_scope(mail_settings) as session:
        rows = session.scalars(select(Delivery)).all()
        assert [(r.status, r.attempts, r.claimed_at, r.error) for r in rows] == [(DeliveryStatus.pending, 0, None, None)] * 2


def test_every_console_page_shows_the_pause(app, client, operator, settings):
    sign_in(client)
    with session_scope(settings) as session:
        pause_sending(session, "cli", datetime(2026, 12, 1, 9, 30, tzinfo=timezone.utc))
    pages = [r.rule for r in admin_rules(app) if "GET" in r.methods and r.endpoint != "admin.login"]
    assert len(pages) >= 4
    for path in pages:
        page = visible(client.get(path))
        assert "Sending is paused since 2026-12-01 09:30 UTC by cli" in page, path
        assert "Resume sending" in page
        assert "could not be drawn" not in page  # the dashboard's charts were drawn
    assert "Sending is paused" not in text(app.test_client().get("/admin/login"))  # nothing said to a stranger


def test_the_demo_outbox_says_why_send_now_sent_nothing(mail_settings, smtp_server, due_readers):
    client = create_app(mail_settings.with_(demo=True)).test_client()
    with session_scope(mail_settings) as session:
        pause_sending(session, "cli", AT)
    assert "Sending is paused" in visible(client.get("/outbox/"))
    response = client.post("/outbox/send-now", data={"csrf_token": csrf_token(client.get("/").data)})
    assert response.headers["Location"] == "/outbox/?paused=1"
    shown = visible(client.get(response.headers["Location"]))
    assert "Sending is paused" in shown and "nothing was sent" in shown
    assert smtp_server.messages == []


# ---------------------------------------------------------------- actions and their audit rows


def test_each_action_writes_its_audit_row(client, operator, settings, monkeypatch):
    from digest import jobs

    sign_in(client)
    monkeypatch.setattr(jobs, "run_ingest", lambda s, now=None: IngestReport("https://papers.example/api", fetched=3, new=2))
    done = console_post(client, "/admin/ingest")
    assert done.headers["Location"] == "/admin/actions"
    assert "Ingest done" in text(client.get("/admin/actions"))

    def broken(s, now=None):
        raise ConnectionError("the source is down")

    monkeypatch.setattr(jobs, "run_ingest", broken)
    console_post(client, "/admin/ingest")
    assert "Ingest failed: ConnectionError: the source is down" in text(client.get("/admin/actions"))
    console_post(client, "/admin/pause")
    console_post(client, "/admin/pause")  # already paused: nothing happens, nothing written
    console_post(client, "/admin/resume")
    console_post(client, "/admin/subscribers/suppress", {"email": "Spam@Example.org"})
    rows = audit_rows(settings)
    assert [(who, action, target) for who, action, target, _ in rows] == [
        (EMAIL, "login", None),
        (EMAIL, "ingest", settings.source_url),
        (EMAIL, "ingest", settings.source_url),
        (EMAIL, "pause", None),
        (EMAIL, "resume", None),
        (EMAIL, "suppress", "spam@example.org"),
    ]
    assert rows[1][3]["report"] and rows[2][3] == {"error": "ConnectionError: the source is down"}
    assert rows[5][3]["changed"] is True
    page = visible(client.get("/admin/audit"))
    assert "6 in all" in page and "spam@example.org" in page and page.index("suppress") < page.index("resume")


def test_with_a_broker_the_ingest_is_a_task_for_the_workers(mail_settings, operator, monkeypatch):
    from digest import queue

    sent = []

    class Client:
        def send_task(self, name, **kwargs):
            sent.append((name, kwargs))

    monkeypatch.setattr(queue, "celery_client", lambda settings: Client())
    client = create_app(mail_settings.with_(broker_url="redis://127.0.0.1:1/0", extra={"ratelimit_storage_uri": "memory://"})).test_client()
    sign_in(client)
    console_post(client, "/admin/ingest")
    assert sent == [("digest.ingest", {"kwargs": {"force": True}})]
    assert "Ingest queued for the workers" in text(client.get("/admin/actions"))
    assert audit_rows(mail_settings)[-1][1:] == ("ingest", mail_settings.source_url, {"queued": True})


# ---------------------------------------------------------------- suppress and restore


def subscriber_of(settings, email: str) -> Subscriber:
    with session_scope(settings) as session:
        return session.scalars(select(Subscriber).where(Subscriber.email == email)).one()


def test_suppress_then_restore_a_confirmed_reader(client, operator, settings, session):
    add_subscriber(session, "ann@example.org", ["video"])
    session.commit()
    sign_in(client)
    console_post(client, "/admin/subscribers/suppress", {"email": "ann@example.org"})
    ann = subscriber_of(settings, "ann@example.org")
    assert (ann.state, ann.unsubscribe_method, ann.next_due_at) == (SubscriberState.suppressed, UnsubscribeMethod.admin, None)
    assert ann.suppressed_reason == f"suppressed by {EMAIL}"
    with session_scope(settings) as s:
        assert has_left(s, "ann@example.org")  # no import brings it back meanwhile
    page = visible(client.get("/admin/subscribers?email=ann@example.org"))
    assert "Restore this address" in page and "may be restored" in page

    console_post(client, "/admin/subscribers/restore", {"email": "ann@example.org"})
    ann = subscriber_of(settings, "ann@example.org")
    assert (ann.state, ann.unsubscribe_method, ann.suppressed_reason) == (SubscriberState.active, None, None)
    assert ann.next_due_at is not None and ann.next_due_at > datetime.now(timezone.utc)
    with session_scope(settings) as s:
        assert not has_left(s, "ann@example.org")
    assert [(a, t, d["changed"]) for _, a, t, d in audit_rows(settings)[1:]] == [
        ("suppress", "ann@example.org", True),
        ("restore", "ann@example.org", True),
    ]


def test_restore_never_overrides_what_the_person_chose(client, operator, settings, session):
    now = datetime.now(timezone.utc)
    bounced = add_subscriber(session, "bounced@example.org")
    left = add_subscriber(session, "left@example.org")
    complained = add_subscriber(session, "complained@example.org")
    never = add_subscriber(session, "never@example.org", state=SubscriberState.pending, due=None)
    never.confirmed_at = None
    # confirmed, unsubscribed, then (however it got there) suppressed by a bounce: they chose to leave, that stands
    came_back = add_subscriber(session, "cameback@example.org")
    session.flush()
    suppress_subscriber(session, bounced.id, "hard bounce: 550 no such user", remembered="bounced")
    unsubscribe(session, left, now, UnsubscribeMethod.link)
    unsubscribe(session, complained, now, UnsubscribeMethod.complaint)
    suppress_subscriber(session, never.id, "hard bounce: 550", remembered="bounced")
    unsubscribe(session, came_back, now, UnsubscribeMethod.one_click)
    came_back.state = SubscriberState.pending
    session.flush()
    suppress_subscriber(session, came_back.id, "hard bounce: 550", remembered="bounced")
    session.add(Suppression(address_hash=address_hash("gone@example.org"), reason="unsubscribed"))  # left, row purged since
    session.commit()
    sign_in(client)

    for email in ("left@example.org", "complained@example.org", "never@example.org", "cameback@example.org", "gone@example.org"):
        before = session.execute(select(Subscriber.state).where(Subscriber.email == email)).scalar()
        console_post(client, "/admin/subscribers/restore", {"email": email})
        session.expire_all()
        assert session.execute(select(Subscriber.state).where(Subscriber.email == email)).scalar() == before, email
        assert audit_rows(settings)[-1][3]["changed"] is False, email
    assert has_left(session, "gone@example.org") and has_left(session, "left@example.org")
    assert "only signing up again themselves" in text(client.get("/admin/subscribers?email=left@example.org"))

    console_post(client, "/admin/subscribers/restore", {"email": "bounced@example.org"})  # a bounce the operator knows is over
    assert subscriber_of(settings, "bounced@example.org").state == SubscriberState.active
    console_post(client, "/admin/subscribers/suppress", {"email": "left@example.org"})  # unsubscribed: left as it is
    left = subscriber_of(settings, "left@example.org")
    assert (left.state, left.unsubscribe_method) == (SubscriberState.unsubscribed, UnsubscribeMethod.link)
    assert "is unsubscribed already" in text(client.get("/admin/subscribers?email=left@example.org"))


def test_an_address_with_no_subscription_can_be_suppressed_and_that_lifted(client, operator, settings, session):
    sign_in(client)
    console_post(client, "/admin/subscribers/suppress", {"email": "blocked@example.org"})
    assert session.get(Suppression, address_hash("blocked@example.org")).reason == "admin"
    console_post(client, "/admin/subscribers/restore", {"email": "blocked@example.org"})
    session.expire_all()
    assert session.get(Suppression, address_hash("blocked@example.org")) is None
    response = console_post(client, "/admin/subscribers/suppress", {"email": "not an address"})
    assert response.headers["Location"] == "/admin/subscribers"
    assert [a for _, a, _, _ in audit_rows(settings)] == ["login", "suppress", "restore"]


def test_the_subscriber_page_shows_state_filters_digests_votes_and_events(client, operator, settings, session, make_paper):
    from digest.models import EventKind, MailEvent, Vote

    paper = make_paper("2611.00001", "Video diffusion at scale", session=session)
    ann = add_subscriber(session, "ann@example.org", ["video diffusion", "author:lecun"])
    add_subscriber(session, "anna@example.org")
    session.add(Vote(subscriber_id=ann.id, paper_id=paper.id, vote=1))
    delivery = Delivery(
        subscriber_id=ann.id,
        period="d:2026-11-30",
        scheduled_for=AT,
        window_start=AT.date(),
        window_end=AT.date(),
        status=DeliveryStatus.sent,
    )
    session.add(delivery)
    session.flush()
    session.add(
        MailEvent(
            kind=EventKind.soft,
            subscriber_id=ann.id,
            delivery_id=delivery.id,
            address="ann@example.org",
            diagnostic="452 4.2.2 mailbox full",
        )
    )
    session.commit()
    sign_in(client)
    page = visible(client.get("/admin/subscribers?email=ANN@example.org"))
    for shown in (
        "ann@example.org",
        "active",
        "video diffusion",
        "author:lecun",
        "d:2026-11-30",
        "sent",
        "Video diffusion at scale",
        "more",
        "452 4.2.2 mailbox full",
    ):
        assert shown in page, shown
    assert "Suppress this address" in page
    found = visible(client.get("/admin/subscribers?email=ann"))
    assert "2 addresses containing “ann”" in found
    assert "No subscriber’s address contains “%”" in text(client.get("/admin/subscribers?email=%25"))


# ---------------------------------------------------------------- how people leave


def test_how_an_unsubscribe_happened_is_recorded(client, session, mail_settings):
    from digest import tokens

    people = {name: add_subscriber(session, f"{name}@example.org") for name in ("oneclick", "button", "prefs")}
    session.commit()

    def link(name):
        return "/unsubscribe/" + tokens.make_token(mail_settings, "unsubscribe", people[name].public_id)

    client.post(link("oneclick"), data={"List-Unsubscribe": "One-Click"})
    client.post(link("button"))
    prefs_page = client.get("/preferences/" + tokens.make_token(mail_settings, "preferences", people["prefs"].public_id))
    assert "?via=preferences" in text(prefs_page)
    page = client.get(link("prefs") + "?via=preferences")
    assert "?via=preferences" in text(page)  # the page's button keeps where it came from
    client.post(link("prefs") + "?via=preferences")
    session.expire_all()
    assert {s.email: s.unsubscribe_method for s in session.scalars(select(Subscriber))} == {
        "oneclick@example.org": UnsubscribeMethod.one_click,
        "button@example.org": UnsubscribeMethod.link,
        "prefs@example.org": UnsubscribeMethod.preferences,
    }


# ---------------------------------------------------------------- the command line (SQLite: each command is a process)


@pytest.fixture
def cli_settings(sqlite_database, tmp_path):
    """Settings on a SQLite database, once: the command line does the same on both backends."""
    return Settings(
        database_url=sqlite_database("cli"),
        secret_key="test-secret-key-0123456789",
        base_url="https://digest.example.org",
        mail_from="Trending Papers <digest@example.org>",
        data_dir=tmp_path,
    )


def run_cli(settings, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "digest"), *args], env=subprocess_env(settings), input=input, capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_cli_admin_create_list_disable_and_sign_in(cli_settings):
    settings = cli_settings
    app = create_app(settings.with_(extra={"rate_limit_admin_login": "1000 per minute"}))
    client = app.test_client()
    made = run_cli(settings, "admin", "create", "You@Example.org", "--password-stdin", input=PASSWORD + "\n")
    assert made.returncode == 0, made.stderr
    assert "operator you@example.org created" in made.stdout
    with session_scope(settings) as session:
        stored = session.scalars(select(Operator)).one()
        assert stored.password_hash.startswith("scrypt:") and PASSWORD not in stored.password_hash
    assert sign_in(client, "you@example.org").status_code == 303

    short = run_cli(settings, "admin", "create", "short@example.org", "--password-stdin", input="tooshort\n")
    assert short.returncode == 1 and "at least 12 characters" in short.stderr
    again = run_cli(settings, "admin", "create", "you@example.org", "--password-stdin", input=PASSWORD + "\n")
    assert again.returncode == 1 and "has an account already" in again.stderr
    no_tty = run_cli(settings, "admin", "create", "tty@example.org", input=PASSWORD + "\n")
    assert no_tty.returncode == 1 and "--password-stdin" in no_tty.stderr

    listed = run_cli(settings, "admin", "list")
    assert "you@example.org" in listed.stdout and "last sign-in 20" in listed.stdout and "DISABLED" not in listed.stdout
    assert run_cli(settings, "admin", "disable", "you@example.org").returncode == 0
    assert client.get("/admin/").status_code == 303  # signed out at the next request
    assert sign_in(client, "you@example.org").status_code == 400
    assert "DISABLED" in run_cli(settings, "admin", "list").stdout
    assert run_cli(settings, "admin", "enable", "you@example.org").returncode == 0
    assert run_cli(settings, "admin", "password", "you@example.org", "--password-stdin", input="a brand new password\n").returncode == 0
    assert sign_in(client, "you@example.org").status_code == 400
    assert sign_in(app.test_client(), "you@example.org", "a brand new password").status_code == 303
    assert [(who, action, target) for who, action, target, _ in audit_rows(settings) if who == "cli"] == [
        ("cli", "operator_create", "you@example.org"),
        ("cli", "operator_disable", "you@example.org"),
        ("cli", "operator_enable", "you@example.org"),
        ("cli", "operator_password", "you@example.org"),
    ]


def test_cli_pause_resume_and_stats(cli_settings):
    settings = cli_settings
    with session_scope(settings) as session:
        add_subscriber(session, "ann@example.org")
    env = subprocess_env(settings)
    paused = digest_cli(env, "pause")
    assert paused.returncode == 0 and "sending paused" in paused.stdout
    stats = digest_cli(env, "stats")
    assert stats.stdout.startswith("sending is PAUSED since 20") and " by cli " in stats.stdout
    data = json.loads(digest_cli(env, "stats", "--json").stdout)
    assert data["sending"]["paused"] is True and data["sending"]["by"] == "cli"
    send = digest_cli(env, "send", "--at", AT.isoformat())
    assert send.returncode == 0 and "sending is PAUSED" in send.stdout and "nothing planned or sent" in send.stdout
    dry = digest_cli(env, "send", "--dry-run", "--at", AT.isoformat())
    assert "a real run would send nothing now" in dry.stdout
    resumed = digest_cli(env, "resume")
    assert resumed.returncode == 0 and "sending resumed" in resumed.stdout
    assert json.loads(digest_cli(env, "stats", "--json").stdout)["sending"] == {"paused": False, "since": None, "by": None}
    assert [(who, action) for who, action, _, _ in audit_rows(settings)] == [("cli", "pause"), ("cli", "resume")]
    with session_scope(settings) as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
        assert session.scalars(select(Subscriber)).one().next_due_at == AT  # the paused run moved nobody on
