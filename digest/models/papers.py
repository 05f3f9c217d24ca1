"""Papers as ingest stores them, and the record of each ingest run."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    Index,
    String,
    Text,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from digest.models.base import Base, Count, Created, IntPK, Url, utcnow


class Paper(Base):
    __tablename__ = "papers"

    id: Mapped[IntPK]
    arxiv_id: Mapped[str] = mapped_column(String(32), unique=True)
    title: Mapped[str] = mapped_column(Text)
    abstract: Mapped[str] = mapped_column(Text, server_default="")
    authors: Mapped[list[str]] = mapped_column(JSON, default=list)  # ordered names
    org_name: Mapped[str | None] = mapped_column(String(200))
    org_fullname: Mapped[str | None] = mapped_column(String(300))
    org_avatar: Mapped[Url]  # the organisation's logo, an http(s) image URL
    published_at: Mapped[datetime | None]  # arXiv publication time
    submitted_at: Mapped[datetime | None]  # when it went on Daily Papers
    #: the Daily Papers day it belongs to; None for a paper only arXiv announced (not trending): such
    #: a paper reaches a digest's "New on arXiv" section through its announcement day
    daily_date: Mapped[date | None] = mapped_column(Date, index=True)
    upvotes: Mapped[Count]
    num_comments: Mapped[Count]
    github_repo: Mapped[Url]
    github_stars: Mapped[int | None]
    project_page: Mapped[Url]
    thumbnail: Mapped[Url]
    ai_summary: Mapped[str | None] = mapped_column(Text)
    ai_keywords: Mapped[list[str] | None] = mapped_column(JSON)
    # arXiv's side (digest/papers/sources/arxiv.py): None for a paper arXiv has not announced here
    categories: Mapped[list[str] | None] = mapped_column(JSON)  # primary first, then cross-lists
    primary_category: Mapped[str | None] = mapped_column(String(32))
    arxiv_version: Mapped[int | None]  # the latest version seen
    announced_on: Mapped[date | None] = mapped_column(Date)  # the arXiv announcement day it was new on
    #: arXiv lists its latest version as withdrawn (digest.papers.sources.arxiv.withdrawn): no digest shows it again
    withdrawn: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    first_seen_at: Mapped[Created]
    updated_at: Mapped[Created]

    __table_args__ = (
        Index("ix_papers_trending", "daily_date", "upvotes"),
        # covers the "New on arXiv" window's version check (a count and the latest updated_at of the
        # days' papers, once per batch: digest.matching.trending), read from the index alone
        Index("ix_papers_announced", "announced_on", "updated_at", "daily_date", "withdrawn"),
    )


class IngestRun(Base):
    """A successful ingest (a failed one changes nothing, this table included)."""

    __tablename__ = "ingest_runs"

    id: Mapped[IntPK]
    source: Mapped[str] = mapped_column(String(2048))
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
    fetched: Mapped[Count]
    new: Mapped[Count]
    updated: Mapped[Count]
    skipped: Mapped[Count]
