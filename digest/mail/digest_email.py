"""The digest email: a context per recipient around the paper cards (:mod:`digest.mail.cards`), and
the message.

Rendering cost is dominated by what is done per recipient, so each paper's card is made once
(:mod:`digest.mail.cards`), and the Jinja render of ``email_templates/digest`` per recipient is only
the frame around the cards — the inbox preview line, the heading, the "You may also like" heading,
the footer and its signed links. The first card has a block of its own (its thumbnail large),
rendered once too; the "#1 today" label goes on the card of the window's most upvoted paper, wherever
the reader's order puts it, and "for you" on a paper that order moved up (:func:`cards_of`).

A digest with papers of arXiv's new announcements (``Pick.section == "arxiv"``) has two sections,
"Trending on Hugging Face" and "New on arXiv in <the reader's categories>" (:func:`arxiv_heading`),
each with its own "You may also like" block, numbered on across the email; a digest with trending
papers only reads as it did before arXiv was a source.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime

from markupsafe import Markup

from digest import tokens
from digest.config import Settings
from digest.mail.cards import ARXIV, TEMPLATE, PaperBlocks, card_why, cards_of, primary_category
from digest.mail.dkim import Signer
from digest.mail.headers import feedback_id, list_id
from digest.mail.templates import EmailTemplates, Rendered, templates
from digest.matching.expression import terms_of
from digest.matching.select import Pick
from digest.matching.topics import FilterError, parse_filter

MAX_HTML_BYTES = 100_000  # Gmail clips a message's HTML above ~102 KB
#: After the inbox preview line: invisible characters that keep clients from filling the preview
#: with the email's first lines ("Trending Papers 10 trending papers for you …").
PREHEADER_PAD = Markup("&#847;&zwnj;&nbsp;" * 15)
TRENDING_HEADING = "Trending on Hugging Face"
TRENDING_NOTE = "Most upvoted on Hugging Face Daily Papers"
ARXIV_HEADING = "New on arXiv"
ARXIV_NOTE = "Papers arXiv announced as new, matching your filters"
#: What a card of the "You may also like" part says first, before the taste's why (``digest/card.*``)
ALSO_LINE = "outside your filters"
MAX_HEADING_CATEGORIES = 4  # categories named in the arXiv section's heading; the rest are counted


def day_label(day: date) -> str:
    return f"{day:%b} {day.day}, {day.year}"


@functools.lru_cache(maxsize=256)  # a run has a few windows and a digest for each subscriber
def window_label(start: date, end: date) -> str:
    if start >= end:
        return f"{end:%A}, {end:%B} {end.day}, {end.year}"
    if start.year != end.year:
        return f"{day_label(start)} – {day_label(end)}"
    return f"{start:%b} {start.day} – {end:%b} {end.day}, {end.year}"


# ---------------------------------------------------------------- one recipient


@dataclass(frozen=True)
class DigestLinks:
    unsubscribe: str
    preferences: str
    archive: str | None  # None on the archive page itself
    #: the reader's vote link without its last parts: a card's "More like this" and "Less like this"
    #: links are ``<vote>/<paper id>/more`` and ``…/less``; None: cards without them
    vote: str | None = None


def vote_links(settings: Settings, subscriber_public_id: str) -> str:
    """The start of a reader's "More like this" / "Less like this" links, ``/vote/<token>``; a card
    adds ``/<paper id>/<more|less>``.

    One signature per reader (the token signs the reader; the paper and the way are plain path
    parts, checked when the vote arrives: only papers of that reader's sent digests count, and
    either way is theirs to choose), so a digest's cards cost string joins, not 20 HMACs.
    """
    return tokens.link(settings, "vote", subscriber_public_id)


def links_for(settings: Settings, subscriber_public_id: str, delivery_public_id: str | None) -> DigestLinks:
    return DigestLinks(
        unsubscribe=tokens.link(settings, "unsubscribe", subscriber_public_id),
        preferences=tokens.link(settings, "preferences", subscriber_public_id),
        archive=tokens.link(settings, "archive", delivery_public_id) if delivery_public_id else None,
        vote=vote_links(settings, subscriber_public_id),
    )


@dataclass(frozen=True)
class Reader:
    """Who a digest is for, as the footer explains it."""

    email: str
    frequency: str
    timezone: str
    delivery_hour: int
    filters: tuple[str, ...]


def preview_line(titles: Sequence[str], count: int) -> str:
    """The inbox preview: the top two titles, and how many more papers there are."""
    more = count - len(titles)
    return " · ".join(titles) + (f" · and {more} more" if more > 0 else "")


def lead_label(window: tuple[date, date], frequency: str) -> str:
    if window[0] >= window[1]:
        return "#1 today"
    return "#1 this week" if frequency == "weekly" else "#1 in this digest"


def digest_context(
    blocks: PaperBlocks,
    picks: Sequence[Pick],
    reader: Reader,
    window: tuple[date, date],
    links: DigestLinks,
) -> dict:
    """The digest's template context; paper blocks come pre-rendered from ``blocks``.

    Picks marked ``also`` (outside the reader's filters, chosen by their taste) go to a "You may
    also like" block after their section's papers, numbered on from them. With picks of the "New on
    arXiv" section, ``sections`` holds the sections that have papers, each its heading, note and
    cards; without, it is empty, and ``cards`` and ``also_cards`` are the digest as it was before
    arXiv was a source."""
    laid_out = digest_sections(picks, reader.filters, blocks.categories)
    trending, arxiv = laid_out[0].picks, laid_out[1].picks
    main = laid_out[0].shown + laid_out[1].shown
    count = len(main)
    label = lead_label(window, reader.frequency)
    lead = main[0] if main else None  # the first card: its thumbnail large
    titles = [_block(blocks, p, p is lead).title for p in main[:2]]
    sections = []
    for s in laid_out:
        shown, also, number = s.shown, s.also, s.first
        sections.append(
            {
                "picks": s.picks,
                "heading": s.heading,
                "note": ARXIV_NOTE if s.section == ARXIV else TRENDING_NOTE,
                "cards": cards_of(blocks, ((_block(blocks, p, p is lead), p) for p in shown), number, links.vote, label, s.reason),
                "also": bool(also),
                "also_cards": cards_of(blocks, ((_block(blocks, p), p) for p in also), number + len(shown), links.vote, label),
            }
        )
    first = sections[0]
    if arxiv:
        n_trending = sum(not p.also for p in trending)
        n_arxiv = count - n_trending
        if n_trending:
            subject = f"{n_trending} trending paper{'' if n_trending == 1 else 's'}, {n_arxiv} new on arXiv"
        else:
            subject = f"{n_arxiv} new paper{'' if n_arxiv == 1 else 's'} on arXiv"
        heading = f"{count} paper{'' if count == 1 else 's'} for you"
        sections = [section for section in sections if section["picks"]]
    else:  # the trending papers alone: the digest as it was before arXiv was a source
        heading = f"{count} trending paper{'' if count == 1 else 's'} for you"
        subject = heading.removesuffix(" for you")
        sections = []
    return {
        "count": count,
        "subject": subject,
        "top_title": titles[0] if titles else "",
        "preview": preview_line(titles, count),
        "preheader_pad": PREHEADER_PAD,
        "heading": heading,
        "window": window_label(*window),
        "lead_label": label,
        # the cards, numbered, each with why it is there and its vote links, in the digest's order
        "cards": first["cards"],
        "also": first["also"],
        "also_cards": first["also_cards"],
        # with papers new on arXiv: the two sections, each its heading, note and cards as above
        "sections": sections,
        "email": reader.email,
        "frequency": reader.frequency,
        "when": f"{'Mondays' if reader.frequency == 'weekly' else 'every day'} at {reader.delivery_hour:02d}:00 ({reader.timezone})",
        "filters": reader.filters,
        "unsubscribe_url": links.unsubscribe,
        "preferences_url": links.preferences,
        "archive_url": links.archive,
    }


@dataclass(frozen=True)
class DigestSection:
    """One of a digest's two sections as the email lays it out: "trending" (Hugging Face Daily
    Papers), then "arxiv" (new on arXiv); its papers, those shown under its heading then its "You
    may also like" ones, numbered on from ``first``."""

    section: str
    picks: list[Pick]
    shown: list[Pick]
    also: list[Pick]
    first: int  # the number of its first card
    heading: str
    #: the "New on arXiv" section's: for each pick (by ``id``), the category that brought it and its heading's labels
    reasons: dict[int, tuple[str | None, tuple]]

    @property
    def reason(self) -> Callable[[Pick], str | None] | None:
        """The arXiv category that brought a pick of this section (its why line says "new in …"); None outside it."""
        reasons = self.reasons
        return (lambda pick: reasons[id(pick)][0]) if reasons else None


