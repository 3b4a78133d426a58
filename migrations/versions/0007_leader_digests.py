"""leader digests: weekly snapshots, consent to be named, an index for reading weeks of events

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 06:54:23.183737
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "digests",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("leader_id", BIG_ID, nullable=False),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("zone", sa.String(length=64), nullable=False),
        sa.Column("scope", sa.String(length=300), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("narrative", sa.Text(), nullable=True),
        sa.Column("narrative_source", sa.String(length=10), nullable=False),
        sa.Column("message_key", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["leader_id"],
            ["people.id"],
            name=op.f("fk_digests_leader_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digests")),
        sa.UniqueConstraint("leader_id", "week", name="uq_digests_leader_week"),
    )
    # Reading weeks of events by time, person and kind straight from the index replaces the
    # index on time alone.
    with op.batch_alter_table("participation_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_participation_events_at"))
        batch_op.create_index("ix_participation_window", ["at", "person_id", "kind"], unique=False)

    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recognition_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("people", schema=None) as batch_op:
        batch_op.drop_column("recognition_at")

    with op.batch_alter_table("participation_events", schema=None) as batch_op:
        batch_op.drop_index("ix_participation_window")
        batch_op.create_index(batch_op.f("ix_participation_events_at"), ["at"], unique=False)

    op.drop_table("digests")
