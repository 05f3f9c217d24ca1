"""The demo's "Send the next digests now": every confirmed reader, daily or weekly, gets now the
digest of their next slot, with the papers stored now, and that slot sends nothing more."""

from __future__ import annotations

from datetime import UTC, date, datetime

from digest_helpers import add_subscriber, shown_papers
from sqlalchemy import select

from digest.jobs import send_todays_digests
from digest.models import Delivery, Subscriber, SubscriberState

SUNDAY = datetime(2026, 12, 6, 10, 0, tzinfo=UTC)
FRIDAY, SATURDAY = date(2026, 12, 4), date(2026, 12, 5)


def test_send_now_gives_daily_and_weekly_readers_the_digest_of_their_next_slot(session, mail_settings, smtp_server, make_paper):
    friday = make_paper("2612.00001", "Agents that plan", upvotes=5, day=FRIDAY, session=session)
    saturday = make_paper("2612.00002", "Agents that browse", upvotes=3, day=SATURDAY, session=session)
    daily = add_subscriber(session, "daily@example.org", due=datetime(2026, 12, 7, 7, 0, tzinfo=UTC))
    # a weekly reader who subscribed on Sunday: their last Monday's week had no papers, the next one has
    weekly = add_subscriber(session, "weekly@example.org", frequency="weekly", hour=8, due=datetime(2026, 12, 7, 8, 0, tzinfo=UTC))
    add_subscriber(session, "pending@example.org", state=SubscriberState.pending)
    session.commit()

    report = send_todays_digests(mail_settings, SUNDAY)
    assert (report.sent, report.skipped) == (2, 0)
    (daily_mail,) = smtp_server.to("daily@example.org")
    (weekly_mail,) = smtp_server.to("weekly@example.org")
    assert shown_papers(weekly_mail) == [friday.arxiv_id, saturday.arxiv_id]  # the week so far
    assert saturday.arxiv_id in shown_papers(daily_mail)
    assert smtp_server.to("pending@example.org") == []
    periods = dict(session.execute(select(Delivery.subscriber_id, Delivery.period)).all())
    assert periods == {daily.id: "2026-12-07", weekly.id: "2026-W50"}  # their next slots' periods
    session.expire_all()
    due = dict(session.execute(select(Subscriber.id, Subscriber.next_due_at).where(Subscriber.id.in_([daily.id, weekly.id]))).all())
    assert due == {daily.id: datetime(2026, 12, 8, 7, 0, tzinfo=UTC), weekly.id: datetime(2026, 12, 14, 8, 0, tzinfo=UTC)}

    again = send_todays_digests(mail_settings, SUNDAY)  # nothing twice: no new papers since
    assert again.sent == 0 and len(smtp_server.messages) == 2
