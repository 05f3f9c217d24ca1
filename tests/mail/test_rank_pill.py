"""The rank pill and the "for you" mark (issue 20, item 2): "#1 today" / "#1 this week" sits on the
card of the window's most upvoted paper wherever the reader's order puts it, never on the first card
because it is first; a paper the reader's order moved up says "for you". Both are shapes of a card's
frame, rendered once per process, never per recipient.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date

import lxml.html
import pytest
from digest_helpers import RENDER_SETTINGS

from digest.mail.cards import TEMPLATE
from digest.mail.digest_email import DigestLinks, DigestMailer, Reader
from digest.mail.templates import EmailTemplates
from digest.matching.select import Pick, lifted_indexes
from digest.models import Paper

SETTINGS = RENDER_SETTINGS
LINKS = DigestLinks(
    unsubscribe="https://digest.example.org/unsubscribe/U",
    preferences="https://digest.example.org/preferences/P",
    archive=None,
    vote="https://digest.example.org/vote/V",
)
WEEKLY = Reader("ann@example.org", "weekly", "UTC", 7, ())
WEEK = (date(2026, 11, 23), date(2026, 11, 29))
DAILY = replace(WEEKLY, frequency="daily")
DAY = (date(2026, 11, 29), date(2026, 11, 29))
THUMB = "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{}.png"
PILL = re.compile(r"#1 (today|this week|in this digest)")


@pytest.fixture
def window(make_paper) -> list[Paper]:
    """A week's papers in trending order: 9, 5, 5 and 3 upvotes, each with a thumbnail."""
    return [
        make_paper(f"2611.{i:05d}", title, id=i, day=WEEK[1], upvotes=upvotes, thumbnail=THUMB.format(f"2611.{i:05d}"))
        for i, (title, upvotes) in enumerate(
            [("Most upvoted paper", 9), ("Five upvotes, first", 5), ("Five upvotes, second", 5), ("Three upvotes", 3)], start=1
        )
    ]


def picks_in_order(window: list[Paper], order: list[Paper], top: Paper | None = None) -> list[Pick]:
    """The picks the matcher makes for a reader whose taste put ``order`` (papers of ``window``, in
    trending order) in this order: ``top`` the window's most upvoted paper (its first, by default),
    ``lifted`` each one placed above a more upvoted paper (``lifted_indexes``)."""
    top = window[0] if top is None else top
    lifted = lifted_indexes([p.upvotes for p in order])
    return [
        Pick(p, None, why=f"like \u201c{p.title}\u201d, which you liked", top=p is top, lifted=k in lifted) for k, p in enumerate(order)
    ]


def card_of(html: str, title: str):
    """The card (the frame's cell) whose title link reads ``title``."""
    (card,) = lxml.html.document_fromstring(html).xpath(f'//td[contains(@class, "card")][.//h2/a[text()="{title}"]]')
    return card


def text_card(text: str, number: int) -> str:
    """Card ``number`` of a text digest: from the line before its number to the next card."""
    return re.split(r"\n\n(?=(?:\S.*\n)? ?\d+\. )", text)[number]


def test_the_pill_sits_on_the_most_upvoted_paper_where_the_readers_order_puts_it_not_on_the_first_card(window):
    most, five, five_too, three = window
    rendered, _ = DigestMailer(SETTINGS).render(picks_in_order(window, [three, five, most, five_too]), WEEKLY, WEEK, LINKS)
    html, text = rendered.html, rendered.text

    labels = lxml.html.document_fromstring(html).xpath('//*[@class="pick-label"]/text()')
    assert labels == ["#1 this week"] == card_of(html, most.title).xpath('.//*[@class="pick-label"]/text()')
    assert not card_of(html, three.title).xpath('.//*[@class="pick-label"]')  # first, with 3 upvotes: no "#1"
    assert text.count("#1 this week") == 1 and text_card(text, 3).startswith("#1 this week\n 3. Most upvoted paper\n")
    assert not PILL.search(text_card(text, 1))
    # the first card keeps the digest's large thumbnail: the layout's lead, not a rank
    assert card_of(html, three.title).xpath(".//img/@class") == ["hero"]
    assert card_of(html, most.title).xpath(".//img/@class") == ["thumb"]


