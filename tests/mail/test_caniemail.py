"""The emails against caniemail.com's support data, for the clients researchers read them in.

``doiuse-email`` (npm, pinned in ``tests/mail/caniemail/package-lock.json``; ``.ci/run`` installs it
with ``npm ci``) lists each CSS or HTML feature of the rendered digest and confirmation that Gmail,
classic Outlook on Windows, Apple Mail or Yahoo does not support at all. Each such feature must be
in :data:`ALLOWED`, with why the email still reads well without it there; partial support
(doiuse-email's warnings) is left to caniemail.com's notes. The allow-list stays short: an entry no
email uses any more fails too.

Without Node.js or the npm package the test skips, saying which is missing; under
``DIGEST_REQUIRE_SERVICES=1`` (CI) it fails instead.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
from datetime import date
from pathlib import Path

import lxml.html
import pytest
from digest_helpers import RENDER_SETTINGS

from digest.mail.confirmation import ConfirmationLinks, confirmation_context
from digest.mail.digest_email import DigestLinks, DigestMailer, Reader
from digest.mail.templates import templates
from digest.matching.select import Pick

TOOL = Path(__file__).parent / "caniemail"
CLIENTS = ("gmail.*", "outlook.windows", "apple-mail.*", "yahoo.*")
INSTALL = "npm ci --prefix tests/mail/caniemail"

#: feature (as caniemail names it) -> (the clients where it may be unsupported, why the email still works there)
ALLOWED: dict[str, tuple[tuple[str, ...], str]] = {
    "<body> element": (
        ("yahoo.ios", "yahoo.android"),
        "Yahoo's apps drop <body> and its styles: the frame's outer table repeats the background",
    ),
    "@media": (
        ("gmail.mobile-webmail", "outlook.windows"),
        "the <style> only holds dark mode and narrower spacing on phones: without it, the light layout, "
        "inlined and fluid (a 640 px column in Outlook's ghost table), shows",
    ),
    "border-radius": (("outlook.windows",), "square corners on the cards, labels and button"),
    "table-layout": (
        ("outlook.windows",),
        "Outlook sets the column at its ghost table's 640 px; elsewhere a fixed layout keeps a long word from widening it",
    ),
    "word-break": (
        ("yahoo.*",),
        "a word longer than the column (a signed link, a title without spaces) runs past the card's edge "
        "instead of wrapping; the column keeps its width (table-layout: fixed)",
    ),
    # The preheader (the inbox preview) is hidden by several layers, as Cerberus and Litmus hide it;
    # every client honours at least one: display:none (Apple Mail, Gmail's apps and desktop web,
    # Yahoo), mso-hide:all (Outlook), max-height:0 with overflow:hidden (Gmail's mobile web), and its
    # 1px text has the background's colour.
    "display:none": (("gmail.mobile-webmail",), "preheader: max-height:0 and overflow:hidden hide it there"),
    "opacity": (
        ("gmail.mobile-webmail", "outlook.windows", "yahoo.*"),
        "preheader: display:none, mso-hide:all or max-height:0 with overflow:hidden hide it there",
    ),
    "overflow": (("outlook.windows", "yahoo.android"), "preheader: mso-hide:all (Outlook) and display:none (Yahoo) hide it there"),
}
#: allowed only on the hidden preheader: anywhere else they would hide or clip what a reader must see
PREHEADER_ONLY = {"display:none": r"display\s*:\s*none", "opacity": r"opacity\s*:", "overflow": r"overflow\s*:"}

SETTINGS = RENDER_SETTINGS


def _unavailable(what: str, why: str, how: str) -> None:
    """Skip (with DIGEST_REQUIRE_SERVICES=1, fail), saying what is missing and how to get it, in
    the words of ``tests/conftest.py``'s services."""
    if os.environ.get("DIGEST_REQUIRE_SERVICES") == "1":
        pytest.fail(f"needs {what} (DIGEST_REQUIRE_SERVICES=1), but {why}. {how}", pytrace=False)
    pytest.skip(f"needs {what}, but {why}. {how}. (With DIGEST_REQUIRE_SERVICES=1 this is a failure.)")


@pytest.fixture(scope="module")
def doiuse_email():
    """``check({name: html}, folder)``: the (feature, client) pairs doiuse-email finds unsupported, by name."""
    node = shutil.which("node")
    if node is None:
        _unavailable(
            "Node.js (18 or newer) to check the emails against caniemail.com's data",
            "there is no `node` on PATH",
            f"On Debian `apt-get install nodejs npm`, then `{INSTALL}` (doiuse-email at its locked version)",
        )
    if not (TOOL / "node_modules" / "doiuse-email" / "package.json").exists():
        _unavailable(
            "the npm package doiuse-email to check the emails against caniemail.com's data",
            "tests/mail/caniemail/node_modules does not have it",
            f"Run `{INSTALL}` (the versions of its package-lock.json; .ci/run does it)",
        )

    def check(emails: dict[str, str], tmp: Path) -> dict[str, set[tuple[str, str]]]:
        files = {}
        for name, html in emails.items():
            files[name] = tmp / f"{name}.html"
            files[name].write_text(html, encoding="utf-8")
        done = subprocess.run(
            [node, str(TOOL / "check.mjs"), ",".join(CLIENTS), *map(str, files.values())],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=TOOL,
        )
        assert done.returncode == 0, done.stderr
        found = json.loads(done.stdout)
        return {name: {(e["feature"], e["client"]) for e in found[str(path)]} for name, path in files.items()}

    return check


