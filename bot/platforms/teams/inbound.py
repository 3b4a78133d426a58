"""Teams → core events, behind our own aiohttp handler for /api/messages.

We do not use `CloudAdapter.process()`: with botbuilder 4.17.1 it serialises invoke responses
twice and answers 500 (PLATFORM-FACTS §B.4). Authentication is done first and separately, so a
malformed bearer token is a 401, never an unhandled `jwt.DecodeError` (§B.5).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from html.parser import HTMLParser
from typing import Any

import jwt
from aiohttp import web
from botbuilder.core import InvokeResponse, TurnContext
from botbuilder.core.teams import TeamsInfo
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ActivityTypes
from botframework.connector.auth import AuthenticateRequestResult

from bot.config.settings import Settings
from bot.core.clock import Clock
from bot.core.types import (
    Actor,
    Address,
    ButtonPress,
    ChannelMessage,
    ForwardedMessage,
    InboundEvent,
    IncomingMessage,
    MemberJoined,
    MessageRef,
    Platform,
    Profile,
    ReactionAdded,
)
from bot.platforms.teams.cards import is_form_submit, parse_form_submit, parse_submit
from bot.services.chat import ChatService
from bot.storage import conversations, directory
from bot.storage.database import Database

log = logging.getLogger(__name__)
TEAMS = Platform.TEAMS
AUTH_TIMEOUT = 10.0
SEND_TO_DESK = "sendToDesk"
"""The message action's command id (teams/manifest.json composeExtensions)."""
SENT_TO_DESK = {"composeExtension": {"type": "message", "text": "Sent to the question desk."}}


class _AdapterConfig:
    """The attribute names ConfigurationBotFrameworkAuthentication reads."""

    def __init__(self, settings: Settings) -> None:
        self.APP_ID = settings.teams_app_id
        self.APP_PASSWORD = settings.teams_app_password
        self.APP_TYPE = settings.teams_app_type
        self.APP_TENANTID = settings.teams_tenant_id


def build_adapter(settings: Settings) -> CloudAdapter:
    if not settings.teams_auth_enabled:
        log.warning(
            "TEAMS_APP_ID is empty: Bot Framework authentication is OFF. Anyone who can reach "
            "/api/messages can talk to the bot. Use this for local testing only."
        )
    return CloudAdapter(ConfigurationBotFrameworkAuthentication(_AdapterConfig(settings)))


