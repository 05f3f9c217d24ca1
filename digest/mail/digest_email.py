"""The digest email: per-paper blocks rendered once per batch, a context per recipient, the message.

Rendering cost is dominated by what is done per recipient, so a batch renders each paper's block
(HTML with its CSS inlined, and text) ONCE into a string; a recipient's digest is then a Jinja
render of ``email_templates/digest`` that strings the blocks together with the only per-recipient
parts: the "matched: <filter>" lines, the footer and its signed links.

Paper data is untrusted: every text is autoescaped in HTML, whitespace (CR/LF included) is collapsed
in titles, names and excerpts, and only ``http(s)`` URLs are ever linked.
"""

from __future__ import annotations

import functools
import math
import re
import textwrap
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from urllib.parse import quote, urlsplit

import jinja2
from markupsafe import Markup

from digest import tokens
from digest.config import Settings
from digest.mail.templates import EmailTemplates, Rendered, flatten, inline_css, one_line, templates
from digest.matching.select import Pick
from digest.models import Paper

TEMPLATE = "digest"
MAX_HTML_BYTES = 100_000  # Gmail clips a message's HTML above ~102 KB
EXCERPT_CHARS = 300
TITLE_CHARS = 300
MAX_AUTHORS = 3
ALL_PAPERS = "all trending papers"
_BLOCK_START, _BLOCK_END = "<!--block-->", "<!--/block-->"
_ARXIV_SAFE = "./-"
_TRAILING = re.compile(r"[\s,;:.\-–—(]+$")


# ---------------------------------------------------------------- one paper


