""" "More like this" / "Less like this" from the email: a GET never records, the POST does (once,
replacing an earlier vote), undo removes it; every bad link is a clear page and stores nothing."""

from __future__ import annotations

import html
import re

import pytest
from digest_helpers import AT, add_subscriber, parts
from sqlalchemy import func, select
from web_helpers import serving

from digest import tokens
from digest.delivery.run import send_due
from digest.models import ReaderProfile, Subscriber, SubscriberState, Vote
from digest.papers.vectors import represent

VOTE_LINK = re.compile(r'href="https://digest\.example\.org(/vote/[^"]+)"[^>]*>(More|Less) like this</a>')


@pytest.fixture
def sent(session, mail_settings, smtp_server, make_paper):
    """One digest sent to alice (three papers); returns (alice, {arxiv id: paper}, [(path, More|Less)] per card)."""
    papers = {
        p.arxiv_id: p
        for p in [
            make_paper("2611.00001", "Video diffusion at scale", upvotes=9, abstract="A video diffusion model.", session=session),
            make_paper("2611.00002", "Agents and tools", upvotes=5, abstract="Language agents call tools.", session=session),
            make_paper("2611.00003", "Video agents", upvotes=7, abstract="Agents that watch video.", session=session),
            make_paper("2611.00004", "Unrelated optics", upvotes=3, abstract="Lenses.", session=session),
        ]
    }
    represent(session)
    alice = add_subscriber(session, "alice@example.org", ["video", "agents"])
    session.commit()
    assert send_due(mail_settings, AT, retry_delays=()).sent == 1
    (message,) = smtp_server.messages
    text, body = parts(message)
    links = VOTE_LINK.findall(body)
    assert [kind for _, kind in links] == ["More", "Less"] * 3  # every card has both
    assert text.count("More like this: https://digest.example.org/vote/") == 3
    return alice, papers, links


def votes(session) -> list[tuple[int, int, int]]:
    session.expire_all()
    return list(session.execute(select(Vote.subscriber_id, Vote.paper_id, Vote.vote)))


def test_a_get_of_every_vote_link_records_nothing(session, client, sent):
    _, _, links = sent
    for path, kind in links:
        response = client.get(path)
        assert response.status_code == 200
        page = response.get_data(as_text=True)
        assert f"{kind} like this" in page and '<form method="post"' in page
    assert votes(session) == []
    assert session.scalar(select(func.count()).select_from(ReaderProfile)) == 0


def test_the_post_records_the_vote_once_a_second_vote_replaces_it_and_undo_removes_it(session, client, sent):
    alice, papers, links = sent
    (more_top, _), (less_top, _) = links[0], links[1]
    top = papers["2611.00001"]

    page = client.post(more_top).get_data(as_text=True)
    assert "Thanks: noted" in page and "Undo" in page and "Papers most like this one" in page
    similar = re.findall(r'<li><a href="https://huggingface\.co/papers/([^"]+)"', page)
    assert len(similar) == 3 and top.arxiv_id not in similar
    assert votes(session) == [(alice.id, top.id, 1)]
    client.post(more_top)  # idempotent
    assert votes(session) == [(alice.id, top.id, 1)]
    assert "pressing again changes nothing" in client.get(more_top).get_data(as_text=True)

    client.post(less_top)  # replaces
    assert votes(session) == [(alice.id, top.id, -1)]

    page = client.post(less_top, data={"action": "undo"}).get_data(as_text=True)
    assert "Vote removed" in page
    assert votes(session) == []
    assert session.scalar(select(func.count()).select_from(ReaderProfile)) == 0


def test_a_tampered_or_other_purpose_token_is_a_clear_page_and_stores_nothing(session, client, sent, mail_settings):
    alice, papers, links = sent
    path = links[0][0]
    token, paper_id, way = path.removeprefix("/vote/").split("/")
    tampered = f"/vote/{token[:-3]}{'AAA' if not token.endswith('AAA') else 'BBB'}/{paper_id}/{way}"
    other = f"/vote/{tokens.make_token(mail_settings, 'preferences', alice.public_id)}/{paper_id}/more"
    malformed = f"/vote/{token}/{paper_id}/sideways"
    for bad in (tampered, other, malformed):
        for method in (client.get, client.post):
            response = method(bad)
            assert response.status_code == 400
            assert "This link doesn't work" in html.unescape(response.get_data(as_text=True))
    assert votes(session) == []


