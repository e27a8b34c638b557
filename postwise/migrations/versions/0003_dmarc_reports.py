"""DMARC aggregate and failure reports, SMTP TLS reports

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dmarc_aggregate_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("org_name", sa.String(255), nullable=False),
        sa.Column("report_id", sa.String(255), nullable=False),
        sa.Column("email", sa.String(255), nullable=False),
        sa.Column("domain", sa.String(255), nullable=False, index=True),
        sa.Column("begin", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("version", sa.String(255), nullable=True),
        sa.Column("generator", sa.Text, nullable=True),
        sa.Column("errors", sa.JSON, nullable=False),
        sa.Column("notes", sa.JSON, nullable=False),
        sa.Column("messages", sa.BigInteger, nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.UniqueConstraint("org_name", "report_id", name="uq_dmarc_aggregate_key"),
    )
    op.create_table(
        "dmarc_aggregate_records",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "report_pk",
            sa.Integer,
            sa.ForeignKey("dmarc_aggregate_reports.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("policy_domain", sa.String(255), nullable=False, index=True),
        sa.Column("day", sa.Date, nullable=False, index=True),
        sa.Column("source_ip", sa.String(45), nullable=False, index=True),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.Column("disposition", sa.String(16), nullable=False),
        sa.Column("dkim", sa.String(8), nullable=False),
        sa.Column("spf", sa.String(8), nullable=False),
        sa.Column("header_from", sa.String(255), nullable=False, index=True),
        sa.Column("envelope_from", sa.String(255), nullable=True),
        sa.Column("envelope_to", sa.String(255), nullable=True),
        sa.Column("reasons", sa.JSON, nullable=False),
        sa.Column("dkim_results", sa.JSON, nullable=False),
        sa.Column("spf_results", sa.JSON, nullable=False),
    )
    op.create_table(
        "dmarc_failure_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("content_sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("reported_domain", sa.String(255), nullable=False, index=True),
        sa.Column("source_ip", sa.String(45), nullable=True, index=True),
        sa.Column("arrival_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feedback_type", sa.String(32), nullable=False),
        sa.Column("sample_headers_only", sa.Boolean, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    )
    op.create_table(
        "tls_reports",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("organization_name", sa.String(255), nullable=False),
        sa.Column("report_id", sa.String(255), nullable=False),
        sa.Column("contact_info", sa.Text, nullable=True),
        sa.Column("begin", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("successful_sessions", sa.BigInteger, nullable=False),
        sa.Column("failed_sessions", sa.BigInteger, nullable=False),
        sa.Column("policies", sa.JSON, nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.String(1024), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.UniqueConstraint("organization_name", "report_id", name="uq_tls_report_key"),
    )


def downgrade() -> None:
    op.drop_table("tls_reports")
    op.drop_table("dmarc_failure_reports")
    op.drop_table("dmarc_aggregate_records")
    op.drop_table("dmarc_aggregate_reports")
