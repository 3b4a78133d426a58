"""De-duplication of inbound events by the platform's own event id."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.database import insert_for
from bot.storage.models import ProcessedEventRow


async def mark_processed(
    session: AsyncSession, platform: str, event_id: str, now: datetime
) -> bool:
    """Record an event as handled in the caller's transaction. False if it was already handled.

    Because the mark commits together with the event's effects, a crash before commit leaves the
    event unmarked and the platform's retry is processed; a committed one is never repeated. Two
    replicas racing on the same id are settled by the primary key.
    """
    values = {"platform": platform, "event_id": event_id[:200], "received_at": now}
    insert = insert_for(session)
    statement = insert(ProcessedEventRow).values(**values).on_conflict_do_nothing()
    result = await session.execute(statement)
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def prune_processed(session: AsyncSession, before: datetime) -> int:
    result = await session.execute(
        delete(ProcessedEventRow).where(ProcessedEventRow.received_at < before)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
