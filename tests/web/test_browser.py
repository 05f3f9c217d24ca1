"""One real headless Chromium run through the whole subscription life, with screenshots.

The app is served by a real HTTP server on a free port; mail goes through the local SMTP server
and the test reads the confirmation link from it, as a person would from their inbox.
Screenshots land in ``tests/artifacts/`` (gitignored).
"""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from support import free_port
from web_helpers import body_html, body_text, serving, site_settings

from digest import tokens
from digest.config import Settings
from digest.db import engine_for, session_scope
from digest.models import Subscriber, SubscriberState

pytestmark = pytest.mark.browser


@pytest.fixture
def live_site(tmp_path, smtp_server, make_paper):
    """The app on a real server thread, with a few papers so the previews have something to show."""
    port = free_port()
    settings = site_settings(tmp_path, smtp_server, port, "browser")
    today = date.today()
    papers = [
        (
            "Scaling video diffusion transformers to minute-long clips",
            212,
            0,
            "We train diffusion models for long video.",
            ["Lena Hoffmann", "Ravi Patel", "Mei Chen", "Tom Berg"],
            "nvidia",
        ),
        (
            "A generalist robot policy from a million demonstrations",
            187,
            0,
            "An embodied agent for manipulation.",
            ["Ana Souza", "Kenji Ito"],
            "google",
        ),
        ("Reasoning traces make small language models better planners", 143, 0, "Large language model reasoning.", ["Omar Haddad"], None),
        ("Sparse attention for million-token contexts", 98, 0, "Efficient attention.", ["Julia Novak", "Sam Lee"], "meta"),
        ("A benchmark for scientific figure understanding", 61, 0, "Multimodal benchmark.", ["Priya Nair"], None),
        ("Tiny recursive models for puzzles", 40, 0, "Small models.", ["Ivan Petrov"], None),
        ("Robot learning from human video", 120, 1, "Robot imitation from video.", ["Chen Wu"], "stanford"),
    ]
    with session_scope(settings) as session:
        for i, (title, votes, age, abstract, authors, org) in enumerate(papers):
            make_paper(
                f"2611.{i:05d}",
                title,
                upvotes=votes,
                day=today - timedelta(days=age),
                abstract=abstract,
                authors=authors,
                org_name=org,
                session=session,
            )
    with serving(settings, port):
        yield settings
    engine_for(settings.database_url).dispose()


def subscriber_row(settings: Settings, email: str) -> Subscriber:
    with session_scope(settings) as session:
        return session.scalars(select(Subscriber).where(Subscriber.email == email).options(selectinload(Subscriber.filters))).one()


def test_a_person_subscribes_confirms_edits_preferences_and_unsubscribes(chromium, screenshot, live_site, smtp_server):
    settings = live_site
    context = chromium.new_context(timezone_id="Europe/Berlin", viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []

    # CSP violations and script errors; failed assets (a 400 *page*, the form with errors, is fine)
    def on_console(msg) -> None:
        if msg.type == "error" and "Failed to load resource" not in msg.text:
            problems.append(msg.text)

    def on_response(response) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            problems.append(f"{response.status} {response.url}")

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("response", on_response)

    # the home page: today's papers, the form, the browser's time zone pre-selected by the script
    page.goto(settings.base_url + "/")
    assert page.locator(".trending .paper-title").count() == 5
    assert page.locator("#timezone").input_value() == "Europe/Berlin"
    page.click("summary:has-text('How filters work')")
    screenshot(page, "01-home")

    # a mistake first: the error is shown next to the field, the input kept
    page.fill("#email", "ann@example.org")
    page.fill("#topics", 'diffusion video\nauthor:"unterminated')
    page.click("button:has-text('Subscribe')")
    assert page.locator("#topics-error").inner_text().startswith("Line 2: unterminated quote")
    assert page.locator("#email").input_value() == "ann@example.org"
    screenshot(page, "02-form-errors")

    page.fill("#topics", "diffusion video\nrobot")
    page.fill("#seeds", "2611.09999")  # a paper we do not have: said on the field, nothing stored
    page.click("button:has-text('Subscribe')")
    assert page.locator("#seeds-error").inner_text() == "2611.09999: no paper with this id has been on Hugging Face Daily Papers yet."
    assert page.locator("#topics").input_value() == "diffusion video\nrobot"

    page.fill("#seeds", "https://arxiv.org/abs/2611.00003v1")
    page.check("#frequency-1")  # weekly
    page.click("button:has-text('Subscribe')")
    page.wait_for_url("**/check-your-inbox")
    assert page.locator("h1").inner_text() == "Check your inbox"
    screenshot(page, "03-check-inbox")

    # the confirmation mail, read from the SMTP server
    [mail] = smtp_server.to("ann@example.org")
    confirm_url = re.search(r"http://\S+/confirm/\S+", body_text(mail)).group(0)
    inbox = context.new_page()  # about:blank, not under the site's CSP: like a mail client
    inbox.set_content(body_html(mail))
    assert inbox.locator("a.button").get_attribute("href") == confirm_url
    screenshot(inbox, "04-confirmation-mail")
    inbox.close()
    page.goto(confirm_url)
    assert subscriber_row(settings, "ann@example.org").state == SubscriberState.pending  # opening is not confirming
    assert "2611.00003" in page.locator("ul.topics").last.inner_text()  # the seed paper it would confirm
    screenshot(page, "05-confirm")
    page.click("button:has-text('Yes, start my digest')")
    assert page.locator("h1").inner_text() == "You're subscribed"
    screenshot(page, "06-confirmed")
    row = subscriber_row(settings, "ann@example.org")
    assert row.state == SubscriberState.active and row.timezone == "Europe/Berlin" and row.frequency.value == "weekly"

    # preferences, from a link like the one in every digest
    page.goto(tokens.link(settings, "preferences", row.public_id))
    matched = page.locator(".matches .paper-title").all_inner_texts()
    assert matched[:2] == [
        "Scaling video diffusion transformers to minute-long clips",
        "A generalist robot policy from a million demonstrations",
    ]
    assert page.locator("#seeds").input_value().strip() == "2611.00003"
    page.fill("#topics", "title:reasoning\norg:meta")
    page.select_option("#delivery_hour", "9")
    page.click("button:has-text('Save preferences')")
    assert "Your preferences are saved." in page.locator(".notice-ok").inner_text()
    assert page.locator(".matches .paper-title").all_inner_texts() == [
        "Reasoning traces make small language models better planners",
        "Sparse attention for million-token contexts",
    ]
    screenshot(page, "07-preferences")
    row = subscriber_row(settings, "ann@example.org")
    assert (row.topics_text, row.delivery_hour) == ("title:reasoning\norg:meta", 9)

    # unsubscribe: the page has one button; only pressing it unsubscribes
    page.click("a:has-text('Unsubscribe')")
    assert page.locator("main button").count() == 1
    assert subscriber_row(settings, "ann@example.org").state == SubscriberState.active
    screenshot(page, "08-unsubscribe")
    page.click("button:has-text('Unsubscribe')")
    assert page.locator("h1").inner_text() == "You're unsubscribed"
    screenshot(page, "09-unsubscribed")
    assert subscriber_row(settings, "ann@example.org").state == SubscriberState.unsubscribed

    assert problems == []
    context.close()

    # a phone: nothing wider than the screen
    phone = chromium.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2, is_mobile=True, has_touch=True)
    small = phone.new_page()
    small.goto(settings.base_url + "/")
    assert small.evaluate("document.documentElement.scrollWidth") <= 375
    screenshot(small, "10-home-phone")
    phone.close()

    dark = chromium.new_context(color_scheme="dark", viewport={"width": 1280, "height": 900})
    night = dark.new_page()
    night.goto(tokens.link(settings, "preferences", row.public_id))  # unsubscribed by now: the hint
    screenshot(night, "11-preferences-unsubscribed-dark")
    night.goto(settings.base_url + "/")
    screenshot(night, "12-home-dark")
    dark.close()


