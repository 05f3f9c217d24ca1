"""Signed tokens for every public link: no sequential id ever appears in a URL.

Tokens carry a purpose, so a preferences link cannot be replayed as a confirmation.
"""

from __future__ import annotations

import functools

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from digest.config import Settings

CONFIRM_MAX_AGE = 48 * 3600
PATHS = {
    "confirm": "/confirm/",
    "preferences": "/preferences/",
    "unsubscribe": "/unsubscribe/",
    "archive": "/digest/",
}


class BadToken(ValueError):
    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return _serializer_for(settings.secret_key, purpose)


@functools.lru_cache(maxsize=32)
def _serializer_for(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    """Built once per key and purpose: a digest batch makes three links per recipient."""
    return URLSafeTimedSerializer(secret_key, salt=f"digest.{purpose}")


def make_token(settings: Settings, purpose: str, value: str) -> str:
    return _serializer(settings, purpose).dumps(value)


def read_token(settings: Settings, purpose: str, token: str, max_age: int | None = None) -> str:
    """The signed value, or :class:`BadToken` if tampered with, of another purpose, or expired."""
    try:
        value = _serializer(settings, purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise BadToken("this link has expired", expired=True) from None
    except BadSignature:
        raise BadToken("this link is not valid") from None
    if not isinstance(value, str):
        raise BadToken("this link is not valid")
    return value


def link(settings: Settings, purpose: str, value: str) -> str:
    """The absolute URL (on ``DIGEST_BASE_URL``) of a signed link."""
    return f"{settings.base_url}{PATHS[purpose]}{make_token(settings, purpose, value)}"
