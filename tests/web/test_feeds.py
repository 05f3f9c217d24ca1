"""The feeds (issue 24, item 3): each reader's digests as an Atom feed at a signed URL, the public feed
of each Daily Papers day's top papers, the page of a day; read back with feedparser, as a feed reader
reads them, after real sends through a real SMTP server.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import feedparser
import lxml.html
import pytest
from digest_helpers import AT, DAY, RENDER_SETTINGS, add_subscriber, parts, shown_papers
from sqlalchemy import delete, select
from web_helpers import text

from digest import tokens
from digest.delivery.run import send_due
from digest.mail.digest_email import DigestLinks, DigestMailer, Reader, listed_papers
from digest.matching.select import Pick
from digest.matching.trending import rank_key
from digest.models import Paper, Subscriber, SubscriberState
from digest.web import create_app
from digest.web.feeds import DAY_PAPERS, FEED_DIGESTS, reader_feed_url

D = timedelta(days=1)
BASE = "https://digest.example.org"
PAPER_ID = re.compile(r"https://(?:huggingface\.co/papers|arxiv\.org/abs)/([0-9A-Za-z./-]+)$")
#: The line under each card of a digest's text part: the filter that matched, or "outside your filters".
WHY_LINE = re.compile(r"^    ((?:matched: |outside your filters).*)$", re.M)


def feed_path(settings, subscriber) -> str:
    url = reader_feed_url(settings, subscriber.public_id)
    assert url.startswith(BASE + "/feed/")
    return url.removeprefix(BASE)


def parsed(response) -> feedparser.FeedParserDict:
    assert response.status_code == 200, response.status_code
    assert response.headers["Content-Type"] == "application/atom+xml; charset=utf-8"
    feed = feedparser.parse(response.data)
    assert feed.bozo == 0, feed.get("bozo_exception")
    assert feed.version == "atom10"
    return feed


def listed(entry) -> list[tuple[str, str | None]]:
    """(arXiv id, the line under it) of each paper an entry lists, in order."""
    document = lxml.html.fragment_fromstring(entry.content[0].value, create_parent="div")
    out = []
    for item in document.xpath("//li"):
        link = item.xpath(".//a")[0].get("href")
        why = item.xpath(".//*[@class='why']")
        out.append((PAPER_ID.match(link).group(1), why[0].text_content() if why else None))
    return out


def emailed(message) -> list[tuple[str, str]]:
    """(arXiv id, the line under it) of each paper a digest email showed, in order."""
    text_part, _ = parts(message)
    return list(zip(shown_papers(message), WHY_LINE.findall(text_part), strict=True))


def numbered_lines(text_part: str) -> list[tuple[int, str]]:
    """(number, the line under it) of each card of a digest's text part."""
    out, number = [], None
    for line in text_part.splitlines():
        if card := re.match(r"^ ?(\d+)\. ", line):
            number = int(card.group(1))
        elif why := WHY_LINE.match(line):
            out.append((number, why.group(1)))
    return out


@pytest.fixture
def sent(session, mail_settings, smtp_server, make_paper):
    """Two days of real sends: alice (video, agents) gets two digests, bob (robots) one."""
    make_paper("2611.00001", "Video diffusion <at> scale", upvotes=9, github_repo="https://github.com/a/b", session=session)
    make_paper("2611.00002", "Agents & tools", upvotes=5, session=session)
    make_paper("2611.00003", "Video agents", upvotes=7, session=session)
    make_paper("2611.00004", "Robots that fold laundry", upvotes=3, session=session)
    make_paper("2611.00005", "Unrelated", upvotes=8, session=session)
    alice = add_subscriber(session, "alice@example.org", ["video", "agents"])
    bob = add_subscriber(session, "bob@example.org", ["robots"])
    session.commit()
    assert send_due(mail_settings, AT, retry_delays=()).sent == 2
    make_paper("2611.00006", "Agents that plan video diffusion", day=DAY + D, upvotes=4, session=session)
    make_paper("2611.00007", "Longer video", day=DAY + D, upvotes=6, session=session)
    session.commit()
    assert send_due(mail_settings, AT + D, retry_delays=()).sent == 1  # bob: no robots on the second day
    return alice, bob


