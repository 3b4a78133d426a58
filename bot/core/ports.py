"""Ports: what the core needs from the outside world, each with real and fake implementations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from bot.core.llm import Classification, Draft, DraftRequest, TopicChoice
from bot.core.types import Address, MessageRef, OutgoingMessage, Platform, Profile


class ChatPlatform(Protocol):
    """A chat platform the bot speaks on: Slack, Teams or the console.

    Every method either returns a reference to what the platform accepted or raises
    `DeliveryError` saying whether a retry could help. `key` is the outbox idempotency key; a
    platform that can store it with the message (Slack message metadata) makes `find_delivered`
    possible, which is how an interrupted delivery is reconciled instead of repeated.
    """

    platform: Platform

    async def send_to_person(self, user: str, message: OutgoingMessage, *, key: str) -> MessageRef:
        """Open (or reuse) a one-to-one conversation with a platform user and post there."""
        ...

    async def post_to_channel(
        self, channel: str, message: OutgoingMessage, *, key: str
    ) -> MessageRef: ...

    async def reply_in_thread(
        self, channel: str, thread: str, message: OutgoingMessage, *, key: str
    ) -> MessageRef: ...

    async def send_ephemeral(
        self, address: Address, message: OutgoingMessage, *, key: str
    ) -> MessageRef:
        """Show a message to one person where they are; platforms without it reply normally."""
        ...

    async def publish_home(self, user: str, message: OutgoingMessage, *, key: str) -> MessageRef:
        """Refresh the person's home view (Slack App Home); others send a direct message."""
        ...

    async def update_message(self, ref: MessageRef, message: OutgoingMessage) -> MessageRef: ...

    async def upload_image(
        self, address: Address, image: bytes, *, filename: str, title: str, alt_text: str, key: str
    ) -> MessageRef: ...

    async def find_delivered(
        self, address: Address, key: str, since: datetime
    ) -> MessageRef | None:
        """Look for a message with this outbox key posted since `since`.

        Raises `NotSupported` where the platform offers no way to read back what it delivered.
        """
        ...


class PeopleDirectory(Protocol):
    """Looks up a platform user the organisation file does not name (their name, email, zone)."""

    async def profile(self, user_id: str) -> Profile | None: ...


class LanguageModel(Protocol):
    """An optional language model. Every method answers None when the model is unavailable,
    failed, gave an answer that did not pass our checks, or the day's token budget is spent;
    callers then fall back to templates and the keyword classifier. No method raises.

    Its output is never posted publicly and never triggers an action: it is text shown
    privately to one person, who edits it and posts it as themselves.
    """

    async def draft_reply(self, request: DraftRequest) -> Draft | None:
        """A suggested reply in the question's language that starts with the disclosure line."""
        ...

    async def classify(self, text: str, topics: Sequence[TopicChoice]) -> Classification | None:
        """Pick one of `topics` (or none) for a question the keyword classifier was unsure of."""
        ...

    async def narrate(self, facts: Mapping[str, Any], purpose: str) -> str | None:
        """A short narrative of `facts` (numbers and labels our code computed) for `purpose`."""
        ...

    async def embed(self, texts: Sequence[str]) -> list[list[float]] | None:
        """One vector per text, in order."""
        ...
