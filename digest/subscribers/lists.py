"""Moving a subscriber list in or out as CSV (``digest subscribers import`` / ``export``)."""

from __future__ import annotations

import csv
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from digest.config import Settings
from digest.delivery.schedule import DEFAULT_HOUR, is_valid_timezone, next_slot
from digest.matching.topics import MAX_TOPICS_CHARS, TopicsError, parse_topics, shown_errors
from digest.models import Frequency, Subscriber, SubscriberState, TopicFilter
from digest.subscribers.addresses import normalize_email
from digest.subscribers.subscriptions import has_left, request_subscription, set_seed_papers

CSV_COLUMNS = ("email", "topics", "frequency", "timezone")
COMMIT_EVERY = 500  # rows per transaction of `digest subscribers import`: SQLite's one writer is never held for long

# A cell a spreadsheet would run as a formula (OWASP "CSV injection"): export writes it with one
# more leading quote, import takes that quote off again. Cells already starting with quotes before
# such a character get one more too, so every value reads back exactly as it was.
_FORMULA = re.compile(r"'*[=+\-@\t\r]")


def neutralise(cell: str) -> str:
    """``=1+2`` -> ``'=1+2``: shown as text by spreadsheets, never evaluated."""
    return "'" + cell if _FORMULA.match(cell) else cell


def restore(cell: str) -> str:
    """The inverse of :func:`neutralise`."""
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell, 1) else cell


@dataclass
class ImportReport:
    created: int = 0
    unchanged: int = 0
    left: int = 0  # unsubscribed or refused for good before (even if purged since): left alone
    errors: list[str] = field(default_factory=list)
    to_confirm: list[int] = field(default_factory=list)  # subscriber ids to send a confirmation
    stopped: str | None = None  # the file could not be read on from this line ("line N: why")

    def lines(self) -> list[str]:
        return [
            f"imported {self.created}, already present {self.unchanged}, left before (not re-subscribed) {self.left}, "
            f"rejected {len(self.errors)}"
        ] + [f"  {e}" for e in self.errors]


def _unreadable(line_no: int, exc: csv.Error | UnicodeDecodeError) -> str:
    if isinstance(exc, UnicodeDecodeError):  # decoded a block at a time: the bad byte is at or a little after this line
        return f"line {line_no}: not UTF-8 text ({exc.reason}) at or shortly after this line"
    problem = str(exc)
    if "field larger than field limit" in problem:
        problem = f"field larger than {csv.field_size_limit()} characters (topics take at most {MAX_TOPICS_CHARS})"
    return f"line {line_no}: {problem}"


def _parse_row(row: dict[str, str]) -> tuple[str, list, str, str]:
    """The row's values as the web form would take them; ValueError/TopicsError say what is wrong."""
    row = {name: restore(value) for name, value in row.items() if isinstance(name, str) and isinstance(value, str)}
    email = normalize_email(row.get("email") or "")
    filters = parse_topics(row.get("topics") or "")
    frequency = (row.get("frequency") or "daily").strip().lower()
    if frequency not in {f.value for f in Frequency}:
        raise ValueError(f"frequency must be daily or weekly, got {frequency!r}")
    tz = (row.get("timezone") or "UTC").strip()
    if not is_valid_timezone(tz):
        raise ValueError(f"unknown time zone {tz!r}")
    return email, filters, frequency, tz


def import_csv(
    session: Session,
    settings: Settings,
    stream: IO[str],
    now: datetime,
    *,
    confirmed: bool,
    commit_every: int | None = None,
    committed: Callable[[list[int]], None] | None = None,
) -> ImportReport:
    """Import rows as pending (each is then sent a confirmation) or, with ``confirmed``, as active.

    Addresses already known are left exactly as they are: an import never re-subscribes someone
    who left, and never changes anyone's preferences. A bad row is reported by its line number
    and rejected; the other rows are imported. A line the CSV reader cannot read at all (a field
    over the csv module's limit) stops the import there: ``report.stopped`` says where and why,
    the rows before it are imported.

    Without ``commit_every`` the caller commits (one transaction). With it, the session is
    committed every ``commit_every`` rows and at the end, and ``committed`` is called after each
    commit with the ids committed then that need a confirmation: a long import never holds
    SQLite's write lock for more than a moment, and what was committed stays if it stops.
    """
    report = ImportReport()
    reader = csv.DictReader(stream)
    try:
        columns = reader.fieldnames or ()
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(_unreadable(1, exc)) from None
    if "email" not in columns:
        raise ValueError(f"the CSV needs a header row with the columns {', '.join(CSV_COLUMNS)} (email at least)")
    seen: set[str] = set()
    handed = 0  # report.to_confirm[:handed] were committed and given to `committed`

    def commit() -> None:
        nonlocal handed
        session.commit()
        if committed is not None:
            committed(report.to_confirm[handed:])
        handed = len(report.to_confirm)

    rows = iter(reader)
    for line_no in itertools.count(2):
        if commit_every and line_no > 2 and (line_no - 2) % commit_every == 0:
            commit()
        try:
            row = next(rows)
        except StopIteration:
            break
        except (csv.Error, UnicodeDecodeError) as exc:  # no reading on after this: stop here, keep what came before
            report.stopped = _unreadable(line_no, exc)
            break
        try:
            email, filters, frequency, tz = _parse_row(row)
        except TopicsError as exc:
            report.errors.append(f"line {line_no}: topics: " + "; ".join(shown_errors([e.message for e in exc.errors])))
            continue
        except ValueError as exc:
            report.errors.append(f"line {line_no}: {exc}")
            continue
        if email in seen or session.scalar(select(Subscriber.id).where(Subscriber.email == email)) is not None:
            report.unchanged += 1
            continue
        seen.add(email)
        if has_left(session, email):  # never brought back by an import, --confirmed or not
            report.left += 1
            continue
        if confirmed:
            subscriber = Subscriber(
                email=email,
                frequency=Frequency(frequency),
                timezone=tz,
                delivery_hour=DEFAULT_HOUR,
                state=SubscriberState.active,
                created_at=now,
                confirmed_at=now,
                next_due_at=next_slot(frequency, tz, DEFAULT_HOUR, after=now),
                filters=[TopicFilter(position=i, text=f.text) for i, f in enumerate(filters)],
            )
            session.add(subscriber)
            if any("like:" in f.key for f in filters):  # the papers it names count as seeds, as on the form
                session.flush()
                set_seed_papers(session, subscriber, (), filters, now)
        else:
            subscriber = request_subscription(session, settings, email, filters, frequency, tz, now)
            if subscriber is not None:
                report.to_confirm.append(subscriber.id)
        report.created += 1
    session.flush()
    if commit_every:
        commit()
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
