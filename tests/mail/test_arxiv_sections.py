"""The digest with arXiv as a second source (issue 22, item 4): "Trending on Hugging Face" and "New
on arXiv in <the reader's categories>", each with its cards and its own "You may also like", in the
HTML and the text; a digest of trending papers only reads as before; 10 + 10 papers and the
"You may also like" ones stay under Gmail's clipping size. Rendered by the sender's own code
(``DigestMailer.render`` and ``.message``), read back as a client reads the message.
"""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import date, datetime

import lxml.html
import pytest
import test_caniemail
from digest_helpers import RENDER_SETTINGS, UTC, parts

from digest.mail.digest_email import DigestLinks, DigestMailer, Reader
from digest.matching.select import Pick
from digest.models import Paper

DAY = date(2026, 11, 29)
WINDOW = (DAY, DAY)
SETTINGS = replace(RENDER_SETTINGS, arxiv_categories=("cs.CL", "cs.LG", "cs.CV"))
LINKS = DigestLinks(
    unsubscribe="https://digest.example.org/unsubscribe/U",
    preferences="https://digest.example.org/preferences/P",
    archive="https://digest.example.org/digest/A",
    vote="https://digest.example.org/vote/V",
)
READER = Reader("ann@example.org", "daily", "UTC", 7, ("agents", "cat:cs.CL diffusion", "cat:cs.LG", "source:arxiv"))
TRENDING = "Trending on Hugging Face"
GMAIL_CLIPS_AT = 102 * 1024
doiuse_email = test_caniemail.doiuse_email  # the fixture of test_caniemail.py: the same check, with its allow-list


@pytest.fixture
def trending(make_paper) -> list[Paper]:
    return [
        make_paper(title="Video Diffusion Transformers at Scale", id=101, day=DAY, upvotes=142, num_comments=3),
        make_paper(title="Agents That Read Papers", id=102, day=DAY, upvotes=87),
    ]


def arxiv_paper(make_paper, id: int, title: str, categories: list[str], **fields) -> Paper:
    """A paper only arXiv announced (in ``DAY``'s listing): no Daily Papers day, no upvotes."""
    return make_paper(title=title, id=id, day=None, announced_on=DAY, categories=categories, primary_category=categories[0], **fields)


@pytest.fixture
def arxiv(make_paper) -> list[Paper]:
    return [
        arxiv_paper(make_paper, 201, "Parsing with diffusion language models", ["cs.CL", "stat.ML", "cs.LG", "cs.CV", "cs.AI"]),
        arxiv_paper(make_paper, 202, "A cross-listed learning theory paper", ["cs.LG", "cs.CL"]),
        arxiv_paper(make_paper, 203, "Kernels everywhere", ["stat.ML"]),
    ]


def two_sections(trending: list[Paper], arxiv: list[Paper]) -> list[Pick]:
    """As ``compose`` returns them: the trending picks (their "You may also like" last), then the arXiv ones."""
    return [
        Pick(trending[0], None, top=True),
        Pick(trending[1], "agents", why="like \u201cVideo agents\u201d, which you liked", also=True),
        Pick(arxiv[0], "cat:cs.CL diffusion", section="arxiv"),
        Pick(arxiv[1], "cat:cs.LG", why="like \u201cVideo agents\u201d, which you liked", section="arxiv"),
        Pick(arxiv[2], None, why="like \u201cKernel tricks\u201d, which you liked", also=True, section="arxiv"),
    ]


def render(picks: list[Pick], reader: Reader = READER, settings=SETTINGS):
    rendered, shown = DigestMailer(settings).render(picks, reader, WINDOW, LINKS)
    assert shown == picks
    return rendered


def sent(rendered, settings=SETTINGS) -> tuple[email.message.EmailMessage, str, str]:
    """The message as sent, parsed: (message, its text, its HTML as a client reads them)."""
    data = DigestMailer(settings).message(rendered, "ann@example.org", "Dlv-1", LINKS, datetime(2026, 11, 30, 7, tzinfo=UTC))
    message = email.message_from_bytes(data, policy=email.policy.default)
    text, html = parts(message)
    return message, text, html


def headings(html: str) -> list[str]:
    """The email's headings (h1, h2 without a link: not a paper's title), in order."""
    document = lxml.html.document_fromstring(html)
    return [h.text_content().strip() for h in document.xpath("//h1 | //h2[not(a)]")]


def card_titles(html: str) -> list[str]:
    return [a.text_content() for a in lxml.html.document_fromstring(html).xpath("//h2/a")]


def card_of(html: str, title: str):
    (card,) = lxml.html.document_fromstring(html).xpath(f'//td[contains(@class, "card")][.//h2/a[text()="{title}"]]')
    return card


