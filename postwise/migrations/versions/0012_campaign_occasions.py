"""triggered campaign messages: an occasion per message, trigger cursors and pending firings
(issue #8)

``campaign_messages`` gains ``occasion`` ('' for a campaign send; the event id for a
triggered message) and its unique key becomes (campaign, contact, occasion), so a trigger
campaign can reach one contact once per event. ``trigger_cursors`` holds how far each watcher
has read ``engage_events``; ``trigger_pending`` the delayed firings not yet due.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot alter constraints in place, so the table is copied there;
    # PostgreSQL gets plain ALTER TABLE statements.
    with op.batch_alter_table("campaign_messages") as batch:
        batch.add_column(sa.Column("occasion", sa.String(128), nullable=False, server_default=""))
        batch.drop_constraint("uq_campaign_messages_contact", type_="unique")
        batch.create_unique_constraint(
            "uq_campaign_messages_occasion", ["campaign_id", "contact_id", "occasion"]
        )
    op.create_table(
        "trigger_cursors",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("last_event_row", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "trigger_pending",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(128), nullable=False),
        sa.Column("event_row", sa.Integer, nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("contact_id", sa.String(64), nullable=False),
        sa.Column("fire_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("campaign_id", "event_id", name="uq_trigger_pending_event"),
    )
    op.create_index("ix_trigger_pending_fire_at", "trigger_pending", ["fire_at"])


def downgrade() -> None:
    op.drop_index("ix_trigger_pending_fire_at", table_name="trigger_pending")
    op.drop_table("trigger_pending")
    op.drop_table("trigger_cursors")
    # Several messages per contact cannot fit the old key: keep each contact's first one.
    op.execute(
        "DELETE FROM campaign_messages WHERE id NOT IN ("
        "SELECT MIN(id) FROM campaign_messages GROUP BY campaign_id, contact_id)"
    )
    with op.batch_alter_table("campaign_messages") as batch:
        batch.drop_constraint("uq_campaign_messages_occasion", type_="unique")
        batch.create_unique_constraint(
            "uq_campaign_messages_contact", ["campaign_id", "contact_id"]
        )
        batch.drop_column("occasion")
