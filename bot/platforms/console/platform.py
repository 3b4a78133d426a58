"""The console as a ChatPlatform: messages land in an in-memory transcript that the REPL shows."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from bot.core.errors import DeliveryError
from bot.core.types import Address, AddressKind, MessageRef, OutgoingMessage, Platform


@dataclass
class ConsoleEntry:
    """One message as the console shows it."""

    message_id: str
    conversation: str
    """'dm:<handle>' for a direct conversation, else the channel name ('#general')."""
    message: OutgoingMessage
    key: str
    at: datetime | None = None
    visible_to: str | None = None
    """Only this handle sees it (ephemeral), or None for everyone in the conversation."""
    thread: str | None = None
    image_path: str | None = None
    updated: bool = False


class ConsolePlatform:
    platform = Platform.CONSOLE

    def __init__(self, media_dir: Path | None = None) -> None:
        self.entries: dict[str, ConsoleEntry] = {}
        self.by_key: dict[str, str] = {}
        self.media_dir = media_dir or Path("evangelist-media")
        self._ids = itertools.count(1)
        self._subscribers: list[Callable[[ConsoleEntry], None]] = []

    def subscribe(self, callback: Callable[[ConsoleEntry], None]) -> None:
        """Called for each new or updated entry (the REPL prints what its person may see)."""
        self._subscribers.append(callback)

    def _add(
        self, conversation: str, message: OutgoingMessage, key: str, **extra: object
    ) -> MessageRef:
        entry = ConsoleEntry(f"m{next(self._ids)}", conversation, message, key, **extra)  # type: ignore[arg-type]
        self.entries[entry.message_id] = entry
        self.by_key[key] = entry.message_id
        for callback in self._subscribers:
            callback(entry)
        return MessageRef(Platform.CONSOLE, conversation, entry.message_id)

    async def send_to_person(self, user: str, message: OutgoingMessage, *, key: str) -> MessageRef:
        return self._add(f"dm:{user}", message, key)

    async def post_to_channel(
        self, channel: str, message: OutgoingMessage, *, key: str
    ) -> MessageRef:
        return self._add(channel, message, key)

    async def reply_in_thread(
        self, channel: str, thread: str, message: OutgoingMessage, *, key: str
    ) -> MessageRef:
        return self._add(channel, message, key, thread=thread)

    async def send_ephemeral(
        self, address: Address, message: OutgoingMessage, *, key: str
    ) -> MessageRef:
        conversation = address.channel or f"dm:{address.user}"
        return self._add(conversation, message, key, visible_to=address.user)

    async def publish_home(self, user: str, message: OutgoingMessage, *, key: str) -> MessageRef:
        return self._add(f"home:{user}", message, key, visible_to=user)

    async def update_message(self, ref: MessageRef, message: OutgoingMessage) -> MessageRef:
        entry = self.entries.get(ref.message_id)
        if entry is None:
            raise DeliveryError(f"no console message {ref.message_id}", permanent=True)
        entry.message = message
        entry.updated = True
        for callback in self._subscribers:
            callback(entry)
        return ref

    async def upload_image(
        self, address: Address, image: bytes, *, filename: str, title: str, alt_text: str, key: str
    ) -> MessageRef:
        self.media_dir.mkdir(parents=True, exist_ok=True)
        safe = "".join(c for c in filename if c.isalnum() or c in "._-") or "image.png"
        path = self.media_dir / f"{next(self._ids)}-{safe}"
        path.write_bytes(image)
        conversation = (
            f"dm:{address.user}" if address.kind is AddressKind.DIRECT else (address.channel or "")
        )
        message = OutgoingMessage(text=f"{title} ({alt_text})")
        return self._add(conversation, message, key, image_path=str(path))

    async def find_delivered(
        self, address: Address, key: str, since: datetime
    ) -> MessageRef | None:
        message_id = self.by_key.get(key)
        if message_id is None:
            return None
        entry = self.entries[message_id]
        return MessageRef(Platform.CONSOLE, entry.conversation, message_id)
