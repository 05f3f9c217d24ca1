"""Feeds: each reader's digests as an Atom feed at a signed URL, the top papers of each Daily Papers
day as a public Atom feed, and a public page per day.

    /feed/<signed token>     a reader's last sent digests, one entry per digest (private)
    /feed.atom               the latest Daily Papers days, one entry per day (public)
    /archive/YYYY-MM-DD      a day's top papers in trending order, with the days before and after
    /archive                 the latest day

A reader's feed lists what their emails listed: the digests are rebuilt from the ledger by
:func:`digest.web.archive.sent_digests`, the code path of "view in browser", and laid out by
:func:`digest.mail.digest_email.listed_papers`, the email's own order and why lines; each entry is
titled with the email's subject and links to the digest's "view in browser" page. Only an active
reader's feed answers; one who left gets a 410 and nothing of theirs.

The Atom is made by feedgen. Every answer carries an ETag and a Last-Modified, and a repeat with
If-None-Match or If-Modified-Since gets a 304 (Werkzeug's ``make_conditional``). A reader's feed
is answered 304 before it is built: its ETag is a digest of what it is made from (its digests, their
papers' last update, the reader's lines), since the links to the digests' pages are signed afresh
on each build; the public feed's and the day page's are a digest of their bytes.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import date, datetime, timezone
from urllib.parse import urlsplit

from feedgen.feed import FeedGenerator
from flask import Flask, Response, current_app, redirect, render_template, request, url_for
from flask_limiter import Limiter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest import tokens
from digest.config import Settings
from digest.db import session_scope
from digest.mail.digest_email import DigestMailer, listed_papers, window_label
from digest.matching.trending import in_trending_order
from digest.models import Delivery, DeliveryItem, DeliveryStatus, Paper, Subscriber, SubscriberState
from digest.subscribers.subscriptions import by_public_id
from digest.web import papers
from digest.web.archive import SentDigest, render_sent, sent_digests
from digest.web.site import error_page

FEED_DIGESTS = 20  # a reader's feed: their last sent digests
FEED_DAYS = 7  # the public feed: the latest Daily Papers days
DAY_PAPERS = 30  # a day's page: its most upvoted papers (the public feed's entry lists the digest's size of them)
ATOM = "application/atom+xml; charset=utf-8"
GENERATOR = "Trending Papers digest"
#: a reader's feed: kept by their own feed reader only, and asked again each time (the ETag makes that cheap)
PRIVATE_CACHE = "private, no-cache"
PUBLIC_CACHE = "public, max-age=900"  # the public feed and the day pages: a new ingest shows within 15 minutes
#: Bumped when what a reader's feed shows of the same rows changes (its ETag is made from the rows).
READER_FEED_FORMAT = 1
NEVER = datetime(1970, 1, 1, tzinfo=timezone.utc)  # the "updated" of a feed with nothing in it yet
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
#: What XML 1.0 cannot carry (C0 controls but tab and line ends, lone surrogates, U+FFFE/U+FFFF): lxml refuses them
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _settings() -> Settings:
    return current_app.config["DIGEST_SETTINGS"]


def xml_text(value: str) -> str:
    """``value`` without the characters XML cannot carry (paper data is untrusted)."""
    return _NOT_XML.sub("", value)


def tag_uri(settings: Settings, day: date, specific: str) -> str:
    """A stable Atom id (RFC 4151): ``tag:digest.example.org,2026-11-30:digest/<public id>``."""
    host = urlsplit(settings.base_url).hostname or "localhost"
    return f"tag:{host},{day.isoformat()}:{specific}"


def reader_feed_url(settings: Settings, subscriber_public_id: str) -> str:
    """The signed URL of a reader's Atom feed (it never expires: a feed reader keeps it)."""
    return tokens.link(settings, "feed", subscriber_public_id)


def _atom(settings: Settings, feed_id: str, title: str, subtitle: str, self_url: str, alternate: str, updated: datetime) -> FeedGenerator:
    feed = FeedGenerator()
    feed.id(feed_id)
    feed.title(title)
    feed.subtitle(subtitle)
    feed.link(href=self_url, rel="self", type="application/atom+xml")
    feed.link(href=alternate, rel="alternate", type="text/html")
    feed.author(name="Trending Papers", uri=settings.base_url + "/")
    feed.generator(GENERATOR, uri=settings.base_url + "/")
    feed.updated(updated)
    return feed


def _atom_response(body: bytes | None, cache: str) -> Response:
    response = Response(body or b"", content_type=ATOM)
    response.headers["Cache-Control"] = cache
    return response


# ---------------------------------------------------------------- a reader's feed


