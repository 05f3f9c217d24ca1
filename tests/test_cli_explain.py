"""``digest explain EMAIL``: the candidates of a reader's next digest, ranked, with the parts of
each score and the filter that matched; reads only (no secret key needed)."""

from __future__ import annotations

from datetime import timedelta

from click.testing import CliRunner
from digest_helpers import AT, DAY, add_subscriber
from sqlalchemy import func, select
from support import subprocess_env

from digest.cli import main
from digest.matching.profiles import record_vote
from digest.models import Delivery, Subscriber, Vote
from digest.papers.vectors import represent

BEFORE = DAY - timedelta(days=1)


def explain(settings, *args: str):
    env = subprocess_env(settings)
    del env["DIGEST_SECRET_KEY"]  # read-only: no secret needed
    return CliRunner().invoke(main, ["explain", *args], env=env, catch_exceptions=False)


def rows(out: str) -> list[list[str]]:
    return [line.split() for line in out.splitlines() if line[:4].strip().isdigit()]


def test_explain_ranks_the_candidates_with_the_parts_of_their_scores_and_the_filter(session, settings, make_paper):
    liked = make_paper(
        "2611.00001", "Low-bit weight quantization of LLMs", abstract="Quantize LLM weights to 4 bits.", day=BEFORE, session=session
    )
    liked_too = make_paper(
        "2611.00005", "FP8 training", abstract="8-bit floating point training of LLMs with scaled weights.", day=BEFORE, session=session
    )
    disliked = make_paper(
        "2611.00006", "Text-to-video generation", abstract="A diffusion model turns prompts into videos.", day=BEFORE, session=session
    )
    make_paper("2611.00002", "Video diffusion with temporal attention", abstract="A video diffusion model.", upvotes=10, session=session)
    make_paper(
        "2611.00003",
        "Post-training quantization for video models",
        abstract="INT4 quantization of LLM and video weights.",
        upvotes=3,
        session=session,
    )
    make_paper(
        "2611.00004",
        "Mixed-precision kernels",
        abstract="INT4 weights times FP16 activations for quantized LLMs.",
        upvotes=2,
        session=session,
    )
    represent(session)
    reader = add_subscriber(session, "reader@example.org", ["video"])
    add_subscriber(session, "plain@example.org", ["video"])
    record_vote(session, reader.id, liked.id, 1, AT - timedelta(hours=3))
    record_vote(session, reader.id, liked_too.id, 1, AT - timedelta(hours=2))
    record_vote(session, reader.id, disliked.id, -1, AT - timedelta(hours=1))
    session.commit()

    result = explain(settings, "plain@example.org", "--at", AT.isoformat())
    assert result.exit_code == 0, result.output
    out = result.output
    assert "plain@example.org: next digest at 2026-11-30T07:00Z (2026-11-30, papers of 2026-11-29): 3 candidates" in out
    assert "no votes or seeds: today's trending order" in out and "filters: video" in out
    ranked = rows(out)
    assert [r[6] for r in ranked] == ["2611.00002", "2611.00003", "2611.00004"]  # trending order
    assert [r[1] for r in ranked] == ["digest", "digest", "-"]
    assert all(r[3] == "0.00" and r[4] == "0.00" and r[2] == r[5] for r in ranked)  # no personal part
    assert "[video]" in out and "[outside filters]" in out

    result = explain(settings, "reader@example.org", "--at", AT.isoformat())
    assert result.exit_code == 0, result.output
    assert "a profile from 3 votes and seeds" in result.output
    ranked = rows(result.output)
    assert ranked[0][6] == "2611.00003"  # the liked topic first, inside the filter
    assert float(ranked[0][3]) > 0 and float(ranked[0][4]) > 0
    first = next(line for line in result.output.splitlines() if "2611.00003" in line)
    assert "[video · like \u201cLow-bit weight quantization of LLMs\u201d, which you liked]" in first or (
        "[video · like \u201cFP8 training\u201d, which you liked]" in first
    )
    for r in ranked:
        assert abs(float(r[2]) + float(r[4]) * float(r[3]) - float(r[5])) < 0.01 + 0.005 * float(
            r[4]
        )  # final = T + weight · P, as printed (2 decimals)

    assert session.scalar(select(func.count()).select_from(Delivery)) == 0  # read only
    assert session.scalar(select(func.count()).select_from(Vote)) == 3


def test_explain_an_unknown_reader_is_a_clear_error(settings):
    result = CliRunner().invoke(main, ["explain", "nobody@example.org"], env=subprocess_env(settings))
    assert result.exit_code == 1
    assert "no subscriber nobody@example.org" in result.output


