"""A digest ordered by the reader's taste: votes reorder what the filters matched, say why, and a
confident profile adds a "You may also like" block; a reader without votes gets today's digest.

Papers get their vectors as ingest gives them (the real wordllama model from its wheel).
"""

from __future__ import annotations

import re
from datetime import timedelta

from digest_helpers import AT, DAY, add_subscriber, expected_picks, matched_lines, parts, shown_papers
from sqlalchemy import select

from digest.delivery.run import send_due
from digest.matching.profiles import record_vote
from digest.matching.topics import parse_topics
from digest.models import Delivery, DeliveryItem, Paper
from digest.papers.vectors import represent
from digest.subscribers.subscriptions import update_preferences
from digest.web import create_app

QUANTIZATION = [
    ("Low-bit weight quantization of LLMs", "We quantize the weights of large language models to 4 bits with per-channel scales."),
    ("FP8 training with scaled activations", "Training in 8-bit floating point needs scaling factors for activations and gradients."),
    ("Post-training quantization with rotations", "Random Hadamard rotations spread outliers before rounding to INT4 weights."),
    ("Mixed-precision kernels for quantized inference", "GPU kernels multiply INT4 weights by FP16 activations for quantized LLMs."),
    ("Quantization-aware fine-tuning at 2 bits", "Simulated 2-bit quantization recovers the accuracy lost by low-bit compression."),
]
DIFFUSION = [
    ("Video diffusion with temporal attention", "A latent video diffusion model adds temporal attention layers to an image denoiser."),
    ("Text-to-video generation at high resolution", "A cascaded diffusion model turns text prompts into high-resolution videos."),
    ("Consistent characters in generated videos", "A video generator keeps a character's identity by conditioning the diffusion denoiser."),
    (
        "Fast sampling for video diffusion models",
        "Distilling a video diffusion denoiser into four sampling steps makes generation real time.",
    ),
    (
        "Editing videos with diffusion priors",
        "Given a source video and an instruction, a diffusion prior edits objects and keeps the motion.",
    ),
]
BEFORE = DAY - timedelta(days=1)


def add(session, make_paper, topic, prefix, upvotes, day=DAY):
    return [
        make_paper(f"{prefix}.{i:05d}", title, session=session, abstract=abstract, upvotes=u, day=day)
        for i, ((title, abstract), u) in enumerate(zip(topic, upvotes), start=1)
    ]


def sent_items(session, subscriber_id) -> list[str]:
    return list(
        session.scalars(
            select(Paper.arxiv_id)
            .select_from(DeliveryItem)
            .join(Paper, Paper.id == DeliveryItem.paper_id)
            .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
            .where(DeliveryItem.subscriber_id == subscriber_id)
            .order_by(DeliveryItem.position)
        )
    )


def test_votes_put_the_liked_topic_first_and_say_why_and_a_reader_without_votes_gets_todays_digest(
    session, mail_settings, smtp_server, make_paper
):
    q1, q2 = add(session, make_paper, QUANTIZATION[:2], "2611", (5, 4), BEFORE)
    (d1,) = add(session, make_paper, DIFFUSION[:1], "2612", (5,), BEFORE)
    add(session, make_paper, QUANTIZATION[2:], "2613", (3, 2, 1))
    add(session, make_paper, DIFFUSION[2:], "2614", (40, 30, 20))  # the disliked topic is upvoted more
    represent(session)
    reader = add_subscriber(session, "reader@example.org")  # no filters
    plain = add_subscriber(session, "plain@example.org")  # no filters, no votes
    record_vote(session, reader.id, q1.id, 1, AT - timedelta(hours=3))
    record_vote(session, reader.id, q2.id, 1, AT - timedelta(hours=2))
    record_vote(session, reader.id, d1.id, -1, AT - timedelta(hours=1))
    session.commit()
    today = [a for a, _ in expected_picks(session, plain, DAY, DAY)]
    assert [a[:4] for a in today] == ["2614"] * 3 + ["2613"] * 3  # trending: diffusion first

    report = send_due(mail_settings, AT, retry_delays=())
    assert report.sent == 2

    (mine,) = smtp_server.to("reader@example.org")
    shown = shown_papers(mine)
    assert [a[:4] for a in shown] == ["2613"] * 3 + ["2614"] * 3  # nothing left out, liked topic first
    lines = matched_lines(mine)
    liked = {f"like \u201c{q.title}\u201d, which you liked" for q in (q1, q2)}  # named by title, not by id
    assert lines[0] in {f"all trending papers · {why}" for why in liked}
    assert all(line == "all trending papers" for line in lines[3:])  # nothing "like" a disliked paper
    text, html = parts(mine)
    assert "You may also like" not in text and "You may also like" not in html  # 3 votes: not confident
    assert sent_items(session, reader.id) == shown

    (theirs,) = smtp_server.to("plain@example.org")
    assert shown_papers(theirs) == today
    assert matched_lines(theirs) == ["all trending papers"] * 6


