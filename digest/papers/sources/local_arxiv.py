"""A real local HTTP server speaking arXiv's two formats, for the tests and the demo; nothing here
reaches the internet.

The announcement feed (RSS 2.0) is at ``<base>/rss/<cat>+<cat>``, the API (Atom) at
``<base>/api/query?id_list=…``, both in the shapes :func:`digest.papers.sources.arxiv.parse_rss` and
:func:`~digest.papers.sources.arxiv.parse_api` read (the shapes of rss.arxiv.org and
export.arxiv.org). The server answers from :class:`ArxivPaper` s held in memory.

``server.papers`` is the day's announcement; a combined feed (``/rss/cs.CL+cs.LG``) lists each paper
in any of the asked categories once, as arXiv's does: ``new`` / ``replace`` when its primary category
is among them, ``cross`` / ``replace-cross`` otherwise. The API answers for every paper in
``server.papers`` and ``server.catalogue``, an error entry for other ids, and nothing at all for ids in
``server.dropped``. ``server.unavailable("api", times=2, retry_after=1)`` makes the next two API
requests a 503 with ``Retry-After: 1`` (``times=None``: forever). Every request is recorded in
``server.requests`` with its arrival time (``time.monotonic()``) and headers.

:func:`sample_announcement` builds the demo's announcement from the packaged sample papers and
their arXiv categories (``sample_data/arxiv_categories.json``); the feed's channel description says
that is what it is.
"""

from __future__ import annotations

import ipaddress
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from datetime import time as daytime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape, quoteattr

from digest.papers.sources.daily_papers import sample_items

EASTERN = timezone(timedelta(hours=-5))  # arXiv's feed dates (standard time is enough here)


@dataclass
class ArxivPaper:
    arxiv_id: str
    title: str
    categories: tuple[str, ...]  # the first is the primary category
    version: int = 1
    announce: str = "new"  # or "replace"
    authors: tuple[str, ...] = ("Ada Lovelace", "Alan Turing")
    abstract: str = "We study things."
    published: datetime = datetime(2024, 2, 21, 18, 0, tzinfo=timezone.utc)
    comment: str | None = None
    journal_ref: str | None = None


@dataclass
class Request:
    path: str
    params: dict[str, str]
    at: float
    headers: dict[str, str]
    client_port: int  # the same port for every request: one connection, kept alive


def announce_type(paper: ArxivPaper, categories: list[str] | tuple[str, ...]) -> str | None:
    """How a feed of ``categories`` lists ``paper``: ``new``/``replace`` when its primary category is
    among them, ``cross``/``replace-cross`` when only a cross-list is, None when it is not listed."""
    wanted = set(categories)
    if not wanted & set(paper.categories):
        return None
    if paper.categories[0] in wanted:
        return paper.announce
    return "cross" if paper.announce == "new" else "replace-cross"


def rss_item(paper: ArxivPaper, announce_type: str, day: date) -> str:
    vid = f"{paper.arxiv_id}v{paper.version}"
    categories = "".join(f"<category>{escape(c)}</category>" for c in paper.categories)
    description = f"arXiv:{vid} Announce Type: {announce_type} \nAbstract: {paper.abstract}"
    return (
        f"<item><title>{escape(paper.title)}</title><link>https://arxiv.org/abs/{paper.arxiv_id}</link>"
        f"<description>{escape(description)}</description>"
        f'<guid isPermaLink="false">oai:arXiv.org:{vid}</guid>{categories}'
        f"<pubDate>{_rfc822(day)}</pubDate><arxiv:announce_type>{announce_type}</arxiv:announce_type>"
        f"<dc:rights>http://creativecommons.org/licenses/by/4.0/</dc:rights>"
        f"<dc:creator>{escape(', '.join(paper.authors))}</dc:creator></item>"
    )


def _rfc822(day: date) -> str:
    return format_datetime(datetime.combine(day, daytime(0, 0), EASTERN))


