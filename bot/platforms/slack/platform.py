"""Slack as a ChatPlatform, through slack_sdk's AsyncWebClient."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from bot.core.errors import DeliveryError, NotSupported
from bot.core.types import Address, AddressKind, MessageRef, OutgoingMessage, Platform, Profile
from bot.platforms.slack.blocks import plain_text, render_blocks

log = logging.getLogger(__name__)
T = TypeVar("T")

METADATA_EVENT = "evangelist_outbox"

# Errors that will not go away by trying again (https://docs.slack.dev/reference/methods/chat.postMessage).
PERMANENT = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "user_not_found",
    "users_not_found",
    "account_inactive",
    "user_disabled",
    "cannot_dm_bot",
    "invalid_blocks",
    "invalid_blocks_format",
    "msg_too_long",
    "no_text",
    "too_many_attachments",
    "invalid_auth",
    "not_authed",
    "token_revoked",
    "token_expired",
    "missing_scope",
    "restricted_action",
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
    "not_enabled",
    "view_too_large",
}
TRANSIENT = {
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "ratelimited",
}


class SlackPlatform:
    platform = Platform.SLACK

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def send_to_person(self, user: str, message: OutgoingMessage, *, key: str) -> MessageRef:
        # chat.postMessage accepts a user id as the channel and posts in the DM with them.
        return await self._post(user, message, key)

    async def post_to_channel(
        self, channel: str, message: OutgoingMessage, *, key: str
    ) -> MessageRef:
        return await self._post(channel, message, key)

    async def reply_in_thread(
        self, channel: str, thread: str, message: OutgoingMessage, *, key: str
    ) -> MessageRef:
        return await self._post(channel, message, key, thread_ts=thread)

    async def _post(
        self, channel: str, message: OutgoingMessage, key: str, **extra: Any
    ) -> MessageRef:
        response = await _call(
            lambda: self.client.chat_postMessage(
                channel=channel,
                text=plain_text(message),
                blocks=render_blocks(message),
                metadata={"event_type": METADATA_EVENT, "event_payload": {"key": key}},
                unfurl_links=False,
                **extra,
            )
        )
        return MessageRef(Platform.SLACK, str(response["channel"]), str(response["ts"]))

    async def send_ephemeral(
        self, address: Address, message: OutgoingMessage, *, key: str
    ) -> MessageRef:
        # A slash command's or button's response_url works in any conversation, even one the
        # bot is not in, for 30 minutes.
        if address.reply_token and await self._respond(address.reply_token, message):
            return MessageRef(Platform.SLACK, address.channel or "", f"ephemeral:{key}")
        if address.channel and address.user:
            try:
                response = await _call(
                    lambda: self.client.chat_postEphemeral(
                        channel=address.channel or "",
                        user=address.user or "",
                        text=plain_text(message),
                        blocks=render_blocks(message),
                    )
                )
                return MessageRef(
                    Platform.SLACK, address.channel, str(response.get("message_ts", ""))
                )
            except DeliveryError as error:
                if not error.permanent:
                    raise
        if not address.user:
            raise DeliveryError("ephemeral message without a user", permanent=True)
        return await self.send_to_person(address.user, message, key=key)

    async def _respond(self, url: str, message: OutgoingMessage) -> bool:
        webhook = AsyncWebhookClient(url, timeout=10)
        try:
            response = await webhook.send(
                text=plain_text(message), blocks=render_blocks(message), response_type="ephemeral"
            )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"response_url unreachable: {exc!r}", permanent=False) from exc
        if response.status_code == 429:
            retry = response.headers.get("Retry-After") if response.headers else None
            raise DeliveryError(
                "response_url rate limited",
                permanent=False,
                rate_limited=True,
                retry_after=_seconds(retry),
            )
        if response.status_code >= 500:
            raise DeliveryError(f"response_url answered {response.status_code}", permanent=False)
        if response.status_code != 200:
            log.info("response_url answered %s (expired?); falling back", response.status_code)
            return False
        return True

    async def publish_home(self, user: str, message: OutgoingMessage, *, key: str) -> MessageRef:
        view = {"type": "home", "blocks": render_blocks(message)}
        response = await _call(lambda: self.client.views_publish(user_id=user, view=view))
        view_info: dict[str, Any] = response.get("view") or {}
        return MessageRef(Platform.SLACK, f"home:{user}", str(view_info.get("id", "")))

    async def update_message(self, ref: MessageRef, message: OutgoingMessage) -> MessageRef:
        await _call(
            lambda: self.client.chat_update(
                channel=ref.channel,
                ts=ref.message_id,
                text=plain_text(message),
                blocks=render_blocks(message),
            )
        )
        return ref

    async def upload_image(
        self, address: Address, image: bytes, *, filename: str, title: str, alt_text: str, key: str
    ) -> MessageRef:
        channel = await self._channel_of(address)
        extra: dict[str, Any] = {"thread_ts": address.thread} if address.thread else {}
        response = await _call(
            lambda: self.client.files_upload_v2(
                content=image,
                filename=filename,
                title=title,
                alt_txt=alt_text,
                channel=channel,
                **extra,
            )
        )
        files = response.get("files") or [{}]
        return MessageRef(Platform.SLACK, channel, str(files[0].get("id", "")))

    async def _channel_of(self, address: Address) -> str:
        if address.channel:
            return address.channel
        if not address.user:
            raise DeliveryError("address has neither channel nor user", permanent=True)
        response = await _call(lambda: self.client.conversations_open(users=address.user or ""))
        return str(response["channel"]["id"])

    async def find_delivered(
        self, address: Address, key: str, since: datetime
    ) -> MessageRef | None:
        """Read the conversation back and look for our idempotency key in message metadata."""
        if address.kind is AddressKind.HOME:
            return None  # publishing a Home view again is harmless
        if address.kind is AddressKind.EPHEMERAL:
            raise NotSupported("ephemeral messages cannot be read back")
        channel = await self._channel_of(address)
        oldest = f"{since.timestamp():.6f}"
        if address.kind is AddressKind.THREAD and address.thread:
            thread = address.thread
            response = await _call(
                lambda: self.client.conversations_replies(
                    channel=channel, ts=thread, oldest=oldest, include_all_metadata=True, limit=200
                )
            )
        else:
            response = await _call(
                lambda: self.client.conversations_history(
                    channel=channel, oldest=oldest, include_all_metadata=True, limit=200
                )
            )
        for item in response.get("messages") or []:
            metadata = item.get("metadata") or {}
            if (
                metadata.get("event_type") == METADATA_EVENT
                and (metadata.get("event_payload") or {}).get("key") == key
            ):
                return MessageRef(Platform.SLACK, channel, str(item["ts"]))
        return None


class SlackPeople:
    """Newcomers' names, emails and time zones from users.info (scopes users:read(.email))."""

    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def profile(self, user_id: str) -> Profile | None:
        response = await _call(lambda: self.client.users_info(user=user_id))
        user = response.get("user") or {}
        details = user.get("profile") or {}
        name = details.get("real_name") or user.get("real_name") or details.get("display_name")
        return Profile(name=name or None, email=details.get("email"), timezone=user.get("tz"))


async def _call(request: Callable[[], Awaitable[T]]) -> T:
    """Run a Web API call and turn its failure into a DeliveryError that says what to do."""
    try:
        return await request()
    except SlackApiError as exc:
        raise _classify(exc) from exc
    except (TimeoutError, aiohttp.ClientError, SlackClientError) as exc:
        raise DeliveryError(
            f"Slack unreachable: {exc!r}", permanent=False, outcome_unknown=True
        ) from exc


def _classify(exc: SlackApiError) -> DeliveryError:
    response = exc.response
    status = getattr(response, "status_code", 200)
    error = str(response.get("error", "")) if response is not None else ""
    if status == 429 or error == "ratelimited":
        retry_after = _seconds(
            (response.headers or {}).get("Retry-After")
            or (response.headers or {}).get("retry-after")
        )
        return DeliveryError(
            "Slack rate limit", permanent=False, rate_limited=True, retry_after=retry_after or 1.0
        )
    if status >= 500 or error in TRANSIENT:
        return DeliveryError(f"Slack error {status} {error}".strip(), permanent=False)
    return DeliveryError(
        f"Slack refused: {error or status}", permanent=error in PERMANENT or bool(error)
    )


def _seconds(value: Any) -> float | None:
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None
