"""The demo's arXiv side: the packaged sample papers carry their arXiv categories, a sample
announcement made from them is served by the package's local arXiv server in arXiv's two formats,
and `digest demo` ingests it from there once (nothing reaches the internet), so the demo holds papers
with categories and papers only arXiv announced."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from xml.etree.ElementTree import fromstring

import httpx
import pytest
from sqlalchemy import select

from digest.config import ARXIV_CATEGORY, DEFAULT_ARXIV_API_URL, DEFAULT_ARXIV_RSS_URL, load_settings
from digest.db import session_scope
from digest.demo import prepare
from digest.models import IngestRun, Paper
from digest.papers.sources.arxiv import ArxivClient, parse_api, parse_rss
from digest.papers.sources.daily_papers import sample_items
from digest.papers.sources.local_arxiv import (
    ARXIV_ONLY,
    ORIGIN,
    SAMPLE_CATEGORIES,
    is_loopback,
    sample_announcement,
    sample_categories,
)

SAMPLE = Path(__file__).resolve().parents[2] / "digest" / "papers" / "sample_data"
TODAY = date(2026, 11, 30)  # a Monday
MAIL_FROM = "Trending Papers <digest@example.org>"
FOUND = ("primary and cross-lists", "primary only; cross-lists assigned from title and abstract")
ASSIGNED = "none; primary and cross-lists assigned from title and abstract"


def categories_file() -> dict:
    return json.loads((SAMPLE / "arxiv_categories.json").read_text("utf-8"))


def test_every_sample_paper_has_arxiv_categories_and_says_whether_they_were_found_or_assigned():
    data = categories_file()
    ids = {item["paper"]["id"] for item in json.loads((SAMPLE / "papers.json").read_text("utf-8"))}
    entries = {k: v for k, v in data.items() if not k.startswith("_")}
    assert set(entries) == ids  # every sample paper, and only those
    for arxiv_id, entry in entries.items():
        listed = [entry["primary"], *entry["cross"]]
        assert all(ARXIV_CATEGORY.fullmatch(c) for c in listed), (arxiv_id, listed)
        assert len(set(listed)) == len(listed), arxiv_id  # the primary is not a cross-list of itself
        assert entry["found"] in (*FOUND, ASSIGNED), arxiv_id
        assert bool(entry["evidence"]) == (entry["found"] != ASSIGNED), arxiv_id  # a finding names its page
    counts = [sum(e["found"] == kind for e in entries.values()) for kind in (*FOUND, ASSIGNED)]
    assert "{} papers: primary and cross-lists found. {}: primary found".format(*counts[:2]) in data["_note"]
    assert f"{counts[2]}: nothing found" in data["_note"]
    primaries = {e["primary"] for e in entries.values()}
    assert {"cs.CL", "cs.LG", "cs.CV", "cs.AI"} <= primaries
    assert sum(bool(e["cross"]) for e in entries.values()) >= 10  # several cross-lists
    assert all(entries[i]["found"] == FOUND[0] for i in ARXIV_ONLY)  # the arXiv-only papers: categories as found
    assert sample_categories()["1602.03616"] == ("cs.NE", "cs.CV")  # the package reads the file, primary first


def test_the_sample_announcement_is_served_in_arxivs_two_formats_and_says_where_it_comes_from():
    announcement = sample_announcement(TODAY)
    categories = sample_categories()
    server = announcement.server(SAMPLE_CATEGORIES).start()
    try:
        with ArxivClient(MAIL_FROM, min_interval=0.0, deadline=10.0) as client:
            feed = client.announcement(server.rss_url, SAMPLE_CATEGORIES)
            details = client.details(server.api_url, [item.arxiv_id for item in feed.items])
        raw = httpx.get(server.rss_url + "+".join(SAMPLE_CATEGORIES)).content
        raw_api = httpx.get(server.api_url, params={"id_list": ",".join(ARXIV_ONLY)}).content
    finally:
        server.stop()
    assert feed.day == TODAY - timedelta(days=1) and not feed.skipped  # the latest Daily Papers day
    kinds = {item.arxiv_id: item.announce_type for item in feed.items}
    cross = {i for i, kind in kinds.items() if kind == "cross"}
    assert cross == {"1602.03616", "2506.16289"}  # cs.NE and stat.ML papers cross-listed to cs.CV and cs.LG
    assert len(kinds) == 26 and set(kinds.values()) == {"new", "cross"}
    assert announcement.counts(SAMPLE_CATEGORIES) == (24, 2)
    assert set(ARXIV_ONLY) <= set(kinds)  # the papers only this feed announces
    latest = TODAY - timedelta(days=1)  # the sample's latest Daily Papers day: its papers are announced too
    assert {p.arxiv_id for p in announcement.papers} - set(ARXIV_ONLY) == {i for i, day in sample_days(TODAY).items() if day == latest}
    assert set(details) == set(kinds)
    for arxiv_id, entry in details.items():
        assert (entry.primary_category, *entry.categories[1:]) == categories[arxiv_id]
        assert (entry.primary_category in SAMPLE_CATEGORIES) == (kinds[arxiv_id] == "new")
    description = fromstring(raw).find("channel/description").text
    assert f"arXiv sample announcement ({ORIGIN}): 24 new, 2 cross-lists in cs.CL, cs.LG, cs.CV, cs.AI" in description
    assert "not by arXiv" in description
    assert parse_rss(raw).day == TODAY - timedelta(days=1)
    assert {i: e.categories for i, e in parse_api(raw_api).items()} == {i: categories[i] for i in ARXIV_ONLY}


def sample_days(today: date) -> dict[str, date]:
    return {item["paper"]["id"]: date.fromisoformat(item["paper"]["submittedOnDailyAt"][:10]) for item in sample_items(today)}


def test_only_this_machine_may_be_asked_without_arxivs_wait():
    assert is_loopback("http://127.0.0.1:8123/rss/") and is_loopback("http://localhost:1/api/query")
    assert is_loopback("http://[::1]:80/rss/")
    assert not is_loopback(DEFAULT_ARXIV_RSS_URL) and not is_loopback(DEFAULT_ARXIV_API_URL)
    assert not is_loopback("http://127.0.0.1.example.org/rss/")
    assert ArxivClient(MAIL_FROM).min_interval >= 3.0  # the production default keeps arXiv's 3 s


@pytest.fixture
def demo_settings(tmp_path):
    return load_settings({"DIGEST_DATA_DIR": str(tmp_path / "data")}, demo=True).with_(base_url="http://127.0.0.1:8123")


def test_the_demo_ingests_the_sample_announcement_from_its_local_server(demo_settings):
    lines: list[str] = []
    demo = prepare(demo_settings, sample=True, echo=lines.append, today=TODAY)
    server = demo.arxiv
    try:
        requests = list(server.requests)
    finally:
        demo.stop()
    (line,) = [line for line in lines if line.startswith("arXiv sample announcement")]
    assert line.startswith(
        f"arXiv sample announcement ({ORIGIN}): 24 new, 2 cross-lists in cs.CL, cs.LG, cs.CV, cs.AI of {TODAY - timedelta(days=1)}"
    )
    assert re.search(r"ingest: fetched 26 from arXiv cs\.CL\+cs\.LG\+cs\.CV\+cs\.AI \(2026-11-29\); new 5; updated 21", line), line
    assert "5 held back for the sample arXiv announcement" in lines[0]
    assert [r.path for r in requests] == ["/rss/cs.CL+cs.LG+cs.CV+cs.AI", "/api/query"]
    assert requests[1].at - requests[0].at < 2.0  # the local server is not made to wait arXiv's 3 s
    # the running demo's settings (and its scheduler's) still name the real arXiv, which only --live asks
    assert demo.settings.arxiv_rss_url == DEFAULT_ARXIV_RSS_URL + "/" and "ingest_arxiv" not in [j.name for j in demo.scheduler.jobs]
    assert demo.settings.arxiv_categories == ("cs.CL", "cs.LG", "cs.CV", "cs.AI")  # the site offers the sample's categories
    with pytest.raises(httpx.TransportError):  # stopped with the demo
        httpx.get(server.rss_url + "cs.CL", timeout=1)

    categories = sample_categories()
    with session_scope(demo_settings) as session:
        papers = {p.arxiv_id: p for p in session.scalars(select(Paper))}
        runs = [run.source for run in session.scalars(select(IngestRun))]
    assert len(papers) == 61  # 56 from the Daily Papers sample, 5 only from the arXiv announcement
    for arxiv_id in ARXIV_ONLY:
        only = papers[arxiv_id]
        assert only.daily_date is None and only.announced_on == TODAY - timedelta(days=1), arxiv_id
        assert (only.primary_category, *only.categories[1:]) == categories[arxiv_id]
    trending = [p for p in papers.values() if p.daily_date == TODAY - timedelta(days=1)]
    assert len(trending) == 21
    for paper in trending:  # the latest day's papers: on Daily Papers and in the announcement
        assert paper.announced_on == TODAY - timedelta(days=1) and paper.primary_category == categories[paper.arxiv_id][0]
        assert paper.categories == list(categories[paper.arxiv_id])
    assert all(
        p.announced_on is None and p.categories in (None, [])
        for p in papers.values()
        if p.daily_date and p.daily_date < TODAY - timedelta(days=1)
    )
    assert runs == ["packaged sample papers", "arXiv cs.CL+cs.LG+cs.CV+cs.AI (2026-11-29)"]


def test_the_demo_follows_DIGEST_ARXIV_CATEGORIES_when_set(tmp_path):
    settings = load_settings({"DIGEST_DATA_DIR": str(tmp_path / "data"), "DIGEST_ARXIV_CATEGORIES": "cs.CV"}, demo=True)
    lines: list[str] = []
    demo = prepare(settings, sample=True, echo=lines.append, today=TODAY)
    demo.stop()
    new, cross = sample_announcement(TODAY).counts(("cs.CV",))
    (line,) = [line for line in lines if line.startswith("arXiv sample announcement")]
    assert f": {new} new, {cross} cross-lists in cs.CV of {TODAY - timedelta(days=1)}" in line and "arXiv cs.CV (2026-11-29)" in line
    with session_scope(settings) as session:
        announced = set(session.scalars(select(Paper.arxiv_id).where(Paper.announced_on == TODAY - timedelta(days=1))))
    assert "1602.03616" in announced and "2601.08209" not in announced  # cs.NE cross-listed to cs.CV; a cs.CL paper
