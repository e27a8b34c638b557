"""engage: contacts, their addresses, consent and engagement events

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "contacts",
        # Pseudonymous id: keyed HMAC-SHA256 (hex) of the normalised address.
        sa.Column("contact_id", sa.String(64), primary_key=True),
        sa.Column("attributes", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "contact_addresses",
        # The only table holding a raw address.
        sa.Column(
            "contact_id",
            sa.String(64),
            sa.ForeignKey("contacts.contact_id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("address", sa.String(512), nullable=False, unique=True),
    )
    op.create_table(
        "consents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "contact_id",
            sa.String(64),
            sa.ForeignKey("contacts.contact_id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("purpose", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("granted", sa.Boolean, nullable=False),
        sa.Column("source", sa.String(255), nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_consents_lookup", "consents", ["contact_id", "purpose", "channel", "recorded_at"]
    )
    op.create_table(
        "engage_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(128), nullable=False, unique=True),
        sa.Column("contact_id", sa.String(64), nullable=False),
        sa.Column("type", sa.String(16), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("properties", sa.JSON, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
    )
    op.create_index("ix_engage_events_contact_time", "engage_events", ["contact_id", "occurred_at"])
    op.create_index("ix_engage_events_type_time", "engage_events", ["type", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_engage_events_type_time", table_name="engage_events")
    op.drop_index("ix_engage_events_contact_time", table_name="engage_events")
    op.drop_table("engage_events")
    op.drop_index("ix_consents_lookup", table_name="consents")
    op.drop_table("consents")
    op.drop_table("contact_addresses")
    op.drop_table("contacts")
