"""Subscribing, double opt-in, preferences and unsubscribing: plain functions over a Session.

A sign-up never changes what an *active* subscriber receives: only a click on a link mailed to
the address can do that. So :func:`request_subscription` creates or refreshes a **pending** row for
a new, pending, unsubscribed or suppressed address and mails it a confirmation link; for an address
that is already active it changes nothing and mails a "you are already subscribed" note with the
preferences link instead. Whatever the case, the caller shows the same page (no enumeration).

At most :data:`CONFIRMATIONS_PER_WINDOW` such mails go to one address per :data:`CONFIRMATION_WINDOW`,
whoever asks: the request is still recorded, nothing is sent.

Mail is never sent inside the request's transaction: :func:`request_subscription` returns the
subscriber to mail, the caller commits, then hands the id to :func:`send_confirmation` (in-process
or through a queue), which opens its own session, renders ``email_templates/confirm`` and sends.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timedelta

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from digest import tokens
from digest.config import Settings
from digest.db import session_scope
from digest.delivery.schedule import DEFAULT_HOUR, is_valid_timezone, next_slot
from digest.mail.confirmation import ConfirmationLinks, confirmation_context, confirmation_message
from digest.mail.transport import PermanentError, make_transport
from digest.matching.topics import Filter
from digest.models import Frequency, Subscriber, SubscriberState, TopicFilter

log = logging.getLogger(__name__)

MAX_EMAIL_LENGTH = 254
CONFIRMATIONS_PER_WINDOW = 3
CONFIRMATION_WINDOW = timedelta(hours=24)
UNCONFIRMED_MAX_AGE = timedelta(days=7)


class Confirmation(str, enum.Enum):
    confirmed = "confirmed"  # pending -> active, just now
    already_confirmed = "already_confirmed"  # was active already: nothing changed
    cancelled = "cancelled"  # unsubscribed (or suppressed) since the link was sent: nothing changed


def normalize_email(raw: str) -> str:
    """The address as stored: syntax-checked (no DNS), ASCII (IDN domains in punycode), lower-case.

    The whole address is lower-cased so that ``Ann@x.org`` and ``ann@x.org`` are one subscriber:
    otherwise case variants would each get their own confirmation quota. Raises ``ValueError``
    with a message fit to show next to the field.
    """
    value = raw.strip()
    if not value:
        raise ValueError("Enter your email address.")
    if len(value) > MAX_EMAIL_LENGTH:
        raise ValueError(f"That is too long for an email address (at most {MAX_EMAIL_LENGTH} characters).")
    try:
        result = validate_email(value, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    address = (result.ascii_email or result.normalized).lower()
    if len(address) > MAX_EMAIL_LENGTH:
        raise ValueError(f"That is too long for an email address (at most {MAX_EMAIL_LENGTH} characters).")
    return address


def _by_email(session: Session, email: str) -> Subscriber | None:
    return session.scalars(
        select(Subscriber).where(Subscriber.email == email).with_for_update().execution_options(populate_existing=True)
    ).first()


def by_public_id(session: Session, public_id: str, *, lock: bool = False) -> Subscriber | None:
    query = select(Subscriber).where(Subscriber.public_id == public_id).options(selectinload(Subscriber.filters))
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def _set_filters(session: Session, subscriber: Subscriber, filters: list[Filter]) -> None:
    if subscriber.filters:
        subscriber.filters.clear()
        session.flush()  # delete the old rows before inserting new ones at the same positions
    subscriber.filters.extend(TopicFilter(position=i, text=f.text) for i, f in enumerate(filters))


def _take_confirmation_slot(subscriber: Subscriber, now: datetime) -> bool:
    """Count one confirmation mail in the address's 24-hour window; False when the window is full."""
    start = subscriber.confirmations_window_start
    if start is None or now - start >= CONFIRMATION_WINDOW:
        subscriber.confirmations_window_start = now
        subscriber.confirmations_in_window = 0
    if subscriber.confirmations_in_window >= CONFIRMATIONS_PER_WINDOW:
        return False
    subscriber.confirmations_in_window += 1
    return True


def _check_preferences(frequency: str, tz: str, hour: int = DEFAULT_HOUR) -> Frequency:
    if not is_valid_timezone(tz):
        raise ValueError(f"unknown time zone {tz!r}")
    if not 0 <= hour <= 23:
        raise ValueError(f"delivery hour must be 0-23, got {hour}")
    return Frequency(frequency)  # ValueError for anything but daily/weekly


def request_subscription(
    session: Session,
    settings: Settings,
    email: str,
    filters: list[Filter],
    frequency: str,
    timezone: str,
    now: datetime,
) -> Subscriber | None:
    """Record a sign-up; return the subscriber to mail once committed, or None to send nothing.

    ``email`` must come from :func:`normalize_email`. New, pending, unsubscribed and suppressed
    addresses become pending with these preferences (a confirmation will be mailed); an active
    address keeps its preferences untouched (an "already subscribed" note will be mailed).
    None means the address had its 3 mails in the last 24 hours. (``settings`` is part of the
    signature for callers' symmetry with :func:`confirm`; nothing in it is needed here today.)
    """
    freq = _check_preferences(frequency, timezone)
    subscriber = _by_email(session, email)
    if subscriber is None:
        subscriber = Subscriber(email=email, state=SubscriberState.pending, created_at=now, delivery_hour=DEFAULT_HOUR)
        try:
            with session.begin_nested():
                session.add(subscriber)
        except IntegrityError:  # the same address signed up in a concurrent request
            subscriber = _by_email(session, email)
            assert subscriber is not None
    if subscriber.state != SubscriberState.active:
        subscriber.state = SubscriberState.pending
        subscriber.frequency = freq
        subscriber.timezone = timezone
        subscriber.next_due_at = None
        _set_filters(session, subscriber, filters)
    if not _take_confirmation_slot(subscriber, now):
        log.info("confirmation quota reached for subscriber %s", subscriber.id)
        return None
    session.flush()
    return subscriber


