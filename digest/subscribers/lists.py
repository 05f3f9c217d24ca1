"""Moving a subscriber list in or out as CSV (``digest subscribers import`` / ``export``)."""

from __future__ import annotations

import csv
import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from digest.config import Settings
from digest.matching.topics import MAX_TOPICS_CHARS
from digest.models import Frequency, Subscriber, SubscriberState, VoteSource
from digest.subscribers.bulk import CHUNK, LEFT_STATES, Entry, Outcome, Request, Seen, Signal, chunk_done, write_chunk
from digest.subscribers.checks import CSV, Checked, Checker, neutralise, restore

__all__ = ["APPLIED_COLUMNS", "COMMIT_EVERY", "CSV_COLUMNS", "ImportReport", "export_csv", "import_csv", "neutralise", "restore"]

CSV_COLUMNS = ("email", "topics", "frequency", "timezone")
APPLIED_COLUMNS = (*CSV_COLUMNS, "state", "delivery_hour")  # what an import reads; `export` writes these six
COMMIT_EVERY = CHUNK  # rows per transaction of `digest subscribers import`: SQLite's one writer is never held for long


@dataclass
class ImportReport:
    created: int = 0
    unchanged: int = 0
    left: int = 0  # unsubscribed or refused for good before (even if purged since): left alone
    errors: list[str] = field(default_factory=list)
    to_confirm: list[int] = field(default_factory=list)  # without commit_every: subscriber ids to mail once the caller commits
    stopped: str | None = None  # the file could not be read on from this line ("line N: why")
    confirmations: int = 0  # with commit_every: ids handed to `committed`
    kept_pending: int = 0  # --confirmed, a row the file says is pending: imported pending
    mail_pending: bool = False  # ...and mailed a confirmation
    opted_out: int = 0  # a row the file says unsubscribed or suppressed, unknown here: remembered as one that left, no row
    ignored_columns: list[str] = field(default_factory=list)  # columns of the header this import does not apply
    ragged: int = 0  # lines with more cells than the header has columns
    lines_read: int = 0

    def lines(self) -> list[str]:
        out = [
            f"imported {self.created}, already present {self.unchanged}, left before (not re-subscribed) {self.left}, "
            f"rejected {len(self.errors)}"
        ]
        if self.kept_pending:
            mailed = (
                "each mailed a confirmation link" if self.mail_pending else "not mailed (--mail-pending mails them a confirmation link)"
            )
            out.append(
                f"  of those imported, {self.kept_pending} pending in the file (never confirmed where they come from): kept pending, {mailed}"
            )
        if self.opted_out:
            out.append(
                f"opt-outs carried {self.opted_out}: unsubscribed or suppressed in the file, remembered here as ones that left "
                "(no row, never mailed, no import brings them back)"
            )
        if self.ignored_columns:
            out.append(f"columns not applied: {', '.join(self.ignored_columns)} (this import reads {', '.join(APPLIED_COLUMNS)})")
        if self.ragged:
            out.append(f"cells past the header's columns, not applied: on {self.ragged} line{'' if self.ragged == 1 else 's'}")
        return out + [f"  {e}" for e in self.errors]


def _unreadable(line_no: int, exc: csv.Error | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):  # decoded a block at a time: the bad byte is at or a little after this line
        return f"line {line_no}: not UTF-8 text ({exc.reason}) at or shortly after this line"
    problem = str(exc)
    if "field larger than field limit" in problem:
        problem = f"field larger than {csv.field_size_limit()} characters (topics take at most {MAX_TOPICS_CHARS})"
    return f"line {line_no}: {problem}"


def _entry(item: Checked, now: datetime, confirmed: bool, mail_pending: bool) -> Entry:
    """What a checked line becomes here."""
    line_no, email, texts, frequency, tz, hour, state, likes = item
    state = SubscriberState(state) if state else None
    if state in LEFT_STATES:  # they left where the file comes from: only that is kept
        return Entry(line_no, email, state, row=False, remembered=state.value)
    if confirmed and state in (None, SubscriberState.active):
        seeds = [Signal(arxiv_id, 1, VoteSource.seed, now) for arxiv_id in likes]  # as the form counts them
        return Entry(line_no, email, SubscriberState.active, texts, Frequency(frequency), tz, hour, signals=seeds)
    # a sign-up waiting for its confirmation, as the web form's: the row keeps its defaults until then
    request = Request("\n".join(texts), "", Frequency(frequency), tz, now)
    return Entry(line_no, email, SubscriberState.pending, delivery_hour=hour, request=request, mail=mail_pending or not confirmed)


