"""The envelope sender of each message: a VERP address that says whose mail it was.

With ``DIGEST_BOUNCE_DOMAIN`` set, a digest goes out with ``MAIL FROM:<bounces+<token>@<domain>>``,
the token naming its delivery, and a confirmation with one naming its subscriber; a bounce, a
complaint or an auto-reply that comes back later, to that address, says by its address alone which
message it is about (:mod:`digest.bounces`). Unset, every message goes out from ``DIGEST_MAIL_FROM``'s
address, as before.

The token is the compact signed form of :mod:`digest.tokens` (the value and 16 characters of its
HMAC): ``d`` or ``s``, then the delivery's or the subscriber's public id. A 22-character public id
gives a 47-octet local part, within RFC 5321's 64 (a 32-character one, the column's widest, 57).
Like every local part it is case-sensitive: relays keep it as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from digest import tokens
from digest.config import Settings

LOCAL = "bounces"
MAX_LOCAL_PART = 64  # octets, RFC 5321 4.5.3.1.1
DELIVERY, SUBSCRIBER = "d", "s"  # what a token names: a digest (its delivery) or a subscriber (a confirmation)


class NotOurs(ValueError):
    """An address that is not a bounce address we made: another domain, no token, or a bad one."""


@dataclass(frozen=True)
class Named:
    """What a bounce address names: a delivery's public id, or (for a confirmation) a subscriber's."""

    delivery: str | None = None
    subscriber: str | None = None


def _address(settings: Settings, value: str) -> str:
    if settings.bounce_domain is None:
        return settings.mail_from_address.addr_spec
    return f"{LOCAL}+{tokens.make_token(settings, 'bounce', value)}@{settings.bounce_domain}"


def digest_sender(settings: Settings, delivery_public_id: str) -> str:
    """The envelope sender of a digest: the bounce address naming its delivery."""
    return _address(settings, DELIVERY + delivery_public_id)


def confirmation_sender(settings: Settings, subscriber_public_id: str) -> str:
    """The envelope sender of a confirmation email: the bounce address naming its subscriber."""
    return _address(settings, SUBSCRIBER + subscriber_public_id)


def read(settings: Settings, address: str) -> Named:
    """What the bounce address ``address`` names; :class:`NotOurs` says why it names nothing."""
    if settings.bounce_domain is None:
        raise NotOurs("no DIGEST_BOUNCE_DOMAIN: no bounce address is ours")
    local, at, domain = address.strip().strip("<>").rpartition("@")
    if not at or domain.rstrip(".").lower() != settings.bounce_domain:
        raise NotOurs(f"not for the bounce domain {settings.bounce_domain}: {address}")
    prefix, plus, token = local.partition("+")
    if prefix.lower() != LOCAL or not plus or not token:
        raise NotOurs(f"no bounce token: {address}")
    try:
        value = tokens.read_token(settings, "bounce", token)
    except tokens.BadToken:
        raise NotOurs(f"bad bounce token: {address}") from None
    kind, public_id = value[:1], value[1:]
    if kind == DELIVERY:
        return Named(delivery=public_id)
    if kind == SUBSCRIBER:
        return Named(subscriber=public_id)
    raise NotOurs(f"bad bounce token: {address}")  # signed by us, but not by this module
