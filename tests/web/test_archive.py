"""The "view in browser" page: the digest as sent, rendered from the ledger behind a signed link."""

from __future__ import annotations

import re

import pytest
from digest_helpers import AT, add_subscriber, as_read, parts
from web_helpers import serving

from digest import tokens
from digest.delivery.run import send_due
from digest.web import create_app
from digest.web.archive import ARCHIVE_CSP

ARCHIVE_LINK = re.compile(r'href="https://digest\.example\.org(/digest/[^"]+)"[^>]*>View in browser</a>')


@pytest.fixture
def sent(session, mail_settings, smtp_server, make_paper):
    """One digest sent to alice; returns (settings, the email's HTML, the archive path)."""
    make_paper("2611.00001", "Video diffusion <at> scale", upvotes=9, github_repo="https://github.com/a/b", session=session)
    make_paper("2611.00002", "Agents & tools", upvotes=5, session=session)
    make_paper("2611.00003", "Unrelated", upvotes=7, session=session)
    add_subscriber(session, "alice@example.org", ["video", "agents"])
    session.commit()
    assert send_due(mail_settings, AT, retry_delays=()).sent == 1
    (message,) = smtp_server.messages
    html = parts(message)[1]
    path = ARCHIVE_LINK.search(html).group(1)
    return mail_settings, html, path


def content(html: str) -> str:
    """Everything above the footer, the cards' vote links' tokens masked (signed links are made
    afresh on each render)."""
    return re.sub(r"/vote/[^\"]+", "/vote/…", html.split('<td class="footer"', 1)[0])


def test_archive_page_shows_what_the_email_showed(sent):
    settings, email_html, path = sent
    response = create_app(settings).test_client().get(path)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert content(as_read(page)) == content(email_html)  # as a reader reads both: the email's part is 7bit
    assert "Video diffusion &lt;at&gt; scale" in page and "matched: agents" in page
    assert "View in browser" not in page  # it is the browser view
    assert "/unsubscribe/" in page and "/preferences/" in page


def test_archive_page_has_its_own_csp_allowing_inline_styles_and_no_script(sent):
    settings, _, path = sent
    response = create_app(settings).test_client().get(path)
    csp = response.headers["Content-Security-Policy"]
    assert csp == ARCHIVE_CSP
    assert "style-src 'unsafe-inline'" in csp and "default-src 'none'" in csp and "script-src" not in csp
    assert response.headers["X-Robots-Tag"] == "noindex"
    assert response.headers["Referrer-Policy"] == "no-referrer"


@pytest.mark.parametrize("token", ["garbage", "eyJhbGciOi.tampered.token"])
def test_a_bad_archive_link_gets_a_friendly_400(settings, token):
    response = create_app(settings).test_client().get(f"/digest/{token}")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "This link doesn&#39;t work" in page or "This link doesn't work" in page
    assert "Traceback" not in page


def test_a_link_signed_for_another_purpose_is_refused(settings):
    token = tokens.make_token(settings, "unsubscribe", "some-public-id")
    assert create_app(settings).test_client().get(f"/digest/{token}").status_code == 400


def test_a_well_signed_link_to_no_sent_digest_is_404(settings):
    token = tokens.make_token(settings, "archive", "no-such-delivery")
    response = create_app(settings).test_client().get(f"/digest/{token}")
    assert response.status_code == 404 and "not available" in response.get_data(as_text=True)


@pytest.mark.browser
def test_archive_page_renders_with_its_styles_in_chromium(sent, chromium, screenshot):
    settings, _, path = sent
    with serving(settings) as site:
        page = chromium.new_page(viewport={"width": 390, "height": 900})
        console: list[str] = []
        page.on("console", lambda message: console.append(message.text))
        response = page.goto(f"{site}{path}")
        assert response.status == 200
        card = page.locator(".card").nth(1)
        assert card.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(255, 255, 255)"
        assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(244, 244, 245)"
        assert page.locator("h2 a").all_inner_texts() == ["Video diffusion <at> scale", "Agents & tools"]
        assert page.evaluate("document.documentElement.scrollWidth") <= 390
        assert not [m for m in console if "Content Security Policy" in m], console
        screenshot(page, "archive-390")
