"""The papers source: fetch the Daily Papers API with httpx and turn its items into records.

Nothing here touches the database: :meth:`PapersClient.fetch_day` and :func:`load_file` return a
:class:`Batch` of validated :class:`PaperRecord` s, with the items they skipped counted by reason,
and ``digest.ingest`` stores them. Items are checked one by one; a malformed item is skipped, the
rest kept: a missing or mistyped id, title, abstract, authors, organisation, date or count skips
the item; an unusable optional extra (a link that is not http(s), stars, AI summary or keywords) is
merely dropped. When the source fails *as a whole* (a 4xx, a 5xx or 429 that outlives the retries, a
timeout, the deadline, a body that is too big, not JSON, truncated or not an array) the caller gets
:class:`SourceError` with a one-line message, and must store nothing.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from importlib import resources
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

import httpx

from digest.config import Settings

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
USER_AGENT = "paper-digest/0.1 (+self-hosted trending-papers digest)"


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
    def combine(cls, batches: Iterable["Batch"]) -> "Batch":
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


# ---------------------------------------------------------------- fetching


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), or None if unusable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return max(0.0, (moment - datetime.now(timezone.utc)).total_seconds())


class _Transient(Exception):
    """Worth another try: a connection problem, a timeout, HTTP 429 or 5xx."""

    def __init__(self, problem: str, wait: float | None = None) -> None:
        super().__init__(problem)
        self.wait = wait


class PapersClient:
    """The Daily Papers API over httpx, with timeouts, a deadline, retries and a size cap.

    ``deadline`` bounds one :meth:`fetch_day` call, retries and waits included. 429, 5xx,
    connection errors and timeouts are retried up to ``retries`` times with exponential backoff
    (``backoff`` × 2ⁿ, jittered, at most ``max_backoff``), or after ``Retry-After`` when the server
    sends one (at most ``max_retry_after``). A body is read as a stream and abandoned past
    ``max_bytes``. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        deadline: float = 120.0,
        retries: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        max_retry_after: float = 60.0,
        max_bytes: int = 16 * 2**20,
        limit: int = 100,
    ) -> None:
        self.url = settings.source_url
        self.connect_timeout, self.read_timeout, self.deadline = connect_timeout, read_timeout, deadline
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self.max_retry_after, self.max_bytes, self.limit = max_retry_after, max_bytes, limit
        self._http = httpx.Client(
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"}, follow_redirects=True, max_redirects=3
        )

    def __enter__(self) -> "PapersClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def fetch_day(self, day: date) -> Batch:
        """The papers listed for ``day``. A 400 for today or later means "not open yet": an empty day."""
        what = f"{self.url} for {day.isoformat()}"
        try:
            body = self.get({"date": day.isoformat(), "limit": str(self.limit)}, what)
        except SourceError as exc:
            if exc.status == 400 and day >= datetime.now(timezone.utc).date():
                return Batch(notes=[f"{day.isoformat()}: not open yet on the source (HTTP 400)"])
            raise
        data = decode_json(body, what)
        try:
            return parse_items(data, day)
        except SourceError as exc:
            raise SourceError(f"{what}: {exc}") from None

    def get(self, params: dict[str, str], what: str) -> bytes:
        """The body of a 200 answer, retrying transient failures until the deadline."""
        give_up_at = time.monotonic() + self.deadline
        attempt = 0
        while True:
            try:
                return self._attempt(params, what, give_up_at)
            except _Transient as exc:
                attempt += 1
                if attempt > self.retries:
                    raise SourceError(f"{what}: {exc} (gave up after {attempt} attempts)") from None
                wait = exc.wait
                if wait is None:
                    wait = min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)
                if time.monotonic() + wait >= give_up_at:
                    raise SourceError(
                        f"{what}: {exc}; no time left to retry within the {self.deadline:g} s deadline"
                    ) from None
                time.sleep(wait)

    def _attempt(self, params: dict[str, str], what: str, give_up_at: float) -> bytes:
        left = give_up_at - time.monotonic()
        if left <= 0:
            raise SourceError(f"{what}: no complete answer within the {self.deadline:g} s deadline")
        timeout = httpx.Timeout(min(self.read_timeout, left), connect=min(self.connect_timeout, left))
        try:
            with self._http.stream("GET", self.url, params=params, timeout=timeout) as response:
                status = response.status_code
                if status == 429 or status >= 500:
                    wait = _retry_after(response.headers.get("Retry-After"))
                    raise _Transient(f"HTTP {status}", None if wait is None else min(wait, self.max_retry_after))
                if status != 200:
                    hint = normalize_text(_read_some(response, 200).decode("utf-8", "replace"))[:100]
                    raise SourceError(f"{what}: HTTP {status}" + (f" ({hint})" if hint else ""), status=status)
                return self._read_capped(response, what, give_up_at)
        except httpx.TimeoutException:
            raise _Transient("timed out") from None
        except httpx.RemoteProtocolError as exc:
            raise _Transient(f"connection broke off mid-response ({_first_line(exc)})") from None
        except httpx.NetworkError as exc:
            raise _Transient(f"cannot connect or read ({_first_line(exc)})") from None
        except httpx.HTTPError as exc:  # too many redirects, undecodable compression…
            raise SourceError(f"{what}: {exc.__class__.__name__}: {_first_line(exc)}") from None

    def _read_capped(self, response: httpx.Response, what: str, give_up_at: float) -> bytes:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            raise SourceError(f"{what}: response too large ({int(declared)} bytes declared, limit {self.max_bytes})")
        chunks, size = [], 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                raise SourceError(f"{what}: response too large (stopped reading past {self.max_bytes} bytes)")
            if time.monotonic() > give_up_at:
                raise SourceError(f"{what}: no complete answer within the {self.deadline:g} s deadline")
            chunks.append(chunk)
        return b"".join(chunks)


def _read_some(response: httpx.Response, limit: int) -> bytes:
    try:
        for chunk in response.iter_bytes():
            return chunk[:limit]
    except httpx.HTTPError:
        pass
    return b""


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [exc.__class__.__name__])[0][:200]


# ---------------------------------------------------------------- files and the packaged sample


def load_file(path: Path, *, max_bytes: int = 64 * 2**20) -> Batch:
    """A saved API response (a JSON array of items), validated like a fetched one."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise SourceError(f"{path}: file too large ({size} bytes, limit {max_bytes})")
        body = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"{path}: {exc.strerror or exc}") from None
    data = decode_json(body, str(path))
    try:
        return parse_items(data)
    except SourceError as exc:
        raise SourceError(f"{path}: {exc}") from None


def sample_items(today: date | None = None) -> list[dict]:
    """The packaged sample papers (54 real ones) in the API's shape, re-dated so that their
    Daily Papers days are the last few days before ``today`` (UTC today by default)."""
    today = today or datetime.now(timezone.utc).date()
    items = json.loads(resources.files("digest").joinpath("sample_data/papers.json").read_text("utf-8"))
    last = max(date.fromisoformat(item["paper"]["submittedOnDailyAt"][:10]) for item in items)
    shift = (today - timedelta(days=1)) - last
    for item in items:
        paper = item["paper"]
        submitted = datetime.fromisoformat(paper["submittedOnDailyAt"]) + shift
        paper["submittedOnDailyAt"] = item["publishedAt"] = _iso(submitted)
        if paper.get("publishedAt") and datetime.fromisoformat(paper["publishedAt"]) > submitted:
            paper["publishedAt"] = _iso(submitted)  # never published after it was listed
    return items


def _iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