def text_card(text: str, title: str) -> str:
    """The text card of ``title``: from its numbered line to the next blank line before a number or heading."""
    start = re.search(rf"^ ?\d+\. {re.escape(title)}$", text, re.M).start()
    rest = text[start:]
    end = re.search(r"\n\n(?=\S| ?\d+\. )", rest[1:])
    return rest[: end.start() + 1] if end else rest


# ---------------------------------------------------------------- two sections


def test_two_sections_with_their_headings_in_order_numbered_on(trending, arxiv):
    message, text, html = sent(render(two_sections(trending, arxiv)))
    assert headings(html) == [
        "3 papers for you",
        TRENDING,
        "You may also like",
        "New on arXiv in cs.CL, cs.LG",
        "You may also like",
    ]
    # each section's papers under its heading, its "You may also like" ones after them
    assert card_titles(html) == [
        "Video Diffusion Transformers at Scale",
        "Agents That Read Papers",
        "Parsing with diffusion language models",
        "A cross-listed learning theory paper",
        "Kernels everywhere",
    ]
    body = html.split("<h1", 1)[1]  # (after the inbox preview, which has the first titles too)
    order = [
        body.index(s)
        for s in (TRENDING, ">Video Diffusion", ">Agents That", "New on arXiv in", ">Parsing with", ">A cross-listed", ">Kernels")
    ]
    assert order == sorted(order)
    assert re.findall(r'<span class="num"[^>]*>(\d+)\.</span>', html) == ["1", "2", "3", "4", "5"]

    assert re.findall(r"^ ?(\d+)\. ", text, re.M) == ["1", "2", "3", "4", "5"]
    lines = text.splitlines()
    assert lines[:2] == ["3 papers for you", "Sunday, November 29, 2026"]
    for heading in (TRENDING, "New on arXiv in cs.CL, cs.LG"):
        at = lines.index(heading)
        assert lines[at + 1] == "=" * len(heading)  # underlined: a section, not a paper
    order = [text.index(s) for s in (TRENDING, " 1. Video", " 2. Agents", "New on arXiv in", " 3. Parsing", " 4. A cross", " 5. Kernels")]
    assert order == sorted(order)
    assert text.count("You may also like") == 2
    assert message["Subject"] == "1 trending paper, 2 new on arXiv: Video Diffusion Transformers at Scale"


def test_the_subject_and_the_inbox_preview_count_both_sections(trending, arxiv):
    picks = [Pick(trending[0], None, top=True), Pick(trending[1], "agents")] + [Pick(p, "source:arxiv", section="arxiv") for p in arxiv]
    rendered = render(picks)
    assert rendered.subject == "2 trending papers, 3 new on arXiv: Video Diffusion Transformers at Scale"
    preview = lxml.html.document_fromstring(rendered.html).xpath('//*[@class="preheader"]')[0].text_content()
    assert preview.startswith("Video Diffusion Transformers at Scale \u00b7 Agents That Read Papers \u00b7 and 3 more")


def test_an_arxiv_card_shows_its_categories_not_upvotes_and_votes_like_the_others(trending, arxiv):
    _, text, html = sent(render(two_sections(trending, arxiv)))
    card = card_of(html, "Parsing with diffusion language models")
    content = card.text_content()
    # its primary category, and the cross-lists among the operator's categories (two at most)
    assert card.xpath('.//*[@class="category"]/text()') == ["cs.CL"]
    assert "also in cs.LG, cs.CV" in content and "stat.ML" not in content and "cs.AI" not in content
    assert "upvotes" not in content and "\u25b2" not in content and not card.xpath('.//*[@class="pick-label"]')
    assert card.xpath(".//h2/a/@href") == ["https://arxiv.org/abs/2611.00201"]
    assert "About parsing with diffusion language models." in content  # the abstract, as on every card
    assert card.xpath('.//a[text()="More like this"]/@href') == ["https://digest.example.org/vote/V/201/more"]
    assert card.xpath('.//a[text()="Less like this"]/@href') == ["https://digest.example.org/vote/V/201/less"]
    # no taste's why: the line names the category that brought it, in the style of every why line
    assert card.xpath('.//*[@class="matched"]')[0].text_content() == "matched: cat:cs.CL diffusion \u00b7 new in cs.CL"
    # a taste's why, as on a trending card
    other = card_of(html, "A cross-listed learning theory paper")
    assert (
        other.xpath('.//*[@class="matched"]')[0].text_content()
        == "matched: cat:cs.LG \u00b7 like \u201cVideo agents\u201d, which you liked"
    )
    assert other.xpath('.//*[@class="category"]/text()') == ["cs.LG"] and "also in cs.CL" in other.text_content()
    also = card_of(html, "Kernels everywhere")
    assert (
        also.xpath('.//*[@class="matched"]')[0].text_content()
        == "outside your filters \u00b7 like \u201cKernel tricks\u201d, which you liked"
    )
    assert also.xpath('.//a[text()="More like this"]/@href') == ["https://digest.example.org/vote/V/203/more"]

    card = text_card(text, "Parsing with diffusion language models")
    assert card.splitlines()[1] == "    cs.CL \u00b7 also in cs.LG, cs.CV"
    assert "upvotes" not in card and "\u25b2" not in card
    assert "    matched: cat:cs.CL diffusion \u00b7 new in cs.CL\n" in card
    assert "    More like this: https://digest.example.org/vote/V/201/more\n" in card
    assert "    arXiv: https://arxiv.org/abs/2611.00201\n" in card
    # the trending cards keep their upvotes
    assert "\u25b2 142 upvotes \u00b7 3 comments" in text_card(text, "Video Diffusion Transformers at Scale")
    assert card_of(html, "Video Diffusion Transformers at Scale").xpath(".//h2/a/@href") == ["https://huggingface.co/papers/2611.00101"]


