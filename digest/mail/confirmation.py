"""The confirmation email (``email_templates/confirm``): the double opt-in link, or, for an address
that is already subscribed, a note with its preferences link. Sent alone, never in a batch."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from digest.config import Settings
from digest.mail.dkim import Signer
from digest.mail.headers import feedback_id
from digest.mail.templates import templates

TEMPLATE = "confirm"


@dataclass(frozen=True)
class ConfirmationLinks:
    confirm: str
    preferences: str


def confirmation_context(
    settings: Settings, email: str, frequency: str, links: ConfirmationLinks, *, already_subscribed: bool, expires_hours: int
) -> dict:
    return {
        "already_subscribed": already_subscribed,
        "email": email,
        "confirm_url": links.confirm,
        "preferences_url": links.preferences,
        "home_url": settings.base_url + "/",
        "frequency": frequency,
        "expires_hours": expires_hours,
    }


def confirmation_message(settings: Settings, to: str, context: dict) -> bytes:
    """The email as MIME bytes, with a Message-ID of its own (each request is a new message), and
    DKIM-signed when keys are configured. Transactional: a Feedback-ID, no List-Id."""
    rendered = templates().render(TEMPLATE, context)
    data = rendered.message(
        settings.mail_from_address,
        to,
        f"confirm.{uuid.uuid4().hex}@{settings.mail_domain}",
        {"Feedback-ID": feedback_id(settings, "confirm")},
    )
    return Signer(settings.dkim).sign(data)
