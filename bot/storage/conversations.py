"""Stored Bot Framework conversation references (Teams)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.storage.models import ConversationReferenceRow


async def save_reference(
    session: AsyncSession,
    *,
    platform: str,
    conversation_id: str,
    conversation_type: str | None,
    user_id: str | None,
    tenant_id: str | None,
    service_url: str | None,
    reference: dict[str, Any],
    now: datetime,
) -> None:
    row = await session.scalar(
        select(ConversationReferenceRow).where(
            ConversationReferenceRow.platform == platform,
            ConversationReferenceRow.conversation_id == conversation_id,
        )
    )
    if row is None:
        row = ConversationReferenceRow(platform=platform, conversation_id=conversation_id)
        session.add(row)
    row.conversation_type = conversation_type
    row.user_id = user_id if conversation_type == "personal" else row.user_id
    row.tenant_id = tenant_id
    row.service_url = service_url
    row.reference = reference
    row.updated_at = now


async def reference_for_conversation(
    session: AsyncSession, platform: str, conversation_id: str
) -> ConversationReferenceRow | None:
    return await session.scalar(
        select(ConversationReferenceRow).where(
            ConversationReferenceRow.platform == platform,
            ConversationReferenceRow.conversation_id == conversation_id,
        )
    )


async def personal_reference(
    session: AsyncSession, platform: str, user_id: str
) -> ConversationReferenceRow | None:
    return await session.scalar(
        select(ConversationReferenceRow)
        .where(
            ConversationReferenceRow.platform == platform,
            ConversationReferenceRow.user_id == user_id,
            ConversationReferenceRow.conversation_type == "personal",
        )
        .order_by(ConversationReferenceRow.updated_at.desc())
        .limit(1)
    )


async def any_reference(session: AsyncSession, platform: str) -> ConversationReferenceRow | None:
    """The most recent reference: it tells us our bot id, the tenant and the service URL."""
    return await session.scalar(
        select(ConversationReferenceRow)
        .where(ConversationReferenceRow.platform == platform)
        .order_by(ConversationReferenceRow.updated_at.desc())
        .limit(1)
    )
