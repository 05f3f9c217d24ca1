"""The papers source: fetch the Daily Papers API with httpx (or read a saved response).

Nothing here touches the database: :meth:`PapersClient.fetch_day` and :func:`load_file` return a
:class:`Batch` of validated :class:`PaperRecord` s, with the items they skipped counted by reason,
and ``digest.papers.ingest`` stores them. Items are checked one by one; a malformed item is skipped, the
rest kept: a missing or mistyped id, title, abstract, authors, organisation, date or count skips
the item; an unusable optional extra (a link that is not http(s), stars, AI summary or keywords) is
merely dropped. When the source fails *as a whole* (a 4xx, a 5xx or 429 that outlives the retries, a
timeout, the deadline, a body that is too big, not JSON, truncated or not an array) the caller gets
:class:`SourceError` with a one-line message, and must store nothing.
"""

from __future__ import annotations

import json
import random
import time
from datetime import date, datetime, timedelta, timezone
from importlib import resources
from pathlib import Path

import httpx

from digest.config import Settings
from digest.papers.items import Batch, SourceError, decode_json, normalize_text, parse_items
from digest.papers.sources.http import Transient, backoff, first_line, read_some, retry_after

USER_AGENT = "paper-digest/0.1 (+self-hosted trending-papers digest)"


# ---------------------------------------------------------------- fetching


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
        self._http = httpx.Client(headers={"User-Agent": USER_AGENT, "Accept": "application/json"}, follow_redirects=True, max_redirects=3)

    def __enter__(self) -> PapersClient:
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
            except Transient as exc:
                attempt += 1
                if attempt > self.retries:
                    raise SourceError(f"{what}: {exc} (gave up after {attempt} attempts)") from None
                wait = exc.wait
                if wait is None:
                    wait = backoff(attempt, self.backoff, self.max_backoff) * random.uniform(0.5, 1.0)
                if time.monotonic() + wait >= give_up_at:
                    raise SourceError(f"{what}: {exc}; no time left to retry within the {self.deadline:g} s deadline") from None
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
                    wait = retry_after(response.headers.get("Retry-After"))
                    raise Transient(f"HTTP {status}", None if wait is None else min(wait, self.max_retry_after))
                if status != 200:
                    hint = normalize_text(read_some(response, 200).decode("utf-8", "replace"))[:100]
                    raise SourceError(f"{what}: HTTP {status}" + (f" ({hint})" if hint else ""), status=status)
                return self._read_capped(response, what, give_up_at)
        except httpx.TimeoutException:
            raise Transient("timed out") from None
        except httpx.RemoteProtocolError as exc:
            raise Transient(f"connection broke off mid-response ({first_line(exc)})") from None
        except httpx.NetworkError as exc:
            raise Transient(f"cannot connect or read ({first_line(exc)})") from None
        except httpx.HTTPError as exc:  # too many redirects, undecodable compression…
            raise SourceError(f"{what}: {exc.__class__.__name__}: {first_line(exc)}") from None

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
    """The packaged sample papers (the 61 of the seed page, made by ``scripts/make_sample_data.py``) in
    the API's shape, re-dated so that their Daily Papers days are the last few days before ``today``
    (UTC today by default)."""
    today = today or datetime.now(timezone.utc).date()
    items = json.loads(resources.files("digest.papers").joinpath("sample_data/papers.json").read_text("utf-8"))
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
