"""A whole send run in this process (``digest send`` without a broker, the demo): plan, then send in
batches over one connection, retrying deferred rows; and the dry run, which writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone

from sqlalchemy import func, select

from digest.config import Settings
from digest.db import session_factory, session_scope
from digest.delivery.batch import SendReport, chunks, load_batch, send_deliveries
from digest.delivery.compose import compose, load_filters
from digest.delivery.ledger import claim_cutoff, claimable_ids
from digest.delivery.planning import due_pages, dues_of, existing, next_due, paper_days, plan, plan_next
from digest.mail.transport import make_transport
from digest.matching.select import FilterCache, Pick, Recipient
from digest.models import Subscriber, SubscriberState

RETRY_DELAYS = (5.0, 30.0)  # in-process backoff between send_due's retries of deferred rows

Progress = Callable[[int, int, int], None]  # (rows done, rows in this pass, attempt: 0, then each retry)


@dataclass(frozen=True)
class Preview:
    """What a dry run would send one subscriber: ``papers`` are (title, matched filter) pairs."""

    email: str
    period: str
    window: tuple[date, date]
    papers: list[tuple[str, str | None]]


def _now() -> datetime:
    return datetime.now(timezone.utc)


def send_due(
    settings: Settings,
    at: datetime,
    dry_run: bool = False,
    *,
    retry_delays: Sequence[float] = RETRY_DELAYS,
    progress: Progress | None = None,
) -> SendReport:
    """Everything due at ``at``, in-process: plan, then send in batches over one connection.

    Rows earlier runs left pending are sent too; deferred rows are retried after each delay in
    ``retry_delays`` and, if still deferred, left pending for the next run. ``progress(done, total,
    attempt)`` is called after each batch (attempt 0 is the first pass, then each retry's).
    """
    if dry_run:
        return preview_due(settings, at)
    with session_scope(settings) as session:
        ids = plan(session, settings, at)
    return _send_planned(settings, ids, at, retry_delays, progress)


def send_next(settings: Settings, now: datetime, *, retry_delays: Sequence[float] = RETRY_DELAYS) -> SendReport:
    """Every active subscriber's digest of their next slot, now (the demo's "send now";
    :func:`~digest.delivery.planning.plan_next`)."""
    with session_scope(settings) as session:
        ids = plan_next(session, now)
    return _send_planned(settings, ids, now, retry_delays)


def _send_planned(
    settings: Settings, ids: list[int], at: datetime, retry_delays: Sequence[float], progress: Progress | None = None
) -> SendReport:
    """Send the planned rows ``ids`` and any row earlier runs left claimable by ``at``."""
    with session_scope(settings) as session:
        planned = set(ids)
        now = _now()
        ids += [i for i in claimable_ids(session, claim_cutoff(settings, now), now, due_by=at) if i not in planned]
    report = SendReport()
    with make_transport(settings) as transport:
        pending = ids
        for attempt, delay in enumerate((0.0, *retry_delays)):
            if not pending:
                break
            time.sleep(delay)
            report.deferred = []
            done = 0
            for batch in chunks(pending):
                report.add(send_deliveries(settings, batch, _now(), transport=transport))
                done += len(batch)
                if progress is not None:
                    progress(done, len(pending), attempt)
            pending = report.deferred
    return report


def preview_due(settings: Settings, at: datetime) -> SendReport:
    """Who would get which papers at ``at``; reads only, writes nothing."""
    report = SendReport(dry_run=True)
    cache = FilterCache()
    with session_factory(settings)() as session:
        days = paper_days(session, at)
        now = _now()
        leftover = list(claimable_ids(session, claim_cutoff(settings, now), now, due_by=at))
        for item in load_batch(session, settings, leftover, cache) if leftover else []:
            report.previews.append(_preview(item.reader.email, item.period, item.window, item.picks))
        for rows in due_pages(session, at):
            dues = dues_of(session, rows, at, days)
            planned_before = existing(session, dues)  # `plan` would leave those alone
            report.already += sum(1 for d in dues if (d.subscriber_id, d.period) in planned_before)
            dues = [d for d in dues if (d.subscriber_id, d.period) not in planned_before]
            texts = load_filters(session, [d.subscriber_id for d in dues])
            recipients = [(d, Recipient(d.subscriber_id, texts[d.subscriber_id], d.window_start, d.window_end)) for d in dues]
            picks = compose(session, recipients, settings.digest_size, cache, arxiv_size=settings.arxiv_size)
            email = {r.id: r.email for r in rows}
            for d in dues:
                report.previews.append(_preview(email[d.subscriber_id], d.period, (d.window_start, d.window_end), picks[d]))
        if not any(p.papers for p in report.previews):
            report.next_due = next_due(session, at)
            if report.next_due is None:
                report.confirmed = session.scalar(select(func.count()).where(Subscriber.state == SubscriberState.active)) or 0
        session.rollback()
    return report


def _preview(email: str, period: str, window: tuple[date, date], picks: list[Pick]) -> Preview:
    return Preview(email, period, window, [(p.paper.title, "none: you may also like" if p.also else p.matched) for p in picks])
