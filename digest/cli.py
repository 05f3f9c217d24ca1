"""The ``digest`` command line: a few lines per command over the library functions.

Each command imports what it uses when it runs, so ``digest --help`` and a one-line error stay
quick (the web app, Celery and premailer together take a second to import).
"""

from __future__ import annotations

import json
import os
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import click
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from digest.config import ConfigError, Settings, load_settings
from digest.db import current_revision, engine_for, session_scope, upgrade
from digest.models.instance import DemoRecord, demo_record


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
        fail(f"cannot migrate {_safe_url(url)}: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    click.echo(f"database at revision {current_revision(url)} ({_safe_url(url)})")


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


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _parse_day(_ctx, _param, value: str | None) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"expected YYYY-MM-DD, got {value!r}") from None


def _parse_categories(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    from digest.config import parse_arxiv_categories

    try:
        return parse_arxiv_categories("--category", value or "")
    except ConfigError as exc:
        raise click.BadParameter(str(exc).removeprefix("--category: ")) from None


@main.command()
@click.option(
    "--source",
    type=click.Choice(["hf", "arxiv"]),
    default="hf",
    show_default=True,
    help="hf: Hugging Face Daily Papers; arxiv: the latest arXiv announcement of the categories.",
)
@click.option(
    "--category",
    "categories",
    callback=_parse_categories,
    metavar="CAT,CAT",
    help="--source arxiv: these categories (default: DIGEST_ARXIV_CATEGORIES).",
)
@click.option("--date", "day", callback=_parse_day, help="Daily Papers day, YYYY-MM-DD (default: today and yesterday, UTC).")
@click.option("--days", type=click.IntRange(1, 366), help="Backfill this many days up to --date (or today).")
@click.option(
    "--file", "file", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Load a saved API response instead of fetching."
)
@pass_ctx
def ingest(ctx: Context, source: str, categories: tuple[str, ...], day: date | None, days: int | None, file: Path | None) -> None:
    """Fetch new papers from the Daily Papers API (or arXiv's announcement) and store them.

    Prints fetched / new / updated / skipped (with reasons). Fails (exit 1) without storing anything
    when any requested day cannot be fetched, or the database refuses the batch.
    """
    from digest.papers.ingest import ingest_arxiv, ingest_days, ingest_file
    from digest.papers.sources.daily_papers import SourceError

    if file is not None and (day or days):
        raise click.UsageError("--file cannot be combined with --date/--days")
    if source == "arxiv" and (file is not None or day or days):
        raise click.UsageError("--source arxiv takes the latest announcement: no --file, --date or --days")
    if categories and source != "arxiv":
        raise click.UsageError("--category goes with --source arxiv")
    settings = ctx.settings
    if source == "arxiv" and not (categories or settings.arxiv_categories):
        raise click.UsageError("no arXiv categories: set DIGEST_ARXIV_CATEGORIES (e.g. cs.CL,cs.LG) or pass --category")
    progress = sys.stderr.isatty()
    try:
        if source == "arxiv":
            report = ingest_arxiv(settings, categories)
        elif file is not None:
            report = ingest_file(settings, file)
        else:
            end = day or datetime.now(timezone.utc).date()
            count = days or (1 if day else 2)
            wanted = [end - timedelta(days=i) for i in range(count - 1, -1, -1)]
            report = ingest_days(settings, wanted, progress=progress)
    except SourceError as exc:
        fail(f"ingest failed, nothing stored: {exc}")
    except SQLAlchemyError as exc:  # not migrated, server down…
        fail(f"ingest failed, nothing stored: database error: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    for line in report.lines():
        click.echo(line)


@main.command()
@click.option("--batch", default=1000, show_default=True, type=click.IntRange(1, 100_000), help="Papers per transaction.")
@pass_ctx
def represent(ctx: Context, batch: int) -> None:
    """Compute the vectors of stored papers that have none (stored before they existed, or made by
    an older model). Ingest does this for the papers it stores; run this once after upgrading.
    Safe to interrupt and run again: each batch is committed."""
    from digest.papers.ingest import represent_stored

    def step(done: int) -> None:
        click.echo(f"represented {done} papers so far", err=True)

    try:
        done = represent_stored(ctx.settings, batch, on_batch=step if sys.stderr.isatty() else None)
    except SQLAlchemyError as exc:
        fail(f"represent failed: database error: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    click.echo(f"represented {done} papers" if done else "every stored paper has its vectors already")


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
    """Subscribers by state, papers, the last ingest, today's deliveries (UTC), and what came back:
    bounces (hard, soft), complaints, auto-replies, forged reports."""
    from digest.stats import stats as collect

    with session_scope(ctx.read_only_settings) as session:
        data = collect(session, datetime.now(timezone.utc))
    if as_json:
        click.echo(json.dumps(data, default=str, indent=2))
        return
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


@main.group()
def subscribers() -> None:
    """Move a subscriber list in or out (CSV: email, topics, frequency, timezone); show one subscriber."""


@subscribers.command("import")
@click.argument("file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--confirmed", is_flag=True, help="Import as active: only for lists that opted in elsewhere.")
@pass_ctx
def subscribers_import(ctx: Context, file, confirmed: bool) -> None:
    """Import FILE.csv as pending subscribers, each sent a confirmation (or active with --confirmed).

    Commits every few hundred rows (the web app keeps answering meanwhile, even on SQLite), and
    mails the confirmations of each committed part; if it stops, what it committed stays, and
    running it again leaves those addresses alone ("already present").
    """
    from digest.db import session_factory
    from digest.subscribers.lists import COMMIT_EVERY, import_csv

    settings = ctx.settings
    name = getattr(file, "name", "the file")
    confirmations = _Confirmations(settings)
    try:
        with session_factory(settings)() as session:
            report = import_csv(
                session, settings, file, datetime.now(timezone.utc), confirmed=confirmed, commit_every=COMMIT_EVERY, committed=confirmations
            )
    except (ValueError, UnicodeDecodeError) as exc:
        fail(f"{name}: {exc}")
    for line in report.lines():
        click.echo(line)
    if report.to_confirm:
        click.echo(f"confirmation emails: {confirmations.line()}")
    if report.stopped:
        fail(f"{name}: {report.stopped}; nothing imported from that line on (the lines before it were)")
    if report.errors:
        sys.exit(1)


class _Confirmations:
    """Hands each committed part's new addresses a confirmation: in-process, or queued for the workers."""

    def __init__(self, settings: Settings) -> None:
        from digest import queue

        self.work = queue.for_settings(settings)
        self.handed = self.sent = 0

    def __call__(self, ids: list[int]) -> None:
        for subscriber_id in ids:
            self.handed += 1
            self.sent += bool(self.work.send_confirmation(subscriber_id))

    def line(self) -> str:
        return f"{self.sent} sent" if self.work.in_process else f"{self.handed} queued for the workers"


@subscribers.command("export")
@click.option("-o", "--output", type=click.File("w", encoding="utf-8"), default="-", help="Write here (default: stdout).")
@pass_ctx
def subscribers_export(ctx: Context, output) -> None:
    """Write every subscriber as CSV (email, topics, frequency, timezone, state, delivery_hour)."""
    from digest.subscribers.lists import export_csv

    with session_scope(ctx.read_only_settings) as session:
        count = export_csv(session, output)
    click.echo(f"exported {count} subscribers", err=True)


@subscribers.command("show")
@click.argument("email")
@pass_ctx
def subscribers_show(ctx: Context, email: str) -> None:
    """One subscriber: state, filters, last digests, and what came back about their mail (reads only)."""
    from digest.subscribers.show import LAST_DIGESTS, show

    with session_scope(ctx.read_only_settings) as session:
        view = show(session, email)
        if view is None:
            fail(f"no subscriber {email}")
        s = view.subscriber
        why = f" ({s.suppressed_reason})" if s.suppressed_reason else ""
        click.echo(f"{s.email}: {s.state.value}{why}")
        dates = [f"signed up {s.created_at:%Y-%m-%d}"]
        dates += [f"confirmed {s.confirmed_at:%Y-%m-%d}"] if s.confirmed_at else []
        dates += [f"unsubscribed {s.unsubscribed_at:%Y-%m-%d %H:%M} UTC"] if s.unsubscribed_at else []
        next_due = f"{s.next_due_at:%Y-%m-%d %H:%M} UTC" if s.next_due_at else "none"
        click.echo(f"  {s.frequency.value} at {s.delivery_hour:02d}:00 {s.timezone}; {', '.join(dates)}; next digest: {next_due}")
        if view.remembered:
            click.echo(f"  remembered as one that left ({view.remembered}): no import brings it back; only its own confirmation does")
        click.echo("filters: " + ("; ".join(view.filters) if view.filters else "none (all trending papers)"))
        click.echo(f"last digests (at most {LAST_DIGESTS}, newest first):" if view.digests else "last digests: none")
        for d in view.digests:
            sent = f"sent {d.sent_at:%Y-%m-%d %H:%M} UTC" if d.sent_at else (d.error or "")
            click.echo(f"  {d.period:<10}  {d.status.value:<7}  {d.papers:>2} papers  {sent}")
        click.echo(f"events ({view.event_count}, newest first):" if view.events else "events: none")
        for e in view.events:
            about = f"digest {e.digest}" if e.digest else "no digest"
            click.echo(f"  {e.at:%Y-%m-%d %H:%M} UTC  {e.kind.value:<10}  {about:<17}  {e.address}  {e.diagnostic}")


def _parse_at(_ctx, _param, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"expected an ISO-8601 moment such as 2026-11-30T07:00 or 2026-11-30T07:00+01:00, got {value!r}") from None
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment.astimezone(timezone.utc)


@main.command()
@click.option("--at", "at", callback=_parse_at, metavar="ISO-8601", help="Decide as if it were this moment (no offset: UTC).")
@click.option("--dry-run", is_flag=True, help="Print who would get which papers; send nothing, write nothing.")
@pass_ctx
def send(ctx: Context, at: datetime | None, dry_run: bool) -> None:
    """Send the digests that are due now (or at --at); with DIGEST_BROKER_URL, queue them for the workers."""
    from digest.delivery.run import send_due

    settings = ctx.read_only_settings if dry_run else ctx.settings
    moment = at or datetime.now(timezone.utc)
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
    report = send_due(settings, moment)
    click.echo(report.line())
    if report.deferred:
        fail(f"{len(report.deferred)} digests could not be sent now (SMTP trouble); they stay pending for the next run")


def _parse_days(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[date, date] | None:
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


@main.command()
@click.argument("email")
@click.option("--at", "at", callback=_parse_at, metavar="ISO-8601", help="The digest due at this moment (default: the reader's next one).")
@click.option(
    "--window",
    "days",
    callback=_parse_days,
    metavar="YYYY-MM-DD..YYYY-MM-DD",
    help="Rank the papers of these Daily Papers days as a digest of them would, leaving out what was sent.",
)
@pass_ctx
def explain(ctx: Context, email: str, at: datetime | None, days: tuple[date, date] | None) -> None:
    """Rank the candidates of EMAIL's next digest, with the parts of each score (reads only)."""
    from digest.delivery.explain import explain as explain_digest

    settings = ctx.read_only_settings
    with session_scope(settings) as session:
        found = explain_digest(session, email, settings.digest_size, at, days, settings.arxiv_size)
        if found is None:
            fail(f"no subscriber {email}")
        start, end = found.window
        window = "no new days yet" if start > end else f"papers of {start}" + ("" if start == end else f"..{end}")
        if found.signals:
            profile = f"a profile from {found.signals} votes and seeds"
        elif found.votes:
            profile = f"{len(found.votes)} votes and seeds, no profile yet (their papers have no vectors: run `digest represent`)"
        else:
            profile = "no votes or seeds: today's trending order"
        filters = "; ".join(found.filters) if found.filters else "none (all papers)"
        if found.chosen:
            lo, hi = found.looked_at
            asked = f"papers of {lo}" + ("" if lo == hi else f"..{hi}")
            click.echo(f"{found.email}: a digest of the {asked} (--window): {found.considered} candidates, {profile}")
        else:
            click.echo(
                f"{found.email}: next digest at {found.at:%Y-%m-%dT%H:%M}Z ({found.period}, {window}): {found.considered} candidates, {profile}"
            )
        click.echo(f"filters: {filters}")
        if found.votes:
            click.echo(f"votes and seeds ({len(found.votes)}, newest first):")
            for v in found.votes:
                click.echo(f"  {v.kind:<4}  {v.at:%Y-%m-%d %H:%M}  {v.arxiv_id:<10}  {v.title}")
        if found.note:
            click.echo(f"note: {found.note}")
        if not found.candidates and not found.arxiv:
            return
        lo, hi = found.looked_at
        days = f"{lo}" + ("" if lo == hi else f"..{hi}")
        sections = [(f"papers of {days}, in your order:", found.candidates)]
        if found.arxiv:
            sections = [(f"Trending on Hugging Face, papers of {days}, in your order:", found.candidates)] if found.candidates else []
            sections.append((f"New on arXiv on {days}, the papers your cat:/source: lines match, in your order:", found.arxiv))
        for title, candidates in sections:
            click.echo(title)
            click.echo(
                f"{'rank':>4}  {'shown':<9}  {'trending':>8}  {'personal':>8}  {'weight':>6}  {'final':>6}  {'arxiv':<10}  title  [filter · why]"
            )
            for rank, c in enumerate(candidates, start=1):
                p = c.parts
                why = f" · {c.why}" if c.why else ""
                click.echo(
                    f"{rank:>4}  {c.shown or '-':<9}  {p.trending:>8.2f}  {p.personal:>8.2f}  {p.weight:>6.2f}  {p.final:>6.2f}"
                    f"  {c.paper.arxiv_id:<10}  {c.title[:60]}  [{c.matched}{why}]"
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
@pass_ctx
def bounces_process(ctx: Context, path: Path) -> None:
    """Record what the messages at PATH report: one message, an mbox file, or a Maildir folder.

    Safe to run again on the same mailbox: a report already recorded counts as a duplicate.
    """
    from digest.bounces.intake import process

    settings = _bounce_settings(ctx)
    try:
        summary = process(settings, path, datetime.now(timezone.utc))
    except ValueError as exc:
        fail(str(exc))
    except SQLAlchemyError as exc:  # not migrated, server down…
        fail(f"database error: {exc.__class__.__name__}: {str(exc).splitlines()[0]}")
    click.echo(summary.line())
