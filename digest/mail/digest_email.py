"""The digest email: a context per recipient around the paper cards (:mod:`digest.mail.cards`), and
the message.

Rendering cost is dominated by what is done per recipient, so each paper's card is made once
(:mod:`digest.mail.cards`), and the Jinja render of ``email_templates/digest`` per recipient is only
the frame around the cards — the inbox preview line, the heading, the "You may also like" heading,
the footer and its signed links. The first card has a block of its own (its thumbnail large),
rendered once too; the "#1 today" label goes on the card of the window's most upvoted paper, wherever
the reader's order puts it, and "for you" on a paper that order moved up (:func:`cards_of`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from markupsafe import Markup

from digest import tokens
from digest.config import Settings
from digest.mail.cards import TEMPLATE, PaperBlocks, cards_of
from digest.mail.templates import EmailTemplates, Rendered, templates
from digest.matching.select import Pick

MAX_HTML_BYTES = 100_000  # Gmail clips a message's HTML above ~102 KB
#: After the inbox preview line: invisible characters that keep clients from filling the preview
#: with the email's first lines ("Trending Papers 10 trending papers for you …").
PREHEADER_PAD = Markup("&#847;&zwnj;&nbsp;" * 15)


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
    also like" block after the digest's papers, numbered on from them."""
    main = [p for p in picks if not p.also]
    count = len(main)
    label = lead_label(window, reader.frequency)
    shown = [blocks.get(p.paper, lead=i == 0) for i, p in enumerate(main)]
    also = [p for p in picks if p.also]
    cards = cards_of(blocks, zip(shown, main), 1, links.vote, label)
    also_cards = cards_of(blocks, ((blocks.get(p.paper), p) for p in also), count + 1, links.vote, label)
    return {
        "count": count,
        "top_title": shown[0].title if shown else "",
        "preview": preview_line([block.title for block in shown[:2]], count),
        "preheader_pad": PREHEADER_PAD,
        "heading": f"{count} trending paper{'' if count == 1 else 's'} for you",
        "window": window_label(*window),
        "lead_label": label,
        # the cards, numbered, each with why it is there and its vote links, in the digest's order
        "cards": cards,
        "also": bool(also),
        "also_cards": also_cards,
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

    def __init__(self, settings: Settings, email_templates: EmailTemplates | None = None, eight_bit: bool = False) -> None:
        self.settings = settings
        self.eight_bit = eight_bit  # the batch's SMTP server takes 8-bit text (``Transport.eight_bit``)
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
            eight_bit=self.eight_bit,
        )
