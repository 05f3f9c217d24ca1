"""`digest ingest --source arxiv`: the announcement stored whole or not at all, one paper per arXiv
id across sources and versions, and no digest of today changed by it."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest
from arxiv_server import ArxivServer
from click.testing import CliRunner
from sqlalchemy import func, select
from support import subprocess_env
from test_arxiv import DAY, MAIL_FROM, MALFORMED_ITEM, day_papers

from digest.cli import main
from digest.matching.trending import load_candidates
from digest.models import IngestRun, Paper, PaperVector
from digest.papers.ingest import ingest_arxiv
from digest.papers.items import SourceError
from digest.papers.sources.arxiv import ArxivClient


@pytest.fixture
def arxiv():
    server = ArxivServer(day=DAY, papers=day_papers(), extra_items=[MALFORMED_ITEM]).start()
    yield server
    server.stop()


def configured(settings, server):
    return settings.with_(arxiv_categories=("cs.CL", "cs.LG"), arxiv_rss_url=server.rss_url, arxiv_api_url=server.api_url)


def quick() -> ArxivClient:
    return ArxivClient(MAIL_FROM, min_interval=0.0, deadline=3.0, backoff=0.01, max_backoff=0.05)


def rows(session) -> dict[str, Paper]:
    session.expire_all()
    return {p.arxiv_id: p for p in session.scalars(select(Paper))}


def test_one_paper_per_arxiv_id_and_no_digest_window_holds_an_arxiv_only_paper(session, settings, arxiv, make_paper):
    trending = make_paper("2402.10002", "Cross-listed from cs.LG", upvotes=7, day=DAY, session=session)  # on Hugging Face first
    session.commit()

    report = ingest_arxiv(configured(settings, arxiv), client=quick())
    assert report.fetched == 6 and report.new == 5 and report.updated == 1
    assert report.skipped == {"item without an arXiv id": 1} or sum(report.skipped.values()) == 1
    papers = rows(session)
    assert len(papers) == 6  # 2402.10002 is one paper, from both sources
    both = papers["2402.10002"]
    assert both.id == trending.id and both.upvotes == 7 and both.daily_date == DAY  # Hugging Face's side kept
    assert (both.primary_category, both.categories, both.announced_on) == ("cs.LG", ["cs.LG", "cs.CL"], DAY)
    new = papers["2402.10001"]
    assert new.daily_date is None and new.announced_on == DAY and new.categories == ["cs.CL"] and new.arxiv_version == 1
    replaced = papers["2401.09999"]  # a replacement of a paper never seen: stored, never new
    assert replaced.announced_on is None and replaced.arxiv_version == 2
    assert papers["hep-th/9901001"].arxiv_version == 3 and papers["hep-th/9901001"].primary_category == "hep-th"
    assert session.scalar(select(func.count()).select_from(PaperVector)) == 6  # vectors for the new ones too
    assert [p.arxiv_id for p in load_candidates(session, DAY, DAY)] == ["2402.10002"]  # today's digests: unchanged
    (run,) = session.scalars(select(IngestRun)).all()
    assert run.source == "arXiv cs.CL+cs.LG (2024-02-23)" and (run.new, run.updated) == (5, 1)

    api_calls = sum(r.path.startswith("/api") for r in arxiv.requests)
    again = ingest_arxiv(configured(settings, arxiv), client=quick())  # the same announcement, an hour later
    assert (again.new, again.updated) == (0, 0) and again.notes == ["the announcement of 2024-02-23 was ingested already: nothing to do"]
    assert sum(r.path.startswith("/api") for r in arxiv.requests) == api_calls  # the API is not asked again
    assert session.scalar(select(func.count()).select_from(IngestRun)) == 1 and rows(session)["2402.10001"].announced_on == DAY


def test_a_failing_api_stores_nothing_and_says_so_in_one_line(session, settings, arxiv):
    arxiv.unavailable("api", times=None, retry_after=0)
    with pytest.raises(SourceError) as failure:
        ingest_arxiv(configured(settings, arxiv), client=quick())
    assert "arXiv API" in str(failure.value) and "\n" not in str(failure.value)
    assert rows(session) == {} and session.scalar(select(func.count()).select_from(IngestRun)) == 0


def test_an_empty_holiday_feed_stores_nothing_and_says_why(session, settings):
    server = ArxivServer(day=DAY, papers=[]).start()
    try:
        report = ingest_arxiv(configured(settings, server), client=quick())
    finally:
        server.stop()
    assert (report.fetched, report.new) == (0, 0) and any("holiday" in n for n in report.notes)
    assert rows(session) == {}


def test_cli_ingest_source_arxiv_with_categories(session, settings, arxiv):
    env = subprocess_env(settings, DIGEST_ARXIV_RSS_URL=arxiv.rss_url, DIGEST_ARXIV_API_URL=arxiv.api_url)
    result = CliRunner().invoke(main, ["ingest", "--source", "arxiv", "--category", "cs.CL,cs.LG"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "fetched 6 from arXiv cs.CL+cs.LG (2024-02-23)" in result.output and "new 6" in result.output
    missing = CliRunner().invoke(main, ["ingest", "--source", "arxiv"], env=env)
    assert missing.exit_code == 2 and "DIGEST_ARXIV_CATEGORIES" in missing.output
    bad = CliRunner().invoke(main, ["ingest", "--source", "arxiv", "--category", "cs.CL;x"], env=env)
    assert bad.exit_code == 2 and "not an arXiv category" in bad.output


def test_the_hourly_job_ingests_each_announcement_once_and_does_nothing_when_arxiv_is_off(session, settings, arxiv):
    from digest.jobs import ARXIV_ZONE, INTERVALS, feed_updated_at, run_arxiv_ingest

    assert INTERVALS["ingest_arxiv"].total_seconds() == 3600
    assert run_arxiv_ingest(settings) is None and arxiv.requests == []  # DIGEST_ARXIV_CATEGORIES unset: not even a request
    first = run_arxiv_ingest(configured(settings, arxiv))  # the real client: ≥ 3 s between its two requests
    assert first.new == 6
    times = [r.at for r in arxiv.requests]
    assert len(times) == 2 and times[1] - times[0] >= 3.0
    asked = len(arxiv.requests)
    now = datetime.now(timezone.utc)
    later = run_arxiv_ingest(configured(settings, arxiv), now + timedelta(minutes=1))  # an hour later, the same feed
    assert arxiv.requests[asked:] == [] and "nothing fetched until the next one" in later.notes[0]  # not even the feed
    updated = feed_updated_at(now + timedelta(days=1))  # past the next midnight US Eastern: look again
    assert updated.astimezone(ARXIV_ZONE).time() == time(0) and now < updated <= now + timedelta(days=1)
    again = run_arxiv_ingest(configured(settings, arxiv), updated + timedelta(minutes=5))
    assert again.notes == ["the announcement of 2024-02-23 was ingested already: nothing to do"]  # not updated yet: no run recorded
    assert len(arxiv.requests) == asked + 1  # the feed only, not the API
