"""Answered questions as reusable knowledge: "answered before by …" with the answer's link."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.questions.classifier import similarity
from bot.storage.models import PersonRow, QuestionRow

SIMILAR_ENOUGH = 0.45
RECENT = 500
"""How many recent answered questions are compared (a bounded, index-backed scan)."""


async def answered_before(
    session: AsyncSession, question: QuestionRow, limit: int = 2
) -> list[tuple[str, str]]:
    """Up to `limit` (who, link) pairs for answered questions close to this one."""
    rows = (
        await session.execute(
            select(QuestionRow.text, QuestionRow.answer_url, PersonRow.name)
            .outerjoin(PersonRow, PersonRow.id == QuestionRow.answered_by_id)
            .where(
                QuestionRow.status == "answered",
                QuestionRow.answer_url.is_not(None),
                QuestionRow.id != question.id,
            )
            .order_by(QuestionRow.answered_at.desc())
            .limit(RECENT)
        )
    ).all()
    scored = [
        (similarity(question.text, text), url, name or "the page")
        for text, url, name in rows
        if url
    ]
    scored = [s for s in scored if s[0] >= SIMILAR_ENOUGH]
    scored.sort(key=lambda s: (-s[0], s[1]))
    return [(name, url) for _, url, name in scored[:limit]]