def rss_feed(
    day: date,
    categories: list[str],
    papers: list[ArxivPaper],
    extra_items: list[str] = (),
    description: str | None = None,
) -> bytes:
    """The announcement feed for ``categories`` (joined by ``+``), as rss.arxiv.org shapes it;
    ``description`` replaces the channel's (``… updates on the arXiv.org e-print archive.``)."""
    items = []
    for paper in papers:
        kind = announce_type(paper, categories)
        if kind is not None:
            items.append(rss_item(paper, kind, day))
    name = "+".join(categories)
    about = description or f"{name} updates on the arXiv.org e-print archive."
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom" xmlns:content="http://purl.org/rss/1.0/modules/content/" version="2.0">'
        f"<channel><title>{escape(name)} updates on arXiv.org</title><link>http://rss.arxiv.org/rss/{escape(name)}</link>"
        f"<description>{escape(about)}</description>"
        f'<atom:link href="https://rss.arxiv.org/rss/{escape(name)}" rel="self" type="application/rss+xml"/>'
        f"<docs>http://www.rssboard.org/rss-specification</docs><language>en-us</language>"
        f"<lastBuildDate>{format_datetime(datetime.combine(day, daytime(5, 0, 11), timezone.utc))}</lastBuildDate>"
        f"<managingEditor>rss-help@arxiv.org</managingEditor><pubDate>{_rfc822(day)}</pubDate>"
        "<skipDays><day>Saturday</day><day>Sunday</day></skipDays>" + "".join(items) + "".join(extra_items) + "</channel></rss>"
    ).encode()


def api_entry(paper: ArxivPaper) -> str:
    vid = f"{paper.arxiv_id}v{paper.version}"
    updated = paper.published + timedelta(days=paper.version - 1)
    authors = "".join(f"<author><name>{escape(a)}</name></author>" for a in paper.authors)
    extras = ""
    if paper.comment:
        extras += f"<arxiv:comment>{escape(paper.comment)}</arxiv:comment>"
    if paper.journal_ref:
        extras += f"<arxiv:journal_ref>{escape(paper.journal_ref)}</arxiv:journal_ref>"
    categories = "".join(f'<category term={quoteattr(c)} scheme="http://arxiv.org/schemas/atom"/>' for c in paper.categories)
    return (
        f"<entry><id>http://arxiv.org/abs/{vid}</id><updated>{updated.strftime('%Y-%m-%dT%H:%M:%SZ')}</updated>"
        f"<published>{paper.published.strftime('%Y-%m-%dT%H:%M:%SZ')}</published>"
        f"<title>{escape(paper.title)}</title><summary>  {escape(paper.abstract)}\n</summary>{authors}{extras}"
        f'<link href="http://arxiv.org/abs/{vid}" rel="alternate" type="text/html"/>'
        f'<link title="pdf" href="http://arxiv.org/pdf/{vid}" rel="related" type="application/pdf"/>'
        f'<arxiv:primary_category term={quoteattr(paper.categories[0])} scheme="http://arxiv.org/schemas/atom"/>'
        f"{categories}</entry>"
    )


def api_error_entry(arxiv_id: str) -> str:
    return (
        f"<entry><id>http://arxiv.org/api/errors#incorrect_id_format_for_{escape(arxiv_id)}</id><title>Error</title>"
        f"<summary>incorrect id format for {escape(arxiv_id)}</summary><updated>2024-02-23T00:00:00-05:00</updated>"
        '<link href="http://arxiv.org/api/errors#incorrect_id_format" rel="alternate" type="text/html"/>'
        "<author><name>arXiv api core</name></author></entry>"
    )


def api_feed(entries: list[str]) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
        '<link href="http://arxiv.org/api/query" rel="self" type="application/atom+xml"/><title type="html">ArXiv Query</title>'
        "<id>http://arxiv.org/api/x</id><updated>2024-02-23T00:00:00-05:00</updated>"
        f'<opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{len(entries)}</opensearch:totalResults>'
        '<opensearch:startIndex xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">0</opensearch:startIndex>'
        f'<opensearch:itemsPerPage xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{len(entries)}</opensearch:itemsPerPage>'
        + "".join(entries).replace("<entry>", '<entry xmlns:arxiv="http://arxiv.org/schemas/atom">')
        + "</feed>"
    ).encode()


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is this machine (``localhost``, 127.0.0.0/8, ``::1``): only such a
    server may be asked without arXiv's wait between requests."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client closing its kept-alive connection is no error
            super().handle_error(request, client_address)


