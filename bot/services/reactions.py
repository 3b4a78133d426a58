"""Reactions to the bot's own messages count as taking part (a light, real signal).

Only the fact is kept: who reacted, when, and to which message (by its platform reference),
once per person and message. Not the emoji, not the message, and nothing at all for reactions
to other people's messages.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.types import InboundEvent, Person, ReactionAdded
from bot.services.chat import Reply
from bot.storage import participation


class ReactionListener:
    def wants(self, event: InboundEvent) -> bool:
        return isinstance(event, ReactionAdded) and event.on_bot_message and event.item is not None

    async def handle(
        self, session: AsyncSession, event: InboundEvent, person: Person, now: datetime
    ) -> list[Reply]:
        assert isinstance(event, ReactionAdded) and event.item is not None
        item = event.item
        await participation.record(
            session,
            person_id=person.id,
            kind="reacted",
            reference=f"{item.platform.value}:{item.channel}:{item.message_id}",
            at=now,
        )
        return []

    async def home_sections(
        self, session: AsyncSession, person: Person, now: datetime
    ) -> Sequence[str]:
        return ()
