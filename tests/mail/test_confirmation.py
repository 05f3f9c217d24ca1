"""The confirmation emails (``email_templates/confirm``): both variants read well on a phone."""

from __future__ import annotations

import pytest

from digest import tokens
from digest.config import Settings
from digest.mail.confirmation import ConfirmationLinks, confirmation_context
from digest.mail.templates import templates
from digest.models import new_public_id

SETTINGS = Settings(
    database_url="sqlite://",
    secret_key="test-secret-key-0123456789",
    base_url="https://digest.example.org",
    mail_from="Trending Papers <digest@example.org>",
)


def rendered(already_subscribed: bool, email: str = "ann@example.org"):
    public_id = new_public_id()
    links = ConfirmationLinks(tokens.link(SETTINGS, "confirm", public_id), tokens.link(SETTINGS, "preferences", public_id))
    context = confirmation_context(SETTINGS, email, "daily", links, already_subscribed=already_subscribed, expires_hours=48)
    return templates().render("confirm", context), links


@pytest.mark.browser
@pytest.mark.parametrize("already_subscribed", [False, True], ids=["confirm", "already subscribed"])
def test_the_fallback_link_wraps_so_the_email_fits_a_phone(chromium, screenshot, already_subscribed):
    mail, links = rendered(already_subscribed, email="a.very.long.address.of.a.research.group@institute-of-examples.example.org")
    fallback = links.preferences if already_subscribed else links.confirm
    assert len(fallback) > 80  # a signed token: one long word, wider than a phone
    for scheme, background in (("light", "rgb(244, 244, 245)"), ("dark", "rgb(24, 24, 27)")):
        for width in (390, 1280):
            page = chromium.new_page(viewport={"width": width, "height": 844}, color_scheme=scheme)
            page.set_content(mail.html, wait_until="load")
            where = f"{width} px, {scheme}"
            assert page.evaluate("document.documentElement.scrollWidth") <= width, where  # no sideways scrolling
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background, where
            assert fallback in page.locator(".meta").first.inner_text().replace("\n", ""), where  # still there, whole, to copy
            column = page.locator(".wrap").bounding_box()  # 640 px at most, centred
            assert column["width"] == min(640, width) and abs(column["x"] - (width - column["x"] - column["width"])) <= 1, where
            button = page.locator("a.button").bounding_box()
            assert button["height"] >= 40, where  # the padded button, not a bare link
            screenshot(page, f"confirmation-{width}-{scheme}-{'already' if already_subscribed else 'confirm'}")
            page.close()
