"""arXiv in the forms (issue 22, item 3): the operator's categories as checkboxes that write
``cat:`` lines into the topics, with and without JavaScript; the live preview's "New on arXiv" list."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from support import free_port
from web_helpers import csrf_token, form_post, mailed_link, serving, site_settings, subscribe, subscriber, text

from digest import tokens
from digest.config import Settings
from digest.db import engine_for, session_scope
from digest.models import SignupRequest, SubscriberState
from digest.web import create_app
from digest.web.forms import merge_categories

LAST = date(2026, 11, 26)
CATEGORIES = ("cs.CL", "cs.LG", "hep-th")  # hep-th: not in the table of names, shown as its code


@pytest.fixture
def arxiv_settings(mail_settings) -> Settings:
    return mail_settings.with_(arxiv_categories=CATEGORIES)


@pytest.fixture
def client(arxiv_settings):
    return create_app(arxiv_settings).test_client()


@pytest.fixture
def plain_client(mail_settings):
    """arXiv off: no categories configured."""
    return create_app(mail_settings).test_client()


def arxiv_paper(make_paper, session, arxiv_id, title, categories, day=LAST, **fields):
    """A paper only arXiv announced (new on ``day``): no Daily Papers day, no upvotes."""
    return make_paper(
        arxiv_id, title, day=None, announced_on=day, categories=list(categories), primary_category=categories[0], session=session, **fields
    )


@pytest.fixture
def papers(session, make_paper):
    """Trending papers of LAST and the day before (one of them also in cs.CL), and arXiv's new
    papers of LAST: two in cs.CL, one in cs.LG, one withdrawn."""
    make_paper("2611.00001", "Scaling video diffusion transformers", upvotes=212, day=LAST, session=session)
    make_paper(
        "2611.00002",
        "Instruction tuning for small language models",
        upvotes=90,
        day=LAST - timedelta(days=1),
        categories=["cs.CL"],
        primary_category="cs.CL",
        announced_on=LAST - timedelta(days=1),
        session=session,
    )
    arxiv_paper(
        make_paper,
        session,
        "2611.10001",
        "Diffusion language models decode in parallel",
        ["cs.CL", "cs.LG"],
        abstract="We study diffusion for text.",
        authors=["Noor Rahman"],
    )
    arxiv_paper(make_paper, session, "2611.10002", "A treebank for Old Irish", ["cs.CL"], abstract="Syntax of Old Irish glosses.")
    arxiv_paper(make_paper, session, "2611.10003", "Sharper bounds for Adam", ["cs.LG", "math.OC"], abstract="Optimisation theory.")
    arxiv_paper(make_paper, session, "2611.10004", "A withdrawn parser", ["cs.CL"], withdrawn=True)
    session.commit()


def boxes(html: str) -> dict[str, bool]:
    """The category checkboxes: value -> checked."""
    found = re.findall(r'<input type="checkbox" id="category-\d+" name="categories" value="([^"]+)"( checked)?>', html)
    return {value: bool(checked) for value, checked in found}


def shown(html: str) -> str:
    return re.search(r'<input type="hidden" name="categories_shown" value="([^"]*)">', html).group(1)


def topics_box(html: str) -> str:
    return re.search(r'<textarea[^>]*name="topics"[^>]*>\r?\n?(.*?)</textarea>', html, re.S).group(1)


def confirmed(client, smtp_server, session, topics: str, email="ann@example.org"):
    subscribe(client, email, topics)
    client.post(mailed_link(smtp_server.to(email)[-1], "confirm"))
    row = subscriber(session, email)
    assert row.state == SubscriberState.active and row.topics_text == topics
    return row


def preferences_path(settings: Settings, row) -> str:
    return f"/preferences/{tokens.make_token(settings, 'preferences', row.public_id)}"


def prefs(topics: str, ticked=(), was="", action="save") -> dict:
    return {
        "topics": topics,
        "categories": list(ticked),
        "categories_shown": was,
        "frequency": "daily",
        "timezone": "UTC",
        "delivery_hour": "7",
        "action": action,
    }


# ---------------------------------------------------------------- the checkboxes


def test_with_arxiv_off_the_forms_have_no_categories(plain_client, session, smtp_server, mail_settings):
    home = text(plain_client.get("/"))
    assert "New on arXiv" not in home and "categories" not in home and "arxiv-categories.js" not in home
    assert "cat:cs.CL" not in home  # the filter help says nothing of arXiv either
    row = confirmed(plain_client, smtp_server, session, "robot")
    page = text(plain_client.get(preferences_path(mail_settings, row)))
    assert 'name="topics"' in page
    assert "New on arXiv" not in page and "categories" not in page and "arxiv-categories.js" not in page


def test_with_arxiv_off_posted_boxes_change_nothing(plain_client, session):
    subscribe(plain_client, "ann@example.org", "robot", categories=["cs.CL"], categories_shown="")
    row = subscriber(session, "ann@example.org")
    assert session.get(SignupRequest, row.id).topics == "robot"


def test_the_sign_up_form_offers_the_operators_categories_with_their_names(client):
    html = text(client.get("/"))
    assert "<legend>New on arXiv" in html
    assert boxes(html) == {"cs.CL": False, "cs.LG": False, "hep-th": False}
    assert shown(html) == ""
    labels = [re.sub(r"<[^>]+>", "", m).strip() for m in re.findall(r'<label class="choice" for="category-\d+">(.*?)</label>', html, re.S)]
    assert labels == ["cs.CL Computation and Language", "cs.LG Machine Learning", "hep-th"]
    assert 'src="/static/arxiv-categories.js"' in html
    assert "<code>cat:cs.CL</code>" in html  # the filter help has the cat: rows
    assert client.get("/static/arxiv-categories.js").status_code == 200


def test_a_ticked_category_at_sign_up_is_a_cat_line_in_the_stored_topics(client, session, smtp_server):
    response = subscribe(client, "ann@example.org", "diffusion\n", categories=["cs.LG", "cs.CL", "math.AG"], categories_shown="")
    assert response.status_code == 303
    row = subscriber(session, "ann@example.org")
    # in the configured order, after the reader's lines; a code the operator did not configure is ignored
    assert session.get(SignupRequest, row.id).topics == "diffusion\ncat:cs.CL\ncat:cs.LG"
    client.post(mailed_link(smtp_server.to("ann@example.org")[-1], "confirm"))
    assert subscriber(session, "ann@example.org").topics_text == "diffusion\ncat:cs.CL\ncat:cs.LG"


def test_a_category_line_already_typed_is_not_added_twice(client, session):
    subscribe(client, "ann@example.org", "CAT:cs.cl ", categories=["cs.CL"], categories_shown="")
    assert session.get(SignupRequest, subscriber(session, "ann@example.org").id).topics == "CAT:cs.cl"


def test_the_preferences_boxes_are_ticked_for_exact_cat_lines_only(client, session, smtp_server, arxiv_settings):
    row = confirmed(client, smtp_server, session, "diffusion\ncat:cs.LG\ncat:cs.CL diffusion")
    html = text(client.get(preferences_path(arxiv_settings, row)))
    assert boxes(html) == {"cs.CL": False, "cs.LG": True, "hep-th": False}  # "cat:cs.CL diffusion" is the reader's own line
    assert shown(html) == "cs.LG"
    assert 'src="/static/arxiv-categories.js"' in html


def test_unticking_removes_the_exact_line_and_leaves_hand_written_ones(client, session, smtp_server, arxiv_settings):
    row = confirmed(client, smtp_server, session, "diffusion\ncat:cs.LG\ncat:cs.CL diffusion\ncat:cs.LG -survey")
    path = preferences_path(arxiv_settings, row)
    response = form_post(client, path, prefs(row.topics_text, ticked=["hep-th"], was="cs.LG"))
    assert response.status_code == 303
    assert subscriber(session, "ann@example.org").topics_text == "diffusion\ncat:cs.CL diffusion\ncat:cs.LG -survey\ncat:hep-th"
    html = text(client.get(path))
    assert boxes(html) == {"cs.CL": False, "cs.LG": False, "hep-th": True} and shown(html) == "hep-th"


def test_a_box_left_as_it_was_leaves_the_topics_as_typed(client, session, smtp_server, arxiv_settings):
    """Without JavaScript: the reader deletes the cat: line in the textarea and leaves its box
    ticked, or types a cat: line and leaves its box unticked. What they typed is what is stored."""
    row = confirmed(client, smtp_server, session, "robot\ncat:cs.CL")
    path = preferences_path(arxiv_settings, row)
    assert form_post(client, path, prefs("robot\ncat:cs.LG", ticked=["cs.CL"], was="cs.CL")).status_code == 303
    assert subscriber(session, "ann@example.org").topics_text == "robot\ncat:cs.LG"


def test_a_form_that_drew_no_boxes_is_taken_as_typed(client, session):
    """A form without the hidden field (loaded before the operator turned arXiv on): topics as typed."""
    subscribe(client, "ann@example.org", "robot", categories=["cs.CL"])
    assert session.get(SignupRequest, subscriber(session, "ann@example.org").id).topics == "robot"


def test_what_the_boxes_add_is_checked_like_typed_topics_and_shown_back(client, session):
    twenty = "\n".join(f"topic{i}" for i in range(20))
    response = subscribe(client, "ann@example.org", twenty, categories=["cs.CL"], categories_shown="")
    html = text(response)
    assert response.status_code == 400
    assert "Line 21: too many filters (at most 20, one per line)" in html
    assert topics_box(html) == twenty + "\ncat:cs.CL"  # what the reader sees is what was checked
    assert boxes(html)["cs.CL"] is True and shown(html) == "cs.CL"
    assert subscriber(session, "ann@example.org") is None


def test_previewing_preferences_applies_the_boxes_without_saving(client, session, smtp_server, arxiv_settings, papers):
    row = confirmed(client, smtp_server, session, "robot")
    response = form_post(client, preferences_path(arxiv_settings, row), prefs("robot", ticked=["cs.CL"], action="preview"))
    html = text(response)
    assert response.status_code == 200 and topics_box(html) == "robot\ncat:cs.CL"
    assert subscriber(session, "ann@example.org").topics_text == "robot"
    section = html.split('<h3 class="section-head">New on arXiv</h3>', 1)[1]
    assert "2 of the 3 papers arXiv announced as new (25 Nov–26 Nov) match" in section
    titles = re.findall(r'class="paper-title" href="([^"]+)"[^>]*>([^<]+)<', section)
    assert titles == [
        ("https://arxiv.org/abs/2611.10001", "Diffusion language models decode in parallel"),
        ("https://arxiv.org/abs/2611.10002", "A treebank for Old Irish"),
    ]


@pytest.mark.parametrize(
    "text_, ticked, was, merged",
    [
        ("", {"cs.CL"}, set(), "cat:cs.CL"),
        ("a\n\n", {"cs.CL"}, set(), "a\n\ncat:cs.CL"),  # one trailing blank line takes it
        ("a\ncat:cs.CL\nb\n cat:cs.cl ", set(), {"cs.CL"}, "a\nb"),
        ("a\ncat:cs.CL", {"cs.CL"}, {"cs.CL"}, "a\ncat:cs.CL"),
        ("a", set(), {"cs.CL"}, "a"),
        ("a", {"cs.CV"}, set(), "a"),  # not configured
    ],
)
def test_merge_categories(text_, ticked, was, merged):
    assert merge_categories(text_, ("cs.CL", "cs.LG"), ticked, was) == merged


# ---------------------------------------------------------------- the live preview


def ask(client, topics):
    token = csrf_token(client.get("/").data)
    response = client.post("/preview", json={"topics": topics}, headers={"X-CSRFToken": token})
    assert response.status_code == 200
    return response.get_json()


def test_the_live_preview_lists_arxivs_new_papers_for_a_cat_line(client, papers):
    data = ask(client, "cat:cs.CL")
    assert (data["considered"], data["matched"]) == (2, 1)  # the trending paper in cs.CL
    assert [p["url"] for p in data["papers"]] == ["https://huggingface.co/papers/2611.00002"]
    arxiv = data["arxiv"]
    assert (arxiv["first_day"], arxiv["last_day"]) == (data["first_day"], data["last_day"]) == ("2026-11-25", "2026-11-26")
    assert (arxiv["considered"], arxiv["matched"]) == (3, 2)  # the withdrawn one is not among them
    first, second = arxiv["papers"]
    assert first["title"] == [["Diffusion language models decode in parallel", False]]
    assert first["url"] == "https://arxiv.org/abs/2611.10001" and first["day"] == "2026-11-26"
    assert first["categories"] == [["cs.CL", True], [", ", False], ["cs.LG", False]]
    assert first["matched"] == "cat:cs.CL" and first["authors"] == [["Noor Rahman", False]]
    assert second["url"] == "https://arxiv.org/abs/2611.10002"
    assert data["misses"] == []


def test_only_the_lines_naming_a_category_or_source_reach_arxivs_papers(client, papers):
    data = ask(client, "diffusion\ncat:cs.LG\nsource:arxiv treebank")
    assert [p["url"] for p in data["papers"]] == ["https://huggingface.co/papers/2611.00001"]
    # "diffusion" alone never reaches the arXiv paper that mentions it, only through cat:cs.LG
    arxiv = data["arxiv"]
    assert [(p["url"], p["matched"]) for p in arxiv["papers"]] == [
        ("https://arxiv.org/abs/2611.10001", "cat:cs.LG"),
        ("https://arxiv.org/abs/2611.10002", "source:arxiv treebank"),
        ("https://arxiv.org/abs/2611.10003", "cat:cs.LG"),
    ]
    assert arxiv["papers"][1]["title"] == [["A ", False], ["treebank", True], [" for Old Irish", False]]


def test_arxivs_announcement_of_the_day_after_the_last_daily_papers_day_is_in_it(client, session, make_paper, papers):
    """arXiv announces at midnight UTC, hours before that day's Daily Papers fill up."""
    arxiv_paper(make_paper, session, "2611.10005", "Tokenizers for Old Irish", ["cs.CL"], day=LAST + timedelta(days=1))
    arxiv_paper(make_paper, session, "2611.10006", "Too old: a parser", ["cs.CL"], day=LAST - timedelta(days=2))
    session.commit()
    data = ask(client, "cat:cs.CL")
    assert data["last_day"] == "2026-11-26"
    arxiv = data["arxiv"]
    assert (arxiv["first_day"], arxiv["last_day"]) == ("2026-11-25", "2026-11-27")
    assert [p["url"] for p in arxiv["papers"]] == [
        "https://arxiv.org/abs/2611.10005",  # the more recent day first
        "https://arxiv.org/abs/2611.10001",
        "https://arxiv.org/abs/2611.10002",
    ]
    assert arxiv["papers"][0]["day"] == "2026-11-27"