def digest_sections(picks: Sequence[Pick], filters: Sequence[str], categories: Sequence[str] = ()) -> tuple[DigestSection, DigestSection]:
    """The digest's sections, trending then arXiv (either may be empty), as the email lays out
    ``picks`` for a reader with these filter lines (the operator's arXiv categories spell the arXiv
    section's heading): what :func:`digest_context` renders, and :func:`listed_papers` lists."""
    out = []
    number = 1
    for section in ("trending", ARXIV):
        section_picks = [p for p in picks if (p.section == ARXIV) == (section == ARXIV)]
        shown = [p for p in section_picks if not p.also]
        also = [p for p in section_picks if p.also]
        reasons = category_reasons(shown, filters, categories) if section == ARXIV and shown else {}
        heading = arxiv_heading(shown, reasons) if section == ARXIV else TRENDING_HEADING
        out.append(DigestSection(section, section_picks, shown, also, number, heading, reasons))
        number += len(section_picks)
    return out[0], out[1]


@dataclass(frozen=True)
class Listed:
    """A paper as a digest lists it: its number, its pick, the line under it (the filter that
    matched and why, or "outside your filters" and why), and the heading of its section when the
    digest has two (None when it has the trending papers alone, as the email shows no heading then)."""

    number: int
    pick: Pick
    line: str
    heading: str | None


