"""The arXiv source: its announcement feed and API parsed, and fetched politely from a real local server."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from arxiv_server import ArxivServer, Paper, api_entry, api_error_entry, api_feed, rss_feed

from digest.papers.items import SourceError
from digest.papers.sources.arxiv import ArxivClient, parse_api, parse_rss, split_id, user_agent

DAY = date(2024, 2, 23)
MAIL_FROM = "Trending Papers <digest@example.org>"


def day_papers() -> list[Paper]:
    return [
        Paper("2402.10001", "A new cs.CL paper", ("cs.CL",), abstract="Language models, briefly."),
        Paper("2402.10002", "Cross-listed from cs.LG", ("cs.LG", "cs.CL"), authors=("Grace Hopper",)),
        Paper("2402.10003", "Only in cs.LG", ("cs.LG", "stat.ML"), comment="Accepted at ICLR 2024", journal_ref="ICLR 2024"),
        Paper(
            "2401.09999",
            "A second version",
            ("cs.CL",),
            version=2,
            announce="replace",
            published=datetime(2024, 1, 20, tzinfo=timezone.utc),
        ),
        Paper("2402.10005", "Cross from stat.ML", ("stat.ML", "cs.LG")),
        Paper("hep-th/9901001", "An old-style id", ("hep-th", "cs.CL"), version=3, announce="replace"),
    ]


MALFORMED_ITEM = "<item><title>No id at all</title><description>Abstract: nothing</description><category>cs.CL</category></item>"


class FakeTime:
    """A clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def arxiv():
    server = ArxivServer(day=DAY, papers=day_papers()).start()
    yield server
    server.stop()


@pytest.fixture
def fake():
    return FakeTime()


def client(fake: FakeTime | None = None, **kw) -> ArxivClient:
    if fake is not None:
        kw |= {"clock": fake.clock, "sleep": fake.sleep}
    return ArxivClient(MAIL_FROM, **kw)


# ---------------------------------------------------------------- parsing


def test_combined_feed_lists_a_cross_listed_paper_once_with_its_type():
    feed = parse_rss(rss_feed(DAY, ["cs.CL", "cs.LG"], day_papers(), [MALFORMED_ITEM]))
    assert feed.day == DAY
    by_id = {item.arxiv_id: item for item in feed.items}
    assert list(by_id) == ["2402.10001", "2402.10002", "2402.10003", "2401.09999", "2402.10005", "hep-th/9901001"]
    assert {i: item.announce_type for i, item in by_id.items()} == {
        "2402.10001": "new",
        "2402.10002": "new",
        "2402.10003": "new",
        "2401.09999": "replace",
        "2402.10005": "cross",
        "hep-th/9901001": "replace-cross",
    }
    assert feed.skipped == {"no id": 1}


def test_feed_item_fields_are_read_not_guessed():
    feed = parse_rss(rss_feed(DAY, ["cs.CL"], day_papers()))
    item = {i.arxiv_id: i for i in feed.items}
    assert set(item) == {"2402.10001", "2402.10002", "2401.09999", "hep-th/9901001"}
    first = item["2402.10001"]
    assert (first.version, first.title, first.abstract) == (1, "A new cs.CL paper", "Language models, briefly.")
    assert first.authors == ("Ada Lovelace", "Alan Turing")
    assert first.link == "https://arxiv.org/abs/2402.10001"
    assert item["2402.10002"].categories == ("cs.LG", "cs.CL")
    assert item["2402.10002"].announce_type == "cross"
    assert (item["2401.09999"].version, item["2401.09999"].announce_type) == (2, "replace")
    assert (item["hep-th/9901001"].version, item["hep-th/9901001"].announce_type) == (3, "replace-cross")


def test_ids_and_versions_are_split_exactly():
    assert split_id("2412.01234v2") == ("2412.01234", 2)
    assert split_id("1401.1234") == ("1401.1234", None)
    assert split_id("hep-th/9901001v1") == ("hep-th/9901001", 1)
    assert split_id("math.GT/0309136") == ("math.GT/0309136", None)
    for bad in ("2412.123", "2412.01234v", "hep-th/99", "arXiv:2412.01234", "2412.01234v2 trailing", ""):
        assert split_id(bad) is None, bad


