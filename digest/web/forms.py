"""The two forms: subscribe (home page) and preferences. Both carry a CSRF token (Flask-WTF).

Every check the browser makes (``required``, ``maxlength``, the time-zone list) is made again
here: a hostile client can post anything. The choice fields are plain strings checked against
:data:`FREQUENCIES`, :data:`HOURS` and the IANA zones; the templates render their radios and
``<select>`` (with optgroups: :func:`digest.web.zones.timezone_choices`) from the same lists.

With arXiv on (``settings.arxiv_categories``), both forms offer the operator's categories as
checkboxes that write ``cat:<code>`` lines into the topics (:class:`CategoriesMixin`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from flask_wtf import FlaskForm
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict
from wtforms import EmailField, StringField, TextAreaField
from wtforms.validators import StopValidation, ValidationError

from digest.delivery.schedule import DEFAULT_HOUR, is_valid_timezone
from digest.matching.explain import topics_hints
from digest.matching.paper_ids import MAX_SEEDS, paper_ids
from digest.matching.similar import known_ids, like_ids
from digest.matching.topics import MAX_TOPICS_CHARS, Filter, TopicsError, parse_topics, shown_errors
from digest.subscribers.addresses import MAX_EMAIL_LENGTH, normalize_email
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


#: The names arXiv gives its common categories, for the checkboxes' labels (a code not here is shown alone).
CATEGORY_NAMES = {
    "cs.AI": "Artificial Intelligence",
    "cs.AR": "Hardware Architecture",
    "cs.CC": "Computational Complexity",
    "cs.CE": "Computational Engineering, Finance, and Science",
    "cs.CG": "Computational Geometry",
    "cs.CL": "Computation and Language",
    "cs.CR": "Cryptography and Security",
    "cs.CV": "Computer Vision and Pattern Recognition",
    "cs.CY": "Computers and Society",
    "cs.DB": "Databases",
    "cs.DC": "Distributed, Parallel, and Cluster Computing",
    "cs.DL": "Digital Libraries",
    "cs.DM": "Discrete Mathematics",
    "cs.DS": "Data Structures and Algorithms",
    "cs.ET": "Emerging Technologies",
    "cs.FL": "Formal Languages and Automata Theory",
    "cs.GR": "Graphics",
    "cs.GT": "Computer Science and Game Theory",
    "cs.HC": "Human-Computer Interaction",
    "cs.IR": "Information Retrieval",
    "cs.IT": "Information Theory",
    "cs.LG": "Machine Learning",
    "cs.LO": "Logic in Computer Science",
    "cs.MA": "Multiagent Systems",
    "cs.MM": "Multimedia",
    "cs.MS": "Mathematical Software",
    "cs.NA": "Numerical Analysis",
    "cs.NE": "Neural and Evolutionary Computing",
    "cs.NI": "Networking and Internet Architecture",
    "cs.OS": "Operating Systems",
    "cs.PF": "Performance",
    "cs.PL": "Programming Languages",
    "cs.RO": "Robotics",
    "cs.SC": "Symbolic Computation",
    "cs.SD": "Sound",
    "cs.SE": "Software Engineering",
    "cs.SI": "Social and Information Networks",
    "cs.SY": "Systems and Control",
    "eess.AS": "Audio and Speech Processing",
    "eess.IV": "Image and Video Processing",
    "eess.SP": "Signal Processing",
    "eess.SY": "Systems and Control",
    "math.OC": "Optimization and Control",
    "math.ST": "Statistics Theory",
    "q-bio.NC": "Neurons and Cognition",
    "stat.AP": "Applications",
    "stat.CO": "Computation",
    "stat.ME": "Methodology",
    "stat.ML": "Machine Learning",
    "stat.TH": "Statistics Theory",
}


@dataclass(frozen=True)
class CategoryChoice:
    code: str  # as the operator configured it: "cs.CL"
    name: str | None  # "Computation and Language"; None for a code not in CATEGORY_NAMES
    checked: bool

    @property
    def line(self) -> str:
        return f"cat:{self.code}"


def is_category_line(line: str, code: str) -> bool:
    """Whether a topics line is exactly the checkbox's ``cat:<code>`` (blanks around it and the
    case aside, as the filter itself ignores them); ``cat:cs.CL diffusion`` is not: the reader
    wrote it, no checkbox touches it. The same test as ``categoryLine`` in arxiv-categories.js."""
    return line.strip().lower() == f"cat:{code}".lower()


def merge_categories(text: str, configured: Sequence[str], ticked: set[str], shown: set[str]) -> str:
    """The topics once the category checkboxes are applied, the rule for a browser without
    JavaScript (with it, arxiv-categories.js has already done the same in the textarea):

    Only the checkboxes the reader *changed* since the page was drawn count. ``shown`` is what the
    page drew ticked (a hidden field: the codes whose exact ``cat:<code>`` line the topics had then),
    ``ticked`` what is ticked now. Ticked since: the ``cat:<code>`` line is appended, unless the
    topics already have it. Unticked since: every exact ``cat:<code>`` line goes. A checkbox left as
    it was leaves the topics as typed, so a reader who deletes the line in the textarea and submits
    does not get it back. Codes the operator did not configure are ignored, and so are lines the
    reader wrote around a category (``cat:cs.CL diffusion``). The result is what the textarea shows
    again and what is stored, checked by the same limits as typed topics.
    """
    lines = text.split("\n")
    for code in configured:
        if code in ticked and code not in shown and not any(is_category_line(line, code) for line in lines):
            if lines and not lines[-1].strip():
                lines.pop()  # a trailing blank line (the text ended in a newline) takes the new line
            lines.append(f"cat:{code}")
        elif code in shown and code not in ticked:
            lines = [line for line in lines if not is_category_line(line, code)]
    return "\n".join(lines)


class TopicsMixin:
    filters: list[Filter]
    #: The operator's arXiv categories the form offers as checkboxes (``settings.arxiv_categories``,
    #: set by the view with :meth:`offer_categories`); () with arXiv off: no checkboxes, as before.
    arxiv_categories: tuple[str, ...] = ()

    def offer_categories(self, categories: Sequence[str], formdata: MultiDict | None = None) -> None:
        """Offer these categories; with the posted ``formdata`` of a form that drew the checkboxes
        (its hidden ``categories_shown`` field), apply them to the topics (:func:`merge_categories`)
        before they are validated."""
        self.arxiv_categories = tuple(categories)
        if not self.arxiv_categories or formdata is None or "categories_shown" not in formdata:
            return
        shown = set(str(formdata.get("categories_shown") or "").split())
        ticked = set(formdata.getlist("categories"))
        text = (self.topics.data or "").replace("\r\n", "\n")
        self.topics.data = merge_categories(text, self.arxiv_categories, ticked, shown)

    @property
    def category_choices(self) -> list[CategoryChoice]:
        """A checkbox per offered category, ticked when the topics have its exact ``cat:<code>`` line."""
        lines = (self.topics.data or "").replace("\r\n", "\n").split("\n")
        return [
            CategoryChoice(code, CATEGORY_NAMES.get(code), any(is_category_line(line, code) for line in lines))
            for code in self.arxiv_categories
        ]

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
