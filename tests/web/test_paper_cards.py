"""Paper cards on the pages (home's trending list, the preferences preview): what the digest's cards
show, images only from https (as the pages' Content-Security-Policy allows), laid out in Chromium."""

from __future__ import annotations

import re
from datetime import date

import lxml.html
import pytest
from support import free_port
from web_helpers import serving

from digest.config import Settings
from digest.db import session_scope
from digest.web.site import CSP

DAY = date(2026, 11, 25)
THUMB = "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/{}.png"


def add_papers(session, make_paper) -> None:
    make_paper(
        "2601.23001",
        "D$^2$Quant: Accurate Low-bit Post-Training Weight Quantization for LLMs",
        upvotes=296,
        day=DAY,
        abstract="Large language models deliver strong performance. But their memory costs are high.",
        ai_summary=r"A dual-scale quantizer keeps $\leq$4-bit weights accurate.",
        authors=["Xianglong Yan", "Tiao Tan", "Tianao Zhang", "Zhiteng Li", "Yulun Zhang"],
        org_name="sjtu",
        org_fullname="Shanghai Jiao Tong University",
        org_avatar="https://cdn-avatars.huggingface.co/v1/production/uploads/sjtu.png",
        thumbnail=THUMB.format("2601.23001"),
        github_repo="https://github.com/XIANGLONGYAN/D2Quant",
        github_stars=1234,
        project_page="https://example.org/d2quant",
        num_comments=3,
        session=session,
    )
    make_paper(
        "2611.00002",
        "Why Language Models Hallucinate",
        upvotes=26,
        day=DAY,
        abstract="Like students facing hard exam questions, large language models sometimes guess. We explain why.",
        thumbnail="http://insecure.example.org/thumb.png",  # not https: the pages' CSP would block it
        org_name="openai",
        org_fullname="OpenAI",
        org_avatar="javascript:alert(1)",
        session=session,
    )
    make_paper(
        "2611.00003",
        "Pneumonoultramicroscopicsilicovolcanoconiosis-aware-retrieval-augmented-generation-without-any-breaks-at-all",
        upvotes=9,
        day=DAY,
        abstract="A title with no place to break must not widen the page.",
        thumbnail=THUMB.format("2611.00003"),
        session=session,
    )
    make_paper("2611.00004", "A paper with nothing but a title", upvotes=2, day=DAY, session=session)


def items(page_html: str) -> dict[str, lxml.html.HtmlElement]:
    """The paper cards of a page, by arXiv id."""
    out = {}
    for li in lxml.html.document_fromstring(page_html).xpath('//li[@class="paper"]'):
        href = li.xpath('.//a[@class="paper-title"]/@href')[0]
        out[href.rsplit("/", 1)[1]] = li
    return out


def text_of(element) -> str:
    return " ".join(element.text_content().split())


def test_home_cards_show_thumbnail_org_avatar_summary_code_stars_and_latex_as_text(client, session, make_paper):
    add_papers(session, make_paper)
    session.commit()
    page = client.get("/").get_data(as_text=True)
    cards = items(page)
    assert list(cards) == ["2601.23001", "2611.00002", "2611.00003", "2611.00004"]

    d2 = cards["2601.23001"]
    assert text_of(d2.xpath('.//a[@class="paper-title"]')[0]) == "D²Quant: Accurate Low-bit Post-Training Weight Quantization for LLMs"
    (thumb,) = d2.xpath('.//img[@class="paper-thumb"]')
    assert thumb.get("src") == THUMB.format("2601.23001") and thumb.get("alt").startswith("D²Quant")
    assert (thumb.get("width"), thumb.get("height")) == ("120", "63")
    (avatar,) = d2.xpath('.//img[@class="paper-avatar"]')
    assert avatar.get("src").endswith("/sjtu.png") and avatar.get("alt") == ""
    assert text_of(d2.xpath('.//p[@class="paper-org"]')[0]) == "Shanghai Jiao Tong University"
    assert text_of(d2.xpath('.//*[@class="votes"]')[0]) == "▲ 296 upvotes"
    assert text_of(d2.xpath('.//p[@class="paper-summary"]')[0]) == "A dual-scale quantizer keeps ≤4-bit weights accurate."  # the AI summary
    assert text_of(d2.xpath('.//a[@class="paper-comments"]')[0]) == "3 comments"
    code = d2.xpath('.//a[starts-with(normalize-space(), "Code")]')[0]
    assert code.get("href") == "https://github.com/XIANGLONGYAN/D2Quant" and text_of(code) == "Code ★ 1.2k"
    assert d2.xpath('.//a[text()="Project page"]/@href') == ["https://example.org/d2quant"]
    assert "$" not in text_of(d2)

    hallucinate = cards["2611.00002"]
    assert hallucinate.xpath(".//img") == []  # an http thumbnail and a javascript: avatar are not shown
    assert text_of(hallucinate.xpath('.//p[@class="paper-summary"]')[0]).startswith("Like students facing hard exam questions")
    bare = cards["2611.00004"]
    assert bare.xpath(".//img") == [] and bare.xpath('.//p[@class="paper-org"]') == []
    assert "javascript:" not in page and "insecure.example.org" not in page