def test_an_item_with_an_unreadable_id_is_counted_not_guessed():
    bad = '<item><title>T</title><guid isPermaLink="false">oai:arXiv.org:not-an-id</guid><link>https://example.org/x</link></item>'
    untyped = '<item><title>T</title><guid isPermaLink="false">oai:arXiv.org:2402.00001v1</guid></item>'
    feed = parse_rss(rss_feed(DAY, ["cs.CL"], [], [bad, untyped, MALFORMED_ITEM, MALFORMED_ITEM]))
    assert feed.items == []
    assert feed.skipped == {"bad id": 1, "bad announce type": 1, "no id": 2}


def test_an_empty_holiday_feed_has_its_day_and_no_items():
    feed = parse_rss(rss_feed(DAY, ["cs.CL", "cs.LG"], []))
    assert (feed.day, feed.items, feed.skipped) == (DAY, [], {})


def test_malformed_xml_is_one_clear_line():
    with pytest.raises(SourceError) as exc:
        parse_rss(rss_feed(DAY, ["cs.CL"], day_papers())[:-40])
    assert "not well-formed XML" in str(exc.value) and "\n" not in str(exc.value)
    with pytest.raises(SourceError, match="not an RSS 2.0 feed"):
        parse_rss(b"<html><body>Sorry</body></html>")


def test_entities_are_never_expanded():
    bomb = b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]><rss><channel><title>&b;</title></channel></rss>'
    with pytest.raises(SourceError, match="refused XML"):
        parse_rss(bomb)


def test_api_answer_by_id_with_error_entries_left_out():
    papers = day_papers()
    entries = parse_api(api_feed([api_entry(p) for p in papers] + [api_error_entry("1234.bad")]))
    assert set(entries) == {p.arxiv_id for p in papers}
    iclr = entries["2402.10003"]
    assert (iclr.primary_category, iclr.categories) == ("cs.LG", ("cs.LG", "stat.ML"))
    assert (iclr.comment, iclr.journal_ref, iclr.version) == ("Accepted at ICLR 2024", "ICLR 2024", 1)
    second = entries["2401.09999"]
    assert second.version == 2
    assert second.published == datetime(2024, 1, 20, tzinfo=timezone.utc)
    assert second.updated == datetime(2024, 1, 21, tzinfo=timezone.utc)
    assert (second.title, second.summary, second.authors) == ("A second version", "We study things.", ("Ada Lovelace", "Alan Turing"))
    assert entries["hep-th/9901001"].primary_category == "hep-th"
    assert entries["2402.10001"].comment is None


def test_api_answer_that_is_not_atom_is_a_source_error():
    with pytest.raises(SourceError, match="not an Atom feed"):
        parse_api(rss_feed(DAY, ["cs.CL"], []))
    with pytest.raises(SourceError, match="not well-formed XML"):
        parse_api(b"<feed")


# ---------------------------------------------------------------- fetching


def test_announcement_fetches_one_combined_feed(arxiv, fake):
    with client(fake) as c:
        feed = c.announcement(arxiv.rss_url, ["cs.CL", "cs.LG"])
    assert [r.path for r in arxiv.requests] == ["/rss/cs.CL+cs.LG"]
    assert len(feed.items) == 6 and feed.day == DAY


def test_one_connection_carries_every_request(arxiv, fake):
    with client(fake) as c:
        c.announcement(arxiv.rss_url, ["cs.CL"])
        c.details(arxiv.api_url, [f"2402.{20000 + i}" for i in range(150)])
    assert len(arxiv.requests) == 3
    assert len({r.client_port for r in arxiv.requests}) == 1


def test_user_agent_names_the_product_and_the_contact(arxiv, fake):
    with client(fake) as c:
        c.announcement(arxiv.rss_url, ["cs.CL"])
        c.details(arxiv.api_url, ["2402.10001"])
    assert {r.headers["User-Agent"] for r in arxiv.requests} == {"Trending Papers digest (mailto:digest@example.org)"}
    with pytest.raises(ValueError, match="contact address"):
        user_agent("nobody")


