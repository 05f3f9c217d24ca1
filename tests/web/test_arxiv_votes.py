"""Votes on a paper of the New on arXiv section: recorded as any other, and the page after the vote
shows the papers most like it among arXiv's (a paper only arXiv has has no Daily Papers day)."""

from __future__ import annotations

import re

from digest_helpers import AT, DAY, add_subscriber
from sqlalchemy import select

from digest.delivery.run import send_due
from digest.mail.digest_email import vote_links
from digest.models import DeliveryItem, Vote
from digest.papers.vectors import represent


def test_a_vote_on_an_arxiv_only_paper_is_recorded_and_shows_similar_arxiv_papers(session, client, mail_settings, smtp_server, make_paper):
    make_paper("2611.00001", "Video diffusion at scale", upvotes=9, session=session)  # the trending day the window is made of
    arxiv_only = dict(day=None, announced_on=DAY, primary_category="cs.CL", session=session)
    parser = make_paper("2611.30001", "Diffusion parsers", abstract="Parsing sentences with diffusion.", categories=["cs.CL"], **arxiv_only)
    for n, title in enumerate(["Parsing with transformers", "Dependency parsing", "Semantic parsing", "Translation"], start=2):
        make_paper(f"2611.3000{n}", title, abstract=f"{title} of sentences.", categories=["cs.LG"], **arxiv_only)
    represent(session)
    alice = add_subscriber(session, "alice@example.org", ["cat:cs.CL"])
    session.commit()
    assert send_due(mail_settings, AT, retry_delays=()).sent == 1
    shown = set(session.scalars(select(DeliveryItem.paper_id).where(DeliveryItem.subscriber_id == alice.id)))
    assert parser.id in shown  # in alice's New on arXiv section

    path = vote_links(mail_settings, alice.public_id).removeprefix("https://digest.example.org") + f"/{parser.id}/more"
    response = client.post(path)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Thanks: noted" in page and "Papers most like this one" in page
    similar = re.findall(r'<li><a href="https://huggingface\.co/papers/([^"]+)"', page)
    assert len(similar) == 3 and "2611.30001" not in similar and set(similar) <= {"2611.30002", "2611.30003", "2611.30004", "2611.30005"}
    assert session.scalars(select(Vote.paper_id).where(Vote.subscriber_id == alice.id)).all() == [parser.id]
