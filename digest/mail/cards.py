"""A paper's card: its block (HTML with the CSS inlined, and text) rendered once per batch, and the
markup around it in a digest (``digest/card.html`` and ``card.txt``: the paper's number, the
"#1 today" label of the window's most upvoted paper, the "for you" mark of a paper the reader's
order moved up, the "matched: <filter>" line with the reader's taste's "why", the two "more / less
like this" links) rendered once per process and shape with placeholders and cut at them
(:class:`CardFrames`), so a recipient's cards are those pieces interleaved with the blocks and the
reader's parts.

Paper data is untrusted: every text is autoescaped in HTML, whitespace (CR/LF included) is collapsed
in titles, names and excerpts, and only ``http(s)`` URLs are ever linked or shown as images. LaTeX
math in titles and abstracts is shown as text (:mod:`digest.mail.latex`).

A paper of the "New on arXiv" section (``Pick.section == "arxiv"``) has a block of its own: no
upvotes (arXiv's new papers have none), its primary category and the cross-lists among the
operator's categories instead, its title linked to its arXiv page.
"""

from __future__ import annotations

import functools
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple
from urllib.parse import quote, urlsplit

from markupsafe import Markup, escape
from sqlalchemy import inspect

from digest.mail.latex import readable
from digest.mail.mime import ascii_html
from digest.mail.templates import EmailTemplates, one_line, templates
from digest.matching.select import Pick
from digest.models import Paper

TEMPLATE = "digest"
EXCERPT_CHARS = 300
TITLE_CHARS = 300
MAX_AUTHORS = 3
ALL_PAPERS = "all trending papers"
ARXIV = "arxiv"  # Pick.section of a "New on arXiv" paper
MAX_ALSO_IN = 2  # an arXiv card's cross-lists named ("also in cs.LG, cs.CV"), at most
_BLOCK_START, _BLOCK_END = "<!--block-->", "<!--/block-->"
_CARD_START, _CARD_END = "<!--card-->", "<!--/card-->"
_ARXIV_SAFE = "./-"
_TRAILING = re.compile(r"[\s,;:.\-–—(]+$")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
#: Where a paper's number goes in its HTML block: autoescaping makes "<" from paper data "&lt;", so
#: this comment can only come from the template.
NUMBER = Markup("<!--number-->")


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


