"""Participation events: what people did that counts as taking part.

The digests count these and nothing else. One person does one kind of thing to one reference
once, so a replayed event or a repeated job never counts twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.database import insert_for
from bot.storage.models import ParticipationRow


async def record(
    session: AsyncSession,
    *,
    person_id: int,
    kind: str,
    reference: str,
    at: datetime,
    details: dict[str, Any] | None = None,
) -> bool:
    """Record that `person_id` did `kind` to `reference`; False when it was already recorded."""
    insert = insert_for(session)
    result = await session.execute(
        insert(ParticipationRow)
        .values(person_id=person_id, kind=kind, reference=reference[:200], at=at, details=details)
        .on_conflict_do_nothing(index_elements=["person_id", "kind", "reference"])
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
