"""Slack → core events, through Bolt's AsyncApp.

Listeners are thin: acknowledge, translate the payload into a core event, hand it to the chat
service. Bolt's request verification and self-event filtering stay on. Bolt has no event_id
de-duplication; the chat service does it in the same transaction as the event's effects, so a
retry (X-Slack-Retry-Num) is processed only if the first delivery never committed.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from aiohttp import ClientError, web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackClientError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.config.settings import Settings
from bot.core.types import (
    FORM_OPEN_ACTION,
    Actor,
    Address,
    AddressKind,
    ButtonPress,
    ChannelMessage,
    FormField,
    ForwardedMessage,
    HomeOpened,
    IncomingMessage,
    MemberJoined,
    MessageRef,
    Platform,
    ReactionAdded,
    StatusChanged,
)
from bot.platforms.slack.blocks import ACTION_PREFIX, parse_action
from bot.platforms.slack.modals import CALLBACK_PREFIX, form_id_of, read_state, render_modal
from bot.services.chat import ChatService

log = logging.getLogger(__name__)
SLACK = Platform.SLACK
_MENTION = re.compile(r"<@[UW][A-Z0-9]+(?:\|[^>]*)?>")
_LINK = re.compile(r"<(https?://[^|>\s]+)(?:\|([^>]*))?>")
SEND_TO_DESK = "ev_send_to_desk"
"""The message shortcut's callback_id (slack/manifest.yml)."""


def _without_bot(text: str, bot_user_id: str | None) -> str:
    """The text with the bot's own mentions taken out; other people's stay ("expertise @ana").

    Without the bot's id (not known yet), only a leading mention is taken to be the bot's.
    """
    if bot_user_id:
        return re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", "", text).strip()
    return (
        _MENTION.sub("", text, count=1).strip() if _MENTION.match(text.lstrip()) else text.strip()
    )


def web_client(settings: Settings) -> AsyncWebClient:
    client = AsyncWebClient(
        token=settings.slack_bot_token,
        base_url=settings.slack_api_base_url,
        timeout=15,
    )
    # A 429 is retried once after Retry-After here; anything beyond that goes back to the
    # outbox, which waits without holding a worker. The SDK's default connection-error retry is
    # left out on purpose: it re-sends a POST that may already have been posted. The outbox
    # reconciles such an unknown outcome with the conversation before sending again.
    client.retry_handlers = [AsyncRateLimitErrorRetryHandler(max_retry_count=1)]
    return client


