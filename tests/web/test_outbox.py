"""The demo's mail catcher and /outbox page: real SMTP in, the browser page out; never in production."""

from __future__ import annotations

import re
import time

import pytest

from digest.config import SmtpSettings
from digest.mail.catcher import MailCatcher
from digest.mail.mime import MessageSpec, build_message
from digest.mail.transport import SmtpTransport, outbox_folder
from digest.web import create_app

HOSTILE = '<script>alert(1)</script><b>Bold</b> & "quotes"'


@pytest.fixture
def demo_settings(settings):
    return settings.with_(demo=True)


@pytest.fixture
def catcher(demo_settings):
    c = MailCatcher(outbox_folder(demo_settings)).start()
    yield c
    c.stop()


def send(catcher, subject: str, html: str, to: str = "reader@example.org", unsubscribe: bool = False) -> None:
    headers = {"List-Unsubscribe": "<https://digest.example.org/unsubscribe/x>"} if unsubscribe else {}
    data = build_message(
        MessageSpec(
            "Trending Papers", "digest@example.org", to, subject, "plain text body", html, f"m{time.time_ns()}@example.org", headers
        )
    )
    with SmtpTransport(SmtpSettings(host=catcher.host, port=catcher.port, timeout=5)) as transport:
        transport.send("digest@example.org", [to], data)


def test_catcher_files_every_message_sent_over_smtp_and_the_outbox_lists_them_newest_first(demo_settings, catcher):
    send(catcher, "Confirm your subscription", "<html><head></head><body><p>first</p></body></html>")
    send(catcher, "3 trending papers: " + HOSTILE, "<html><head></head><body><p>second</p></body></html>", unsubscribe=True)
    files = sorted(p.name for p in outbox_folder(demo_settings).glob("*.eml"))
    assert len(files) == 2
    client = create_app(demo_settings).test_client()
    page = client.get("/outbox/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "demo only" in body and "Send today's digests now" in body
    assert body.index("3 trending papers") < body.index("Confirm your subscription")  # newest first
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    assert re.search(r"<td>digest</td>", body) and re.search(r"<td>account</td>", body)


def test_message_html_is_served_alone_with_its_own_policy_and_shown_in_a_sandboxed_frame(demo_settings, catcher):
    send(
        catcher,
        "Digest",
        "<html><head><style>p{color:red}</style></head><body><p style='color:red'>hi</p><script>x()</script></body></html>",
    )
    name = next(outbox_folder(demo_settings).glob("*.eml")).name
    client = create_app(demo_settings).test_client()
    page = client.get(f"/outbox/{name}")
    assert page.status_code == 200
    assert 'sandbox="allow-popups' in page.get_data(as_text=True) and "allow-scripts" not in page.get_data(as_text=True)
    assert "plain text body" in page.get_data(as_text=True)
    html = client.get(f"/outbox/{name}/html")
    csp = html.headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert html.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert '<base target="_top">' in html.get_data(as_text=True)
    raw = client.get(f"/outbox/{name}/raw")
    assert raw.status_code == 200 and b"Subject: Digest" in raw.data


def test_outbox_rejects_names_that_are_not_its_own_files(demo_settings, catcher):
    client = create_app(demo_settings).test_client()
    for name in ("..%2F..%2Fetc%2Fpasswd", "x.eml", "00000000000000000000-deadbeef.eml"):
        assert client.get(f"/outbox/{name}").status_code == 404


def test_there_is_no_outbox_outside_the_demo(settings):
    client = create_app(settings).test_client()
    assert client.get("/outbox/").status_code == 404
    assert "/outbox" not in client.get("/").get_data(as_text=True)


def test_send_now_needs_the_forms_csrf_token(demo_settings):
    client = create_app(demo_settings).test_client()
    assert client.post("/outbox/send-now").status_code == 400
