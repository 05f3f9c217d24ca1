"""Seed papers on the sign-up and preferences forms, and ``like:`` filters: named papers become the
reader's seeds when they confirm or save; an id we do not have, or text that names no paper, is an
error shown on the form, and nothing is stored."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select
from web_helpers import form_post, mailed_link, subscribe, subscriber, text

from digest import tokens
from digest.models import Paper, ReaderProfile, SignupRequest, Subscriber, SubscriberState, Vote, VoteSource
from digest.papers.vectors import represent

LIKED = ("2611.00001", "Low-bit weight quantization of LLMs", "We quantize the weights of large language models to 4 bits.")
LIKED_TOO = ("2611.00002", "FP8 training with scaled activations", "Training in 8-bit floating point needs scaling factors.")
OTHER = ("2611.00003", "Video diffusion with temporal attention", "A latent video diffusion model adds temporal attention.")


@pytest.fixture
def papers(session, make_paper):
    made = {
        arxiv_id: make_paper(arxiv_id, title, abstract=abstract, session=session) for arxiv_id, title, abstract in (LIKED, LIKED_TOO, OTHER)
    }
    represent(session)
    session.commit()
    return made


def seeds_of(session, email: str) -> dict[str, str]:
    """arXiv id -> vote source of the reader's votes and seeds."""
    row = subscriber(session, email)
    session.expire_all()
    return {
        arxiv_id: source.value
        for arxiv_id, source in session.execute(
            select(Paper.arxiv_id, Vote.source).join(Paper, Paper.id == Vote.paper_id).where(Vote.subscriber_id == row.id)
        )
    }


def textarea(response, name: str) -> str:
    found = re.search(rf'<textarea[^>]*name="{name}"[^>]*>([^<]*)</textarea>', text(response))
    return html.unescape(found.group(1)).replace("\r\n", "\n").strip()


def prefs(topics: str, seeds: str, action: str = "save") -> dict:
    return {"topics": topics, "seeds": seeds, "frequency": "daily", "timezone": "UTC", "delivery_hour": "7", "action": action}


def test_seed_papers_given_as_ids_or_links_count_once_the_reader_confirms(client, session, smtp_server, papers):
    seeds = "https://arxiv.org/abs/2611.00001v2\r\nhttps://huggingface.co/papers/2611.00002, arXiv:2611.00001"
    response = subscribe(client, "ann@example.org", "video", seeds=seeds)
    assert response.status_code == 303
    row = subscriber(session, "ann@example.org")
    assert session.get(SignupRequest, row.id).seeds == "2611.00001\n2611.00002"
    assert session.scalar(select(func.count()).select_from(Vote)) == 0  # nothing counts before the confirmation

    path = mailed_link(smtp_server.to("ann@example.org")[0], "confirm")
    page = text(client.get(path))
    assert "Papers you like" in page and "<code>2611.00001</code>" in page and "<code>2611.00002</code>" in page
    client.post(path)
    assert seeds_of(session, "ann@example.org") == {"2611.00001": "seed", "2611.00002": "seed"}
    profile = session.get(ReaderProfile, row.id)
    assert profile is not None and len(profile.profile) <= 2048


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("seeds", "2611.09999", "2611.09999: no paper with this id has been on Hugging Face Daily Papers yet."),
        ("seeds", "https://example.org/paper/1", "'https://example.org/paper/1' is not an arXiv id or a paper link"),
        ("topics", "video\nlike:2611.09999", "“like:2611.09999”: no paper 2611.09999 has been on Hugging Face Daily Papers yet."),
        ("topics", "like:twenty-five", "Line 1: 'like:twenty-five': like: takes one paper's arXiv id or link"),
    ],
)
def test_a_paper_we_do_not_have_or_text_that_names_none_is_shown_on_the_form_and_nothing_is_stored(
    client, session, smtp_server, papers, field, value, message
):
    values = {"topics": "video", "seeds": "2611.00001", field: value}
    response = subscribe(client, "ann@example.org", values["topics"], seeds=values["seeds"])
    page = html.unescape(text(response))
    assert response.status_code == 400
    assert message in page
    assert f">{value.splitlines()[-1]}" in page or value in page  # what they typed is kept
    assert session.scalar(select(func.count()).select_from(Subscriber)) == 0
    assert smtp_server.to("ann@example.org") == []


def test_preferences_show_the_seeds_and_saving_replaces_them_with_like_lines_counting_as_seeds(
    client, session, smtp_server, mail_settings, papers
):
    subscribe(client, "ann@example.org", "video", seeds="2611.00002")
    client.post(mailed_link(smtp_server.to("ann@example.org")[0], "confirm"))
    row = subscriber(session, "ann@example.org")
    assert row.state == SubscriberState.active
    session.add(Vote(subscriber_id=row.id, paper_id=papers["2611.00003"].id, vote=-1, source=VoteSource.vote))
    session.commit()
    path = f"/preferences/{tokens.make_token(mail_settings, 'preferences', row.public_id)}"
    assert textarea(client.get(path), "seeds") == "2611.00002"

    response = form_post(client, path, prefs("video\nlike:https://arxiv.org/abs/2611.00001", ""))
    assert response.status_code == 303
    assert seeds_of(session, "ann@example.org") == {"2611.00001": "seed", "2611.00003": "vote"}  # a vote stays
    page = client.get(path)
    assert textarea(page, "topics") == "video\nlike:https://arxiv.org/abs/2611.00001" and textarea(page, "seeds") == ""  # not shown twice

    response = form_post(client, path, prefs("video", "2611.00002 2611.00001"))
    assert response.status_code == 303
    assert seeds_of(session, "ann@example.org") == {"2611.00001": "seed", "2611.00002": "seed", "2611.00003": "vote"}

    response = form_post(client, path, prefs("video", "2611.09999"))
    assert response.status_code == 400 and "2611.09999: no paper with this id" in text(response)
    assert seeds_of(session, "ann@example.org") == {"2611.00001": "seed", "2611.00002": "seed", "2611.00003": "vote"}

    form_post(client, path, prefs("video", ""))
    assert seeds_of(session, "ann@example.org") == {"2611.00003": "vote"}
    assert session.get(ReaderProfile, row.id) is not None  # the "less like this" vote still makes one
