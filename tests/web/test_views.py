"""The web app's pages and flows through Flask's test client: real database, CSRF on, real SMTP."""

from __future__ import annotations

import json
import re
import sqlite3
from datetime import date, datetime, timedelta, timezone

import pytest
from support import free_port, subprocess_env
from web_helpers import form_post, mailed_link, old_token, subscribe, subscriber, text

from digest import tokens
from digest.config import Settings
from digest.db import session_scope
from digest.delivery.schedule import next_slot
from digest.models import SignupRequest, Subscriber, SubscriberState
from digest.queue import SEND_CONFIRMATION
from digest.web import create_app


def confirmed(client, smtp_server, session, email="ann@example.org", topics=""):
    """Sign up through the form, press the button behind the mailed link: an active subscriber."""
    subscribe(client, email, topics)
    path = mailed_link(smtp_server.to(email)[-1], "confirm")
    client.post(path)
    row = subscriber(session, email)
    assert row.state == SubscriberState.active
    return row


# ---------------------------------------------------------------- home page


def test_home_page_has_the_subscribe_form_with_its_exact_field_names(client):
    page = client.get("/")
    html = text(page)
    assert page.status_code == 200 and '<html lang="en">' in html
    for name in ("email", "topics", "frequency", "timezone", "csrf_token", "website"):
        assert f'name="{name}"' in html
    assert re.search(r'<textarea[^>]*name="topics"', html)
    assert 'value="daily"' in html and 'value="weekly"' in html
    assert '<option value="UTC" selected>UTC</option>' in html
    assert '<option value="Europe/Berlin"' in html
    assert re.search(r"<details[^>]*>\s*<summary>How filters work</summary>", html) and 'author:"Yann LeCun"' in html
    assert 'src="/static/timezone.js"' in html and "<script>" not in html


def _topics_placeholder(page) -> str:
    import html as entities

    field = re.search(r"<textarea[^>]*name=\"topics\"[^>]*>", page.get_data(as_text=True)).group(0)  # entities kept
    return entities.unescape(re.search(r'placeholder="([^"]*)"', field).group(1))


def test_the_topics_example_is_one_the_papers_at_hand_answer(client, mail_settings):
    """The demo's example lines each match several of its packaged sample papers (a newcomer who types
    what the field shows gets a digest); a real instance shows the general example."""
    from digest.matching.topics import parse_filter
    from digest.matching.words import PaperText
    from digest.papers.sources.daily_papers import sample_items
    from digest.web.site import TOPICS_EXAMPLE

    assert _topics_placeholder(client.get("/")) == TOPICS_EXAMPLE
    demo = _topics_placeholder(create_app(mail_settings.with_(demo=True)).test_client().get("/"))
    papers = [PaperText(item["paper"]["title"], item["paper"]["summary"]) for item in sample_items()]
    lines = demo.splitlines()
    assert len(lines) == 3 and demo != TOPICS_EXAMPLE
    for line in lines:
        assert sum(parse_filter(line).matches(paper) for paper in papers) >= 3, line


def test_the_honeypot_is_hidden_from_people_keyboards_and_screen_readers(client):
    html = text(client.get("/"))
    block = re.search(r'<div class="hp" aria-hidden="true">(.*?)</div>', html, re.S).group(1)
    field = re.search(r"<input[^>]*name=\"website\"[^>]*>", block).group(0)
    assert 'tabindex="-1"' in field and 'autocomplete="off"' in field
    css = text(client.get("/static/style.css"))
    assert re.search(r"\.hp\s*{[^}]*left:\s*-10000px", css)


