"""The ``digest`` command line: a few lines per command over the library functions."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import click

from digest.config import ConfigError, Settings, load_settings


class Context:
    def __init__(self, demo: bool = False) -> None:
        self._settings: Settings | None = None
        self.demo = demo

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(demo=True if self.demo else None)
        return self._settings


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


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Apply migrations (safe to run again)."""
    from digest.db import current_revision, upgrade

    url = ctx.settings.database_url
    try:
        upgrade(url)
    except Exception as exc:  # connection refused, permissions…
        fail(f"cannot migrate {_safe_url(url)}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    click.echo(f"database at revision {current_revision(url)} ({_safe_url(url)})")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def _parse_day(_ctx, _param, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None


@main.command()
@click.option("--date", "day", callback=_parse_day, help="Daily Papers day, YYYY-MM-DD (default: today and yesterday, UTC).")
@click.option("--days", type=click.IntRange(1, 366), help="Backfill this many days up to --date (or today).")
@click.option("--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Load a saved API response instead of fetching.")
@pass_ctx
def ingest(ctx: Context, day: date | None, days: int | None, file: Path | None) -> None:
    """Fetch new papers from the Daily Papers API and store them."""
    from digest.ingest import ingest_days, ingest_file
    from digest.sources import SourceError

    settings = ctx.settings
    progress = sys.stderr.isatty()
    try:
        if file is not None:
            if day or days:
                raise click.UsageError("--file cannot be combined with --date/--days")
            report = ingest_file(settings, file)
        else:
            end = day or datetime.now(timezone.utc).date()
            count = days or (1 if day else 2)
            wanted = [end - timedelta(days=i) for i in range(count - 1, -1, -1)]
            report = ingest_days(settings, wanted, progress=progress)
    except SourceError as exc:
        fail(f"ingest failed, nothing stored: {exc}")
    for line in report.lines():
        click.echo(line)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@pass_ctx
def serve(ctx: Context, host: str, port: int) -> None:
    """Run the web app on Flask's development server (production: gunicorn 'digest.web:create_app()')."""
    from digest.web import create_app

    create_app(ctx.settings).run(host=host, port=port)
