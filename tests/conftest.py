"""Shared fixtures: real databases (SQLite and PostgreSQL), migrated once, emptied after each test;
a real SMTP server; the one paper factory; the one headless Chromium; a recording queue.

PostgreSQL, Redis and Chromium tests skip with a clear message when those are absent, unless
``DIGEST_REQUIRE_SERVICES=1`` (CI), where an absent one is a failure. Each stage's own fixtures are
in ``tests/<stage>/conftest.py``; plain helpers (servers, processes) in ``support.py``,
``papers_api.py``, ``processes.py``, ``digest_helpers.py`` and ``web_helpers.py``.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
from collections.abc import Callable
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from digest_helpers import DAY
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session
from support import SmtpServer

from digest import queue
from digest.config import Settings, SmtpSettings
from digest.db import engine_for, session_factory, upgrade
from digest.models import Base, Paper

REQUIRE = os.environ.get("DIGEST_REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get("DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_SECRET = "test-secret-key-0123456789"


def _unavailable(what: str, why: str, how: str):
    """Skip a test that needs ``what`` (with DIGEST_REQUIRE_SERVICES=1, fail it), saying what is
    missing, how we know, and how to get it: ``pytest -rs`` lists these lines."""
    if REQUIRE:
        pytest.fail(f"needs {what} (DIGEST_REQUIRE_SERVICES=1), but {why}. {how}", pytrace=False)
    pytest.skip(f"needs {what}, but {why}. {how}. (With DIGEST_REQUIRE_SERVICES=1 this is a failure.)")


def _shown(url: str) -> str:
    """A service URL for a message: its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


GET_POSTGRES = (
    "Start one with `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:16`, or set "
    "DIGEST_TEST_POSTGRES_URL to a server where you may create databases "
    "(postgresql+psycopg://USER:PASSWORD@HOST:5432/postgres); each test run makes and drops its own database"
)
GET_REDIS = (
    "Start one with `docker run -d -p 6379:6379 redis:7`, or on Debian `apt-get install redis-server` then "
    "`redis-server --daemonize yes`; or set DIGEST_TEST_REDIS_URL (the tests empty that database: 15 by default)"
)


def _port_open(url: str, default_port: int) -> bool:
    parts = urlsplit(url.replace("+psycopg", ""))
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """A fresh, migrated database ``digest_test`` on the local PostgreSQL server."""
    what = f"PostgreSQL at {_shown(PG_ADMIN_URL)}"
    if not _port_open(PG_ADMIN_URL, 5432):
        _unavailable(what, "nothing answers there", GET_POSTGRES)
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"digest_test_{os.getpid()}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:  # a server that answers, but not to us (a password, a role that may not create databases)
        admin.dispose()
        reason = str(exc.orig or exc).strip().splitlines()[0]
        _unavailable(what, f"it refused us ({reason})", "Set DIGEST_TEST_POSTGRES_URL to a user that may log in and create databases there")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    upgrade(url)
    yield url
    engine_for(url).dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not _port_open(REDIS_URL, 6379):
        _unavailable(f"Redis at {_shown(REDIS_URL)}", "nothing answers there", GET_REDIS)
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    return REDIS_URL


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory) -> Path:
    """Migrate one SQLite file per session; each test gets a copy (migrations run once)."""
    path = tmp_path_factory.mktemp("sqlite") / "template.sqlite3"
    upgrade(f"sqlite:///{path}")
    engine_for(f"sqlite:///{path}").dispose()
    return path


@pytest.fixture
def sqlite_database(_sqlite_template, tmp_path) -> Callable[[str], str]:
    """``sqlite_database("a")``: the URL of a new migrated SQLite database; a test may make several."""
    urls: list[str] = []

    def make(name: str) -> str:
        path = tmp_path / f"{name}.sqlite3"
        shutil.copy(_sqlite_template, path)
        urls.append(f"sqlite:///{path}")
        return urls[-1]

    yield make
    for url in urls:
        engine_for(url).dispose()


def _truncate(url: str) -> None:
    engine = engine_for(url)
    tables = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> str:
    """Each test runs on both backends, on an empty migrated database."""
    if request.param == "sqlite":
        path = tmp_path / "digest.sqlite3"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        yield f"sqlite:///{path}"
        engine_for(f"sqlite:///{path}").dispose()
    else:
        url = request.getfixturevalue("postgres_url")
        _truncate(url)
        yield url
        _truncate(url)


@pytest.fixture
def pg_database_url(postgres_url) -> str:
    """PostgreSQL only, emptied before and after the test."""
    _truncate(postgres_url)
    yield postgres_url
    _truncate(postgres_url)


def test_settings(database_url: str, data_dir: Path) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key=TEST_SECRET,
        base_url="https://digest.example.org",
        mail_from="Trending Papers <digest@example.org>",
        data_dir=data_dir,
    )


