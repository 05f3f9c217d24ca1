"""Subscribing, double opt-in, preferences and unsubscribing: plain functions over a Session.

A sign-up never changes a subscriber: only a click on a link mailed to the address can. So
:func:`request_subscription` records the request beside the subscriber (a :class:`SignupRequest`,
created with a pending row for a new address) and the address is mailed a confirmation link that
names that request; an unsubscribed or suppressed address keeps its state and preferences until
the link is used, and a newer request (or an unsubscribe) kills every older link. An address that
is already active is mailed a "you are already subscribed" note with its preferences link. The
same statements run whatever the address's state, and the caller shows the same page (no
enumeration, by content or by time).

At most :data:`CONFIRMATIONS_PER_WINDOW` such mails go to one mailbox (its variants together:
:func:`~digest.subscribers.addresses.mailbox_key`) per :data:`CONFIRMATION_WINDOW`, whoever asks.
A request over that is not dropped: the latest one is mailed when the window ends
(:func:`release_waiting_confirmations`), so nobody can lock the owner of an address out. Whoever
leaves is remembered (:class:`Suppression`, a hash of the address as stored) after the purge
forgets their row: no import brings them back.

Mail is never sent inside the request's transaction: :func:`request_subscription` returns the
subscriber to mail, the caller commits, then hands the id to :func:`send_confirmation` (in-process
or through a queue), which opens its own session, renders ``email_templates/confirm`` and sends.
"""

from __future__ import annotations

import enum
import hmac
import logging
import secrets
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from digest import tokens
from digest.config import Settings
from digest.db import session_scope
from digest.delivery.schedule import DEFAULT_HOUR, is_valid_timezone, next_slot
from digest.mail.confirmation import ConfirmationLinks, confirmation_context, confirmation_message
from digest.mail.transport import PermanentError, make_transport
from digest.mail.verp import confirmation_sender
from digest.matching.profiles import seed_ids, set_seeds
from digest.matching.select import FilterCache
from digest.matching.similar import known_ids, like_ids
from digest.matching.topics import Filter
from digest.models import (
    ConfirmationQuota,
    Frequency,
    SignupRequest,
    Subscriber,
    SubscriberState,
    Suppression,
    TopicFilter,
    UnsubscribeMethod,
    address_hash,
)
from digest.subscribers.addresses import mailbox_hash

log = logging.getLogger(__name__)

CONFIRMATIONS_PER_WINDOW = 3
CONFIRMATION_WINDOW = timedelta(hours=24)
UNCONFIRMED_MAX_AGE = timedelta(days=7)


class Confirmation(str, enum.Enum):
    confirmed = "confirmed"  # active from now, with the preferences of the latest sign-up
    already_confirmed = "already_confirmed"  # was active already: nothing changed


def _by_email(session: Session, email: str) -> Subscriber | None:
    return session.scalars(
        select(Subscriber).where(Subscriber.email == email).with_for_update().execution_options(populate_existing=True)
    ).first()


def by_public_id(session: Session, public_id: str, *, lock: bool = False) -> Subscriber | None:
    query = select(Subscriber).where(Subscriber.public_id == public_id).options(selectinload(Subscriber.filters))
    if lock:
        query = query.with_for_update()
    return session.scalars(query).first()


def _set_filters(session: Session, subscriber: Subscriber, texts: list[str]) -> None:
    if subscriber.filters:
        subscriber.filters.clear()
        session.flush()  # delete the old rows before inserting new ones at the same positions
    subscriber.filters.extend(TopicFilter(position=i, text=text) for i, text in enumerate(texts))


def _take_confirmation_slot(session: Session, email: str, subscriber_id: int, now: datetime) -> bool:
    """Count one confirmation mail in the mailbox's 24-hour window; when the window is full, this
    request waits for the next one instead (False)."""
    key = mailbox_hash(email)
    quota = session.get(ConfirmationQuota, key, with_for_update=True)
    if quota is None:
        quota = ConfirmationQuota(mailbox_hash=key, window_start=now, sent=0)
        try:
            with session.begin_nested():
                session.add(quota)
        except IntegrityError:  # a concurrent request for the same mailbox made it first
            quota = session.get(ConfirmationQuota, key, with_for_update=True, populate_existing=True)
            assert quota is not None
    return count_confirmation(quota, subscriber_id, now)


