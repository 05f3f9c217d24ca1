"""Recording what came back: :func:`record` is THE entry point for every intake (the bounce
listener, a mailbox read by ``digest bounces process``, a provider's webhook). It stores an event
once per reported message and applies the rules (:mod:`digest.bounces.rules`) to its subscriber.
"""

from __future__ import annotations

import enum
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.bounces.rules import SOFT_LIMIT, SOFT_WINDOW, Verdict, verdict
from digest.delivery.ledger import suppress_subscriber
from digest.models import Delivery, DeliveryStatus, EventKind, MailEvent, Subscriber, UnsubscribeMethod
from digest.models.events import clip
from digest.subscribers.subscriptions import unsubscribe

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One report about one message, as an intake read it.

    Whose it is: ``delivery`` (a digest's public id, from its bounce address), else ``subscriber``
    (a subscriber's public id: a confirmation's bounce address), else ``address`` (a provider's
    webhook, which names the recipient). A forged event is never matched to anyone.
    """

    kind: EventKind
    at: datetime  # when it was reported (received)
    report_key: str | None  # stored once per key (one longer than 64 characters as its SHA-256); None: always stored
    address: str = ""  # the address the report is about; "" for the subscriber's own
    diagnostic: str = ""
    delivery: str | None = None
    subscriber: str | None = None


class Outcome(str, enum.Enum):
    duplicate = "duplicate"  # this report was recorded before: nothing stored, nothing changed
    forged = "forged"  # stored and counted; nothing changed
    ignored = "ignored"  # an auto-reply, or a report that asks for nothing
    transient = "transient"  # a soft bounce, recorded: the address stays
    suppressed = "suppressed"  # a hard bounce, or one soft bounce too many: no more mail
    unsubscribed = "unsubscribed"  # a complaint
    unchanged = "unchanged"  # a bounce or complaint for nobody we know, or an address that is out already


def record(session: Session, event: Event) -> Outcome:
    """Store ``event`` (once per ``report_key``) and do what the rules say to its subscriber; the
    caller commits."""
    subscriber_id, delivery_id, email = (None, None, "") if event.kind is EventKind.forged else _whose(session, event)
    row = MailEvent(
        report_key=_key(event.report_key),
        kind=event.kind,
        subscriber_id=subscriber_id,
        delivery_id=delivery_id,
        address=(event.address or email)[:254],
        diagnostic=clip(event.diagnostic),
        created_at=event.at,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:  # the same report again (or at the same time, from another intake)
        return Outcome.duplicate
    if event.kind is EventKind.forged:
        log.warning("forged report (changes nothing): %s", row.diagnostic)
        return Outcome.forged
    if subscriber_id is None:
        return Outcome.unchanged if event.kind in (EventKind.hard, EventKind.soft, EventKind.complaint) else Outcome.ignored
    softs, successes = _history(session, subscriber_id, event.at) if event.kind is EventKind.soft else ([], [])
    decided = verdict(event.kind, softs, successes, now=event.at)
    if decided is Verdict.suppress:
        reason = (
            f"hard bounce: {row.diagnostic}"
            if event.kind is EventKind.hard
            else f"more than {SOFT_LIMIT} soft bounces in {SOFT_WINDOW.days} days: {row.diagnostic}"
        )
        changed = suppress_subscriber(session, subscriber_id, clip(reason), remembered="bounced")
        if changed:
            log.info("subscriber %s suppressed: %s", subscriber_id, reason)
        return Outcome.suppressed if changed else Outcome.unchanged
    if decided is Verdict.unsubscribe:
        subscriber = session.get(Subscriber, subscriber_id, with_for_update=True)
        changed = subscriber is not None and unsubscribe(session, subscriber, event.at, UnsubscribeMethod.complaint)
        if changed:
            log.info("subscriber %s unsubscribed: a complaint (%s)", subscriber_id, row.diagnostic)
        return Outcome.unsubscribed if changed else Outcome.unchanged
    return Outcome.transient if decided is Verdict.transient else Outcome.ignored


def _key(report_key: str | None) -> str | None:
    """The key as stored: a webhook's own ids (an SES feedback id and a recipient) may be longer than the column."""
    if report_key is None or len(report_key) <= 64:
        return report_key
    return hashlib.sha256(report_key.encode()).hexdigest()


def _whose(session: Session, event: Event) -> tuple[int | None, int | None, str]:
    """(subscriber id, delivery id, the subscriber's address) of the message ``event`` reports."""
    if event.delivery is not None:
        found = session.execute(
            select(Subscriber.id, Delivery.id, Subscriber.email)
            .join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Delivery.public_id == event.delivery)
        ).first()
        return (found[0], found[1], found[2]) if found else (None, None, "")
    if event.subscriber is not None:
        where = Subscriber.public_id == event.subscriber
    elif event.address:
        where = Subscriber.email == event.address.strip().lower()
    else:
        return None, None, ""
    found = session.execute(select(Subscriber.id, Subscriber.email).where(where)).first()
    return (found[0], None, found[1]) if found else (None, None, "")


def _history(session: Session, subscriber_id: int, now: datetime) -> tuple[list[datetime], list[datetime]]:
    """The times (:mod:`digest.bounces.rules`: when the reported message was sent) of the subscriber's
    soft bounces, one per message, and of its successful deliveries: the digests sent and never
    reported bounced, and those a provider reported delivered."""
    since = now - SOFT_WINDOW
    sent_at = func.coalesce(Delivery.sent_at, MailEvent.created_at)
    reported = session.execute(
        select(MailEvent.kind, MailEvent.delivery_id, MailEvent.id, sent_at)
        .outerjoin(Delivery, Delivery.id == MailEvent.delivery_id)
        .where(
            MailEvent.subscriber_id == subscriber_id,
            MailEvent.kind.in_([EventKind.soft, EventKind.delivered]),
            MailEvent.created_at >= since,
        )
    ).all()
    softs = {("d", d) if d is not None else ("e", i): at for kind, d, i, at in reported if kind is EventKind.soft}
    bounced = select(MailEvent.delivery_id).where(
        MailEvent.subscriber_id == subscriber_id, MailEvent.delivery_id.is_not(None), MailEvent.kind.in_([EventKind.hard, EventKind.soft])
    )
    sent = session.scalars(
        select(Delivery.sent_at).where(
            Delivery.subscriber_id == subscriber_id,
            Delivery.status == DeliveryStatus.sent,
            Delivery.sent_at >= since,
            Delivery.id.not_in(bounced),
        )
    ).all()
    delivered = [at for kind, _, _, at in reported if kind is EventKind.delivered]
    return list(softs.values()), [*sent, *delivered]
