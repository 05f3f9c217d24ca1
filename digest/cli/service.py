"""``digest serve``, ``demo``, ``stats`` and ``send``: running the service."""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone

import click

from digest.cli.base import Context, fail, main, parse_at, pass_ctx
from digest.config import load_settings
from digest.db import session_scope


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@pass_ctx
def serve(ctx: Context, host: str, port: int) -> None:
    """Run the web app on Flask's development server (production: gunicorn 'digest.web:create_app()')."""
    from digest.web import create_app

    create_app(ctx.settings).run(host=host, port=port)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--no-sample", is_flag=True, help="Do not load the packaged sample papers.")
@click.option("--live", is_flag=True, help="Also fetch new papers from DIGEST_SOURCE_URL every 30 minutes.")
@click.option("--send-now", is_flag=True, help="At start, send every confirmed subscriber the digest of their next slot.")
def demo(host: str, port: int, no_sample: bool, live: bool, send_now: bool) -> None:
    """Run everything in one process: SQLite, sample papers, a mail catcher at /outbox, the site.

    Demo only: no secret key needed, and every email is caught, never delivered.
    """
    from digest import demo as demo_mode

    settings = load_settings(demo=True)
    if not os.environ.get("DIGEST_BASE_URL"):  # emailed links point at this server
        settings = settings.with_(base_url=f"http://{host}:{port}")
    demo_mode.run(settings, host, port, sample=not no_sample, live=live, send_now=send_now)


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
@pass_ctx
def stats(ctx: Context, as_json: bool) -> None:
    """Whether sending is paused, subscribers by state, papers, the last ingest, today's deliveries
    (UTC), and what came back: bounces (hard, soft), complaints, auto-replies, forged reports."""
    from digest.stats import stats as collect

    with session_scope(ctx.read_only_settings) as session:
        data = collect(session, datetime.now(timezone.utc))
    if as_json:
        click.echo(json.dumps(data, default=str, indent=2))
        return
    sending = data["sending"]
    if sending["paused"]:
        click.echo(f"sending is PAUSED since {sending['since']:%Y-%m-%d %H:%M} UTC by {sending['by']} (`digest resume` ends it)")
    subs = data["subscribers"]
    click.echo("subscribers: " + ", ".join(f"{state} {n}" for state, n in subs.items()) + f" (total {sum(subs.values())})")
    click.echo(f"papers: {data['papers']} (latest Daily Papers day: {data['latest_paper_day'] or 'none'})")
    last = data["last_ingest"]
    click.echo(
        "last ingest: never"
        if last is None
        else f"last ingest: {last['finished_at']:%Y-%m-%d %H:%M} UTC, fetched {last['fetched']}, "
        f"new {last['new']}, updated {last['updated']}, skipped {last['skipped']}"
    )
    click.echo("deliveries today: " + ", ".join(f"{status} {n}" for status, n in data["deliveries_today"].items()))
    click.echo("came back (since the start): " + ", ".join(f"{kind} {n}" for kind, n in data["mail_events"].items()))


@main.command()
@click.option("--at", "at", callback=parse_at, metavar="ISO-8601", help="Decide as if it were this moment (no offset: UTC).")
@click.option("--dry-run", is_flag=True, help="Print who would get which papers; send nothing, write nothing.")
@pass_ctx
def send(ctx: Context, at: datetime | None, dry_run: bool) -> None:
    """Send the digests that are due now (or at --at); with DIGEST_BROKER_URL, queue them for the workers."""
    from digest.delivery.run import send_due

    settings = ctx.read_only_settings if dry_run else ctx.settings
    moment = at or datetime.now(timezone.utc)
    from digest.models.instance import sending_paused

    with session_scope(settings) as session:
        pause = sending_paused(session)
    if pause is not None and not dry_run:
        click.echo(f"{pause.line()}: nothing planned or sent (`digest resume` ends it)")
        return
    if dry_run:
        from digest.mail.latex import readable  # titles as the digest shows them: D$^2$Quant → D²Quant

        report = send_due(settings, moment, dry_run=True)
        for preview in report.previews:
            start, end = preview.window
            days = "no new days" if start > end else f"papers of {start}" + ("" if start == end else f"..{end}")
            count = len(preview.papers)
            click.echo(f"{preview.email} ({preview.period}, {days}): {count} paper{'' if count == 1 else 's'}")
            for number, (title, matched) in enumerate(preview.papers, start=1):
                click.echo(f"  {number:2d}. {' '.join(readable(title).split())}  [matched: {matched or 'no filters: all papers'}]")
        click.echo(report.line())
        if not any(p.papers for p in report.previews):
            if report.next_due:
                click.echo(report.next_due.line())
            elif report.confirmed:
                parts = []
                if report.previews:
                    parts.append(f"{len(report.previews)} due by then, with nothing new since their last digest")
                if report.already:
                    parts.append(f"{report.already} had the digest of the period due by then already")
                click.echo(
                    f"next due: no later digest planned for the {report.confirmed} confirmed subscriber{'' if report.confirmed == 1 else 's'}"
                    + (f" ({'; '.join(parts)})" if parts else "")
                )
            else:
                click.echo("next due: nobody (no confirmed subscriber)")
        if pause is not None:
            click.echo(f"{pause.line()}: a real run would send nothing now")
        return
    if settings.broker_url:
        from digest import queue
        from digest.jobs import plan_and_dispatch

        try:
            report = plan_and_dispatch(settings, moment, queue.for_settings(settings))
        except Exception as exc:  # the broker refuses: the planned rows stay pending for the next run
            fail(f"cannot queue the digests ({exc.__class__.__name__}: {exc}); planned rows stay pending for the next run")
        click.echo(report.line() + "; queued for the workers")
        return
    from digest.cli.progress import Progress

    with Progress("send") as bar:

        def progress(done: int, total: int, attempt: int) -> None:
            what = "send" if attempt == 0 else f"send, retry {attempt} of the deferred"
            bar.update(done, total=total, what=what, detail=f"{done:,} of {total:,} digests")

        report = send_due(settings, moment, progress=progress)
    click.echo(report.line())
    if report.deferred:
        fail(f"{len(report.deferred)} digests could not be sent now (SMTP trouble); they stay pending for the next run")