def count_confirmation(quota: ConfirmationQuota, subscriber_id: int, now: datetime) -> bool:
    """Count one confirmation mail for ``subscriber_id`` in ``quota`` (its mailbox's row, locked by
    the caller); False when the window is full: the request waits for the next one instead."""
    if now - quota.window_start >= CONFIRMATION_WINDOW:
        quota.window_start, quota.sent = now, 0
    if quota.sent >= CONFIRMATIONS_PER_WINDOW:
        quota.waiting_subscriber_id = subscriber_id
        return False
    quota.sent += 1
    quota.waiting_subscriber_id = None  # this mail carries the latest request
    return True


def _check_preferences(frequency: str, tz: str, hour: int = DEFAULT_HOUR) -> Frequency:
    if not is_valid_timezone(tz):
        raise ValueError(f"unknown time zone {tz!r}")
    if not 0 <= hour <= 23:
        raise ValueError(f"delivery hour must be 0-23, got {hour}")
    return Frequency(frequency)  # ValueError for anything but daily/weekly


def has_left(session: Session, email: str) -> bool:
    """True if this address unsubscribed or was refused for good, even if its row was purged since."""
    return session.get(Suppression, address_hash(email)) is not None


def _remember_left(session: Session, email: str, reason: str) -> None:
    session.merge(Suppression(address_hash=address_hash(email), reason=reason))


def request_subscription(
    session: Session,
    settings: Settings,
    email: str,
    filters: list[Filter],
    frequency: str,
    timezone: str,
    now: datetime,
    seeds: Sequence[str] = (),
) -> Subscriber | None:
    """Record a sign-up; return the subscriber to mail once committed, or None to mail nothing now.

    ``email`` must come from :func:`~digest.subscribers.addresses.normalize_email`; ``seeds`` are
    the arXiv ids of papers they like (checked by the form: ids of stored papers), which count from
    the confirmation on. The request is stored beside the subscriber
    (created pending for a new address) with a fresh nonce; nothing of the subscriber changes. None
    means the mailbox had its mails for this window: the request waits for the next one.
    (``settings`` is part of the signature for callers' symmetry with :func:`confirm`.)
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
    # replaced by delete + insert whatever was there: the same statements for every address
    session.execute(delete(SignupRequest).where(SignupRequest.subscriber_id == subscriber.id))
    session.add(
        SignupRequest(
            subscriber_id=subscriber.id,
            nonce=secrets.token_urlsafe(12),
            topics="\n".join(f.text for f in filters),
            seeds="\n".join(seeds),
            frequency=freq,
            timezone=timezone,
            requested_at=now,
        )
    )
    allowed = _take_confirmation_slot(session, email, subscriber.id, now)
    session.flush()
    if not allowed:
        log.info("confirmation quota reached for subscriber %s: the request waits for the next window", subscriber.id)
        return None
    return subscriber


def release_waiting_confirmations(session: Session, now: datetime) -> list[int]:
    """Subscribers whose request waited for a full quota window that has now ended: their window
    restarts with this mail counted. The caller commits, then mails them."""
    quotas = session.scalars(
        select(ConfirmationQuota)
        .where(ConfirmationQuota.waiting_subscriber_id.is_not(None), ConfirmationQuota.window_start <= now - CONFIRMATION_WINDOW)
        .with_for_update()
    ).all()
    ids = []
    for quota in quotas:
        ids.append(quota.waiting_subscriber_id)
        quota.window_start, quota.sent, quota.waiting_subscriber_id = now, 1, None
    return ids


def _confirm_value(subscriber: Subscriber, request: SignupRequest) -> str:
    return f"{subscriber.public_id}.{request.nonce}"


def confirmation_token(session: Session, settings: Settings, subscriber: Subscriber) -> str | None:
    """The token of the confirmation link for the subscriber's latest request (None: no request)."""
    request = session.get(SignupRequest, subscriber.id)
    return tokens.make_token(settings, "confirm", _confirm_value(subscriber, request)) if request is not None else None


