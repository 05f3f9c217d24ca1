"""How our mail names itself to mailbox providers: the ``List-Id`` of the digests (RFC 2919) and the
``Feedback-ID`` of every message (Gmail's feedback loop reports complaints per its parts).

Neither holds anything of the recipient: every digest of a day carries the same Feedback-ID.
"""

from __future__ import annotations

from datetime import UTC, datetime

from digest.config import Settings

LIST_NAME = "Trending Papers"
#: Feedback-ID's last part, the sender (Gmail: constant across a sender's mail)
SENDER_ID = "trendingpapers"


def list_host(settings: Settings) -> str:
    """The list's identifier, ``digest.<the sender's domain>``: a name under a domain the operator owns."""
    return f"digest.{settings.mail_domain}"


def list_id(settings: Settings) -> str:
    """``Trending Papers <digest.example.org>``."""
    return f"{LIST_NAME} <{list_host(settings)}>"


def feedback_id(settings: Settings, kind: str, when: datetime | None = None) -> str:
    """``<day>:<kind>:<list host>:trendingpapers``, e.g. ``2026-11-30:digest:digest.example.org:trendingpapers``:
    the day it was sent (UTC) as the campaign, the kind of mail (``digest`` or ``confirm``), the list."""
    day = (when or datetime.now(UTC)).astimezone(UTC).date()
    return f"{day.isoformat()}:{kind}:{list_host(settings)}:{SENDER_ID}"
