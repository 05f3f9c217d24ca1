"""No 500 for anything a client can send: every route of the app's URL map, walked with hostile values
in each of its arguments (the others kept valid, so the request gets as deep as a real one), every
method it takes and one it does not, and hostile bodies; no answer is a 5xx and nothing is logged as
an unexpected error.

The app runs in demo mode with the SES webhook on, so that every route the app can have is in the
map: /outbox (demo only) and POST /webhooks/bounces/ses. Only the static files are skipped. Then the two
cases issue 24 names (a vote link past 64 bits, 5,000 nested brackets to /preview), and the net under
the routes' own checks: a number out of the database's range is a 400, an overflow of our own a 500.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_to_bytes

import pytest
from digest_helpers import AT, add_subscriber
from sqlalchemy import select
from web_helpers import csrf_token, mailed_link, subscribe
from wtforms.fields.core import UnboundField

from digest import tokens
from digest.db import session_scope
from digest.delivery.run import send_due
from digest.mail.transport import outbox_folder
from digest.models import Delivery, DeliveryItem, Paper
from digest.papers.vectors import represent
from digest.web import create_app
from digest.web.forms import PreferencesForm, SubscribeForm

SES_TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-bounces"
OUTBOX_NAME = "20261130070000000000-0123abcd.eml"
HUGE = "99999999999999999999999"

#: What goes into a URL argument, as it is written in the URL (percent-escapes are sent as those bytes).
URL_VALUES = [
    HUGE,
    str(2**63),  # one past the largest 64-bit id
    str(2**64),
    "-1",
    "0",
    "9" * 5000,  # more digits than int() converts
    "x" * 5000,
    "%FF%FE",  # not UTF-8
    "../../etc/passwd",
    "..%2F..%2Fetc%2Fpasswd",
    "%00",
    "a%00b",
    "%C0%AE%C0%AE",  # overlong UTF-8 dots
]

#: What goes into every field of a posted form (as raw bytes: some are not UTF-8).
FIELD_VALUES = [b"%FF%FE", b"\xff\xfe\xfd", b"%00", b"a%00b", HUGE.encode(), b"-1", b"9" * 5000, b"x" * 5000]

OTHER_FIELDS = ["action", "categories", "categories_shown"]


def field_names() -> list[str]:
    """Every field of the two forms but ``csrf_token`` (kept valid), and the few the views read themselves."""
    fields = {
        name
        for form in (SubscribeForm, PreferencesForm)
        for cls in form.__mro__
        for name, value in vars(cls).items()
        if isinstance(value, UnboundField)
    }
    return sorted((fields | set(OTHER_FIELDS)) - {"csrf_token"})


def bodies(csrf: str) -> list[tuple[str, dict]]:
    """(name, keyword arguments of ``client.open``) for each hostile body."""
    token = csrf.encode()
    fields = field_names()
    found = [
        ("no body", {}),
        ("empty form", {"data": b"", "content_type": "application/x-www-form-urlencoded"}),
    ]
    for value in FIELD_VALUES:
        form = b"&".join([b"csrf_token=" + token] + [name.encode() + b"=" + value for name in fields])
        found.append((f"form of {value[:12]!r}", {"data": form, "content_type": "application/x-www-form-urlencoded"}))
    json_headers = {"X-CSRFToken": csrf}
    found += [
        ("form not UTF-8 in a key", {"data": b"csrf_token=" + token + b"&\xff\xfe=1", "content_type": "application/x-www-form-urlencoded"}),
        (
            "multipart, broken",
            {"data": b'--x\r\nContent-Disposition: form-data; name="\xff"\r\n\r\n\xfe', "content_type": "multipart/form-data; boundary=x"},
        ),
        ("multipart without boundary", {"data": b"csrf_token=" + token, "content_type": "multipart/form-data"}),
        ("nested JSON", {"data": "[" * 5000 + "]" * 5000, "content_type": "application/json", "headers": json_headers}),
        (
            "nested JSON object",
            {"data": '{"topics": ' + "[" * 5000 + "]" * 5000 + "}", "content_type": "application/json", "headers": json_headers},
        ),
        ("JSON not UTF-8", {"data": b'{"topics": "\xff\xfe"}', "content_type": "application/json", "headers": json_headers}),
        ("JSON huge number", {"data": '{"topics": ' + "9" * 5000 + "}", "content_type": "application/json", "headers": json_headers}),
        ("JSON NUL", {"data": '{"topics": "a\\u0000b"}', "content_type": "application/json", "headers": json_headers}),
        ("JSON lone surrogate", {"data": '{"topics": "\\ud800"}', "content_type": "application/json", "headers": json_headers}),
        ("JSON, form content type", {"data": '{"topics": "x"}', "content_type": "application/x-www-form-urlencoded"}),
        (
            "form, JSON content type",
            {"data": b"csrf_token=" + token + b"&topics=x", "content_type": "application/json", "headers": json_headers},
        ),
        ("text/plain", {"data": b"\xff\xfe\x00", "content_type": "text/plain; charset=utf-8"}),
        ("2 MB", {"data": b"a=" + b"x" * (2 * 1024 * 1024), "content_type": "application/x-www-form-urlencoded"}),
        (
            "2 MB JSON",
            {"data": b'{"topics": "' + b"x" * (2 * 1024 * 1024) + b'"}', "content_type": "application/json", "headers": json_headers},
        ),
        ("query string", {"query": "%FF%FE=%00&sent=" + HUGE + "&page=-1&name=..%2F..%2Fetc%2Fpasswd"}),
    ]
    return found


ARGUMENT = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>")


def path_for(rule, values: dict[str, str]) -> str:
    return ARGUMENT.sub(lambda m: values[m.group(1)], rule.rule)


def wsgi_path(path: str) -> str:
    """PATH_INFO as a server hands it over: the escapes undone, the bytes as latin-1 (WSGI's rule)."""
    return unquote_to_bytes(path).decode("latin-1")


@pytest.fixture
def world(session, mail_settings, smtp_server, make_paper, client):
    """A valid value for every argument of every route: an active reader who got a digest (her
    votes, preferences and archive), another to unsubscribe (the walk posts to that link: the
    first reader stays active), a pending one with a confirmation link, a message in the demo's outbox."""
    make_paper("2611.00001", "Video diffusion at scale", upvotes=9, abstract="A video diffusion model.", session=session)
    make_paper("2611.00002", "Agents and tools", upvotes=5, abstract="Language agents call tools.", session=session)
    represent(session)
    alice = add_subscriber(session, "alice@example.org", ["video", "agents"])
    carol = add_subscriber(session, "carol@example.org", due=None)
    session.commit()
    assert send_due(mail_settings, AT, retry_delays=()).sent == 1
    delivery = session.scalars(select(Delivery).where(Delivery.subscriber_id == alice.id)).one()
    paper_id = session.scalars(select(DeliveryItem.paper_id).where(DeliveryItem.delivery_id == delivery.id)).first()
    outbox = outbox_folder(mail_settings)
    outbox.mkdir(parents=True, exist_ok=True)
    (outbox / OUTBOX_NAME).write_bytes(smtp_server.messages[0].as_bytes())
    assert subscribe(client, "bob@example.org", "robots").status_code == 303
    confirm = mailed_link(smtp_server.to("bob@example.org")[0], "confirm").rsplit("/", 1)[1]
    return {
        "confirm": {"token": confirm},
        "preferences": {"token": tokens.make_token(mail_settings, "preferences", alice.public_id)},
        "unsubscribe": {"token": tokens.make_token(mail_settings, "unsubscribe", carol.public_id)},
        "archive": {"token": tokens.make_token(mail_settings, "archive", delivery.public_id)},
        "vote": {"token": tokens.make_token(mail_settings, "vote", alice.public_id), "paper_id": str(paper_id), "way": "more"},
        "reader_feed": {"token": tokens.make_token(mail_settings, "feed", alice.public_id)},
        "archive_day": {"day": "2026-11-29"},
        "outbox.show": {"name": OUTBOX_NAME},
        "outbox.show_html": {"name": OUTBOX_NAME},
        "outbox.raw": {"name": OUTBOX_NAME},
    }


def valid_values(rule, world) -> dict[str, str]:
    """The route's valid arguments; for a route the world does not know, a plain one."""
    known = world.get(rule.endpoint, {})
    return {name: known.get(name, "1") for name in rule.arguments}


def not_allowed(rule) -> str:
    return next(m for m in ("PUT", "DELETE", "PATCH", "POST", "GET") if m not in rule.methods)


def hostile_app(mail_settings):
    app = create_app(mail_settings.with_(demo=True, ses_topic_arns=(SES_TOPIC,)))
    for limiter in app.extensions["limiter"]:
        limiter.enabled = False  # every request must reach its view, not stop at a 429
    return app


def walk(client, rules, world, csrf: str, caplog) -> tuple[int, list[str]]:
    """Every rule with each argument hostile in turn, every method, the hostile bodies on its valid
    URL, a method it does not take: the requests made, and those answered 5xx or that logged an error."""
    hostile_bodies = bodies(csrf)
    failures: list[str] = []
    requests = 0

    def send(method: str, path: str, what: str, query: str = "", **kwargs) -> int:
        nonlocal requests
        requests += 1
        caplog.clear()
        environ = {"PATH_INFO": wsgi_path(path), "QUERY_STRING": query}
        with caplog.at_level(logging.WARNING):
            response = client.open("/", method=method, environ_overrides=environ, **kwargs)
        # an error, or the safety net for numbers out of the database's range: every route checks its own first
        logged = [r for r in caplog.records if r.levelno >= logging.ERROR or (r.name == "digest.web.site" and r.levelno >= logging.WARNING)]
        if response.status_code >= 500 or logged:
            errors = "; ".join(f"{r.getMessage()} [{r.exc_info[1]!r}]" if r.exc_info else r.getMessage() for r in logged)
            failures.append(f"{method} {path[:100]} ({what}): {response.status_code} {errors[:300]}")
        return response.status_code

    for rule in rules:
        valid = valid_values(rule, world)
        methods = sorted(rule.methods)
        baseline = path_for(rule, valid)
        if "GET" in methods and (rule.endpoint in world or not rule.arguments):  # the walk starts from a page that works
            assert client.get(baseline).status_code < 400, baseline
        # the URL: each argument in turn hostile, every method the rule takes, no body
        for name in rule.arguments:
            for value in URL_VALUES:
                path = path_for(rule, {**valid, name: value})
                for method in methods:
                    send(method, path, f"{name}={value[:20]}")
        # the bodies, on the valid URL
        for method in methods:
            for what, kwargs in hostile_bodies:
                send(method, baseline, what, **kwargs)
        # a method it does not take
        wrong = not_allowed(rule)
        assert send(wrong, baseline, "wrong method") == 405, f"{wrong} {baseline}"
    return requests, failures


def test_no_route_answers_5xx_to_hostile_input(mail_settings, world, caplog):
    app = hostile_app(mail_settings)
    client = app.test_client()
    csrf = csrf_token(client.get("/").data)
    refused = client.post("/", data={"csrf_token": csrf, "email": "not an address"})
    assert refused.status_code == 400 and b"This form has expired" not in refused.data  # the forms are validated, not stopped at CSRF
    rules = [rule for rule in app.url_map.iter_rules() if rule.endpoint != "static"]
    assert {"vote", "live_preview", "outbox.show", "ses_notification", "reader_feed", "archive_day"} <= {rule.endpoint for rule in rules}
    requests, failures = walk(client, rules, world, csrf, caplog)
    assert requests > 500
    assert not failures, f"{len(failures)} of {requests} requests answered 5xx or logged an error:\n" + "\n".join(failures)


def test_no_console_page_answers_5xx_to_a_signed_in_operators_hostile_input(mail_settings, world, caplog):
    """The same walk over /admin with an operator signed in (without one every console page stops
    at the sign-in check): what a client holding a session can send reaches the console's views."""
    from digest.db import session_scope
    from digest.models.operators import create_operator

    with session_scope(mail_settings) as session:
        create_operator(session, "op@example.org", "correct horse battery staple")
    app = hostile_app(mail_settings)
    client = app.test_client()
    page = client.get("/admin/login")
    signed = client.post(
        "/admin/login",
        data={"csrf_token": csrf_token(page.data), "email": "op@example.org", "password": "correct horse battery staple", "next": ""},
    )
    assert signed.status_code == 303 and client.get("/admin/").status_code == 200
    csrf = csrf_token(client.get("/admin/actions").data)
    rules = [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/admin") and rule.endpoint != "static"]
    rules.sort(key=lambda rule: "logout" in rule.endpoint)  # signing out last: the rest is walked signed in
    assert len(rules) >= 5
    requests, failures = walk(client, rules, world, csrf, caplog)
    assert requests > 100
    assert not failures, f"{len(failures)} of {requests} requests answered 5xx or logged an error:\n" + "\n".join(failures)


# ---------------------------------------------------------------- the two the issue names, and the net


def test_a_vote_link_whose_paper_id_is_past_64_bits_is_a_404_before_any_query(client, mail_settings, session, caplog):
    alice = add_subscriber(session, "alice@example.org")
    session.commit()
    token = tokens.make_token(mail_settings, "vote", alice.public_id)
    for paper_id in (HUGE, str(2**63), "9" * 5000):
        for method in ("GET", "POST"):
            assert client.open(f"/vote/{token}/{paper_id}/more", method=method).status_code == 404
    assert client.get(f"/vote/{token}/{2**63 - 1}/more").status_code == 404  # the largest id: looked up, not there
    assert [r for r in caplog.records if r.levelno >= logging.WARNING and r.name.startswith("digest.web")] == []


def test_a_preview_of_5000_nested_brackets_is_a_400(client, caplog):
    csrf = csrf_token(client.get("/").data)
    for body in ("[" * 5000 + "]" * 5000, '{"topics": "\\ud800"}'):
        response = client.post("/preview", data=body, content_type="application/json", headers={"X-CSRFToken": csrf})
        assert response.status_code == 400 and response.json["ok"] is False
    assert client.post("/preview", json={"topics": "diffusion"}, headers={"X-CSRFToken": csrf}).json["ok"] is True
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_a_number_past_the_database_range_that_reaches_a_query_is_a_400_and_a_warning(mail_settings, caplog):
    """The net under the routes' own checks: a route that let one through answers 400, and says so in the log."""
    app = create_app(mail_settings)

    def lookup(number: str):
        with session_scope(mail_settings) as session:
            return str(session.get(Paper, int(number)))

    app.add_url_rule("/lookup/<number>", "lookup", lookup)
    response = app.test_client().get(f"/lookup/{2**64}")
    assert response.status_code == 400 and b"Something in that request didn" in response.data
    (record,) = [r for r in caplog.records if r.name == "digest.web.site"]
    assert record.levelno == logging.WARNING and "out of the database's range" in record.getMessage() and record.exc_info is None


def test_an_overflow_of_our_own_stays_a_500_with_its_traceback_in_the_log(mail_settings, caplog):
    app = create_app(mail_settings)

    def broken():
        raise OverflowError("math range error")

    app.add_url_rule("/broken", "broken", broken)
    assert app.test_client().get("/broken").status_code == 500
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert isinstance(record.exc_info[1], OverflowError)
