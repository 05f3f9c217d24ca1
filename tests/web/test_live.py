"""The sign-up form's live preview endpoint: ``POST /preview`` with JSON, CSRF token in a header."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from web_helpers import csrf_token, form_post, mailed_link, subscribe, subscriber, text

from digest import tokens
from digest.web import create_app
from digest.web.views import LIVE_PREVIEW_MAX_BYTES

LAST = date(2026, 11, 26)


@pytest.fixture
def recent_papers(session, make_paper):
    papers = [
        ("Scaling video diffusion transformers", 212, 0, "We pre-train diffusion models for long text-to-video clips.", ["Lena Hoffmann"]),
        ("A generalist robot policy", 187, 1, "An embodied agent. Video data helps.", ["Ana Souza"]),
        ("Quantized LLMs, a survey", 40, 2, "Post-training quantization of large language models.", ["Omar Haddad"]),
        ("Sparse attention", 12, 6, "Efficient attention for long contexts.", ["Julia Novak"]),
    ]
    for i, (title, votes, age, abstract, authors) in enumerate(papers):
        make_paper(
            f"2611.{i:05d}", title, upvotes=votes, day=LAST - timedelta(days=age), abstract=abstract, authors=authors, session=session
        )
    session.commit()


def ask(client, topics, token=None, **kwargs):
    if token is None:
        token = csrf_token(client.get("/").data)
    headers = {"X-CSRFToken": token} if token else {}
    return client.post("/preview", json={"topics": topics}, headers=headers, **kwargs)


def test_it_lists_the_matching_papers_with_the_matching_words_marked(client, recent_papers):
    response = ask(client, "(diffusion OR robots) video\nquantiz*")
    assert response.status_code == 200 and response.mimetype == "application/json"
    data = response.get_json()
    assert data["ok"] is True
    assert (data["filters"], data["considered"], data["matched"]) == (2, 4, 3)
    assert (data["first_day"], data["last_day"]) == ("2026-11-20", "2026-11-26")
    assert [p["upvotes"] for p in data["papers"]] == [212, 187, 40]  # the trending order
    first = data["papers"][0]
    assert first["title"] == [["Scaling ", False], ["video", True], [" ", False], ["diffusion", True], [" transformers", False]]
    assert first["url"] == "https://huggingface.co/papers/2611.00000" and first["day"] == "2026-11-26"
    assert first["matched"] == "(diffusion OR robots) video" and first["excerpt"] == []
    robot = data["papers"][1]
    assert ["robot", True] in robot["title"]  # "robots" finds "robot"
    assert robot["excerpt"] == [] and robot["authors"] == [["Ana Souza", False]]
    quantized = data["papers"][2]
    assert quantized["title"][0] == ["Quantized", True] and quantized["matched"] == "quantiz*"
    assert data["misses"] == []


def test_a_paper_matched_by_its_abstract_shows_the_marked_words_there(client, recent_papers):
    [paper] = ask(client, "text-to-video").get_json()["papers"]
    assert not any(marked for _, marked in paper["title"])
    assert ["text-to-video", True] in paper["excerpt"]


def test_it_says_which_part_of_a_line_matched_nothing(client, recent_papers):
    data = ask(client, 'diffusion\n\nauthor:"Yann LeCun"\nvideo -survey robot quantum').get_json()
    assert data["ok"] and data["matched"] == 1
    assert data["misses"] == [
        {"line": 3, "filter": 'author:"Yann LeCun"', "reason": "no paper in the last 7 days by Yann LeCun"},
        {"line": 4, "filter": "video -survey robot quantum", "reason": "no paper in the last 7 days mentions “quantum”"},
    ]


def test_filters_that_dont_parse_get_their_problems_with_line_and_column(client, recent_papers):
    response = ask(client, "video\n  (diffusion OR gan\nfoo:bar")
    assert response.status_code == 200  # the request is fine; the filters are what's wrong
    assert response.get_json() == {
        "ok": False,
        "errors": [
            {"line": 2, "column": 3, "message": "Line 2: '(' at column 3 is never closed"},
            {
                "line": 3,
                "column": 1,
                "message": "Line 3: unknown field 'foo:' (use title:, author:, org:, upvotes:, like:, cat: or source:)",
            },
        ],
        "more_errors": 0,
    }


def test_many_bad_lines_get_twenty_problems_and_a_count(client):
    data = ask(client, "(\n" * 30).get_json()
    assert len(data["errors"]) == 20 and data["more_errors"] == 11  # 30 lines, and "too many filters"


def test_no_filters_and_no_papers_are_answered_plainly(client):
    assert ask(client, " \n ").get_json() == {
        "ok": True,
        "filters": 0,
        "considered": 0,
        "matched": 0,
        "papers": [],
        "misses": [],
        "hints": [],
    }
    data = ask(client, "video").get_json()
    assert data["ok"] and data["considered"] == 0 and data["papers"] == [] and data["misses"] == []


def test_it_needs_the_pages_csrf_token(app, client, recent_papers):
    client.get("/")  # a session cookie, no token
    for token in ("", "forged", csrf_token(app.test_client().get("/").data)):  # none, made up, another browser's
        response = ask(client, "video", token=token)
        assert response.status_code == 400 and response.get_json()["ok"] is False
        assert "reload the page" in response.get_json()["error"]


def test_it_refuses_what_is_not_a_small_json_object(client):
    token = csrf_token(client.get("/").data)
    headers = {"X-CSRFToken": token}
    assert client.get("/preview").status_code == 405
    assert client.post("/preview", data="video", headers=headers).status_code == 400
    assert client.post("/preview", json=["video"], headers=headers).status_code == 400
    assert client.post("/preview", json={"topics": 5}, headers=headers).status_code == 400
    big = client.post("/preview", json={"topics": "x" * LIVE_PREVIEW_MAX_BYTES}, headers=headers)
    assert big.status_code == 413 and big.get_json()["ok"] is False


def test_topics_over_2000_characters_are_a_filter_problem(client):
    data = ask(client, "video " * 400).get_json()
    assert data["ok"] is False and "topics are too long (2399 characters, at most 2000" in data["errors"][0]["message"]


def test_it_is_rate_limited_per_client(mail_settings, recent_papers):
    client = create_app(mail_settings.with_(extra={"rate_limit_preview": "3 per minute"})).test_client()
    token = csrf_token(client.get("/").data)
    codes = [ask(client, f"video{i}", token=token).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    other = ask(client, "video", token=token, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200


def test_the_home_page_carries_the_preview_box_hidden_and_its_script(client):
    html = text(client.get("/"))
    assert '<div id="topics-preview" class="live-preview" data-url="/preview" hidden>' in html
    assert 'src="/static/live-preview.js"' in html and "<script>" not in html
    script = text(client.get("/static/live-preview.js"))
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script and "textContent" in script


def test_the_preferences_preview_says_which_part_matched_nothing(client, session, smtp_server, mail_settings, recent_papers):
    subscribe(client, "ann@example.org", "video")
    client.post(mailed_link(smtp_server.to("ann@example.org")[-1], "confirm"))
    row = subscriber(session, "ann@example.org")
    path = f"/preferences/{tokens.make_token(mail_settings, 'preferences', row.public_id)}"
    data = {"topics": 'author:"Yann LeCun"\nvideo', "frequency": "daily", "timezone": "UTC", "delivery_hour": "7", "action": "preview"}
    html = text(form_post(client, path, data))
    assert '<code>author:"Yann LeCun"</code> matched nothing: no paper in the last 7 days by Yann LeCun.' in html
    assert "fewer words" not in html  # the old catch-all hint is gone


def test_a_line_of_stop_words_is_kept_with_a_hint_that_it_matches_papers_on_any_topic(client, recent_papers):
    data = ask(client, "video\na or b").get_json()
    assert data["ok"] is True and data["matched"] == 3  # the line is kept: "a" finds the robot policy and the survey
    assert data["hints"] == [
        {
            "line": 2,
            "message": "Line 2: “a” is a stop word (a very common word that says nothing about a topic): "
            "this line matches papers on any topic. It is kept as written; add a word that names yours.",
        }
    ]
    assert ask(client, "video\na video").get_json()["hints"] == []


def test_a_line_that_only_names_a_paper_lists_the_papers_nearest_it_first_not_only_itself(client, session, recent_papers):
    from digest.papers.vectors import represent

    represent(session)
    session.commit()
    data = ask(client, "like:2611.00002").get_json()  # the quantization survey, 40 upvotes
    assert data["ok"] is True and data["matched"] == 4  # its nearest, however far: never only itself
    titles = ["".join(part for part, _ in p["title"]) for p in data["papers"]]
    assert titles[0] == "Quantized LLMs, a survey"  # nearest first (itself: the digest leaves it out), not 212 upvotes first
    assert titles != ["Scaling video diffusion transformers", "A generalist robot policy", "Quantized LLMs, a survey", "Sparse attention"]
