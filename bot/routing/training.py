"""What the router learns from: topic definitions and the desk's own history.

- each topic's name and description (one example each, half weight: they are labels, not
  questions), its keywords (one short example each, half weight) and its example questions;
- questions the desk saw answered under a topic (full weight; the people who answered them
  confirmed the topic by answering);
- "Not me — wrong topic" declines: negative examples for the topic the question had then;
- out of scope (no topic): the organisation's `routing.out_of_scope_examples`, questions the
  desk saw answered without a topic (half weight), and Evangelist's own generic list (half
  weight, `data/out_of_scope.txt`) unless `routing.generic_out_of_scope` is off.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.organisation import OrganisationConfig
from bot.routing.router import Example
from bot.storage.models import AssignmentRow, QuestionRow

HISTORY_LIMIT = 5000
"""The most recent answered questions used; older ones add little and cost fit time."""


GENERIC_OUT_OF_SCOPE = Path(__file__).parent / "data" / "out_of_scope.txt"


@cache
def _generic_texts() -> tuple[str, ...]:
    lines = GENERIC_OUT_OF_SCOPE.read_text(encoding="utf-8").splitlines()
    return tuple(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def generic_out_of_scope(examples: Sequence[Example]) -> list[Example]:
    """Evangelist's own questions that no organisation's topic covers, for these examples.

    Together they weigh no more than an average topic of `examples` (and each at most half a
    configured example), so the out-of-scope class is one more class, not a landslide, when
    the topics have only a handful of examples each.
    """
    totals: dict[str, float] = {}
    for example in examples:
        if example.topic is not None and not example.negative:
            totals[example.topic] = totals.get(example.topic, 0.0) + example.weight
    texts = _generic_texts()
    if not totals or not texts:
        return []
    weight = min(0.5, sum(totals.values()) / len(totals) / len(texts))
    return [Example(text, None, weight, origin="generic") for text in texts]


def examples_from_organisation(organisation: OrganisationConfig) -> list[Example]:
    examples: list[Example] = []
    for topic in organisation.topics:
        examples.append(Example(topic.name, topic.id, 0.5, origin="name"))
        if topic.description:
            examples.append(Example(topic.description, topic.id, 0.5, origin="description"))
        examples.extend(Example(k, topic.id, 0.5, origin="keyword") for k in topic.keywords)
        examples.extend(Example(q, topic.id, origin="example") for q in topic.examples)
    routing = organisation.routing
    examples.extend(Example(q, None, origin="out_of_scope") for q in routing.out_of_scope_examples)
    if routing.generic_out_of_scope:
        examples.extend(generic_out_of_scope(examples))
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
    # Answered with no topic: the router (or the model) found none and someone answered
    # anyway; evidence, if weaker, of what the topics do not cover.
    uncovered = await session.scalars(
        select(QuestionRow.text)
        .where(QuestionRow.status == "answered", QuestionRow.topic_key.is_(None))
        .order_by(QuestionRow.id.desc())
        .limit(HISTORY_LIMIT // 5)
    )
    examples.extend(
        Example(text, None, 0.5, origin="answered_no_topic") for text in uncovered if text
    )
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
