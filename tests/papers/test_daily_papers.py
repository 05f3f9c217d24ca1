"""The papers source against a real local HTTP server: parsing, retries, timeouts, caps, errors."""

from __future__ import annotations

import json
import re
import time
from datetime import date, datetime, timedelta, timezone

import pytest
from papers_api import DATA, GOOD_DAY, HOSTILE_KEPT, HOSTILE_SKIPPED, PapersApi, Reply, good_items, hostile_items, item, ok
from processes import ROOT
from support import free_port

from digest.config import Settings
from digest.papers.sources.daily_papers import PapersClient, SourceError, load_file, normalize_text, parse_items, sample_items

DAY = date.fromisoformat(GOOD_DAY)
FAST = dict(connect_timeout=1.0, read_timeout=1.0, deadline=5.0, retries=2, backoff=0.01, max_retry_after=2.0)


def client(url: str, **limits) -> PapersClient:
    return PapersClient(Settings(database_url="sqlite://", source_url=url), **(FAST | limits))


def fetch(api: PapersApi, scenario: str | None = None, day: date = DAY, **limits):
    if scenario:
        api.scenario(day.isoformat(), scenario)
    with client(api.url, **limits) as source:
        return source.fetch_day(day)


def fails(api: PapersApi, scenario: str, day: date = DAY, **limits) -> str:
    with pytest.raises(SourceError) as caught:
        fetch(api, scenario, day, **limits)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{api.url} for {day.isoformat()}: ")
    return message


# ---------------------------------------------------------------- good answers


def test_good_day_asks_for_the_date_and_normalises_whitespace(api):
    batch = fetch(api, "good")
    assert [r.params for r in api.requests] == [{"date": GOOD_DAY, "limit": "100"}]
    assert batch.fetched == 5 and not batch.skipped
    papers = {r.arxiv_id: r for r in batch.records}
    assert list(papers) == ["2509.04664", "2509.05209", "2509.04419", "2509.06160", "2509.05296"]
    unified = papers["2509.04419"]
    assert unified.title == "Towards a Unified View of Large Language Model Post-Training"
    assert "\n" not in unified.abstract and "  " not in unified.abstract
    assert unified.project_page == "https://example.org/unified-post-training"
    assert unified.daily_date == DAY  # submitted exactly at midnight UTC: still that day
    hallucinate = papers["2509.04664"]
    assert (hallucinate.org_name, hallucinate.org_fullname) == ("openai", "OpenAI")
    assert hallucinate.org_avatar == "https://cdn-avatars.huggingface.co/v1/production/uploads/o.png"
    assert papers["2509.04419"].org_avatar is None  # no organisation
    assert hallucinate.authors == ("Adam Tauman Kalai", "Ofir Nachum", "Santosh S. Vempala", "Edwin Zhang")
    assert (hallucinate.upvotes, hallucinate.num_comments) == (26, 3)
    assert hallucinate.submitted_at == datetime(2025, 9, 8, 2, 44, 20, 973000, tzinfo=timezone.utc)
    assert hallucinate.ai_keywords == ("hallucinations", "binary classification", "evaluation")
    assert hallucinate.thumbnail == "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2509.04664.png"
    assert papers["2509.05209"].github_repo == "https://github.com/Tencent-Hunyuan/Hunyuan-MT"
    assert papers["2509.05209"].github_stars == 812


def test_empty_day_is_an_empty_batch(api):
    batch = fetch(api, "empty")
    assert (batch.fetched, batch.records, dict(batch.skipped)) == (0, [], {})


def test_malformed_items_are_skipped_and_counted_by_reason_and_the_rest_kept(api):
    batch = fetch(api, "hostile")
    assert batch.fetched == len(hostile_items()) == 24
    assert dict(batch.skipped) == HOSTILE_SKIPPED
    papers = {r.arxiv_id: r for r in batch.records}
    assert tuple(papers) == HOSTILE_KEPT
    first = papers["2509.10001"]
    assert first.title == "Hostile whitespace in a title"
    assert first.upvotes == 7  # the later duplicate (999 upvotes) was skipped, not merged
    assert not any(ord(c) < 32 or 0xD800 <= ord(c) <= 0xDFFF for c in first.abstract)
    assert first.abstract.startswith("Line one line two")
    assert first.authors == ("Grace Hopper", "Hidden Person")  # blank names dropped
    assert first.org_fullname == "ACME Research"
    links = papers["2509.10002"]
    assert (links.github_repo, links.project_page, links.thumbnail) == (None, "https://example.org/project", None)
    assert (links.github_stars, links.ai_summary, links.ai_keywords) == (None, None, None)
    versioned = papers["2509.10003"]  # "2509.10003v2": the natural key has no version
    assert (versioned.abstract, versioned.authors, versioned.daily_date) == ("", (), DAY)