@pytest.mark.parametrize(
    "browser_zone, preselected",
    [
        ("Europe/Berlin", "Europe/Berlin"),
        ("Asia/Kolkata", "Asia/Kolkata"),  # Chromium reports it under its old name, Asia/Calcutta
        ("Asia/Calcutta", "Asia/Kolkata"),
        ("Europe/Kiev", "Europe/Kyiv"),
        ("America/Buenos_Aires", "America/Argentina/Buenos_Aires"),
    ],
)
def test_the_browsers_time_zone_is_preselected_even_under_an_old_name(chromium, live_site, browser_zone, preselected):
    context = chromium.new_context(timezone_id=browser_zone, viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(live_site.base_url + "/")
    reported = page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone")
    assert page.locator("#timezone").input_value() == preselected, f"the browser reported {reported}"
    assert page.locator("#timezone option[value='Asia/Calcutta']").count() == 0
    context.close()


def test_the_sign_up_form_previews_what_the_filters_being_typed_match(chromium, screenshot, live_site):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)  # CSP violations too
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}") if r.status >= 400 else None)
    page.goto(live_site.base_url + "/")
    preview = page.locator("#topics-preview")
    assert preview.is_hidden()

    page.locator("#topics").press_sequentially("(diffusion OR robots) video", delay=15)
    titles = preview.locator(".paper-title")
    titles.first.locator("mark").first.wait_for()
    assert titles.all_inner_texts() == ["Scaling video diffusion transformers to minute-long clips", "Robot learning from human video"]
    assert titles.nth(0).locator("mark").all_inner_texts() == ["video", "diffusion"]
    assert titles.nth(1).locator("mark").all_inner_texts() == ["Robot", "video"]  # "robots" finds "Robot"
    assert preview.locator(".live-status").inner_text().startswith("2 of the 7 papers of the last 2 days match")

    page.locator("#topics").press("End")
    page.locator("#topics").press_sequentially('\nauthor:"Yann LeCun"', delay=15)
    preview.locator(".live-misses li").wait_for()
    assert preview.locator(".live-misses li").inner_text() == (
        'Line 2 author:"Yann LeCun" matched nothing: no paper in the last 2 days by Yann LeCun.'
    )
    screenshot(page, "13-live-preview")

    page.locator("#topics").fill("video\n  (diffusion OR gan")
    preview.locator(".field-errors li").wait_for()
    assert preview.locator(".field-errors li").inner_text() == "Line 2: '(' at column 3 is never closed"
    screenshot(page, "14-live-preview-error")
    assert problems == []
    context.close()

    # without JavaScript: no preview, and the form works as before
    plain = chromium.new_context(java_script_enabled=False)
    page = plain.new_page()
    page.goto(live_site.base_url + "/")
    assert page.locator("#topics-preview").is_hidden()
    page.fill("#email", "noscript@example.org")
    page.fill("#topics", "(diffusion OR robots) video")
    page.click("button:has-text('Subscribe')")
    page.wait_for_url("**/check-your-inbox")
    assert page.locator("h1").inner_text() == "Check your inbox"
    plain.close()
