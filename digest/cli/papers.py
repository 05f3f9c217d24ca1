"""``digest ingest`` and ``digest represent``: papers in."""

from __future__ import annotations

import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from digest.cli.base import Context, fail, main, parse_categories, parse_day, pass_ctx


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
    callback=parse_categories,
    metavar="CAT,CAT",
    help="--source arxiv: these categories (default: DIGEST_ARXIV_CATEGORIES).",
)
@click.option("--date", "day", callback=parse_day, help="Daily Papers day, YYYY-MM-DD (default: today and yesterday, UTC).")
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
    from digest.cli.progress import Progress
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
    try:
        if source == "arxiv":
            report = ingest_arxiv(settings, categories)
        elif file is not None:
            report = ingest_file(settings, file)
        else:
            end = day or datetime.now(timezone.utc).date()
            count = days or (1 if day else 2)
            wanted = [end - timedelta(days=i) for i in range(count - 1, -1, -1)]
            with Progress("ingest", total=len(wanted)) as bar:

                def progress(fetching: date, done: int, total: int) -> None:
                    doing = "all fetched" if done == total else f"fetching {fetching.isoformat()}"
                    bar.update(done, total=total, detail=f"{done} of {total} days, {doing}")

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
