"""What the router learns from: topic definitions and the desk's own history.

- each topic's name and description (one example each, half weight: they are labels, not
  questions), its keywords (one short example each, half weight) and its example questions;
- questions the desk saw answered under a topic (full weight; the people who answered them
  confirmed the topic by answering);
- "Not me — wrong topic" declines: negative examples for the topic the question had then.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.organisation import OrganisationConfig
from bot.routing.router import Example
from bot.storage.models import AssignmentRow, QuestionRow

HISTORY_LIMIT = 5000
"""The most recent answered questions used; older ones add little and cost fit time."""


def examples_from_organisation(organisation: OrganisationConfig) -> list[Example]:
    examples: list[Example] = []
    for topic in organisation.topics:
        examples.append(Example(topic.name, topic.id, 0.5, origin="name"))
        if topic.description:
            examples.append(Example(topic.description, topic.id, 0.5, origin="description"))
        examples.extend(Example(k, topic.id, 0.5, origin="keyword") for k in topic.keywords)
        examples.extend(Example(q, topic.id, origin="example") for q in topic.examples)
    return examples


async def examples_from_history(
    session: AsyncSession, organisation: OrganisationConfig
) -> list[Example]:
    known = {topic.id for topic in organisation.topics}
    answered = await session.execute(
        select(QuestionRow.text, QuestionRow.topic_key)
        .where(QuestionRow.status == "answered", QuestionRow.topic_key.is_not(None))
        .order_by(QuestionRow.id.desc())
        .limit(HISTORY_LIMIT)
    )
    examples = [
        Example(text, topic, origin="answered")
        for text, topic in answered.all()
        if topic in known and text
    ]
    declined = await session.execute(
        select(QuestionRow.text, AssignmentRow.topic_key)
        .join(AssignmentRow, AssignmentRow.question_id == QuestionRow.id)
        .where(AssignmentRow.outcome == "declined_topic", AssignmentRow.topic_key.is_not(None))
        .order_by(AssignmentRow.id.desc())
        .limit(HISTORY_LIMIT)
    )
    examples.extend(
        Example(text, topic, negative=True, origin="declined")
        for text, topic in declined.all()
        if topic in known and text
    )
    return examples


def fingerprint(examples: Sequence[Example]) -> int:
    """Changes when the training data does: retraining is skipped when it has not."""
    return hash(tuple((e.text, e.topic, e.weight, e.negative) for e in examples))
