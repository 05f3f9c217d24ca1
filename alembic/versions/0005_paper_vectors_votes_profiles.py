"""taste: paper vectors (computed at ingest), term counts, votes and seeds, reader profiles

paper_vectors holds each paper's dense embedding and sparse term vector, computed once when ingest
first stores it; term_counts the document frequency of each hashed term (the IDF of new papers);
votes a reader's +1/-1 per paper (a seed is a +1 from the form; one row per reader and paper, a
second vote replaces the first); reader_profiles the taste derived from them (at most 2 KB each).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NOW = sa.text("CURRENT_TIMESTAMP")


def upgrade() -> None:
    op.create_table(
        "paper_vectors",
        sa.Column("paper_id", ID, nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("dense", sa.LargeBinary(), nullable=False),
        sa.Column("sparse", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"], name=op.f("fk_paper_vectors_paper_id_papers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("paper_id", name=op.f("pk_paper_vectors")),
    )
    op.create_table(
        "term_counts",
        sa.Column("term", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("papers", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.PrimaryKeyConstraint("term", name=op.f("pk_term_counts")),
    )
    op.create_table(
        "votes",
        sa.Column("subscriber_id", ID, nullable=False),
        sa.Column("paper_id", ID, nullable=False),
        sa.Column("vote", sa.SmallInteger(), nullable=False),
        sa.Column(
            "source",
            sa.Enum("vote", "seed", name="vote_source", native_enum=False, length=16),
            server_default="vote",
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=NOW, nullable=False),
        sa.CheckConstraint("vote IN (-1, 1)", name=op.f("ck_votes_vote")),
        sa.ForeignKeyConstraint(["subscriber_id"], ["subscribers.id"], name=op.f("fk_votes_subscriber_id_subscribers"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["paper_id"], ["papers.id"], name=op.f("fk_votes_paper_id_papers"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("subscriber_id", "paper_id", name=op.f("pk_votes")),
    )
    op.create_table(
        "reader_profiles",
        sa.Column("subscriber_id", ID, nullable=False),
        sa.Column("profile", sa.LargeBinary(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name=op.f("fk_reader_profiles_subscriber_id_subscribers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("subscriber_id", name=op.f("pk_reader_profiles")),
    )


def downgrade() -> None:
    op.drop_table("reader_profiles")
    op.drop_table("votes")
    op.drop_table("term_counts")
    op.drop_table("paper_vectors")