def test_a_paper_shown_in_the_arxiv_section_has_no_upvotes_there_even_if_it_trends_later(trending, arxiv):
    """The section, not the paper's data, makes an arXiv card: one that trended on a later day (the
    archive re-renders such a paper) still reads as the new paper it was."""
    arxiv[0].daily_date, arxiv[0].upvotes = date(2026, 12, 2), 50
    html = render(two_sections(trending, arxiv)).html
    card = card_of(html, "Parsing with diffusion language models")
    assert "upvotes" not in card.text_content() and card.xpath('.//*[@class="category"]/text()') == ["cs.CL"]
    assert card.xpath(".//h2/a/@href") == ["https://arxiv.org/abs/2611.00201"]


@pytest.mark.parametrize(
    "lines, matched, configured, heading, why",
    [
        # spelled as the operator configured it, whatever the case the reader wrote
        (("cat:CS.cl",), "cat:CS.cl", ("cs.CL",), "New on arXiv in cs.CL", "new in cs.CL"),
        # a category the operator did not configure: as arXiv spells the paper's
        (("cat:cs.cl",), "cat:cs.cl", (), "New on arXiv in cs.CL", "new in cs.CL"),
        # an archive: its line reads cs.*; the why line names the paper's category in it (its primary first)
        (("cat:cs.*",), "cat:cs.*", ("cs.CL",), "New on arXiv in cs.*", "new in cs.CL"),
        # a cross-list brought it: the heading and the why line name it, not the primary
        (("cat:cs.CV",), "cat:cs.CV", ("cs.CL", "cs.CV"), "New on arXiv in cs.CV", "new in cs.CV"),
        # an excluded category is not one the reader asked for
        (("cat:cs.* -cat:cs.LG",), "cat:cs.* -cat:cs.LG", (), "New on arXiv in cs.*", "new in cs.CL"),
        # a line naming no category: the papers' primary categories
        (("source:arxiv diffusion",), "source:arxiv diffusion", (), "New on arXiv in cs.CL", "new in cs.CL"),
        # an OR line: only the terms the paper is in
        (("cat:cs.CL OR cat:math.AG",), "cat:cs.CL OR cat:math.AG", (), "New on arXiv in cs.CL", "new in cs.CL"),
    ],
)
def test_the_arxiv_heading_names_the_readers_categories_that_brought_papers(make_paper, lines, matched, configured, heading, why):
    paper = arxiv_paper(make_paper, 301, "Diffusion parsers", ["cs.CL", "cs.CV"])
    reader = replace(READER, filters=(*lines, "cat:hep-th"))  # a line that brought nothing is not named
    html = render([Pick(paper, matched, section="arxiv")], reader, replace(SETTINGS, arxiv_categories=configured)).html
    assert headings(html)[1:] == [heading]
    assert card_of(html, "Diffusion parsers").xpath('.//*[@class="matched"]')[0].text_content() == f"matched: {matched} \u00b7 {why}"


def test_with_only_source_lines_the_heading_names_the_papers_primary_categories_most_frequent_first(make_paper):
    papers = [
        arxiv_paper(make_paper, 401, "One", ["stat.ML", "cs.LG"]),
        arxiv_paper(make_paper, 402, "Two", ["cs.LG"]),
        arxiv_paper(make_paper, 403, "Three", ["cs.LG", "stat.ML"]),
        arxiv_paper(make_paper, 404, "Four", ["math.OC"]),
    ]
    reader = replace(READER, filters=("source:arxiv",))
    html = render([Pick(p, "source:arxiv", section="arxiv") for p in papers], reader).html
    assert headings(html)[1:] == ["New on arXiv in cs.LG, stat.ML, math.OC"]
    assert "matched: source:arxiv \u00b7 new in stat.ML" in card_of(html, "One").text_content()