def test_a_vote_for_a_paper_not_in_the_readers_digests_stores_nothing(session, client, sent, mail_settings):
    alice, papers, _ = sent
    bob = add_subscriber(session, "bob@example.org")  # got no digest at all
    session.commit()
    for subscriber, paper in ((alice, papers["2611.00004"]), (bob, papers["2611.00001"])):
        path = f"/vote/{tokens.make_token(mail_settings, 'vote', subscriber.public_id)}/{paper.id}/more"
        response = client.post(path)
        assert response.status_code == 404
        assert "This paper was not in your digest" in response.get_data(as_text=True)
    assert votes(session) == []


def test_a_vote_by_an_unsubscribed_reader_stores_nothing(session, client, sent):
    alice, _, links = sent
    session.get(Subscriber, alice.id).state = SubscriberState.unsubscribed
    session.commit()
    response = client.post(links[0][0])
    assert response.status_code == 410
    assert "You are not subscribed" in response.get_data(as_text=True)
    assert votes(session) == []


@pytest.mark.browser
def test_a_reader_votes_from_the_page_in_a_browser_and_undoes_it(session, mail_settings, sent, chromium, screenshot):
    alice, papers, links = sent
    with serving(mail_settings) as site:
        page = chromium.new_context(viewport={"width": 1280, "height": 900}).new_page()
        page.goto(f"{site}{links[0][0]}")
        assert page.locator("h1").inner_text() == "More like this?"
        assert votes(session) == []  # the browser's GET recorded nothing
        screenshot(page, "vote-ask")
        page.get_by_role("button", name="More like this").click()
        page.wait_for_selector("text=Thanks: noted")
        assert page.locator("ul.similar li").count() == 3
        screenshot(page, "vote-done")
        assert votes(session) == [(alice.id, papers["2611.00001"].id, 1)]
        page.get_by_role("button", name="Undo").click()
        page.wait_for_selector("text=Vote removed")
        assert votes(session) == []


D2QUANT = "D$^2$Quant: Accurate Low-bit Post-Training Weight Quantization for LLMs"  # as in the sample papers
PI0 = r"$\pi_0$: A Vision-Language-Action Flow Model for General Robot Control"


def test_the_vote_page_shows_latex_in_titles_as_text_as_the_email_does(session, client, mail_settings, smtp_server, make_paper):
    """The paper voted on and the papers most like it read D²Quant and π₀, never D$^2$Quant."""
    make_paper("2611.00011", D2QUANT, upvotes=9, abstract="Low-bit weight quantization for LLMs.", session=session)
    make_paper("2611.00012", PI0, upvotes=5, abstract="A flow matching policy on a vision-language model.", session=session)
    make_paper("2611.00013", "Quantization of vision-language models", upvotes=3, session=session)
    represent(session)
    add_subscriber(session, "alice@example.org", ["quantization"])
    session.commit()
    assert send_due(mail_settings, AT, retry_delays=()).sent == 1
    (path, _), *_ = VOTE_LINK.findall(parts(smtp_server.messages[0])[1])  # the first card's "More like this"

    asked = html.unescape(client.get(path).get_data(as_text=True))
    assert "papers like <strong>D²Quant: Accurate Low-bit" in asked
    voted = html.unescape(client.post(path).get_data(as_text=True))
    assert "papers like <strong>D²Quant: Accurate Low-bit" in voted
    similar = re.findall(r'<li><a href="https://huggingface\.co/papers/[^"]+">([^<]+)</a>', voted)
    assert "π₀: A Vision-Language-Action Flow Model for General Robot Control" in similar
    undone = html.unescape(client.post(path, data={"action": "undo"}).get_data(as_text=True))
    assert "voted on <strong>D²Quant: Accurate Low-bit" in undone
    assert not [page for page in (asked, voted, undone) if "$" in page]


def test_papers_most_like_the_voted_one_leave_out_the_papers_the_reader_already_voted_on(session, client, sent):
    alice, papers, links = sent
    (more_top, _), (more_second, _) = links[0], links[2]
    first = client.post(more_second).get_data(as_text=True)  # a vote on the second card's paper
    voted_first = set(re.findall(r'<li><a href="https://huggingface\.co/papers/([^"]+)"', first))
    page = client.post(more_top).get_data(as_text=True)
    similar = re.findall(r'<li><a href="https://huggingface\.co/papers/([^"]+)"', page)
    known = {a for a, p in papers.items() if p.id in {paper_id for _, paper_id, _ in votes(session)}}
    assert len(known) == 2 and not known & set(similar)  # neither the paper itself nor the one voted on before
    assert similar and voted_first  # both pages list neighbours