def _reader_version(session: Session, settings: Settings, subscriber: Subscriber) -> tuple[list[int], datetime, str]:
    """The ids of the reader's last sent digests (newest first), when the feed last changed (the
    last send, or a later update of one of their papers), and an ETag for it: what the feed is made
    from, read in two small queries, without building it."""
    rows = session.execute(
        select(Delivery.id, Delivery.public_id, Delivery.sent_at)
        .where(Delivery.subscriber_id == subscriber.id, Delivery.status == DeliveryStatus.sent)
        .order_by(Delivery.sent_at.desc(), Delivery.id.desc())
        .limit(FEED_DIGESTS)
    ).all()
    ids = [row.id for row in rows]
    touched = None
    if ids:
        touched = session.scalar(
            select(func.max(Paper.updated_at))
            .join(DeliveryItem, DeliveryItem.paper_id == Paper.id)
            .where(DeliveryItem.delivery_id.in_(ids))
        )
    moments = [row.sent_at for row in rows if row.sent_at is not None] + ([touched] if touched is not None else [])
    changed = max(moments, default=subscriber.confirmed_at or subscriber.created_at or NEVER)
    made_of = repr(
        (
            READER_FEED_FORMAT,
            [(row.public_id, row.sent_at.isoformat() if row.sent_at else None) for row in rows],
            touched.isoformat() if touched else None,
            [f.text for f in subscriber.filters],
            settings.base_url,
            settings.arxiv_categories,
        )
    )
    return ids, changed, hashlib.sha256(made_of.encode("utf-8")).hexdigest()[:32]


def reader_feed_xml(settings: Settings, subscriber: Subscriber, digests: Sequence[SentDigest], updated: datetime) -> bytes:
    """The reader's digests as Atom, newest first: one entry per digest, titled as its email was,
    its papers in the email's order with their why lines, linking to its "view in browser" page."""
    url = reader_feed_url(settings, subscriber.public_id)
    feed = _atom(
        settings,
        url,
        "Your Trending Papers digests",
        "The papers of your last digests, as the emails listed them.",
        url,
        settings.base_url + "/",
        updated,
    )
    mailer = DigestMailer(settings)
    for sent in digests:
        delivery = sent.delivery
        sent_at = delivery.sent_at or delivery.scheduled_for
        archive_url = tokens.link(settings, "archive", delivery.public_id)
        listed = listed_papers(sent.picks, sent.reader.filters, settings.arxiv_categories)
        content = render_template(
            "feed_digest.html",
            window=window_label(*sent.window),
            sections=_sections(listed),
            archive_url=archive_url,
            papers=papers,
        )
        entry = feed.add_entry(order="append")
        entry.id(tag_uri(settings, sent_at.date(), f"digest/{delivery.public_id}"))
        entry.title(xml_text(render_sent(settings, sent, mailer).subject))
        entry.link(href=archive_url, rel="alternate", type="text/html")
        entry.content(xml_text(content), type="html")
        entry.published(sent_at)
        entry.updated(sent_at)
    return feed.atom_str(pretty=True)


def _sections(listed) -> list[tuple[str | None, list]]:
    """The listed papers in runs of one section heading (one run, headed None, for a digest of trending papers alone)."""
    runs: list[tuple[str | None, list]] = []
    for item in listed:
        if not runs or runs[-1][0] != item.heading:
            runs.append((item.heading, []))
        runs[-1][1].append(item)
    return runs


def reader_feed(token: str):
    settings = _settings()
    try:
        public_id = tokens.read_token(settings, "feed", token)
    except tokens.BadToken:
        return error_page(
            404, "This feed doesn't exist", "The link may have been copied incompletely. Copy it again from your preferences page."
        )
    with session_scope(settings) as session:
        subscriber = by_public_id(session, public_id)
        if subscriber is None or subscriber.state == SubscriberState.pending:
            return error_page(404, "This feed doesn't exist", "It starts with your first digest, once your subscription is confirmed.")
        if subscriber.state != SubscriberState.active:
            return error_page(
                410, "This feed has ended", "This address is no longer subscribed. Subscribe again on the home page to get it back."
            )
        ids, changed, etag = _reader_version(session, settings, subscriber)
        response = _atom_response(None, PRIVATE_CACHE)
        response.set_etag(etag, weak=True)  # the same papers and lines; its signed links are made afresh on each build
        response.last_modified = changed
        response.headers["X-Robots-Tag"] = "noindex"
        response.make_conditional(request)
        if response.status_code == 304:
            return response
        digests = sent_digests(session, Delivery.id.in_(ids), newest=FEED_DIGESTS, marks=False) if ids else []
        response.set_data(reader_feed_xml(settings, subscriber, digests, changed))
    return response


# ---------------------------------------------------------------- the public feed and the day pages


def latest_days(session: Session, count: int) -> list[date]:
    """The latest ``count`` Daily Papers days that have a paper, newest first."""
    return list(
        session.scalars(
            select(Paper.daily_date)
            .where(Paper.daily_date.is_not(None), Paper.withdrawn.is_(False))
            .distinct()
            .order_by(Paper.daily_date.desc())
            .limit(count)
        )
    )