def listed_papers(picks: Sequence[Pick], filters: Sequence[str], categories: Sequence[str] = ()) -> list[Listed]:
    """The papers of a digest in the email's order, with the numbers and the lines its cards print
    (:func:`digest.mail.cards.card_why`): for pages and feeds that list a digest without its HTML."""
    sections = digest_sections(picks, filters, categories)
    two = bool(sections[1].picks)
    out = []
    for s in sections:
        reason = s.reason
        for number, pick in enumerate(s.shown + s.also, s.first):
            why = card_why(pick, reason(pick) if reason is not None and not pick.also else None)
            line = (f"{ALSO_LINE} · {why}" if why else ALSO_LINE) if pick.also else why
            out.append(Listed(number, pick, line, s.heading if two else None))
    return out


def _block(blocks: PaperBlocks, pick: Pick, lead: bool = False):
    """The pick's paper block, as its section shows it."""
    if pick.section == ARXIV:
        return blocks.get(pick.paper, lead=lead, section=ARXIV)
    return blocks.get(pick.paper, lead=lead)


# ---------------------------------------------------------------- the "New on arXiv" section


def category_reasons(picks: Sequence[Pick], filters: Sequence[str], configured: Sequence[str] = ()) -> dict[int, tuple[str | None, tuple]]:
    """For each pick of the "New on arXiv" section (by ``id(pick)``): the category that brought it,
    as its why line names it ("cs.CL"), and the labels it gives the section's heading, each with
    where it sorts: the categories its filter line names (not excluded) that the paper is in, an
    archive's as ``cs.*``; for a line naming none of the paper's (``source:arxiv``), its primary
    category. Categories are spelled as the operator configured them (``configured``) when they
    match whatever the case, else as arXiv spells the paper's."""
    spelled = {c.lower(): c for c in configured}
    lines = {text: i for i, text in reversed(list(enumerate(filters)))}
    out: dict[int, tuple[str | None, tuple]] = {}
    for k, pick in enumerate(picks):
        paper = pick.paper
        primary = primary_category(paper)
        categories = [c for c in paper.categories or () if c] or ([primary] if primary else [])
        by_lower = {c.lower(): spelled.get(c.lower(), c) for c in categories}
        primary_lower = primary.lower() if primary else None
        labels: list[tuple[str, tuple]] = []
        reason = None
        for t, (term, negated) in enumerate(_category_terms(pick.matched)):
            if negated:
                continue
            (word,) = term.words
            if term.op == "*":
                hits = [c for c in by_lower if c.startswith(word)]
                if hits:
                    labels.append((word + "*", (0, lines.get(pick.matched, len(lines)), t)))
                    reason = reason or by_lower[primary_lower if primary_lower in hits else hits[0]]
            elif word in by_lower:
                labels.append((by_lower[word], (0, lines.get(pick.matched, len(lines)), t)))
                reason = reason or by_lower[word]
        if not labels and primary:
            reason = spelled.get(primary.lower(), primary)
            labels.append((reason, (1, k, 0)))
        out[id(pick)] = (reason, tuple(labels))
    return out