def test_home_page_previews_the_five_most_upvoted_papers_of_the_latest_day(client, session, make_paper):
    today, yesterday = date(2026, 11, 25), date(2026, 11, 24)
    for i, votes in enumerate([5, 40, 12, 33, 1, 27]):
        make_paper(f"2611.{i:05d}", f"Latest paper {votes}", upvotes=votes, day=today, authors=["A. Author", "B. Author"], session=session)
    make_paper("2611.99999", "Older but more upvoted", upvotes=500, day=yesterday, session=session)
    session.commit()

    html = text(client.get("/"))
    titles = re.findall(r'class="paper-title"[^>]*>([^<]+)<', html)
    assert titles == ["Latest paper 40", "Latest paper 33", "Latest paper 27", "Latest paper 12", "Latest paper 5"]
    assert "Wednesday 25 November 2026" in html
    assert 'href="https://huggingface.co/papers/2611.00001"' in html


def test_home_page_without_papers_shows_a_friendly_empty_state(client):
    html = text(client.get("/"))
    assert "No papers yet" in html and 'class="papers"' not in html


def test_demo_mode_links_the_outbox_in_the_header(mail_settings):
    assert 'href="/outbox"' in text(create_app(mail_settings.with_(demo=True)).test_client().get("/"))
    assert 'href="/outbox"' not in text(create_app(mail_settings).test_client().get("/"))


# ---------------------------------------------------------------- subscribing


def test_subscribing_stores_a_pending_row_and_mails_a_confirmation(client, session, smtp_server):
    response = subscribe(client, "  Ann@Example.org ", "diffusion video\r\norg:nvidia", "weekly", "Europe/Berlin")
    assert response.status_code == 303 and response.headers["Location"] == "/check-your-inbox"
    row = subscriber(session, "ann@example.org")
    assert row.state == SubscriberState.pending
    request = session.get(SignupRequest, row.id)  # applied when the link is used, not before
    assert (request.topics, request.frequency.value, request.timezone) == ("diffusion video\norg:nvidia", "weekly", "Europe/Berlin")
    [message] = smtp_server.to("ann@example.org")
    assert message["Subject"] == "Confirm your Trending Papers subscription"
    page = client.get("/check-your-inbox")
    assert page.status_code == 200 and "Check your inbox" in text(page)
    confirm_page = client.get(mailed_link(message, "confirm"))
    assert "diffusion video" in text(confirm_page) and "org:nvidia" in text(confirm_page)  # what the button confirms
    client.post(mailed_link(message, "confirm"))
    row = subscriber(session, "ann@example.org")
    assert (row.state, row.topics_text, row.frequency.value) == (SubscriberState.active, "diffusion video\norg:nvidia", "weekly")


def test_the_confirmation_is_handed_over_only_after_the_sign_up_committed(app, client, mail_settings, recording_queue):
    seen = []

    def worker(task: str, subscriber_id: int) -> None:  # a separate session must find the row
        with session_scope(mail_settings) as other:
            seen.append((task, other.get(Subscriber, subscriber_id).email))

    recording_queue.on_send = worker
    app.config["DIGEST_QUEUE"] = recording_queue
    subscribe(client, "ann@example.org")
    assert seen == [(SEND_CONFIRMATION, "ann@example.org")]


def test_a_failing_mail_server_does_not_change_the_page(client, session, smtp_server):
    smtp_server.fail_next.append("451 4.3.0 try again later")
    response = subscribe(client, "ann@example.org")
    assert response.status_code == 303 and response.headers["Location"] == "/check-your-inbox"
    assert subscriber(session, "ann@example.org").state == SubscriberState.pending


def test_filter_errors_are_shown_next_to_the_field_with_line_numbers_and_the_input_kept(client, session):
    topics = 'diffusion\nauthor:"unterminated\nnope: words\n\nOR robots'
    response = subscribe(client, "ann@example.org", topics)
    html = text(response)
    raw = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Line 2: unterminated quote" in html
    assert "Line 3: unknown field" in html
    assert "Line 5: OR at the start of the line" in html
    assert 'id="topics-error"' in html and re.search(r'<textarea[^>]*aria-describedby="topics-help topics-error"', html)
    assert 'aria-invalid="true"' in html
    assert re.search(r"<textarea[^>]*>\s*diffusion\nauthor:&#34;unterminated\nnope: words\n\nOR robots</textarea>", raw)
    assert 'value="ann@example.org"' in html
    assert subscriber(session, "ann@example.org") is None


