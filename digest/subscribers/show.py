"""``digest subscribers show EMAIL``: one subscriber as an operator reads them — their state and
why, their filters, their last digests, and what came back about their mail (bounces, complaints,
auto-replies: :mod:`digest.bounces`), newest first. Reads only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from digest.models import Delivery, DeliveryStatus, EventKind, MailEvent, Subscriber, Suppression, address_hash
from digest.subscribers.addresses import domain_spellings, mailbox_key, normalize_email

LAST_DIGESTS = 5
LAST_EVENTS = 50


@dataclass(frozen=True)
class DigestLine:
    period: str
    status: DeliveryStatus
    papers: int
    sent_at: datetime | None
    error: str | None


@dataclass(frozen=True)
class EventLine:
    at: datetime
    kind: EventKind
    digest: str | None  # the period of the digest it reports; None for a confirmation or an unknown one
    address: str
    diagnostic: str


@dataclass(frozen=True)
class SubscriberView:
    subscriber: Subscriber
    filters: list[str]
    remembered: str | None  # why the address is remembered as one that left (Suppression), if it is
    digests: list[DigestLine]  # the last LAST_DIGESTS, newest first
    events: list[EventLine]  # the last LAST_EVENTS, newest first
    event_count: int


def stored_spelling(email: str) -> str:
    """``email`` as :func:`normalize_email` stores it (an IDN domain in punycode), or lower-cased
    if it is not a valid address."""
    try:
        return normalize_email(email)
    except ValueError:
        return email.strip().lower()


def find(session: Session, email: str) -> list[Subscriber]:
    """The subscriber with this address as we store it (:func:`normalize_email`: any case, an IDN
    domain in Unicode); else every subscriber whose address reaches the same mailbox
    (:func:`mailbox_key`: ``J.Smith@googlemail.com`` finds ``jsmith@gmail.com``, a ``+tag`` its base
    address), by address."""
    address = stored_spelling(email)
    exact = session.scalars(select(Subscriber).where(Subscriber.email == address)).first()
    if exact is not None or "@" not in address:
        return [exact] if exact is not None else []
    key = mailbox_key(address)
    domains = domain_spellings(key.rpartition("@")[2])
    same_domain = session.scalars(
        select(Subscriber).where(or_(*(Subscriber.email.endswith("@" + d, autoescape=True) for d in domains))).order_by(Subscriber.email)
    )
    return [s for s in same_domain if mailbox_key(s.email) == key]


def show(session: Session, email: str) -> SubscriberView | None:
    """The subscriber :func:`find` finds for this address, if it finds exactly one; else None."""
    found = find(session, email)
    if len(found) != 1:
        return None
    subscriber = session.scalars(select(Subscriber).where(Subscriber.id == found[0].id).options(selectinload(Subscriber.filters))).one()
    digests = session.execute(
        select(Delivery.period, Delivery.status, Delivery.paper_count, Delivery.sent_at, Delivery.error)
        .where(Delivery.subscriber_id == subscriber.id)
        .order_by(Delivery.scheduled_for.desc(), Delivery.id.desc())
        .limit(LAST_DIGESTS)
    ).all()
    events = session.execute(
        select(MailEvent.created_at, MailEvent.kind, Delivery.period, MailEvent.address, MailEvent.diagnostic)
        .outerjoin(Delivery, Delivery.id == MailEvent.delivery_id)
        .where(MailEvent.subscriber_id == subscriber.id)
        .order_by(MailEvent.created_at.desc(), MailEvent.id.desc())
        .limit(LAST_EVENTS)
    ).all()
    count = session.scalar(select(func.count()).select_from(MailEvent).where(MailEvent.subscriber_id == subscriber.id)) or 0
    left = session.get(Suppression, address_hash(subscriber.email))
    return SubscriberView(
        subscriber=subscriber,
        filters=[f.text for f in subscriber.filters],
        remembered=left.reason if left is not None else None,
        digests=[DigestLine(*row) for row in digests],
        events=[EventLine(*row) for row in events],
        event_count=count,
    )
