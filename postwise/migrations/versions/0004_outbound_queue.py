"""outbound queue, suppressions and egress counters

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("idempotency_key", sa.String(255), nullable=True, unique=True),
        sa.Column("mail_from", sa.String(512), nullable=False),
        sa.Column("sending_domain", sa.String(255), nullable=False, index=True),
        sa.Column("message_sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("subject", sa.String(998), nullable=False),
        sa.Column("header_message_id", sa.String(998), nullable=False),
        sa.Column("pool", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("submitted_by", sa.String(255), nullable=False),
        sa.Column("envelope_id", sa.String(100), nullable=True),
        sa.Column("created_at", sa.Float, nullable=False, index=True),
        sa.Column("expires_at", sa.Float, nullable=False),
    )
    op.create_table(
        "outbound_recipients",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "message_id",
            sa.String(32),
            sa.ForeignKey("outbound_messages.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("recipient", sa.String(512), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False, index=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("claimed_by", sa.String(64), nullable=True),
        sa.Column("last_attempt_at", sa.Float, nullable=True),
        sa.Column("last_reply", sa.Text, nullable=False),
        sa.Column("last_mx", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("hard", sa.Boolean, nullable=False),
        sa.Column("dsn_sent", sa.Boolean, nullable=False),
        sa.Column("last_detail", sa.JSON, nullable=True),
        sa.Column("updated_at", sa.Float, nullable=False),
    )
    op.create_index(
        "ix_outbound_recipients_due", "outbound_recipients", ["state", "next_attempt_at"]
    )
    op.create_table(
        "suppressions",
        sa.Column("address", sa.String(512), primary_key=True),
        sa.Column("reason", sa.String(64), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
        sa.Column("created_at", sa.Float, nullable=False),
    )
    op.create_table(
        "egress_daily",
        sa.Column("ip", sa.String(64), primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("sent", sa.Integer, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("egress_daily")
    op.drop_table("suppressions")
    op.drop_index("ix_outbound_recipients_due", "outbound_recipients")
    op.drop_table("outbound_recipients")
    op.drop_table("outbound_messages")
