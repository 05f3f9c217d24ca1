"""Ingest: store what the source yielded, all or nothing.

Every requested day is fetched first; then the records are upserted and an :class:`IngestRun`
recorded in ONE transaction. A failure anywhere (the source, or the database) leaves the database
exactly as it was, ``ingest_runs`` included.

The upsert is ``INSERT … ON CONFLICT (arxiv_id) DO UPDATE`` (PostgreSQL's and SQLite's own), so two
ingests running at once never duplicate a paper: the second waits for the first's row and updates
it. Re-ingesting refreshes upvotes, comments, organisation and links; the title, abstract,
authors, Daily Papers day and ``first_seen_at`` stay as first seen (a paper arXiv announced first
gets its Daily Papers day when it first trends).

Papers stored for the first time get their vectors in the same transaction
(:func:`digest.papers.vectors.represent`, the whole batch at once).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import wraps
from pathlib import Path
from typing import ParamSpec

from sqlalchemy import func, null, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digest import metrics
from digest.config import Settings
from digest.db import among, session_scope
from digest.models import IngestRun, Paper, PaperVector, utcnow
from digest.papers.items import Batch, PaperRecord, parse_items
from digest.papers.sources.arxiv import ArxivClient, withdrawn
from digest.papers.sources.daily_papers import PapersClient, load_file, sample_items
from digest.papers.vectors import MODEL, represent

#: Columns a re-ingest refreshes; everything else keeps its first-seen value.
REFRESHED = (
    "upvotes",
    "num_comments",
    "org_name",
    "org_fullname",
    "org_avatar",
    "github_repo",
    "github_stars",
    "project_page",
    "thumbnail",
    "ai_summary",
    "ai_keywords",
)
CHUNK = 500  # rows per INSERT statement (SQLite allows 32,766 parameters)


@dataclass
class IngestReport:
    source: str
    fetched: int = 0
    new: int = 0
    updated: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    recorded: bool = False  # an IngestRun was written for it (False: nothing new to fetch)

    def lines(self) -> list[str]:
        skipped = sum(self.skipped.values())
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.skipped.items(), key=lambda kv: (-kv[1], kv[0])))
        return [
            f"fetched {self.fetched} from {self.source}",
            f"new {self.new}",
            f"updated {self.updated}",
            f"skipped {skipped}" + (f": {reasons}" if reasons else ""),
            *(f"note: {note}" for note in self.notes),
        ]


def store(session: Session, records: Sequence[PaperRecord], now: datetime) -> tuple[int, int]:
    """Upsert ``records`` on ``arxiv_id``; returns (new, updated). The caller commits.

    Rows go in sorted by ``arxiv_id``, so concurrent ingests lock them in the same order (no
    deadlock). A row is new when it comes back with ``first_seen_at == now``: on a conflict the
    existing row keeps its own.
    """
    dialect = session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    rows = sorted({r.arxiv_id: r for r in records}.values(), key=lambda r: r.arxiv_id)
    new = updated = 0
    for start in range(0, len(rows), CHUNK):
        values = []
        for record in rows[start : start + CHUNK]:
            row = record.columns()
            if row["ai_keywords"] is None:
                row["ai_keywords"] = null()  # SQL NULL, as for papers made any other way (not JSON null)
            values.append(row | {"first_seen_at": now, "updated_at": now})
        stmt = insert(Paper).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=[Paper.arxiv_id],
            set_={name: stmt.excluded[name] for name in (*REFRESHED, "updated_at")}
            # a paper arXiv announced first gets its Daily Papers day when it trends; a day, once set, stays
            | {"daily_date": func.coalesce(Paper.__table__.c.daily_date, stmt.excluded.daily_date)},
        ).returning(Paper.first_seen_at)
        for first_seen in session.scalars(stmt):
            if first_seen == now:
                new += 1
            else:
                updated += 1
    represent(session, [r.arxiv_id for r in rows])  # vectors of the papers that have none yet, in one batch
    return new, updated


P = ParamSpec("P")


def counted(source: str) -> Callable[[Callable[P, IngestReport]], Callable[P, IngestReport]]:
    """An ingest function whose runs and papers are counted under ``source`` (``digest_ingest_runs_total``,
    ``digest_ingest_papers_total``) once it returned, its transaction committed, or failed."""

    def wrap(ingest: Callable[P, IngestReport]) -> Callable[P, IngestReport]:
        @wraps(ingest)
        def run(*args: P.args, **kwargs: P.kwargs) -> IngestReport:
            try:
                report = ingest(*args, **kwargs)
            except BaseException:
                metrics.count_ingest(source, "failed")
                raise
            if report.recorded:
                metrics.count_ingest(source, "ok", report.new, report.updated, sum(report.skipped.values()))
            else:
                metrics.count_ingest(source, "unchanged")
            return report

        return run

    return wrap


def record_run(session: Session, report: IngestReport, started_at: datetime) -> None:
    """The :class:`IngestRun` of a report, in the ingest's own transaction."""
    report.recorded = True
    session.add(
        IngestRun(
            source=report.source[:2048],
            started_at=started_at,
            finished_at=utcnow(),
            fetched=report.fetched,
            new=report.new,
            updated=report.updated,
            skipped=sum(report.skipped.values()),
        )
    )