def test_the_pages_csp_allows_https_images_and_nothing_wider():
    img_src = next(part for part in CSP.split("; ") if part.startswith("img-src"))
    assert img_src.split() == ["img-src", "'self'", "data:", "https:"]
    assert "script-src 'self'" in CSP and "default-src 'self'" in CSP


# ---------------------------------------------------------------- in Chromium

SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="1200" height="630" viewBox="0 0 1200 630">'
    '<rect width="1200" height="630" fill="#c7d2fe"/><text x="80" y="200" font-size="60" font-family="sans-serif">Thumbnail</text></svg>'
)
OVERLAPS = """() => {
  const boxes = (el) => { const r = document.createRange(); r.selectNodeContents(el); return [...r.getClientRects()].filter(b => b.width && b.height); };
  const thumbs = [...document.querySelectorAll('.paper-thumb')].map(img => img.getBoundingClientRect());
  const hits = [];
  for (const el of document.querySelectorAll('.paper-stats, .paper-title, .paper-org, .paper-meta, .paper-summary, .paper-links')) {
    for (const line of boxes(el)) for (const t of thumbs)
      if (line.left < t.right - 1 && t.left < line.right - 1 && line.top < t.bottom - 1 && t.top < line.bottom - 1) hits.push(el.textContent.trim().slice(0, 40));
  }
  return hits;
}"""


def serve_images(on: bool):
    """A route handler for the hosted images: each answered with ``SVG``, or refused (images off)."""

    def handle(route) -> None:
        if on:
            route.fulfill(status=200, content_type="image/svg+xml", body=SVG)
        else:
            route.abort()

    return handle


@pytest.fixture
def site(sqlite_database, tmp_path, make_paper):
    """The app on a real server thread over a SQLite database with the papers above."""
    port = free_port()
    settings = Settings(
        database_url=sqlite_database("cards"),
        secret_key="cards-page-secret-key-0123456789",
        base_url=f"http://127.0.0.1:{port}",
        mail_from="Trending Papers <digest@example.org>",
        data_dir=tmp_path,
    )
    with session_scope(settings) as session:
        add_papers(session, make_paper)
    with serving(settings, port) as site:
        yield site


@pytest.mark.browser
def test_home_cards_layout_at_390_and_1280_light_and_dark_images_on_and_off(chromium, screenshot, site):
    for images in ("on", "off"):
        for scheme in ("light", "dark"):
            for width in (390, 1280):
                where = f"{width} px, {scheme}, images {images}"
                page = chromium.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
                console: list[str] = []
                page.on("console", lambda message, console=console: console.append(message.text))

                page.route(re.compile(r"^https://"), serve_images(images == "on"))  # the site itself is http://127.0.0.1
                assert page.goto(f"{site}/").status == 200
                page.wait_for_load_state("load")
                assert page.evaluate("document.documentElement.scrollWidth") <= width, where  # nothing clipped sideways
                assert page.locator(".paper-title").count() == 4 and page.locator(".paper-title").first.is_visible(), where
                assert page.evaluate(OVERLAPS) == [], where  # a thumbnail never covers text
                loaded = page.evaluate("[...document.querySelectorAll('.paper img')].map(i => i.complete && i.naturalWidth > 0)")
                assert len(loaded) == 3 and all(loaded) == (images == "on") and any(loaded) == (images == "on"), where
                assert not [m for m in console if "Content Security Policy" in m], (where, console)  # https images allowed
                screenshot(page, f"home-cards-{width}-{scheme}-images-{images}")
                page.close()