def first_sentences(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The whole sentences that fit in about ``limit`` characters; a first sentence longer than
    that is cut at a word boundary, like :func:`excerpt`."""
    text = one_line(text, 100_000)
    if len(text) <= limit:
        return text
    end = 0
    for match in _SENTENCE_END.finditer(text, 0, limit + 2):
        if match.start() > limit:
            break
        end = match.start()
    return text[:end] if end else excerpt(text, limit)


def compact_count(n: int) -> str:
    """``950``, ``1.2k``, ``12k``, ``1.5M``: a star count at a glance."""
    if n < 1000:
        return str(n)
    if n < 999_950:
        value, unit = n / 1000, "k"
    else:
        value, unit = n / 1_000_000, "M"
    return (f"{value:.1f}".removesuffix(".0") if value < 10 else f"{value:.0f}") + unit


def authors_line(names: Sequence[str]) -> str:
    shown = [one_line(n, 100) for n in names[:MAX_AUTHORS] if n and n.strip()]
    return ", ".join(shown) + (" et al." if len(names) > MAX_AUTHORS else "")


def paper_view(paper: Paper) -> dict:
    """What a paper card shows, cleaned: the only way paper data reaches a template (the email's
    blocks and the pages' cards). Everything it reads is in :func:`_block_key`."""
    arxiv = quote(paper.arxiv_id.strip(), safe=_ARXIV_SAFE)
    paper_url = f"https://huggingface.co/papers/{arxiv}"
    org = one_line(paper.org_fullname or paper.org_name or "", 120)
    code_url = safe_url(paper.github_repo)
    if paper.ai_summary:
        summary = excerpt(readable(paper.ai_summary))
    else:
        summary = first_sentences(readable(paper.abstract or ""))
    return {
        "title": one_line(readable(paper.title), TITLE_CHARS),
        "authors": authors_line(paper.authors or []),
        "org": org,
        "org_avatar": safe_url(paper.org_avatar) if org else None,
        "upvotes": paper.upvotes,
        "comments": paper.num_comments or 0,
        "excerpt": summary,
        "thumbnail": safe_url(paper.thumbnail),
        "paper_url": paper_url,
        "comments_url": f"{paper_url}#community",
        "abs_url": f"https://arxiv.org/abs/{arxiv}",
        "pdf_url": f"https://arxiv.org/pdf/{arxiv}",
        "code_url": code_url,
        "stars": compact_count(paper.github_stars) if code_url and paper.github_stars else None,
        "project_url": safe_url(paper.project_page),
    }


def primary_category(paper: Paper) -> str | None:
    """The paper's primary arXiv category as arXiv spells it (``cs.CL``); None if arXiv never
    described it to us."""
    if paper.primary_category:
        return paper.primary_category
    return paper.categories[0] if paper.categories else None


def arxiv_view(paper: Paper, configured: Sequence[str] = ()) -> dict:
    """What an arXiv card shows besides :func:`paper_view`: its primary category, and the
    cross-lists among ``configured`` (the operator's categories, ``settings.arxiv_categories``), at
    most :data:`MAX_ALSO_IN` of them: a short line."""
    primary = primary_category(paper)
    wanted = {c.lower() for c in configured}
    others = [c for c in paper.categories or () if c != primary and c.lower() in wanted]
    return {
        "category": one_line(primary, 40) if primary else None,
        "also_in": ", ".join(one_line(c, 40) for c in others[:MAX_ALSO_IN]),
    }


@dataclass(frozen=True)
class Block:
    """One paper's card, rendered: its HTML before and after its number (which is per recipient),
    its text, and its title as shown (for the subject and the inbox preview)."""

    head: str
    tail: str
    text: str
    title: str

    @classmethod
    def of(cls, html: str, text: str, title: str) -> Block:
        head, _, tail = str(html).partition(NUMBER)
        return cls(head, tail, text, title)

    def numbered(self, number: int) -> Markup:
        """The HTML as paper ``number`` of a digest (one join: cheaper than three template outputs)."""
        return Markup("".join((self.head, str(number), self.tail)))

    @property
    def html(self) -> Markup:
        """The HTML without its number."""
        return Markup(self.head + self.tail)


class PaperBlocks:
    """Each paper's HTML and text block, rendered once (per batch) and reused for every recipient.

    The HTML block template (``digest/paper.html``) extends ``_base`` like a whole email, so that
    premailer inlines the same stylesheet into it, once, when the template is first compiled.

    A batch asks for the same paper objects for each of its recipients: after the first ask, a
    paper object's block is found by identity (the object is held, so its id is not reused) without
    reading its columns again for the process-wide key. A batch's papers do not change under it.
    Papers detached from any session (a window's candidates, which every batch of a send run
    shares: :mod:`digest.matching.trending`) are found by identity across batches too: nothing
    reloads or changes them (an arXiv section's 2,000–4,000 papers, ~250 in each batch).
    """

    def __init__(self, email_templates: EmailTemplates | None = None, categories: Sequence[str] = ()) -> None:
        self.templates = email_templates or templates()
        self.categories = tuple(categories)  # the operator's arXiv categories: an arXiv card's "also in"
        self.html_template = self.templates.fragment(f"{TEMPLATE}/paper.html", _BLOCK_START, _BLOCK_END)
        self.text_template = self.templates.text_env.get_template(f"{TEMPLATE}/paper.txt")
        self.frames = _frames_for(self.templates)
        self._seen: dict[tuple[int, bool, bool], tuple[Paper, Block]] = {}
        self._detached = _DETACHED_SEEN.setdefault((self.templates, self.categories), {})

    def get(self, paper: Paper, lead: bool = False, section: str = "trending") -> Block:
        """The block of ``paper``; with ``lead``, as the digest's first card: its thumbnail large;
        with ``section="arxiv"``, as a card of the "New on arXiv" section (:func:`arxiv_view`)."""
        arxiv = section == ARXIV
        seen = self._seen.get((id(paper), lead, arxiv)) or self._detached.get((id(paper), lead, arxiv))
        if seen is not None and seen[0] is paper:
            return seen[1]
        key = (self.templates, lead, _block_key(paper)) + (
            (paper.primary_category, tuple(paper.categories or ()), self.categories) if arxiv else ()
        )
        block = _SHARED_BLOCKS.get(key)
        if block is None:
            view = paper_view(paper)
            a = arxiv_view(paper, self.categories) if arxiv else None
            block = Block.of(
                self.html_template.render(p=view, a=a, lead=lead, number=NUMBER),
                self.text_template.render(p=view, a=a, wrap=_wrap).rstrip(),
                view["title"],
            )
            if len(_SHARED_BLOCKS) >= SHARED_BLOCKS_MAX:
                _SHARED_BLOCKS.clear()
            _SHARED_BLOCKS[key] = block
        if inspect(paper).detached:
            if len(self._detached) >= SHARED_BLOCKS_MAX:
                self._detached.clear()
            self._detached[id(paper), lead, arxiv] = (paper, block)
        else:
            self._seen[id(paper), lead, arxiv] = (paper, block)
        return block


@functools.lru_cache(maxsize=8)
def _frames_for(email_templates: EmailTemplates) -> CardFrames:
    return CardFrames(email_templates)


#: Blocks kept across batches in one worker process: a day's papers appear in every batch of a
#: planning run. Keyed by everything a block shows, not by the paper's id: one process may serve
#: several databases (the tests do), where one id names different papers.
SHARED_BLOCKS_MAX = 5000
_SHARED_BLOCKS: dict[tuple, Block] = {}
#: Detached paper objects' blocks by identity (:class:`PaperBlocks`), per templates and categories;
#: each entry holds its paper, so no other object takes its id while it is here
_DETACHED_SEEN: dict[tuple, dict[tuple[int, bool, bool], tuple[Paper, Block]]] = {}


def _block_key(paper: Paper) -> tuple:
    """What :func:`paper_view` reads: two papers with the same key show the same block."""
    return (
        paper.arxiv_id,
        paper.title,
        tuple(paper.authors or ()),
        paper.upvotes,
        paper.num_comments,
        paper.org_name,
        paper.org_fullname,
        paper.org_avatar,
        paper.thumbnail,
        paper.github_repo,
        paper.github_stars,
        paper.project_page,
        paper.ai_summary,
        paper.abstract,
    )


class Frame(NamedTuple):
    pieces: tuple[str, ...]
    values_of: Callable[[dict[str, str]], tuple[str, ...]]  # the values of the parts between the pieces


class CardFrames:
    """The markup around a paper's block in a digest (``digest/card.html``, ``digest/card.txt``):
    its number, its "why" line, its "more / less like this" links, the window's most upvoted
    paper's label ("#1 today") and the "for you" mark of a paper the reader's order moved up.
    Rendered once per process and shape (HTML or text, in the "You may also like" part or not,
    with or without a why or vote links, the label, the mark) with a placeholder for each
    per-reader part, and kept cut at them: a recipient's card is its pieces interleaved with its
    parts, not a template render.
    """

    _HOLES = {
        "card": "\0head\0\0number\0\0tail\0",  # the HTML block, cut around its number
        "number": "\0number\0",
        "text": "\0text\0",
        "why": "\0why\0",
        "lead": "\0lead\0",
        "more": "\0vote\0/\0paper\0/more",
        "less": "\0vote\0/\0paper\0/less",
    }

    def __init__(self, email_templates: EmailTemplates) -> None:
        self.templates = email_templates
        self._frames: dict[tuple, Frame] = {}

    def frame(self, html: bool, also: bool, why: bool, votes: bool, lead: bool, for_you: bool) -> Frame:
        """``(pieces, values_of)``: the card is ``pieces[0] + value(parts[0]) + pieces[1] + …
        + pieces[-1]``; ``values_of(values)`` is the parts' values as a tuple (an ``itemgetter``)."""
        key = (html, also, why, votes, lead, for_you)
        frame = self._frames.get(key)
        if frame is None:
            holes = {k: Markup(v) for k, v in self._HOLES.items()} | {"also": also, "votes": votes, "for_you": for_you}
            holes["why"] = holes["why"] if why else ""
            holes["lead"] = holes["lead"] if lead else ""
            if html:
                template = self.templates.fragment(f"{TEMPLATE}/card.html", _CARD_START, _CARD_END)
                rendered = "\n" + template.render(holes) + "\n"
            else:
                rendered = self.templates.text_env.get_template(f"{TEMPLATE}/card.txt").render(holes)
            cut = rendered.split("\0")
            pieces, parts = tuple(cut[0::2]), tuple(cut[1::2])
            values_of = itemgetter(*parts) if len(parts) > 1 else lambda values: tuple(values[part] for part in parts)
            frame = self._frames[key] = Frame(pieces, values_of)
        return frame


def _wrap(text: str, first: str = "    ", rest: str = "    ") -> str:
    return textwrap.fill(text, width=76, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False)


def why_line(pick: Pick, new_in: str | None = None) -> str:
    """The card's last line: the filter that matched, and what the reader's taste saw in it; for a
    paper of the "New on arXiv" section without a taste's why, the category that brought it
    (``new_in``: "matched: cat:cs.CL diffusion · new in cs.CL")."""
    matched = f"matched: {pick.matched or ALL_PAPERS}"
    if pick.why:
        return f"{matched} · {pick.why}"
    return f"{matched} · new in {new_in}" if new_in else matched


def card_why(pick: Pick, new_in: str | None = None) -> str:
    """What a card prints as its why: :func:`why_line`; for a "You may also like" paper, the taste's
    why alone (the card puts "outside your filters" before it)."""
    return (pick.why or "") if pick.also else why_line(pick, new_in)


def cards_of(
    blocks: PaperBlocks,
    cards,
    first: int,
    vote: str | None,
    label: str,
    new_in: Callable[[Pick], str | None] | None = None,
) -> _Cards:
    """The HTML and the text of these (block, pick) cards numbered from ``first``: each its frame's
    pieces (:class:`CardFrames`) interleaved with its block and the reader's parts, escaped for HTML
    as the templates' autoescaping would, joined once. The pick marked ``top`` (the window's most
    upvoted paper) carries ``label`` ("#1 today"), wherever it is; a ``lifted`` one, "for you".
    ``new_in(pick)``: the arXiv category that brought a "New on arXiv" pick (:func:`why_line`)."""
    frame = blocks.frames.frame
    votes = vote is not None
    vote_html = _escaped(vote) if votes else ""
    label_html = _escaped(label)
    html: list[str] = []
    text: list[str] = []
    for number, (block, pick) in enumerate(cards, first):
        why = card_why(pick, new_in(pick) if new_in is not None else None)
        paper = str(pick.paper.id) if votes else ""
        values = {
            "head": block.head,
            "number": str(number),
            "tail": block.tail,
            "why": _escaped(why),
            "vote": vote_html,
            "paper": paper,
            "lead": label_html,
        }
        _fill(html, frame(True, pick.also, bool(why), votes, pick.top, pick.lifted), values)
        values = {"number": f"{number:2d}", "text": block.text, "why": why, "vote": vote, "paper": paper, "lead": label}
        _fill(text, frame(False, pick.also, bool(why), votes, pick.top, pick.lifted), values)
    return _Cards(Markup("".join(html)), "".join(text))


def _fill(out: list[str], frame: Frame, values: dict[str, str]) -> None:
    """Append the card: the frame's pieces with the values between them (two slice assignments)."""
    card = [""] * (2 * len(frame.pieces) - 1)
    card[0::2] = frame.pieces
    card[1::2] = frame.values_of(values)
    out.extend(card)


_HTML_SPECIAL = re.compile(r"[&<>'\"]")


def _escaped(value: str) -> str:
    """``value`` as the HTML templates print it (``markupsafe.escape``, non-ASCII characters as
    references: :mod:`digest.mail.templates`), without making a ``Markup`` of a value that has
    nothing to escape (a why line, a link: most have not)."""
    return ascii_html(str(escape(value)) if _HTML_SPECIAL.search(value) else value)


@dataclass(frozen=True)
class _Cards:
    """Cards as the two templates print them: ``{{ cards }}`` is the HTML in ``body.html`` (already
    escaped), the text in ``body.txt``."""

    html: Markup
    text: str

    def __html__(self) -> str:
        return self.html

    def __str__(self) -> str:
        return self.text

    def __bool__(self) -> bool:
        return bool(self.text)
