"""stored experiments (A/B tests, global and campaign holdouts) and their assignments

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        # "ab" (arms given by the operator) or "holdout" (control = the held-out share).
        sa.Column("kind", sa.String(16), nullable=False),
        # [[arm, fraction], ...] in slice order; the first arm is the control.
        sa.Column("arms", sa.JSON, nullable=False),
        sa.Column("salt", sa.String(255), nullable=False),
        # NULL for a holdout: the global holdout; NULL for an A/B test: not tied to a campaign.
        sa.Column("campaign", sa.String(128), nullable=True, index=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_table(
        "experiment_assignments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "experiment_id",
            sa.Integer,
            sa.ForeignKey("experiments.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("contact_id", sa.String(64), nullable=False),
        sa.Column("arm", sa.String(64), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint(
            "experiment_id", "contact_id", name="uq_experiment_assignments_contact"
        ),
    )
    op.create_index("ix_experiment_assignments_contact", "experiment_assignments", ["contact_id"])


def downgrade() -> None:
    op.drop_index("ix_experiment_assignments_contact", table_name="experiment_assignments")
    op.drop_table("experiment_assignments")
    op.drop_table("experiments")
