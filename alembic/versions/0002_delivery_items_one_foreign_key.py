"""delivery_items: only the delivery is a foreign key

The subscriber's is redundant (the delivery's cascade removes a subscriber's items) and papers are
never deleted; each foreign key cost PostgreSQL a row lock per item written.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('delivery_items', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_delivery_items_subscriber_id_subscribers'), type_='foreignkey')
        batch_op.drop_constraint(batch_op.f('fk_delivery_items_paper_id_papers'), type_='foreignkey')


def downgrade() -> None:
    with op.batch_alter_table('delivery_items', schema=None) as batch_op:
        batch_op.create_foreign_key(batch_op.f('fk_delivery_items_paper_id_papers'), 'papers', ['paper_id'], ['id'], ondelete='CASCADE')
        batch_op.create_foreign_key(
            batch_op.f('fk_delivery_items_subscriber_id_subscribers'), 'subscribers', ['subscriber_id'], ['id'], ondelete='CASCADE'
        )