def test_details_asks_in_batches_of_at_most_100_and_leaves_unknown_ids_absent(arxiv, fake):
    arxiv.catalogue = [Paper(f"2402.{20000 + i}", f"Paper {i}", ("cs.LG",)) for i in range(230)]
    arxiv.dropped = {"2402.20007"}
    ids = [p.arxiv_id for p in arxiv.catalogue] + ["2402.99999", "hep-th/9901001"]
    with client(fake) as c:
        entries = c.details(arxiv.api_url, ids)
    sizes = [len(r.params["id_list"].split(",")) for r in arxiv.requests]
    assert sizes == [100, 100, 32]
    assert [int(r.params["max_results"]) for r in arxiv.requests] == sizes
    assert set(entries) == set(ids) - {"2402.20007", "2402.99999"}


def test_waits_at_least_3_seconds_between_requests_to_one_host(arxiv, fake):
    with client(fake) as c:
        c.announcement(arxiv.rss_url, ["cs.CL"])
        c.details(arxiv.api_url, [f"2402.{20000 + i}" for i in range(250)])  # three calls
        c.announcement(arxiv.rss_url, ["cs.LG"])
    assert len(arxiv.requests) == 5
    assert all(s >= 3.0 for s in fake.sleeps) and len(fake.sleeps) == 4


def test_waits_between_requests_in_real_time(arxiv):
    with client(min_interval=0.2) as c:
        c.announcement(arxiv.rss_url, ["cs.CL"])
        c.details(arxiv.api_url, [f"2402.{20000 + i}" for i in range(201)])
    times = [r.at for r in arxiv.requests]
    assert len(times) == 4
    assert all(b - a >= 0.2 for a, b in zip(times, times[1:])), times


def test_a_503_with_retry_after_is_waited_out_then_succeeds(arxiv, fake):
    arxiv.unavailable("rss", times=2, retry_after=7)
    with client(fake) as c:
        feed = c.announcement(arxiv.rss_url, ["cs.CL", "cs.LG"])
    assert len(feed.items) == 6
    assert len(arxiv.requests) == 3
    assert fake.sleeps == [7, 7]


def test_a_429_without_retry_after_backs_off_exponentially(arxiv, fake):
    arxiv.unavailable("api", times=3, status=429)
    with client(fake, backoff=5.0) as c:
        assert set(c.details(arxiv.api_url, ["2402.10001"])) == {"2402.10001"}
    assert fake.sleeps == [5.0, 10.0, 20.0]


def test_a_503_that_never_ends_hits_the_deadline_with_a_clear_error(arxiv, fake):
    arxiv.unavailable("api", times=None, retry_after=30)
    with client(fake, deadline=100.0) as c, pytest.raises(SourceError) as exc:
        c.details(arxiv.api_url, ["2402.10001"])
    message = str(exc.value)
    assert message.startswith(f"arXiv API {arxiv.api_url} (ids 1-1 of 1): HTTP 503 after 4 attempts")
    assert "100 s deadline" in message and "\n" not in message
    assert fake.now - 1000.0 <= 100.0


def test_a_client_error_is_not_retried(arxiv, fake):
    with client(fake) as c, pytest.raises(SourceError, match="HTTP 404"):
        c.details(arxiv.base + "/nowhere", ["2402.10001"])
    assert len(arxiv.requests) == 1


def test_the_backoff_doubles_up_to_its_cap_however_many_attempts_a_fast_failing_server_allows():
    from digest.papers.sources.http import backoff

    assert [backoff(n, 5.0, 120.0) for n in (1, 2, 3, 5, 6)] == [5.0, 10.0, 20.0, 80.0, 120.0]
    # a server that fails in a millisecond under a 600 s deadline: thousands of attempts (2 ** 1100
    # is no float; the arXiv client raised OverflowError there instead of its one-line SourceError)
    assert backoff(5000, 1e-9, 120.0) == 120.0 and backoff(5000, 0.0, 0.0) == 0.0
