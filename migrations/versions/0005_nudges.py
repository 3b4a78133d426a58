"""nudge campaigns, planned and sent nudges, nudge preferences; who set someone's absence

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 09:05:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("away_source", sa.String(length=10), nullable=True))
    op.create_table(
        "campaigns",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_campaigns")),
    )
    op.create_table(
        "nudges",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("campaign_key", sa.String(length=64), nullable=False),
        sa.Column("campaign_version", sa.Integer(), nullable=False),
        sa.Column("person_id", BIG_ID, nullable=False),
        sa.Column("slot_day", sa.Date(), nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("variant", sa.String(length=20), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("reason", sa.String(length=100), nullable=True),
        sa.Column("response", sa.String(length=10), nullable=True),
        sa.Column("test", sa.Boolean(), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("responded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_nudges_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_nudges")),
        sa.UniqueConstraint("key", name=op.f("uq_nudges_key")),
    )
    op.create_index("ix_nudges_due", "nudges", ["status", "send_at"], unique=False)
    op.create_index("ix_nudges_person", "nudges", ["person_id", "send_at"], unique=False)
    op.create_index("ix_nudges_campaign", "nudges", ["campaign_key", "status"], unique=False)
    op.create_table(
        "nudge_preferences",
        sa.Column("person_id", BIG_ID, nullable=False),
        sa.Column("opted_out_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("paused_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped", sa.JSON(), nullable=False),
        sa.Column("stage", sa.String(length=20), nullable=False),
        sa.Column("stage_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_nudge_preferences_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("person_id", name=op.f("pk_nudge_preferences")),
    )


def downgrade() -> None:
    op.drop_table("nudge_preferences")
    op.drop_index("ix_nudges_campaign", table_name="nudges")
    op.drop_index("ix_nudges_person", table_name="nudges")
    op.drop_index("ix_nudges_due", table_name="nudges")
    op.drop_table("nudges")
    op.drop_table("campaigns")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("away_source")
