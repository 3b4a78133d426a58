"""expertise: what the desk learns about who knows which topic

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 00:01:34.448229
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The learning rule's default half-life at the time of writing; a migration must not change
# meaning when the application's rule changes later, so it keeps its own copy.
HALF_LIFE_SECONDS = 90 * 24 * 3600.0


def upgrade() -> None:

    op.create_table(
        "expertise",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "person_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("topic_key", sa.String(length=100), nullable=False),
        sa.Column("learned", sa.Double(), nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answers", sa.Integer(), nullable=False),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("declines", sa.Integer(), nullable=False),
        sa.Column("override", sa.Double(), nullable=True),
        sa.Column("overridden_by", sa.String(length=100), nullable=True),
        sa.Column("overridden_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("note", sa.String(length=300), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["people.id"],
            name=op.f("fk_expertise_person_id_people"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expertise")),
        sa.UniqueConstraint("person_id", "topic_key", name=op.f("uq_expertise_person_id")),
    )
    with op.batch_alter_table("expertise", schema=None) as batch_op:
        batch_op.create_index("ix_expertise_topic", ["topic_key"], unique=False)

    _backfill_answers()


def _backfill_answers() -> None:
    """Answers given before this table existed still count, decayed to the latest of them.

    Each (person, topic) row's score is valid at that person's latest answer on the topic, so
    the application decays it from there; no wall-clock time is involved.
    """
    questions = sa.table(
        "questions",
        sa.column("answered_by_id", sa.Integer()),
        sa.column("topic_key", sa.String()),
        sa.column("status", sa.String()),
        sa.column("answered_at", sa.DateTime(timezone=True)),
    )
    rows = op.get_bind().execute(
        sa.select(questions.c.answered_by_id, questions.c.topic_key, questions.c.answered_at).where(
            questions.c.status == "answered",
            questions.c.answered_by_id.is_not(None),
            questions.c.topic_key.is_not(None),
            questions.c.answered_at.is_not(None),
        )
    )
    answered: dict[tuple[int, str], list[datetime]] = defaultdict(list)
    for person, topic, at in rows:
        moment = at if at.tzinfo else at.replace(tzinfo=UTC)
        answered[(int(person), str(topic))].append(moment)
    if not answered:
        return
    expertise = sa.table(
        "expertise",
        sa.column("person_id", sa.Integer()),
        sa.column("topic_key", sa.String()),
        sa.column("learned", sa.Double()),
        sa.column("learned_at", sa.DateTime(timezone=True)),
        sa.column("answers", sa.Integer()),
        sa.column("claims", sa.Integer()),
        sa.column("declines", sa.Integer()),
        sa.column("updated_at", sa.DateTime(timezone=True)),
    )
    values = []
    for (person, topic), moments in sorted(answered.items()):
        latest = max(moments)
        score = sum(0.5 ** ((latest - m).total_seconds() / HALF_LIFE_SECONDS) for m in moments)
        values.append(
            {
                "person_id": person,
                "topic_key": topic[:100],
                "learned": score,
                "learned_at": latest,
                "answers": len(moments),
                "claims": 0,
                "declines": 0,
                "updated_at": latest,
            }
        )
    op.bulk_insert(expertise, values)


def downgrade() -> None:

    with op.batch_alter_table("expertise", schema=None) as batch_op:
        batch_op.drop_index("ix_expertise_topic")

    op.drop_table("expertise")