@functools.lru_cache(maxsize=16384)
def _category_terms(line: str | None) -> tuple:
    """The ``cat:`` terms of a filter line, with whether each is excluded; none for no line (or one
    that no longer parses). Once per line and process: every card of the "New on arXiv" section
    asks for its line's, and a day's lines are few beside its cards."""
    if not line or "cat:" not in line.lower():
        return ()
    try:
        expr = parse_filter(line).expr
    except FilterError:
        return ()
    return tuple((term, negated) for term, negated in terms_of(expr) if term.field == "cat")


def arxiv_heading(picks: Sequence[Pick], reasons: dict[int, tuple[str | None, tuple]]) -> str:
    """The "New on arXiv" section's heading, "New on arXiv in cs.CL, cs.LG": the categories the
    reader's lines named that brought the section's papers, in the order of their lines; for the
    papers a line naming no category brought (``source:arxiv``), their primary categories, the most
    frequent first. An archive (``cs.*``) stands for its categories; beyond
    :data:`MAX_HEADING_CATEGORIES`, the rest are counted."""
    named: dict[str, tuple] = {}
    frequency: Counter[str] = Counter()
    for pick in picks:
        for label, order in reasons.get(id(pick), (None, ()))[1]:
            if order[0] == 1:
                frequency[label] += 1
            if label not in named or order < named[label]:
                named[label] = order
    archives = [label[:-1].lower() for label in named if label.endswith(".*")]
    labels = sorted(
        (label for label in named if named[label][0] == 0 or not any(label.lower().startswith(a) for a in archives)),
        key=lambda label: (named[label][0], -frequency[label], named[label][1:]),
    )
    if not labels:
        return ARXIV_HEADING
    shown, more = labels[:MAX_HEADING_CATEGORIES], len(labels) - MAX_HEADING_CATEGORIES
    return f"{ARXIV_HEADING} in {', '.join(shown)}" + (f" and {more} more" if more > 0 else "")


def render_digest(context: dict, email_templates: EmailTemplates | None = None) -> Rendered:
    return (email_templates or templates()).render(TEMPLATE, context)


def message_id(settings: Settings, delivery_public_id: str) -> str:
    """Stable per delivery: a retry carries the same Message-ID, so receivers can drop a duplicate."""
    return f"digest.{delivery_public_id}@{settings.mail_domain}"


class DigestMailer:
    """What one batch shares: the compiled templates, the paper blocks, the sender's headers."""

    def __init__(self, settings: Settings, email_templates: EmailTemplates | None = None, eight_bit: bool = False) -> None:
        self.settings = settings
        # the batch's SMTP server takes 8-bit text (``Transport.eight_bit``); never when signing: a relay
        # that cannot pass 8-bit on re-encodes the part and breaks the signature (RFC 6376 5.3)
        self.eight_bit = eight_bit and not settings.dkim
        self.templates = email_templates or templates()
        self.blocks = PaperBlocks(self.templates, settings.arxiv_categories)
        self.sender = settings.mail_from_address
        self.list_id = list_id(settings)
        self.signer = Signer(settings.dkim)

    def render(self, picks: Sequence[Pick], reader: Reader, window: tuple[date, date], links: DigestLinks) -> tuple[Rendered, list[Pick]]:
        """The digest, and the picks it shows: the last ones are dropped if the HTML would pass
        :data:`MAX_HTML_BYTES` (only possible with a large ``DIGEST_DIGEST_SIZE``)."""
        shown = list(picks)
        while True:
            rendered = render_digest(digest_context(self.blocks, shown, reader, window, links), self.templates)
            if len(rendered.html) * 4 <= MAX_HTML_BYTES:  # UTF-8 is at most 4 bytes a character: no need to encode it to know
                return rendered, shown
            size = len(rendered.html.encode("utf-8"))
            if size <= MAX_HTML_BYTES or len(shown) <= 1:
                return rendered, shown
            per_paper = size / len(shown)
            shown = shown[: max(1, len(shown) - max(1, math.ceil((size - MAX_HTML_BYTES) / per_paper)))]

    def message(
        self,
        rendered: Rendered,
        to: str,
        delivery_public_id: str,
        links: DigestLinks,
        when: datetime | None = None,
    ) -> bytes:
        """The digest as it goes on the wire: MIME bytes, DKIM-signed when keys are configured."""
        data = rendered.message(
            self.sender,
            to,
            message_id(self.settings, delivery_public_id),
            {
                "List-Unsubscribe": f"<{links.unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "List-Id": self.list_id,
                "Feedback-ID": feedback_id(self.settings, "digest", when),
            },
            date=when.timestamp() if when is not None else None,
            eight_bit=self.eight_bit,
        )
        return self.signer.sign(data)
