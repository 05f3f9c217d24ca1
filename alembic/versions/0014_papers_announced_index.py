"""papers: the announcement day's index covers the "New on arXiv" window's version check

Every send batch asks whether its window's papers changed (a count and the latest ``updated_at``,
digest.matching.trending); for the arXiv window that read thousands of papers' rows (a sequential
scan: ~8 ms a batch at 4,000 papers, growing with the table). The index on ``announced_on`` now
also holds ``updated_at``, ``daily_date`` and ``withdrawn``: PostgreSQL answers from the index
(~1 ms).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_papers_announced_on"))
        batch_op.create_index("ix_papers_announced", ["announced_on", "updated_at", "daily_date", "withdrawn"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.drop_index("ix_papers_announced")
        batch_op.create_index(batch_op.f("ix_papers_announced_on"), ["announced_on"], unique=False)