def save(settings: Settings, batch: Batch, source: str, started_at: datetime) -> IngestReport:
    """Store a fetched batch and record the run, in one transaction."""
    report = IngestReport(source, batch.fetched, skipped=Counter(batch.skipped), notes=list(batch.notes))
    with session_scope(settings) as session:
        report.new, report.updated = store(session, batch.records, utcnow())
        record_run(session, report, started_at)
    return report


@counted("daily_papers")
def ingest_days(
    settings: Settings,
    days: Sequence[date],
    progress: Callable[[date, int, int], None] | None = None,
    *,
    client: PapersClient | None = None,
) -> IngestReport:
    """Fetch every day in ``days`` (raises ``SourceError`` if any fails), then store them all.

    ``progress(day, days fetched, days in all)`` is called before each day's fetch and after the last
    (the CLI draws a bar or prints lines with it).
    ``client``: a configured :class:`PapersClient` (tests make its limits small); closed afterwards.
    """
    days = sorted(set(days))
    if not days:
        raise ValueError("no days to ingest")
    started_at = utcnow()
    batches = []
    with client or PapersClient(settings) as source:
        for done, day in enumerate(days):
            if progress is not None:
                progress(day, done, len(days))
            batches.append(source.fetch_day(day))
    if progress is not None:
        progress(days[-1], len(days), len(days))
    label = days[0].isoformat() if len(days) == 1 else f"{days[0].isoformat()}..{days[-1].isoformat()}"
    return save(settings, Batch.combine(batches), f"{settings.source_url} ({label})", started_at)


