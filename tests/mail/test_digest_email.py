"""The digest email: snapshots of HTML and text, the MIME message, untrusted paper data, size, browser.

Snapshots live in ``tests/snapshots/``; after an intended change of the templates, regenerate them
with ``DIGEST_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest tests/mail/test_digest_email.py`` and review
the diff.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import premailer
import pytest
from digest_helpers import UTC, as_read
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from digest.config import Settings
from digest.db import session_factory, session_scope
from digest.mail.cards import PaperBlocks, safe_url
from digest.mail.digest_email import MAX_HTML_BYTES, DigestLinks, DigestMailer, Reader
from digest.mail.mime import MessageSpec, _lines_fit, build_message
from digest.mail.templates import TEMPLATES_DIR, EmailTemplates
from digest.matching.select import Pick
from digest.models import Paper

SNAPSHOTS = Path(__file__).resolve().parents[1] / "snapshots"
SETTINGS = Settings(
    database_url="sqlite://",
    secret_key="test-secret-key-0123456789",
    base_url="https://digest.example.org",
    mail_from="Trending Papers <digest@example.org>",
)
LINKS = DigestLinks(
    unsubscribe="https://digest.example.org/unsubscribe/UNSUBSCRIBE-TOKEN",
    preferences="https://digest.example.org/preferences/PREFERENCES-TOKEN",
    archive="https://digest.example.org/digest/ARCHIVE-TOKEN",
)
READER = Reader("alice@example.org", "daily", "Europe/Berlin", 7, ('"video diffusion"', "agents -robot"))
WINDOW = (date(2026, 11, 29), date(2026, 11, 29))


@pytest.fixture
def papers(make_paper) -> list[Paper]:
    """Three papers of WINDOW's day: everything filled in, the bare minimum, and non-ASCII text and LaTeX."""
    day = WINDOW[0]
    return [
        make_paper(
            "2611.01234",
            "Video Diffusion Transformers at Scale",
            id=1,
            day=day,
            upvotes=142,
            abstract="We train video diffusion transformers on a very large corpus. " * 4,
            ai_summary="A recipe for training video diffusion transformers that scale to minute-long clips.",
            authors=["Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov"],
            org_name="acme",
            org_fullname="Acme AI Research",
            org_avatar="https://cdn-avatars.huggingface.co/v1/production/uploads/acme.png",
            github_repo="https://github.com/acme/vdt",
            github_stars=1234,
            project_page="https://acme.example/vdt",
            thumbnail="https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2611.01234.png",
            num_comments=12,
        ),
        make_paper(
            "2611.04321",
            "Agents That Read Papers",
            id=2,
            day=day,
            upvotes=87,
            abstract="Language agents that read, summarise and cite the papers they find, evaluated on a new "
            "benchmark of literature review questions across seven fields of science and engineering.",
            authors=["Katherine Johnson", "Claude Shannon"],
        ),
        make_paper(
            "2611.00042",
            "Über-efficient LLMs: sparse attention — 10× faster",
            id=3,
            day=day,
            upvotes=40,
            abstract=r"Sparse attention for long contexts at $\mathcal{O}(n)$ cost, $10^{3}\times$ less memory.",
            authors=["Jürgen Müller"],
            org_name="ETH Zürich",
            github_repo="https://github.com/eth/ueber",
            thumbnail="https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/2611.00042.png",
            num_comments=1,
        ),
    ]


def trending_picks(papers: list[Paper], matched: str | None = None) -> list[Pick]:
    """Picks in trending order, as the matcher makes them without a profile: the most upvoted is ``top``."""
    most = max(papers, key=lambda p: p.upvotes)
    return [Pick(p, matched, top=p is most) for p in papers]


