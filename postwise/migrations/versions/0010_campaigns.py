"""campaigns, their variants and messages (issue #8)

Revision ID: 0010
Revises: 0009
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaigns",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("definition", sa.JSON, nullable=False),
        sa.Column("template_source", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("experiment", sa.String(128), nullable=True),
        sa.Column("bandit", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "campaign_messages",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(128), nullable=False),
        sa.Column("contact_id", sa.String(64), nullable=False),
        sa.Column("variant", sa.String(128), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("queue_message_id", sa.String(32), nullable=True),
        sa.Column("tracking_message_id", sa.String(128), nullable=False),
        sa.Column("header_message_id", sa.String(998), nullable=True),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reward", sa.Float, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("campaign_id", "contact_id", name="uq_campaign_messages_contact"),
    )
    op.create_index(
        "ix_campaign_messages_campaign_state", "campaign_messages", ["campaign_id", "state"]
    )
    op.create_index("ix_campaign_messages_queue", "campaign_messages", ["queue_message_id"])
    op.create_index("ix_campaign_messages_tracking", "campaign_messages", ["tracking_message_id"])


def downgrade() -> None:
    op.drop_index("ix_campaign_messages_tracking", table_name="campaign_messages")
    op.drop_index("ix_campaign_messages_queue", table_name="campaign_messages")
    op.drop_index("ix_campaign_messages_campaign_state", table_name="campaign_messages")
    op.drop_table("campaign_messages")
    op.drop_table("campaigns")
