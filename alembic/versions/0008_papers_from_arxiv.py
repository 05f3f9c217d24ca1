"""papers from arXiv: categories, primary category, latest version, announcement day; a paper only
arXiv announced has no Daily Papers day (daily_date NULL), so no digest window holds it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.alter_column("daily_date", existing_type=sa.Date(), nullable=True)
        batch_op.add_column(sa.Column("categories", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("primary_category", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("arxiv_version", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("announced_on", sa.Date(), nullable=True))
        batch_op.create_index(batch_op.f("ix_papers_announced_on"), ["announced_on"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM papers WHERE daily_date IS NULL")  # arXiv-only papers have no place in the older schema
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_papers_announced_on"))
        batch_op.drop_column("announced_on")
        batch_op.drop_column("arxiv_version")
        batch_op.drop_column("primary_category")
        batch_op.drop_column("categories")
        batch_op.alter_column("daily_date", existing_type=sa.Date(), nullable=False)