def test_a_readers_feed_lists_the_papers_of_the_digests_they_received(sent, mail_settings, smtp_server, client):
    alice, _ = sent
    feed = parsed(client.get(feed_path(mail_settings, alice)))
    mails = smtp_server.to("alice@example.org")
    assert len(mails) == 2 and len(feed.entries) == 2
    for entry, message in zip(feed.entries, reversed(mails), strict=True):  # the newest digest first
        assert entry.title == message["Subject"]
        assert listed(entry) == emailed(message)  # the same papers, in the email's order, with its why lines
        assert entry.link.startswith(f"{BASE}/digest/")
        assert entry.id.startswith("tag:digest.example.org,") and "digest/" in entry.id
    assert listed(feed.entries[1]) == [
        ("2611.00001", "matched: video"),
        ("2611.00003", "matched: video"),
        ("2611.00002", "matched: agents"),
    ]
    assert listed(feed.entries[0]) == [("2611.00007", "matched: video"), ("2611.00006", "matched: video")]
    assert feed.entries[0].updated_parsed >= feed.entries[1].updated_parsed  # sent_at, as the ledger recorded it (to the second)
    assert feed.feed.links[0].rel == "self" and feed.feed.links[0].href == reader_feed_url(mail_settings, alice.public_id)


def test_a_digest_with_both_sections_is_listed_as_its_email_listed_it(session, mail_settings, smtp_server, make_paper):
    settings = mail_settings.with_(arxiv_categories=("cs.CL", "cs.LG"))
    make_paper("2611.00001", "Video diffusion at scale", upvotes=9, session=session)
    make_paper(
        "2611.10001", "Parsing with diffusion", day=None, announced_on=DAY, categories=["cs.CL"], primary_category="cs.CL", session=session
    )
    alice = add_subscriber(session, "alice@example.org", ["video", "cat:cs.CL"])
    session.commit()
    assert send_due(settings, AT, retry_delays=()).sent == 1
    (message,) = smtp_server.to("alice@example.org")
    (entry,) = parsed(create_app(settings).test_client().get(feed_path(settings, alice))).entries
    assert listed(entry) == emailed(message) == [("2611.00001", "matched: video"), ("2611.10001", "matched: cat:cs.CL · new in cs.CL")]
    headings = [h.text_content() for h in lxml.html.fragment_fromstring(entry.content[0].value, create_parent="div").xpath("//h3")]
    assert headings == ["Trending on Hugging Face", "New on arXiv in cs.CL"]
    assert entry.title == message["Subject"] == "1 trending paper, 1 new on arXiv: Video diffusion at scale"


def test_a_feed_entry_links_the_digests_page_and_its_titles_are_escaped(sent, mail_settings, client):
    alice, _ = sent
    response = client.get(feed_path(mail_settings, alice))
    raw = response.get_data(as_text=True)
    assert "Video diffusion &amp;lt;at&amp;gt; scale" in raw  # HTML escaped, then escaped again as XML text
    entry = parsed(response).entries[1]
    assert "Video diffusion &lt;at&gt; scale" in entry.content[0].value and "<at>" not in entry.content[0].value
    page = client.get(entry.link.removeprefix(BASE))  # the "view in browser" page of that digest
    assert page.status_code == 200 and "Video diffusion &lt;at&gt; scale" in page.get_data(as_text=True)