STOP_WORDS_HINT = "Line 2: “a” is a stop word (a very common word that says nothing about a topic): this line matches papers on any topic."


def test_a_line_of_stop_words_is_accepted_and_the_form_says_it_matches_papers_on_any_topic(client, session, smtp_server):
    again = subscribe(client, "not-an-address", "video\na or b")  # re-rendered for the address
    html = text(again)
    assert again.status_code == 400 and STOP_WORDS_HINT in html
    assert re.search(r'<ul class="field-hints" id="topics-hint"><li>Line 2: “a” is a stop word', html)
    assert re.search(r'<textarea[^>]*aria-describedby="topics-help topics-hint"', html)
    assert "Topics: " not in html  # a hint, not one of the problems to fix
    accepted = subscribe(client, "ann@example.org", "video\na or b")
    assert accepted.status_code == 303
    assert session.get(SignupRequest, subscriber(session, "ann@example.org").id).topics == "video\na or b"  # kept as written


def test_preferences_say_a_line_of_stop_words_matches_papers_on_any_topic(client, session, smtp_server, mail_settings):
    row = confirmed(client, smtp_server, session, topics="video\na or b")
    path = preferences_path(mail_settings, row)
    assert STOP_WORDS_HINT in text(client.get(path))
    previewed = form_post(client, path, prefs("robots\nvideo\nthe", action="preview"))
    assert previewed.status_code == 200 and "Line 3: “the” is a stop word" in text(previewed)
    assert "stop word" not in text(form_post(client, path, prefs("robots", action="preview")))


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("timezone", "Mars/Olympus_Mons", "Choose a time zone from the list."),
        ("frequency", "hourly", "Choose daily or weekly."),
        ("email", "not-an-address", "An email address must have an @-sign."),
        ("email", "", "Enter your email address."),
    ],
)
def test_bad_values_are_explained_and_nothing_is_stored(client, session, smtp_server, field, value, message):
    data = {"email": "ann@example.org", "topics": "", "frequency": "daily", "timezone": "UTC", field: value}
    response = form_post(client, "/", data)
    assert response.status_code == 400
    html = text(response)
    assert message in html and f'id="{field}-error"' in html and 'role="alert"' in html
    assert subscriber(session, "ann@example.org") is None and smtp_server.captured == []


def test_the_time_zone_menu_offers_canonical_zones_by_region_and_still_accepts_old_names(client, session, smtp_server):
    html = text(client.get("/"))
    menu = re.search(r'<select id="timezone".*?</select>', html, re.S).group(0)
    offered = re.findall(r'<option value="([^"]+)"', menu)
    assert len(offered) == len(set(offered)) and 300 < len(offered) < 450  # not the ~590 names of the zone database
    assert "Asia/Kolkata" in offered and "Asia/Calcutta" not in offered
    assert "Europe/Kyiv" in offered and "Europe/Kiev" not in offered and "US/Eastern" not in offered
    asia = re.search(r'<optgroup label="Asia">(.*?)</optgroup>', menu, re.S).group(1)
    assert '<option value="Asia/Kolkata" data-aliases="Asia/Calcutta">Kolkata (India)</option>' in asia
    assert re.findall(r'<optgroup label="([^"]+)">', menu) == sorted(re.findall(r'<optgroup label="([^"]+)">', menu))
    assert menu.index('<option value="UTC" selected>UTC</option>') < menu.index("<optgroup")

    response = subscribe(client, "ann@example.org", tz="Asia/Calcutta")  # an old name, posted: still a zone
    assert response.status_code == 303
    client.post(mailed_link(smtp_server.to("ann@example.org")[-1], "confirm"))
    assert subscriber(session, "ann@example.org").timezone == "Asia/Calcutta"


