"""``digest stats``: whether sending is paused, subscribers by state, papers, the last ingest,
today's deliveries, and what came back (bounces, complaints, auto-replies, forged reports:
:mod:`digest.bounces`).

Every count is there, zeros included (a script reading ``--json`` finds each key every time).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.models import Delivery, DeliveryStatus, EventKind, IngestRun, MailEvent, Paper, Subscriber, SubscriberState, sending_paused

# today's deliveries in the order an operator reads them: done first, then what is still under way
DELIVERY_ORDER = (DeliveryStatus.sent, DeliveryStatus.skipped, DeliveryStatus.failed, DeliveryStatus.pending, DeliveryStatus.sending)


def stats(session: Session, now: datetime) -> dict[str, object]:
    """The counts as of ``now`` (today: its UTC day), each one there even when it is zero."""
    by_state = dict(session.execute(select(Subscriber.state, func.count()).group_by(Subscriber.state)).all())
    last_ingest = session.scalars(select(IngestRun).order_by(IngestRun.id.desc()).limit(1)).first()
    day_start = now.astimezone(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    today = dict(
        session.execute(
            select(Delivery.status, func.count())
            .where(Delivery.created_at >= day_start, Delivery.created_at < day_start + timedelta(days=1))
            .group_by(Delivery.status)
        ).all()
    )
    came_back = dict(session.execute(select(MailEvent.kind, func.count()).group_by(MailEvent.kind)).all())
    pause = sending_paused(session)
    return {
        "sending": {"paused": pause is not None, "since": pause.since if pause else None, "by": pause.by if pause else None},
        "subscribers": {state.value: by_state.get(state, 0) for state in SubscriberState},
        "papers": session.scalar(select(func.count()).select_from(Paper)) or 0,
        "latest_paper_day": session.scalar(select(func.max(Paper.daily_date))),
        "last_ingest": None
        if last_ingest is None
        else {
            "finished_at": last_ingest.finished_at,
            "fetched": last_ingest.fetched,
            "new": last_ingest.new,
            "updated": last_ingest.updated,
            "skipped": last_ingest.skipped,
        },
        "deliveries_today": {status.value: today.get(status, 0) for status in DELIVERY_ORDER},
        "mail_events": {kind.value: came_back.get(kind, 0) for kind in EventKind},  # since the start
    }
