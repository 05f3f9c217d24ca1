"""``digest subscribers`` and ``digest explain``: the list, one subscriber, one reader's next digest."""

from __future__ import annotations

import sys
from datetime import date, datetime, timezone

import click

from digest.cli.base import Context, fail, main, parse_at, parse_days, pass_ctx
from digest.config import Settings
from digest.db import session_scope


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
