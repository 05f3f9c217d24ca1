"""mail events: bounces, complaints, auto-replies and forged reports that come back after a send

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-08
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
KIND = sa.Enum("hard", "soft", "complaint", "auto_reply", "delivered", "other", "forged", name="mail_event_kind", native_enum=False, length=16)


def upgrade() -> None:
    op.create_table(
        "mail_events",
        sa.Column("id", ID, nullable=False),
        sa.Column("report_key", sa.String(length=64), nullable=True),
        sa.Column("kind", KIND, nullable=False),
        sa.Column("subscriber_id", ID, nullable=True),
        sa.Column("delivery_id", ID, nullable=True),
        sa.Column("address", sa.String(length=254), server_default="", nullable=False),
        sa.Column("diagnostic", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("CURRENT_TIMESTAMP"), nullable=False),
        sa.ForeignKeyConstraint(
            ["subscriber_id"], ["subscribers.id"], name=op.f("fk_mail_events_subscriber_id_subscribers"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name=op.f("fk_mail_events_delivery_id_deliveries"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_events")),
        sa.UniqueConstraint("report_key", name=op.f("uq_mail_events_report_key")),
    )
    op.create_index("ix_mail_events_subscriber_created", "mail_events", ["subscriber_id", "created_at"])
    op.create_index("ix_mail_events_kind", "mail_events", ["kind"])
    op.create_index(op.f("ix_mail_events_delivery_id"), "mail_events", ["delivery_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_mail_events_delivery_id"), table_name="mail_events")
    op.drop_index("ix_mail_events_kind", table_name="mail_events")
    op.drop_index("ix_mail_events_subscriber_created", table_name="mail_events")
    op.drop_table("mail_events")
