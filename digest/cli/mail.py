"""``digest dkim`` and ``digest bounces``: what makes mail arrive, and what comes back."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from digest.cli.base import Context, fail, main, pass_ctx
from digest.config import ConfigError, Settings


@main.group()
def dkim() -> None:
    """DKIM signing keys (README: Deliverability)."""


@dkim.command("keygen")
@click.option("--selector", required=True, help="The key's name in DNS: its record is <selector>._domainkey.<domain>.")
@click.option(
    "--type", "algorithm", type=click.Choice(["rsa", "ed25519"]), default="rsa", show_default=True, help="RSA-2048, or Ed25519 (RFC 8463)."
)
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="The private key's file (default: <selector>.<type>.pem here)."
)
@click.option("--domain", help="The signing domain (default: DIGEST_DKIM_DOMAIN, else DIGEST_MAIL_FROM's domain).")
def dkim_keygen(selector: str, algorithm: str, out: Path | None, domain: str | None) -> None:
    """Write a new private key and print the DNS TXT record that publishes it.

    The key file is readable by its owner only (mode 0600) and never written over an existing file.
    """
    from digest.config import DKIM_VARIABLES, DNS_NAME, dkim_domain
    from digest.mail.dkim import dns_record, generate_key, write_private_key

    if not DNS_NAME.fullmatch(selector):
        raise click.BadParameter(f"expected letters, digits and hyphens (dot-separated), got {selector!r}", param_hint="--selector")
    if domain is not None:
        try:
            domain = dkim_domain({"DIGEST_DKIM_DOMAIN": domain})
        except ConfigError as exc:
            raise click.BadParameter(str(exc).split(": ", 1)[1], param_hint="--domain") from None
    domain = domain or dkim_domain()
    out = out or Path(f"{selector}.{algorithm}.pem")
    key = generate_key(algorithm)
    try:
        write_private_key(out, key.private_pem)
    except FileExistsError:
        fail(f"{out} exists; a key file is never overwritten (choose another --out)")
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror or exc}")
    click.echo(dns_record(selector, domain, algorithm, key.public))
    key_variable, selector_variable = DKIM_VARIABLES[algorithm]
    click.echo(
        f"wrote the {'RSA-2048' if algorithm == 'rsa' else 'Ed25519'} private key to {out} (mode 0600); publish the TXT record "
        f"above in {domain}'s DNS, then set {key_variable}={out.resolve()} {selector_variable}={selector}",
        err=True,
    )


@main.group()
def bounces() -> None:
    """Bounces, complaints and auto-replies that come back to the bounce addresses (DIGEST_BOUNCE_DOMAIN)."""


def _bounce_settings(ctx: Context) -> Settings:
    settings = ctx.settings  # bounce tokens are read with DIGEST_SECRET_KEY
    if settings.bounce_domain is None:
        fail("no DIGEST_BOUNCE_DOMAIN: messages go out from DIGEST_MAIL_FROM's address, and no bounce names its message")
    return settings


@bounces.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (the bounce domain's MX, or a relay's target).")
@click.option("--port", default=2525, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@pass_ctx
def bounces_serve(ctx: Context, host: str, port: int) -> None:
    """Take mail for the bounce domain over SMTP and record what it reports, until stopped.

    Mail to any other domain is refused (550) and counted as forged.
    """
    import signal
    import threading

    from digest.bounces.listener import serve as listen

    settings = _bounce_settings(ctx)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    click.echo(f"listening on {host}:{port} for mail to @{settings.bounce_domain}; Ctrl-C stops", err=True)
    try:
        listen(settings, host, port, stop)
    except KeyboardInterrupt:
        stop.set()
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


@bounces.command("process")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@click.option("--all", "every", is_flag=True, help="In a Maildir, read the messages marked read (S) by an earlier run too.")
@pass_ctx
def bounces_process(ctx: Context, path: Path, every: bool) -> None:
    """Record what the messages at PATH report: one message, an mbox file, or a Maildir folder.

    In a Maildir each message recorded is marked read (moved to cur/, flag S), as a mail client
    does, and later runs leave it alone (--all reads it again). Safe to run again on the same
    mailbox: a report already recorded counts as a duplicate.
    """
    from digest.bounces.intake import process

    settings = _bounce_settings(ctx)
    try:
        summary = process(settings, path, datetime.now(timezone.utc), every=every)
    except ValueError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:  # not migrated, server down…
        fail(f"database error: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    click.echo(summary.line())