def test_the_arxiv_list_is_capped_at_the_digests_arxiv_size(arxiv_settings, papers):
    client = create_app(arxiv_settings.with_(arxiv_size=1)).test_client()
    arxiv = ask(client, "cat:cs.*")["arxiv"]
    assert (arxiv["matched"], len(arxiv["papers"])) == (3, 1)


def test_without_a_scoped_line_the_preview_is_as_before(client, papers):
    data = ask(client, "diffusion\ntreebank")
    assert "arxiv" not in data
    assert [p["url"] for p in data["papers"]] == ["https://huggingface.co/papers/2611.00001"]
    assert data["misses"] == [{"line": 2, "filter": "treebank", "reason": "no paper in the last 2 days mentions “treebank”"}]


def test_a_cat_line_that_matches_nothing_says_why(client, session, make_paper, papers):
    data = ask(client, "cat:cs.RO\ncat:cs.CL robot")
    assert data["arxiv"]["matched"] == 0 and data["arxiv"]["papers"] == []
    assert [m["reason"] for m in data["misses"]] == [
        "no paper new on arXiv in the last 2 days is in cs.RO",
        "no paper new on arXiv in the last 2 days mentions “robot”",
    ]


def test_with_no_arxiv_papers_a_cat_line_gets_the_preview_as_before(client, session, make_paper):
    make_paper("2611.00001", "Scaling video diffusion transformers", upvotes=212, day=LAST, session=session)
    session.commit()
    data = ask(client, "cat:cs.RO")
    assert "arxiv" not in data and data["matched"] == 0
    assert data["misses"] == [{"line": 1, "filter": "cat:cs.RO", "reason": "no paper on 26 November is in cs.RO"}]


