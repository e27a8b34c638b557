"""generated copy candidates and their guardrail verdicts (issue #8)

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "copy_candidates",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("brief_sha256", sa.String(64), nullable=False),
        sa.Column("brief", sa.JSON, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("preheader", sa.Text, nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("spam_score", sa.Float, nullable=True),
        sa.Column("policy_version", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_by", sa.String(128), nullable=True),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_copy_candidates_status", "copy_candidates", ["status"])
    op.create_index(
        "ix_copy_candidates_brief_status", "copy_candidates", ["brief_sha256", "status"]
    )


def downgrade() -> None:
    op.drop_index("ix_copy_candidates_brief_status", table_name="copy_candidates")
    op.drop_index("ix_copy_candidates_status", table_name="copy_candidates")
    op.drop_table("copy_candidates")
