"""signup_requests.seeds: the papers a reader named on the sign-up form, applied when they confirm

arXiv ids, one per line, already checked against the papers table when the form was posted; like
the request's topics, nothing of them counts until the confirmation link is used.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signup_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seeds", sa.Text(), server_default="", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("signup_requests", schema=None) as batch_op:
        batch_op.drop_column("seeds")