def test_a_confident_profile_adds_you_may_also_like_outside_the_filters_and_never_sends_it_twice(
    session, mail_settings, smtp_server, make_paper
):
    liked = add(session, make_paper, QUANTIZATION[:4], "2611", (5, 4, 3, 2), BEFORE)
    (disliked,) = add(session, make_paper, DIFFUSION[:1], "2612", (5,), BEFORE)
    (outside,) = add(session, make_paper, QUANTIZATION[4:], "2613", (1,))  # no "video" in it
    add(session, make_paper, DIFFUSION[1:], "2614", (40, 30, 20, 10))
    represent(session)
    reader = add_subscriber(session, "reader@example.org", ["video"])
    for hours, paper in enumerate(liked, start=2):
        record_vote(session, reader.id, paper.id, 1, AT - timedelta(hours=hours))
    record_vote(session, reader.id, disliked.id, -1, AT - timedelta(hours=1))  # 5 signals: confident
    session.commit()

    send_due(mail_settings, AT, retry_delays=())
    (msg,) = smtp_server.to("reader@example.org")
    text, html = parts(msg)
    assert "You may also like" in text and "You may also like" in html
    assert msg["Subject"].startswith("4 trending papers")  # the block does not count as the digest's papers
    shown = shown_papers(msg)
    assert shown[-1] == outside.arxiv_id and [a[:4] for a in shown[:4]] == ["2614"] * 4
    assert "outside your filters · like \u201c" in text
    assert sent_items(session, reader.id)[-1] == outside.arxiv_id  # counts as sent: never twice

    archive = re.search(r'href="https://digest\.example\.org(/digest/[^"]+)"', html).group(1)
    page = create_app(mail_settings).test_client().get(archive).get_data(as_text=True)
    assert "You may also like" in page and "4 trending papers for you" in page  # the archive shows it the same way


def test_like_lines_send_the_papers_close_to_the_named_ones_and_order_the_digest_as_seeds_do(
    session, mail_settings, smtp_server, make_paper
):
    q0, q1 = add(session, make_paper, QUANTIZATION[:2], "2611", (5, 4), BEFORE)
    rotations, kernels, two_bit = add(session, make_paper, QUANTIZATION[2:], "2613", (3, 2, 1))
    add(session, make_paper, DIFFUSION[2:], "2614", (40, 30, 20))  # "video": upvoted more
    represent(session)
    filters = parse_topics(f"video\nlike:{q0.arxiv_id}\nlike:https://huggingface.co/papers/{q1.arxiv_id}")
    reader = add_subscriber(session, "reader@example.org", due=None)
    update_preferences(session, reader, filters, "daily", "UTC", 7, AT - timedelta(hours=1), seeds=[])  # as the form saves them
    add_subscriber(session, "plain@example.org", ["video"])
    session.commit()
    assert reader.next_due_at == AT

    send_due(mail_settings, AT, retry_delays=())
    (mine,) = smtp_server.to("reader@example.org")
    shown, lines = shown_papers(mine), matched_lines(mine)
    # a like: line matches the papers within LIKE_SIMILARITY of the named one and always its
    # LIKE_NEIGHBOURS nearest: here the whole day (six papers), never only the named paper
    assert set(shown) == {rotations.arxiv_id, kernels.arxiv_id, two_bit.arxiv_id} | {a for a in shown if a.startswith("2614")}
    assert len(shown) == 6
    assert [a[:4] for a in shown[:2]] == ["2613", "2613"]  # the named papers' topic first, as two seeds put it
    assert lines[0].startswith(f"like:{q0.arxiv_id} · like \u201c{q0.title}\u201d, one of your seed papers")
    (theirs,) = smtp_server.to("plain@example.org")
    assert [a[:4] for a in shown_papers(theirs)] == ["2614"] * 3