class TeamsInbound:
    def __init__(
        self,
        adapter: CloudAdapter,
        chat: ChatService,
        database: Database,
        clock: Clock,
        *,
        auth_enabled: bool = False,
    ) -> None:
        self.adapter = adapter
        self.chat = chat
        self.db = database
        self.clock = clock
        self.auth_enabled = auth_enabled

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        if request.content_type != "application/json":
            return _problem(415, f"unsupported content type {request.content_type!r}")
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            return _problem(400, f"invalid JSON: {exc}")
        if not isinstance(body, dict) or not isinstance(body.get("type"), str):
            return _problem(400, "expected an Activity object with a 'type'")
        try:
            activity = Activity().deserialize(body)
        except Exception as exc:  # msrest raises DeserializationError and friends
            return _problem(400, f"not a valid Activity: {exc}")
        if (
            not activity.service_url
            or activity.conversation is None
            or not activity.conversation.id
            or activity.from_property is None
            or not activity.from_property.id
        ):
            return _problem(400, "an Activity needs serviceUrl, conversation.id and from.id")
        try:
            auth = await self._authenticate(activity, request.headers.get("Authorization", ""))
        except (PermissionError, jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
            log.warning("Teams request refused: %s", type(exc).__name__)
            return _problem(401, "unauthorized")
        except Exception as exc:
            # Fetching signing keys failed or similar: not the caller's fault, not a crash.
            log.warning("could not authenticate a Teams request: %r", exc)
            return _problem(503, "could not verify the request now")
        response = await self.adapter.process_activity(auth, activity, self.on_turn)
        if isinstance(response, InvokeResponse):
            return web.json_response(response.body, status=response.status or 200)
        return web.Response(status=200)

    async def _authenticate(self, activity: Activity, header: str) -> AuthenticateRequestResult:
        """Check the caller's token.

        With authentication on, the SDK may fetch Microsoft's signing keys with a blocking HTTP
        call and no timeout; run it in a worker thread with a deadline so a slow identity
        service cannot freeze the event loop.
        """
        authenticate = self.adapter.bot_framework_authentication.authenticate_request
        if not self.auth_enabled:
            return await authenticate(activity, header)  # type: ignore[no-any-return]
        return await asyncio.wait_for(
            asyncio.to_thread(asyncio.run, authenticate(activity, header)), timeout=AUTH_TIMEOUT
        )

    async def on_turn(self, context: TurnContext) -> None:
        activity = context.activity
        await self._remember(activity)
        if activity.type == ActivityTypes.invoke:
            await self._on_invoke(context)
            return
        for event in self._translate(activity):
            await self.chat.handle(event, people=_Roster(context))

    async def _remember(self, activity: Activity) -> None:
        """Save the conversation reference of every inbound activity (proactive sends need it)."""
        if _from_someone_elses_chat(activity):
            return
        reference = TurnContext.get_conversation_reference(activity)
        conversation = activity.conversation
        tenant = getattr(conversation, "tenant_id", None) or _tenant(activity)
        async with self.db.transaction() as session:
            await conversations.save_reference(
                session,
                platform=TEAMS.value,
                conversation_id=conversation.id,
                conversation_type=conversation.conversation_type or "personal",
                user_id=activity.from_property.id,
                tenant_id=tenant,
                service_url=activity.service_url,
                reference=reference.serialize(),
                now=self.clock.now(),
            )
            if activity.type == ActivityTypes.installation_update:
                action = (activity.action or "").lower()
                user = activity.from_property.id
                if action.startswith("remove"):
                    await directory.mark_blocked(session, TEAMS.value, user, self.clock.now())
                elif action.startswith("add"):
                    await directory.clear_blocked(session, TEAMS.value, user)

    def _translate(self, activity: Activity) -> list[InboundEvent]:
        actor = _actor(activity)
        conversation = activity.conversation.id
        where = Address.to_channel(TEAMS, conversation)
        event_id = activity.id or f"{activity.type}:{conversation}:{activity.timestamp}"
        if activity.type == ActivityTypes.message:
            submitted = self._submitted(activity.value)
            if submitted is not None:
                message = (
                    MessageRef(TEAMS, conversation, activity.reply_to_id)
                    if activity.reply_to_id
                    else None
                )
                return [ButtonPress(event_id, actor, submitted[0], submitted[1], where, message)]
            text, mentioned = _strip_bot_mention(activity)
            personal = (activity.conversation.conversation_type or "personal") == "personal"
            if personal or mentioned:
                return [IncomingMessage(event_id, actor, text, where, mentions_bot=mentioned)]
            return [ChannelMessage(event_id, actor, text, where)]
        if activity.type == ActivityTypes.conversation_update:
            bot_id = activity.recipient.id if activity.recipient else None
            name = activity.conversation.name or _channel_name(activity) or "the team"
            return [
                MemberJoined(f"{event_id}:{member.id}", Actor(TEAMS, member.id, member.name), name)
                for member in activity.members_added or []
                if member.id != bot_id
            ]
        if activity.type == ActivityTypes.message_reaction:
            item = (
                MessageRef(TEAMS, conversation, activity.reply_to_id)
                if activity.reply_to_id
                else None
            )
            return [
                # Teams tells a bot only of reactions to the bot's own messages.
                ReactionAdded(f"{event_id}:{i}", actor, reaction.type or "", item, item is not None)
                for i, reaction in enumerate(activity.reactions_added or [])
            ]
        return []

    def _submitted(self, data: Any) -> tuple[str, str] | None:
        """(action, value) of one of our cards' submits; a form's value is its JSON answers."""
        submitted = parse_submit(data)
        if submitted is None or not is_form_submit(data):
            return submitted
        spec = self.chat.registry.find_form(submitted[0])
        field_ids = [f.id for f in spec.build().fields] if spec is not None else None
        return submitted[0], parse_form_submit(data, field_ids)

    async def _on_invoke(self, context: TurnContext) -> None:
        activity = context.activity
        if activity.name == "composeExtension/submitAction":
            await self._on_message_action(context)
            return
        if activity.name != "adaptiveCard/action":
            await _invoke_response(
                context, 400, {"code": "NotSupported", "message": f"invoke {activity.name!r}"}
            )
            return
        value = activity.value if isinstance(activity.value, dict) else {}
        action = value.get("action")
        if not isinstance(action, dict):
            await _invoke_response(context, 400, {"code": "BadRequest", "message": "no action"})
            return
        submitted = self._submitted(action.get("data")) or (_text(action.get("verb")), "")
        where = Address.to_channel(TEAMS, activity.conversation.id)
        await self.chat.handle(
            ButtonPress(
                activity.id or f"invoke:{activity.timestamp}",
                _actor(activity),
                submitted[0],
                submitted[1],
                where,
            )
        )
        await _invoke_response(
            context,
            200,
            {
                "statusCode": 200,
                "type": "application/vnd.microsoft.activity.message",
                "value": "Got it.",
            },
        )

    async def _on_message_action(self, context: TurnContext) -> None:
        """'Send to the question desk' on a message: the message becomes a question."""
        activity = context.activity
        value = activity.value if isinstance(activity.value, dict) else {}
        command = value.get("commandId")
        if command != SEND_TO_DESK:
            await _invoke_response(
                context, 400, {"code": "NotSupported", "message": f"command {command!r}"}
            )
            return
        forwarded = _forwarded(activity, value)
        if forwarded is None:
            await _invoke_response(context, 400, {"code": "BadRequest", "message": "no message"})
            return
        await self.chat.handle(forwarded, people=_Roster(context))
        # Teams shows this text where the action was taken, which closes the action.
        await _invoke_response(context, 200, SENT_TO_DESK)


def _forwarded(activity: Activity, value: dict[str, Any]) -> ForwardedMessage | None:
    payload = value.get("messagePayload")
    if not isinstance(payload, dict):
        return None
    body = _mapping(payload.get("body"))
    content = _text(body.get("content"))
    html = _text(body.get("contentType")).lower() == "html"
    text = html_to_text(content) if html else content.strip()
    note = _text(_mapping(value.get("data")).get("note"))
    if note.strip():
        text = f"{text}\n\nNote from {activity.from_property.name or 'a colleague'}: {note.strip()}"
    link = payload.get("linkToMessage")
    actor = _actor(activity)
    return ForwardedMessage(
        activity.id or f"invoke:{activity.timestamp}",
        actor,
        text,
        # Teams has no message only one person sees, and the action may come from a chat the
        # bot is not in: the answer goes to the person's own chat with the bot.
        Address.direct(TEAMS, actor.user_id),
        permalink=link if isinstance(link, str) and link.startswith("https://") else None,
    )


class _PlainText(HTMLParser):
    """Text of a Teams message body: block tags become line breaks, link targets are kept."""

    BREAKS = frozenset({"br", "p", "div", "li", "tr", "blockquote", "h1", "h2", "h3", "h4"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._link: tuple[str, int] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BREAKS:
            self.parts.append("\n")
        href = dict(attrs).get("href") or ""
        if tag == "a" and href.startswith(("https://", "http://")):
            self._link = (href, len(self.parts))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._link is not None:
            href, start = self._link
            # A link whose words are not its address would lose the address, which the desk
            # needs to recognise a brand page.
            if href not in "".join(self.parts[start:]):
                self.parts.append(f" {href}")
            self._link = None
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(content: str) -> str:
    parser = _PlainText()
    parser.feed(content)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.parts).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _Roster:
    """Teams sends new members without names; the roster of the turn's conversation has them."""

    def __init__(self, context: TurnContext) -> None:
        self.context = context

    async def profile(self, user_id: str) -> Profile | None:
        member = await TeamsInfo.get_member(self.context, user_id)
        email = getattr(member, "email", None) or getattr(member, "user_principal_name", None)
        return Profile(name=member.name or None, email=email)


async def _invoke_response(context: TurnContext, status: int, body: dict[str, Any]) -> None:
    await context.send_activity(
        Activity(type=ActivityTypes.invoke_response, value=InvokeResponse(status=status, body=body))
    )


def _from_someone_elses_chat(activity: Activity) -> bool:
    """A message action used in a one-to-one chat, perhaps between two colleagues.

    The bot cannot write there; saved as "personal", that chat would take the place of the
    person's own chat with the bot for every later direct message.
    """
    return (
        activity.type == ActivityTypes.invoke
        and (activity.name or "").startswith("composeExtension/")
        and (activity.conversation.conversation_type or "personal") == "personal"
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _actor(activity: Activity) -> Actor:
    sender = activity.from_property
    return Actor(TEAMS, sender.id, display_name=sender.name, tenant_id=_tenant(activity))


def _tenant(activity: Activity) -> str | None:
    data = activity.channel_data or {}
    tenant = data.get("tenant") if isinstance(data, dict) else None
    return tenant.get("id") if isinstance(tenant, dict) else None


def _channel_name(activity: Activity) -> str | None:
    data = activity.channel_data or {}
    channel = data.get("channel") if isinstance(data, dict) else None
    return channel.get("name") if isinstance(channel, dict) else None


def _strip_bot_mention(activity: Activity) -> tuple[str, bool]:
    """Remove '<at>Bot</at>' for mentions of this bot; say whether there was one."""
    text = activity.text or ""
    bot_id = activity.recipient.id if activity.recipient else None
    mentioned = False
    for entity in activity.entities or []:
        if entity.type != "mention":
            continue
        props = entity.additional_properties or {}
        if (props.get("mentioned") or {}).get("id") == bot_id:
            mentioned = True
            text = text.replace(props.get("text") or "", "")
    return " ".join(text.split()), mentioned


def _problem(status: int, detail: str) -> web.Response:
    return web.json_response({"error": detail}, status=status)