def test_explain_after_a_send_still_shows_the_votes_the_profile_and_the_papers_marked_sent(session, settings, make_paper):
    liked = make_paper(
        "2611.00001", "Low-bit weight quantization of LLMs", abstract="Quantize LLM weights to 4 bits.", day=BEFORE, session=session
    )
    disliked = make_paper(
        "2611.00006", "Text-to-video generation", abstract="A diffusion model turns prompts into videos.", day=BEFORE, session=session
    )
    make_paper("2611.00002", "Video diffusion with temporal attention", abstract="A video diffusion model.", upvotes=10, session=session)
    make_paper("2611.00003", "Post-training quantization of LLMs", abstract="INT4 quantization of LLM weights.", upvotes=3, session=session)
    represent(session)
    reader = add_subscriber(session, "reader@example.org", [])
    record_vote(session, reader.id, liked.id, 1, AT - timedelta(hours=3))
    record_vote(session, reader.id, disliked.id, -1, AT - timedelta(hours=1))
    session.commit()

    before = explain(settings, "reader@example.org", "--at", AT.isoformat())
    assert "2 candidates, a profile from 2 votes and seeds" in before.output, before.output
    assert [r[1] for r in rows(before.output)] == ["digest", "digest"]

    env = subprocess_env(settings)
    sent = CliRunner().invoke(main, ["send", "--at", AT.isoformat()], env=env, catch_exceptions=False)
    assert sent.exit_code == 0, sent.output
    assert session.scalar(select(func.count()).select_from(Delivery)) == 1

    after = explain(settings, "reader@example.org").output  # the next digest: tomorrow's, no papers yet
    assert "0 candidates, a profile from 2 votes and seeds" in after, after  # the next digest has none yet
    assert "votes and seeds (2, newest first):" in after
    assert "  less  " in after and "2611.00006  Text-to-video generation" in after
    assert "  more  " in after and "2611.00001  Low-bit weight quantization of LLMs" in after
    assert "note: the next digest's papers start the day after 2026-11-29, which is not ingested yet" in after
    ranked = rows(after)
    assert {r[6] for r in ranked} == {"2611.00002", "2611.00003"}  # the last digest's window, in the reader's order
    assert [r[1] for r in ranked] == ["sent", "sent"]
    assert ranked[0][6] == "2611.00003"  # the vote lifts quantization above the more upvoted video paper
    assert float(ranked[0][3]) > 0 > float(ranked[1][3])


def test_explain_window_ranks_the_papers_of_given_days_as_a_digest_would_leaving_out_what_was_sent(session, settings, make_paper):
    video = make_paper(
        "2611.00002", "Video diffusion with temporal attention", abstract="A video diffusion model.", upvotes=10, session=session
    )
    quant = make_paper(
        "2611.00003", "Post-training quantization of LLMs", abstract="INT4 quantization of LLM weights.", upvotes=3, session=session
    )
    older = [
        make_paper(
            "2611.00011",
            "Text-to-video generation",
            abstract="A diffusion model turns prompts into videos.",
            upvotes=8,
            day=BEFORE,
            session=session,
        ),
        make_paper(
            "2611.00012", "Low-bit weight quantization", abstract="Quantize LLM weights to 4 bits.", upvotes=2, day=BEFORE, session=session
        ),
        make_paper(
            "2611.00013",
            "FP8 training of LLMs",
            abstract="8-bit floating point training with scaled weights.",
            upvotes=1,
            day=BEFORE,
            session=session,
        ),
    ]
    represent(session)
    add_subscriber(session, "reader@example.org", [])
    session.commit()
    sent = CliRunner().invoke(main, ["send", "--at", AT.isoformat()], env=subprocess_env(settings), catch_exceptions=False)
    assert sent.exit_code == 0, sent.output
    reader = session.scalar(select(Subscriber).where(Subscriber.email == "reader@example.org"))
    record_vote(session, reader.id, quant.id, 1, AT + timedelta(hours=1))  # "more like this" from the digest
    record_vote(session, reader.id, video.id, -1, AT + timedelta(hours=1))
    session.commit()

    result = explain(settings, "reader@example.org", "--window", f"{BEFORE}..{DAY}")
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"reader@example.org: a digest of the papers of {BEFORE}..{DAY} (--window): 3 candidates, a profile from 2 votes" in out
    ranked = rows(out)
    shown = {r[6]: r for r in ranked if r[1] == "digest"}
    assert list(shown) == ["2611.00012", "2611.00013", older[0].arxiv_id], out  # two votes: their topic above an 8-upvote video
    assert float(shown["2611.00012"][3]) > 0 > float(shown["2611.00011"][3])  # the vote shows in the personal part
    assert "like \u201cPost-training quantization of LLMs\u201d, which you liked" in next(
        line for line in out.splitlines() if "2611.00012" in line
    )
    assert {r[6]: r[1] for r in ranked if r[1] != "digest"} == {"2611.00002": "sent", "2611.00003": "sent"}

    bad = explain(settings, "reader@example.org", "--window", "2026-11-30..2026-11-01")
    assert bad.exit_code == 2 and "the first day comes after the last" in bad.output