test_settings.__test__ = False  # a helper, not a test


@pytest.fixture
def settings(database_url, tmp_path) -> Settings:
    return test_settings(database_url, tmp_path)


@pytest.fixture
def pg_settings(pg_database_url, tmp_path) -> Settings:
    """Settings on PostgreSQL only (for what needs several processes on one database)."""
    return test_settings(pg_database_url, tmp_path)


@pytest.fixture
def pipelining() -> bool:
    """Whether ``smtp_server`` offers PIPELINING: a module overrides this to run both ways."""
    return False


@pytest.fixture
def smtp_server(pipelining):
    """A real SMTP server (aiosmtpd) on a free localhost port, capturing every message."""
    server = SmtpServer(pipelining=pipelining)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mail_settings(settings, smtp_server) -> Settings:
    """``settings`` whose mail goes to ``smtp_server``."""
    return settings.with_(smtp=SmtpSettings(host=smtp_server.host, port=smtp_server.port, timeout=10))


@pytest.fixture
def session(settings):
    """A session on the test's database; committed work is visible to other connections."""
    with session_factory(settings)() as s:
        yield s


# ---------------------------------------------------------------- papers

_paper_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def make_paper() -> Callable[..., Paper]:
    """The one paper factory: a :class:`Paper` as ingest would store it, with plausible defaults.

    ``make_paper("2611.00001", "Video diffusion", upvotes=9, org_name="acme")``; the arXiv id
    defaults to ``2611.<id>`` when an ``id`` is given, else to one unique in the test session; the
    day defaults to ``DAY`` (the last Daily Papers day before ``AT``), the abstract to "About
    <title>." and the authors to two names. With ``session=`` the paper is added and flushed (it
    then has its id); without, it is a plain object for rendering and matching. Session-scoped: it
    holds no state of a test, so hypothesis tests may take it too.
    """

    def make(
        arxiv_id: str | None = None,
        title: str | None = None,
        *,
        session: Session | None = None,
        day: date = DAY,
        upvotes: int = 0,
        **fields,
    ) -> Paper:
        number = fields["id"] if "id" in fields else next(_paper_numbers)
        arxiv_id = arxiv_id or (f"2611.{number:05d}" if "id" in fields else f"2612.{number:05d}")
        title = title or f"Paper {number}"
        fields.setdefault("abstract", f"About {title.lower()}.")
        fields.setdefault("authors", ["Ada Lovelace", "Alan Turing"])
        paper = Paper(arxiv_id=arxiv_id, title=title, daily_date=day, upvotes=upvotes, **fields)
        if session is not None:
            session.add(paper)
            session.flush()
        return paper

    return make


# ---------------------------------------------------------------- the queue


class RecordingQueue:
    """A :class:`digest.queue.Queue` standing in for the broker: it keeps what it is handed, in order.

    ``on_send(task_name, argument)`` plays a worker that takes each task the moment it is sent (to
    see what it would find in the database then); ``down = True`` makes it refuse batches as an
    unreachable broker does.
    """

    in_process = False

    def __init__(self) -> None:
        self.sent: list[tuple[str, object]] = []
        self.down = False
        self.on_send: Callable[[str, object], None] | None = None

    def send_batch(self, delivery_ids: list[int]) -> None:
        if self.down:
            raise ConnectionError("broker unreachable")
        self._take(queue.SEND_BATCH, list(delivery_ids))

    def send_confirmation(self, subscriber_id: int) -> bool:
        if self.down:
            return False
        self._take(queue.SEND_CONFIRMATION, subscriber_id)
        return True

    def _take(self, task: str, argument: object) -> None:
        self.sent.append((task, argument))
        if self.on_send is not None:
            self.on_send(task, argument)

    @property
    def batches(self) -> list[list[int]]:
        return [ids for task, ids in self.sent if task == queue.SEND_BATCH]

    @property
    def handed(self) -> list[int]:
        """Every delivery id handed over, in order (an id handed twice is here twice)."""
        return [i for ids in self.batches for i in ids]


@pytest.fixture
def recording_queue() -> RecordingQueue:
    return RecordingQueue()


# ---------------------------------------------------------------- the browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).parent / "artifacts"  # gitignored


@pytest.fixture
def chromium():
    """Debian's headless Chromium through Playwright (never a downloaded browser)."""
    if not CHROMIUM.exists():
        _unavailable(
            f"Debian's Chromium at {CHROMIUM} (Playwright drives it; the tests never download a browser)",
            "it is not installed",
            "Install it with `apt-get install chromium`",
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def screenshot() -> Callable[..., Path]:
    """``screenshot(page, "name")``: a full-page PNG in ``tests/artifacts/``, for a person to look at."""

    def take(page, name: str) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take