def digest_html(make_paper) -> str:
    """A digest with every part a card can have: the first card's large thumbnail, the pill on a
    later card, "for you" marks, small thumbnails, an organisation's avatar, code, a project page,
    vote links, a "You may also like" part, filters and the "view in browser" link."""
    day = date(2026, 11, 29)
    full = dict(
        org_fullname="Acme AI Research",
        org_avatar="https://cdn-avatars.huggingface.co/acme.png",
        github_repo="https://github.com/acme/vdt",
        github_stars=1234,
        project_page="https://acme.example/vdt",
        num_comments=3,
        ai_summary="A recipe for training video diffusion transformers that scale to minute-long clips.",
    )
    papers = [
        make_paper(
            title=f"Paper number {i} on video diffusion", day=day, upvotes=upvotes, thumbnail=f"https://cdn.example.org/{i}.png", **full
        )
        for i, upvotes in enumerate((3, 5, 40, 4))
    ]
    picks = [
        Pick(papers[0], '"video diffusion"', why="like \u201cVideo agents\u201d, which you liked", lifted=True),
        Pick(papers[1], '"video diffusion"', lifted=True),
        Pick(papers[2], '"video diffusion"', top=True),
        Pick(papers[3], None, why="like \u201cVideo agents\u201d, which you liked", also=True),
    ]
    links = DigestLinks(
        unsubscribe="https://digest.example.org/unsubscribe/U",
        preferences="https://digest.example.org/preferences/P",
        archive="https://digest.example.org/digest/A",
        vote="https://digest.example.org/vote/V",
    )
    reader = Reader("ann@example.org", "daily", "UTC", 7, ('"video diffusion"',))
    rendered, _ = DigestMailer(SETTINGS).render(picks, reader, (day, day), links)
    return rendered.html


def confirmation_html(already_subscribed: bool) -> str:
    links = ConfirmationLinks("https://digest.example.org/confirm/" + "x" * 90, "https://digest.example.org/preferences/" + "y" * 90)
    context = confirmation_context(SETTINGS, "ann@example.org", "daily", links, already_subscribed=already_subscribed, expires_hours=48)
    return templates().render("confirm", context).html


def allowed(feature: str, client: str) -> bool:
    clients, _ = ALLOWED.get(feature, ((), ""))
    return any(fnmatch.fnmatch(client, pattern) for pattern in clients)


def test_the_digest_and_the_confirmation_use_only_what_gmail_outlook_apple_mail_and_yahoo_support_or_degrade_from(
    doiuse_email, make_paper, tmp_path
):
    emails = {"digest": digest_html(make_paper), "confirm": confirmation_html(False), "already-subscribed": confirmation_html(True)}
    found = doiuse_email(emails, tmp_path)
    unexplained = {name: sorted(pair for pair in pairs if not allowed(*pair)) for name, pairs in found.items()}
    assert unexplained == {name: [] for name in emails}, "unsupported features not in ALLOWED (fix the template, or explain there)"
    used = {feature for pairs in found.values() for feature, _ in pairs}
    assert used == set(ALLOWED), f"ALLOWED lists features no email uses any more: {sorted(set(ALLOWED) - used)}"


@pytest.mark.parametrize("email", ["digest", "confirm"])
def test_what_hides_the_preheader_is_used_on_the_preheader_only(make_paper, email):
    html = digest_html(make_paper) if email == "digest" else confirmation_html(False)
    for element in lxml.html.document_fromstring(html).xpath("//*[@style]"):
        for feature, pattern in PREHEADER_ONLY.items():
            if re.search(pattern, element.get("style")):
                assert element.get("class") == "preheader", f"{feature} on <{element.tag} class={element.get('class')!r}>"


@pytest.mark.parametrize("email", ["digest", "confirm"])
def test_the_column_is_a_centred_ghost_table_in_outlook_and_a_max_width_div_elsewhere(make_paper, email):
    """The hybrid frame (Cerberus, MJML): Outlook's Word engine ignores a div's max-width and lays
    the column out in the ghost table of its conditional comments; other clients skip those."""
    html = digest_html(make_paper) if email == "digest" else confirmation_html(False)
    ghost = (
        '<!--[if mso]><table role="presentation" align="center" width="640" border="0" cellpadding="0" cellspacing="0"><tr><td><![endif]-->'
    )
    assert html.count(ghost) == 1 and html.count("<!--[if mso]></td></tr></table><![endif]-->") == 1
    after = html.split(ghost, 1)[1]
    assert re.match(r'\s*<div class="wrap" style="max-width:640px; margin:0 auto', after)
    document = lxml.html.document_fromstring(html)
    assert all(table.get("role") == "presentation" for table in document.iter("table"))
    assert not re.search(r"\bfloat\s*:", html)  # the small thumbnails float with align="right", which Outlook reads
    assert 'align="right"' in html if email == "digest" else True
    assert "<!--[if mso]>\n<noscript><xml><o:OfficeDocumentSettings>" in html  # 96 dpi: images at their sizes
