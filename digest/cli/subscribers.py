"""``digest subscribers`` and ``digest explain``: the list, one subscriber, one reader's next digest."""

from __future__ import annotations

import io
import os
import stat
import sys
from datetime import date, datetime, timezone

import click
from sqlalchemy.exc import SQLAlchemyError

from digest.cli.base import Context, fail, main, parse_at, parse_days, pass_ctx
from digest.config import Settings
from digest.db import session_scope


@main.group()
def subscribers() -> None:
    """Move a subscriber list in or out (CSV: email, topics, frequency, timezone; or with --full the whole list as JSON lines); show one subscriber."""


@subscribers.command("import")
@click.argument("file", type=click.File("rb"))
@click.option("--confirmed", is_flag=True, help="Import as active: only for lists that opted in elsewhere.")
@click.option("--full", is_flag=True, help="FILE is an `export --full` (JSON lines): each row keeps its state, dates, votes and seeds.")
@click.option(
    "--mail-pending",
    is_flag=True,
    help="With --confirmed or --full: mail a confirmation link to the rows the file says are pending (default: none is mailed).",
)
@pass_ctx
def subscribers_import(ctx: Context, file, confirmed: bool, full: bool, mail_pending: bool) -> None:
    """Import FILE.csv as pending subscribers, each sent a confirmation (or active with --confirmed).

    A `state` column (what `export` writes) is honoured: a row unsubscribed or suppressed there is
    remembered here as one that left (never mailed, never brought back), and with --confirmed a
    row pending there stays pending. With --full, FILE is what `export --full` wrote.

    Commits every few hundred rows (the web app keeps answering meanwhile, even on SQLite), and
    mails the confirmations of each committed part; if it stops, what it committed stays, and
    running it again leaves those addresses alone ("already present").
    """
    from digest.cli.progress import Progress
    from digest.db import session_factory
    from digest.subscribers.bulk import chunk_for
    from digest.subscribers.lists import import_csv

    if full and confirmed:
        raise click.UsageError("--full keeps each row's own state: no --confirmed")
    if mail_pending and not (confirmed or full):
        raise click.UsageError("--mail-pending goes with --confirmed or --full (without them every new row is mailed a confirmation)")
    settings = ctx.settings
    name = getattr(file, "name", "the file")
    counted = _Counted(file)
    text = io.TextIOWrapper(io.BufferedReader(counted), encoding="utf-8-sig")
    confirmations = _Confirmations(settings)
    now = datetime.now(timezone.utc)
    commit_every = chunk_for(settings.database_url)
    size = _size(file)
    parallel = size is None or size > PARALLEL_BYTES  # checked by a helper process while this one writes
    with Progress("import", total=size) as bar:

        def progress(lines: int) -> None:
            bar.update(counted.count, detail=f"{lines:,} lines read")

        try:
            with session_factory(settings)() as session:
                if full:
                    from digest.subscribers.full import import_full

                    report = import_full(
                        session,
                        text,
                        now,
                        mail_pending=mail_pending,
                        commit_every=commit_every,
                        committed=confirmations,
                        progress=progress,
                        parallel=parallel,
                    )
                else:
                    report = import_csv(
                        session,
                        settings,
                        text,
                        now,
                        confirmed=confirmed,
                        mail_pending=mail_pending,
                        commit_every=commit_every,
                        committed=confirmations,
                        progress=progress,
                        parallel=parallel,
                    )
        except (ValueError, UnicodeDecodeError) as exc:
            fail(f"{name}: {exc}")
        except SQLAlchemyError as exc:  # not migrated, server down…: what was committed stays
            fail(f"{name}: database error: {exc.__class__.__name__}: {str(exc).splitlines()[0]}; the parts committed before it stay")
        except RuntimeError as exc:  # the checking helper process ended
            fail(f"{name}: {exc}; the parts committed before it stay")
    for line in report.lines():
        click.echo(line)
    if report.confirmations or report.to_confirm:
        click.echo(f"confirmation emails: {confirmations.line()}")
    if report.stopped:
        fail(f"{name}: {report.stopped}; nothing imported from that line on (the lines before it were)")
    if report.errors:
        sys.exit(1)


PARALLEL_BYTES = 256 * 1024  # a file past this (a few thousand lines) is checked by a helper process while this one writes


class _Counted(io.RawIOBase):
    """A binary file that counts the bytes read from it (how far an import is)."""

    def __init__(self, raw) -> None:
        self.raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self.raw.readinto(buffer) or 0
        self.count += n
        return n


def _size(file) -> int | None:
    """The size of a regular file (None for a pipe or stdin)."""
    try:
        info = os.fstat(file.fileno())
    except (OSError, AttributeError, io.UnsupportedOperation):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) and info.st_size else None


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
@click.option(
    "--full",
    is_flag=True,
    help="Everything `import --full` needs to rebuild the list elsewhere, as JSON lines: states and why, dates, "
    "preferences, pending sign-ups, votes and seeds, and the addresses remembered as ones that left.",
)
@pass_ctx
def subscribers_export(ctx: Context, output, full: bool) -> None:
    """Write every subscriber as CSV (email, topics, frequency, timezone, state, delivery_hour), or with --full as JSON lines."""
    from digest.subscribers.lists import export_csv

    with session_scope(ctx.read_only_settings) as session:
        if full:
            from digest.subscribers.full import export_full

            counts = export_full(session, output, datetime.now(timezone.utc))
            click.echo(f"exported {counts.subscribers} subscribers and {counts.left} addresses remembered as ones that left", err=True)
            return
        count = export_csv(session, output)
    click.echo(f"exported {count} subscribers", err=True)


@subscribers.command("show")
@click.argument("email")
@pass_ctx
def subscribers_show(ctx: Context, email: str) -> None:
    """One subscriber: state, filters, last digests, and what came back about their mail (reads only)."""
    from digest.subscribers.show import LAST_DIGESTS, find, show, stored_spelling

    with session_scope(ctx.read_only_settings) as session:
        view = show(session, email)
        if view is None:
            found = find(session, email)
            fail(
                f"no subscriber {email}" + (f"; the same mailbox: {', '.join(s.email for s in found)} (show one of them)" if found else "")
            )
        s = view.subscriber
        if s.email != stored_spelling(email):
            click.echo(f"(no subscriber spelled {email.strip()}: {s.email} reaches the same mailbox)")
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


@main.command()
@click.argument("email")
@click.option("--at", "at", callback=parse_at, metavar="ISO-8601", help="The digest due at this moment (default: the reader's next one).")
@click.option(
    "--window",
    "days",
    callback=parse_days,
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
