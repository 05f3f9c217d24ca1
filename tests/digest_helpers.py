"""Helpers for the digest tests (matching, delivery, the archive page); no tests and no fixtures here.

The moment ``AT`` and the day ``DAY`` the digests are built for; subscribers inserted as rows, as the
subscription pages would leave them (papers come from the ``make_paper`` fixture);
``expected_picks`` is the plain reference the sent digests are checked against: every filter
evaluated on every paper with ``Filter.matches``, sorted by trending, no index involved; and
readers of a sent digest.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.orm import Session
from support import SmtpServer

from digest.config import Settings, SmtpSettings
from digest.matching.topics import parse_filter
from digest.matching.trending import paper_text
from digest.models import Delivery, DeliveryItem, DeliveryStatus, Paper, Subscriber, SubscriberState, TopicFilter

UTC = timezone.utc
AT = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # a Monday, 07:00 UTC
DAY = date(2026, 11, 29)  # the Daily Papers day that had ended at AT
#: Settings for rendering an email without a database (links on the example site, a fixed key).
RENDER_SETTINGS = Settings(
    database_url="sqlite://",
    secret_key="test-secret-key-0123456789",
    base_url="https://digest.example.org",
    mail_from="Trending Papers <digest@example.org>",
)
PAPER_LINK = re.compile(r"https://huggingface\.co/papers/([0-9A-Za-z./-]+)\"")


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


def expected_picks(session: Session, subscriber: Subscriber, start: date, end: date, size: int = 10) -> list[tuple[str, str | None]]:
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


def as_read(html: str) -> str:
    """HTML as a mail client reads it: character references to non-ASCII characters (``&#220;``,
    how a 7bit HTML part carries Ü) as the characters, and CRLF line ends as LF."""
    return _CHARACTER_REFERENCE.sub(lambda m: chr(int(m.group(1))) if int(m.group(1)) > 127 else m.group(0), html.replace("\r\n", "\n"))


_CHARACTER_REFERENCE = re.compile(r"&#(\d+);")


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML bodies of a multipart/alternative digest as a client reads them (lines
    ending LF, whether a part came base64, 7bit or 8bit with CRLF; the HTML's references decoded)."""
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    return text.get_content().replace("\r\n", "\n"), as_read(html.get_content())


def shown_papers(message: EmailMessage) -> list[str]:
    """The arXiv ids a digest links, in order (each paper's title link comes first)."""
    seen: list[str] = []
    for arxiv_id in PAPER_LINK.findall(parts(message)[1]):
        if arxiv_id not in seen:
            seen.append(arxiv_id)
    return seen


def matched_lines(message: EmailMessage) -> list[str]:
    return re.findall(r"^\s+matched: (.*)$", parts(message)[0], re.M)