# ---------------------------------------------------------------- in Chromium


@pytest.fixture
def arxiv_site(tmp_path, smtp_server, make_paper):
    port = free_port()
    settings = site_settings(tmp_path, smtp_server, port, "arxiv", arxiv_categories=("cs.CL", "cs.LG"))
    today = date.today()
    with session_scope(settings) as session:
        make_paper("2611.00001", "Scaling video diffusion transformers", upvotes=212, day=today, session=session)
        make_paper("2611.00002", "A generalist robot policy", upvotes=187, day=today, session=session)
        arxiv_paper(make_paper, session, "2611.10001", "Diffusion language models decode in parallel", ["cs.CL"], day=today)
        arxiv_paper(make_paper, session, "2611.10003", "Sharper bounds for Adam", ["cs.LG"], day=today)
    with serving(settings, port):
        yield settings
    engine_for(settings.database_url).dispose()


@pytest.mark.browser
def test_ticking_a_category_writes_its_line_and_previews_arxivs_papers(chromium, screenshot, arxiv_site):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)  # CSP violations too
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(arxiv_site.base_url + "/")
    topics, preview = page.locator("#topics"), page.locator("#topics-preview")
    topics.fill("robot\n")
    page.get_by_label("cs.CL Computation and Language").check()
    assert topics.input_value() == "robot\ncat:cs.CL"
    arxiv = preview.locator("ol.live-arxiv")
    arxiv.locator(".paper-title").first.wait_for()
    assert preview.locator("h3.live-section").inner_text() == "New on arXiv"
    assert arxiv.locator(".paper-title").all_inner_texts() == ["Diffusion language models decode in parallel"]
    assert arxiv.locator(".paper-categories mark").all_inner_texts() == ["cs.CL"]
    assert preview.locator(".live-papers:not(.live-arxiv) .paper-title").all_inner_texts() == ["A generalist robot policy"]
    screenshot(page, "20-arxiv-categories")

    # typing the other category's line ticks its box; deleting this one's unticks it
    topics.fill("robot\ncat:cs.LG")  # fill() sends the input event typing does
    assert page.get_by_label("cs.LG Machine Learning").is_checked()
    assert not page.get_by_label("cs.CL Computation and Language").is_checked()
    arxiv.locator(".paper-title", has_text="Sharper bounds for Adam").wait_for()
    page.get_by_label("cs.LG Machine Learning").uncheck()
    assert topics.input_value() == "robot"

    page.get_by_label("cs.CL Computation and Language").check()
    page.fill("#email", "ann@example.org")
    page.click("button:has-text('Subscribe')")
    page.wait_for_url("**/check-your-inbox")
    with session_scope(arxiv_site) as session:
        assert session.scalars(select(SignupRequest.topics)).one() == "robot\ncat:cs.CL"
    assert problems == []
    context.close()