def send_confirmation(settings: Settings, subscriber_id: int) -> bool:
    """Mail the confirmation (pending) or "already subscribed" note (active); True when sent.

    Opens its own short session and sends after it is closed. Raises
    :class:`~digest.mail.transport.TransientError` so a queue can retry; a permanent refusal is
    logged and returns False (nothing else is ever sent to a pending address, and the purge
    removes it after a week).
    """
    with session_scope(settings) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        if subscriber is None or subscriber.state not in (SubscriberState.pending, SubscriberState.active):
            return False
        already = subscriber.state == SubscriberState.active
        email, public_id = subscriber.email, subscriber.public_id
        frequency = subscriber.frequency.value
    links = ConfirmationLinks(tokens.link(settings, "confirm", public_id), tokens.link(settings, "preferences", public_id))
    context = confirmation_context(
        settings, email, frequency, links, already_subscribed=already, expires_hours=tokens.CONFIRM_MAX_AGE // 3600
    )
    message = confirmation_message(settings, email, context)
    with make_transport(settings) as transport:
        try:
            transport.send(settings.mail_from_address.addr_spec, [email], message)
        except PermanentError as exc:
            log.warning("confirmation to subscriber %s refused for good: %s", subscriber_id, exc)
            return False
    return True


def confirm(session: Session, settings: Settings, token: str, now: datetime) -> Confirmation:
    """Activate the subscription a confirmation link names.

    Raises :class:`~digest.tokens.BadToken` for a tampered, expired or purged link (nothing changes).
    """
    public_id = tokens.read_token(settings, "confirm", token, max_age=tokens.CONFIRM_MAX_AGE)
    subscriber = by_public_id(session, public_id, lock=True)
    if subscriber is None:
        raise tokens.BadToken("this link is no longer valid")
    if subscriber.state == SubscriberState.active:
        return Confirmation.already_confirmed
    if subscriber.state != SubscriberState.pending:
        return Confirmation.cancelled
    subscriber.state = SubscriberState.active
    subscriber.confirmed_at = now
    subscriber.unsubscribed_at = None
    subscriber.suppressed_reason = None
    subscriber.next_due_at = next_slot(subscriber.frequency.value, subscriber.timezone, subscriber.delivery_hour, now)
    return Confirmation.confirmed


def peek_confirmation(session: Session, settings: Settings, token: str) -> Subscriber:
    """The subscriber a confirmation link names, changing nothing (the page before the button)."""
    public_id = tokens.read_token(settings, "confirm", token, max_age=tokens.CONFIRM_MAX_AGE)
    subscriber = by_public_id(session, public_id)
    if subscriber is None:
        raise tokens.BadToken("this link is no longer valid")
    return subscriber


def subscriber_for_link(session: Session, settings: Settings, purpose: str, token: str, *, lock: bool = False) -> Subscriber | None:
    """The subscriber of a preferences or unsubscribe link (no expiry); None if since deleted.

    Raises :class:`~digest.tokens.BadToken` for a tampered link or one of another purpose.
    ``lock`` takes the row lock before a change (PostgreSQL ``FOR UPDATE``).
    """
    return by_public_id(session, tokens.read_token(settings, purpose, token), lock=lock)


def update_preferences(
    session: Session,
    subscriber: Subscriber,
    filters: list[Filter],
    frequency: str,
    timezone: str,
    delivery_hour: int,
    now: datetime,
) -> None:
    """Save new preferences; an active subscriber's next digest moves to the new slot."""
    subscriber.frequency = _check_preferences(frequency, timezone, delivery_hour)
    subscriber.timezone = timezone
    subscriber.delivery_hour = delivery_hour
    _set_filters(session, subscriber, filters)
    if subscriber.state == SubscriberState.active:
        subscriber.next_due_at = next_slot(frequency, timezone, delivery_hour, now)


def unsubscribe(subscriber: Subscriber, now: datetime) -> bool:
    """Stop all mail to this subscriber; False if they were already unsubscribed (idempotent)."""
    if subscriber.state == SubscriberState.unsubscribed:
        return False
    subscriber.state = SubscriberState.unsubscribed
    subscriber.unsubscribed_at = now
    subscriber.next_due_at = None
    return True


def purge_unconfirmed(session: Session, now: datetime, max_age: timedelta = UNCONFIRMED_MAX_AGE) -> int:
    """Delete pending subscriptions whose last sign-up request is older than ``max_age``.

    The last request is the start of the address's confirmation window (or the creation time for
    rows that never had one): every link mailed was mailed within 24 hours of that and expired
    48 hours later, so no row with a live confirmation link is ever deleted.
    """
    cutoff = now - max_age
    last_request = func.coalesce(Subscriber.confirmations_window_start, Subscriber.created_at)
    result = session.execute(
        delete(Subscriber)
        .where(Subscriber.state == SubscriberState.pending, last_request < cutoff)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
