""" "More like this" / "Less like this" from the email: ``/vote/<token>/<paper id>/<more|less>``.

Each card of a digest links here; the token is signed for the reader (:func:`digest.mail.digest_email.vote_links`),
and the paper and the way are checked when the vote arrives: the token is the credential, no login. Link scanners (Safe Links, Proofpoint, Mimecast) fetch every
link in a mail, so a GET never records anything: it shows one button. The POST records the vote
(a second vote on the paper replaces the first; the same vote twice changes nothing), then offers
"undo" (a POST that removes it) and the papers most like that one.

A vote counts only from an active reader, on a paper that was in one of their sent digests; any
other link is a clear page, and nothing is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from flask import Flask, current_app, render_template, request
from flask_limiter import Limiter
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest import tokens
from digest.config import Settings
from digest.db import session_scope
from digest.matching.profiles import record_vote, remove_vote, similar_papers
from digest.matching.trending import arxiv_candidates, window_candidates
from digest.models import Delivery, DeliveryItem, DeliveryStatus, Paper, Subscriber, SubscriberState, Vote
from digest.web.site import error_page

SIMILAR_DAYS = 14  # "papers most like this one" are among the Daily Papers two weeks either side of it
SIMILAR_COUNT = 3


class BadVote(Exception):
    """A vote link that records nothing: the page's title and message."""

    def __init__(self, code: int, title: str, message: str) -> None:
        super().__init__(message)
        self.code, self.title, self.message = code, title, message


@dataclass(frozen=True)
class Ballot:
    """What a valid vote link stands for."""

    subscriber_id: int
    paper: Paper
    vote: int  # +1 "more like this", -1 "less like this"


def parse_vote(settings: Settings, token: str, way: str) -> tuple[str, int]:
    """The (subscriber public id, vote) a vote link stands for; :class:`BadVote` if it is not one."""
    bad = BadVote(400, "This link doesn't work", "It may have been copied incompletely. Use the link in the digest again.")
    try:
        public_id = tokens.read_token(settings, "vote", token)
    except tokens.BadToken:
        raise bad from None
    if not public_id or way not in tokens.VOTE_WAYS:
        raise bad
    return public_id, tokens.VOTE_WAYS[way]


def ballot_for(session: Session, settings: Settings, token: str, paper_id: int, way: str) -> Ballot:
    """The vote a link may record: an active reader, a paper of one of their sent digests."""
    public_id, vote = parse_vote(settings, token, way)
    subscriber = session.execute(select(Subscriber.id, Subscriber.state).where(Subscriber.public_id == public_id)).one_or_none()
    if subscriber is None or subscriber.state != SubscriberState.active:
        raise BadVote(
            410,
            "You are not subscribed",
            "This address no longer gets the digest, so its votes are not kept. Subscribe again to tune a digest.",
        )
    was_sent = session.scalar(
        select(DeliveryItem.paper_id)
        .join(Delivery, Delivery.id == DeliveryItem.delivery_id)
        .where(DeliveryItem.subscriber_id == subscriber.id, DeliveryItem.paper_id == paper_id, Delivery.status == DeliveryStatus.sent)
        .limit(1)
    )
    paper = session.get(Paper, paper_id) if was_sent is not None else None
    if paper is None:
        raise BadVote(404, "This paper was not in your digest", "Votes count only for papers your digest showed you.")
    return Ballot(subscriber.id, paper, vote)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def vote(token: str, paper_id: int, way: str):
    """GET: one button. POST: record the vote (``action=undo``: remove it)."""
    settings: Settings = current_app.config["DIGEST_SETTINGS"]
    with session_scope(settings) as session:
        try:
            ballot = ballot_for(session, settings, token, paper_id, way)
        except BadVote as exc:
            return error_page(exc.code, exc.title, exc.message)
        outcome, similar = None, []
        if request.method == "POST":
            now = _now()
            if request.form.get("action") == "undo":
                remove_vote(session, ballot.subscriber_id, ballot.paper.id, now)
                outcome = "undone"
            else:
                record_vote(session, ballot.subscriber_id, ballot.paper.id, ballot.vote, now)
                outcome = "recorded"
                paper = ballot.paper  # a trending paper: its neighbours among trending ones; one only arXiv has: among arXiv's
                day, near = (paper.daily_date, window_candidates) if paper.daily_date else (paper.announced_on, arxiv_candidates)
                recent = near(session, day - timedelta(days=SIMILAR_DAYS), day + timedelta(days=SIMILAR_DAYS)).papers if day else []
                similar = similar_papers(session, ballot.paper.id, recent, SIMILAR_COUNT, ballot.subscriber_id)
        current = session.scalar(select(Vote.vote).where(Vote.subscriber_id == ballot.subscriber_id, Vote.paper_id == ballot.paper.id))
        return render_template(
            "vote.html",
            token=token,
            paper_id=paper_id,
            way=way,
            outcome=outcome,
            more=ballot.vote > 0,
            current=current,
            paper=ballot.paper,
            similar=similar,
        )


def register(app: Flask, limiter: Limiter, csrf: CSRFProtect, settings: Settings) -> None:
    limit = settings.extra.get("rate_limit_links", "30 per minute; 300 per hour")
    csrf.exempt(vote)  # the signed token in the URL is the credential
    app.add_url_rule(
        "/vote/<token>/<dbid:paper_id>/<way>", "vote", limiter.limit(limit, override_defaults=False)(vote), methods=["GET", "POST"]
    )
