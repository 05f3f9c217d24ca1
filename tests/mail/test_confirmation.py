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
    page = chromium.new_page(viewport={"width": 390, "height": 844})
    page.set_content(mail.html, wait_until="load")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    assert fallback in page.locator(".meta").first.inner_text().replace("\n", "")  # still there, whole, to copy
    screenshot(page, f"confirmation-390-{'already' if already_subscribed else 'confirm'}")
    page.close()