class SlackInbound:
    """Owns the Bolt app and the aiohttp handler for /slack/events."""

    def __init__(self, settings: Settings, chat: ChatService, client: AsyncWebClient) -> None:
        self.settings = settings
        self.chat = chat
        self.client = client
        # In Socket Mode there may be no signing secret (and no HTTP endpoint to verify).
        self.verifier = (
            SignatureVerifier(settings.slack_signing_secret)
            if settings.slack_signing_secret
            else None
        )
        self.app = AsyncApp(
            client=client,
            signing_secret=settings.slack_signing_secret or "unused-in-socket-mode",
            request_verification_enabled=bool(settings.slack_signing_secret),
            ignoring_self_events_enabled=True,
            raise_error_for_unhandled_request=False,
        )
        self._register()

    # -- HTTP entry point ---------------------------------------------------------------------

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """POST /slack/events: size-capped, signature-checked, parsed, then handed to Bolt."""
        content_type = request.content_type
        if content_type not in ("application/json", "application/x-www-form-urlencoded"):
            return _problem(415, f"unsupported content type {content_type!r}")
        body_bytes = await request.read()  # aiohttp enforces client_max_size (413)
        try:
            body = body_bytes.decode("utf-8")
        except UnicodeDecodeError:
            return _problem(400, "body is not UTF-8")
        if not self._signed(body, request):
            log.warning("Slack request with a missing, bad or stale signature refused")
            return _problem(401, "invalid signature")
        problem = _parse_problem(content_type, body)
        if problem:
            log.warning("malformed Slack request: %s", problem)
            return _problem(400, problem)
        bolt_request = await to_bolt_request(request)
        response = await self.app.async_dispatch(bolt_request)
        if response.status == 404:
            # Bolt answers 404 for a payload no listener matched (an event type we did not
            # subscribe to handling). Slack would retry it and count it as a failure, so take it.
            log.info("Slack payload with no listener acknowledged")
            return web.json_response({"ok": True, "ignored": True})
        return await to_aiohttp_response(response)

    def _signed(self, body: str, request: web.Request) -> bool:
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        signature = request.headers.get("X-Slack-Signature", "")
        # The SDK's verifier calls int() on the timestamp: check its shape first.
        if self.verifier is None or not timestamp.isdigit() or not signature:
            return False
        return self.verifier.is_valid(body, timestamp, signature)

    # -- listeners ----------------------------------------------------------------------------

    def _register(self) -> None:
        app = self.app
        app.event("app_mention")(self._on_mention)
        app.event("message")(self._on_message)
        app.event("reaction_added")(self._on_reaction)
        app.event("member_joined_channel")(self._on_member_joined)
        app.event("app_home_opened")(self._on_home_opened)
        app.event("user_status_changed")(self._on_status_changed)
        app.command("/evangelist")(self._on_command)
        app.action(re.compile(f"^{re.escape(ACTION_PREFIX)}"))(self._on_action)
        app.message_shortcut(SEND_TO_DESK)(self._on_send_to_desk)
        app.view(re.compile(f"^{re.escape(CALLBACK_PREFIX)}"))(self._on_view_submission)

    async def _on_mention(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        where = Address.in_thread(SLACK, event["channel"], event.get("thread_ts") or event["ts"])
        text = _without_bot(event.get("text", ""), context.bot_user_id)
        await self.chat.handle(
            IncomingMessage(
                _event_id(body), _actor(event.get("user", "")), text, where, mentions_bot=True
            )
        )

    async def _on_message(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if event.get("subtype") or event.get("bot_id") or not event.get("user"):
            return  # edits, joins, other bots: not people talking
        text = event.get("text", "")
        if event.get("channel_type") == "im":
            where = Address.to_channel(SLACK, event["channel"])
            await self.chat.handle(
                IncomingMessage(
                    _event_id(body),
                    _actor(event["user"]),
                    _without_bot(text, context.bot_user_id),
                    where,
                )
            )
            return
        if context.bot_user_id and f"<@{context.bot_user_id}" in text:
            return  # the app_mention event carries this one
        where = Address(
            SLACK, AddressKind.CHANNEL, channel=event["channel"], thread=event.get("thread_ts")
        )
        message = ChannelMessage(_event_id(body), _actor(event["user"]), _plain_links(text), where)
        await self.chat.handle(message)

    async def _on_reaction(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        item = event.get("item") or {}
        ref = (
            MessageRef(SLACK, item["channel"], item["ts"])
            if item.get("type") == "message"
            else None
        )
        # `item_user` is the author of the message reacted to: ours when it is the bot.
        ours = bool(context.bot_user_id) and event.get("item_user") == context.bot_user_id
        await self.chat.handle(
            ReactionAdded(
                _event_id(body),
                _actor(event.get("user", "")),
                event.get("reaction", ""),
                ref,
                ours,
            )
        )

    async def _on_member_joined(
        self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if event.get("user") == context.bot_user_id:
            return  # the bot itself was added to a channel
        # "<#C123>" renders as the channel's name in Slack.
        channel = f"<#{event.get('channel', '')}>"
        await self.chat.handle(
            MemberJoined(_event_id(body), _actor(event.get("user", "")), channel)
        )

    async def _on_home_opened(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        if event.get("tab") != "home":
            return
        await self.chat.handle(HomeOpened(_event_id(body), _actor(event.get("user", ""))))

    async def _on_status_changed(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        user: dict[str, Any] = event["user"] if isinstance(event.get("user"), dict) else {}
        profile: dict[str, Any] = user["profile"] if isinstance(user.get("profile"), dict) else {}
        if not isinstance(user.get("id"), str) or not user["id"]:
            return
        away, until = away_from_status(profile)
        await self.chat.handle(StatusChanged(_event_id(body), _actor(user["id"]), away, until))

    async def _on_command(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        await ack()
        spec = self.chat.registry.form_for_command(body.get("text", ""))
        if spec is not None and await self._open_form(
            body.get("trigger_id"), body.get("user_id", ""), spec.form_id
        ):
            return
        where = Address(
            SLACK,
            AddressKind.EPHEMERAL,
            channel=body.get("channel_id"),
            user=body.get("user_id"),
            reply_token=body.get("response_url"),
        )
        # Slash commands carry no event id; trigger_id is unique per invocation.
        event_id = f"command:{body.get('trigger_id') or body.get('user_id')}"
        await self.chat.handle(
            IncomingMessage(
                event_id,
                _actor(body.get("user_id", "")),
                body.get("text", ""),
                where,
                is_command=True,
            )
        )

    async def _on_action(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        user = (body.get("user") or {}).get("id", "")
        channel = (body.get("channel") or {}).get("id")
        container = body.get("container") or {}
        name, value = parse_action(action.get("action_id", ""), action.get("value"))
        if name == FORM_OPEN_ACTION and await self._open_form(body.get("trigger_id"), user, value):
            return
        if body.get("response_url") or (channel and body.get("response_urls")):
            where = Address(
                SLACK,
                AddressKind.EPHEMERAL,
                channel=channel,
                user=user,
                reply_token=body.get("response_url"),
            )
        else:
            where = Address.direct(SLACK, user)  # e.g. a button on the Home tab
        message = (
            MessageRef(SLACK, channel, container["message_ts"])
            if channel and container.get("message_ts")
            else None
        )
        event_id = f"action:{user}:{action.get('action_ts') or body.get('trigger_id')}"
        await self.chat.handle(ButtonPress(event_id, _actor(user), name, value, where, message))

    async def _open_form(self, trigger_id: str | None, user: str, form_id: str) -> bool:
        """Open a registered form as a modal; False sends the person down the chat path.

        That path answers with the form behind a button, or with the usual polite refusal for
        someone without the permission. views.open must come within 3 s of the trigger
        (PLATFORM-FACTS §A.2), so this runs right after the ack.
        """
        spec = self.chat.registry.find_form(form_id)
        if spec is None or not trigger_id or not await self.chat.may(_actor(user), spec.permission):
            return False
        try:
            await self.client.views_open(trigger_id=trigger_id, view=render_modal(spec.build()))
        except (SlackClientError, ClientError, TimeoutError) as exc:
            # e.g. expired_trigger_id: the chat path still answers, with the form's button.
            log.warning("could not open the %s form for %s: %r", form_id, user, exc)
            return False
        except Exception:
            log.exception("could not open the %s form for %s", form_id, user)
            return False
        return True

    async def _on_view_submission(
        self, ack: AsyncAck, body: dict[str, Any], view: dict[str, Any]
    ) -> None:
        """A submitted modal: errors go back into the modal; good answers become a ButtonPress.

        The confirmation arrives as a direct message: a modal has no conversation to answer in.
        """
        user = (body.get("user") or {}).get("id", "")
        form_id = form_id_of(str(view.get("callback_id") or ""))
        spec = self.chat.registry.find_form(form_id)
        answers: dict[str, str] = {}
        if spec is not None:
            form = spec.build()
            answers = read_state(form, (view.get("state") or {}).get("values"))
            errors = spec.validate(answers)
            if errors:
                await ack(response_action="errors", errors=_modal_errors(form.fields, errors))
                return
        await ack()
        event_id = f"view:{user}:{view.get('id') or body.get('trigger_id')}"
        where = Address.direct(SLACK, user)
        await self.chat.handle(
            ButtonPress(event_id, _actor(user), form_id, json.dumps(answers), where)
        )

    async def _on_send_to_desk(self, ack: AsyncAck, body: dict[str, Any]) -> None:
        """The "Send to question desk" message shortcut: the message becomes a question."""
        await ack()
        user = (body.get("user") or {}).get("id", "")
        message = body.get("message") or {}
        # Only the person who used the shortcut sees the answer, through the response_url.
        where = Address(
            SLACK,
            AddressKind.EPHEMERAL,
            channel=(body.get("channel") or {}).get("id"),
            user=user,
            reply_token=body.get("response_url"),
        )
        event_id = f"shortcut:{user}:{body.get('action_ts') or body.get('trigger_id')}"
        text = _plain_links(str(message.get("text") or ""))
        await self.chat.handle(ForwardedMessage(event_id, _actor(user), text, where))


def _modal_errors(fields: Sequence[FormField], errors: dict[str, str]) -> dict[str, str]:
    """Errors keyed by input block; one about no particular field goes on the first."""
    ids = {f.id for f in fields}
    keyed: dict[str, str] = {}
    for field_id, message in errors.items():
        block = field_id if field_id in ids or not fields else fields[0].id
        keyed[block] = f"{keyed[block]} {message}" if block in keyed else message
    return keyed


AWAY_EMOJI = frozenset(
    {
        ":palm_tree:",
        ":desert_island:",
        ":beach_with_umbrella:",
        ":airplane:",
        ":face_with_thermometer:",
    }
)
AWAY_WORDS = re.compile(
    r"\b(out of (the )?office|ooo|on (holiday|vacation|leave|pto)|vacationing|annual leave|"
    r"parental leave|sick( leave)?|off sick|away until)\b",
    re.IGNORECASE,
)


def away_from_status(profile: dict[str, Any]) -> tuple[bool, datetime | None]:
    """Whether a Slack status says out of office (Slack's own "Vacationing" and "Out sick"
    presets, or words to that effect), and until when if it expires."""
    text = str(profile.get("status_text") or "")
    emoji = str(profile.get("status_emoji") or "")
    away = emoji in AWAY_EMOJI or AWAY_WORDS.search(text) is not None
    expiration = profile.get("status_expiration")
    until = None
    if away and isinstance(expiration, int | float) and expiration > 0:
        until = datetime.fromtimestamp(expiration, UTC)
    return away, until


def _actor(user: str) -> Actor:
    return Actor(SLACK, user)


def _plain_links(text: str) -> str:
    """Slack sends links as `<url>` or `<url|label>`; the desk looks for bare URLs.

    Other entities stay escaped: the desk's sanitiser unescapes text exactly once.
    """

    def unwrap(match: re.Match[str]) -> str:
        url, label = match.group(1).replace("&amp;", "&"), match.group(2)
        return f"{label} {url}" if label and label not in match.group(1) else url

    return _LINK.sub(unwrap, text)


def _event_id(body: dict[str, Any]) -> str:
    """The envelope's event_id is stable across Slack's retries; fall back to the event's ts."""
    event = body.get("event") or {}
    return str(
        body.get("event_id") or f"{event.get('type')}:{event.get('event_ts') or event.get('ts')}"
    )


def _parse_problem(content_type: str, body: str) -> str | None:
    if content_type == "application/json":
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError as exc:
            return f"invalid JSON ({exc.msg} at position {exc.pos})"
        except RecursionError:
            return "JSON nested too deeply"
        if not isinstance(parsed, dict) or "type" not in parsed:
            return "expected a JSON object with a 'type'"
        if parsed["type"] == "event_callback" and not isinstance(parsed.get("event"), dict):
            return "event_callback without an event object"
        return None
    form = parse_qs(body, keep_blank_values=True)
    if "payload" in form:
        try:
            payload = json.loads(form["payload"][0])
        except json.JSONDecodeError as exc:
            return f"payload is not JSON ({exc.msg})"
        except RecursionError:
            return "payload nested too deeply"
        if not isinstance(payload, dict) or "type" not in payload:
            return "payload must be a JSON object with a 'type'"
        return None
    if "command" not in form:
        return "form body is neither a slash command nor an interaction payload"
    return None


def _problem(status: int, detail: str) -> web.Response:
    return web.json_response({"ok": False, "error": detail}, status=status)