def day_papers(session: Session, day: date) -> list[Paper]:
    """The papers of Daily Papers day ``day`` (but one arXiv withdrew), in trending order."""
    return in_trending_order(session.scalars(select(Paper).where(Paper.daily_date == day, Paper.withdrawn.is_(False))).all())


def _last_update(papers_: Sequence[Paper]) -> datetime:
    return max((p.updated_at for p in papers_ if p.updated_at is not None), default=NEVER)


def _conditional(response: Response, last_modified: datetime) -> Response:
    response.add_etag()
    response.last_modified = last_modified
    return response.make_conditional(request)


def public_feed():
    settings = _settings()
    base = settings.base_url
    with session_scope(settings) as session:
        days = [(day, day_papers(session, day)) for day in latest_days(session, FEED_DAYS)]
        updated = max((_last_update(shown) for _, shown in days), default=NEVER)
        feed = _atom(
            settings,
            base + url_for("public_feed"),
            "Trending Papers: the top papers of each day",
            "The most upvoted papers of each Hugging Face Daily Papers day.",
            base + url_for("public_feed"),
            base + url_for("archive_latest"),
            updated,
        )
        for day, day_list in days:
            top = day_list[: settings.digest_size]
            url = base + url_for("archive_day", day=day.isoformat())
            content = render_template("feed_day.html", papers=papers, shown=top, total=len(day_list), url=url)
            entry = feed.add_entry(order="append")
            entry.id(url)  # the day's page: a permanent URL
            entry.title(xml_text(f"{window_label(day, day)}: {papers.card(top[0])['title']}"))
            entry.link(href=url, rel="alternate", type="text/html")
            entry.content(xml_text(content), type="html")
            entry.published(min((p.first_seen_at for p in day_list if p.first_seen_at is not None), default=NEVER))
            entry.updated(_last_update(day_list))
        body = feed.atom_str(pretty=True)
    return _conditional(_atom_response(body, PUBLIC_CACHE), updated)


def _no_day(message: str):
    return error_page(404, "No papers for that day", message)


def archive_day(day: str):
    settings = _settings()
    if not _DAY.fullmatch(day):
        return _no_day("Days are written YYYY-MM-DD, as in /archive/2026-11-29.")
    try:
        wanted = date.fromisoformat(day)
    except ValueError:
        return _no_day(f"{day} is not a date.")
    with session_scope(settings) as session:
        listed = day_papers(session, wanted)
        if not listed:
            return _no_day(f"Hugging Face Daily Papers has nothing for {window_label(wanted, wanted)} here.")
        before = session.scalar(select(func.max(Paper.daily_date)).where(Paper.daily_date < wanted, Paper.withdrawn.is_(False)))
        after = session.scalar(select(func.min(Paper.daily_date)).where(Paper.daily_date > wanted, Paper.withdrawn.is_(False)))
        # the page changes when its papers do, and when a day after it arrives (its "next" link)
        changed = session.scalar(select(func.max(Paper.updated_at)).where(Paper.daily_date.in_([d for d in (before, wanted, after) if d])))
        page = render_template(
            "archive_day.html",
            day=wanted,
            label=window_label(wanted, wanted),
            shown=listed[:DAY_PAPERS],
            total=len(listed),
            before=before,
            after=after,
            papers=papers,
            label_of=lambda d: window_label(d, d),
        )
    response = Response(page, mimetype="text/html")
    response.headers["Cache-Control"] = PUBLIC_CACHE
    return _conditional(response, changed or NEVER)


def archive_latest():
    settings = _settings()
    with session_scope(settings) as session:
        latest = latest_days(session, 1)
    if not latest:
        return _no_day("There are no papers yet: they arrive with the next fetch from Daily Papers.")
    return redirect(url_for("archive_day", day=latest[0].isoformat()), 302)


def register(app: Flask, limiter: Limiter, settings: Settings) -> None:
    extra = settings.extra
    # feed readers poll, and an aggregator polls many readers' feeds from one address
    feed_limit = extra.get("rate_limit_feeds", "60 per minute; 1000 per hour")
    link_limit = extra.get("rate_limit_links", "30 per minute; 300 per hour")

    def limited(value: str, view):
        return limiter.limit(value, override_defaults=False)(view)

    rule = app.add_url_rule
    rule("/feed/<token>", "reader_feed", limited(feed_limit, reader_feed))
    rule("/feed.atom", "public_feed", limited(feed_limit, public_feed))
    rule("/archive", "archive_latest", limited(link_limit, archive_latest))
    rule("/archive/<day>", "archive_day", limited(link_limit, archive_day))
    # the preferences page shows an active reader the link: {{ reader_feed_url(subscriber) }}
    app.add_template_global(lambda subscriber: reader_feed_url(settings, subscriber.public_id), "reader_feed_url")
