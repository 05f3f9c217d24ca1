"""Sending digests: compose a batch of ledger rows, render each, send all over one connection.

The ledger's state changes (plan, claim, sent/skipped/failed/back to pending) live in
:mod:`digest.ledger`; this module decides them. A row is recorded as sent right after the SMTP
server accepted its message, so a crash mid-batch leaves the unsent rows to the next run and never
resends the sent ones. Transient trouble (a 4xx, a lost connection) puts rows back to ``pending``
(``SendReport.deferred``); a permanent 5xx for a recipient suppresses that subscriber, keeping the
reason. Composing costs the same few queries per batch whatever its size (:func:`load_batch`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.compose import FilterCache, Pick, Recipient, compose, load_filters, paper_days
from digest.config import Settings
from digest.db import among, session_factory, session_scope
from digest.emails import DigestMailer, Reader, links_for, message_id
from digest.jobs import chunks
from digest.ledger import SentLog, claim, due_pages, dues_of, existing, finish, plan, suppress, waiting, write_items
from digest.models import Delivery, DeliveryStatus, Subscriber, SubscriberState
from digest.transport import PermanentError, Transport, connection_trouble, make_transport

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # a row refused with 4xx this many times is given up (failed, subscriber kept)
RETRY_DELAYS = (5.0, 30.0)  # in-process backoff between send_due's retries of deferred rows
# ---------------------------------------------------------------- reports


@dataclass(frozen=True)
class Preview:
    """What a dry run would send one subscriber: ``papers`` are (title, matched filter) pairs."""

    email: str
    period: str
    window: tuple[date, date]
    papers: list[tuple[str, str | None]]


@dataclass
class SendReport:
    sent: int = 0
    skipped: int = 0
    failed: int = 0
    suppressed: int = 0
    deferred: list[int] = field(default_factory=list)
    previews: list[Preview] = field(default_factory=list)  # dry run only
    dry_run: bool = False

    def add(self, other: "SendReport") -> None:
        self.sent += other.sent
        self.skipped += other.skipped
        self.failed += other.failed
        self.suppressed += other.suppressed
        self.deferred += other.deferred

    def line(self) -> str:
        if self.dry_run:
            would = sum(1 for p in self.previews if p.papers)
            return (
                f"dry run: {would} digest{'' if would == 1 else 's'} would be sent, "
                f"{len(self.previews) - would} skipped (nothing new); nothing was sent or written"
            )
        return (
            f"sent {self.sent}, skipped {self.skipped} (nothing new), failed {self.failed} "
            f"({self.suppressed} suppressed), deferred {len(self.deferred)}"
        )


# ---------------------------------------------------------------- composing a batch


@dataclass(frozen=True)
class Outgoing:
    """A claimed ledger row, with everything needed to render and send it."""

    delivery_id: int
    public_id: str
    subscriber_id: int
    subscriber_public_id: str
    active: bool
    period: str
    window: tuple[date, date]
    reader: Reader
    picks: list[Pick]


def load_batch(session: Session, settings: Settings, ids: Sequence[int], filters: FilterCache | None = None) -> list[Outgoing]:
    """The rows ``ids`` with their subscribers and picks: four queries whatever the batch size.

    Columns, not ORM entities: a batch only reads them, and building 200 tracked objects cost
    more than the query.
    """
    rows = session.execute(
        select(
            Delivery.id,
            Delivery.public_id,
            Delivery.period,
            Delivery.window_start,
            Delivery.window_end,
            Subscriber.id,
            Subscriber.public_id,
            Subscriber.state,
            Subscriber.email,
            Subscriber.frequency,
            Subscriber.timezone,
            Subscriber.delivery_hour,
        )
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(among(session, Delivery.id, ids))
        .order_by(Delivery.scheduled_for, Delivery.id)  # a subscriber's older digest first
    ).all()
    texts = load_filters(session, {row[5] for row in rows})
    recipients = [(row[0], Recipient(row[5], texts[row[5]], row[3], row[4])) for row in rows]
    picks = compose(session, recipients, settings.digest_size, filters)
    return [
        Outgoing(
            delivery_id=delivery_id,
            public_id=public_id,
            subscriber_id=subscriber_id,
            subscriber_public_id=subscriber_public_id,
            active=state == SubscriberState.active,
            period=period,
            window=(start, end),
            reader=Reader(email, frequency.value, zone, hour, texts[subscriber_id]),
            picks=picks[delivery_id],
        )
        for delivery_id, public_id, period, start, end, subscriber_id, subscriber_public_id, state, email, frequency, zone, hour in rows
    ]


# ---------------------------------------------------------------- sending


def send_deliveries(
    settings: Settings, ids: Sequence[int], now: datetime, *, transport: Transport | None = None
) -> SendReport:
    """Claim, compose, render and send the ledger rows ``ids`` over one transport connection."""
    report = SendReport()
    with session_factory(settings)() as session:
        claimed = claim(session, settings, sorted(set(ids)), now)
        if not claimed:
            return report
        open_rows = set(claimed)  # claimed, not yet finished: released to pending if we stop early
        trouble: str | None = "sender stopped by an unexpected error"
        own_transport = transport is None
        transport = transport or make_transport(settings)
        try:
            batch = load_batch(session, settings, sorted(claimed))
            session.commit()
            empty = [o.delivery_id for o in batch if o.active and not o.picks]
            gone = [o.delivery_id for o in batch if not o.active]
            report.skipped = finish(session, empty, status=DeliveryStatus.skipped, paper_count=0)
            report.skipped += finish(session, gone, status=DeliveryStatus.skipped, error="no longer subscribed")
            open_rows -= {*empty, *gone}
            trouble = _send_batch(
                session, settings, [o for o in batch if o.picks and o.active], claimed, transport, now, report, open_rows
            )
        finally:
            if open_rows:
                finish(session, sorted(open_rows), status=DeliveryStatus.pending, error=trouble)
                report.deferred += sorted(open_rows)
            if own_transport:
                transport.close()
    log.info("batch of %d: %s", len(ids), report.line())
    return report


def _send_batch(
    session: Session,
    settings: Settings,
    batch: list[Outgoing],
    attempts: dict[int, int],
    transport: Transport,
    now: datetime,
    report: SendReport,
    open_rows: set[int],
) -> str | None:
    """Build every message, write what each contains, then send each row and record its outcome.

    Returns why it stopped early (connection trouble) or None.
    """
    mailer = DigestMailer(settings)
    sender = settings.mail_from_address.addr_spec
    built: list[tuple[Outgoing, bytes, list[Pick], str]] = []
    for item in batch:
        links = links_for(settings, item.subscriber_public_id, item.public_id)
        try:
            rendered, shown = mailer.render(item.picks, item.reader, item.window, links)
            data = mailer.message(rendered, item.reader.email, item.public_id, links, now)
        except Exception as exc:  # a bad address or template: this row fails, the batch goes on
            log.exception("cannot build digest %s", item.delivery_id)
            report.failed += finish(session, [item.delivery_id], status=DeliveryStatus.failed, error=f"cannot build message: {exc}")
            open_rows.discard(item.delivery_id)
            continue
        built.append((item, data, shown, message_id(settings, item.public_id)))
    contents = [(item.delivery_id, item.subscriber_id, shown) for item, _, shown, _ in built]
    write_items(session, contents, rewrite=[i for i, _, _ in contents if attempts[i] > 1])
    suppressed: set[int] = set()

    def wanted(index: int) -> bool:
        item = built[index][0]
        if item.subscriber_id in suppressed:  # a second digest of an address refused a moment ago
            report.failed += finish(session, [item.delivery_id], status=DeliveryStatus.failed, error="address suppressed")
            open_rows.discard(item.delivery_id)
            return False
        return True

    messages = [([item.reader.email], data) for item, data, _, _ in built]
    with SentLog(session) as sent_log:
        for index, exc in transport.send_each(sender, messages, wanted):
            item, _, shown, mid = built[index]
            if exc is None:
                sent_log.record(item.delivery_id, mid, len(shown), now)
                report.sent += 1
            elif isinstance(exc, PermanentError):
                if connection_trouble(exc):
                    log.error("SMTP server refuses to send at all (%s); batch deferred", exc)
                    return str(exc)
                log.warning("digest %s refused for good, suppressing subscriber %s: %s", item.delivery_id, item.subscriber_id, exc)
                suppress(session, item.delivery_id, item.subscriber_id, str(exc))
                suppressed.add(item.subscriber_id)
                report.failed += 1
                report.suppressed += 1
            elif connection_trouble(exc):
                log.warning("SMTP connection trouble (%s); %d rows deferred", exc, len(open_rows))
                return str(exc)
            elif attempts[item.delivery_id] >= MAX_ATTEMPTS:
                error = f"gave up after {MAX_ATTEMPTS} attempts: {exc}"
                report.failed += finish(session, [item.delivery_id], status=DeliveryStatus.failed, error=error)
            else:
                finish(session, [item.delivery_id], status=DeliveryStatus.pending, error=str(exc))
                report.deferred.append(item.delivery_id)
            open_rows.discard(item.delivery_id)
    return None


# ---------------------------------------------------------------- the whole run


def _now() -> datetime:
    return datetime.now(timezone.utc)


def send_due(
    settings: Settings,
    at: datetime,
    dry_run: bool = False,
    *,
    retry_delays: Sequence[float] = RETRY_DELAYS,
) -> SendReport:
    """Everything due at ``at``, in-process: plan, then send in batches over one connection.

    Rows earlier runs left pending are sent too; deferred rows are retried after each delay in
    ``retry_delays`` and, if still deferred, left pending for the next run.
    """
    if dry_run:
        return preview_due(settings, at)
    with session_scope(settings) as session:
        ids = plan(session, settings, at)
    with session_scope(settings) as session:
        planned = set(ids)
        ids += [i for i in waiting(session, settings, at, _now()) if i not in planned]
    report = SendReport()
    with make_transport(settings) as transport:
        pending = ids
        for delay in (0.0, *retry_delays):
            if not pending:
                break
            time.sleep(delay)
            report.deferred = []
            for batch in chunks(pending):
                report.add(send_deliveries(settings, batch, _now(), transport=transport))
            pending = report.deferred
    return report


def preview_due(settings: Settings, at: datetime) -> SendReport:
    """Who would get which papers at ``at``; reads only, writes nothing."""
    report = SendReport(dry_run=True)
    cache = FilterCache()
    with session_factory(settings)() as session:
        days = paper_days(session, at)
        leftover = waiting(session, settings, at, _now())
        for item in load_batch(session, settings, leftover, cache) if leftover else []:
            report.previews.append(_preview(item.reader.email, item.period, item.window, item.picks))
        for rows in due_pages(session, at):
            dues = dues_of(session, rows, at, days)
            planned_before = existing(session, dues)  # `plan` would leave those alone
            dues = [d for d in dues if (d.subscriber_id, d.period) not in planned_before]
            texts = load_filters(session, [d.subscriber_id for d in dues])
            recipients = [(d, Recipient(d.subscriber_id, texts[d.subscriber_id], d.window_start, d.window_end)) for d in dues]
            picks = compose(session, recipients, settings.digest_size, cache)
            email = {r.id: r.email for r in rows}
            for d in dues:
                report.previews.append(_preview(email[d.subscriber_id], d.period, (d.window_start, d.window_end), picks[d]))
        session.rollback()
    return report


def _preview(email: str, period: str, window: tuple[date, date], picks: list[Pick]) -> Preview:
    return Preview(email, period, window, [(p.paper.title, p.matched) for p in picks])