def test_hostile_paper_text_stays_text_and_the_feed_stays_valid(session, mail_settings, smtp_server, make_paper, client):
    make_paper("2611.00001", 'Video <script>alert(1)</script> & "more"\x01\x0b', upvotes=9, session=session)
    alice = add_subscriber(session, "alice@example.org", ["video"])
    session.commit()
    assert send_due(mail_settings, AT, retry_delays=()).sent == 1
    (entry,) = parsed(client.get(feed_path(mail_settings, alice))).entries
    content = entry.content[0].value
    assert "<script" not in content and "&lt;script&gt;alert(1)&lt;/script&gt;" in content
    assert entry.title == '1 trending paper: Video <script>alert(1)</script> & "more"'  # the email's subject, as text
    assert entry.title_detail.type == "text/plain"  # a feed reader shows it as text, not as markup
    public = parsed(client.get("/feed.atom"))
    assert "<script" not in public.entries[0].content[0].value


def test_one_readers_token_never_shows_anothers_digests(sent, mail_settings, smtp_server, client):
    alice, bob = sent
    feed = parsed(client.get(feed_path(mail_settings, bob)))
    (entry,) = feed.entries
    (message,) = smtp_server.to("bob@example.org")
    assert listed(entry) == emailed(message) == [("2611.00004", "matched: robots")]
    alice_papers = {paper for e in parsed(client.get(feed_path(mail_settings, alice))).entries for paper, _ in listed(e)}
    assert "2611.00004" not in alice_papers
    # the same reader's value signed for another purpose, or tampered with: no feed
    for token in (
        tokens.make_token(mail_settings, "vote", alice.public_id),
        tokens.make_token(mail_settings, "preferences", alice.public_id),
        feed_path(mail_settings, alice).rsplit("/", 1)[1][:-1] + "A",
        alice.public_id,
        "garbage",
    ):
        response = client.get(f"/feed/{token}")
        assert response.status_code == 404, token
        assert "alice" not in response.get_data(as_text=True) and "Video" not in response.get_data(as_text=True)


@pytest.mark.parametrize("state", [SubscriberState.unsubscribed, SubscriberState.suppressed])
def test_the_feed_of_a_reader_who_left_is_gone(sent, session, mail_settings, client, state):
    alice, _ = sent
    path = feed_path(mail_settings, alice)
    session.get(Subscriber, alice.id).state = state
    session.commit()
    response = client.get(path)
    assert response.status_code == 410
    assert "Video" not in response.get_data(as_text=True) and "alice" not in response.get_data(as_text=True)
    session.execute(delete(Subscriber).where(Subscriber.id == alice.id))  # purged
    session.commit()
    assert client.get(path).status_code == 404


def test_a_pending_reader_has_no_feed(session, mail_settings, client):
    carol = add_subscriber(session, "carol@example.org", state=SubscriberState.pending)
    session.commit()
    assert client.get(feed_path(mail_settings, carol)).status_code == 404


def test_a_readers_feed_answers_304_to_a_repeat_and_200_after_the_next_digest(session, mail_settings, smtp_server, make_paper, client):
    make_paper("2611.00001", "Video diffusion", upvotes=9, session=session)
    alice = add_subscriber(session, "alice@example.org", ["video"])
    session.commit()
    assert send_due(mail_settings, AT, retry_delays=()).sent == 1
    path = feed_path(mail_settings, alice)
    first = client.get(path)
    assert first.status_code == 200
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.headers["Cache-Control"] == "private, no-cache" and first.headers["X-Robots-Tag"] == "noindex"
    assert client.get(path).headers["ETag"] == etag  # the same feed twice: the same ETag (its signed links are made afresh)
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b"" and again.headers["ETag"] == etag
    assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"something-else"'}).status_code == 200

    make_paper("2611.00002", "More video", day=DAY + D, upvotes=4, session=session)
    session.commit()
    assert send_due(mail_settings, AT + D, retry_delays=()).sent == 1
    later = client.get(path, headers={"If-None-Match": etag, "If-Modified-Since": modified})
    assert later.status_code == 200 and later.headers["ETag"] != etag
    assert len(parsed(later).entries) == 2


