"""The two forms: subscribe (home page) and preferences. Both carry a CSRF token (Flask-WTF).

Every check the browser makes (``required``, ``maxlength``, the time-zone list) is made again
here: a hostile client can post anything. The choice fields are plain strings checked against
:data:`FREQUENCIES`, :data:`HOURS` and the IANA zones; the templates render their radios and
``<select>`` (with optgroups: :func:`digest.web.zones.timezone_choices`) from the same lists.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from wtforms import EmailField, StringField, TextAreaField
from wtforms.validators import StopValidation, ValidationError

from digest.delivery.schedule import DEFAULT_HOUR, is_valid_timezone
from digest.matching.explain import topics_hints
from digest.matching.paper_ids import MAX_SEEDS, paper_ids
from digest.matching.similar import known_ids, like_ids
from digest.matching.topics import MAX_TOPICS_CHARS, Filter, TopicsError, parse_topics, shown_errors
from digest.subscribers.subscriptions import MAX_EMAIL_LENGTH, normalize_email
from digest.web.zones import menu_zone

FREQUENCIES = [("daily", "Daily"), ("weekly", "Weekly, on Mondays")]
HOURS = [(str(h), f"{h:02d}:00") for h in range(24)]


class TimezoneField(StringField):
    """An IANA zone name: any one is accepted (old aliases too); the menu offers canonical zones only."""

    @property
    def menu_value(self) -> str | None:
        """The menu's entry to select: this zone, or the one its old name stands for."""
        return menu_zone(self.data)

    @property
    def unlisted(self) -> bool:
        """A valid zone the menu has no entry for (``Etc/GMT+5`` from an import): kept as an extra option."""
        return bool(self.data) and self.menu_value is None and is_valid_timezone(self.data)


def _frequency(form, field) -> None:
    if field.data not in {value for value, _ in FREQUENCIES}:
        raise ValidationError("Choose daily or weekly.")


def _timezone(form, field) -> None:
    if not is_valid_timezone(field.data or ""):
        raise ValidationError("Choose a time zone from the list.")


#: How much of refused topics the page shows again: the textarea's ``maxlength`` keeps browsers
#: well under it, so only a hostile client loses anything (the page stays small whatever is posted).
ECHO_TOPICS_CHARS = 2 * MAX_TOPICS_CHARS


class TopicsMixin:
    filters: list[Filter]

    def validate_topics(self, field) -> None:
        text = (field.data or "").replace("\r\n", "\n")
        field.data = text
        try:
            self.filters = parse_topics(text)
        except TopicsError as exc:
            field.errors.extend(shown_errors([f"Line {e.line}: {e.problem}" for e in exc.errors]))
            field.data = text[:ECHO_TOPICS_CHARS]
            raise StopValidation() from None

    @property
    def topics_hints(self) -> list[str]:
        """Lines kept but matching papers on any topic ("a OR b": stop words only), shown under the
        field as a hint, never an error (:func:`digest.matching.explain.topics_hints`)."""
        return [f"Line {line}: {hint}" for line, hint in topics_hints(self.topics.data or "")]


MAX_SEEDS_CHARS = 200 * MAX_SEEDS  # room for MAX_SEEDS long links


class SeedsMixin:
    """Papers the reader likes (beside :class:`TopicsMixin`): arXiv ids or arXiv / Hugging Face paper
    links, any separator. Whether each is a paper we have is checked after validation, with the
    database (:meth:`unknown_papers`), for the seeds and the ``like:`` lines alike."""

    seed_ids: list[str]
    filters: list[Filter]

    def validate_seeds(self, field) -> None:
        text = (field.data or "").replace("\r\n", "\n")
        field.data = text[:ECHO_TOPICS_CHARS]
        if len(text) > MAX_SEEDS_CHARS:
            raise StopValidation(f"Too long ({len(text)} characters, at most {MAX_SEEDS_CHARS}).")
        self.seed_ids, problems = paper_ids(text)
        if problems:
            field.errors.extend(shown_errors(problems))
            raise StopValidation()

    def unknown_papers(self, session: Session) -> bool:
        """Mark every seed and ``like:`` paper that is not a stored paper as an error on its field
        (one query); True if there was one. After validation."""
        known = known_ids(session, set(self.seed_ids) | like_ids(self.filters)).keys()
        missing = [i for i in self.seed_ids if i not in known]
        for arxiv_id in missing:
            self.seeds.errors.append(f"{arxiv_id}: no paper with this id has been on Hugging Face Daily Papers yet.")
        for f in self.filters:
            for arxiv_id in sorted(like_ids([f]) - known):
                self.topics.errors.append(f"“{f.text}”: no paper {arxiv_id} has been on Hugging Face Daily Papers yet.")
                missing.append(arxiv_id)
        return bool(missing)


class SubscribeForm(TopicsMixin, SeedsMixin, FlaskForm):
    email = EmailField(
        "Email address",
        render_kw={"autocomplete": "email", "maxlength": MAX_EMAIL_LENGTH, "required": True, "spellcheck": "false"},
    )
    topics = TextAreaField("Topics", render_kw={"rows": 5, "maxlength": MAX_TOPICS_CHARS, "spellcheck": "false"})
    seeds = TextAreaField("Papers you like", render_kw={"rows": 2, "maxlength": MAX_SEEDS_CHARS, "spellcheck": "false"})
    frequency = StringField("How often", default="daily", validators=[_frequency])
    timezone = TimezoneField("Time zone", default="UTC", validators=[_timezone])
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


class PreferencesForm(TopicsMixin, SeedsMixin, FlaskForm):
    topics = TextAreaField("Topics", render_kw={"rows": 6, "maxlength": MAX_TOPICS_CHARS, "spellcheck": "false"})
    seeds = TextAreaField("Papers you like", render_kw={"rows": 3, "maxlength": MAX_SEEDS_CHARS, "spellcheck": "false"})
    frequency = StringField("How often", validators=[_frequency])
    timezone = TimezoneField("Time zone", validators=[_timezone])
    delivery_hour = StringField("Delivery time", default=str(DEFAULT_HOUR), validators=[_hour])
