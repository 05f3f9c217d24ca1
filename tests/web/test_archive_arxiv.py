"""The "view in browser" page of a digest with both sections (issue 22, item 4): "Trending on Hugging
Face" and "New on arXiv in …", as the email showed them. The ledger does not store a paper's
section: the page derives it (a paper of a Daily Papers day of the window was trending, any other
one new on arXiv).
"""

from __future__ import annotations

import re
from datetime import timedelta

import lxml.html
import pytest
from digest_helpers import AT, DAY, add_subscriber, as_read, parts
from sqlalchemy import select

from digest.delivery.run import send_due
from digest.models import Paper
from digest.web import create_app

ARCHIVE_LINK = re.compile(r'href="https://digest\.example\.org(/digest/[^"]+)"[^>]*>View in browser</a>')
TRENDING = "Trending on Hugging Face"
NEW_ON_ARXIV = "New on arXiv in cs.CL"


def headings(html: str) -> list[str]:
    document = lxml.html.document_fromstring(html)
    return [h.text_content().strip() for h in document.xpath("//h1 | //h2[not(a)]")]


def titles(html: str) -> list[str]:
    return [a.text_content() for a in lxml.html.document_fromstring(html).xpath("//h2/a")]


def content(html: str) -> str:
    """Everything above the footer, the vote links' tokens masked (signed afresh on each render)."""
    return re.sub(r"/vote/[^\"]+", "/vote/…", html.split('<td class="footer"', 1)[0])


@pytest.fixture
def sent(session, mail_settings, smtp_server, make_paper):
    """One digest with both sections sent to alice; returns (settings, the email's HTML, the archive path)."""
    settings = mail_settings.with_(arxiv_categories=("cs.CL", "cs.LG"))
    make_paper("2611.00001", "Video diffusion at scale", upvotes=9, session=session)
    make_paper("2611.00002", "Unrelated trending paper", upvotes=7, session=session)
    make_paper(
        "2611.10001",
        "Parsing with diffusion",
        day=None,
        announced_on=DAY,
        categories=["cs.CL", "cs.LG"],
        primary_category="cs.CL",
        session=session,
    )
    make_paper("2611.10002", "Robot hands", day=None, announced_on=DAY, categories=["cs.RO"], primary_category="cs.RO", session=session)
    add_subscriber(session, "alice@example.org", ["video", "cat:cs.CL"])
    session.commit()
    assert send_due(settings, AT, retry_delays=()).sent == 1
    (message,) = smtp_server.messages
    html = parts(message)[1]
    return settings, html, ARCHIVE_LINK.search(html).group(1)


def test_the_archive_page_shows_both_sections_as_the_email_did(sent):
    settings, email_html, path = sent
    assert headings(email_html) == ["2 papers for you", TRENDING, NEW_ON_ARXIV]  # what was sent
    response = create_app(settings).test_client().get(path)
    assert response.status_code == 200
    page = as_read(response.get_data(as_text=True))
    assert headings(page) == ["2 papers for you", TRENDING, NEW_ON_ARXIV]
    assert titles(page) == ["Video diffusion at scale", "Parsing with diffusion"]
    assert content(page) == content(email_html)
    body = page.split("<h1", 1)[1]
    assert (
        body.index(TRENDING) < body.index(">Video diffusion at scale<") < body.index(NEW_ON_ARXIV) < body.index(">Parsing with diffusion<")
    )
    assert "matched: cat:cs.CL · new in cs.CL" in page and "matched: video" in page


def test_a_paper_that_trended_after_it_was_sent_stays_in_the_arxiv_section_of_the_archive(sent, session):
    settings, email_html, path = sent
    paper = session.scalars(select(Paper).where(Paper.arxiv_id == "2611.10001")).one()
    paper.daily_date, paper.upvotes = DAY + timedelta(days=2), 50  # it reached Daily Papers two days later
    session.commit()
    page = as_read(create_app(settings).test_client().get(path).get_data(as_text=True))
    assert headings(page) == ["2 papers for you", TRENDING, NEW_ON_ARXIV]
    (card,) = lxml.html.document_fromstring(page).xpath('//td[contains(@class, "card")][.//h2/a[text()="Parsing with diffusion"]]')
    assert "upvotes" not in card.text_content() and card.xpath('.//*[@class="category"]/text()') == ["cs.CL"]
    assert content(page) == content(email_html)


def test_a_trending_only_digest_of_a_reader_with_a_category_line_has_no_section_headings(session, mail_settings, smtp_server, make_paper):
    make_paper("2611.00001", "Video diffusion at scale", upvotes=9, session=session)
    add_subscriber(session, "bob@example.org", ["video", "cat:cs.CL"])
    session.commit()
    assert send_due(mail_settings, AT, retry_delays=()).sent == 1
    (message,) = smtp_server.messages
    email_html = parts(message)[1]
    page = as_read(create_app(mail_settings).test_client().get(ARCHIVE_LINK.search(email_html).group(1)).get_data(as_text=True))
    assert headings(page) == headings(email_html) == ["1 trending paper for you"]
    assert content(page) == content(email_html)
