"""Shared fixtures: real databases (SQLite and PostgreSQL), migrated once, emptied after each test.

PostgreSQL and Redis tests skip with a clear message when those servers are absent, unless
``DIGEST_REQUIRE_SERVICES=1`` (CI), where an absent server is a failure.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, text

from digest.config import Settings
from digest.db import engine_for, upgrade
from digest.models import Base

REQUIRE = os.environ.get("DIGEST_REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get("DIGEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("DIGEST_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TEST_SECRET = "test-secret-key-0123456789"


def _unavailable(what: str, why: str):
    message = f"{what} is not available ({why}); set DIGEST_REQUIRE_SERVICES=1 to make this an error"
    if REQUIRE:
        pytest.fail(f"{what} is required (DIGEST_REQUIRE_SERVICES=1) but not available: {why}", pytrace=False)
    pytest.skip(message)


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
    if not _port_open(PG_ADMIN_URL, 5432):
        _unavailable("PostgreSQL", f"nothing answers at {PG_ADMIN_URL}")
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"digest_test_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
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
        _unavailable("Redis", f"nothing answers at {REDIS_URL}")
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
    from support import SmtpServer

    server = SmtpServer(pipelining=pipelining)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def session(settings):
    """A session on the test's database; committed work is visible to other connections."""
    from digest.db import session_factory

    with session_factory(settings)() as s:
        yield s

