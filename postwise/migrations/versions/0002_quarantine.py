"""quarantine

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("message_sha256", sa.String(64), nullable=False, index=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("mail_from", sa.String(512), nullable=False),
        sa.Column("rcpt_to", sa.JSON, nullable=False),
        sa.Column("client_ip", sa.String(64), nullable=False),
        sa.Column("helo", sa.String(255), nullable=False),
        sa.Column("subject", sa.String(998), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("message_class", sa.String(8), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("reason", sa.String(512), nullable=False),
        sa.Column("verdict", sa.JSON, nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("mta_queue_id", sa.String(64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("quarantine")
