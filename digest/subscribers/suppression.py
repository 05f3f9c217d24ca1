"""An operator's suppress and restore (the console, /admin): the same suppression a bounce makes, and
its undoing, which never overrides what the person chose.

Suppressing stops all mail to an active or pending address at once (:func:`~digest.delivery.ledger.suppress_subscriber`,
``unsubscribe_method`` = admin) and remembers it as one that left, so no import brings it back; an
address with no subscriber is remembered so too. Only the person's own confirmation lifts that, or:

Restoring makes a suppressed address active again only when the person had confirmed it and has not
unsubscribed since, and it was suppressed by an operator or by a bounce (the mail server refusing
it, which an operator may know to be over). Never an unsubscribed address, a complaint (that is an
unsubscribe), or one that never confirmed: those come back only by signing up again themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from digest.delivery.ledger import suppress_subscriber
from digest.delivery.schedule import next_slot
from digest.models import Subscriber, SubscriberState, Suppression, UnsubscribeMethod, address_hash

RESTORABLE = (UnsubscribeMethod.admin, UnsubscribeMethod.bounce)
ADMIN = "admin"  # Suppression.reason of an address an operator suppressed


@dataclass(frozen=True)
class Outcome:
    changed: bool
    message: str  # what happened, or why nothing did, in a sentence


def _subscriber(session: Session, email: str) -> Subscriber | None:
    return session.scalars(select(Subscriber).where(Subscriber.email == email).with_for_update()).first()


def restorable(subscriber: Subscriber) -> Outcome:
    """Whether an operator may make this subscriber active again, and why (not)."""
    if subscriber.state == SubscriberState.unsubscribed:
        return Outcome(False, f"{subscriber.email} unsubscribed: only signing up again themselves brings them back")
    if subscriber.state != SubscriberState.suppressed:
        return Outcome(False, f"{subscriber.email} is {subscriber.state.value}, not suppressed: nothing to restore")
    if subscriber.confirmed_at is None:
        return Outcome(False, f"{subscriber.email} never confirmed: only their own confirmation can start mail to it")
    if subscriber.unsubscribed_at is not None:
        return Outcome(False, f"{subscriber.email} unsubscribed after confirming: only signing up again themselves brings them back")
    if subscriber.unsubscribe_method not in RESTORABLE:
        method = subscriber.unsubscribe_method.value if subscriber.unsubscribe_method else "unknown"
        return Outcome(False, f"{subscriber.email} stopped by {method}: only signing up again themselves brings them back")
    return Outcome(
        True, f"{subscriber.email} may be restored (confirmed, never unsubscribed, suppressed by {subscriber.unsubscribe_method.value})"
    )


def suppress_address(session: Session, email: str, by: str, now: datetime) -> Outcome:
    """Stop all mail to ``email`` (stored form) now; the caller commits (with its audit entry)."""
    subscriber = _subscriber(session, email)
    if subscriber is None:
        if session.get(Suppression, address_hash(email)) is not None:
            return Outcome(False, f"{email} has no subscription and is remembered as one that left already")
        session.add(Suppression(address_hash=address_hash(email), reason=ADMIN))
        return Outcome(True, f"{email} has no subscription: remembered as suppressed, so no import brings it in")
    if subscriber.state == SubscriberState.unsubscribed:
        return Outcome(False, f"{email} is unsubscribed already: no mail goes to it")
    if subscriber.state == SubscriberState.suppressed:
        return Outcome(False, f"{email} is suppressed already")
    suppress_subscriber(session, subscriber.id, f"suppressed by {by}", remembered=ADMIN, method=UnsubscribeMethod.admin)
    return Outcome(True, f"{email} suppressed: no more mail goes to it")


def restore_address(session: Session, email: str, now: datetime) -> Outcome:
    """Make ``email`` active again if :func:`restorable` allows it (its next digest at its next
    slot); for an address with no subscription, forget an operator's suppression of it. The caller
    commits (with its audit entry)."""
    subscriber = _subscriber(session, email)
    if subscriber is None:
        remembered = session.get(Suppression, address_hash(email))
        if remembered is None:
            return Outcome(False, f"{email} has no subscription and is not suppressed")
        if remembered.reason != ADMIN:
            return Outcome(False, f"{email} left ({remembered.reason}): only signing up again themselves brings them back")
        session.delete(remembered)
        return Outcome(True, f"{email}: the operator's suppression is lifted (it has no subscription)")
    verdict = restorable(subscriber)
    if not verdict.changed:
        return verdict
    subscriber.state = SubscriberState.active
    subscriber.suppressed_reason = None
    subscriber.unsubscribe_method = None
    subscriber.next_due_at = next_slot(subscriber.frequency.value, subscriber.timezone, subscriber.delivery_hour, now)
    session.execute(delete(Suppression).where(Suppression.address_hash == address_hash(email)))
    return Outcome(True, f"{email} restored: active again, next digest at its next slot")