def safe_url(value: str | None) -> str | None:
    """``value`` if it is an absolute http(s) URL without spaces or control characters, else None."""
    if not value or len(value) > 2048:
        return None
    value = value.strip()
    if any(not c.isprintable() or c.isspace() for c in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return value


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """About ``limit`` characters, cut at a word boundary, with an ellipsis when cut."""
    text = one_line(text, 100_000)
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    space = cut.rfind(" ")
    cut = cut[:space] if space > limit // 2 else cut[:limit]
    return _TRAILING.sub("", cut) + "…"


def authors_line(names: Sequence[str]) -> str:
    shown = [one_line(n, 100) for n in names[:MAX_AUTHORS] if n and n.strip()]
    return ", ".join(shown) + (" et al." if len(names) > MAX_AUTHORS else "")


def day_label(day: date) -> str:
    return f"{day:%b} {day.day}, {day.year}"


@functools.lru_cache(maxsize=256)  # a run has a few windows and a digest for each subscriber
def window_label(start: date, end: date) -> str:
    if start >= end:
        return f"{end:%A}, {end:%B} {end.day}, {end.year}"
    if start.year != end.year:
        return f"{day_label(start)} – {day_label(end)}"
    return f"{start:%b} {start.day} – {end:%b} {end.day}, {end.year}"


def paper_view(paper: Paper) -> dict:
    """What a paper block shows, cleaned: the only way paper data reaches a template."""
    arxiv = quote(paper.arxiv_id.strip(), safe=_ARXIV_SAFE)
    return {
        "title": one_line(paper.title, TITLE_CHARS),
        "authors": authors_line(paper.authors or []),
        "org": one_line(paper.org_fullname or paper.org_name or "", 120),
        "upvotes": paper.upvotes,
        "day": day_label(paper.daily_date),
        "excerpt": excerpt(paper.ai_summary or paper.abstract or ""),
        "paper_url": f"https://huggingface.co/papers/{arxiv}",
        "abs_url": f"https://arxiv.org/abs/{arxiv}",
        "pdf_url": f"https://arxiv.org/pdf/{arxiv}",
        "code_url": safe_url(paper.github_repo),
    }


@dataclass(frozen=True)
class Block:
    html: Markup
    text: str


class PaperBlocks:
    """Each paper's HTML and text block, rendered once (per batch) and reused for every recipient.

    The HTML block template (``digest/paper.html``) extends ``_base`` like a whole email, so that
    premailer inlines the same stylesheet into it, once, when the template is first compiled.
    """

    _compiled: weakref.WeakKeyDictionary[EmailTemplates, tuple[jinja2.Template, jinja2.Template]] = weakref.WeakKeyDictionary()
    _lock = threading.Lock()

    def __init__(self, email_templates: EmailTemplates | None = None) -> None:
        self.templates = email_templates or templates()
        self.html_template, self.text_template = self._compile(self.templates)

    @classmethod
    def _compile(cls, t: EmailTemplates) -> tuple[jinja2.Template, jinja2.Template]:
        compiled = cls._compiled.get(t)
        if compiled is None:
            with cls._lock:
                compiled = cls._compiled.get(t)
                if compiled is None:
                    source = inline_css(flatten(t.loader, t.html_env, f"{TEMPLATE}/paper.html"))
                    fragment = source.split(_BLOCK_START, 1)[1].split(_BLOCK_END, 1)[0].strip()
                    compiled = (t.html_env.from_string(fragment), t.text_env.get_template(f"{TEMPLATE}/paper.txt"))
                    cls._compiled[t] = compiled
        return compiled

    def get(self, paper: Paper) -> Block:
        key = (self.templates, _block_key(paper))
        block = _SHARED_BLOCKS.get(key)
        if block is None:
            view = paper_view(paper)
            block = Block(
                html=Markup(self.html_template.render(p=view)),
                text=self.text_template.render(p=view, wrap=_wrap).rstrip(),
            )
            if len(_SHARED_BLOCKS) >= SHARED_BLOCKS_MAX:
                _SHARED_BLOCKS.clear()
            _SHARED_BLOCKS[key] = block
        return block


#: Blocks kept across batches in one worker process: a day's papers appear in every batch of a
#: planning run. Keyed by everything a block shows, not by the paper's id: one process may serve
#: several databases (the tests do), where one id names different papers.
SHARED_BLOCKS_MAX = 5000
_SHARED_BLOCKS: dict[tuple, Block] = {}


def _block_key(paper: Paper) -> tuple:
    """What :func:`paper_view` reads: two papers with the same key show the same block."""
    return (
        paper.arxiv_id,
        paper.title,
        tuple(paper.authors or ()),
        paper.daily_date,
        paper.upvotes,
        paper.org_name,
        paper.org_fullname,
        paper.github_repo,
        paper.ai_summary,
        paper.abstract,
    )


def _wrap(text: str, first: str = "    ", rest: str = "    ") -> str:
    return textwrap.fill(text, width=76, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False)


# ---------------------------------------------------------------- one recipient


@dataclass(frozen=True)
class DigestLinks:
    unsubscribe: str
    preferences: str
    archive: str | None  # None on the archive page itself


def links_for(settings: Settings, subscriber_public_id: str, delivery_public_id: str | None) -> DigestLinks:
    return DigestLinks(
        unsubscribe=tokens.link(settings, "unsubscribe", subscriber_public_id),
        preferences=tokens.link(settings, "preferences", subscriber_public_id),
        archive=tokens.link(settings, "archive", delivery_public_id) if delivery_public_id else None,
    )


@dataclass(frozen=True)
class Reader:
    """Who a digest is for, as the footer explains it."""

    email: str
    frequency: str
    timezone: str
    delivery_hour: int
    filters: tuple[str, ...]


def digest_context(
    blocks: PaperBlocks,
    picks: Sequence[Pick],
    reader: Reader,
    window: tuple[date, date],
    links: DigestLinks,
) -> dict:
    """The digest's template context; paper blocks come pre-rendered from ``blocks``."""
    count = len(picks)
    return {
        "count": count,
        "top_title": one_line(picks[0].paper.title, TITLE_CHARS) if picks else "",
        "heading": f"{count} trending paper{'' if count == 1 else 's'} for you",
        "window": window_label(*window),
        "items": [(blocks.get(p.paper), p.matched or ALL_PAPERS) for p in picks],
        "email": reader.email,
        "frequency": reader.frequency,
        "when": f"{'Mondays' if reader.frequency == 'weekly' else 'every day'} at {reader.delivery_hour:02d}:00 ({reader.timezone})",
        "filters": reader.filters,
        "unsubscribe_url": links.unsubscribe,
        "preferences_url": links.preferences,
        "archive_url": links.archive,
    }


def render_digest(context: dict, email_templates: EmailTemplates | None = None) -> Rendered:
    return (email_templates or templates()).render(TEMPLATE, context)


def message_id(settings: Settings, delivery_public_id: str) -> str:
    """Stable per delivery: a retry carries the same Message-ID, so receivers can drop a duplicate."""
    return f"digest.{delivery_public_id}@{settings.mail_domain}"


class DigestMailer:
    """What one batch shares: the compiled templates, the paper blocks, the sender's headers."""

    def __init__(self, settings: Settings, email_templates: EmailTemplates | None = None) -> None:
        self.settings = settings
        self.templates = email_templates or templates()
        self.blocks = PaperBlocks(self.templates)
        self.sender = settings.mail_from_address
        self.list_id = f"Trending Papers <digest.{settings.mail_domain}>"

    def render(self, picks: Sequence[Pick], reader: Reader, window: tuple[date, date], links: DigestLinks) -> tuple[Rendered, list[Pick]]:
        """The digest, and the picks it shows: the last ones are dropped if the HTML would pass
        :data:`MAX_HTML_BYTES` (only possible with a large ``DIGEST_DIGEST_SIZE``)."""
        shown = list(picks)
        while True:
            rendered = render_digest(digest_context(self.blocks, shown, reader, window, links), self.templates)
            size = len(rendered.html.encode("utf-8"))
            if size <= MAX_HTML_BYTES or len(shown) <= 1:
                return rendered, shown
            per_paper = size / len(shown)
            shown = shown[: max(1, len(shown) - max(1, math.ceil((size - MAX_HTML_BYTES) / per_paper)))]

    def message(self, rendered: Rendered, to: str, delivery_public_id: str, links: DigestLinks, when: datetime | None = None) -> bytes:
        return rendered.message(
            self.sender,
            to,
            message_id(self.settings, delivery_public_id),
            {
                "List-Unsubscribe": f"<{links.unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "List-Id": self.list_id,
            },
            date=when.timestamp() if when is not None else None,
        )
