"""``digest db``: the schema."""

from __future__ import annotations

import click

from digest.cli.base import Context, fail, main, pass_ctx, safe_url
from digest.db import current_revision, upgrade


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Apply migrations (safe to run again)."""
    url = ctx.settings.database_url
    try:
        upgrade(url)
    except Exception as exc:  # connection refused, permissions…
        fail(f"cannot migrate {safe_url(url)}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    click.echo(f"database at revision {current_revision(url)} ({safe_url(url)})")
