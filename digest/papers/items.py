"""The Daily Papers item format: one API item in, one validated :class:`PaperRecord` out.

Items are checked one by one; a malformed item is skipped and counted by reason, the rest kept: a
missing or mistyped id, title, abstract, authors, organisation, date or count skips the item; an
unusable optional extra (a link or image that is not http(s), stars, AI summary or keywords) is merely
dropped. Whitespace in titles and abstracts is normalised, control characters removed. The
fetching (and what to do when the source fails as a whole) is in :mod:`digest.papers.sources.daily_papers`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit

# Longest accepted values: anything longer is absurd (or would not fit its column).
MAX_TITLE = 1_000
MAX_ABSTRACT = 20_000
MAX_AUTHORS = 5_000  # collaboration papers have ~3,000
MAX_NAME = 200  # an author's name; also the org_name column
MAX_FULLNAME = 300  # org_fullname column
MAX_URL = 2_048
MAX_AI_SUMMARY = 5_000
MAX_KEYWORDS, MAX_KEYWORD = 50, 100
MAX_COUNT = 100_000_000  # upvotes, comments, stars (the columns are 32-bit)
EARLIEST_DAY = date(2020, 1, 1)  # Daily Papers began in 2023; older is a broken date

ARXIV_ID = re.compile(r"(\d{4}\.\d{4,5}|[a-z][a-z-]{0,15}(?:\.[A-Z]{2})?/\d{7})(?:v\d{1,3})?")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")  # controls, lone surrogates


class SourceError(Exception):
    """The source failed as a whole (one line, fit for a terminal); nothing may be stored."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class PaperRecord:
    """One validated item, field for field the :class:`~digest.models.Paper` columns it fills."""

    arxiv_id: str
    title: str
    daily_date: date
    abstract: str = ""
    authors: tuple[str, ...] = ()
    org_name: str | None = None
    org_fullname: str | None = None
    org_avatar: str | None = None
    published_at: datetime | None = None
    submitted_at: datetime | None = None
    upvotes: int = 0
    num_comments: int = 0
    github_repo: str | None = None
    github_stars: int | None = None
    project_page: str | None = None
    thumbnail: str | None = None
    ai_summary: str | None = None
    ai_keywords: tuple[str, ...] | None = None

    def columns(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values["authors"] = list(self.authors)
        values["ai_keywords"] = None if self.ai_keywords is None else list(self.ai_keywords)
        return values


@dataclass
class Batch:
    """What one response (or several, combined) yielded: records, and skipped items by reason."""

    records: list[PaperRecord] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    fetched: int = 0  # items in the response(s), kept or skipped
    notes: list[str] = field(default_factory=list)

    @classmethod
    def combine(cls, batches: Iterable[Batch]) -> Batch:
        """One batch; a paper seen again (in another day's response) counts as a duplicate."""
        out, seen = cls(), set()
        for batch in batches:
            out.fetched += batch.fetched
            out.skipped.update(batch.skipped)
            out.notes.extend(batch.notes)
            for record in batch.records:
                if record.arxiv_id in seen:
                    out.skipped["duplicate"] += 1
                else:
                    seen.add(record.arxiv_id)
                    out.records.append(record)
        return out


# ---------------------------------------------------------------- parsing items


class _Skip(Exception):
    """An item is malformed; the message is the reason it is counted under."""


def normalize_text(value: str) -> str:
    """One line: control characters and runs of whitespace (arXiv's hard wraps) become one space."""
    return " ".join(_UNPRINTABLE.sub(" ", value).split())


def _text(value: Any, name: str, limit: int, *, required: bool = False) -> str:
    if value is None:
        if required:
            raise _Skip(f"no {name}")
        return ""
    if not isinstance(value, str):
        raise _Skip(f"wrong type: {name}")
    if len(value) > 4 * limit:  # do not even normalise megabytes
        raise _Skip(f"too long: {name}")
    text = normalize_text(value)
    if required and not text:
        raise _Skip(f"no {name}")
    if len(text) > limit:
        raise _Skip(f"too long: {name}")
    return text


def _count(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Skip(f"wrong type: {name}")
    if not 0 <= value <= MAX_COUNT:
        raise _Skip(f"out of range: {name}")
    return value


def _moment(value: Any, name: str) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 40:
        raise _Skip(f"wrong type: {name}")
    try:
        moment = datetime.fromisoformat(value.strip())
        moment = moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise _Skip(f"bad date: {name}") from None
    return moment


def _url(value: Any) -> str | None:
    """An http(s) URL, or None: any other scheme, or anything unusable, is dropped (the item stays)."""
    if not isinstance(value, str) or len(value) > MAX_URL or _UNPRINTABLE.search(value) or " " in value.strip():
        return None
    url = value.strip()
    try:
        parts = urlsplit(url)
        ok = parts.scheme.lower() in {"http", "https"} and bool(parts.hostname)
    except ValueError:  # e.g. a bad port or IPv6 literal
        return None
    return url if ok else None


def _authors(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _Skip("wrong type: authors")
    if len(value) > MAX_AUTHORS:
        raise _Skip("too long: authors")
    names = []
    for author in value:
        name = author.get("name") if isinstance(author, dict) else author
        if not isinstance(name, str):
            raise _Skip("wrong type: authors")
        name = normalize_text(name)
        if len(name) > MAX_NAME:
            raise _Skip("too long: authors")
        if name:
            names.append(name)
    return tuple(names)


def _stars(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT
    return value if ok else None


def _ai_summary(value: Any) -> str | None:
    return (normalize_text(value) or None) if isinstance(value, str) and len(value) <= MAX_AI_SUMMARY else None


def _keywords(value: Any) -> tuple[str, ...] | None:
    if not isinstance(value, list) or len(value) > MAX_KEYWORDS:
        return None
    words = tuple(normalize_text(w) for w in value if isinstance(w, str) and len(w) <= MAX_KEYWORD)
    return tuple(w for w in words if w) or None


def parse_item(item: Any, day: date | None = None, *, latest: date | None = None) -> PaperRecord:
    """One API item as a record; raises ``_Skip(reason)``. ``day``: the day asked for, if any."""
    if not isinstance(item, dict):
        raise _Skip("not an object")
    paper = item.get("paper", item)  # a bare paper object (``/api/papers/{id}``) is accepted too
    if not isinstance(paper, dict):
        raise _Skip("wrong type: paper")

    raw_id = paper.get("id")
    if raw_id is None:
        raise _Skip("no id")
    if not isinstance(raw_id, str):
        raise _Skip("wrong type: id")
    match = ARXIV_ID.fullmatch(raw_id.strip())
    if match is None:
        raise _Skip("bad id")

    title = _text(paper.get("title", item.get("title")), "title", MAX_TITLE, required=True)
    abstract = _text(paper.get("summary", item.get("summary")), "summary", MAX_ABSTRACT)

    org = item.get("organization")
    if org is not None and not isinstance(org, dict):
        raise _Skip("wrong type: organization")
    org = org or {}

    submitted = _moment(paper.get("submittedOnDailyAt"), "submittedOnDailyAt")
    listed = _moment(item.get("publishedAt"), "publishedAt")
    daily = (submitted or listed).date() if (submitted or listed) else day
    if daily is None:
        raise _Skip("no date")
    latest = latest or datetime.now(timezone.utc).date() + timedelta(days=1)
    if not EARLIEST_DAY <= daily <= latest:
        raise _Skip("bad date: submittedOnDailyAt")

    return PaperRecord(
        arxiv_id=match.group(1),
        title=title,
        abstract=abstract,
        authors=_authors(paper.get("authors")),
        org_name=_text(org.get("name"), "organization", MAX_NAME) or None,
        org_fullname=_text(org.get("fullname"), "organization", MAX_FULLNAME) or None,
        org_avatar=_url(org.get("avatar")),
        published_at=_moment(paper.get("publishedAt"), "publishedAt"),
        submitted_at=submitted or listed,
        daily_date=daily,
        upvotes=_count(paper.get("upvotes"), "upvotes"),
        num_comments=_count(item.get("numComments"), "numComments"),
        github_repo=_url(paper.get("githubRepo")),
        github_stars=_stars(paper.get("githubStars")),
        project_page=_url(paper.get("projectPage")),
        thumbnail=_url(item.get("thumbnail")) or _url(item.get("mediaUrl")),
        ai_summary=_ai_summary(paper.get("ai_summary")),
        ai_keywords=_keywords(paper.get("ai_keywords")),
    )


def parse_items(data: Any, day: date | None = None, *, latest: date | None = None) -> Batch:
    """Validate a decoded response (a JSON array) item by item; duplicates after the first are skipped.

    ``latest``: the latest believable Daily Papers day (default tomorrow, UTC).
    """
    if not isinstance(data, list):
        kind = {dict: "an object", str: "a string"}.get(type(data), type(data).__name__)
        raise SourceError(f"expected a JSON array of papers, got {kind}")
    batch = Batch(fetched=len(data))
    latest = latest or datetime.now(timezone.utc).date() + timedelta(days=1)
    seen: set[str] = set()
    for item in data:
        try:
            record = parse_item(item, day, latest=latest)
        except _Skip as skip:
            batch.skipped[str(skip)] += 1
            continue
        if record.arxiv_id in seen:
            batch.skipped["duplicate"] += 1
            continue
        seen.add(record.arxiv_id)
        batch.records.append(record)
    return batch


def _parse_int(digits: str) -> int:
    """Python refuses to parse integers of thousands of digits; such a count is merely out of range."""
    return int(digits) if len(digits) <= 30 else MAX_COUNT + 1


def decode_json(body: bytes, what: str) -> Any:
    """The JSON value of ``body``, or a one-line :class:`SourceError` saying what is wrong with it."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise SourceError(f"{what}: body is not UTF-8 text") from None
    if not text.strip():
        raise SourceError(f"{what}: empty body, expected a JSON array")
    try:
        return json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string"):  # ran out of body
            raise SourceError(f"{what}: truncated JSON (the body ends after {len(body)} bytes)") from None
        start = normalize_text(text[:40])
        raise SourceError(f"{what}: not JSON ({exc.msg}: char {exc.pos}; body starts {start!r})") from None
    except (ValueError, RecursionError) as exc:  # absurd nesting, etc.
        raise SourceError(f"{what}: unusable JSON ({exc.__class__.__name__})") from None
