"""Taste: profiles from votes and seeds, scored for a batch at once, blended with today's order.

Papers get their vectors the way ingest gives them (``digest.papers.vectors.represent``, the real
wordllama model from its wheel); two topics far apart (low-bit quantization, video diffusion) play
the reader's liked and disliked interests.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from digest_helpers import AT, DAY, add_subscriber
from sqlalchemy import func, select

from digest.matching.profiles import add_seed, load_profiles, load_taste, record_vote, remove_vote, set_seeds, similar_papers
from digest.matching.scoring import PERSONAL_CLIP, Taste, Window
from digest.matching.taste import CENTROID_BELOW, DIM, MAX_SIGNALS, PROFILE_MAX_BYTES, Profile, Signal, fit
from digest.matching.trending import in_trending_order
from digest.models import ReaderProfile, SparseVector, Vote
from digest.papers.vectors import represent

QUANTIZATION = [
    (
        "Low-bit weight quantization of LLMs",
        "We quantize the weights of large language models to 4 bits with per-channel scales and outlier handling, keeping perplexity close to FP16.",
    ),
    (
        "FP8 training with scaled activations",
        "Training in 8-bit floating point needs scaling factors for activations and gradients; we present a recipe for stable FP8 pre-training.",
    ),
    (
        "Post-training quantization with rotations",
        "Random Hadamard rotations spread outliers before rounding, so post-training quantization to INT4 loses little accuracy.",
    ),
    (
        "Mixed-precision kernels for quantized inference",
        "We write GPU kernels that multiply INT4 weights by FP16 activations, speeding up quantized LLM inference on consumer hardware.",
    ),
    (
        "Quantization-aware fine-tuning at 2 bits",
        "Fine-tuning with simulated 2-bit quantization recovers most of the accuracy lost by extreme low-bit compression of transformer weights.",
    ),
]
DIFFUSION = [
    (
        "Video diffusion with temporal attention",
        "A latent video diffusion model generates coherent clips by adding temporal attention layers to an image denoiser.",
    ),
    (
        "Text-to-video generation at high resolution",
        "We train a cascaded diffusion model that turns text prompts into high-resolution videos with smooth camera motion.",
    ),
    (
        "Consistent characters in generated videos",
        "Our video generator keeps a character's identity across frames by conditioning the diffusion denoiser on reference images.",
    ),
    (
        "Fast sampling for video diffusion models",
        "Distilling the denoiser of a video diffusion model into four sampling steps makes text-to-video generation real time.",
    ),
    (
        "Editing videos with diffusion priors",
        "Given a source video and an instruction, a diffusion prior edits the appearance of objects while keeping the motion.",
    ),
]


def add_topic(session, make_paper, topic, prefix, upvotes, day=DAY):
    return [
        make_paper(f"{prefix}.{i:05d}", title, session=session, abstract=abstract, upvotes=u, day=day)
        for i, ((title, abstract), u) in enumerate(zip(topic, upvotes), start=1)
    ]


@pytest.fixture
def topics(session, make_paper):
    """Yesterday: two papers of each topic to vote on; today: both topics, diffusion upvoted more."""
    before = DAY - timedelta(days=1)
    voted = add_topic(session, make_paper, QUANTIZATION[:2], "2611", (5, 4), before)
    voted += add_topic(session, make_paper, DIFFUSION[:2], "2612", (5, 4), before)
    today_q = add_topic(session, make_paper, QUANTIZATION[2:], "2613", (3, 2, 1))
    today_d = add_topic(session, make_paper, DIFFUSION[2:], "2614", (40, 30, 20))
    represent(session)
    return voted, today_q, today_d


def test_a_reader_without_votes_or_seeds_gets_exactly_todays_order(session, topics):
    _, today_q, today_d = topics
    plain, voter = add_subscriber(session, "plain@example.org"), add_subscriber(session, "voter@example.org")
    record_vote(session, voter.id, today_q[0].id, 1, AT)  # another reader of the same batch has a profile
    papers = in_trending_order(today_q + today_d)
    taste = load_taste(session, papers, [plain.id, voter.id])
    assert taste.order(plain.id, range(len(papers))) == list(range(len(papers)))
    assert taste.order(plain.id, [0, 2, 5]) == [0, 2, 5]
    assert taste.why(plain.id, 0) is None and taste.also_like(plain.id, range(len(papers))) == []
    assert taste.parts(plain.id, 3).personal == 0 and taste.parts(plain.id, 3).final == taste.parts(plain.id, 3).trending


def test_liked_topic_moves_up_and_disliked_topic_moves_down_not_out(session, topics):
    """The issue's check: two "more" on one topic, one "less" on another; the next day's candidates
    have more upvotes on the disliked topic, yet the liked topic comes first, and says why."""
    (q1, q2, d1, _), today_q, today_d = topics
    reader = add_subscriber(session, "reader@example.org")
    record_vote(session, reader.id, q1.id, 1, AT - timedelta(hours=3))
    record_vote(session, reader.id, q2.id, 1, AT - timedelta(hours=2))
    record_vote(session, reader.id, d1.id, -1, AT - timedelta(hours=1))
    papers = in_trending_order(today_q + today_d)
    assert [p.arxiv_id[:4] for p in papers] == ["2614"] * 3 + ["2613"] * 3  # trending: diffusion first

    taste = load_taste(session, papers, [reader.id])
    order = taste.order(reader.id, range(len(papers)))
    assert sorted(order) == list(range(len(papers)))  # nothing left out
    assert [papers[i].arxiv_id[:4] for i in order] == ["2613"] * 3 + ["2614"] * 3
    first = order[0]
    assert taste.parts(reader.id, first).personal > 0 > taste.parts(reader.id, order[-1]).personal
    assert taste.why(reader.id, first) in {f"like {q1.arxiv_id}, which you liked", f"like {q2.arxiv_id}, which you liked"}
    assert all(taste.why(reader.id, i) is None for i in order[3:])  # nothing "like" a disliked topic


def test_a_second_vote_replaces_the_first_and_the_same_vote_twice_changes_nothing(session, topics):
    (q1, *_), _, _ = topics
    reader = add_subscriber(session, "reader@example.org")
    record_vote(session, reader.id, q1.id, 1, AT)
    first = session.scalar(select(ReaderProfile.profile).where(ReaderProfile.subscriber_id == reader.id))
    record_vote(session, reader.id, q1.id, 1, AT)
    assert session.scalar(select(ReaderProfile.profile).where(ReaderProfile.subscriber_id == reader.id)) == first
    assert session.scalar(select(func.count()).select_from(Vote)) == 1

    profile = record_vote(session, reader.id, q1.id, -1, AT + timedelta(minutes=1))
    assert session.scalars(select(Vote.vote)).all() == [-1]
    assert (profile.likes, profile.dislikes) == (0, 1)
    assert load_profiles(session, [reader.id])[reader.id].to_bytes() == profile.to_bytes()


def test_undo_forgets_the_vote_and_a_reader_with_nothing_left_has_no_profile(session, topics):
    (q1, q2, *_), _, _ = topics
    reader = add_subscriber(session, "reader@example.org")
    record_vote(session, reader.id, q1.id, 1, AT)
    record_vote(session, reader.id, q2.id, -1, AT)
    assert remove_vote(session, reader.id, q2.id, AT).dislikes == 0
    assert remove_vote(session, reader.id, q1.id, AT) is None
    assert load_profiles(session, [reader.id]) == {}
    assert session.scalar(select(func.count()).select_from(ReaderProfile)) == 0


def test_seeds_count_as_likes_and_the_form_replaces_them_keeping_votes(session, topics):
    (q1, q2, d1, d2), _, _ = topics
    reader = add_subscriber(session, "reader@example.org")
    add_seed(session, reader.id, q1.id, AT)
    record_vote(session, reader.id, d1.id, -1, AT)
    profile = set_seeds(session, reader.id, [q2.id, d1.id, d2.id], AT)  # d1 has a vote: the vote stays
    rows = dict(session.execute(select(Vote.paper_id, Vote.source)).all())
    assert {k: v.value for k, v in rows.items()} == {q2.id: "seed", d1.id: "vote", d2.id: "seed"}
    assert (profile.seeds, profile.likes, profile.dislikes) == (2, 0, 1)


def test_a_vote_must_be_plus_or_minus_one_and_the_reader_must_exist(session, topics):
    (q1, *_), _, _ = topics
    reader = add_subscriber(session, "reader@example.org")
    with pytest.raises(ValueError):
        record_vote(session, reader.id, q1.id, 2, AT)
    with pytest.raises(LookupError):
        record_vote(session, reader.id + 1000, q1.id, 1, AT)


def test_the_papers_most_like_a_paper_are_of_its_topic(session, topics):
    (q1, *_), today_q, today_d = topics
    papers = in_trending_order(today_q + today_d)
    assert {p.arxiv_id[:4] for p in similar_papers(session, q1.id, papers, limit=3)} == {"2613"}


# ---------------------------------------------------------------- the model itself, no database


def random_signals(n: int, seed: int = 1, terms: int = 48) -> list[Signal]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        dense = rng.normal(size=DIM).astype(np.float32)
        weights = rng.random(terms).astype(np.float32)
        sparse = SparseVector(rng.choice(2**32 - 1, terms, replace=False).astype(np.uint32), weights / np.linalg.norm(weights))
        out.append(Signal(i + 1, f"2611.{i + 1:05d}", 1 if i % 3 else -1, i % 7 == 0, dense / np.linalg.norm(dense), sparse))
    return out


def test_a_profile_is_at_most_2_kb_and_reads_back_as_written():
    profile = fit(random_signals(MAX_SIGNALS + 50))
    data = profile.to_bytes()
    assert len(data) <= PROFILE_MAX_BYTES
    again = Profile.from_bytes(data)
    assert again.to_bytes() == data
    assert (again.likes, again.dislikes, again.seeds, again.learned) == (profile.likes, profile.dislikes, profile.seeds, True)
    assert [a.arxiv_id for a in again.anchors] == [a.arxiv_id for a in profile.anchors]


def test_the_centroid_below_five_signals_then_a_learned_model():
    assert not fit(random_signals(CENTROID_BELOW - 1)).learned
    assert fit(random_signals(CENTROID_BELOW)).learned
    likes_only = [s for s in random_signals(20) if s.vote > 0]
    assert not fit(likes_only).learned  # a model needs both kinds of vote


def test_a_batch_is_scored_at_once_and_each_reader_as_if_alone():
    signals = random_signals(60, seed=2)
    candidates = random_signals(30, seed=3)
    window = Window([s.paper_id % 7 for s in candidates], [(s.dense, s.sparse) for s in candidates])
    profiles = {10: fit(signals[:3]), 11: fit(signals[:20]), 12: fit(signals[20:])}
    together = Taste(window, profiles)
    assert together.personal.shape == (3, 30)
    for subscriber_id, profile in profiles.items():
        alone = Taste(window, {subscriber_id: profile})
        np.testing.assert_allclose(alone.personal[0], together.personal[list(profiles).index(subscriber_id)], atol=1e-5)
        assert alone.order(subscriber_id, range(30)) == together.order(subscriber_id, range(30))


def test_a_disliked_paper_is_moved_down_by_a_bounded_amount():
    candidates = random_signals(12, seed=4)
    window = Window([100] + [0] * 11, [(s.dense, s.sparse) for s in candidates])
    disliked = [Signal(s.paper_id, s.arxiv_id, -1, False, s.dense, s.sparse) for s in candidates[:1]]
    taste = Taste(window, {1: fit(disliked)})
    parts = taste.parts(1, 0)
    assert parts.personal < 0 and parts.final >= parts.trending - parts.weight * PERSONAL_CLIP
    assert 0 in taste.order(1, range(12))


def test_a_batch_scores_as_the_plain_matrix_products_and_why_as_a_scan_of_the_anchors():
    """The scores are W_d · Dᵀ and W_s · Sᵀ (without BLAS, term postings instead of a matrix over the
    vocabulary): checked against the products written plainly; "why" names the last of the nearest
    liked anchors at least WHY_SIMILARITY near, as a scan keeping the best with >= would."""
    from digest.matching.scoring import DENSE_SHARE, SPARSE_SHARE, standardize

    candidates = random_signals(40, seed=5)
    vectors = [(s.dense, s.sparse) if i % 9 else None for i, s in enumerate(candidates)]  # some without vectors
    shared = candidates[3].sparse.terms[:10]  # profiles that share terms with the candidates
    for s in candidates[:8]:
        s.sparse.terms[:10] = shared
    window = Window([s.paper_id for s in candidates], vectors)
    liked = [Signal(s.paper_id, s.arxiv_id, 1, False, s.dense, s.sparse) for s in candidates]
    profiles = {r: fit(liked[r + 1 : r + 4] + random_signals(5 + 7 * r, seed=20 + r)) for r in range(6)}  # newest first: the anchors
    profiles[6] = fit([Signal(s.paper_id, s.arxiv_id, -1, False, s.dense, s.sparse) for s in candidates[:3]])  # dislikes only
    profiles[7] = fit([liked[1], twin(liked[1], liked[30])] + random_signals(3, seed=7))  # two papers, one sketch: a tie
    present = np.array([v is not None for v in vectors])
    dense = np.array([v[0] if v else np.zeros(DIM) for v in vectors])
    for p in profiles.values():
        sparse = np.array(
            [
                sum(
                    w * dict(zip(v[1].terms.tolist(), v[1].weights.tolist())).get(t, 0.0)
                    for t, w in zip(p.terms.tolist(), p.weights.tolist())
                )
                if v
                else 0.0
                for v in vectors
            ]
        )
        mixed = DENSE_SHARE * standardize(dense @ p.dense, present) + SPARSE_SHARE * standardize(sparse, present)
        expected = np.clip(standardize(mixed, present), -PERSONAL_CLIP, PERSONAL_CLIP)[0]
        np.testing.assert_allclose(window.personal([p])[0], expected, atol=1e-4)
        assert np.any(sparse != 0)

    taste = Taste(window, profiles)
    named = 0
    for r, p in profiles.items():
        for position in range(window.size):
            expected = scanned_why(p, window, position) if present[position] and taste.personal[r, position] > 0 else None
            named += expected is not None
            assert taste.why(r, position) == expected
    assert named >= 6  # the candidates each profile voted on are near their own anchors
    assert taste.why(7, 1) == f"like {liked[30].arxiv_id}, which you liked"  # of the tie, the later anchor, as the scan names it


def test_a_profile_decodes_its_anchors_as_written():
    signals = [Signal(s.paper_id, s.arxiv_id, 1 if s.seed else s.vote, s.seed, s.dense, s.sparse) for s in random_signals(30, seed=9)]
    profile = fit(signals)  # a seed is a like
    again = Profile.from_bytes(profile.to_bytes())
    assert any(a.seed for a in again.anchors) and any(a.vote < 0 for a in again.anchors)
    assert [(a.paper_id, a.arxiv_id, a.vote, a.seed) for a in again.anchors] == [
        (a.paper_id, a.arxiv_id, a.vote, a.seed) for a in profile.anchors
    ]
    for a, b in zip(again.anchors, profile.anchors):
        assert abs(float(np.linalg.norm(a.sketch)) - 1.0) < 1e-6
        assert float(a.sketch @ b.sketch) > 0.999  # int8 sketch, unit again
    with pytest.raises(ValueError):
        Profile.from_bytes(profile.to_bytes()[:-1])  # an anchor cut short


def test_a_readers_order_is_the_blend_sorted_ties_in_todays_order():
    candidates = random_signals(50, seed=11)
    window = Window([s.paper_id % 5 for s in candidates], [(s.dense, s.sparse) for s in candidates])  # many trending ties
    profiles = {1: fit(random_signals(4, seed=12)), 2: fit(random_signals(30, seed=13))}
    taste = Taste(window, profiles)
    for subscriber_id in profiles:
        for positions in (range(50), range(0, 50, 3), [7], [40, 2, 19, 33]):
            parts = {p: taste.parts(subscriber_id, p) for p in positions}  # the blend in float32, as scored
            final = {p: np.float32(x.trending) + np.float32(x.weight) * np.float32(x.personal) for p, x in parts.items()}
            assert taste.order(subscriber_id, positions) == sorted(positions, key=lambda p: (-final[p], p))
            assert taste.order(subscriber_id, np.asarray(list(positions))) == taste.order(
                subscriber_id, positions
            )  # select's bit positions
    assert taste.order(3, [5, 1, 9]) == [5, 1, 9]  # no profile: as given
    flat = Taste(window, {4: fit(random_signals(3, seed=14))}, parts=())  # no personal part: today's order
    assert taste.order(4, range(50)) == list(range(50)) and flat.order(4, range(50)) == sorted(
        range(50), key=lambda p: (-window.trend[p], p)
    )


def test_a_large_window_orders_and_explains_as_the_batch_does():
    """Above BATCH_ORDER_MAX candidates (an arXiv section) order and why are computed per paper asked
    about: the same orders as the blend sorted, the same why as a scan of the reader's anchors."""
    from digest.matching.scoring import BATCH_ORDER_MAX

    candidates = random_signals(BATCH_ORDER_MAX + 44, seed=21)
    window = Window([s.paper_id % 4 for s in candidates], [(s.dense, s.sparse) for s in candidates])  # trending ties
    liked = [Signal(s.paper_id, s.arxiv_id, 1, False, s.dense, s.sparse) for s in candidates]
    profiles = {  # each with two papers of one sketch: a tie
        r: fit(liked[10 * r : 10 * r + 3] + [twin(liked[10 * r + 1], liked[200 + r])] + random_signals(4 + 5 * r, seed=40 + r))
        for r in range(5)
    }
    taste = Taste(window, profiles)
    ties = 0
    for r, p in profiles.items():
        for positions in (range(window.size), range(0, window.size, 2), [5, 299, 17]):
            parts = {q: taste.parts(r, q) for q in positions}
            final = {q: np.float32(x.trending) + np.float32(x.weight) * np.float32(x.personal) for q, x in parts.items()}
            assert taste.order(r, positions) == sorted(positions, key=lambda q: (-final[q], q))
        named = 0
        for position in range(window.size):
            expected = scanned_why(p, window, position) if taste.personal[r, position] > 0 else None
            named += expected is not None
            assert taste.why(r, position) == expected
        assert named >= 1  # the papers each reader liked are near their own anchors
        if taste.personal[r, 10 * r + 1] > 0:  # of the tie, the later anchor, as the scan names it
            assert taste.whys(r, [10 * r + 1]) == [f"like {liked[200 + r].arxiv_id}, which you liked"]
            ties += 1
    assert ties >= 3


def twin(liked: Signal, other: Signal) -> Signal:
    """A like of ``other``'s paper carrying ``liked``'s vectors: two anchors with one sketch, so a
    paper near one is exactly as near the other (a tie the why line must break the same way)."""
    return Signal(other.paper_id, other.arxiv_id, 1, False, liked.dense, liked.sparse)


def scanned_why(profile, window, position: int) -> str | None:
    """The reference why line: a scan of the profile's liked anchors keeping the nearest so far with
    ``>=`` (of a tie, the later one), if ``WHY_SIMILARITY`` near; named by arXiv id."""
    from digest.matching.scoring import WHY_SIMILARITY

    best, similarity = None, WHY_SIMILARITY
    for anchor in profile.anchors:
        s = float(anchor.sketch @ window.sketch[position])
        if anchor.vote > 0 and s >= similarity:
            best, similarity = anchor, s
    if best is None:
        return None
    return f"like {best.arxiv_id}, " + ("one of your seed papers" if best.seed else "which you liked")
