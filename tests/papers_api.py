"""A real local HTTP server standing in for the Daily Papers API, with scripted answers.

``api.days["2025-09-08"] = [Reply(429, headers={"Retry-After": "1"}), ok(items)]`` makes the first
request for that date get a 429 and every later one the list (the last reply repeats). Dates
without a script answer ``[]`` (an empty day). Every request is logged in ``api.requests``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

DATA = Path(__file__).parent / "data"
GOOD_DAY = "2025-09-08"  # the day of tests/data/daily_papers_2025-09-08.json


@dataclass
class Reply:
    status: int = 200
    body: bytes = b"[]"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before the status line (a slow server)
    trickle: float = 0.0  # seconds between body chunks (a server that dribbles)
    chunk: int = 65536
    repeat: int = 1  # the body is sent this many times (a huge body without building it)
    length: int | None = None  # Content-Length to declare; None: the real one; -1: none (close ends it)


@dataclass
class Request:
    path: str
    params: dict[str, str]
    at: float


def item(arxiv_id: str, title: str, upvotes: int = 0, day: str = GOOD_DAY, **paper) -> dict:
    """One API item in the documented shape."""
    body = {
        "id": arxiv_id,
        "authors": [{"_id": "a1", "name": "Ada Lovelace", "hidden": False}],
        "publishedAt": f"{day}T01:00:00.000Z",
        "submittedOnDailyAt": f"{day}T02:44:20.973Z",
        "title": title,
        "summary": f"Abstract of {title}.",
        "upvotes": upvotes,
    } | paper
    return {"paper": body, "publishedAt": body["submittedOnDailyAt"], "title": title, "numComments": 0}


PAPERS_PER_DAY = 6  # in diffusion_papers()


def diffusion_papers(day: date, d: int) -> list[dict]:
    """``PAPERS_PER_DAY`` diffusion papers of one Daily Papers day (``d`` keeps ids of days apart)."""
    return [
        item(
            f"2611.{d:02d}{i:03d}",
            f"Scaling study {d}-{i} of diffusion transformers",
            10 * i + d,
            day.isoformat(),
            summary="We study how diffusion transformers scale.",
        )
        for i in range(PAPERS_PER_DAY)
    ]


def ok(items: list | bytes, **kw) -> Reply:
    body = items if isinstance(items, bytes) else json.dumps(items).encode()
    return Reply(200, body, {"Content-Type": "application/json; charset=utf-8"}, **kw)


def good_items() -> list[dict]:
    return json.loads((DATA / f"daily_papers_{GOOD_DAY}.json").read_text("utf-8"))


def hostile_items() -> list[dict]:
    """tests/data/daily_papers_hostile.json plus two absurdly long items (too big for a fixture file)."""
    items = json.loads((DATA / "daily_papers_hostile.json").read_text("utf-8"))
    items.append(item("2509.09901", "A" * 5000))
    items.append(item("2509.09902", "Long abstract", summary="word " * 30_000))
    return items


#: Skip reasons for hostile_items(): what a correct ingest must count.
HOSTILE_SKIPPED = {
    "no id": 1,
    "wrong type: id": 1,
    "bad id": 2,
    "no title": 2,
    "wrong type: title": 1,
    "wrong type: upvotes": 2,
    "out of range: upvotes": 2,
    "duplicate": 1,
    "not an object": 3,
    "wrong type: authors": 1,
    "wrong type: organization": 1,
    "bad date: submittedOnDailyAt": 2,
    "too long: title": 1,
    "too long: summary": 1,
}
HOSTILE_KEPT = ("2509.10001", "2509.10002", "2509.10003")

# Scenarios, as reply scripts.
SCENARIOS = {
    "good": lambda: [ok(good_items())],
    "empty": lambda: [ok([])],
    "hostile": lambda: [ok(hostile_items())],
    "truncated": lambda: [ok(json.dumps(good_items()).encode()[:700], length=5000)],  # closes early
    "cut_json": lambda: [ok(json.dumps(good_items()).encode()[:700], length=-1)],  # ends mid-JSON
    "500": lambda: [Reply(500, b"internal error")],
    "429_then_200": lambda: [Reply(429, b"slow down", {"Retry-After": "1"}), ok(good_items())],
    "slow": lambda: [ok(good_items(), delay=3.0)],
    "dribble": lambda: [ok(b" " * 200 + b"[]", chunk=1, trickle=0.05)],
    "huge": lambda: [ok(b" " * 65536, repeat=800, length=-1)],  # 50 MiB of whitespace, no length
    "huge_declared": lambda: [ok(b"[]", length=500_000_000)],
    "non_json": lambda: [Reply(200, b"<!DOCTYPE html><html><body>Sorry</body></html>", {"Content-Type": "text/html"})],
    "non_array": lambda: [ok(b'{"error": "Invalid date"}')],
    "404": lambda: [Reply(404, b'{"error":"Not Found"}', {"Content-Type": "application/json"})],
    "400": lambda: [Reply(400, b'{"error":"Date not available yet"}', {"Content-Type": "application/json"})],
}


class PapersApi:
    def __init__(self) -> None:
        self.days: dict[str, list[Reply]] = {}
        self.requests: list[Request] = []
        self.sent: list[int] = []  # body bytes actually written, per finished reply
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                api._serve(self)

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/daily_papers"

    def scenario(self, day: str, name: str) -> None:
        self.days[day] = SCENARIOS[name]()

    def requested_days(self) -> list[str]:
        return [r.params.get("date", "") for r in self.requests]

    def start(self) -> PapersApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next_reply(self, day: str) -> Reply:
        with self._lock:
            script = self.days.get(day)
            if not script:
                return ok([])
            return script.pop(0) if len(script) > 1 else script[0]

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(handler.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        with self._lock:
            self.requests.append(Request(parts.path, params, time.monotonic()))
        reply = self._next_reply(params.get("date", ""))
        sent = 0
        try:
            time.sleep(reply.delay)
            handler.send_response(reply.status)
            for name, value in reply.headers.items():
                handler.send_header(name, value)
            if reply.length != -1:
                handler.send_header("Content-Length", str(reply.length or len(reply.body) * reply.repeat))
            handler.send_header("Connection", "close")
            handler.end_headers()
            for _ in range(reply.repeat):
                for start in range(0, len(reply.body), reply.chunk):
                    piece = reply.body[start : start + reply.chunk]
                    handler.wfile.write(piece)
                    handler.wfile.flush()
                    sent += len(piece)
                    if reply.trickle:
                        time.sleep(reply.trickle)
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            handler.close_connection = True
            with self._lock:
                self.sent.append(sent)
