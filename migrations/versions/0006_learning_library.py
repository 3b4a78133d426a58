"""the learning library: links, shares, feedback, subscribed feeds; the pick a nudge carries

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 04:40:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "library_feeds",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("origin", sa.String(length=10), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("cursor", sa.JSON(), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("polled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.String(length=300), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_library_feeds")),
        sa.UniqueConstraint("url", name=op.f("uq_library_feeds_url")),
    )
    op.create_table(
        "links",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=True),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("level", sa.String(length=20), nullable=True),
        sa.Column("experiment", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=300), nullable=False),
        sa.Column("added_by", sa.String(length=100), nullable=True),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("health", sa.String(length=12), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("final_url", sa.String(length=2000), nullable=True),
        sa.Column("check_error", sa.String(length=200), nullable=True),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("broken_since", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
        sa.UniqueConstraint("url", name=op.f("uq_links_url")),
    )
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.create_index("ix_links_checked", ["last_checked_at"], unique=False)
        batch_op.create_index("ix_links_status", ["status", "health"], unique=False)

    op.create_table(
        "link_feedback",
        sa.Column("link_id", BIG_ID, nullable=False),
        sa.Column("person_id", BIG_ID, nullable=False),
        sa.Column("opens", sa.Integer(), nullable=False),
        sa.Column("vote", sa.Integer(), nullable=True),
        sa.Column("first_opened_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("voted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["links.id"],
            name=op.f("fk_link_feedback_link_id_links"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_link_feedback_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("link_id", "person_id", name=op.f("pk_link_feedback")),
    )
    op.create_table(
        "link_shares",
        sa.Column("id", BIG_ID, nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("link_id", BIG_ID, nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("person_id", BIG_ID, nullable=True),
        sa.Column("platform", sa.String(length=20), nullable=True),
        sa.Column("channel", sa.String(length=200), nullable=True),
        sa.Column("week", sa.String(length=8), nullable=False),
        sa.Column("nudge_id", BIG_ID, nullable=True),
        sa.Column("shared_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"], ["links.id"], name=op.f("fk_link_shares_link_id_links"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["nudge_id"],
            ["nudges.id"],
            name=op.f("fk_link_shares_nudge_id_nudges"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_link_shares_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_shares")),
        sa.UniqueConstraint("key", name=op.f("uq_link_shares_key")),
        sa.UniqueConstraint("link_id", "person_id", name="uq_link_shares_link_person"),
    )
    with op.batch_alter_table("link_shares", schema=None) as batch_op:
        batch_op.create_index("ix_link_shares_kind", ["kind", "shared_at"], unique=False)
        batch_op.create_index("ix_link_shares_person", ["person_id"], unique=False)

    with op.batch_alter_table("nudges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("link_id", BIG_ID, nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_nudges_link_id_links"), "links", ["link_id"], ["id"], ondelete="SET NULL"
        )


def downgrade() -> None:
    with op.batch_alter_table("nudges", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_nudges_link_id_links"), type_="foreignkey")
        batch_op.drop_column("link_id")

    with op.batch_alter_table("link_shares", schema=None) as batch_op:
        batch_op.drop_index("ix_link_shares_person")
        batch_op.drop_index("ix_link_shares_kind")

    op.drop_table("link_shares")
    op.drop_table("link_feedback")
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_index("ix_links_status")
        batch_op.drop_index("ix_links_checked")

    op.drop_table("links")
    op.drop_table("library_feeds")