@counted("arxiv")
def ingest_arxiv(settings: Settings, categories: Sequence[str] = (), *, client: ArxivClient | None = None) -> IngestReport:
    """arXiv's latest announcement for ``categories`` (default ``DIGEST_ARXIV_CATEGORIES``): the RSS
    feed, then the API for what it lacks (primary category, first version's date, latest version),
    stored in ONE transaction with its :class:`IngestRun`, or nothing on any failure. An
    announcement already ingested is not fetched from the API again, nor stored again.

    One paper per arXiv id: a cross-list is one paper, a paper the Daily Papers side stored is
    updated (its categories and version), never duplicated. A ``new`` or ``cross`` item records its
    announcement day (``announced_on``) once; a ``replace`` updates the version (and, for a paper
    only arXiv has, its title and abstract) and is never new; a replacement of a paper never seen is
    stored without an announcement day. A paper only arXiv has gets no Daily Papers day: it reaches
    the "New on arXiv" section of the digests of its announcement day. A withdrawn paper
    (:func:`~digest.papers.sources.arxiv.withdrawn`) is marked so and no digest shows it again.
    """
    cats = tuple(dict.fromkeys(categories or settings.arxiv_categories))
    if not cats:
        raise ValueError("no arXiv categories: set DIGEST_ARXIV_CATEGORIES (e.g. cs.CL,cs.LG) or pass --category")
    started_at = utcnow()
    with client or ArxivClient(settings.mail_from) as arxiv:
        announcement = arxiv.announcement(settings.arxiv_rss_url, cats)
        day = announcement.day.isoformat() if announcement.day else "no date"
        report = IngestReport(f"arXiv {'+'.join(cats)} ({day})", len(announcement.items), skipped=Counter(announcement.skipped))
        with session_scope(settings) as session:
            done = session.scalar(select(func.count()).select_from(IngestRun).where(IngestRun.source == report.source))
        if done:  # the feed changes once a day: the hourly job finds the same one until then
            report.notes.append(f"the announcement of {day} was ingested already: nothing to do")
            return report
        items = {item.arxiv_id: item for item in announcement.items}  # a cross-list is one paper
        details = arxiv.details(settings.arxiv_api_url, sorted(items)) if items else {}
    if not items:
        report.notes.append("the announcement has no papers (a weekend or an arXiv holiday): nothing stored")
    if missing := [i for i in items if i not in details]:
        report.notes.append(f"the arXiv API did not answer for {len(missing)} of {len(items)} ids: stored from the feed alone")
    with session_scope(settings) as session:
        now = utcnow()
        stored = {p.arxiv_id: p for p in session.scalars(select(Paper).where(among(session, Paper.arxiv_id, sorted(items))))}
        for arxiv_id, item in sorted(items.items()):
            entry = details.get(arxiv_id)
            paper = stored.get(arxiv_id)
            if paper is None:
                paper = Paper(
                    arxiv_id=arxiv_id,
                    title=item.title,
                    abstract=item.abstract,
                    authors=list(item.authors),
                    published_at=entry.published if entry else None,
                    daily_date=None,
                    first_seen_at=now,
                )
                session.add(paper)
                report.new += 1
            else:
                report.updated += 1
                if paper.daily_date is None and item.announce_type.startswith("replace"):
                    paper.title, paper.abstract = item.title, item.abstract  # arXiv's own record follows its versions
            primary = entry.primary_category if entry else paper.primary_category
            listed = entry.categories if entry else item.categories
            paper.primary_category = primary
            paper.categories = ([primary] if primary else []) + [c for c in dict.fromkeys(listed) if c != primary]
            versions = [v for v in (item.version, entry.version if entry else None, paper.arxiv_version) if v]
            paper.arxiv_version = max(versions) if versions else None
            if item.announce_type in ("new", "cross") and paper.announced_on is None:
                paper.announced_on = announcement.day
            if withdrawn(item.abstract, entry.comment if entry else None):
                if not paper.withdrawn:
                    report.notes.append(f"{arxiv_id} was withdrawn on arXiv: no digest shows it again")
                paper.withdrawn = True
            paper.updated_at = now
        session.flush()
        represent(session, sorted(items))  # vectors of the new ones, in one batch
        record_run(session, report, started_at)
    return report


BACKFILL_BATCH = 1000  # papers represented and committed at a time by represent_stored


def represent_stored(settings: Settings, batch: int = BACKFILL_BATCH, on_batch: Callable[[int], None] | None = None) -> int:
    """Vectors for every stored paper that has none of the current model (papers stored before
    vectors existed, or all of them after a model change): ``batch`` papers per transaction, in id
    order (keyset), so an interrupted run keeps what it committed and the next one goes on from
    there. Returns how many papers were represented."""
    done, after = 0, 0
    while True:
        with session_scope(settings) as session:
            ids = session.execute(
                select(Paper.id, Paper.arxiv_id)
                .outerjoin(PaperVector, PaperVector.paper_id == Paper.id)
                .where(Paper.id > after, or_(PaperVector.paper_id.is_(None), PaperVector.model != MODEL))
                .order_by(Paper.id)
                .limit(batch)
            ).all()
            if not ids:
                return done
            done += represent(session, [arxiv_id for _, arxiv_id in ids])
            after = ids[-1][0]
        if on_batch is not None:
            on_batch(done)


@counted("file")
def ingest_file(settings: Settings, path: Path) -> IngestReport:
    """Load a saved API response and store it (raises ``SourceError`` if the file is unusable)."""
    started_at = utcnow()
    return save(settings, load_file(Path(path)), f"file {path}", started_at)


@counted("sample")
def ingest_sample(settings: Settings, today: date | None = None) -> IngestReport:
    """Store the packaged sample papers, re-dated to the last few days before ``today`` (the demo)."""
    started_at = utcnow()
    today = today or datetime.now(timezone.utc).date()
    return save(settings, parse_items(sample_items(today), latest=today), "packaged sample papers", started_at)