def send_confirmation(settings: Settings, subscriber_id: int) -> bool:
    """Mail the confirmation (its link names the latest request) or, to an active subscriber, the
    "already subscribed" note; True when sent.

    Opens its own short session and sends after it is closed. Raises
    :class:`~digest.mail.transport.TransientError` so a queue can retry; a permanent refusal is
    logged and returns False (nothing else is ever sent to a pending address, and the purge
    removes it after a week).
    """
    with session_scope(settings) as session:
        subscriber = session.get(Subscriber, subscriber_id)
        request = session.get(SignupRequest, subscriber_id)
        if subscriber is None or (request is None and subscriber.state != SubscriberState.active):
            return False
        already = subscriber.state == SubscriberState.active
        email, public_id = subscriber.email, subscriber.public_id
        frequency = (subscriber.frequency if already or request is None else request.frequency).value
        confirm_value = _confirm_value(subscriber, request) if request is not None else public_id
    links = ConfirmationLinks(tokens.link(settings, "confirm", confirm_value), tokens.link(settings, "preferences", public_id))
    context = confirmation_context(
        settings, email, frequency, links, already_subscribed=already, expires_hours=tokens.CONFIRM_MAX_AGE // 3600
    )
    message = confirmation_message(settings, email, context)
    with make_transport(settings) as transport:
        try:
            transport.send(confirmation_sender(settings, public_id), [email], message)  # VERP: a bounce names the subscriber
        except PermanentError as exc:
            log.warning("confirmation to subscriber %s refused for good: %s", subscriber_id, exc)
            return False
    return True


def _read_confirmation(session: Session, settings: Settings, token: str, *, lock: bool) -> tuple[Subscriber, SignupRequest | None]:
    """The subscriber a confirmation link names, and its request if the link is the latest one.

    Raises :class:`~digest.tokens.BadToken` for a tampered or expired link, one whose subscriber was
    purged, or one that a newer sign-up or an unsubscribe made obsolete (unless already active).
    """
    value = tokens.read_token(settings, "confirm", token, max_age=tokens.CONFIRM_MAX_AGE)
    public_id, _, nonce = value.partition(".")
    subscriber = by_public_id(session, public_id, lock=lock)
    if subscriber is None:
        raise tokens.BadToken("this link is no longer valid")
    if subscriber.state == SubscriberState.active:
        return subscriber, None
    request = session.get(SignupRequest, subscriber.id)
    if request is None or not nonce or not hmac.compare_digest(request.nonce, nonce):
        raise tokens.BadToken("this link is no longer valid")
    return subscriber, request


def confirm(session: Session, settings: Settings, token: str, now: datetime) -> Confirmation:
    """Activate the subscription a confirmation link names, with the preferences of its request.

    Raises :class:`~digest.tokens.BadToken` for a tampered, expired, purged or superseded link
    (nothing changes).
    """
    subscriber, request = _read_confirmation(session, settings, token, lock=True)
    if request is None:
        return Confirmation.already_confirmed
    subscriber.frequency = request.frequency
    subscriber.timezone = request.timezone
    texts = [line for line in request.topics.split("\n") if line]
    _set_filters(session, subscriber, texts)
    set_seed_papers(session, subscriber, request.seeds.split(), _compiled(texts), now)
    subscriber.state = SubscriberState.active
    subscriber.confirmed_at = now
    subscriber.unsubscribed_at = None
    subscriber.suppressed_reason = None
    subscriber.unsubscribe_method = None
    subscriber.next_due_at = next_slot(subscriber.frequency.value, subscriber.timezone, subscriber.delivery_hour, now)
    session.delete(request)
    session.execute(delete(Suppression).where(Suppression.address_hash == address_hash(subscriber.email)))  # they came back
    return Confirmation.confirmed


def peek_confirmation(session: Session, settings: Settings, token: str) -> tuple[Subscriber, SignupRequest | None]:
    """The subscriber a confirmation link names and the request it would confirm, changing nothing
    (the page before the button)."""
    return _read_confirmation(session, settings, token, lock=False)


