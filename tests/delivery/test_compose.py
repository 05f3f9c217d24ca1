"""Composing a batch from the database: the union of its windows' papers, minus what each was sent."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from digest_helpers import DAY, add_subscriber
from sqlalchemy import event
from sqlalchemy.orm import Session

from digest.delivery.compose import compose
from digest.matching.profiles import load_window
from digest.matching.select import Recipient
from digest.matching.trending import window_candidates
from digest.papers.ingest import store
from digest.papers.items import PaperRecord
from digest.papers.vectors import represent

D = timedelta(days=1)


def test_compose_reads_the_union_of_windows_and_what_was_sent(session, make_paper):
    old = make_paper("2611.00001", "Old video", day=DAY - 3 * D, upvotes=50, session=session)
    new = make_paper("2611.00002", "New video", day=DAY, upvotes=10, session=session)
    make_paper("2611.00003", "Unrelated", day=DAY, upvotes=99, session=session)
    alice = add_subscriber(session, "alice@example.org", ["video"])
    bob = add_subscriber(session, "bob@example.org", ["video"])
    session.commit()
    picks = compose(
        session,
        [("a", Recipient(alice.id, ("video",), DAY - 3 * D, DAY)), ("b", Recipient(bob.id, ("video",), DAY, DAY))],
        10,
    )
    assert [p.paper.id for p in picks["a"]] == [old.id, new.id]
    assert [p.paper.id for p in picks["b"]] == [new.id]


def test_compose_with_only_empty_windows_reads_nothing(session):
    alice = add_subscriber(session, "alice@example.org")
    session.commit()
    assert compose(session, [("a", Recipient(alice.id, (), DAY + D, DAY))], 10) == {"a": []}


def test_a_process_reuses_the_windows_papers_until_an_ingest_refreshes_them(session, make_paper):
    first = make_paper("2611.00001", "Video one", day=DAY, upvotes=10, session=session)
    second = make_paper("2611.00002", "Video two", day=DAY, upvotes=5, session=session)
    alice = add_subscriber(session, "alice@example.org", ["video"])
    session.commit()
    recipients = [("a", Recipient(alice.id, ("video",), DAY, DAY))]
    assert window_candidates(session, DAY, DAY) is window_candidates(session, DAY, DAY)
    assert [p.paper.id for p in compose(session, recipients, 10)["a"]] == [first.id, second.id]

    record = PaperRecord(arxiv_id="2611.00002", title="Video two", daily_date=DAY, upvotes=50)
    store(session, [record], datetime.now(timezone.utc))  # what an ingest does: upvotes changed
    session.commit()
    with Session(session.get_bind()) as other:  # loads them afresh, then rolls back and closes
        assert [(p.paper.id, p.paper.upvotes) for p in compose(other, recipients, 10)["a"]] == [(second.id, 50), (first.id, 10)]
        other.rollback()
    # the papers kept for the next batches were not expired with that session
    assert [p.paper.title for p in compose(session, recipients, 10)["a"]] == ["Video two", "Video one"]


def test_the_windows_vectors_are_kept_with_its_papers_until_a_paper_of_it_is_represented(session, make_paper):
    """Every batch of a run scores against the same window: its vectors come with the cached
    candidates, without a query; storing a window paper's vectors makes new candidates."""
    make_paper("2611.00001", "Video one", day=DAY, upvotes=10, session=session)
    make_paper("2611.00002", "Video two", day=DAY, upvotes=5, session=session)
    session.commit()
    represent(session, ["2611.00001"])  # the second paper has no vectors yet
    session.commit()
    candidates = window_candidates(session, DAY, DAY)
    window = load_window(session, candidates)
    assert window.present.tolist() == [True, False]
    queries: list[str] = []

    def count(*args) -> None:
        queries.append(args[2])

    event.listen(session.get_bind(), "before_cursor_execute", count)
    try:
        assert load_window(session, candidates) is window and queries == []
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", count)
    assert window_candidates(session, DAY, DAY) is candidates  # (one query: the window's version)

    represent(session)  # what `digest represent` or an ingest does for the second paper
    session.commit()
    fresh = window_candidates(session, DAY, DAY)
    assert fresh is not candidates and load_window(session, fresh).present.tolist() == [True, True]