def test_a_heading_with_many_categories_names_four_and_counts_the_rest(make_paper):
    categories = ["cs.CL", "cs.LG", "cs.CV", "cs.RO", "math.OC", "stat.ML"]
    papers = [arxiv_paper(make_paper, 600 + i, f"Paper {i}", [c]) for i, c in enumerate(categories)]
    html = render([Pick(p, "source:arxiv", section="arxiv") for p in papers], replace(READER, filters=("source:arxiv",))).html
    assert headings(html)[1:] == ["New on arXiv in cs.CL, cs.LG, cs.CV, cs.RO and 2 more"]


def test_lines_in_the_readers_order_named_once_an_archive_standing_for_its_categories(make_paper):
    papers = [
        arxiv_paper(make_paper, 501, "Vision", ["cs.CV"]),
        arxiv_paper(make_paper, 502, "Language", ["cs.CL"]),
        arxiv_paper(make_paper, 503, "Kernels", ["stat.ML"]),
        arxiv_paper(make_paper, 504, "Robots", ["cs.RO"]),
    ]
    reader = replace(READER, filters=("cat:cs.CL", "cat:stat.*", "source:arxiv", "cat:cs.CV"))
    picks = [
        Pick(papers[0], "cat:cs.CV", section="arxiv"),
        Pick(papers[1], "cat:cs.CL", section="arxiv"),
        Pick(papers[2], "cat:stat.*", section="arxiv"),
        Pick(papers[3], "source:arxiv", section="arxiv"),
    ]
    assert headings(render(picks, reader).html)[1:] == ["New on arXiv in cs.CL, stat.*, cs.CV, cs.RO"]


# ---------------------------------------------------------------- one section


def test_arxiv_papers_only_show_the_arxiv_section_alone(arxiv):
    _, text, html = sent(render([Pick(p, "cat:cs.LG", section="arxiv") for p in arxiv[:2]]))
    assert headings(html) == ["2 papers for you", "New on arXiv in cs.LG"]
    assert TRENDING not in html and TRENDING not in text and "Most upvoted" not in html + text
    assert "New on arXiv in cs.LG\n=====================\n" in text
    rendered = render([Pick(p, "cat:cs.LG", section="arxiv") for p in arxiv[:2]])
    assert rendered.subject == "2 new papers on arXiv: Parsing with diffusion language models"
    one = render([Pick(arxiv[1], "cat:cs.LG", section="arxiv")])
    assert one.subject == "1 new paper on arXiv: A cross-listed learning theory paper"


def test_trending_papers_only_read_as_before_for_a_reader_with_category_lines_too(trending, arxiv):
    """No section heading; what the digest showed before arXiv was a source (tests/snapshots holds it)."""
    picks = [Pick(trending[0], "cat:cs.CL diffusion", top=True), Pick(trending[1], "agents")]
    rendered = render(picks)
    _, text, html = sent(rendered)
    assert headings(html) == ["2 trending papers for you"]
    assert "New on arXiv" not in html + text and TRENDING not in html + text
    assert "Most upvoted on Hugging Face Daily Papers &middot;" in rendered.html.replace("&#183;", "&middot;")
    assert rendered.subject == "2 trending papers: Video Diffusion Transformers at Scale"
    assert "category" not in rendered.html and "new in" not in rendered.html
    # the operator's arXiv categories change nothing in it
    assert render(picks, settings=RENDER_SETTINGS) == rendered


# ---------------------------------------------------------------- size