def test_a_readers_feed_holds_their_last_digests_only(session, mail_settings, smtp_server, make_paper, client):
    alice = add_subscriber(session, "alice@example.org")
    session.commit()
    for n in range(FEED_DIGESTS + 2):
        make_paper(f"2611.{n + 1:05d}", f"Paper of day {n}", day=DAY + n * D, upvotes=1, session=session)
        session.commit()
        assert send_due(mail_settings, AT + n * D, retry_delays=()).sent == 1
    entries = parsed(client.get(feed_path(mail_settings, alice))).entries
    assert len(entries) == FEED_DIGESTS
    assert [listed(e)[0][0] for e in entries] == [f"2611.{n + 1:05d}" for n in reversed(range(2, FEED_DIGESTS + 2))]
    assert listed(entries[0]) == [(f"2611.{FEED_DIGESTS + 2:05d}", "matched: all trending papers")]


def test_the_preferences_page_shows_an_active_reader_their_feed(sent, session, mail_settings, client):
    alice, _ = sent
    page = client.get(f"/preferences/{tokens.make_token(mail_settings, 'preferences', alice.public_id)}")
    link = lxml.html.document_fromstring(page.data).xpath("//p[contains(@class, 'feed-link')]/a")[0]
    assert link.get("href") == reader_feed_url(mail_settings, alice.public_id)
    assert "Atom feed" in link.text_content()
    assert len(parsed(client.get(link.get("href").removeprefix(BASE))).entries) == 2
    session.get(Subscriber, alice.id).state = SubscriberState.unsubscribed
    session.commit()
    page = client.get(f"/preferences/{tokens.make_token(mail_settings, 'preferences', alice.public_id)}")
    assert "feed-link" not in page.get_data(as_text=True)


def test_a_digest_is_listed_with_the_numbers_lines_and_headings_its_email_printed(make_paper):
    """Both sections, "You may also like" papers in each, the taste's why lines: what the feed lists
    of a digest (``listed_papers``) is what the email's text printed, card by card."""
    trending = [make_paper(title="Video diffusion", id=101, upvotes=142), make_paper(title="Agents that read", id=102, upvotes=87)]
    arxiv = [
        make_paper(title=f"arXiv paper {n}", id=200 + n, day=None, announced_on=DAY, categories=cats, primary_category=cats[0])
        for n, cats in enumerate((["cs.CL", "cs.LG"], ["cs.LG"], ["stat.ML"]))
    ]
    liked = "like \u201cVideo agents\u201d, which you liked"
    picks = [
        Pick(trending[0], "video", why=liked),
        Pick(trending[1], None, why=liked, also=True),
        Pick(arxiv[0], "cat:cs.CL", section="arxiv"),
        Pick(arxiv[1], "cat:cs.LG", why=liked, section="arxiv"),
        Pick(arxiv[2], None, also=True, section="arxiv"),
    ]
    reader = Reader("ann@example.org", "daily", "UTC", 7, ("video", "cat:cs.CL", "cat:cs.LG"))
    settings = replace(RENDER_SETTINGS, arxiv_categories=("cs.CL", "cs.LG"))
    links = DigestLinks("https://u", "https://p", None)
    rendered, _ = DigestMailer(settings).render(picks, reader, (DAY, DAY), links)
    printed = numbered_lines(rendered.text)
    listed_ = listed_papers(picks, reader.filters, settings.arxiv_categories)
    assert [(item.number, item.line) for item in listed_] == printed
    assert printed == [
        (1, f"matched: video · {liked}"),
        (2, f"outside your filters · {liked}"),
        (3, "matched: cat:cs.CL · new in cs.CL"),
        (4, f"matched: cat:cs.LG · {liked}"),
        (5, "outside your filters"),
    ]
    assert [item.heading for item in listed_] == ["Trending on Hugging Face"] * 2 + ["New on arXiv in cs.CL, cs.LG"] * 3
    assert all(item.heading in rendered.text for item in listed_)


# ---------------------------------------------------------------- the public feed and the day pages