@pytest.mark.parametrize(("reader", "window_dates", "label"), [(DAILY, DAY, "#1 today"), (WEEKLY, WEEK, "#1 this week")])
def test_the_pill_says_today_or_this_week_as_the_window_is(window, reader, window_dates, label):
    rendered, _ = DigestMailer(SETTINGS).render(picks_in_order(window, window[::-1]), reader, window_dates, LINKS)
    assert card_of(rendered.html, window[0].title).xpath('.//*[@class="pick-label"]/text()') == [label]
    assert f"{label}\n 4. Most upvoted paper" in rendered.text


def test_without_the_windows_most_upvoted_paper_no_card_has_a_pill(window):
    """A filter left the window's top paper out: the digest's first paper is not "#1 this week"."""
    rendered, _ = DigestMailer(SETTINGS).render(picks_in_order(window, window[1:]), WEEKLY, WEEK, LINKS)
    assert not PILL.search(rendered.html) and not PILL.search(rendered.text)
    assert 'class="pick-label"' not in rendered.html


def test_papers_the_readers_order_moved_up_say_for_you_and_the_others_do_not(window):
    most, five, five_too, three = window
    rendered, _ = DigestMailer(SETTINGS).render(picks_in_order(window, [three, five, most, five_too]), WEEKLY, WEEK, LINKS)
    html, text = rendered.html, rendered.text
    marked = {p.title for p in window if card_of(html, p.title).xpath('.//*[@class="for-you"]')}
    assert marked == {three.title, five.title}  # above the most upvoted one; five_too stays under it, in trending order
    assert [card_of(html, t).xpath('.//*[@class="for-you"]/text()') for t in sorted(marked)] == [["for you"], ["for you"]]
    assert text_card(text, 1).startswith("for you\n 1. Three upvotes\n") and text_card(text, 2).startswith("for you\n 2. Five")
    assert "for you\n" not in text_card(text, 3) + text_card(text, 4)


def test_a_card_can_carry_the_pill_and_the_mark_together():
    """Not a shape the matcher makes today (nothing trending puts ahead of the most upvoted paper),
    but the frame holds both: label first, then the mark."""
    paper = Paper(id=1, arxiv_id="2611.00001", title="Both", daily_date=DAY[1], upvotes=1, abstract="", authors=[])
    rendered, _ = DigestMailer(SETTINGS).render([Pick(paper, None, top=True, lifted=True)], DAILY, DAY, LINKS)
    pick = card_of(rendered.html, "Both").xpath('.//p[@class="pick"]')[0]
    assert [span.get("class") for span in pick] == ["pick-label", "for-you"]
    assert "#1 today · for you\n 1. Both" in rendered.text


def test_pill_and_mark_are_frames_made_once_per_shape_never_per_recipient(window, make_paper, monkeypatch):
    """Readers whose pill and marks sit on other cards, among other papers, reuse the frames of the
    first: the card templates render once per shape, not once per reader."""
    templates = EmailTemplates()
    renders: list[str] = []
    for kind, template in (
        ("html", templates.fragment(f"{TEMPLATE}/card.html", "<!--card-->", "<!--/card-->")),
        ("text", templates.text_env.get_template(f"{TEMPLATE}/card.txt")),
    ):
        original = template.render
        monkeypatch.setattr(template, "render", lambda *a, kind=kind, original=original, **k: renders.append(kind) or original(*a, **k))
    mailer = DigestMailer(SETTINGS, templates)
    most, five, five_too, three = window
    mailer.render(picks_in_order(window, [three, five, most, five_too]), WEEKLY, WEEK, LINKS)
    shapes = len(renders)
    assert shapes == 2 * 3  # HTML and text of three shapes: "for you", the pill, neither
    others = [make_paper(title=f"Another paper {i}", day=WEEK[1], upvotes=20 - i) for i in range(4)]
    for papers, order in ((window, [five, three, most, five_too]), (window, [most, five, five_too, three]), (others, others[3:0:-1])):
        mailer.render(picks_in_order(papers, order), replace(WEEKLY, email="bob@example.org"), WEEK, LINKS)
    assert len(renders) == shapes
