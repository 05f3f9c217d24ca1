"""Who gets which papers: windows, schedule slots, trending order, matching, never a paper twice."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st
from sqlalchemy.orm import Session

from digest.compose import (
    FilterCache,
    Matcher,
    Recipient,
    compose,
    due_digest,
    paper_text,
    period_day,
    select_for,
    window_candidates,
    window_for,
)
from digest.ingest import store
from digest.items import PaperRecord
from digest.models import Paper
from digest.topics import parse_filter
from digest_helpers import AT, DAY, UTC, add_paper, add_subscriber, trending_key

D = timedelta(days=1)


def paper(i: int, day: date = DAY, upvotes: int = 0, title: str = "", **fields) -> Paper:
    fields.setdefault("abstract", "")
    fields.setdefault("authors", [])
    return Paper(id=i, arxiv_id=f"2611.{i:05d}", title=title or f"paper {i}", daily_date=day, upvotes=upvotes, **fields)


def recipient(filters=(), start: date = DAY, end: date = DAY, subscriber_id: int = 1) -> Recipient:
    return Recipient(subscriber_id, tuple(filters), start, end)


# ---------------------------------------------------------------- windows and slots


def test_first_daily_digest_covers_the_last_ended_day():
    due = due_digest(1, "daily", "UTC", 7, AT, None, [DAY - D, DAY, DAY + D])
    assert (due.window_start, due.window_end) == (DAY, DAY)  # today (Nov 30) has not ended yet
    assert due.period == "2026-11-30"
    assert due.slot == AT
    assert due.next_due_at == AT + D


def test_first_weekly_digest_covers_the_last_seven_days_and_is_named_by_iso_week():
    due = due_digest(1, "weekly", "UTC", 7, AT + timedelta(hours=3), None, [DAY])
    assert (due.window_start, due.window_end) == (DAY - 6 * D, DAY)
    assert due.period == "2026-W49"
    assert due.next_due_at == AT + 7 * D


def test_next_digest_starts_the_day_after_the_previous_one_ended():
    assert window_for("daily", DAY + 2 * D, DAY) == (DAY + D, DAY + 2 * D)


def test_nothing_new_since_the_previous_digest_is_an_empty_window():
    start, end = window_for("daily", DAY, DAY)
    assert start > end


def test_after_a_long_gap_the_window_starts_afresh():
    assert window_for("daily", DAY, DAY - 30 * D) == (DAY, DAY)
    assert window_for("weekly", DAY, DAY - 30 * D) == (DAY - 6 * D, DAY)


def test_an_ingest_outage_moves_the_window_only_as_far_as_the_papers_we_have():
    # papers up to Nov 27 only: the digest of Nov 30 covers Nov 27, the next one the days that come late
    assert period_day(AT, [DAY - 3 * D, DAY - 2 * D]) == DAY - 2 * D
    due = due_digest(1, "daily", "UTC", 7, AT + D, DAY - 2 * D, [DAY - 2 * D, DAY - D, DAY, DAY + D])
    assert (due.window_start, due.window_end) == (DAY - D, DAY + D)


def test_slot_is_the_delivery_hour_in_the_subscribers_time_zone():
    at = datetime(2026, 11, 30, 6, 30, tzinfo=UTC)  # 07:30 in Berlin
    due = due_digest(1, "daily", "Europe/Berlin", 7, at, None, [DAY])
    assert due.slot == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert due.period == "2026-11-30"
    assert due.next_due_at == datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


def test_a_long_overdue_subscriber_gets_one_digest_not_a_backlog():
    due = due_digest(1, "daily", "UTC", 7, AT + 5 * D + timedelta(hours=1), AT.date() - D, [DAY + i * D for i in range(6)])
    assert due.period == "2026-12-05"
    assert due.next_due_at == AT + 6 * D


# ---------------------------------------------------------------- matching and ranking


def test_papers_rank_by_upvotes_then_the_more_recent_day():
    papers = [paper(1, DAY - D, 5), paper(2, DAY, 5), paper(3, DAY - D, 9)]
    matcher = Matcher(sorted(papers, key=trending_key))
    picks = matcher.select(recipient(start=DAY - D), set(), 10)
    assert [p.paper.id for p in picks] == [3, 2, 1]


def test_only_papers_of_the_window_and_not_yet_sent_are_picked():
    papers = [paper(1, DAY - D, 50), paper(2, DAY, 10), paper(3, DAY, 5)]
    picks = Matcher(sorted(papers, key=trending_key)).select(recipient(), {2}, 10)
    assert [p.paper.id for p in picks] == [3]


def test_no_filters_means_every_paper_with_no_matched_filter():
    picks = Matcher([paper(1, upvotes=2), paper(2, upvotes=1)]).select(recipient(), set(), 10)
    assert [(p.paper.id, p.matched) for p in picks] == [(1, None), (2, None)]


def test_matched_is_the_subscribers_first_filter_that_matches():
    papers = [paper(1, upvotes=3, title="Diffusion transformers for video"), paper(2, upvotes=2, title="Video agents")]
    picks = Matcher(papers).select(recipient(["agents", "video", "diffusion"]), set(), 10)
    assert [(p.paper.id, p.matched) for p in picks] == [(1, "video"), (2, "agents")]


def test_top_n_only():
    papers = [paper(i, upvotes=100 - i) for i in range(1, 30)]
    picks = Matcher(papers).select(recipient(), set(), 10)
    assert [p.paper.id for p in picks] == list(range(1, 11))


def test_a_stored_filter_that_no_longer_parses_matches_nothing():
    picks = Matcher([paper(1, title="anything")]).select(recipient(['"unterminated']), set(), 10)
    assert picks == []


def test_two_digests_of_one_subscriber_in_a_batch_never_share_a_paper():
    papers = [paper(1, DAY - D, 9), paper(2, DAY, 5)]
    matcher = Matcher(sorted(papers, key=trending_key))
    wide = recipient(start=DAY - D)
    out = select_for(matcher, [("older", wide), ("newer", wide)], {}, 10)
    assert [p.paper.id for p in out["older"]] == [1, 2]
    assert out["newer"] == []


WORDS = ["diffusion", "video", "agent", "llm", "robot", "vision", "graph"]
FILTER_LINES = WORDS + [
    "video OR robot",
    '"video diffusion"',
    "agent -robot",
    "title:llm",
    "author:lovelace",
    "org:acme",
    "upvotes:>=5",
    "vision upvotes:<3",
    "-graph",
]


@st.composite
def paper_sets(draw):
    count = draw(st.integers(0, 25))
    out = []
    for i in range(count):
        title = " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=4)))
        out.append(
            paper(
                i + 1,
                DAY - draw(st.integers(0, 3)) * D,
                draw(st.integers(0, 8)),
                title=title,
                abstract=" ".join(draw(st.lists(st.sampled_from(WORDS), max_size=5))),
                authors=draw(st.lists(st.sampled_from(["Ada Lovelace", "Alan Turing"]), max_size=2)),
                org_name=draw(st.sampled_from([None, "acme", "other"])),
            )
        )
    return out


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    papers=paper_sets(),
    subscribers=st.lists(
        st.tuples(
            st.lists(st.sampled_from(FILTER_LINES), max_size=3, unique=True),
            st.integers(0, 3),  # window start, days back
            st.integers(0, 3),  # window end, days back
            st.sets(st.integers(1, 25), max_size=5),  # already sent
        ),
        min_size=1,
        max_size=6,
    ),
    size=st.integers(1, 6),
)
def test_batch_selection_equals_evaluating_each_filter_on_each_paper(papers, subscribers, size):
    matcher = Matcher(sorted(papers, key=trending_key), FilterCache())
    for lines, back_start, back_end, sent in subscribers:
        start, end = DAY - max(back_start, back_end) * D, DAY - min(back_start, back_end) * D
        picks = matcher.select(Recipient(1, tuple(lines), start, end), set(sent), size)
        compiled = [parse_filter(line) for line in lines]
        expected = []
        for p in sorted(papers, key=trending_key):
            if not start <= p.daily_date <= end or p.id in sent:
                continue
            matched = next((f.text for f in compiled if f.matches(paper_text(p))), None)
            if compiled and matched is None:
                continue
            expected.append((p.id, matched))
        assert [(p.paper.id, p.matched) for p in picks] == expected[:size]


# ---------------------------------------------------------------- from the database


def test_compose_reads_the_union_of_windows_and_what_was_sent(session):
    old = add_paper(session, "2611.00001", "Old video", DAY - 3 * D, 50)
    new = add_paper(session, "2611.00002", "New video", DAY, 10)
    add_paper(session, "2611.00003", "Unrelated", DAY, 99)
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


def test_a_process_reuses_the_windows_papers_until_an_ingest_refreshes_them(session):
    first = add_paper(session, "2611.00001", "Video one", DAY, 10)
    second = add_paper(session, "2611.00002", "Video two", DAY, 5)
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