@pytest.mark.parametrize(
    "stored, selected",
    [
        ("Asia/Calcutta", '<option value="Asia/Kolkata" selected data-aliases="Asia/Calcutta">'),  # its zone
        ("Etc/GMT+5", '<option value="Etc/GMT+5" selected>Etc/GMT+5</option>'),  # no zone of the menu: kept
    ],
)
def test_preferences_of_a_subscriber_stored_under_a_name_the_menu_lacks_keep_their_zone(
    client, session, smtp_server, mail_settings, stored, selected
):
    row = confirmed(client, smtp_server, session)
    row.timezone = stored
    session.commit()
    html = text(client.get(preferences_path(mail_settings, row)))
    assert selected in html
    assert len(re.findall(r"<option[^>]* selected[ >]", html)) == 2  # the zone and the hour, nothing else (not UTC)


# ---------------------------------------------------------------- confirming


def test_opening_the_confirmation_link_asks_and_only_the_button_confirms(client, session, smtp_server):
    subscribe(client, "ann@example.org")
    path = mailed_link(smtp_server.to("ann@example.org")[0], "confirm")

    page = client.get(path)
    assert page.status_code == 200 and "Yes, start my digest" in text(page)
    assert subscriber(session, "ann@example.org").state == SubscriberState.pending

    done = client.post(path)
    html = text(done)
    assert done.status_code == 200 and "You're subscribed" in html
    row = subscriber(session, "ann@example.org")
    assert row.state == SubscriberState.active and row.next_due_at is not None
    assert f'href="/preferences/{tokens.make_token(tokens_settings(client), "preferences", row.public_id)}"' in html


def tokens_settings(client) -> Settings:
    return client.application.config["DIGEST_SETTINGS"]


def test_confirming_twice_says_already_confirmed(client, session, smtp_server):
    subscribe(client, "ann@example.org")
    path = mailed_link(smtp_server.to("ann@example.org")[0], "confirm")
    client.post(path)
    confirmed_at = subscriber(session, "ann@example.org").confirmed_at
    for again in (client.get(path), client.post(path)):
        assert again.status_code == 200 and "Already confirmed" in text(again)
    assert subscriber(session, "ann@example.org").confirmed_at == confirmed_at


def test_a_tampered_confirmation_link_gets_a_friendly_400_and_changes_nothing(client, session, smtp_server):
    subscribe(client, "ann@example.org")
    path = mailed_link(smtp_server.to("ann@example.org")[0], "confirm")
    for method in (client.get, client.post):
        response = method(path[:-3] + "xyz")
        assert response.status_code == 400
        assert "This link doesn't work" in text(response)
    assert subscriber(session, "ann@example.org").state == SubscriberState.pending


def test_an_expired_confirmation_link_gets_a_friendly_400_and_changes_nothing(client, session, mail_settings):
    subscribe(client, "ann@example.org")
    row = subscriber(session, "ann@example.org")
    token = old_token(mail_settings, "confirm", row.public_id, timedelta(hours=49))
    response = client.post(f"/confirm/{token}")
    assert response.status_code == 400 and "This link has expired" in text(response)
    assert subscriber(session, "ann@example.org").state == SubscriberState.pending


# ---------------------------------------------------------------- preferences


def prefs(topics: str, frequency="daily", tz="UTC", hour="7", action="save") -> dict:
    return {"topics": topics, "frequency": frequency, "timezone": tz, "delivery_hour": hour, "action": action}


def preferences_path(settings: Settings, row) -> str:
    return f"/preferences/{tokens.make_token(settings, 'preferences', row.public_id)}"