@pytest.mark.parametrize(
    "avatar, stored",
    [
        ("https://cdn-avatars.huggingface.co/a.png", "https://cdn-avatars.huggingface.co/a.png"),
        ("javascript:alert(1)", None),
        ("data:image/svg+xml,<svg onload=alert(1)>", None),
        ("/avatars/relative.png", None),
        (42, None),
    ],
)
def test_an_organisation_avatar_is_kept_only_as_an_http_url_and_never_skips_the_item(avatar, stored):
    with_avatar = item("2509.20002", "With an org")
    with_avatar["organization"] = {"name": "acme", "fullname": "Acme", "avatar": avatar}
    (record,) = parse_items([with_avatar]).records
    assert (record.org_name, record.org_avatar) == ("acme", stored)


def test_an_item_without_any_date_falls_on_the_day_asked_for(api):
    undated = item("2509.20001", "Undated")
    del undated["paper"]["submittedOnDailyAt"], undated["publishedAt"]
    api.days[GOOD_DAY] = [ok([undated])]
    assert [r.daily_date for r in fetch(api).records] == [DAY]
    assert dict(parse_items([undated]).skipped) == {"no date": 1}  # from a file, nothing to fall back on


# ---------------------------------------------------------------- retries and waits


def test_5xx_is_retried_then_fails_with_one_line(api):
    message = fails(api, "500", retries=2)
    assert "HTTP 500" in message and "gave up after 3 attempts" in message
    assert len(api.requests) == 3


def test_503_then_200_succeeds(api):
    api.days[GOOD_DAY] = [Reply(503, b"busy"), Reply(502, b"bad gateway"), ok(good_items())]
    assert len(fetch(api, retries=2).records) == 5
    assert len(api.requests) == 3


def test_429_waits_as_long_as_retry_after_says_then_succeeds(api):
    batch = fetch(api, "429_then_200", backoff=0.01)
    assert len(batch.records) == 5
    first, second = api.requests
    assert second.at - first.at >= 0.9  # Retry-After: 1, not the 10 ms backoff


def test_retry_after_is_capped(api):
    api.days[GOOD_DAY] = [Reply(429, headers={"Retry-After": "3600"}), ok(good_items())]
    started = time.monotonic()
    assert len(fetch(api, max_retry_after=0.2).records) == 5
    assert 0.15 <= api.requests[1].at - api.requests[0].at and time.monotonic() - started < 1.5


def test_retry_after_past_the_deadline_fails_at_once_instead_of_sleeping(api):
    api.days[GOOD_DAY] = [Reply(429, headers={"Retry-After": "30"}), ok(good_items())]
    started = time.monotonic()
    message = fails(api, None, max_retry_after=60, deadline=2.0)
    assert "HTTP 429" in message and "deadline" in message
    assert time.monotonic() - started < 1.0 and len(api.requests) == 1


def test_connection_refused_is_retried_then_fails(api):
    url = f"http://127.0.0.1:{free_port()}/api/daily_papers"
    with pytest.raises(SourceError, match="cannot connect .*gave up after 3 attempts"):
        client(url, retries=2).fetch_day(DAY)


# ---------------------------------------------------------------- slow, huge and broken answers


def test_slow_server_hits_the_read_timeout(api):
    started = time.monotonic()
    message = fails(api, "slow", read_timeout=0.3, retries=1)
    assert "timed out" in message and time.monotonic() - started < 2.0


def test_dribbling_server_hits_the_total_deadline(api):
    started = time.monotonic()  # one byte every 50 ms: never a read timeout, 10 s in all
    message = fails(api, "dribble", read_timeout=1.0, deadline=1.0)
    assert "deadline" in message and time.monotonic() - started < 2.5


def test_huge_body_is_abandoned_once_past_the_cap(api):
    message = fails(api, "huge", max_bytes=256 * 1024)
    assert "too large" in message and "262144" in message
    for _ in range(100):  # the server notices the closed connection on its next writes
        if api.sent:
            break
        time.sleep(0.05)
    assert api.sent and api.sent[0] < 20 * 2**20  # of 50 MiB: the client stopped reading


def test_declared_length_over_the_cap_fails_before_reading(api):
    message = fails(api, "huge_declared", max_bytes=1024)
    assert "500000000 bytes declared" in message


def test_truncated_body_fails_after_retries(api):
    message = fails(api, "truncated", retries=1)
    assert "broke off mid-response" in message and len(api.requests) == 2


def test_body_cut_mid_json_is_reported_as_truncated(api):
    assert "truncated JSON" in fails(api, "cut_json")


def test_non_json_body_fails(api):
    message = fails(api, "non_json")
    assert "not JSON" in message and "<!DOCTYPE html>" in message


def test_non_array_body_fails(api):
    assert "expected a JSON array of papers, got an object" in fails(api, "non_array")


def test_4xx_fails_at_once_without_retry(api):
    message = fails(api, "404")
    assert "HTTP 404" in message and "Not Found" in message and len(api.requests) == 1


def test_400_for_a_past_day_fails(api):
    assert "HTTP 400" in fails(api, "400")