@dataclass
class _Outage:
    times: int | None  # None: forever
    retry_after: int | None
    status: int = 503


@dataclass
class ArxivServer:
    """Listens on 127.0.0.1 at a free port from construction; :meth:`start` serves in a daemon thread."""

    day: date = date(2024, 2, 23)
    papers: list[ArxivPaper] = field(default_factory=list)
    catalogue: list[ArxivPaper] = field(default_factory=list)  # known to the API beside the day's papers
    dropped: set[str] = field(default_factory=set)  # ids the API leaves out of its answer
    extra_items: list[str] = field(default_factory=list)  # raw <item>s appended to every feed
    rss_body: bytes | None = None  # served instead of a built feed (malformed XML…)
    description: str | None = None  # the feeds' channel description (None: arXiv's wording)
    requests: list[Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._outages: dict[str, _Outage] = {}
        self._lock = threading.Lock()
        self._started = False
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                server._serve(self)

            def log_message(self, *args) -> None:
                pass

        self._http = _Server(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._http.block_on_close = False
        self._thread = threading.Thread(target=self._http.serve_forever, args=(0.05,), daemon=True, name="local-arxiv")

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    @property
    def rss_url(self) -> str:
        return self.base + "/rss/"

    @property
    def api_url(self) -> str:
        return self.base + "/api/query"

    def unavailable(self, which: str, times: int | None, retry_after: int | None = None, status: int = 503) -> None:
        """The next ``times`` requests to ``which`` ("rss" or "api") answer ``status`` (None: all of them)."""
        self._outages[which] = _Outage(times, retry_after, status)

    def start(self) -> ArxivServer:
        self._thread.start()
        self._started = True
        return self

    def stop(self) -> None:
        if self._started:  # shutdown() waits for serve_forever, which never ran otherwise
            self._http.shutdown()
            self._started = False
        self._http.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append(Request(parts.path, params, time.monotonic(), dict(handler.headers.items()), handler.client_address[1]))
            which = "rss" if parts.path.startswith("/rss/") else "api" if parts.path == "/api/query" else ""
            outage = self._outages.get(which)
            if outage and outage.times is not None:
                outage.times -= 1
                if outage.times < 0:
                    del self._outages[which]
                    outage = None
        if outage:
            headers = {"Retry-After": str(outage.retry_after)} if outage.retry_after is not None else {}
            return self._reply(handler, outage.status, b"Service temporarily unavailable", "text/plain", headers)
        if which == "rss":
            categories = unquote(parts.path[5:]).split("+")
            body = self.rss_body or rss_feed(self.day, categories, self.papers, self.extra_items, self.description)
            return self._reply(handler, 200, body, "application/rss+xml; charset=utf-8")
        if which == "api":
            known = {p.arxiv_id: p for p in [*self.catalogue, *self.papers]}
            ids = [i for i in params.get("id_list", "").split(",") if i]
            entries = [api_entry(known[i]) if i in known else api_error_entry(i) for i in ids if i not in self.dropped]
            return self._reply(handler, 200, api_feed(entries), "application/atom+xml; charset=utf-8")
        self._reply(handler, 404, b"not found", "text/plain")

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", kind)
            handler.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass


# ---------------------------------------------------------------- the demo's sample announcement

#: The categories the demo follows when ``DIGEST_ARXIV_CATEGORIES`` is unset: the four the sample
#: papers' primary categories mostly fall in. A sample paper whose primary is elsewhere (stat.ML,
#: cs.NE, quant-ph…) but is cross-listed into one of them is a ``cross`` item of the demo's feed.
SAMPLE_CATEGORIES = ("cs.CL", "cs.LG", "cs.CV", "cs.AI")

#: Sample papers left out of the demo's Daily Papers sample and announced by the sample arXiv feed
#: alone, so the demo has papers only arXiv knows (no Daily Papers day). They are real papers with
#: their real ids and categories found in public pages (see arxiv_categories.json); one of them
#: (1602.03616, cs.NE cross-listed to cs.CV) is a cross-list in the demo's feed.
ARXIV_ONLY = ("1602.03616", "2409.09497", "2510.04491", "2601.08209", "2603.06922")

ORIGIN = "made from the packaged sample papers"


def sample_categories() -> dict[str, tuple[str, ...]]:
    """Each sample paper's arXiv categories by id, primary first (``sample_data/arxiv_categories.json``)."""
    data = json.loads(resources.files("digest.papers").joinpath("sample_data/arxiv_categories.json").read_text("utf-8"))
    return {arxiv_id: (entry["primary"], *entry["cross"]) for arxiv_id, entry in data.items() if not arxiv_id.startswith("_")}


@dataclass
class SampleAnnouncement:
    """The demo's arXiv announcement of ``day``: :data:`ARXIV_ONLY` (``held_back`` from the Daily
    Papers sample) and the papers of the sample's latest Daily Papers day, each in its categories."""

    day: date
    papers: list[ArxivPaper]
    held_back: frozenset[str]

    def counts(self, categories: list[str] | tuple[str, ...]) -> tuple[int, int]:
        """(new, cross-lists) that the feed of ``categories`` lists."""
        kinds = [announce_type(p, categories) for p in self.papers]
        return kinds.count("new"), kinds.count("cross")

    def description(self, categories: list[str] | tuple[str, ...]) -> str:
        """The feed's channel description: what this announcement is, and that it is not arXiv's."""
        new, cross = self.counts(categories)
        return (
            f"arXiv sample announcement ({ORIGIN}): {new} new, {cross} cross-lists in {', '.join(categories)}, "
            f"dated {self.day.isoformat()}. Served by the demo's local server, not by arXiv: {len(self.held_back)} "
            "of the papers are held back from the demo's Daily Papers sample so that only this feed announces them."
        )

    def server(self, categories: list[str] | tuple[str, ...]) -> ArxivServer:
        """A local server (not started) serving this announcement, its feeds saying what they are."""
        return ArxivServer(day=self.day, papers=list(self.papers), description=self.description(categories))


def sample_announcement(today: date) -> SampleAnnouncement:
    """The sample announcement, from the same re-dated sample papers the demo stores
    (:func:`~digest.papers.sources.daily_papers.sample_items` of ``today``): the latest Daily Papers
    day's papers (the day before ``today``) and :data:`ARXIV_ONLY`, with their titles, abstracts,
    authors as the sample has them ("6 authors": the sample has no names) and first-version dates.
    It is dated that latest Daily Papers day: an announcement dated D reaches the digests whose
    window holds the Daily Papers day D, so the demo's next digests show it. Nothing is made up but
    the announcement itself: it has that date whatever the weekday, every paper is version 1 and
    ``new`` in its primary category (so ``cross`` where only a cross-list is followed)."""
    categories = sample_categories()
    items = sample_items(today)
    latest = max(item["paper"]["submittedOnDailyAt"][:10] for item in items)
    papers = []
    for item in items:
        paper = item["paper"]
        arxiv_id = paper["id"]
        if arxiv_id not in ARXIV_ONLY and paper["submittedOnDailyAt"][:10] != latest:
            continue
        papers.append(
            ArxivPaper(
                arxiv_id=arxiv_id,
                title=paper["title"],
                categories=categories[arxiv_id],
                authors=tuple(a["name"] for a in paper.get("authors") or () if a.get("name")),
                abstract=paper["summary"],
                published=datetime.fromisoformat(paper.get("publishedAt") or paper["submittedOnDailyAt"]),
            )
        )
    return SampleAnnouncement(date.fromisoformat(latest), sorted(papers, key=lambda p: p.arxiv_id), frozenset(ARXIV_ONLY))