def test_preferences_show_the_saved_settings_and_what_they_would_have_matched(client, session, smtp_server, mail_settings, make_paper):
    day = date(2026, 11, 25)
    make_paper("1", "Video diffusion at scale", upvotes=50, day=day, abstract="We study diffusion models for video.", session=session)
    make_paper("2", "A robot that folds laundry", upvotes=80, day=day - timedelta(days=1), abstract="Embodied agents.", session=session)
    make_paper("3", "Graph transformers", upvotes=90, day=day, abstract="Message passing.", session=session)
    make_paper("4", "Too old to matter: robot video", upvotes=999, day=day - timedelta(days=30), session=session)
    for i in range(6):  # papers on 6 other days push day-30 out of the last 7 Daily Papers days
        make_paper(f"9{i}", f"Filler {i}", upvotes=1, day=day - timedelta(days=2 + i), session=session)
    session.commit()
    row = confirmed(client, smtp_server, session, topics="robot\ndiffusion video")

    page = client.get(preferences_path(mail_settings, row))
    html = text(page)
    assert page.status_code == 200
    assert "robot\ndiffusion video</textarea>" in html
    assert '<option value="7" selected>07:00</option>' in html
    items = re.findall(r'class="paper-title"[^>]*>([^<]+)<.*?class="matched">matched <code>([^<]+)</code>', html, re.S)
    assert items == [("A robot that folds laundry", "robot"), ("Video diffusion at scale", "diffusion video")]
    assert "2 of the 8 papers" in html
    assert "Unsubscribe" in html


def test_saving_preferences_replaces_filters_and_moves_the_next_digest(client, session, smtp_server, mail_settings):
    row = confirmed(client, smtp_server, session, topics="robot")
    path = preferences_path(mail_settings, row)
    before = datetime.now(timezone.utc)
    response = form_post(client, path, prefs("title:agent\norg:google", "weekly", "Asia/Tokyo", "18", "save"))
    assert response.status_code == 303 and response.headers["Location"] == path
    assert "Your preferences are saved." in text(client.get(path))
    row = subscriber(session, "ann@example.org")
    saved = (row.topics_text, row.frequency.value, row.timezone, row.delivery_hour)
    assert saved == ("title:agent\norg:google", "weekly", "Asia/Tokyo", 18)
    after = datetime.now(timezone.utc)
    assert row.next_due_at in {next_slot("weekly", "Asia/Tokyo", 18, before), next_slot("weekly", "Asia/Tokyo", 18, after)}


def test_previewing_preferences_shows_matches_without_saving(client, session, smtp_server, mail_settings, make_paper):
    make_paper("1", "Agents that plan", upvotes=10, day=date(2026, 11, 25), session=session)
    session.commit()
    row = confirmed(client, smtp_server, session, topics="robot")
    path = preferences_path(mail_settings, row)
    response = form_post(client, path, prefs("title:agents", action="preview"))
    html = text(response)
    assert response.status_code == 200 and "not saved yet" in html
    assert re.search(r"Agents that plan</a>.*?matched <code>title:agents</code>", html, re.S)
    assert subscriber(session, "ann@example.org").topics_text == "robot"


def test_invalid_preferences_are_explained_and_not_saved(client, session, smtp_server, mail_settings):
    row = confirmed(client, smtp_server, session, topics="robot")
    path = preferences_path(mail_settings, row)
    response = form_post(client, path, prefs("upvotes:lots", hour="25"))
    html = text(response)
    assert response.status_code == 400
    assert "Line 1: bad upvotes value" in html and "Choose an hour from the list." in html
    assert subscriber(session, "ann@example.org").topics_text == "robot"


def test_preferences_of_an_unsubscribed_address_point_to_resubscribing(client, session, smtp_server, mail_settings):
    row = confirmed(client, smtp_server, session, topics="robot")
    client.post(f"/unsubscribe/{tokens.make_token(mail_settings, 'unsubscribe', row.public_id)}")
    html = text(client.get(preferences_path(mail_settings, row)))
    assert "You're not subscribed" in html and "Resubscribe on the home page" in html
    assert 'name="topics"' not in html


