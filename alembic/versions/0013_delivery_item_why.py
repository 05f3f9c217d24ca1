"""delivery_items.why: what the reader's taste saw in a paper, as the email said it

So that the "view in browser" page and the reader's Atom feed give the same why lines as the
email ("like “COAT…”, which you liked"), not only the filter that matched.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("delivery_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("why", sa.String(length=300), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("delivery_items", schema=None) as batch_op:
        batch_op.drop_column("why")