def test_papers_the_reader_named_or_voted_on_never_come_back_but_still_order_the_digest(session, mail_settings, smtp_server, make_paper):
    seed, fp8, rotations, kernels = add(session, make_paper, QUANTIZATION[:4], "2613", (3, 2, 1, 1))  # today's papers
    voted, *videos = add(session, make_paper, DIFFUSION[:4], "2614", (40, 5, 4, 3))
    represent(session)
    reader = add_subscriber(session, "reader@example.org", due=None)
    filters = parse_topics(f"like:{rotations.arxiv_id}\nfp8 OR quantiz* OR video")  # a like: line names a paper too
    update_preferences(session, reader, filters, "daily", "UTC", 7, AT - timedelta(hours=2), seeds=[seed.arxiv_id])
    record_vote(session, reader.id, voted.id, -1, AT - timedelta(hours=1))
    session.commit()

    send_due(mail_settings, AT, retry_delays=())
    (mine,) = smtp_server.to("reader@example.org")
    shown = shown_papers(mine)
    assert seed.arxiv_id not in shown and rotations.arxiv_id not in shown and voted.arxiv_id not in shown
    assert sorted(shown[:2]) == sorted([fp8.arxiv_id, kernels.arxiv_id])  # the seeds' topic first, above more upvoted videos
    assert sorted(shown[2:]) == sorted(v.arxiv_id for v in videos)
    why = matched_lines(mine)[shown.index(kernels.arxiv_id)]
    assert why.endswith(
        (f"like \u201c{seed.title}\u201d, one of your seed papers", f"like \u201c{rotations.title}\u201d, one of your seed papers")
    )
    assert set(sent_items(session, reader.id)) == set(shown)


def test_a_reader_whose_lines_only_name_papers_gets_the_nearest_first_each_saying_which_it_is_close_to(
    session, mail_settings, smtp_server, make_paper
):
    (q0,) = add(session, make_paper, QUANTIZATION[:1], "2611", (5,), BEFORE)
    rotations, kernels, two_bit = add(session, make_paper, QUANTIZATION[2:], "2613", (3, 2, 1))
    add(session, make_paper, DIFFUSION[2:], "2614", (40, 30, 20))  # upvoted far more
    represent(session)
    reader = add_subscriber(session, "reader@example.org", due=None)
    update_preferences(session, reader, parse_topics(f"like:{q0.arxiv_id}"), "daily", "UTC", 7, AT - timedelta(hours=1), seeds=[])
    session.commit()

    send_due(mail_settings, AT, retry_delays=())
    (mine,) = smtp_server.to("reader@example.org")
    shown, lines = shown_papers(mine), matched_lines(mine)
    assert len(shown) == 6  # not only the named paper: its nearest, however far
    assert shown[:2] == [two_bit.arxiv_id, kernels.arxiv_id]  # nearest first (cosines 0.53, 0.44), above 40-upvote videos
    assert set(shown[:3]) == {rotations.arxiv_id, kernels.arxiv_id, two_bit.arxiv_id}
    assert lines[0] == f"like:{q0.arxiv_id} · close to \u201c{q0.title}\u201d"


def test_the_windows_most_upvoted_paper_stays_in_a_digest_the_readers_order_would_push_it_out_of(
    session, mail_settings, smtp_server, make_paper
):
    liked = add(session, make_paper, QUANTIZATION[:2], "2611", (5, 4), BEFORE)
    (disliked,) = add(session, make_paper, DIFFUSION[:1], "2612", (5,), BEFORE)
    add(session, make_paper, QUANTIZATION[2:], "2613", (3, 2, 1))
    top, *_ = add(session, make_paper, DIFFUSION[2:], "2614", (40, 1, 1))
    represent(session)
    reader = add_subscriber(session, "reader@example.org")
    for hours, paper in enumerate(liked, start=2):
        record_vote(session, reader.id, paper.id, 1, AT - timedelta(hours=hours))
    record_vote(session, reader.id, disliked.id, -1, AT - timedelta(hours=1))
    session.commit()

    send_due(mail_settings.with_(digest_size=3), AT, retry_delays=())
    (mine,) = smtp_server.to("reader@example.org")
    shown = shown_papers(mine)
    assert [a[:4] for a in shown[:2]] == ["2613", "2613"] and shown[2] == top.arxiv_id  # pinned last, not dropped
    text, _ = parts(mine)
    assert "#1 today" in text_card_of(text, 3)


def text_card_of(text: str, number: int) -> str:
    return re.split(r"\n\n(?=(?:\S.*\n)? ?\d+\. )", text)[number]