def test_preferences_with_a_bad_or_unknown_link(client, mail_settings):
    assert client.get("/preferences/garbage").status_code == 400
    unknown = client.get(f"/preferences/{tokens.make_token(mail_settings, 'preferences', 'no-such-id')}")
    assert unknown.status_code == 404 and "Page not found" in text(unknown)


# ---------------------------------------------------------------- unsubscribing


def unsubscribe_path(settings: Settings, row) -> str:
    return f"/unsubscribe/{tokens.make_token(settings, 'unsubscribe', row.public_id)}"


def test_opening_the_unsubscribe_link_never_unsubscribes(client, session, smtp_server, mail_settings):
    row = confirmed(client, smtp_server, session)
    for _ in range(3):
        page = client.get(unsubscribe_path(mail_settings, row))
        assert page.status_code == 200
    html = text(page)
    assert len(re.findall(r"<button", html)) == 1 and 'method="post"' in html
    assert subscriber(session, "ann@example.org").state == SubscriberState.active


def test_the_unsubscribe_button_unsubscribes_and_stops_the_schedule(client, session, smtp_server, mail_settings):
    row = confirmed(client, smtp_server, session)
    response = client.post(unsubscribe_path(mail_settings, row))
    assert response.status_code == 200 and "You're unsubscribed" in text(response)
    row = subscriber(session, "ann@example.org")
    assert row.state == SubscriberState.unsubscribed and row.next_due_at is None and row.unsubscribed_at is not None


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_one_click_unsubscribe_without_cookies_or_csrf_answers_200(app, client, session, smtp_server, mail_settings, encoding):
    row = confirmed(client, smtp_server, session)
    mail_provider = app.test_client(use_cookies=False)
    if encoding == "urlencoded":
        response = mail_provider.post(
            unsubscribe_path(mail_settings, row), data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
        )
    else:
        response = mail_provider.post(
            unsubscribe_path(mail_settings, row), data={"List-Unsubscribe": "One-Click"}, content_type="multipart/form-data"
        )
    assert response.status_code == 200 and "Location" not in response.headers
    assert subscriber(session, "ann@example.org").state == SubscriberState.unsubscribed


def test_unsubscribing_twice_is_harmless(client, session, smtp_server, mail_settings):
    row = confirmed(client, smtp_server, session)
    path = unsubscribe_path(mail_settings, row)
    client.post(path)
    first = subscriber(session, "ann@example.org").unsubscribed_at
    again = client.post(path)
    assert again.status_code == 200 and "You're unsubscribed" in text(again)
    assert subscriber(session, "ann@example.org").unsubscribed_at == first
    assert "You're unsubscribed" in text(client.get(path))


