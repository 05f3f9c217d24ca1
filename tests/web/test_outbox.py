"""The demo's mail catcher and /outbox page: real SMTP in, the browser page out; never in production."""

from __future__ import annotations

import re
import time

import pytest
from web_helpers import serving

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
    assert "demo only" in body and "Send the next digests now" in body
    assert body.index("3 trending papers") < body.index("Confirm your subscription")  # newest first
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;" in body
    assert re.search(r"<td>digest</td>", body) and re.search(r"<td>account</td>", body)


def test_a_filed_message_says_where_its_bounces_go_as_a_mailbox_does(demo_settings, catcher):
    """The envelope sender (a VERP address, with a bounce domain) is the Return-Path a mailbox shows."""
    verp = "bounces+AbC-123_x@bounces.example.org"
    data = build_message(
        MessageSpec("Trending Papers", "digest@example.org", "ann@example.org", "Hi", "text", "<p>hi</p>", "m1@example.org", {})
    )
    with SmtpTransport(SmtpSettings(host=catcher.host, port=catcher.port, timeout=5)) as transport:
        transport.send(verp, ["ann@example.org"], data)
    (path,) = outbox_folder(demo_settings).glob("*.eml")
    assert path.read_bytes() == f"Return-Path: <{verp}>\r\n".encode() + data  # the message itself as it was sent
    page = create_app(demo_settings).test_client().get(f"/outbox/{path.name}").get_data(as_text=True)
    assert f"<dt>Return-Path</dt><dd>&lt;{verp}&gt;</dd>" in page


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
    assert 'sandbox="allow-same-origin allow-popups' in page.get_data(as_text=True) and "allow-scripts" not in page.get_data(as_text=True)
    assert "plain text body" in page.get_data(as_text=True)
    assert f'<a href="/outbox/{name}/html" target="_blank" rel="noopener">Open in a new tab</a>' in page.get_data(as_text=True)
    html = client.get(f"/outbox/{name}/html")
    csp = html.headers["Content-Security-Policy"]
    assert "style-src 'unsafe-inline'" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert "form-action 'none'" in csp and "; sandbox allow-same-origin allow-popups " in csp  # in a tab of its own too
    assert "allow-scripts" not in csp and "allow-forms" not in csp
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


# ---------------------------------------------------------------- on a phone, in Chromium

LINES_JS = """element => {
    const lines = new Map();  // each character's line (its top), in order
    const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (let i = 0; i < node.length; i++) {
            const range = document.createRange();
            range.setStart(node, i);
            range.setEnd(node, i + 1);
            const rect = range.getClientRects()[0];
            if (!rect) continue;
            const top = Math.round(rect.top);
            lines.set(top, (lines.get(top) || "") + node.data[i]);
        }
    }
    return [...lines.values()];
}"""


@pytest.fixture
def outbox_site(demo_settings, catcher):
    """The demo's app on a real server thread (the frame-sizing script runs in the browser)."""
    with serving(demo_settings) as site:
        yield site


@pytest.mark.browser
def test_on_a_phone_addresses_break_only_between_their_parts_and_the_email_frame_fits_the_email(
    chromium, screenshot, demo_settings, catcher, outbox_site
):
    long_address = "ann.lovelace.research.group@mathematics.example.org"
    paragraphs = "".join(f"<p>Paragraph {i} of a long email, long enough to need scrolling on any screen.</p>" for i in range(60))
    send(catcher, "Confirm your subscription", "<html><head></head><body><p>short</p></body></html>", to="reader@example.org")
    send(catcher, "10 trending papers: a long digest", f"<html><head></head><body>{paragraphs}</body></html>", to=long_address)
    page = chromium.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))

    page.goto(outbox_site + "/outbox/")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    addresses = page.locator("td.address")
    assert addresses.nth(1).evaluate(LINES_JS) == ["reader@example.org"]  # one line, never "reader@exam" + "ple.org"
    # too long for a line: it breaks after the @, not in the middle of a name
    assert addresses.nth(0).evaluate(LINES_JS) == ["ann.lovelace.research.group@", "mathematics.example.org"]
    screenshot(page, "outbox-390")

    page.click("text=10 trending papers: a long digest")
    tab = page.locator("a:has-text('Open in a new tab')")
    assert tab.get_attribute("target") == "_blank"
    frame = page.locator("iframe.mail-frame")
    frame.wait_for()
    page.wait_for_function(
        "() => { const f = document.querySelector('iframe.mail-frame');"
        " return f.contentDocument && f.contentDocument.readyState === 'complete' && f.style.height !== ''; }"
    )
    frame_height, email_height = frame.evaluate("f => [f.clientHeight, f.contentDocument.documentElement.scrollHeight]")
    assert email_height > 2000 and abs(frame_height - email_height) <= 2  # the whole email, no scrolling inside the frame
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "outbox-message-390")

    with page.context.expect_page() as opened:
        tab.click()
    new_tab = opened.value
    new_tab.wait_for_load_state()
    assert new_tab.url.endswith("/html") and new_tab.locator("text=Paragraph 59 of a long email").count() == 1

    page.go_back()
    page.click("text=Confirm your subscription")
    page.wait_for_function("() => document.querySelector('iframe.mail-frame').style.height !== ''")
    assert page.locator("iframe.mail-frame").evaluate("f => f.clientHeight") < 200  # a short email, a short frame
    assert problems == []


GAP_JS = "() => document.querySelector('.card').getBoundingClientRect().top - document.querySelector('.site-header').getBoundingClientRect().bottom"


@pytest.mark.browser
@pytest.mark.parametrize("width", [1280, 390])
def test_the_outbox_cards_stand_clear_of_the_header_bar(chromium, screenshot, catcher, outbox_site, width):
    send(catcher, "Confirm your subscription", "<html><head></head><body><p>short</p></body></html>", to="reader@example.org")
    page = chromium.new_page(viewport={"width": width, "height": 900})
    page.goto(outbox_site + "/outbox/")
    assert page.evaluate(GAP_JS) >= 16
    screenshot(page, f"outbox-{width}")
    page.click("text=Confirm your subscription")
    page.wait_for_url("**/*.eml")  # the click navigates: measure the message page, not the list as it unloads
    page.locator(".card").first.wait_for()
    assert page.evaluate(GAP_JS) >= 16
    screenshot(page, f"outbox-message-{width}")
