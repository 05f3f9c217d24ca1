"""Helpers for the digest tests (test_compose, test_emails, test_deliver, test_archive); no tests here.

Papers and subscribers are inserted as rows, as ingest and the subscription pages would leave them;
``expected_picks`` is the plain reference the sent digests are checked against: every filter
evaluated on every paper with ``Filter.matches``, sorted by trending, no index involved.
"""

from __future__ import annotations

import asyncio
import os
import re
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.compose import paper_text
from digest.config import Settings, SmtpSettings
from digest.models import Delivery, DeliveryItem, DeliveryStatus, Paper, Subscriber, SubscriberState, TopicFilter
from digest.topics import parse_filter
from support import SmtpServer

UTC = timezone.utc
AT = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # a Monday, 07:00 UTC
DAY = date(2026, 11, 29)  # the Daily Papers day that had ended at AT
PAPER_LINK = re.compile(r"https://huggingface\.co/papers/([0-9A-Za-z./-]+)\"")


def add_paper(session: Session, arxiv_id: str, title: str, day: date = DAY, upvotes: int = 0, **fields) -> Paper:
    fields.setdefault("abstract", f"About {title.lower()}.")
    fields.setdefault("authors", ["Ada Lovelace", "Alan Turing"])
    paper = Paper(arxiv_id=arxiv_id, title=title, daily_date=day, upvotes=upvotes, **fields)
    session.add(paper)
    session.flush()
    return paper


def add_subscriber(
    session: Session,
    email: str,
    filters: tuple[str, ...] | list[str] = (),
    *,
    frequency: str = "daily",
    tz: str = "UTC",
    hour: int = 7,
    due: datetime | None = AT,
    state: SubscriberState = SubscriberState.active,
) -> Subscriber:
    subscriber = Subscriber(
        email=email,
        state=state,
        frequency=frequency,
        timezone=tz,
        delivery_hour=hour,
        next_due_at=due,
        confirmed_at=AT - timedelta(days=30),
    )
    subscriber.filters = [TopicFilter(position=i, text=text) for i, text in enumerate(filters)]
    session.add(subscriber)
    session.flush()
    return subscriber


def with_smtp(settings: Settings, server: SmtpServer) -> Settings:
    return settings.with_(smtp=SmtpSettings(host=server.host, port=server.port, timeout=10))


def trending_key(paper: Paper) -> tuple:
    published = paper.published_at.timestamp() if paper.published_at else float("-inf")
    return (-paper.upvotes, -paper.daily_date.toordinal(), -published, paper.arxiv_id)


def expected_picks(
    session: Session, subscriber: Subscriber, start: date, end: date, size: int = 10
) -> list[tuple[str, str | None]]:
    """(arxiv id, matched filter) a digest over ``start..end`` must show: the plain reference."""
    sent = set(
        session.scalars(
            select(DeliveryItem.paper_id)
            .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
            .where(DeliveryItem.subscriber_id == subscriber.id, Delivery.status == DeliveryStatus.sent)
        )
    )
    filters = [parse_filter(f.text) for f in subscriber.filters]
    papers = session.scalars(select(Paper).where(Paper.daily_date >= start, Paper.daily_date <= end)).all()
    out = []
    for paper in sorted(papers, key=trending_key):
        if paper.id in sent:
            continue
        text = paper_text(paper)
        matched = next((f.text for f in filters if f.matches(text)), None)
        if filters and matched is None:
            continue
        out.append((paper.arxiv_id, matched))
    return out[:size]


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML bodies of a multipart/alternative digest."""
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content(), html.get_content()


def shown_papers(message: EmailMessage) -> list[str]:
    """The arXiv ids a digest links, in order (each paper's title link comes first)."""
    seen: list[str] = []
    for arxiv_id in PAPER_LINK.findall(parts(message)[1]):
        if arxiv_id not in seen:
            seen.append(arxiv_id)
    return seen


def matched_lines(message: EmailMessage) -> list[str]:
    return re.findall(r"^\s+matched: (.*)$", parts(message)[0], re.M)


class FaultySmtpServer(SmtpServer):
    """The capturing server, plus: refuse MAIL FROM, or hang after N messages until stopped."""

    refuse_sender: str | None = None
    hang_after: int | None = None

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        import threading

        self.hanging = threading.Event()

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.refuse_sender:
            return self.refuse_sender
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.hang_after is not None and len(self.captured) >= self.hang_after:
            self.hanging.set()  # the test now stops the server under this message
            await asyncio.sleep(60)
        return await super().handle_DATA(server, session, envelope)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]


@pytest.fixture
def chromium():
    """Debian's headless Chromium through Playwright (never a downloaded browser)."""
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is not installed (apt-get install chromium)"
        if os.environ.get("DIGEST_REQUIRE_SERVICES") == "1":
            pytest.fail(f"browser tests are required (DIGEST_REQUIRE_SERVICES=1): {message}", pytrace=False)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
