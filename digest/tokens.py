"""Signed tokens for every public link: no sequential id ever appears in a URL.

Tokens carry a purpose, so a preferences link cannot be replayed as a confirmation.
"""

from __future__ import annotations

import base64
import functools
import hmac
import json

from itsdangerous import BadSignature, SignatureExpired, Signer, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode

from digest.config import Settings

CONFIRM_MAX_AGE = 48 * 3600
PATHS = {
    "confirm": "/confirm/",
    "preferences": "/preferences/",
    "unsubscribe": "/unsubscribe/",
    "archive": "/digest/",
    "vote": "/vote/",  # the reader's public id; /<paper id>/<more|less> follow the token
    "feed": "/feed/",  # the reader's public id: their digests as an Atom feed (digest/web/feeds.py)
}
#: The last part of a vote link (``/vote/<token>/<paper id>/<way>``): which way the reader votes.
VOTE_WAYS = {"more": 1, "less": -1}

#: Purposes whose value is already URL-safe text (a public id) and whose links never expire: the
#: token is the value followed by ``COMPACT_TAG_CHARS`` characters of its HMAC-SHA256 (the first 12
#: bytes, 96 bits, base64url), without the serializer's JSON, base64 and timestamp. A digest repeats
#: the reader's vote token in four links per card, so its length is paid in every message's bytes
#: (38 characters for a 22-character public id; an itsdangerous ``Signer`` token, ``value.<27>``,
#: was 50). Tokens of that older form, as digests mailed before carry, are still read.
#: ``bounce`` tokens make the VERP envelope sender of each message (:mod:`digest.mail.verp`), whose
#: local part must stay within 64 octets. ``feed`` tokens sign a reader's Atom feed: a feed reader
#: polls the same URL for years, and its ETag must not change with a token made afresh.
PLAIN = frozenset({"vote", "bounce", "feed"})
COMPACT_TAG_BYTES = 12
COMPACT_TAG_CHARS = 16  # base64url of 12 bytes, no padding


class BadToken(ValueError):
    def __init__(self, message: str, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def _serializer(settings: Settings, purpose: str) -> URLSafeTimedSerializer:
    return _serializer_for(settings.secret_key, purpose)


def _require(secret_key: str) -> None:
    if not secret_key:  # settings loaded for a read-only command (load_settings(signs=False))
        raise RuntimeError("no DIGEST_SECRET_KEY: this command was started to read only, and signs no link")


@functools.lru_cache(maxsize=32)
def _serializer_for(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    """Built once per key and purpose: a digest batch makes three links per recipient."""
    _require(secret_key)
    return URLSafeTimedSerializer(secret_key, salt=f"digest.{purpose}")


@functools.lru_cache(maxsize=32)
def _timestamp_signer_for(secret_key: str, purpose: str) -> Signer:
    """The signer the serializer of ``purpose`` signs its tokens with, made once."""
    return _serializer_for(secret_key, purpose).make_signer()


@functools.lru_cache(maxsize=32)
def _signer_for(secret_key: str, purpose: str) -> Signer:
    _require(secret_key)
    return Signer(secret_key, salt=f"digest.{purpose}")


@functools.lru_cache(maxsize=32)
def _compact_key(secret_key: str, purpose: str) -> bytes:
    """The purpose's own HMAC key, derived from the secret (so a tag of one purpose is no tag of another)."""
    _require(secret_key)
    return hmac.digest(secret_key.encode("utf-8"), f"digest.{purpose}.compact".encode(), "sha256")


def _compact_tag(secret_key: str, purpose: str, value: str) -> str:
    digest = hmac.digest(_compact_key(secret_key, purpose), value.encode("utf-8"), "sha256")
    return base64.urlsafe_b64encode(digest[:COMPACT_TAG_BYTES]).decode("ascii")


def make_token(settings: Settings, purpose: str, value: str) -> str:
    if purpose in PLAIN:
        return value + _compact_tag(settings.secret_key, purpose, value)
    # What URLSafeTimedSerializer.dumps makes of a short string (its JSON, URL-safe base64, signed
    # with a timestamp), without its attempt to compress the payload: an id never compresses, and
    # the attempt and a signer made per call were most of a digest's three links (45 µs → 4 µs
    # each). ``read_token`` reads them with the serializer, which also reads compressed payloads.
    return (
        _timestamp_signer_for(settings.secret_key, purpose)
        .sign(base64_encode(json.dumps(value, ensure_ascii=False, separators=(",", ":"))))
        .decode("ascii")
    )


def read_token(settings: Settings, purpose: str, token: str, max_age: int | None = None) -> str:
    """The signed value, or :class:`BadToken` if tampered with, of another purpose, or expired."""
    if purpose in PLAIN:
        if "." in token:  # the older form, value.<itsdangerous signature>: links in digests already mailed
            try:
                return _signer_for(settings.secret_key, purpose).unsign(token).decode()
            except (BadSignature, UnicodeDecodeError):
                raise BadToken("this link is not valid") from None
        value, tag = token[:-COMPACT_TAG_CHARS], token[-COMPACT_TAG_CHARS:]
        if not value or not hmac.compare_digest(tag.encode("utf-8"), _compact_tag(settings.secret_key, purpose, value).encode("ascii")):
            raise BadToken("this link is not valid")
        return value
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