def import_csv(
    session: Session,
    settings: Settings,
    stream: IO[str],
    now: datetime,
    *,
    confirmed: bool,
    mail_pending: bool = False,
    commit_every: int | None = None,
    committed: Callable[[list[int]], None] | None = None,
    progress: Callable[[int], None] | None = None,
    parallel: bool = False,
) -> ImportReport:
    """Import rows as pending (each is then sent a confirmation) or, with ``confirmed``, as active.

    Addresses already known are left exactly as they are: an import never re-subscribes someone
    who left, and never changes anyone's preferences. A bad row is reported by its line number
    and rejected; the other rows are imported. A line the CSV reader cannot read at all (a field
    over the csv module's limit) stops the import there: ``report.stopped`` says where and why,
    the rows before it are imported.

    A ``state`` column (what ``export`` writes) keeps what people agreed to where the file comes
    from: a row unsubscribed or suppressed there is only remembered here as one that left (no
    row, never mailed, never brought back by a later import); with ``confirmed``, a row pending
    there is imported pending, mailed a confirmation only with ``mail_pending``. A
    ``delivery_hour`` column sets the hour. Other columns are listed in the report.

    Rows are checked one by one and written a chunk at a time (:func:`digest.subscribers.bulk.write_chunk`:
    a few set-based statements per chunk); the file is streamed, so memory does not grow with it.
    With ``parallel``, a helper process checks the lines while this one writes
    (:class:`~digest.subscribers.checks.Checker`).
    Without ``commit_every`` the caller commits (one transaction). With it, the session is
    committed every ``commit_every`` rows and at the end, and ``committed`` is called after each
    commit with the ids committed then that need a confirmation: a long import never holds
    SQLite's write lock for more than a moment, and what was committed stays if it stops.
    ``progress`` is called with the lines read so far after each chunk.
    """
    report = ImportReport(mail_pending=mail_pending)
    reader = csv.DictReader(stream)
    try:
        columns = reader.fieldnames or ()
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(_unreadable(1, exc)) from None
    if "email" not in columns:
        if columns and columns[0].startswith("{"):
            raise ValueError("this is not a CSV but JSON lines (what `subscribers export --full` writes): import it with --full")
        raise ValueError(f"the CSV needs a header row with the columns {', '.join(CSV_COLUMNS)} (email at least)")
    report.ignored_columns = list(dict.fromkeys(c or "(no name)" for c in columns if c not in APPLIED_COLUMNS))
    chunk_size = commit_every or CHUNK
    seen = Seen()

    def write(checked: tuple[int, list[Checked | str]]) -> None:
        last_line, checked = checked
        chunk = []
        for item in checked:
            if isinstance(item, str):
                report.errors.append(item)
            else:
                chunk.append(_entry(item, now, confirmed, mail_pending))
        result = write_chunk(session, chunk, now, seen)
        for entry, outcome in result.outcomes:
            if outcome is Outcome.created:
                report.created += 1
                report.kept_pending += confirmed and entry.state == SubscriberState.pending
            elif outcome is Outcome.present:
                report.unchanged += 1
            elif outcome is Outcome.left:
                report.left += 1
            else:
                report.opted_out += 1
        chunk_done(session, result, report, commit_every, committed)
        if progress is not None:
            progress(last_line or report.lines_read)

    rows = iter(reader)
    lines: list[tuple[int, dict[str, str]]] = []
    with Checker(CSV, parallel=parallel) as checker:
        try:
            for line_no in itertools.count(2):
                if line_no > 2 and (line_no - 2) % chunk_size == 0:
                    for checked in checker.submit(lines):
                        write(checked)
                    lines = []
                try:
                    row = next(rows)
                except StopIteration:
                    break
                except (csv.Error, UnicodeDecodeError) as exc:  # no reading on after this: stop here, keep what came before
                    report.stopped = _unreadable(line_no, exc)
                    break
                report.lines_read = line_no
                if None in row:  # cells past the header's columns
                    report.ragged += 1
                    del row[None]
                lines.append((line_no, row))
            for checked in [*checker.submit(lines), *checker.drain()]:
                write(checked)
        finally:
            seen.close()
    session.flush()
    return report


def export_rows(session: Session, page: int = 1000) -> Iterator[dict[str, str]]:
    """Every subscriber, read with keyset pagination on id; each cell through :func:`neutralise`
    (a spreadsheet never runs one as a formula)."""
    last = 0
    while True:
        batch = session.scalars(
            select(Subscriber).where(Subscriber.id > last).order_by(Subscriber.id).limit(page).options(selectinload(Subscriber.filters))
        ).all()
        if not batch:
            return
        for s in batch:
            row = {
                "email": s.email,
                "topics": s.topics_text,
                "frequency": s.frequency.value,
                "timezone": s.timezone,
                "state": s.state.value,
                "delivery_hour": str(s.delivery_hour),
            }
            yield {name: neutralise(value) for name, value in row.items()}
        last = batch[-1].id


def export_csv(session: Session, stream: IO[str]) -> int:
    writer = csv.DictWriter(stream, fieldnames=[*CSV_COLUMNS, "state", "delivery_hour"])
    writer.writeheader()
    count = 0
    for row in export_rows(session):
        writer.writerow(row)
        count += 1
    return count
