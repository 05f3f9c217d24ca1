"""What every command group shares: the settings as a command sees them (a demo database's own base
URL and key), one-line failures, the ``digest`` group itself and the option parsers."""

from __future__ import annotations

import os
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from digest.config import ConfigError, Settings, load_settings
from digest.db import engine_for
from digest.models.instance import DemoRecord, demo_record
from digest.runtime import tune_collector


class Context:
    def __init__(self, demo: bool = False) -> None:
        self._settings: Settings | None = None
        self.demo = demo

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = self._load(signs=True)
        return self._settings

    @property
    def read_only_settings(self) -> Settings:
        """For a command that only reads and makes no link: it needs no DIGEST_SECRET_KEY."""
        return self._settings or self._load(signs=False)

    def _load(self, signs: bool) -> Settings:
        """The settings from the environment; on a database ``digest demo`` made, the demo's base
        URL (unless DIGEST_BASE_URL is set) and its public key (unless DIGEST_SECRET_KEY is set),
        so that links mailed from here work on that demo. Says so in one line on stderr."""
        if self.demo:
            return load_settings(demo=True, signs=signs)
        url = load_settings(signs=False).database_url  # a bad variable stops here, as it would anyway
        record = read_demo_record(url)
        if record is None:
            return load_settings(signs=signs)
        demo_key = record.public_key and not os.environ.get("DIGEST_SECRET_KEY")
        settings = load_settings(demo=True if demo_key else None, signs=signs)
        if not os.environ.get("DIGEST_BASE_URL"):
            settings = settings.with_(base_url=record.base_url)
        click.echo(
            f"demo database (made by `digest demo`): links point at {settings.base_url}"
            + (", signed with the demo key" if demo_key else ""),
            err=True,
        )
        return settings


def read_demo_record(database_url: str) -> DemoRecord | None:
    """What ``digest demo`` recorded in this database; None if it did not make it (or there is no
    such database yet: a SQLite file is never created by asking)."""
    if database_url.startswith("sqlite"):
        path = make_url(database_url).database
        if not path or path == ":memory:" or not Path(path).is_file():
            return None
    try:
        with Session(engine_for(database_url)) as session:
            return demo_record(session)
    except SQLAlchemyError:  # no such table (an older schema), no server: as if not a demo
        return None


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def fail(message: str, code: int = 1) -> None:
    click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


class DigestGroup(click.Group):
    """Turns expected failures into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as exc:
            fail(f"bad configuration: {exc}", 2)


@click.group(cls=DigestGroup)
@click.version_option(package_name="paper-digest")
def main() -> None:
    """Trending-papers email digest."""
    tune_collector()  # the demo, serve and in-process sends run the workers' code here


def safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def parse_day(_ctx, _param, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None


def parse_categories(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    from digest.config import parse_arxiv_categories

    try:
        return parse_arxiv_categories("--category", value or "")
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("--category: ")) from None


def parse_at(_ctx, _param, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"expected an ISO-8601 moment such as 2026-11-30T07:00 or 2026-11-30T07:00+01:00, got {value!r}") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


def parse_days(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[date, date] | None:
    if value is None:
        return None
    first, sep, last = value.partition("..")
    try:
        days = (date.fromisoformat(first), date.fromisoformat(last if sep else first))
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD..YYYY-MM-DD (or one day), got {value!r}") from None
    if days[0] > days[1]:
        raise click.BadParameter(f"the first day comes after the last: {value!r}")
    return days
