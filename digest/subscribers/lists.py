"""Moving a subscriber list in or out as CSV (``digest subscribers import`` / ``export``)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from digest.config import Settings
from digest.delivery.schedule import DEFAULT_HOUR, is_valid_timezone, next_slot
from digest.matching.topics import TopicsError, parse_topics
from digest.models import Frequency, Subscriber, SubscriberState, TopicFilter
from digest.subscribers.subscriptions import normalize_email, request_subscription

CSV_COLUMNS = ("email", "topics", "frequency", "timezone")


@dataclass
class ImportReport:
    created: int = 0
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)
    to_confirm: list[int] = field(default_factory=list)  # subscriber ids to send a confirmation

    def lines(self) -> list[str]:
        return [f"imported {self.created}, already present {self.unchanged}, rejected {len(self.errors)}"] + [f"  {e}" for e in self.errors]


def _parse_row(row: dict[str, str]) -> tuple[str, list, str, str]:
    """The row's values as the web form would take them; ValueError/TopicsError say what is wrong."""
    email = normalize_email(row.get("email") or "")
    filters = parse_topics(row.get("topics") or "")
    frequency = (row.get("frequency") or "daily").strip().lower()
    if frequency not in {f.value for f in Frequency}:
        raise ValueError(f"frequency must be daily or weekly, got {frequency!r}")
    tz = (row.get("timezone") or "UTC").strip()
    if not is_valid_timezone(tz):
        raise ValueError(f"unknown time zone {tz!r}")
    return email, filters, frequency, tz


def import_csv(session: Session, settings: Settings, stream: IO[str], now: datetime, *, confirmed: bool) -> ImportReport:
    """Import rows as pending (each is then sent a confirmation) or, with ``confirmed``, as active.

    Addresses already known are left exactly as they are: an import never re-subscribes someone
    who left, and never changes anyone's preferences. A bad row is reported by its line number
    and rejected; the other rows are imported.
    """
    report = ImportReport()
    reader = csv.DictReader(stream)
    if "email" not in (reader.fieldnames or ()):
        raise ValueError(f"the CSV needs a header row with the columns {', '.join(CSV_COLUMNS)} (email at least)")
    seen: set[str] = set()
    for line_no, row in enumerate(reader, start=2):
        try:
            email, filters, frequency, tz = _parse_row(row)
        except TopicsError as exc:
            report.errors.append(f"line {line_no}: topics: " + "; ".join(e.message for e in exc.errors))
            continue
        except ValueError as exc:
            report.errors.append(f"line {line_no}: {exc}")
            continue
        if email in seen or session.scalar(select(Subscriber.id).where(Subscriber.email == email)) is not None:
            report.unchanged += 1
            continue
        seen.add(email)
        if confirmed:
            session.add(
                Subscriber(
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
            )
        else:
            subscriber = request_subscription(session, settings, email, filters, frequency, tz, now)
            if subscriber is not None:
                report.to_confirm.append(subscriber.id)
        report.created += 1
    session.flush()
    return report


def export_rows(session: Session, page: int = 1000) -> Iterator[dict[str, str]]:
    """Every subscriber, read with keyset pagination on id."""
    last = 0
    while True:
        batch = session.scalars(
            select(Subscriber).where(Subscriber.id > last).order_by(Subscriber.id).limit(page).options(selectinload(Subscriber.filters))
        ).all()
        if not batch:
            return
        for s in batch:
            yield {
                "email": s.email,
                "topics": s.topics_text,
                "frequency": s.frequency.value,
                "timezone": s.timezone,
                "state": s.state.value,
                "delivery_hour": str(s.delivery_hour),
            }
        last = batch[-1].id


def export_csv(session: Session, stream: IO[str]) -> int:
    writer = csv.DictWriter(stream, fieldnames=[*CSV_COLUMNS, "state", "delivery_hour"])
    writer.writeheader()
    count = 0
    for row in export_rows(session):
        writer.writerow(row)
        count += 1
    return count
