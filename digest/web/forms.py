"""The two forms: subscribe (home page) and preferences. Both carry a CSRF token (Flask-WTF).

Every check the browser makes (``required``, ``maxlength``, the time-zone list) is made again
here: a hostile client can post anything. The choice fields are plain strings checked against
:data:`FREQUENCIES`, :data:`HOURS` and the IANA zones; the templates render their radios and
``<select>`` (with optgroups) from the same lists.
"""

from __future__ import annotations

from functools import lru_cache

from flask_wtf import FlaskForm
from wtforms import EmailField, StringField, TextAreaField
from wtforms.validators import StopValidation, ValidationError

from digest.delivery.schedule import DEFAULT_HOUR, is_valid_timezone, timezone_names
from digest.matching.topics import MAX_TOPICS_CHARS, Filter, TopicsError, parse_topics
from digest.subscribers.subscriptions import MAX_EMAIL_LENGTH, normalize_email

FREQUENCIES = [("daily", "Daily"), ("weekly", "Weekly, on Mondays")]
HOURS = [(str(h), f"{h:02d}:00") for h in range(24)]


@lru_cache(maxsize=1)
def timezone_choices() -> dict[str, list[tuple[str, str]]]:
    """IANA zones grouped by region for a ``<select>`` with optgroups ("UTC" first)."""
    groups: dict[str, list[tuple[str, str]]] = {"": [("UTC", "UTC")]}
    for name in sorted(timezone_names()):
        region, slash, _ = name.partition("/")
        if not slash or region in {"Etc", "SystemV", "US", "Canada", "Brazil", "Chile", "Mexico"}:
            continue  # legacy aliases: still accepted when posted, not offered
        groups.setdefault(region, []).append((name, name.replace("_", " ")))
    return groups


def _frequency(form, field) -> None:
    if field.data not in {value for value, _ in FREQUENCIES}:
        raise ValidationError("Choose daily or weekly.")


def _timezone(form, field) -> None:
    if not is_valid_timezone(field.data or ""):
        raise ValidationError("Choose a time zone from the list.")


class TopicsMixin:
    filters: list[Filter]

    def validate_topics(self, field) -> None:
        text = (field.data or "").replace("\r\n", "\n")
        field.data = text
        try:
            self.filters = parse_topics(text)
        except TopicsError as exc:
            field.errors.extend(f"Line {e.line}: {e.problem}" for e in exc.errors)
            raise StopValidation() from None


class SubscribeForm(TopicsMixin, FlaskForm):
    email = EmailField(
        "Email address",
        render_kw={"autocomplete": "email", "maxlength": MAX_EMAIL_LENGTH, "required": True, "spellcheck": "false"},
    )
    topics = TextAreaField("Topics", render_kw={"rows": 5, "maxlength": MAX_TOPICS_CHARS, "spellcheck": "false"})
    frequency = StringField("How often", default="daily", validators=[_frequency])
    timezone = StringField("Time zone", default="UTC", validators=[_timezone])
    website = StringField("Website", render_kw={"tabindex": "-1", "autocomplete": "off"})  # honeypot

    normalized_email: str

    def validate_email(self, field) -> None:
        try:
            self.normalized_email = normalize_email(field.data or "")
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


def _hour(form, field) -> None:
    if field.data not in {value for value, _ in HOURS}:
        raise ValidationError("Choose an hour from the list.")


class PreferencesForm(TopicsMixin, FlaskForm):
    topics = TextAreaField("Topics", render_kw={"rows": 6, "maxlength": MAX_TOPICS_CHARS, "spellcheck": "false"})
    frequency = StringField("How often", validators=[_frequency])
    timezone = StringField("Time zone", validators=[_timezone])
    delivery_hour = StringField("Delivery time", default=str(DEFAULT_HOUR), validators=[_hour])
