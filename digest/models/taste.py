"""Taste: each paper's stored vectors (and the term counts their IDF comes from), readers' votes
and seed papers, and the profile fitted from them."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import NamedTuple

import numpy as np
from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    LargeBinary,
    SmallInteger,
    String,
    TypeDecorator,
)
from sqlalchemy.orm import Mapped, mapped_column

from digest.models.base import ID, Base, Count, Created, enum_type


class SparseVector(NamedTuple):
    """A paper's lexical vector: hashed term ids (uint32) and their weights, heaviest first."""

    terms: np.ndarray  # uint32
    weights: np.ndarray  # float32


class HalfFloats(TypeDecorator[np.ndarray]):
    """A float vector stored as little-endian float16 bytes, read back as float32 (a 256-dim embedding: 512 bytes)."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: np.ndarray | None, dialect) -> bytes | None:
        return None if value is None else np.asarray(value, dtype="<f2").tobytes()

    def process_result_value(self, value: bytes | None, dialect) -> np.ndarray | None:
        return None if value is None else np.frombuffer(value, dtype="<f2").astype(np.float32)


class PackedTerms(TypeDecorator[SparseVector]):
    """A :class:`SparseVector` as bytes: K little-endian uint32 term ids, then K float16 weights."""

    impl = LargeBinary
    cache_ok = True

    def process_bind_param(self, value: SparseVector | None, dialect) -> bytes | None:
        if value is None:
            return None
        return np.asarray(value.terms, dtype="<u4").tobytes() + np.asarray(value.weights, dtype="<f2").tobytes()

    def process_result_value(self, value: bytes | None, dialect) -> SparseVector | None:
        if value is None:
            return None
        k = len(value) // 6
        terms = np.frombuffer(value, dtype="<u4", count=k).astype(np.uint32)
        return SparseVector(terms, np.frombuffer(value, dtype="<f2", offset=4 * k).astype(np.float32))


class PaperVector(Base):
    """A paper's two representations, computed once when ingest first stores it (``digest.papers.vectors``).

    ``model`` names what made them (embedding model and term weighting, with versions): a change of
    either makes ingest compute them again for the papers it touches.
    """

    __tablename__ = "paper_vectors"

    paper_id: Mapped[int] = mapped_column(ID, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True)
    model: Mapped[str] = mapped_column(String(64))
    dense: Mapped[np.ndarray] = mapped_column(HalfFloats)  # unit length
    sparse: Mapped[SparseVector] = mapped_column(PackedTerms)  # unit length over the kept terms
    created_at: Mapped[Created]


class TermCount(Base):
    """How many represented papers contain a term (its document frequency, for the IDF of new papers)."""

    __tablename__ = "term_counts"

    term: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)  # the term's uint32 hash
    papers: Mapped[Count]


class VoteSource(str, enum.Enum):
    vote = "vote"  # "more / less like this" from a digest
    seed = "seed"  # a paper the reader named on the sign-up or preferences form (always +1)


class Vote(Base):
    """A reader's word on a paper: +1 (more like this) or -1 (less). A second vote on the same paper replaces the first."""

    __tablename__ = "votes"

    subscriber_id: Mapped[int] = mapped_column(ID, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True)
    paper_id: Mapped[int] = mapped_column(ID, ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True)
    vote: Mapped[int] = mapped_column(SmallInteger)
    source: Mapped[VoteSource] = mapped_column(enum_type(VoteSource, "vote_source"), server_default=VoteSource.vote.value)
    created_at: Mapped[Created]

    __table_args__ = (CheckConstraint("vote IN (-1, 1)", name="vote"),)


class ReaderProfile(Base):
    """A reader's taste, derived from their votes and seeds (``digest.matching.taste``): at most 2 KB."""

    __tablename__ = "reader_profiles"

    subscriber_id: Mapped[int] = mapped_column(ID, ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True)
    profile: Mapped[bytes] = mapped_column(LargeBinary)
    updated_at: Mapped[datetime]
