"""sign-up requests, suppressions, confirmation quotas per mailbox

A sign-up no longer changes a subscriber until its confirmation link is used (signup_requests); an
address that left is remembered as a hash after its row is purged (suppressions); the confirmation
quota counts a mailbox's plus- and dot-variants together (confirmation_quotas), replacing the two
counters on subscribers.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
FREQUENCY = sa.Enum("daily", "weekly", name="frequency", native_enum=False, length=16)


def upgrade() -> None:
    op.create_table(
        "signup_requests",
        sa.Column("subscriber_id", ID, nullable=False),
        sa.Column("nonce", sa.String(length=32), nullable=False),
        sa.Column("topics", sa.Text(), server_default="", nullable=False),
        sa.Column("frequency", FREQUENCY, nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name=op.f("fk_signup_requests_subscriber_id_subscribers"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("subscriber_id", name=op.f("pk_signup_requests")),
    )
    op.create_table(
        "suppressions",
        sa.Column("address_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False),
        sa.PrimaryKeyConstraint("address_hash", name=op.f("pk_suppressions")),
    )
    op.create_table(
        "confirmation_quotas",
        sa.Column("mailbox_hash", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("waiting_subscriber_id", ID, nullable=True),
        sa.ForeignKeyConstraint(
            ["waiting_subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_confirmation_quotas_waiting_subscriber_id_subscribers"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("mailbox_hash", name=op.f("pk_confirmation_quotas")),
    )
    # everyone who left before this migration is remembered too
    conn = op.get_bind()
    left = conn.execute(sa.text("SELECT email, state FROM subscribers WHERE state IN ('unsubscribed', 'suppressed')")).all()
    if left:
        conn.execute(
            sa.text("INSERT INTO suppressions (address_hash, reason) VALUES (:h, :r)"),
            [{"h": hashlib.sha256(email.encode("utf-8")).hexdigest(), "r": state} for email, state in left],
        )
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_column("confirmations_window_start")
        batch_op.drop_column("confirmations_in_window")


def downgrade() -> None:
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confirmations_in_window", sa.Integer(), server_default=sa.text("0"), nullable=False))
        batch_op.add_column(sa.Column("confirmations_window_start", sa.DateTime(timezone=True), nullable=True))
    op.drop_table("confirmation_quotas")
    op.drop_table("suppressions")
    op.drop_table("signup_requests")
