"""The web archive of a sent digest ("view in browser"): ``/digest/<signed token>``.

Rendered from the ledger (the delivery's items: the papers it showed and the filter each matched)
with the email's own templates, so the page shows what the email showed. :func:`sent_digests` is
the one way back from the ledger to a sent digest's papers, order and why lines: the reader's Atom
feed (:mod:`digest.web.feeds`) lists them through it too. The email's HTML needs its
inline styles, so this page has its own Content-Security-Policy allowing them and nothing else: no
script, no form, no framing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date

from flask import Flask, current_app, make_response
from flask_limiter import Limiter
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from digest import tokens
from digest.config import Settings
from digest.db import session_scope
from digest.mail.digest_email import DigestMailer, Reader, links_for
from digest.mail.templates import Rendered
from digest.matching.select import Pick, lifted_indexes
from digest.matching.trending import window_candidates
from digest.models import Delivery, DeliveryItem, DeliveryStatus, Subscriber
from digest.web.site import error_page

ARCHIVE_CSP = "; ".join(
    [
        "default-src 'none'",
        "style-src 'unsafe-inline'",  # the email's inline styles and its <style> (dark mode, phones)
        "img-src 'self' https: data:",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)


@dataclass(frozen=True)
class SentDigest:
    """A sent digest as the ledger holds it, ready to be shown again: its row, its papers in the
    order they were sent (each with the filter that matched it, its section and its marks as the
    email had them), the reader as its footer described them, its Daily Papers days."""

    delivery: Delivery
    picks: list[Pick]
    reader: Reader
    window: tuple[date, date]


def sent_digests(session: Session, *where, newest: int | None = None, marks: bool = True) -> list[SentDigest]:
    """The sent digests ``where`` selects (conditions on :class:`Delivery`), rebuilt from the ledger;
    with ``newest``, that many of them, the last sent first. The one way a page or a feed gets a
    sent digest's papers, their order and their why lines. ``marks=False``: without the "#1" and
    "for you" marks (they need each digest's window loaded; a feed shows neither)."""
    query = (
        select(Delivery)
        .where(Delivery.status == DeliveryStatus.sent, *where)
        .options(
            selectinload(Delivery.items).joinedload(DeliveryItem.paper),
            joinedload(Delivery.subscriber).selectinload(Subscriber.filters),
        )
    )
    if newest is not None:
        query = query.order_by(Delivery.sent_at.desc(), Delivery.id.desc()).limit(newest)
    return [_rebuilt(session, delivery, marks) for delivery in session.scalars(query)]


def _rebuilt(session: Session, delivery: Delivery, marks: bool) -> SentDigest:
    subscriber = delivery.subscriber
    reader = Reader(
        subscriber.email,
        subscriber.frequency.value,
        subscriber.timezone,
        subscriber.delivery_hour,
        tuple(f.text for f in subscriber.filters),
    )
    # With filters every paper of the digest has the filter that matched it; then one without is
    # a "You may also like" paper (outside the filters). Without filters, none has one.
    # The "#1" pill and the "for you" marks as the email had them: the window's most upvoted paper,
    # and the papers placed above a more upvoted one (trending papers only: arXiv's new ones had no
    # upvotes then).
    # The section is not stored: a paper of a Daily Papers day of the window was a trending one
    # (the "New on arXiv" section's candidates are the papers that were not), any other one was
    # new on arXiv then (it has no Daily Papers day, or trended on a later day).
    filtered = any(item.matched_filter is not None for item in delivery.items)
    top = None
    if marks:
        window = window_candidates(session, delivery.window_start, delivery.window_end)
        top = window.papers[0].id if window.papers else None
    picks = []
    for item in delivery.items:
        day = item.paper.daily_date
        section = "trending" if day is not None and delivery.window_start <= day <= delivery.window_end else "arxiv"
        picks.append(
            Pick(
                item.paper,
                item.matched_filter,
                item.why,
                also=filtered and item.matched_filter is None,
                top=item.paper_id == top,
                section=section,
            )
        )
    if marks:
        ranked = [k for k, pick in enumerate(picks) if not pick.also and pick.section == "trending"]
        for i in lifted_indexes([picks[k].paper.upvotes for k in ranked]):
            picks[ranked[i]] = replace(picks[ranked[i]], lifted=True)
    return SentDigest(delivery, picks, reader, (delivery.window_start, delivery.window_end))


def render_sent(settings: Settings, sent: SentDigest, mailer: DigestMailer | None = None) -> Rendered:
    """The sent digest as its email rendered it, without its "view in browser" link."""
    links = links_for(settings, sent.delivery.subscriber.public_id, None)  # no "view in browser" on the page itself
    rendered, _ = (mailer or DigestMailer(settings)).render(sent.picks, sent.reader, sent.window, links)
    return rendered


def archived_digest(session: Session, settings: Settings, delivery_public_id: str) -> Rendered | None:
    """The sent digest ``delivery_public_id`` rendered again from the ledger; None if there is none."""
    found = sent_digests(session, Delivery.public_id == delivery_public_id)
    return render_sent(settings, found[0]) if found else None


def archive(token: str):
    settings: Settings = current_app.config["DIGEST_SETTINGS"]
    try:
        public_id = tokens.read_token(settings, "archive", token)
    except tokens.BadToken:
        return error_page(
            400,
            "This link doesn't work",
            "It may have been copied incompletely. Open the digest from its email and use “View in browser” again.",
        )
    with session_scope(settings) as session:
        rendered = archived_digest(session, settings, public_id)
    if rendered is None:
        return error_page(404, "This digest is not available", "It was never sent, or it has been deleted.")
    response = make_response(rendered.html)
    response.headers["Content-Security-Policy"] = ARCHIVE_CSP
    response.headers["X-Robots-Tag"] = "noindex"
    return response


def register(app: Flask, limiter: Limiter, settings: Settings) -> None:
    limit = settings.extra.get("rate_limit_links", "30 per minute; 300 per hour")
    app.add_url_rule("/digest/<token>", "archive", limiter.limit(limit, override_defaults=False)(archive))
