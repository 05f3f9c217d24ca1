"""Engine, sessions and migrations, from the one database URL in :class:`~digest.config.Settings`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import ColumnElement, Engine, any_, bindparam, create_engine, event, make_url
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, sessionmaker

from digest.config import Settings
from digest.resources import resource_path

ALEMBIC_INI = resource_path("alembic.ini")
MIGRATIONS = resource_path("alembic")


SQLITE_BUSY_TIMEOUT = 30.0  # seconds a SQLite write waits for another writer (`?timeout=S` in the URL)


def _sqlite_pragmas(busy_timeout: float):
    def pragmas(dbapi_connection, _record) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.close()

    return pragmas


@lru_cache(maxsize=16)
def engine_for(url: str) -> Engine:
    """One engine (and pool) per URL per process."""
    if url.startswith("sqlite"):
        parsed = make_url(url)
        path = parsed.database or ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        busy_timeout = float(parsed.query.get("timeout") or SQLITE_BUSY_TIMEOUT)  # type: ignore[arg-type]
        engine = create_engine(url, connect_args={"timeout": busy_timeout})
        event.listen(engine, "connect", _sqlite_pragmas(busy_timeout))
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def among(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """``column IN (values)``; on PostgreSQL ``column = ANY(:array)``: one parameter whatever the
    count, so a batch's statement reads the same every time. The driver then parses it once and
    the server prepares it once, instead of a new 100-placeholder text per batch.
    """
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, type_=ARRAY(column.type)))
    return column.in_(values)


def session_factory(settings: Settings) -> sessionmaker[Session]:
    return sessionmaker(engine_for(settings.database_url), expire_on_commit=False)


@contextmanager
def session_scope(settings: Settings) -> Iterator[Session]:
    """A session that commits on success and rolls back on any exception."""
    with session_factory(settings).begin() as session:
        yield session


def alembic_config(database_url: str) -> Config:
    config = Config(str(ALEMBIC_INI))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Apply migrations; safe to run again (Alembic skips what is applied)."""
    engine_for(database_url)  # creates the SQLite folder
    command.upgrade(alembic_config(database_url), revision)


def current_revision(database_url: str) -> str | None:
    with engine_for(database_url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
