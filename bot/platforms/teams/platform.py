"""Teams as a ChatPlatform: proactive sends through stored conversation references."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import aiohttp
from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter
from botbuilder.schema import (
    Activity,
    ActivityTypes,
    ChannelAccount,
    ConversationParameters,
    ConversationReference,
    ResourceResponse,
)

from bot.config.settings import Settings
from bot.core.clock import Clock
from bot.core.errors import DeliveryError, NotSupported
from bot.core.types import Address, AddressKind, MessageRef, OutgoingMessage, Platform
from bot.platforms.markup import to_plain
from bot.platforms.teams.cards import IMAGE_CARD_MAX_BYTES, image_card, render_card
from bot.storage import conversations
from bot.storage.database import Database

log = logging.getLogger(__name__)
TEAMS = Platform.TEAMS
# Teams throttling answers worth another try later (Microsoft's rate-limit guidance).
TRANSIENT_STATUSES = {408, 412, 429, 500, 502, 503, 504}
BLOCKED_CODES = ("MessageWritesBlocked", "ConversationBlockedByUser", "BotDisabledByAdmin")


class TeamsPlatform:
    platform = TEAMS

    def __init__(
        self, adapter: CloudAdapter, database: Database, settings: Settings, clock: Clock
    ) -> None:
        self.adapter = adapter
        self.db = database
        self.settings = settings
        self.clock = clock
        self._opened: set[str] = set()
        """Users this process knows have a one-to-one conversation with the bot."""

    # -- the port -------------------------------------------------------------------------

    def calls_to_send(self, address: Address) -> int:
        """A first message to someone opens the conversation first: two calls the tenant's
        rate limit counts (the dispatcher reserves both). Unknown until tried once, after a
        restart: then the second slot may go unused."""
        if address.kind is AddressKind.DIRECT and address.user not in self._opened:
            return 2
        return 1

    async def send_to_person(self, user: str, message: OutgoingMessage, *, key: str) -> MessageRef:
        async with self.db.transaction() as session:
            row = await conversations.personal_reference(session, TEAMS.value, user)
            reference = dict(row.reference) if row else None
        if reference is not None:
            self._opened.add(user)
            return await self._send(reference, _activity(message))
        sent = await self._create_and_send(user, _activity(message))
        self._opened.add(user)
        return sent

    async def post_to_channel(
        self, channel: str, message: OutgoingMessage, *, key: str
    ) -> MessageRef:
        return await self._send(await self._reference(channel), _activity(message))

    async def reply_in_thread(
        self, channel: str, thread: str, message: OutgoingMessage, *, key: str
    ) -> MessageRef:
        # A Teams channel thread is its own conversation: "<channel>;messageid=<root>".
        conversation = channel if ";messageid=" in channel else f"{channel};messageid={thread}"
        reference = await self._reference(channel)
        reference["conversation"] = {**reference.get("conversation", {}), "id": conversation}
        return await self._send(reference, _activity(message))

    async def send_ephemeral(
        self, address: Address, message: OutgoingMessage, *, key: str
    ) -> MessageRef:
        # Teams has no ephemeral messages for bots; answer in the conversation, or in a DM.
        if address.channel:
            return await self.post_to_channel(address.channel, message, key=key)
        if address.user:
            return await self.send_to_person(address.user, message, key=key)
        raise DeliveryError("ephemeral message without a conversation or user", permanent=True)

    async def publish_home(self, user: str, message: OutgoingMessage, *, key: str) -> MessageRef:
        return await self.send_to_person(user, message, key=key)

    async def update_message(self, ref: MessageRef, message: OutgoingMessage) -> MessageRef:
        reference = await self._reference(ref.channel)
        activity = _activity(message)
        activity.id = ref.message_id

        async def update(context: TurnContext) -> ResourceResponse | None:
            return await context.update_activity(activity)  # type: ignore[no-any-return]

        await self._continue(reference, update)
        return ref

    async def upload_image(
        self, address: Address, image: bytes, *, filename: str, title: str, alt_text: str, key: str
    ) -> MessageRef:
        # Bots may send small images inline as data URIs; larger ones would need hosting.
        card = image_card(image, title=title, alt_text=alt_text)
        size = len(json.dumps(card))
        if size > IMAGE_CARD_MAX_BYTES:
            raise DeliveryError(
                f"image card of {size} bytes is over Teams' message limit", permanent=True
            )
        activity = MessageFactory.attachment(CardFactory.adaptive_card(card))
        activity.summary = to_plain(title)[:200]
        if address.channel:
            return await self._send(await self._reference(address.channel), activity)
        if address.user:
            return await self._create_or_reuse(address.user, activity)
        raise DeliveryError("image without a destination", permanent=True)

    async def find_delivered(
        self, address: Address, key: str, since: datetime
    ) -> MessageRef | None:
        raise NotSupported("the Bot Connector offers no read-back of sent activities to bots")

    # -- plumbing ---------------------------------------------------------------------------

    async def _create_or_reuse(self, user: str, activity: Activity) -> MessageRef:
        async with self.db.transaction() as session:
            row = await conversations.personal_reference(session, TEAMS.value, user)
            reference = dict(row.reference) if row else None
        if reference is not None:
            return await self._send(reference, activity)
        return await self._create_and_send(user, activity)

    async def _reference(self, conversation_id: str) -> dict[str, Any]:
        async with self.db.transaction() as session:
            row = await conversations.reference_for_conversation(
                session, TEAMS.value, conversation_id
            )
            if row is None and ";messageid=" in conversation_id:
                row = await conversations.reference_for_conversation(
                    session, TEAMS.value, conversation_id.split(";messageid=")[0]
                )
            if row is None:
                raise DeliveryError(
                    f"no conversation reference for {conversation_id}: "
                    "the bot must be added there first",
                    permanent=True,
                )
            return dict(row.reference)

    async def _send(self, reference: dict[str, Any], activity: Activity) -> MessageRef:
        async def send(context: TurnContext) -> ResourceResponse | None:
            return await context.send_activity(activity)  # type: ignore[no-any-return]

        resource = await self._continue(reference, send)
        conversation = (reference.get("conversation") or {}).get("id", "")
        return MessageRef(TEAMS, conversation, getattr(resource, "id", None) or "")

    async def _continue(
        self, reference: dict[str, Any], work: Callable[[TurnContext], Awaitable[Any]]
    ) -> Any:
        result: dict[str, Any] = {}

        async def callback(context: TurnContext) -> None:
            result["value"] = await work(context)

        await _call(
            lambda: self.adapter.continue_conversation(
                ConversationReference().deserialize(reference),
                callback,
                bot_app_id=self.settings.teams_app_id,
            )
        )
        return result.get("value")

    async def _create_and_send(self, user: str, activity: Activity) -> MessageRef:
        """Open a 1:1 conversation with someone who never wrote to the bot (Teams allows this
        when the app is installed for them or in a team they are in)."""
        async with self.db.transaction() as session:
            known = await conversations.any_reference(session, TEAMS.value)
            tenant = self.settings.teams_tenant_id or (known.tenant_id if known else None)
            service_url = (known.service_url if known else None) or self.settings.teams_service_url
            bot_id = (
                (known.reference.get("bot") or {}).get("id") if known else None
            ) or f"28:{self.settings.teams_app_id}"
        parameters = ConversationParameters(
            is_group=False,
            bot=ChannelAccount(id=bot_id),
            members=[ChannelAccount(id=user)],
            tenant_id=tenant,
            channel_data={"tenant": {"id": tenant}} if tenant else None,
        )
        result: dict[str, Any] = {}

        async def callback(context: TurnContext) -> None:
            reference = TurnContext.get_conversation_reference(context.activity)
            async with self.db.transaction() as session:
                await conversations.save_reference(
                    session,
                    platform=TEAMS.value,
                    conversation_id=reference.conversation.id,
                    conversation_type="personal",
                    user_id=user,
                    tenant_id=tenant,
                    service_url=service_url,
                    reference=reference.serialize(),
                    now=self.clock.now(),
                )
            result["conversation"] = reference.conversation.id
            result["resource"] = await context.send_activity(activity)

        await _call(
            lambda: self.adapter.create_conversation(
                self.settings.teams_app_id,
                callback,
                parameters,
                channel_id="msteams",
                service_url=service_url,
            )
        )
        return MessageRef(
            TEAMS, result.get("conversation", ""), getattr(result.get("resource"), "id", None) or ""
        )


def _activity(message: OutgoingMessage) -> Activity:
    if not (message.buttons or message.sections or message.context or message.form):
        return MessageFactory.text(to_plain(message.text))
    activity = MessageFactory.attachment(CardFactory.adaptive_card(render_card(message)))
    activity.summary = to_plain(message.text)[:200]
    activity.type = ActivityTypes.message
    return activity


async def _call(request: Callable[[], Awaitable[Any]]) -> Any:
    try:
        return await request()
    except DeliveryError:
        raise
    except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
        raise DeliveryError(
            f"Teams unreachable: {exc!r}", permanent=False, outcome_unknown=True
        ) from exc
    except Exception as exc:
        status, body, retry_after = _http_details(exc)
        if status is None:
            # msrest's ClientRequestError (connection dropped, timed out): the request may have
            # arrived, so the outcome is unknown.
            raise DeliveryError(
                f"Teams send failed: {exc!r}", permanent=False, outcome_unknown=True
            ) from exc
        if status == 403 and any(code in body for code in BLOCKED_CODES):
            raise DeliveryError("the person blocked the bot", permanent=True, blocked=True) from exc
        if status == 429:
            raise DeliveryError(
                "Teams rate limit",
                permanent=False,
                rate_limited=True,
                retry_after=retry_after or 1.0,
            ) from exc
        raise DeliveryError(
            f"Teams answered {status}: {body[:300]}", permanent=status not in TRANSIENT_STATUSES
        ) from exc


def _http_details(exc: BaseException) -> tuple[int | None, str, float | None]:
    """Status, body and Retry-After from the exceptions msrest and aiohttp raise."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(response, "status", None)
    if status is None:
        return None, "", None
    body = ""
    try:
        text: Any = getattr(response, "text", None)
        body = str(text()) if callable(text) else str(text or "")
    except Exception:
        body = str(exc)
    body = body or str(getattr(exc, "message", "")) or str(exc)
    headers = getattr(response, "headers", None) or {}
    try:
        raw: Any = headers.get("Retry-After")
        retry_after = float(raw) if raw else None
    except (TypeError, ValueError):
        retry_after = None
    return int(status), body, retry_after