@pytest.fixture
def days(session, make_paper):
    """Three Daily Papers days (one between them has none), with ties broken by trending's later keys."""
    make_paper("2611.00001", "Low", upvotes=1, session=session)
    make_paper("2611.00002", "Top", upvotes=30, session=session)
    make_paper("2611.00004", "Tied, later id", upvotes=10, session=session)
    make_paper("2611.00003", "Tied, earlier id", upvotes=10, session=session)
    make_paper("2611.00005", "Withdrawn", upvotes=99, withdrawn=True, session=session)
    make_paper("2611.00010", "Older day's paper", day=DAY - 2 * D, upvotes=5, session=session)
    make_paper("2611.00020", "Next day's paper", day=DAY + D, upvotes=2, session=session)
    session.commit()
    return session


def trending_titles(session, day) -> list[str]:
    papers = session.scalars(select(Paper).where(Paper.daily_date == day, Paper.withdrawn.is_(False))).all()
    return [p.title for p in sorted(papers, key=rank_key)]


def test_the_day_page_lists_the_days_papers_in_trending_order(days, client):
    response = client.get(f"/archive/{DAY.isoformat()}")
    assert response.status_code == 200
    document = lxml.html.document_fromstring(response.data)
    titles = [a.text_content() for a in document.xpath("//a[@class='paper-title']")]
    assert titles == trending_titles(days, DAY) == ["Top", "Tied, earlier id", "Tied, later id", "Low"]
    assert document.xpath("//a[@rel='prev']/@href") == [f"/archive/{(DAY - 2 * D).isoformat()}"]  # the day before that exists
    assert document.xpath("//a[@rel='next']/@href") == [f"/archive/{(DAY + D).isoformat()}"]
    assert document.xpath("//link[@rel='alternate']/@href") == ["/feed.atom"]
    assert "Sunday, November 29, 2026" in text(response)
    assert response.headers["Cache-Control"] == "public, max-age=900"
    assert "Content-Security-Policy" in response.headers  # the site's own: no inline anything
    first = lxml.html.document_fromstring(client.get(f"/archive/{(DAY - 2 * D).isoformat()}").data)
    assert first.xpath("//a[@rel='prev']") == [] and first.xpath("//a[@rel='next']/@href") == [f"/archive/{DAY.isoformat()}"]


def test_the_day_page_shows_the_days_top_papers_only(session, make_paper, client):
    for n in range(DAY_PAPERS + 5):
        make_paper(f"2611.{n + 1:05d}", f"Paper {n}", upvotes=n, session=session)
    session.commit()
    document = lxml.html.document_fromstring(client.get(f"/archive/{DAY.isoformat()}").data)
    titles = [a.text_content() for a in document.xpath("//a[@class='paper-title']")]
    assert titles == [f"Paper {n}" for n in reversed(range(5, DAY_PAPERS + 5))]


def test_the_public_feed_has_each_days_top_papers_in_trending_order(days, mail_settings, client):
    feed = parsed(client.get("/feed.atom"))
    assert [e.link for e in feed.entries] == [f"{BASE}/archive/{d.isoformat()}" for d in (DAY + D, DAY, DAY - 2 * D)]
    assert [e.id for e in feed.entries] == [e.link for e in feed.entries]
    entry = feed.entries[1]
    assert entry.title == "Sunday, November 29, 2026: Top"
    assert [paper for paper, _ in listed(entry)] == ["2611.00002", "2611.00003", "2611.00004", "2611.00001"]
    assert feed.feed.links[0].href == f"{BASE}/feed.atom"


def test_the_public_feed_and_the_day_page_answer_304_to_a_repeat(days, make_paper, client):
    for path in ("/feed.atom", f"/archive/{DAY.isoformat()}"):
        first = client.get(path)
        etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
        assert client.get(path).headers["ETag"] == etag
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 304
        assert client.get(path, headers={"If-Modified-Since": modified}).status_code == 304
        assert client.head(path, headers={"If-None-Match": etag}).status_code == 304
    make_paper("2611.00030", "A new paper", day=DAY, upvotes=50, session=days)
    days.commit()
    for path in ("/feed.atom", f"/archive/{DAY.isoformat()}"):
        assert client.get(path, headers={"If-None-Match": etag}).status_code == 200