def subscriber_for_link(session: Session, settings: Settings, purpose: str, token: str, *, lock: bool = False) -> Subscriber | None:
    """The subscriber of a preferences or unsubscribe link (no expiry); None if since deleted.

    Raises :class:`~digest.tokens.BadToken` for a tampered link or one of another purpose.
    ``lock`` takes the row lock before a change (PostgreSQL ``FOR UPDATE``).
    """
    return by_public_id(session, tokens.read_token(settings, purpose, token), lock=lock)


def set_seed_papers(session: Session, subscriber: Subscriber, seeds: Sequence[str], filters: Sequence[Filter], now: datetime) -> None:
    """The reader's seed papers become ``seeds`` and the papers their ``like:`` filters name (so a
    ``like:`` orders a digest as a seed does); ids of papers not stored are left out. Their votes stay."""
    known = known_ids(session, set(seeds) | like_ids(filters))
    set_seeds(session, subscriber.id, known.values(), now)


def _compiled(texts: Sequence[str]) -> list[Filter]:
    """Stored filter lines as filters (one that no longer parses is left out, as a send leaves it)."""
    return [f for f in map(FilterCache().get, texts) if f is not None]


def seed_papers(session: Session, subscriber: Subscriber) -> list[str]:
    """The arXiv ids of the reader's seed papers that their ``like:`` filters do not name (what the
    preferences form shows in its "Papers you like" box), oldest first."""
    named = like_ids(_compiled([f.text for f in subscriber.filters]))
    return [i for i in seed_ids(session, subscriber.id) if i not in named]


def update_preferences(
    session: Session,
    subscriber: Subscriber,
    filters: list[Filter],
    frequency: str,
    timezone: str,
    delivery_hour: int,
    now: datetime,
    seeds: Sequence[str] | None = None,
) -> None:
    """Save new preferences; an active subscriber's next digest moves to the new slot. ``seeds``
    (arXiv ids) replace the reader's seed papers; None leaves them (and what ``like:`` adds) as they were."""
    subscriber.frequency = _check_preferences(frequency, timezone, delivery_hour)
    subscriber.timezone = timezone
    subscriber.delivery_hour = delivery_hour
    _set_filters(session, subscriber, [f.text for f in filters])
    if seeds is not None:
        set_seed_papers(session, subscriber, seeds, filters, now)
    if subscriber.state == SubscriberState.active:
        subscriber.next_due_at = next_slot(frequency, timezone, delivery_hour, now)


def unsubscribe(session: Session, subscriber: Subscriber, now: datetime, method: UnsubscribeMethod | None = None) -> bool:
    """Stop all mail to this subscriber, kill every confirmation link mailed so far, and remember
    that the address left (and ``method``, how); False if they were already unsubscribed (idempotent)."""
    session.execute(delete(SignupRequest).where(SignupRequest.subscriber_id == subscriber.id))
    _remember_left(session, subscriber.email, "unsubscribed")
    if subscriber.state == SubscriberState.unsubscribed:
        return False
    subscriber.state = SubscriberState.unsubscribed
    subscriber.unsubscribed_at = now
    subscriber.unsubscribe_method = method
    subscriber.next_due_at = None
    return True


def purge_unconfirmed(session: Session, now: datetime, max_age: timedelta = UNCONFIRMED_MAX_AGE) -> int:
    """Delete pending subscriptions whose last sign-up request is older than ``max_age``.

    A waiting request is mailed within a day of it and its link expires 48 hours after that, so no
    row with a live confirmation link is ever deleted. An address that once left stays remembered
    (:class:`Suppression` is not tied to the row).
    """
    cutoff = now - max_age
    last_request = select(SignupRequest.requested_at).where(SignupRequest.subscriber_id == Subscriber.id).scalar_subquery()
    result = session.execute(
        delete(Subscriber)
        .where(Subscriber.state == SubscriberState.pending, func.coalesce(last_request, Subscriber.created_at) < cutoff)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount or 0
