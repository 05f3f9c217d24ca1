"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-28
"""

from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('ingest_runs',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('source', sa.String(length=2048), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('fetched', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('new', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('updated', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('skipped', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ingest_runs'))
    )
    op.create_table('papers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('arxiv_id', sa.String(length=32), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('abstract', sa.Text(), server_default='', nullable=False),
    sa.Column('authors', sa.JSON(), nullable=False),
    sa.Column('org_name', sa.String(length=200), nullable=True),
    sa.Column('org_fullname', sa.String(length=300), nullable=True),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('daily_date', sa.Date(), nullable=False),
    sa.Column('upvotes', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('num_comments', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('github_repo', sa.String(length=2048), nullable=True),
    sa.Column('github_stars', sa.Integer(), nullable=True),
    sa.Column('project_page', sa.String(length=2048), nullable=True),
    sa.Column('thumbnail', sa.String(length=2048), nullable=True),
    sa.Column('ai_summary', sa.Text(), nullable=True),
    sa.Column('ai_keywords', sa.JSON(), nullable=True),
    sa.Column('first_seen_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_papers')),
    sa.UniqueConstraint('arxiv_id', name=op.f('uq_papers_arxiv_id'))
    )
    with op.batch_alter_table('papers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_papers_daily_date'), ['daily_date'], unique=False)
        batch_op.create_index('ix_papers_trending', ['daily_date', 'upvotes'], unique=False)

    op.create_table('subscribers',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('email', sa.String(length=254), nullable=False),
    sa.Column('state', sa.Enum('pending', 'active', 'unsubscribed', 'suppressed', name='subscriber_state', native_enum=False, length=16), server_default='pending', nullable=False),
    sa.Column('frequency', sa.Enum('daily', 'weekly', name='frequency', native_enum=False, length=16), server_default='daily', nullable=False),
    sa.Column('timezone', sa.String(length=64), server_default='UTC', nullable=False),
    sa.Column('delivery_hour', sa.SmallInteger(), server_default=sa.text('7'), nullable=False),
    sa.Column('next_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.Column('confirmed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unsubscribed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('suppressed_reason', sa.Text(), nullable=True),
    sa.Column('confirmations_window_start', sa.DateTime(timezone=True), nullable=True),
    sa.Column('confirmations_in_window', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subscribers')),
    sa.UniqueConstraint('email', name=op.f('uq_subscribers_email')),
    sa.UniqueConstraint('public_id', name=op.f('uq_subscribers_public_id'))
    )
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.create_index('ix_subscribers_due', ['state', 'next_due_at', 'id'], unique=False)

    op.create_table('deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('public_id', sa.String(length=32), nullable=False),
    sa.Column('subscriber_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('period', sa.String(length=16), nullable=False),
    sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=False),
    sa.Column('window_start', sa.Date(), nullable=False),
    sa.Column('window_end', sa.Date(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'sending', 'sent', 'skipped', 'failed', name='delivery_status', native_enum=False, length=16), server_default='pending', nullable=False),
    sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('message_id', sa.String(length=255), nullable=True),
    sa.Column('paper_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('CURRENT_TIMESTAMP'), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_deliveries_subscriber_id_subscribers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deliveries')),
    sa.UniqueConstraint('public_id', name=op.f('uq_deliveries_public_id')),
    sa.UniqueConstraint('subscriber_id', 'period', name='uq_deliveries_subscriber_period')
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_status_claimed', ['status', 'claimed_at'], unique=False)

    op.create_table('topic_filters',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subscriber_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('text', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_topic_filters_subscriber_id_subscribers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_topic_filters')),
    sa.UniqueConstraint('subscriber_id', 'position', name=op.f('uq_topic_filters_subscriber_id'))
    )
    with op.batch_alter_table('topic_filters', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_topic_filters_subscriber_id'), ['subscriber_id'], unique=False)

    op.create_table('delivery_items',
    sa.Column('delivery_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('paper_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('subscriber_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('position', sa.SmallInteger(), nullable=False),
    sa.Column('matched_filter', sa.String(length=200), nullable=True),
    sa.ForeignKeyConstraint(['delivery_id'], ['deliveries.id'], name=op.f('fk_delivery_items_delivery_id_deliveries'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['paper_id'], ['papers.id'], name=op.f('fk_delivery_items_paper_id_papers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], name=op.f('fk_delivery_items_subscriber_id_subscribers'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('delivery_id', 'paper_id', name=op.f('pk_delivery_items'))
    )
    with op.batch_alter_table('delivery_items', schema=None) as batch_op:
        batch_op.create_index('ix_delivery_items_subscriber_paper', ['subscriber_id', 'paper_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('delivery_items', schema=None) as batch_op:
        batch_op.drop_index('ix_delivery_items_subscriber_paper')

    op.drop_table('delivery_items')
    with op.batch_alter_table('topic_filters', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_topic_filters_subscriber_id'))

    op.drop_table('topic_filters')
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_status_claimed')

    op.drop_table('deliveries')
    with op.batch_alter_table('subscribers', schema=None) as batch_op:
        batch_op.drop_index('ix_subscribers_due')

    op.drop_table('subscribers')
    with op.batch_alter_table('papers', schema=None) as batch_op:
        batch_op.drop_index('ix_papers_trending')
        batch_op.drop_index(batch_op.f('ix_papers_daily_date'))

    op.drop_table('papers')
    op.drop_table('ingest_runs')