def test_400_for_today_means_the_day_is_not_open_yet(api):
    today = datetime.now(timezone.utc).date()
    batch = fetch(api, "400", day=today)
    assert (batch.fetched, batch.records) == (0, [])
    assert batch.notes == [f"{today.isoformat()}: not open yet on the source (HTTP 400)"]


# ---------------------------------------------------------------- parsing, files, sample data


def test_normalize_text_makes_one_clean_line():
    assert normalize_text(" a\n  b\t\tc\x00d\x1b\ud800e\r\n") == "a b c d e"


def test_parse_items_refuses_anything_but_an_array():
    with pytest.raises(SourceError, match="got an object"):
        parse_items({"papers": []})
    with pytest.raises(SourceError, match="got NoneType"):
        parse_items(None)


def test_load_file_reads_a_saved_response():
    batch = load_file(DATA / f"daily_papers_{GOOD_DAY}.json")
    assert batch.fetched == 5 and len(batch.records) == 5


@pytest.mark.parametrize(
    "content, problem",
    [(b"", "empty body"), (b"[{", "truncated JSON"), (b"\xff\xfe[]", "not UTF-8"), (b"{}", "got an object")],
)
def test_load_file_refuses_an_unusable_file(tmp_path, content, problem):
    path = tmp_path / "response.json"
    path.write_bytes(content)
    with pytest.raises(SourceError, match=problem):
        load_file(path)
    with pytest.raises(SourceError, match="No such file"):
        load_file(tmp_path / "missing.json")


def test_sample_items_are_valid_and_fall_on_the_last_days_before_today():
    today = date(2026, 11, 29)
    items = sample_items(today)
    batch = parse_items(items, latest=today)
    assert len(batch.records) == len(items) == 61 and not batch.skipped
    assert {r.daily_date for r in batch.records} == {today - timedelta(days=n) for n in (1, 2, 3)}
    assert all(r.published_at <= r.submitted_at for r in batch.records)
    assert all(r.title and r.abstract for r in batch.records)
    again = parse_items(sample_items(date(2027, 3, 1)), latest=date(2027, 3, 1))
    assert [r.arxiv_id for r in again.records] == [r.arxiv_id for r in batch.records]  # stable ids


def test_packaged_sample_is_what_the_script_makes_from_the_seeds(seeds):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_sample_data", ROOT / "scripts" / "make_sample_data.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    packaged = json.loads((ROOT / "digest" / "papers" / "sample_data" / "papers.json").read_text("utf-8"))
    assert script.build(seeds) == packaged


SEED_DATE = re.compile(r"[A-Z][a-z]{2} \d{1,2}(?:, \d{4})?(?: (?P<upvotes>\d+))?")


def test_the_sample_says_what_the_seed_page_says_and_no_invented_author(seeds):
    """Read against the seed page itself (not through the script): the real title and abstract, the
    upvotes the page shows, its author count where it gives one (the page names no author), its
    organisation; never a name it does not give."""
    lines = [line.strip() for path in sorted(seeds.glob("*.txt")) for line in path.read_text("utf-8").splitlines() if line.strip()]
    packaged = json.loads((ROOT / "digest" / "papers" / "sample_data" / "papers.json").read_text("utf-8"))
    counted = 0
    for it in packaged:
        paper = it["paper"]
        at = lines.index(paper["title"])
        assert lines[at + 1] == paper["summary"] == it["summary"]
        who, dot, when = (lines[at + 2 : at + 5] + ["", "", ""])[:3]
        names = [author["name"] for author in paper["authors"]]
        if dot != "·":  # the page shows neither authors nor a date
            assert names == [] and paper["upvotes"] == 0 and "organization" not in it
            continue
        assert paper["upvotes"] == int(SEED_DATE.fullmatch(when)["upvotes"] or 0)
        if count := re.fullmatch(r"• (\d+) authors?", who):
            assert names == [f"{count[1]} author{'' if count[1] == '1' else 's'}"]
            counted += 1
        else:  # an organisation ("amazon Amazon") instead of authors
            assert names == [] and who == f"{it['organization']['name']} {it['organization']['fullname']}"
    assert counted == 54 and len(packaged) == 61


def test_an_author_filter_matches_no_sample_paper_by_a_name_the_seed_does_not_give():
    """The old sample's invented names ("Wei Chen"…) matched ``author:chen``; a count matches no name."""
    from digest.matching.topics import PaperText, parse_topics
    from digest.web.papers import short_authors

    batch = parse_items(sample_items(date(2026, 11, 29)), latest=date(2026, 11, 29))
    texts = [PaperText(r.title, r.abstract, r.authors, r.org_name or "", r.org_fullname or "", r.upvotes) for r in batch.records]
    for topic in ('author:"Yann LeCun"', "author:chen", "author:wang", "author:smith", "author:zhang", "author:li"):
        (flt,) = parse_topics(topic)
        assert [t.title for t in texts if flt.matches(t)] == [], topic
    shown = {short_authors(r) for r in batch.records}
    assert "6 authors" in shown and "" in shown and all(a == "" or re.fullmatch(r"\d+ authors?", a) for a in shown)
