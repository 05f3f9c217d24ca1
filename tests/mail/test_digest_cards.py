"""Paper cards in a digest as sent: read back from the SMTP server, parsed, and laid out in Chromium.

Ten papers of one Daily Papers day: the five real API items of ``tests/data`` (ingested as the papers
API gives them: thumbnails, organisations with avatars, AI summaries, code with stars, a project page,
comments) and five more with LaTeX titles, a long unbreakable word, an http thumbnail and none at all.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace

import lxml.html
import pytest
from digest_helpers import AT, DAY, add_subscriber, parts
from papers_api import DATA, GOOD_DAY
from sqlalchemy import select
from support import SmtpServer

from digest.config import Settings, SmtpSettings
from digest.db import session_scope
from digest.delivery.run import send_due
from digest.mail.digest_email import MAX_HTML_BYTES
from digest.mail.latex import readable
from digest.models import Paper, utcnow
from digest.papers.ingest import store
from digest.papers.items import parse_items

GMAIL_CLIPS_AT = 102 * 1024
THUMB = "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{}.png"
D2QUANT_ABSTRACT = (
    "Large language models (LLMs) deliver strong performance, but their high compute and memory costs make deployment "
    "difficult in resource-constrained scenarios. Weight-only post-training quantization (PTQ) is appealing, as it reduces "
    "memory usage and enables practical speedup without low-bit operators or specialized hardware. However, accuracy often "
    "degrades significantly in weight-only PTQ at sub-4-bit precision. To address these issues, we propose D^2Quant."
)


def add_ten_papers(session, make_paper) -> None:
    """The five real items re-dated to ``DAY`` (through items validation and ingest), and five more."""
    records = parse_items(json.loads((DATA / f"daily_papers_{GOOD_DAY}.json").read_text("utf-8"))).records
    store(session, [replace(r, daily_date=DAY) for r in records], utcnow())
    make_paper(
        "2601.23001",
        "D$^2$Quant: Accurate Low-bit Post-Training Weight Quantization for LLMs",
        upvotes=296,
        abstract=D2QUANT_ABSTRACT,
        thumbnail=THUMB.format("2601.23001"),
        github_repo="https://github.com/XIANGLONGYAN/D2Quant",
        github_stars=57,
        num_comments=2,
        session=session,
    )
    make_paper(
        "2410.24164",
        r"$\pi_0$: A Vision-Language-Action Flow Model for General Robot Control",
        upvotes=31,
        abstract=r"Robot learning holds tremendous promise. We propose a flow matching architecture on top of a pre-trained VLM with $\alpha = 0.5$.",
        ai_summary=r"A flow-matching policy, $\pi_0$, controls many robots from one pre-trained vision-language model.",
        org_name="physical-intelligence",
        org_fullname="Physical Intelligence",
        org_avatar="https://cdn-avatars.huggingface.co/v1/production/uploads/pi.png",
        thumbnail=THUMB.format("2410.24164"),
        project_page="https://www.physicalintelligence.company/blog/pi0",
        session=session,
    )
    make_paper(
        "2407.14709",
        r"$\infty$-Brush: Controllable Large Image Synthesis with Diffusion Models in Infinite Dimensions",
        upvotes=12,
        abstract="Synthesizing high-resolution images is hard. We work in function space.",
        thumbnail="http://cdn-thumbnails.example.org/2407.14709.png",  # http: the email shows it too
        session=session,
    )
    make_paper(
        "2611.77777",
        "Pneumonoultramicroscopicsilicovolcanoconiosis-aware-retrieval-augmented-generation-without-any-breaks-at-all",
        upvotes=6,
        abstract="A title with no place to break must not widen the email.",
        authors=["An Author With A Very Long Name Indeed", "Another"],
        thumbnail=THUMB.format("2611.77777"),
        session=session,
    )
    make_paper("2611.88888", "A paper without a thumbnail, organisation or code", upvotes=2, session=session)


def send_one(settings: Settings, session, make_paper, smtp_server):
    add_ten_papers(session, make_paper)
    add_subscriber(session, "alice@example.org")  # no filters: all trending papers, ten of them
    session.commit()
    assert send_due(settings, AT, retry_delays=()).sent == 1
    (message,) = smtp_server.messages
    return message


def cards(html: str) -> list:
    """The paper cards of a digest's HTML (the cells of its frame's column; the first is the heading)."""
    return lxml.html.document_fromstring(html).xpath('//td[contains(concat(" ", @class, " "), " card ")][.//h2]')


def text_of(element) -> str:
    return " ".join(element.text_content().split())


def excerpt_start(paper: Paper) -> str:
    source = readable(paper.ai_summary or paper.abstract)
    return " ".join(source.split())[:40]


def test_a_sent_digest_has_full_cards_and_the_same_papers_in_the_same_order_in_its_text(session, mail_settings, smtp_server, make_paper):
    message = send_one(mail_settings, session, make_paper, smtp_server)
    text, html = parts(message)
    papers = {p.arxiv_id: p for p in session.scalars(select(Paper))}
    trending = [p.arxiv_id for p in sorted(papers.values(), key=lambda p: -p.upvotes)]

    assert "<script" not in html.lower() and "javascript:" not in html.lower()
    shown = cards(html)
    assert len(shown) == 10
    html_order = [re.search(r"/papers/([^\"#]+)$", card.xpath(".//h2//a/@href")[0]).group(1) for card in shown]
    text_order = re.findall(r"^    Paper page: https://huggingface\.co/papers/(\S+)$", text, re.M)
    assert html_order == text_order == trending
    assert [int(n) for n in re.findall(r"^ ?(\d+)\. ", text, re.M)] == list(range(1, 11))

    for number, (arxiv_id, card) in enumerate(zip(html_order, shown), start=1):
        paper = papers[arxiv_id]
        assert text_of(card.xpath(".//h2")[0]) == f"{number}. {readable(paper.title)}"  # numbered, LaTeX as text
        assert text_of(card.xpath('.//*[@class="votes"]')[0]) == f"▲ {paper.upvotes}"
        thumbs = card.xpath('.//img[@class="thumb" or @class="hero"]')
        if paper.thumbnail:
            (img,) = thumbs
            assert img.get("src") == paper.thumbnail
            assert img.get("alt") == readable(paper.title)
            assert img.get("width").isdigit() and img.get("height").isdigit()
            assert img.get("class") == ("hero" if number == 1 else "thumb")  # the top pick's is large
        else:
            assert thumbs == []
        if paper.org_fullname:
            assert paper.org_fullname in text_of(card.xpath('.//*[@class="org"]')[0])
            avatars = card.xpath('.//img[@class="avatar"]')
            assert [a.get("src") for a in avatars] == ([paper.org_avatar] if paper.org_avatar else [])
            assert all(a.get("alt") == "" and a.get("width") == a.get("height") == "16" for a in avatars)  # beside the name
        assert text_of(card.xpath('.//*[@class="excerpt"]')[0]).startswith(excerpt_start(paper))
        code = card.xpath('.//a[starts-with(text(), "Code")]')
        if paper.github_repo:
            assert code[0].get("href") == paper.github_repo
            if paper.github_stars:
                assert text_of(code[0]) == f"Code ★ {paper.github_stars}"
        else:
            assert code == []
        if paper.project_page:
            assert card.xpath('.//a[text()="Project page"]/@href') == [paper.project_page]
        if paper.num_comments:
            assert f"{paper.num_comments} comment" in text_of(card.xpath('.//*[@class="stats"]')[0])
        assert "matched: all trending papers" in text_of(card)
        assert "Nov 29" not in text_of(card)  # the day is in the header, not on every card

    lead = shown[0]
    assert text_of(lead.xpath('.//*[@class="pick-label"]')[0]) == "#1 today"
    assert not any(card.xpath('.//*[@class="pick-label"]') for card in shown[1:])
    assert text.split("\n\n", 2)[1].startswith("#1 today\n 1. D²Quant: Accurate Low-bit")


@pytest.mark.parametrize(("eight_bit", "encoding"), [(True, "8bit"), (False, "base64")])
def test_a_digests_text_part_goes_8bit_to_a_server_that_takes_it_else_base64(session, settings, make_paper, eight_bit, encoding):
    server = SmtpServer(eight_bit=eight_bit)
    server.start()
    try:
        message = send_one(settings.with_(smtp=SmtpSettings(host=server.host, port=server.port, timeout=10)), session, make_paper, server)
    finally:
        server.stop()
    text_part = message.get_body(("plain",))
    assert text_part["Content-Transfer-Encoding"] == encoding
    assert message.get_body(("html",))["Content-Transfer-Encoding"] == "7bit"
    assert ("BODY=8BITMIME" in server.captured[0].mail_options) == eight_bit
    text, _ = parts(message)
    assert text.count("\u25b2 ") == 10 and "Paper page: https://huggingface.co/papers/" in text  # ▲ as sent either way


def test_the_inbox_preview_lists_the_top_two_titles(session, mail_settings, smtp_server, make_paper):
    message = send_one(mail_settings, session, make_paper, smtp_server)
    body = lxml.html.document_fromstring(parts(message)[1]).body
    preheader = body[0]  # the first thing in the body: what inboxes show after the subject
    assert "display:none" in preheader.get("style").replace(" ", "")
    preview = text_of(preheader)
    assert preview.startswith(
        "D²Quant: Accurate Low-bit Post-Training Weight Quantization for LLMs · π₀: A Vision-Language-Action Flow Model"
    )
    assert "and 8 more" in preview
    assert message["Subject"] == "10 trending papers: D²Quant: Accurate Low-bit Post-Training Weight Quantization for LLMs"


def test_a_ten_paper_digest_stays_under_gmails_clipping_size(session, mail_settings, smtp_server, make_paper):
    html = parts(send_one(mail_settings, session, make_paper, smtp_server))[1]
    assert len(cards(html)) == 10
    assert len(html.encode("utf-8")) <= MAX_HTML_BYTES < GMAIL_CLIPS_AT


# ---------------------------------------------------------------- in Chromium

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="630" viewBox="0 0 1200 630">'
    '<rect width="1200" height="630" fill="#c7d2fe"/><rect x="60" y="60" width="480" height="510" fill="#fff"/>'
    '<text x="600" y="200" font-size="60" font-family="sans-serif">Thumbnail</text></svg>'
)
TEXT_ELEMENTS = "h2, .stats, .org, .meta, .excerpt, .links, .matched, .pick-label"
# The rectangles of every line of text in the cards, and of every thumbnail: no line may sit under one.
OVERLAPS = """(selector) => {
  const boxes = (el) => { const r = document.createRange(); r.selectNodeContents(el); return [...r.getClientRects()].filter(b => b.width && b.height); };
  const images = [...document.querySelectorAll('.card img.thumb, .card img.hero')].map(img => img.getBoundingClientRect());
  const hits = [];
  for (const el of document.querySelectorAll(selector)) {
    for (const line of boxes(el)) {
      for (const img of images) {
        if (line.left < img.right - 1 && img.left < line.right - 1 && line.top < img.bottom - 1 && img.top < line.bottom - 1) hits.push(el.textContent.slice(0, 40));
      }
    }
  }
  return hits;
}"""


def serve_images(on: bool, requested: list[str]):
    """A route handler: every image answered with ``SVG`` (images on) or refused (images off, as a
    mail client that blocks remote content does); anything else refused and noted."""

    def handle(route) -> None:
        requested.append(route.request.url)
        if on and route.request.resource_type == "image":
            route.fulfill(status=200, content_type="image/svg+xml", body=SVG)
        else:
            route.abort()

    return handle


@pytest.fixture
def sqlite_mail_settings(sqlite_database, smtp_server, tmp_path) -> Settings:
    return Settings(
        database_url=sqlite_database("cards"),
        secret_key="cards-test-secret-key-0123456789",
        base_url="https://digest.example.org",
        mail_from="Trending Papers <digest@example.org>",
        smtp=SmtpSettings(host=smtp_server.host, port=smtp_server.port, timeout=10),
        data_dir=tmp_path,
    )


@pytest.mark.browser
def test_sent_digest_layout_at_390_and_1280_light_and_dark_images_on_and_off(
    chromium, screenshot, sqlite_mail_settings, smtp_server, make_paper
):
    with session_scope(sqlite_mail_settings) as session:
        html = parts(send_one(sqlite_mail_settings, session, make_paper, smtp_server))[1]
    for images in ("on", "off"):
        for scheme, background in (("light", "rgb(244, 244, 245)"), ("dark", "rgb(24, 24, 27)")):
            for width in (390, 1280):
                page = chromium.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
                requested: list[str] = []
                page.route("**/*", serve_images(images == "on", requested))
                page.set_content(html, wait_until="load")
                where = f"{width} px, {scheme}, images {images}"
                assert page.evaluate("document.documentElement.scrollWidth") <= width, where  # nothing clipped sideways
                assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background, where
                assert page.locator("h2").count() == 10 and all(page.locator("h2").nth(i).is_visible() for i in range(10)), where
                assert page.locator(".excerpt").count() == 10, where
                right_edges = page.evaluate(f"[...document.querySelectorAll('{TEXT_ELEMENTS}')].map(e => e.getBoundingClientRect().right)")
                assert max(right_edges) <= width, where
                column = page.locator(".wrap").bounding_box()  # the frame's column: 640 px at most, centred
                assert column["width"] == min(640, width) and abs(column["x"] - (width - column["x"] - column["width"])) <= 1, where
                assert page.evaluate(OVERLAPS, TEXT_ELEMENTS) == [], where  # no image ever covers text
                loaded = page.evaluate(
                    "[...document.querySelectorAll('img')].map(i => i.complete && i.naturalWidth > 0)"
                )  # 9 thumbnails, 3 avatars
                assert len(loaded) == 9 + 3 and all(loaded) == (images == "on") and any(loaded) == (images == "on"), where
                assert all(url.startswith(("https://", "http://")) for url in requested)  # images only: no script, no font
                screenshot(page, f"digest-cards-{width}-{scheme}-images-{images}")
                page.close()