def render(papers: list[Paper], matched: str | None = '"video diffusion"', reader: Reader = READER):
    rendered, shown = DigestMailer(SETTINGS).render(trending_picks(papers, matched), reader, WINDOW, LINKS)
    return rendered, shown


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def assert_snapshot(name: str, actual: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("DIGEST_UPDATE_SNAPSHOTS") == "1":
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"no snapshot {path}; create it with DIGEST_UPDATE_SNAPSHOTS=1"
    expected = path.read_text(encoding="utf-8")
    assert actual == expected, f"{name} changed; if intended, regenerate with DIGEST_UPDATE_SNAPSHOTS=1 and review"


# ---------------------------------------------------------------- snapshots


def test_digest_html_matches_snapshot(papers):
    rendered, _ = render(papers)
    assert_snapshot("digest.html", rendered.html)


def test_digest_text_matches_snapshot(papers):
    rendered, _ = render(papers)
    assert_snapshot("digest.txt", rendered.text)


def test_digest_with_vote_links_why_and_you_may_also_like_snapshot(papers):
    """Each card's frame (number, why, "more / less like this", "#1 today", "for you") is spliced, not
    rendered, per reader; here the reader's order put the second most upvoted paper first."""
    links = replace(LINKS, vote="https://digest.example.org/vote/VOTE-TOKEN")
    picks = [
        Pick(papers[1], "agents -robot", why="like \u201cVideo agents\u201d, which you liked", lifted=True),
        Pick(papers[0], '"video diffusion"', top=True),
        Pick(papers[2], None, why='like <b>"2611.0&"</b>, one of your seed papers', also=True),
    ]
    rendered, _ = DigestMailer(SETTINGS).render(picks, READER, WINDOW, links)
    assert rendered.html.count("https://digest.example.org/vote/VOTE-TOKEN/") == 6
    assert_snapshot("digest_votes.html", rendered.html)
    assert_snapshot("digest_votes.txt", rendered.text)


def test_digest_without_filters_snapshot(papers):
    rendered, _ = render(papers[:1], None, Reader("bob@example.org", "weekly", "UTC", 9, ()))
    assert_snapshot("digest_all_papers.txt", rendered.text)


# ---------------------------------------------------------------- content


def test_subject_has_the_count_and_the_top_title(papers):
    rendered, _ = render(papers)
    assert rendered.subject == "3 trending papers: Video Diffusion Transformers at Scale"
    one, _ = render(papers[1:2])
    assert one.subject == "1 trending paper: Agents That Read Papers"


def test_each_paper_shows_everything_the_reader_needs(papers):
    rendered, _ = render(papers)
    html, text = as_read(rendered.html), rendered.text
    assert rendered.html.isascii()  # other characters as references: the HTML part goes 7bit
    assert 'href="https://huggingface.co/papers/2611.01234"' in html
    assert "Ada Lovelace, Alan Turing, Grace Hopper et al." in html and "Edsger" not in html
    assert "Katherine Johnson, Claude Shannon" in html and "Claude Shannon et al." not in html
    assert "Acme AI Research" in html and 'src="https://cdn-avatars.huggingface.co/v1/production/uploads/acme.png"' in html
    assert "142</span> upvotes" in html and "▲ 142 upvotes · 12 comments · Acme AI Research" in text
    assert "1\N{NO-BREAK SPACE}comment<" in html and "▲ 40 upvotes · 1 comment ·" in text
    assert "Nov 29" not in html.split("</h1>", 1)[1] and "Nov 29" not in text.split("\n", 2)[2]  # the window is in the header only
    assert "minute-long clips" in html and "very large corpus" not in html  # the AI summary wins
    assert "Sparse attention for long contexts at 𝒪(n) cost, 10³× less memory." in html + text  # LaTeX as text
    assert ">Code ★\N{NO-BREAK SPACE}1.2k</a>" in html and "Code (★ 1.2k): https://github.com/acme/vdt" in text
    for url in (
        "https://arxiv.org/abs/2611.01234",
        "https://arxiv.org/pdf/2611.01234",
        "https://github.com/acme/vdt",
        "https://acme.example/vdt",
        "https://huggingface.co/papers/2611.01234#community",
    ):
        assert f'href="{url}"' in html
    for url in (
        "https://arxiv.org/abs/2611.01234",
        "https://arxiv.org/pdf/2611.01234",
        "https://github.com/acme/vdt",
        "https://acme.example/vdt",
    ):
        assert url in text
    assert "matched: &#34;video diffusion&#34;" in html and 'matched: "video diffusion"' in text


def test_footer_says_why_and_links_preferences_unsubscribe_and_archive(papers):
    rendered, _ = render(papers)
    for html_or_text in (rendered.html, rendered.text):
        assert "alice@example.org" in html_or_text
        assert "every day at 07:00 (Europe/Berlin)" in html_or_text
        for url in (LINKS.preferences, LINKS.unsubscribe, LINKS.archive):
            assert url in html_or_text
    assert ">View in browser</a>" in rendered.html


def test_papers_without_code_org_or_authors_leave_no_empty_lines(make_paper):
    bare = make_paper("2611.09999", "Bare", id=9, day=WINDOW[0], upvotes=1, abstract="", authors=[])
    rendered, _ = render([bare])
    assert "Code" not in rendered.html and "et al." not in rendered.html
    assert "\n\n\n" not in rendered.text


def test_paper_data_cannot_inject_markup_or_links(make_paper):
    evil = make_paper(
        "2611.00666",
        '<script>alert("x")</script><img src=x onerror=alert(1)>',
        id=7,
        day=WINDOW[0],
        upvotes=3,
        abstract="</p><a href='javascript:alert(1)'>click</a>",
        authors=["<b>Mallory</b>"],
        org_fullname='"><iframe src=//evil.example>',
        org_avatar="data:image/svg+xml,<svg onload=alert(1)>",
        github_repo="javascript:alert(document.cookie)",
        project_page="javascript:alert(2)",
        thumbnail='javascript:alert(3)" onerror="alert(4)',
    )
    rendered, _ = render([evil], matched="<svg onload=alert(1)>")
    html = rendered.html
    for raw in ("<script>alert", "<img src=x", "<b>Mallory", "<iframe", "<svg onload", "<a href='javascript"):
        assert raw not in html
    assert "javascript:" not in html.replace("&#39;javascript:alert(1)&#39;", "")  # only as escaped text
    assert "&lt;script&gt;" in html
    assert not re.search(r"<img\b", html) and 'src="' not in html  # no image but http(s) ones
    assert "Code" not in rendered.text and "Project page" not in rendered.text


@pytest.mark.parametrize(
    "url, expected",
    [
        ("https://github.com/a/b", "https://github.com/a/b"),
        ("http://example.org/x?y=1", "http://example.org/x?y=1"),
        ("javascript:alert(1)", None),
        ("JaVaScRiPt:alert(1)", None),
        ("data:text/html,<script>", None),
        ("//evil.example/x", None),
        ("https://a.example/x y", None),
        ("https://a.example/\r\nx", None),
        ("", None),
        (None, None),
    ],
)
def test_safe_url_only_links_http_and_https(url, expected):
    assert safe_url(url) == expected


def test_html_stays_under_100_kb_dropping_the_last_papers_if_needed(make_paper):
    huge = [
        make_paper(
            f"2611.{i:05d}",
            "A very long title about everything " * 20,
            id=i,
            day=WINDOW[0],
            upvotes=1000 - i,
            abstract="word " * 2000,
            authors=["Someone With A Long Name"] * 10,
            org_fullname="An Organisation With A Long Name " * 10,
            github_repo="https://github.com/" + "x" * 200,
        )
        for i in range(50)
    ]
    reader = Reader("alice@example.org", "daily", "UTC", 7, tuple(f"filter number {i} " * 10 for i in range(20)))
    rendered, shown = DigestMailer(SETTINGS).render([Pick(p, reader.filters[0]) for p in huge], reader, WINDOW, LINKS)
    assert len(rendered.html.encode()) <= MAX_HTML_BYTES
    assert 10 <= len(shown) < 50
    assert shown == [Pick(p, reader.filters[0]) for p in huge[: len(shown)]]
    assert rendered.subject.startswith(f"{len(shown)} trending papers")


def test_css_is_inlined_once_per_template_not_per_recipient(monkeypatch, papers):
    calls = []
    original = premailer.Premailer.transform
    monkeypatch.setattr(premailer.Premailer, "transform", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    templates = EmailTemplates()
    mailer = DigestMailer(SETTINGS, templates)
    for name in ("a", "b", "c"):
        mailer.render([Pick(p, None) for p in papers], replace(READER, email=f"{name}@x.org"), WINDOW, LINKS)
    DigestMailer(SETTINGS, templates).render([Pick(p, None) for p in papers], READER, WINDOW, LINKS)
    assert len(calls) == 3  # the body template, the paper block and the card around it, once each


def test_paper_blocks_are_rendered_once_per_batch(papers):
    blocks = PaperBlocks(EmailTemplates())
    p = papers[0]
    assert blocks.get(p) is blocks.get(p)


# ---------------------------------------------------------------- the message


def message(papers: list[Paper], to: str = "alice@example.org", public_id: str = "Dlv-public-1") -> email.message.EmailMessage:
    mailer = DigestMailer(SETTINGS)
    rendered, _ = render(papers)
    return parse(mailer.message(rendered, to, public_id, LINKS, datetime(2026, 11, 30, 7, 0, 5, tzinfo=UTC)))


def test_message_is_multipart_alternative_utf8_text_then_html(papers):
    msg = message(papers)
    assert msg.get_content_type() == "multipart/alternative"
    kinds = [(part.get_content_type(), part.get_content_charset()) for part in msg.iter_parts()]
    assert kinds == [("text/plain", "utf-8"), ("text/html", "utf-8")]
    assert "Über-efficient LLMs" in msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",))
    assert html["Content-Transfer-Encoding"] == "7bit" and "&#220;ber-efficient LLMs" in html.get_content()
    assert as_read(html.get_content()) == as_read(render(papers)[0].html)  # what was rendered, as a client reads it


def test_message_headers(papers):
    msg = message(papers)
    assert msg["From"] == "Trending Papers <digest@example.org>"
    assert msg["To"] == "alice@example.org"
    assert msg["Date"].datetime == datetime(2026, 11, 30, 7, 0, 5, tzinfo=UTC)
    assert msg["Subject"] == "3 trending papers: Video Diffusion Transformers at Scale"
    assert msg["Message-ID"] == "<digest.Dlv-public-1@example.org>"
    assert msg["List-Unsubscribe"] == f"<{LINKS.unsubscribe}>"
    assert msg["List-Unsubscribe"].startswith("<https://")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg["List-Id"] == "Trending Papers <digest.example.org>"


def test_message_id_is_stable_per_delivery(papers):
    assert message(papers)["Message-ID"] == message(papers)["Message-ID"]
    assert message(papers, public_id="other")["Message-ID"] != message(papers)["Message-ID"]


def test_cr_lf_in_a_title_cannot_add_headers(papers):
    papers[0].title = "Innocent\r\nBcc: victim@example.org\r\nX-Evil: 1\n\nbody"
    rendered, _ = render(papers)
    msg = parse(DigestMailer(SETTINGS).message(rendered, "alice@example.org", "d1", LINKS))
    assert msg["Bcc"] is None and msg["X-Evil"] is None
    assert msg["Subject"] == "3 trending papers: Innocent Bcc: victim@example.org X-Evil: 1 body"
    assert msg.get_content_type() == "multipart/alternative"


def test_non_ascii_subject_is_encoded_and_decodes_back(papers):
    rendered, _ = render(papers[2:])
    data = DigestMailer(SETTINGS).message(rendered, "alice@example.org", "d1", LINKS)
    assert data.split(b"\r\n\r\n", 1)[0].isascii()
    assert parse(data)["Subject"] == "1 trending paper: Über-efficient LLMs: sparse attention — 10× faster"


# ---------------------------------------------------------------- in a browser


@pytest.mark.browser
def test_digest_html_reads_well_in_chromium_light_dark_and_phone(chromium, screenshot, papers):
    papers[1].title = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>Agents'
    rendered, _ = render(papers)
    for scheme, background in (("light", "rgb(244, 244, 245)"), ("dark", "rgb(24, 24, 27)")):
        for width in (375, 800):
            page = chromium.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
            errors: list[str] = []
            page.on("pageerror", lambda exc, errors=errors: errors.append(str(exc)))
            page.set_content(rendered.html, wait_until="load")
            assert page.evaluate("window.pwned") is None
            assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background
            assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
            titles = page.locator("h2 a").all_inner_texts()
            assert titles[0] == "Video Diffusion Transformers at Scale" and len(titles) == 3
            assert page.locator("text=View in browser").count() == 1
            screenshot(page, f"digest-{scheme}-{width}")
            assert errors == []
            page.close()


def test_paper_blocks_kept_across_batches_show_a_re_ingested_papers_new_upvotes(papers):
    paper = papers[0]
    first = PaperBlocks().get(paper)
    assert PaperBlocks().get(paper) is first  # a later batch reuses the rendered block
    paper.upvotes += 1000  # what a re-ingest does to a trending paper
    again = PaperBlocks().get(paper)
    assert again is not first and str(paper.upvotes) in again.text and str(paper.upvotes) in again.html


def test_paper_blocks_of_two_databases_show_each_databases_own_paper_under_the_same_id(sqlite_database, make_paper):
    """One process may serve several databases (the tests do): paper 1 of one is not paper 1 of another."""
    papers = {"one": ("2611.11111", "Sparse attention everywhere"), "two": ("2611.22222", "Robots that fold laundry")}
    blocks = {}
    for name, (arxiv_id, title) in papers.items():
        settings = Settings(database_url=sqlite_database(name))
        with session_scope(settings) as s:
            make_paper(arxiv_id, title, day=WINDOW[0], upvotes=7, session=s)  # the first paper there: id 1
        with session_factory(settings)() as s:
            paper = s.scalars(select(Paper)).one()
            assert paper.id == 1
            blocks[name] = PaperBlocks().get(paper)
    for name, (arxiv_id, title) in papers.items():
        block = blocks[name]
        for url in (f"https://huggingface.co/papers/{arxiv_id}", f"https://arxiv.org/abs/{arxiv_id}", f"https://arxiv.org/pdf/{arxiv_id}"):
            assert f'href="{url}"' in block.html and url in block.text
        assert title in block.html and title in block.text
        ((other_id, other_title),) = [p for other, p in papers.items() if other != name]
        assert other_id not in block.html + block.text and other_title not in block.html + block.text


def test_paper_blocks_show_a_re_ingested_papers_new_thumbnail_stars_comments_and_avatar(papers):
    paper = papers[0]
    first = PaperBlocks().get(paper)
    for column, value in (
        ("thumbnail", "https://cdn-thumbnails.huggingface.co/social-thumbnails/papers/new.png"),
        ("github_stars", 98765),
        ("num_comments", 77),
        ("org_avatar", "https://cdn-avatars.huggingface.co/new.png"),
        ("project_page", "https://acme.example/new"),
    ):
        setattr(paper, column, value)
        again = PaperBlocks().get(paper)
        assert again is not first, column
        first = again
    assert "new.png" in first.html and "99k" in first.html and "77" in first.html and "acme.example/new" in first.text


def test_the_first_card_has_its_own_block_rendered_once_with_the_large_thumbnail(papers):
    blocks = PaperBlocks()
    lead, plain = blocks.get(papers[0], lead=True), blocks.get(papers[0])
    assert lead is blocks.get(papers[0], lead=True) and lead is not plain
    assert 'class="hero"' in lead.html and 'class="thumb"' not in lead.html
    assert 'class="thumb"' in plain.html and 'class="hero"' not in plain.html
    assert "pick-label" not in lead.html + plain.html  # the pill is the card's (its frame), not the paper's
    assert lead.text == plain.text


def test_a_recipient_after_the_first_renders_no_paper_block(make_paper, monkeypatch):
    """Per recipient only strings of blocks are joined: every block is rendered for the first one."""
    unique = [make_paper(title=f"Once-only block {i} {id(monkeypatch)}", day=WINDOW[0], upvotes=10 - i) for i in range(4)]
    mailer = DigestMailer(SETTINGS)
    renders = []
    original = mailer.blocks.html_template.render
    monkeypatch.setattr(
        mailer.blocks, "html_template", type("Spy", (), {"render": lambda self, **kw: renders.append(1) or original(**kw)})()
    )
    picks = trending_picks(unique)
    mailer.render(picks, READER, WINDOW, LINKS)
    assert len(renders) == 4  # the first card's block (with its large thumbnail) and the three others
    for name in ("b", "c", "d"):
        mailer.render(picks, replace(READER, email=f"{name}@example.org"), WINDOW, LINKS)
    assert len(renders) == 4


def test_papers_are_numbered_in_html_as_in_text_and_the_top_pick_leads(papers):
    rendered, _ = render(papers)
    numbers = re.findall(r'<span class="num"[^>]*>(\d+)\.</span>', rendered.html)
    assert numbers == ["1", "2", "3"]
    assert re.findall(r"^ ?(\d+)\. ", rendered.text, re.M) == ["1", "2", "3"]
    assert rendered.html.count("#1 today") == 1 and rendered.html.index("#1 today") < rendered.html.index('<span class="num"')
    weekly, _ = DigestMailer(SETTINGS).render(
        trending_picks(papers), replace(READER, frequency="weekly"), (date(2026, 11, 23), date(2026, 11, 29)), LINKS
    )
    assert "#1 this week" in weekly.html and "#1 this week\n 1. Video Diffusion" in weekly.text


def test_preview_text_lists_the_top_two_titles_before_anything_else(papers):
    rendered, _ = render(papers)
    body = rendered.html.split("<body", 1)[1].split(">", 1)[1].lstrip()
    assert body.startswith('<div class="preheader" style="display:none')
    assert body.split(">", 1)[1].startswith("Video Diffusion Transformers at Scale &#183; Agents That Read Papers &#183; and 1 more&#847;")


def spec(html: str, text: str = "Über · ▲\n") -> MessageSpec:
    return MessageSpec("Trending Papers", "digest@example.org", "alice@example.org", "Subject", text, html, "m1@example.org")


def test_the_html_part_is_7bit_ascii_other_characters_as_references_lines_crlf():
    data = build_message(spec("<p>Über · ▲ 10× &#847;</p>\n<p>two\rthree\r\nfour</p>"))
    assert data.isascii() and max(map(len, data.split(b"\r\n"))) <= 998 and b"\n" not in data.replace(b"\r\n", b"")
    html = parse(data).get_body(("html",))
    assert html["Content-Transfer-Encoding"] == "7bit"
    # (the CRLF before the closing boundary belongs to the boundary, RFC 2046 5.1.1)
    assert html.get_payload() == "<p>&#220;ber &#183; &#9650; 10&#215; &#847;</p>\r\n<p>two\r\nthree\r\nfour</p>"
    text = parse(data).get_body(("plain",))  # the text part keeps its characters: base64
    assert text["Content-Transfer-Encoding"] == "base64" and text.get_content() == "Über · ▲\n"


@pytest.mark.parametrize(("line", "encoding"), [(998, "7bit"), (999, "base64")])
def test_an_html_line_longer_than_998_characters_as_sent_goes_base64(line, encoding):
    source = "<p>" + "Ü" * ((line - 7) // 6) + "x" * ((line - 7) % 6) + "</p>\n"  # Ü is 6 characters sent: &#220;
    html = parse(build_message(spec(source))).get_body(("html",))
    assert html["Content-Transfer-Encoding"] == encoding
    assert as_read(html.get_content()).rstrip("\n") == source.rstrip("\n")
    assert max(len(raw) for raw in html.get_payload().split("\r\n")) == (line if encoding == "7bit" else 76)


@given(st.lists(st.sampled_from([b"a", b"\n"]), max_size=80).map(b"".join), st.integers(1, 12))
def test_lines_fit_agrees_with_measuring_every_line(data, limit):
    assert _lines_fit(data, limit) == (max(map(len, data.split(b"\n"))) <= limit)


def test_html_templates_are_ascii_so_their_css_never_holds_a_reference():
    """The compiled HTML is made ASCII with references, which CSS does not read: sources write
    entities (``&middot;``) in text and CSS escapes (``\\2192``) in styles."""
    for path in sorted(TEMPLATES_DIR.rglob("*.html")):
        assert path.read_text(encoding="utf-8").isascii(), path


@pytest.mark.parametrize("length", [0, 1, 56, 57, 58, 114, 1000, 22_222])
def test_body_parts_are_base64_in_lines_of_76_with_crlf(length):
    """What ``base64.encodebytes`` makes, with CRLF: every full line 76 characters, the last shorter."""
    import base64

    from digest.mail.mime import _b64

    text = ("Über · ▲ 10× faster\n" * (length // 20 + 1))[:length]
    assert _b64(text) == base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")


@pytest.mark.parametrize(
    ("text", "eight_bit", "encoding"),
    [
        ("Über · ▲ 12\nsecond line\n", True, "8bit"),  # the server takes 8BITMIME: the UTF-8 as it is
        ("Über · ▲ 12\nsecond line\n", False, "base64"),  # it does not
        ("plain ASCII\nonly\n", False, "7bit"),  # nothing to declare
        ("a NUL \0 in it\n", True, "base64"),  # neither 7bit nor 8bit may carry one
        ("Ü" * 499 + "\n", True, "8bit"),  # 998 bytes of UTF-8 on a line fit
        ("Ü" * 500 + "\n", True, "base64"),  # 1,000 do not
    ],
)
def test_the_text_part_goes_8bit_where_the_server_takes_it_7bit_when_ascii_else_base64(text, eight_bit, encoding):
    data = build_message(replace(spec("<p>x</p>", text), eight_bit=eight_bit))
    part = parse(data).get_body(("plain",))
    assert part["Content-Transfer-Encoding"] == encoding
    # (a 7bit or 8bit part's last CRLF belongs to the boundary that follows it, RFC 2046 5.1.1)
    assert part.get_content().replace("\r\n", "\n") == (text if encoding == "base64" else text.removesuffix("\n"))
    if encoding != "base64":  # the lines as they are, CRLF-terminated
        assert part.get_payload(decode=True) == text.encode("utf-8").rstrip(b"\n").replace(b"\n", b"\r\n")
    assert data.isascii() == (encoding != "8bit")
