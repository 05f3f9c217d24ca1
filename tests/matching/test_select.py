"""Who gets which papers: trending order, matching each subscriber's filters, never a paper twice."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from digest_helpers import DAY, trending_key
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from digest.matching.select import FilterCache, Matcher, Recipient, select_for
from digest.matching.topics import parse_filter
from digest.matching.trending import paper_text

D = timedelta(days=1)


def recipient(filters=(), start: date = DAY, end: date = DAY, subscriber_id: int = 1) -> Recipient:
    return Recipient(subscriber_id, tuple(filters), start, end)


# ---------------------------------------------------------------- matching and ranking


def test_papers_rank_by_upvotes_then_the_more_recent_day(make_paper):
    papers = [make_paper(id=1, day=DAY - D, upvotes=5), make_paper(id=2, day=DAY, upvotes=5), make_paper(id=3, day=DAY - D, upvotes=9)]
    matcher = Matcher(sorted(papers, key=trending_key))
    picks = matcher.select(recipient(start=DAY - D), set(), 10)
    assert [p.paper.id for p in picks] == [3, 2, 1]


def test_only_papers_of_the_window_and_not_yet_sent_are_picked(make_paper):
    papers = [make_paper(id=1, day=DAY - D, upvotes=50), make_paper(id=2, day=DAY, upvotes=10), make_paper(id=3, day=DAY, upvotes=5)]
    picks = Matcher(sorted(papers, key=trending_key)).select(recipient(), {2}, 10)
    assert [p.paper.id for p in picks] == [3]


def test_no_filters_means_every_paper_with_no_matched_filter(make_paper):
    picks = Matcher([make_paper(id=1, upvotes=2), make_paper(id=2, upvotes=1)]).select(recipient(), set(), 10)
    assert [(p.paper.id, p.matched) for p in picks] == [(1, None), (2, None)]


def test_matched_is_the_subscribers_first_filter_that_matches(make_paper):
    papers = [make_paper(id=1, upvotes=3, title="Diffusion transformers for video"), make_paper(id=2, upvotes=2, title="Video agents")]
    picks = Matcher(papers).select(recipient(["agents", "video", "diffusion"]), set(), 10)
    assert [(p.paper.id, p.matched) for p in picks] == [(1, "video"), (2, "agents")]


def test_top_n_only(make_paper):
    papers = [make_paper(id=i, upvotes=100 - i) for i in range(1, 30)]
    picks = Matcher(papers).select(recipient(), set(), 10)
    assert [p.paper.id for p in picks] == list(range(1, 11))


def test_a_stored_filter_that_no_longer_parses_matches_nothing(make_paper):
    picks = Matcher([make_paper(id=1, title="anything")]).select(recipient(['"unterminated']), set(), 10)
    assert picks == []


def test_two_digests_of_one_subscriber_in_a_batch_never_share_a_paper(make_paper):
    papers = [make_paper(id=1, day=DAY - D, upvotes=9), make_paper(id=2, day=DAY, upvotes=5)]
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
def paper_sets(draw) -> list[dict]:
    """Up to 25 papers' fields over four days, from a small vocabulary the filters use."""
    return [
        {
            "id": i + 1,
            "day": DAY - draw(st.integers(0, 3)) * D,
            "upvotes": draw(st.integers(0, 8)),
            "title": " ".join(draw(st.lists(st.sampled_from(WORDS), min_size=1, max_size=4))),
            "abstract": " ".join(draw(st.lists(st.sampled_from(WORDS), max_size=5))),
            "authors": draw(st.lists(st.sampled_from(["Ada Lovelace", "Alan Turing"]), max_size=2)),
            "org_name": draw(st.sampled_from([None, "acme", "other"])),
        }
        for i in range(draw(st.integers(0, 25)))
    ]


@hsettings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    paper_fields=paper_sets(),
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
def test_batch_selection_equals_evaluating_each_filter_on_each_paper(make_paper, paper_fields, subscribers, size):
    papers = [make_paper(**fields) for fields in paper_fields]
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


def test_for_you_marks_only_a_paper_placed_above_a_more_upvoted_one_not_a_reordered_tie():
    from digest.matching.select import lifted_indexes

    assert lifted_indexes([9, 5, 5, 3]) == set()  # trending order
    assert lifted_indexes([2, 2, 2, 0, 1]) == {3}  # ties reordered lift nothing; the 0 above the 1 does
    assert lifted_indexes([3, 9, 5, 5]) == {0}
    assert lifted_indexes([0, 0, 1, 4]) == {0, 1, 2}


def test_bit_positions_are_iter_bits_as_an_array():
    from digest.matching.corpus import bit_positions, iter_bits

    for mask in (0, 1, 0b1011000, (1 << 3999) | (1 << 2048) | 5, int("1" * 700, 2) << 37):
        assert bit_positions(mask).tolist() == list(iter_bits(mask))
    with pytest.raises(ValueError):
        bit_positions(-1)