def test_archive_alone_goes_to_the_latest_day(days, client):
    response = client.get("/archive")
    assert response.status_code == 302 and response.headers["Location"] == f"/archive/{(DAY + D).isoformat()}"


@pytest.mark.parametrize(
    "day", ["2026-11-28", "2026-12-01", "2026-13-01", "2026-02-30", "0000-01-01", "20261129", "2026-11-29x", "yesterday"]
)
def test_a_day_without_papers_or_a_malformed_one_is_a_clear_404(days, client, day):
    response = client.get(f"/archive/{day}")
    assert response.status_code == 404
    assert "No papers for that day" in text(response) and "Traceback" not in text(response)


def test_with_no_papers_at_all_the_feed_is_empty_and_archive_is_404(settings, client):
    feed = parsed(client.get("/feed.atom"))
    assert feed.entries == []
    assert client.get("/archive").status_code == 404


def test_the_feeds_are_rate_limited_like_the_other_public_links(mail_settings):
    app = create_app(mail_settings.with_(extra={"rate_limit_feeds": "2 per minute", "rate_limit_links": "2 per minute"}))
    client = app.test_client()
    for path in ("/feed.atom", "/feed/garbage", "/archive/2026-11-29"):
        codes = [client.get(path).status_code for _ in range(3)]
        assert codes[-1] == 429, (path, codes)


def test_the_tastes_part_of_a_why_line_is_listed_as_the_email_printed_it(session, mail_settings, smtp_server, client, make_paper):
    """A reader who voted: the email's why line names the paper they liked ("like “…”, which you
    liked"); the ledger keeps it (delivery_items.why), so their feed and "view in browser" page say it too."""
    from digest.matching.profiles import record_vote
    from digest.papers.vectors import represent

    liked = [
        make_paper(
            "2610.00001",
            "Video diffusion with temporal attention",
            day=DAY - D,
            upvotes=5,
            session=session,
            abstract="A latent video diffusion model generates coherent clips by adding temporal attention layers to an image denoiser.",
        ),
        make_paper(
            "2610.00002",
            "Fast sampling for video diffusion models",
            day=DAY - D,
            upvotes=4,
            session=session,
            abstract="Distilling the denoiser of a video diffusion model into four sampling steps makes text-to-video generation real time.",
        ),
    ]
    make_paper(
        "2611.00001",
        "Consistent characters in generated videos",
        upvotes=3,
        session=session,
        abstract="Our video generator keeps a character's identity across frames by conditioning the diffusion denoiser on reference images.",
    )
    make_paper(
        "2611.00002",
        "Low-bit weight quantization of LLMs",
        upvotes=40,
        session=session,
        abstract="We quantize the weights of large language models to 4 bits with per-channel scales and outlier handling.",
    )
    represent(session)
    ann = add_subscriber(session, "ann@example.org")
    for paper in liked:
        record_vote(session, ann.id, paper.id, 1, AT - D)
    session.commit()

    assert send_due(mail_settings, AT, retry_delays=()).sent == 1
    (message,) = smtp_server.to("ann@example.org")
    text_part, _ = parts(message)
    tasted = set(re.findall(r"like \u201c[^\u201d]*\u201d, which you liked", text_part))
    assert tasted, text_part  # the email names a liked paper under at least one card
    feed = parsed(client.get(feed_path(mail_settings, ann)))
    whys = [why for _, why in listed(feed.entries[0]) if why]
    assert all(any(t in why for why in whys) for t in tasted)
    page = client.get(feed.entries[0].link.removeprefix(BASE))
    assert page.status_code == 200 and all(t in text(page) for t in tasted)
