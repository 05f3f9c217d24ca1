"""``digest admin`` (the console's operator accounts) and ``digest pause`` / ``digest resume``.

None of them makes a link, so none needs ``DIGEST_SECRET_KEY``. Each change is written to the audit
log (operator ``cli``) in the transaction of the change.
"""

from __future__ import annotations

import sys
from datetime import datetime, timezone

import click

from digest.cli.base import Context, fail, main, pass_ctx
from digest.db import session_scope


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _email(value: str) -> str:
    from digest.subscribers.addresses import normalize_email

    try:
        return normalize_email(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _read_password(from_stdin: bool) -> str:
    """The new password: one line of stdin with ``--password-stdin``, else asked twice on the terminal."""
    from digest.models.operators import PasswordError, check_password

    if from_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    elif not sys.stdin.isatty():
        fail("no terminal to ask the password on: pipe it in with --password-stdin")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat it")
    try:
        return check_password(password)
    except PasswordError as exc:
        fail(str(exc))
    raise AssertionError("unreachable")


@main.group()
def admin() -> None:
    """Operator accounts for the console at /admin: create, list, disable, enable, password."""


@admin.command("create")
@click.argument("email", callback=lambda _ctx, _param, value: _email(value))
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (its first line) instead of asking twice.")
@pass_ctx
def admin_create(ctx: Context, email: str, password_stdin: bool) -> None:
    """Create the operator account EMAIL; its password is asked twice (at least 12 characters)."""
    from digest.models.operators import CLI, audit, by_email, create_operator

    settings = ctx.read_only_settings
    with session_scope(settings) as session:
        if by_email(session, email) is not None:
            fail(f"{email} has an account already (`digest admin password {email}` sets a new password)")
    password = _read_password(password_stdin)
    with session_scope(settings) as session:
        try:
            create_operator(session, email, password)
        except ValueError as exc:  # made meanwhile by another command
            fail(str(exc))
        audit(session, CLI, "operator_create", email)
    click.echo(f"operator {email} created: sign in at {settings.base_url}/admin")


@admin.command("list")
@pass_ctx
def admin_list(ctx: Context) -> None:
    """Every operator account: email, created, last sign-in, enabled or disabled."""
    from sqlalchemy import select

    from digest.models import Operator

    with session_scope(ctx.read_only_settings) as session:
        operators = session.scalars(select(Operator).order_by(Operator.email)).all()
        if not operators:
            click.echo("no operator accounts (create one with `digest admin create EMAIL`)")
        for op in operators:
            last = f"{op.last_login_at:%Y-%m-%d %H:%M} UTC" if op.last_login_at else "never"
            click.echo(
                f"{op.email}  created {op.created_at:%Y-%m-%d %H:%M} UTC, last sign-in {last}" + ("  DISABLED" if op.disabled else "")
            )


def _set_disabled(ctx: Context, email: str, disabled: bool) -> None:
    from digest.models.operators import CLI, audit, by_email

    with session_scope(ctx.read_only_settings) as session:
        operator = by_email(session, email)
        if operator is None:
            fail(f"no operator account {email}")
        if operator.disabled == disabled:
            click.echo(f"{email} is {'disabled' if disabled else 'enabled'} already")
            return
        operator.disabled = disabled
        operator.session_nonce = None  # signed out either way
        audit(session, CLI, "operator_disable" if disabled else "operator_enable", email)
    click.echo(f"{email} {'disabled: signed out, and cannot sign in' if disabled else 'enabled: may sign in again'}")


@admin.command("disable")
@click.argument("email", callback=lambda _ctx, _param, value: _email(value))
@pass_ctx
def admin_disable(ctx: Context, email: str) -> None:
    """Disable the account EMAIL: its session ends at its next request, and it cannot sign in."""
    _set_disabled(ctx, email, True)


@admin.command("enable")
@click.argument("email", callback=lambda _ctx, _param, value: _email(value))
@pass_ctx
def admin_enable(ctx: Context, email: str) -> None:
    """Enable the account EMAIL again."""
    _set_disabled(ctx, email, False)


@admin.command("password")
@click.argument("email", callback=lambda _ctx, _param, value: _email(value))
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (its first line) instead of asking twice.")
@pass_ctx
def admin_password(ctx: Context, email: str, password_stdin: bool) -> None:
    """Set a new password for EMAIL (its current session ends)."""
    from digest.models.operators import CLI, audit, by_email, hash_password

    settings = ctx.read_only_settings
    with session_scope(settings) as session:
        if by_email(session, email) is None:
            fail(f"no operator account {email}")
    password = _read_password(password_stdin)
    with session_scope(settings) as session:
        operator = by_email(session, email)
        if operator is None:
            fail(f"no operator account {email}")
        operator.password_hash = hash_password(password)
        operator.session_nonce = None
        audit(session, CLI, "operator_password", email)
    click.echo(f"new password set for {email}")


@main.command()
@pass_ctx
def pause(ctx: Context) -> None:
    """Pause sending: planning plans nothing and send batches send nothing until `digest resume`."""
    from digest.models.instance import pause_sending
    from digest.models.operators import CLI, audit

    with session_scope(ctx.read_only_settings) as session:
        before = pause_sending(session, CLI, _now())
        if before is not None:
            click.echo(f"already paused: {before.line()}")
            return
        audit(session, CLI, "pause")
    click.echo("sending paused: nothing is planned or sent until `digest resume`")


@main.command()
@pass_ctx
def resume(ctx: Context) -> None:
    """Resume sending after `digest pause` (or a pause from the console)."""
    from digest.models.instance import resume_sending
    from digest.models.operators import CLI, audit

    with session_scope(ctx.read_only_settings) as session:
        ended = resume_sending(session)
        if ended is None:
            click.echo("sending is not paused")
            return
        audit(session, CLI, "resume", details={"paused_since": ended.since.isoformat(), "paused_by": ended.by})
    click.echo(
        f"sending resumed (it was paused since {ended.since:%Y-%m-%d %H:%M} UTC by {ended.by}): the next planning run sends what is due"
    )
