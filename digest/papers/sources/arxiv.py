"""arXiv as a source: the daily announcement (RSS 2.0) and the API (Atom 1.0), fetched politely.

Nothing here touches the database. :func:`parse_rss` turns one announcement feed into an
:class:`Announcement` (the day, its items, the items skipped counted by reason); :func:`parse_api`
turns an API answer into :class:`ApiEntry` s by arXiv id (no version). :class:`ArxivClient` fetches
both as arXiv's terms ask of a client run by many operators: one connection, at least
``min_interval`` seconds between requests to each host, ``Retry-After`` honoured on 429 and 503,
exponential backoff otherwise, and an overall deadline per call after which it raises
:class:`SourceError` naming what failed.

XML is parsed with defusedxml (no entity expansion, no external resources from the network); a body
that is not well-formed XML, or not the expected document, is a one-line :class:`SourceError`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from email.utils import parseaddr, parsedate_to_datetime
from urllib.parse import urlsplit
from xml.etree.ElementTree import Element, ParseError

import httpx
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from digest.papers.items import SourceError, normalize_text
from digest.papers.sources.http import Transient, backoff, first_line, retry_after

NS = {
    "arxiv": "http://arxiv.org/schemas/atom",
    "dc": "http://purl.org/dc/elements/1.1/",
    "atom": "http://www.w3.org/2005/Atom",
    "opensearch": "http://a9.com/-/spec/opensearch/1.1/",
}
ANNOUNCE_TYPES = ("new", "cross", "replace", "replace-cross")
BATCH = 100  # ids per API call, at most

# An arXiv id: new style YYMM.NNNN(N), old style archive(.SUBJ)/YYMMNNN; then an optional vN.
_ID = re.compile(r"(?P<id>\d{4}\.\d{4,5}|[a-z][a-z-]*(?:\.[A-Z]{2})?/\d{7})(?:v(?P<version>\d+))?")
_CATEGORY = re.compile(r"[a-z][a-z-]*(?:\.[A-Za-z-]+)?")


# How arXiv marks a withdrawal: the withdrawn version's abstract is replaced by a sentence saying so
# ("This paper has been withdrawn by the author(s) …", "This submission has been withdrawn …") and
# its comments say "withdrawn" (arxiv.org/help/withdraw). Only those words at those places count:
# an abstract that discusses withdrawing something is not a withdrawal.
_WITHDRAWN_ABSTRACT = re.compile(
    r"\s*(?:this|the)\s+(?:paper|submission|article|manuscript|preprint|work)\s+(?:has\s+been|is|was)\s+withdrawn\b", re.I
)
_WITHDRAWN_COMMENT = re.compile(r"\bwithdrawn\b|\bwithdrawal\b", re.I)


def withdrawn(abstract: str, comment: str | None = None) -> bool:
    """Whether arXiv lists this version as withdrawn: its abstract opens with the withdrawal
    sentence, or its comments say "withdrawn" (and the abstract is short, as a withdrawal notice is)."""
    if _WITHDRAWN_ABSTRACT.match(abstract or ""):
        return True
    return bool(comment and _WITHDRAWN_COMMENT.search(comment) and len(abstract or "") < 400)


def split_id(text: str) -> tuple[str, int | None] | None:
    """``("2412.01234", 2)`` for ``2412.01234v2``, ``("hep-th/9901001", None)`` for an old-style id
    without a version; None for anything else. The whole text must be the id."""
    match = _ID.fullmatch(text.strip())
    if not match:
        return None
    version = match["version"]
    return match["id"], int(version) if version else None


def _id_in(text: str, prefix: str) -> tuple[str, int | None] | None:
    text = text.strip()
    return split_id(text[len(prefix) :]) if text.startswith(prefix) else None


# ---------------------------------------------------------------- the announcement (RSS)


@dataclass(frozen=True)
class FeedItem:
    arxiv_id: str  # no version
    version: int | None
    announce_type: str  # one of ANNOUNCE_TYPES
    title: str
    abstract: str
    authors: tuple[str, ...]
    categories: tuple[str, ...]  # as listed: the primary is not marked in the feed (the API says which)
    link: str


@dataclass
class Announcement:
    day: date | None  # the channel's pubDate; None only for a feed without items and without a date
    items: list[FeedItem] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def _parse_xml(data: bytes, what: str) -> Element:
    try:
        return fromstring(data)
    except ParseError as exc:
        raise SourceError(f"{what}: not well-formed XML ({exc})") from None
    except DefusedXmlException as exc:
        raise SourceError(f"{what}: refused XML with {exc.__class__.__name__} (no DTD entities are expanded)") from None


def _text(element: Element | None, path: str) -> str:
    found = element.find(path, NS) if element is not None else None
    return normalize_text("".join(found.itertext())) if found is not None else ""


def parse_rss(data: bytes, what: str = "arXiv RSS feed") -> Announcement:
    """One announcement feed (RSS 2.0, one or several categories joined by ``+``)."""
    root = _parse_xml(data, what)
    channel = root.find("channel")
    if root.tag != "rss" or channel is None:
        raise SourceError(f"{what}: not an RSS 2.0 feed (root element <{root.tag}>)")
    items = channel.findall("item")
    day = _day(_text(channel, "pubDate"))
    if day is None and items:
        raise SourceError(f"{what}: the channel has no usable pubDate (the announcement day)")
    announcement = Announcement(day)
    seen: set[str] = set()
    for element in items:
        try:
            item = _feed_item(element)
        except _Skip as skip:
            reason = str(skip)
            announcement.skipped[reason] = announcement.skipped.get(reason, 0) + 1
            continue
        if item.arxiv_id in seen:
            announcement.skipped["duplicate"] = announcement.skipped.get("duplicate", 0) + 1
            continue
        seen.add(item.arxiv_id)
        announcement.items.append(item)
    return announcement


class _Skip(Exception):
    """This item is unusable; the message is the reason it is counted under."""


def _day(value: str) -> date | None:
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).date()  # the day in arXiv's own zone (US Eastern)
    except (TypeError, ValueError, IndexError):
        return None


_HEADER = re.compile(r"arXiv:(?P<id>\S+)\s+Announce Type:\s*(?P<type>[a-z-]+)")


def _feed_item(item: Element) -> FeedItem:
    description = _text(item, "description")
    header = _HEADER.match(description)
    guid, link = _text(item, "guid"), _text(item, "link")
    if not (guid or header or link):
        raise _Skip("no id")
    # The guid (oai:arXiv.org:<id>v<N>) and the description carry the version; the link does not.
    parsed = _id_in(guid, "oai:arXiv.org:") or (split_id(header["id"]) if header else None)
    if parsed is None:
        parsed = _id_in(link, "https://arxiv.org/abs/") or _id_in(link, "http://arxiv.org/abs/")
    if parsed is None:
        raise _Skip("bad id")
    arxiv_id, version = parsed
    announce_type = _text(item, "arxiv:announce_type") or (header["type"] if header else "")
    if announce_type not in ANNOUNCE_TYPES:
        raise _Skip("bad announce type")
    title = _text(item, "title")
    if not title:
        raise _Skip("no title")
    _, marker, abstract = description.partition("Abstract:")
    authors = tuple(name for name in (part.strip() for part in _text(item, "dc:creator").split(",")) if name)
    categories = tuple(dict.fromkeys(c for c in (normalize_text(e.text or "") for e in item.findall("category")) if c))
    return FeedItem(
        arxiv_id=arxiv_id,
        version=version,
        announce_type=announce_type,
        title=title,
        abstract=abstract.strip() if marker else "",
        authors=authors,
        categories=categories,
        link=link or f"https://arxiv.org/abs/{arxiv_id}",
    )


# ---------------------------------------------------------------- the API (Atom)


@dataclass(frozen=True)
class ApiEntry:
    arxiv_id: str  # no version
    version: int | None
    primary_category: str
    categories: tuple[str, ...]
    published: datetime | None  # the first version
    updated: datetime | None  # this version
    title: str
    summary: str
    authors: tuple[str, ...]
    comment: str | None = None
    journal_ref: str | None = None
    doi: str | None = None


def parse_api(data: bytes, what: str = "arXiv API answer") -> dict[str, ApiEntry]:
    """The entries of an API answer by id (no version). Error entries (arXiv's answer for an id it
    cannot look up) and entries without a usable id are left out; so the caller finds an id it asked
    for absent, and decides."""
    root = _parse_xml(data, what)
    if root.tag != f"{{{NS['atom']}}}feed":
        raise SourceError(f"{what}: not an Atom feed (root element <{root.tag}>)")
    entries: dict[str, ApiEntry] = {}
    for entry in root.findall("atom:entry", NS):
        ident = _text(entry, "atom:id")
        parsed = _id_in(ident, "http://arxiv.org/abs/") or _id_in(ident, "https://arxiv.org/abs/")
        if parsed is None:  # e.g. http://arxiv.org/api/errors#incorrect_id_format_for_…
            continue
        arxiv_id, version = parsed
        primary = entry.find("arxiv:primary_category", NS)
        categories = tuple(dict.fromkeys(c.get("term", "") for c in entry.findall("atom:category", NS) if c.get("term")))
        entries[arxiv_id] = ApiEntry(
            arxiv_id=arxiv_id,
            version=version,
            primary_category=(primary.get("term", "") if primary is not None else "") or (categories[0] if categories else ""),
            categories=categories,
            published=_moment(_text(entry, "atom:published")),
            updated=_moment(_text(entry, "atom:updated")),
            title=_text(entry, "atom:title"),
            summary=_text(entry, "atom:summary"),
            authors=tuple(name for name in (_text(a, "atom:name") for a in entry.findall("atom:author", NS)) if name),
            comment=_text(entry, "arxiv:comment") or None,
            journal_ref=_text(entry, "arxiv:journal_ref") or None,
            doi=_text(entry, "arxiv:doi") or None,
        )
    return entries


def _moment(value: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


# ---------------------------------------------------------------- fetching


def user_agent(mail_from: str) -> str:
    """The User-Agent arXiv asks for: the product and a contact (``DIGEST_MAIL_FROM``'s address)."""
    address = parseaddr(mail_from)[1]
    if "@" not in address:
        raise ValueError(f"arXiv asks for a contact address in the User-Agent; {mail_from!r} has none")
    return f"Trending Papers digest (mailto:{address})"


class ArxivClient:
    """arXiv's RSS feed and API over one httpx connection, as arXiv's terms of use ask.

    ``mail_from`` is ``DIGEST_MAIL_FROM``: its address goes in the User-Agent. At least
    ``min_interval`` seconds pass between the end of one request to a host and the start of the next.
    A 429, a 5xx, a timeout or a broken connection is tried again after ``Retry-After`` (429, 503) or
    ``backoff`` × 2ⁿ seconds (at most ``max_backoff``); ``deadline`` bounds one call
    (:meth:`announcement` or :meth:`details`, all batches, retries and waits included).
    ``clock``/``sleep`` are injectable so tests need not wait for real. Use as a context manager.
    """

    def __init__(
        self,
        mail_from: str,
        *,
        min_interval: float = 3.0,
        deadline: float = 600.0,
        backoff: float = 5.0,
        max_backoff: float = 120.0,
        timeout: float = 60.0,
        max_bytes: int = 64 * 2**20,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.user_agent = user_agent(mail_from)
        self.min_interval, self.deadline, self.backoff, self.max_backoff = min_interval, deadline, backoff, max_backoff
        self.timeout, self.max_bytes, self.clock, self.sleep = timeout, max_bytes, clock, sleep
        self._last: dict[str, float] = {}  # host -> when its last request ended
        self._http = httpx.Client(
            headers={"User-Agent": self.user_agent},
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            follow_redirects=True,
            max_redirects=3,
        )

    def __enter__(self) -> ArxivClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def announcement(self, rss_url_base: str, categories: Iterable[str]) -> Announcement:
        """The day's announcement for ``categories``, one feed (``<base>cs.CL+cs.LG``): a paper
        cross-listed in several of them is one item."""
        cats = list(dict.fromkeys(categories))
        bad = [c for c in cats if not _CATEGORY.fullmatch(c)]
        if not cats or bad:
            raise ValueError(f"arXiv categories must be like cs.CL; got {bad or 'none'}")
        url = rss_url_base + "+".join(cats)
        return parse_rss(self.get(url, {}, f"arXiv RSS {url}", self.clock() + self.deadline), f"arXiv RSS {url}")

    def details(self, api_url: str, ids: Iterable[str]) -> dict[str, ApiEntry]:
        """What the feed lacks, for ``ids`` (no versions), in batches of at most 100; ids the API
        does not answer for are absent from the result."""
        wanted = list(dict.fromkeys(ids))
        give_up_at = self.clock() + self.deadline
        found: dict[str, ApiEntry] = {}
        for start in range(0, len(wanted), BATCH):
            batch = wanted[start : start + BATCH]
            what = f"arXiv API {api_url} (ids {start + 1}-{start + len(batch)} of {len(wanted)})"
            body = self.get(api_url, {"id_list": ",".join(batch), "max_results": str(len(batch))}, what, give_up_at)
            found.update(parse_api(body, what))
        return found

    def get(self, url: str, params: dict[str, str], what: str, give_up_at: float) -> bytes:
        """The body of a 200 answer, waiting politely and retrying transient failures until ``give_up_at``."""
        host = urlsplit(url).netloc
        attempt = 0
        wait = 0.0
        while True:
            wait = max(wait, self._last.get(host, float("-inf")) + self.min_interval - self.clock())
            if wait > 0:
                if self.clock() + wait > give_up_at:
                    raise SourceError(f"{what}: no time left within the {self.deadline:g} s deadline to wait {wait:g} s")
                self.sleep(wait)
            try:
                return self._attempt(url, params, what, give_up_at)
            except Transient as exc:
                attempt += 1
                wait = exc.wait if exc.wait is not None else backoff(attempt, self.backoff, self.max_backoff)
                if self.clock() + wait > give_up_at:
                    raise SourceError(
                        f"{what}: {exc} after {attempt} attempt{'s' * (attempt > 1)}; "
                        f"gave up, the {self.deadline:g} s deadline would pass before the next try"
                    ) from None
            finally:
                self._last[host] = self.clock()

    def _attempt(self, url: str, params: dict[str, str], what: str, give_up_at: float) -> bytes:
        left = give_up_at - self.clock()
        if left <= 0:
            raise SourceError(f"{what}: no answer within the {self.deadline:g} s deadline")
        try:
            with self._http.stream("GET", url, params=params, timeout=min(self.timeout, left)) as response:
                status = response.status_code
                if status in (429, 503):
                    raise Transient(f"HTTP {status}", retry_after(response.headers.get("Retry-After")))
                if status >= 500:
                    raise Transient(f"HTTP {status}")
                if status != 200:
                    raise SourceError(f"{what}: HTTP {status}", status=status)
                chunks, size = [], 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise SourceError(f"{what}: response too large (stopped reading past {self.max_bytes} bytes)")
                    chunks.append(chunk)
                return b"".join(chunks)
        except httpx.TimeoutException:
            raise Transient("timed out") from None
        except httpx.TransportError as exc:
            raise Transient(f"connection failed ({first_line(exc)})") from None