def full_digest(make_paper, also: tuple[int, int]) -> tuple[list[Pick], Reader]:
    """10 trending + 10 arXiv papers, and ``also`` "You may also like" ones in each section, every
    one as long as a card gets: long titles and abstracts, three authors and more, an organisation,
    code with stars, a project page, a thumbnail (the trending ones); a reader with 20 long lines."""
    title = "Scaling {0} {1}: a very long title about diffusion language models, reasoning and retrieval at once " * 3
    abstract = "We study a long problem in great depth, with many words and more sentences than any card shows. " * 25
    long = dict(
        abstract=abstract,
        authors=[f"Author Number {i} With A Long Name" for i in range(12)],
        github_repo="https://github.com/some-organisation-with-a-long-name/a-repository-name-that-is-long",
        github_stars=12345,
        project_page="https://some-organisation-with-a-long-name.github.io/a-project-page-that-is-long/",
    )
    picks = []
    for i in range(10 + also[0]):
        paper = make_paper(
            title=title.format("trending", i),
            id=1000 + i,
            day=DAY,
            upvotes=900 - i,
            num_comments=123,
            org_fullname="A Research Organisation With A Rather Long Name",
            org_avatar="https://cdn-avatars.huggingface.co/v1/production/uploads/organisation.png",
            thumbnail=f"https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2611.{1000 + i:05d}.png",
            ai_summary=abstract,
            **long,
        )
        picks.append(
            Pick(
                paper,
                None if i >= 10 else "diffusion",
                why="like \u201c" + "A liked paper " * 8 + "\u201d, which you liked",
                top=i == 0,
                also=i >= 10,
            )
        )
    for i in range(10 + also[1]):
        paper = arxiv_paper(make_paper, 2000 + i, title.format("arXiv", i), ["cs.CL", "cs.LG", "cs.CV", "stat.ML"], **long)
        picks.append(
            Pick(
                paper,
                None if i >= 10 else "cat:cs.CL diffusion",
                why="like \u201cX\u201d, which you liked" if i >= 10 else None,
                also=i >= 10,
                section="arxiv",
            )
        )
    filters = tuple(f"cat:cs.CL diffusion language model number {i} " + "reasoning " * 12 for i in range(20))
    return picks, replace(READER, filters=filters)


@pytest.mark.parametrize("also", [(3, 0), (0, 3), (3, 3)])
def test_ten_trending_and_ten_arxiv_papers_with_you_may_also_like_stay_under_gmails_clipping_each_paper_once(make_paper, also):
    picks, reader = full_digest(make_paper, also)
    rendered, shown = DigestMailer(SETTINGS).render(picks, reader, WINDOW, LINKS)
    assert shown == picks  # none dropped to fit
    message, text, html = sent(rendered)
    part = message.get_body(("html",))
    size = len(part.get_content().encode("utf-8"))
    assert size < GMAIL_CLIPS_AT, size
    titles = card_titles(html)
    assert len(titles) == len(picks) == 20 + sum(also)
    for pick in picks:
        arxiv_id = pick.paper.arxiv_id
        assert sum(t.startswith(pick.paper.title.split(":")[0] + ":") for t in titles) == 1  # (titles are cut at 300 characters)
        assert html.count(f'href="https://arxiv.org/pdf/{arxiv_id}"') == 1
        assert html.count(f'/vote/V/{pick.paper.id}/more"') == 1
        assert text.count(f"https://arxiv.org/pdf/{arxiv_id}\n") == 1
        assert text.count(f"/vote/V/{pick.paper.id}/more\n") == 1
    print(f"HTML part of the 10 + 10 + {also} digest: {size} bytes")


def test_ten_trending_and_ten_arxiv_headings_with_you_may_also_like(make_paper):
    picks, reader = full_digest(make_paper, (3, 0))
    html = render(picks, reader).html
    assert headings(html) == ["20 papers for you", TRENDING, "You may also like", "New on arXiv in cs.CL"]


# ---------------------------------------------------------------- email clients, a browser


def test_the_two_section_digest_uses_only_what_the_clients_support_or_degrade_from(make_paper, tmp_path, doiuse_email):
    """The arXiv cards and the sections' headings against caniemail.com's data, as
    ``test_caniemail.py`` checks the trending digest: nothing beyond its explained allow-list."""
    picks, reader = full_digest(make_paper, (3, 3))
    found = doiuse_email({"two-sections": render(picks, reader).html}, tmp_path)
    assert sorted(pair for pair in found["two-sections"] if not test_caniemail.allowed(*pair)) == []


@pytest.mark.browser
def test_two_sections_read_well_in_chromium_light_dark_and_phone(chromium, screenshot, trending, arxiv):
    html = render(two_sections(trending, arxiv)).html
    for scheme in ("light", "dark"):
        for width in (375, 800):
            page = chromium.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
            page.set_content(html, wait_until="load")
            assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
            assert page.locator("h2 a").all_inner_texts()[2] == "Parsing with diffusion language models"
            category = page.locator(".category").first
            assert category.inner_text() == "cs.CL" and category.is_visible()
            # the category reads on its card: its colour is the card's text colour, not the card's background
            colours = category.evaluate("e => [getComputedStyle(e).color, getComputedStyle(e.closest('td')).backgroundColor]")
            assert colours[0] != colours[1]
            screenshot(page, f"digest-two-sections-{scheme}-{width}")
            page.close()
