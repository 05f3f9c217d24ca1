"""papers.org_avatar: the organisation's logo, shown beside its name on paper cards

The Daily Papers API gives ``organization.avatar`` (an image URL) with the organisation's name;
nullable, like every optional extra of a paper, and refreshed on each ingest.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("org_avatar", sa.String(length=2048), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("papers", schema=None) as batch_op:
        batch_op.drop_column("org_avatar")
