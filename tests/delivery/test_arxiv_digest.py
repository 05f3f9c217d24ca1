"""Issue 22 as its check describes it: a local server speaking arXiv's RSS and API serves two
categories' announcements (cross-lists, a replacement of a paper already sent, a paper also on the
Hugging Face side, a malformed item, a 503 with Retry-After); the real ingest stores them, the real
send path mails them through a real SMTP server. Readers with ``cat:`` lines get the right papers
once, in the right section; readers without them get exactly what they got before; the paper on
both sides is one paper, sent once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from digest_helpers import AT, DAY, add_subscriber, parts, with_smtp
from sqlalchemy import func, select

from digest.delivery.compose import compose, load_filters
from digest.delivery.run import send_due
from digest.matching.select import Recipient
from digest.models import Delivery, DeliveryItem, DeliveryStatus, Paper
from digest.papers.ingest import ingest_arxiv, store
from digest.papers.items import PaperRecord
from digest.papers.sources.arxiv import ArxivClient
from digest.papers.sources.local_arxiv import ArxivPaper, ArxivServer

D = timedelta(days=1)
NO_RETRY = dict(retry_delays=())
MALFORMED_ITEM = "<item><title>No id at all</title><description>Abstract: nothing</description><category>cs.CL</category></item>"


@pytest.fixture
def pipelining() -> bool:
    return False


@pytest.fixture
def world(session, make_paper):
    """Trending papers of DAY, a paper sent two days before, and four readers."""
    make_paper("2611.20001", "Diffusion language models", upvotes=80, abstract="Diffusion for text.", session=session)
    make_paper("2611.20002", "Agents at scale", upvotes=50, abstract="Many agents.", session=session)
    make_paper("2611.20003", "Video diffusion", upvotes=30, abstract="Diffusion for video.", session=session)
    old = make_paper("2611.10009", "A parser, first version", day=DAY - 2 * D, upvotes=5, abstract="Parsing.", session=session)
    people = {
        "ann": add_subscriber(session, "ann@example.org", ["diffusion"]),  # no category: trending only, as before
        "ben": add_subscriber(session, "ben@example.org", ["cat:cs.CL"]),
        "cal": add_subscriber(session, "cal@example.org", ["agents", "cat:cs.CV diffusion"]),
        "dan": add_subscriber(session, "dan@example.org"),  # no filters: every trending paper
    }
    session.commit()
    return people, old


def announcement() -> list[ArxivPaper]:
    return [
        ArxivPaper("2611.20001", "Diffusion language models", ("cs.CL", "cs.LG"), abstract="Diffusion for text."),  # also trending
        ArxivPaper("2611.30001", "Parsing with diffusion", ("cs.CL",), abstract="Diffusion parsers."),
        ArxivPaper("2611.30002", "Cross-listed into cs.CL", ("cs.LG", "cs.CL"), abstract="Optimisers."),
        ArxivPaper("2611.30003", "Diffusion for images", ("cs.CV", "cs.LG"), abstract="Image diffusion."),
        ArxivPaper("2611.30004", "Images without it", ("cs.CV",), abstract="Image segmentation."),
        ArxivPaper("2611.10009", "A parser, second version", ("cs.CL",), version=2, announce="replace", abstract="Parsing, again."),
    ]


def picks_of(session, people) -> dict[str, list[tuple[str, str]]]:
    """What compose gives each reader for DAY (read only)."""
    texts = load_filters(session, [p.id for p in people.values()])
    recipients = [(name, Recipient(person.id, texts[person.id], DAY, DAY)) for name, person in people.items()]
    return {k: [(p.paper.arxiv_id, p.section) for p in v] for k, v in compose(session, recipients, 10).items()}


def test_arxiv_readers_get_their_categories_once_in_their_section_and_everyone_else_what_they_got_before(
    session, settings, world, smtp_server
):
    people, old = world
    delivery = Delivery(
        subscriber_id=people["ben"].id,
        period=str(DAY - 2 * D),
        window_start=DAY - 2 * D,
        window_end=DAY - 2 * D,
        scheduled_for=AT - 2 * D,
        status=DeliveryStatus.sent,
    )
    session.add(delivery)
    session.flush()
    session.add(DeliveryItem(delivery_id=delivery.id, subscriber_id=people["ben"].id, paper_id=old.id, position=0))
    session.commit()
    before = picks_of(session, people)

    server = ArxivServer(day=DAY, papers=announcement(), extra_items=[MALFORMED_ITEM]).start()
    try:
        server.unavailable("rss", times=1, retry_after=1)
        configured = settings.with_(arxiv_categories=("cs.CL", "cs.CV"), arxiv_rss_url=server.rss_url, arxiv_api_url=server.api_url)
        report = ingest_arxiv(configured, client=ArxivClient("digest@example.org", min_interval=0.0, deadline=10.0))
    finally:
        server.stop()
    first, second = server.requests[0], server.requests[1]
    assert second.at - first.at >= 1.0  # the 503's Retry-After was honoured
    assert report.new == 4 and report.updated == 2 and sum(report.skipped.values()) == 1  # the malformed item skipped, counted
    assert session.scalar(select(func.count()).select_from(Paper).where(Paper.arxiv_id == "2611.20001")) == 1  # one paper, both sides

    after = picks_of(session, people)
    assert after["ann"] == before["ann"] and after["dan"] == before["dan"]  # no category, no change
    assert after["ben"] == [("2611.20001", "trending"), ("2611.30001", "arxiv"), ("2611.30002", "arxiv")]
    assert after["cal"] == [("2611.20002", "trending"), ("2611.30003", "arxiv")]

    report = send_due(with_smtp(configured, smtp_server), AT, **NO_RETRY)
    assert report.sent == 4
    assert "New on arXiv in cs.CL" in parts(smtp_server.to("ben@example.org")[0])[0]
    assert "New on arXiv in cs.CV" in parts(smtp_server.to("cal@example.org")[0])[0]
    for name, person in people.items():
        (message,) = smtp_server.to(person.email)
        text, html = parts(message)
        items = (
            session.execute(
                select(Paper.arxiv_id)
                .join(DeliveryItem, DeliveryItem.paper_id == Paper.id)
                .join(Delivery)
                .where(Delivery.subscriber_id == person.id, Delivery.status == DeliveryStatus.sent, Delivery.window_end == DAY)
            )
            .scalars()
            .all()
        )
        assert sorted(items) == sorted(i for i, _ in after[name])
        for arxiv_id, _ in after[name]:
            paper = session.scalars(select(Paper).where(Paper.arxiv_id == arxiv_id)).one()
            assert text.count(paper.title) == 1, (name, paper.title)  # once in the email
        sections = {section for _, section in after[name]}
        assert ("New on arXiv in" in text) == ("arxiv" in sections) == ("New on arXiv in" in html), name
        if "arxiv" in sections:
            assert ("Trending on Hugging Face" in text) == ("trending" in sections)
        assert "Parsing" not in text or name == "ben"  # the replacement is never new: nobody gets it
        assert "second version" not in text


def test_an_arxiv_paper_that_trends_days_later_reaches_only_the_readers_who_did_not_get_it(session, settings, world, smtp_server):
    people, _ = world
    server = ArxivServer(day=DAY, papers=announcement()).start()
    try:
        configured = settings.with_(arxiv_categories=("cs.CL", "cs.CV"), arxiv_rss_url=server.rss_url, arxiv_api_url=server.api_url)
        ingest_arxiv(configured, client=ArxivClient("digest@example.org", min_interval=0.0, deadline=10.0))
    finally:
        server.stop()
    assert send_due(with_smtp(configured, smtp_server), AT, **NO_RETRY).sent == 4
    # two days later, "Parsing with diffusion" trends on Hugging Face: the same record gets its Daily Papers day
    store(session, [PaperRecord(arxiv_id="2611.30001", title="Parsing with diffusion", daily_date=DAY + D, upvotes=40)], AT)
    session.commit()
    texts = load_filters(session, [p.id for p in people.values()])
    later = compose(session, [(n, Recipient(p.id, texts[p.id], DAY + D, DAY + D)) for n, p in people.items()], 10)
    assert [(p.paper.arxiv_id, p.section) for p in later["ann"]] == [("2611.30001", "trending")]  # new to ann
    assert later["ben"] == []  # ben had it in his arXiv section: never twice
    assert [p.paper.arxiv_id for p in later["dan"]] == ["2611.30001"]
    assert session.scalar(select(func.count()).select_from(Paper).where(Paper.arxiv_id == "2611.30001")) == 1


def test_a_withdrawn_paper_is_never_shown(session, settings, world):
    people, _ = world
    papers = [
        *announcement(),
        ArxivPaper(
            "2611.30009", "Withdrawn", ("cs.CL",), version=2, announce="replace", abstract="This paper has been withdrawn by the authors."
        ),
    ]
    papers[1] = ArxivPaper(
        "2611.30001",
        "Parsing with diffusion",
        ("cs.CL",),
        version=2,
        announce="new",
        abstract="This paper has been withdrawn by the author due to an error.",
    )
    server = ArxivServer(day=DAY, papers=papers).start()
    try:
        configured = settings.with_(arxiv_categories=("cs.CL", "cs.CV"), arxiv_rss_url=server.rss_url, arxiv_api_url=server.api_url)
        report = ingest_arxiv(configured, client=ArxivClient("digest@example.org", min_interval=0.0, deadline=10.0))
    finally:
        server.stop()
    assert "2611.30001 was withdrawn on arXiv: no digest shows it again" in report.notes
    withdrawn = {p.arxiv_id for p in session.scalars(select(Paper).where(Paper.withdrawn.is_(True)))}
    assert withdrawn == {"2611.30001", "2611.30009"}
    texts = load_filters(session, [people["ben"].id])
    (picks,) = compose(session, [("ben", Recipient(people["ben"].id, texts[people["ben"].id], DAY, DAY))], 10).values()
    assert [p.paper.arxiv_id for p in picks] == ["2611.20001", "2611.30002"]