def test_a_bad_unsubscribe_link_gets_a_friendly_400(client, mail_settings):
    wrong_purpose = tokens.make_token(mail_settings, "preferences", "x")
    for path in ("/unsubscribe/nonsense", f"/unsubscribe/{wrong_purpose}"):
        response = client.post(path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded")
        assert response.status_code == 400 and "This link doesn't work" in text(response)


# ---------------------------------------------------------------- operations


def test_health_check_without_a_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and json.loads(response.data) == {"database": "ok", "broker": "not configured"}


@pytest.mark.redis
def test_health_check_with_a_broker(mail_settings, redis_url):
    response = create_app(mail_settings.with_(broker_url=redis_url)).test_client().get("/healthz")
    assert response.status_code == 200 and json.loads(response.data) == {"database": "ok", "broker": "ok"}


def test_health_check_reports_an_unreachable_broker_with_503(mail_settings):
    response = create_app(mail_settings.with_(broker_url=f"redis://127.0.0.1:{free_port()}/0")).test_client().get("/healthz")
    body = json.loads(response.data)
    assert response.status_code == 503 and body["database"] == "ok" and body["broker"].startswith("error: ")


def test_an_unreachable_database_gives_friendly_pages_and_a_503_health_check(tmp_path):
    settings = Settings(database_url=f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/nope", secret_key="k" * 20, data_dir=tmp_path)
    client = create_app(settings).test_client()
    health = client.get("/healthz")
    assert health.status_code == 503 and json.loads(health.data)["database"].startswith("error: ")
    page = client.get("/")
    html = text(page)
    assert page.status_code == 500 and "Something went wrong on our side" in html
    assert "Traceback" not in html and "psycopg" not in html and "127.0.0.1" not in html


def test_a_sign_up_while_another_writer_holds_sqlite_gets_a_503_busy_page_not_a_500(sqlite_database, tmp_path):
    """An import or a send run holds SQLite's one write lock longer than the busy timeout (here 0.2 s)."""
    url = sqlite_database("busy") + "?timeout=0.2"
    client = create_app(Settings(database_url=url, secret_key="k" * 20, data_dir=tmp_path)).test_client()
    other = sqlite3.connect(url.removeprefix("sqlite:///").split("?")[0])
    other.execute("BEGIN IMMEDIATE")  # the write lock, held
    try:
        response = subscribe(client, "ann@example.org", "agents")
    finally:
        other.rollback()
    html = text(response)
    assert response.status_code == 503 and response.headers["Retry-After"] == "5"
    assert "busy, try again in a moment" in html and "Traceback" not in html and "locked" not in html
    assert subscribe(client, "ann@example.org", "agents").status_code == 303  # the lock gone, it works
    other.close()


@pytest.mark.parametrize(
    "method, path, code, expected",
    [
        ("GET", "/nothing-here", 404, "Page not found"),
        ("PUT", "/", 405, "doesn't work here"),
        ("DELETE", "/healthz", 405, "doesn't work here"),
    ],
)
def test_errors_get_friendly_pages(client, method, path, code, expected):
    response = client.open(path, method=method)
    html = text(response)
    assert response.status_code == code and expected in html and '<link rel="stylesheet"' in html
    if code == 405:
        assert "GET" in response.headers["Allow"]


def test_every_page_sends_the_security_headers(client):
    for path in ("/", "/check-your-inbox", "/nothing-here", "/unsubscribe/bad", "/healthz"):
        headers = client.get(path).headers
        csp = headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert headers["Referrer-Policy"] == "no-referrer"
        assert headers["X-Frame-Options"] == "DENY"


def test_pages_use_no_inline_script_or_style_and_no_external_assets(client, session, smtp_server, mail_settings):
    row = confirmed(client, smtp_server, session, topics="robot")
    for path in ("/", preferences_path(mail_settings, row), unsubscribe_path(mail_settings, row), "/nothing-here"):
        html = text(client.get(path))
        assert not re.search(r"<script(?![^>]*\bsrc=\"/static/)", html)
        assert " style=" not in html and "<style" not in html
        assets = re.findall(r'<(?:script|img|link|iframe)[^>]*(?:src|href)="([^"]+)"', html)
        assert assets and all(url.startswith("/static/") for url in assets), assets


@pytest.mark.parametrize("server", ["digest serve", "gunicorn"])
def test_the_app_runs_under_digest_serve_and_gunicorn(settings, server):
    """Both entry points build the app from DIGEST_* variables and answer the health check."""
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    port = free_port()
    bin_dir = Path(sys.executable).parent
    command = (
        [str(bin_dir / "digest"), "serve", "--port", str(port)]
        if server == "digest serve"
        else [str(bin_dir / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "1", "digest.web:create_app()"]
    )
    process = subprocess.Popen(command, env=subprocess_env(settings), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    assert json.loads(response.read()) == {"database": "ok", "broker": "not configured"}
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    why = process.stderr.read1().decode() if process.poll() is not None else "timeout"
                    raise AssertionError(f"{server} did not come up: {why}")
                time.sleep(0.1)
    finally:
        process.terminate()
        process.wait(10)
