"""Teams end to end: Bot Framework activities POSTed to /api/messages as Teams sends them.

The real aiohttp app runs on loopback with Teams authentication off (empty TEAMS_APP_ID), except
in the auth tests, which build their own app. Every activity carries ``serviceUrl`` =
``fake_connector.service_url``, so the bot's replies (outbox → ``continue_conversation`` →
``send_activity``, which the SDK posts as ``reply_to_activity``) land at the fake connector.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import socket
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from bot.app import build
from bot.config.organisation import OrganisationConfig
from bot.core.clock import FrozenClock, as_utc
from bot.core.types import Address, OutgoingMessage, Platform
from bot.delivery import outbox
from bot.storage.models import (
    ConversationReferenceRow,
    IdentityRow,
    OutboxRow,
    ParticipationRow,
)
from tests.conftest import RunningBot, make_settings, serving
from tests.fakes.bot_connector import FakeBotConnector

T = TypeVar("T")

CARD = "application/vnd.microsoft.card.adaptive"
BOT_ID = "28:bot-id"
BOT_NAME = "Evangelist"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd0110001"
USER_X = "29:1xavier-teams-id"
X_NAME = "Xavier Quinn"
X_CHAT = "a:1personal-chat-with-xavier"
TEAM_ID = "19:team-admissions@thread.tacv2"
GENERAL = "19:general-admissions@thread.tacv2"
THREAD = "19:abc@thread.tacv2;messageid=111"
WHOAMI = "This is how I know you"
AUTH_APP_ID = "00000000-0000-0000-0000-000000000001"

_activity_ids = itertools.count(1_772_445_600_000)


# -- building activities the way Teams sends them ----------------------------------------------


def activity(
    fake: FakeBotConnector,
    *,
    type: str = "message",
    text: str | None = None,
    activity_id: str | None = None,
    conversation_id: str = X_CHAT,
    conversation_type: str = "personal",
    user: str = USER_X,
    user_name: str = X_NAME,
    channel_data: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A Bot Framework Activity in Teams' camelCase wire format."""
    body: dict[str, Any] = {
        "type": type,
        "id": activity_id or str(next(_activity_ids)),
        "timestamp": "2026-03-02T10:00:00.1234567Z",
        "localTimestamp": "2026-03-02T10:00:00.1234567+00:00",
        "serviceUrl": fake.service_url,
        "channelId": "msteams",
        "from": {"id": user, "name": user_name, "aadObjectId": f"aad-{user[3:]}"},
        "conversation": {
            "id": conversation_id,
            "conversationType": conversation_type,
            "tenantId": TENANT,
        },
        "recipient": {"id": BOT_ID, "name": BOT_NAME},
        "channelData": channel_data or {"tenant": {"id": TENANT}},
        "locale": "en-GB",
    }
    if conversation_type != "personal":
        body["conversation"]["isGroup"] = True
    if text is not None:
        body["text"] = text
        body["textFormat"] = "plain"
    body.update(extra)
    return body


def channel_data(channel: str = GENERAL, **extra: Any) -> dict[str, Any]:
    return {
        "teamsChannelId": channel,
        "teamsTeamId": TEAM_ID,
        "channel": {"id": channel},
        "team": {"id": TEAM_ID, "name": "Admissions"},
        "tenant": {"id": TENANT},
        **extra,
    }


def bot_mention() -> dict[str, Any]:
    return {
        "type": "mention",
        "mentioned": {"id": BOT_ID, "name": BOT_NAME},
        "text": f"<at>{BOT_NAME}</at>",
    }


def channel_message(fake: FakeBotConnector, text: str, *, mention: bool) -> dict[str, Any]:
    return activity(
        fake,
        text=text,
        conversation_id=THREAD,
        conversation_type="channel",
        channel_data=channel_data("19:abc@thread.tacv2"),
        entities=[bot_mention()] if mention else [],
    )


def members_added(
    fake: FakeBotConnector, *members: dict[str, Any], added_by: str = "29:1team-owner"
) -> dict[str, Any]:
    """conversationUpdate for people (or the bot) added to a team; Teams sends no names."""
    return activity(
        fake,
        type="conversationUpdate",
        conversation_id=GENERAL,
        conversation_type="channel",
        user=added_by,
        user_name="Team Owner",
        channel_data=channel_data(eventType="teamMemberAdded"),
        membersAdded=list(members),
    )


# -- talking to the bot ------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    content_type: str
    body: Any = field(default=None)


async def post(
    bot: RunningBot,
    body: Any = None,
    *,
    raw: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    data = raw if raw is not None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json; charset=utf-8", **(headers or {})}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{bot.url}/api/messages", data=data, headers=sent) as response,
    ):
        text = await response.text()
        decoded: Any = text
        if response.content_type == "application/json" and text:
            decoded = json.loads(text)
        return Answer(response.status, response.content_type, decoded)


async def say(bot: RunningBot, fake: FakeBotConnector, text: str, **fields: Any) -> None:
    answer = await post(bot, activity(fake, text=text, **fields))
    assert answer.status == 200, answer


def card_of(sent: dict[str, Any]) -> dict[str, Any]:
    (attachment,) = sent["attachments"]
    assert attachment["contentType"] == CARD
    content: dict[str, Any] = attachment["content"]
    return content


def words(sent: dict[str, Any]) -> str:
    """Everything a person can read in an activity the bot sent: text, summary, card text."""
    parts = [sent.get("text") or "", sent.get("summary") or ""]
    for attachment in sent.get("attachments") or []:
        content = attachment.get("content") or {}
        parts.extend(block.get("text", "") for block in content.get("body") or [])
    return "\n".join(parts)


async def eventually(probe: Callable[[], Awaitable[T | None]], what: str, within: float = 5.0) -> T:
    """Poll ``probe`` until it returns something truthy (database state has no event to await)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await probe()
        if result:
            return result
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


async def outbox_rows(bot: RunningBot) -> list[OutboxRow]:
    async with bot.bot.db.transaction() as session:
        return list((await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all())


async def identity(bot: RunningBot, external_id: str = USER_X) -> IdentityRow | None:
    async with bot.bot.db.transaction() as session:
        row: IdentityRow | None = await session.scalar(
            select(IdentityRow).where(
                IdentityRow.platform == "teams", IdentityRow.external_id == external_id
            )
        )
        return row


async def enqueue_dm(bot: RunningBot, user: str, text: str, *, key: str) -> None:
    async with bot.bot.db.transaction() as session:
        await outbox.enqueue(
            session,
            key=key,
            address=Address.direct(Platform.TEAMS, user),
            message=OutgoingMessage(text=text),
            now=bot.bot.clock.now(),
        )
    bot.bot.dispatcher.poke()


async def metric(bot: RunningBot, name: str, **labels: str) -> float | None:
    """A sample from /metrics (labels matched by name, in any order); None when absent."""
    async with aiohttp.ClientSession() as http, http.get(f"{bot.url}/metrics") as response:
        assert response.status == 200
        exposition = await response.text()
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def sends(fake: FakeBotConnector) -> list[str]:
    """Names of the write calls the bot made, in order."""
    writes = ("create_conversation", "send_to_conversation", "reply_to_activity")
    return [call.name for call in fake.calls if call.name in writes]


# -- 1. a personal "help" ----------------------------------------------------------------------


async def test_personal_help_answers_with_a_card_and_saves_the_reference(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    await say(teams_bot, fake_connector, "help")

    (reply,) = await fake_connector.wait_for_activities(X_CHAT)
    (call,) = fake_connector.calls_to("reply_to_activity")
    assert call.params["conversation_id"] == X_CHAT
    assert call.authorization is None  # auth is off: no token fetched, none sent
    assert reply["type"] == "message"
    assert reply["from"]["id"] == BOT_ID
    assert reply["recipient"]["id"] == USER_X
    card = card_of(reply)
    assert card["type"] == "AdaptiveCard"
    assert "Hi Xavier" in words(reply)
    assert card["actions"], "the help card offers buttons"
    assert all(action["type"] == "Action.Submit" for action in card["actions"])
    assert [a["data"]["ev_action"] for a in card["actions"]] == ["whoami"]
    assert card["actions"][0]["data"] == {"ev_action": "whoami", "ev_value": ""}

    async with teams_bot.bot.db.transaction() as session:
        (row,) = (await session.scalars(select(ConversationReferenceRow))).all()
    assert row.platform == "teams"
    assert row.conversation_id == X_CHAT
    assert row.conversation_type == "personal"
    assert row.user_id == USER_X
    assert row.tenant_id == TENANT
    assert row.service_url == fake_connector.service_url
    assert row.reference["serviceUrl"] == fake_connector.service_url
    assert row.reference["bot"]["id"] == BOT_ID
    assert row.reference["user"]["id"] == USER_X


# -- 2. Action.Submit --------------------------------------------------------------------------


async def test_action_submit_runs_the_button_action(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    await say(teams_bot, fake_connector, "help")
    (help_card,) = await fake_connector.wait_for_activities(X_CHAT)

    # What Teams posts when the "How do you know me?" button is pressed: no text, the data.
    submit = activity(
        fake_connector,
        replyToId=help_card["id"],
        value={"ev_action": "whoami", "ev_value": ""},
    )
    assert (await post(teams_bot, submit)).status == 200

    _, answer = await fake_connector.wait_for_activities(X_CHAT, count=2)
    assert WHOAMI in words(answer)
    assert f"Teams user: `{USER_X}`" in words(answer)


# -- 3. channels: only mentions are answered ---------------------------------------------------


async def test_channel_answers_mentions_only(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    unmentioned = channel_message(fake_connector, "help", mention=False)
    assert (await post(teams_bot, unmentioned)).status == 200
    someone_else = channel_message(fake_connector, "<at>Grace</at> help", mention=False)
    someone_else["entities"] = [
        {
            "type": "mention",
            "mentioned": {"id": "29:1grace", "name": "Grace"},
            "text": "<at>Grace</at>",
        }
    ]
    assert (await post(teams_bot, someone_else)).status == 200
    mentioned = channel_message(fake_connector, f"<at>{BOT_NAME}</at> help", mention=True)
    assert (await post(teams_bot, mentioned)).status == 200

    (reply,) = await fake_connector.wait_for_activities(THREAD)
    (call,) = fake_connector.calls_to("reply_to_activity")
    assert call.params["conversation_id"] == THREAD
    assert "Here is what Evangelist can do" in words(reply), "the mention is stripped"
    # Only the mention produced an outbox row (each inbound handler commits before answering).
    assert len(await outbox_rows(teams_bot)) == 1
    await teams_bot.drain()
    assert len(fake_connector.activities()) == 1


async def test_group_chat_answers_mentions_only(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    group = "19:meeting-or-group-chat@thread.v2"
    quiet = activity(
        fake_connector, text="whoami", conversation_id=group, conversation_type="groupChat"
    )
    assert (await post(teams_bot, quiet)).status == 200
    asked = activity(
        fake_connector,
        text=f"<at>{BOT_NAME}</at> whoami",
        conversation_id=group,
        conversation_type="groupChat",
        entities=[bot_mention()],
    )
    assert (await post(teams_bot, asked)).status == 200

    (answer,) = await fake_connector.wait_for_activities(group)
    assert WHOAMI in words(answer)
    assert len(await outbox_rows(teams_bot)) == 1


# -- 4. welcome DMs ----------------------------------------------------------------------------


async def test_member_added_to_a_team_gets_one_proactive_welcome(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    newcomer = {"id": "29:1newcomer", "aadObjectId": "aad-newcomer"}
    assert (await post(teams_bot, members_added(fake_connector, newcomer))).status == 200

    (create,) = await fake_connector.wait_for("create_conversation")
    assert create.body["isGroup"] is False
    assert create.body["members"] == [{"id": "29:1newcomer"}]
    assert create.body["bot"]["id"] == BOT_ID
    assert create.body["tenantID"] == TENANT
    assert create.body["channelData"] == {"tenant": {"id": TENANT}}
    (dm,) = list(fake_connector.conversations)
    (welcome,) = await fake_connector.wait_for_activities(dm)
    assert sends(fake_connector) == ["create_conversation", "reply_to_activity"]
    assert "Welcome" in words(welcome)
    assert [a["data"]["ev_action"] for a in card_of(welcome)["actions"]] == ["help", "dismiss"]
    assert {a["type"] for a in card_of(welcome)["actions"]} == {"Action.Submit"}

    # Added again (say, to another team), and the bot itself added: nothing more to send.
    assert (await post(teams_bot, members_added(fake_connector, newcomer))).status == 200
    only_bot = members_added(fake_connector, {"id": BOT_ID})
    assert (await post(teams_bot, only_bot)).status == 200
    assert len(await outbox_rows(teams_bot)) == 1
    await teams_bot.drain()
    assert sends(fake_connector) == ["create_conversation", "reply_to_activity"]

    # The conversation created for the welcome is reused for later direct messages.
    await enqueue_dm(teams_bot, "29:1newcomer", "A question for you", key="test:later")
    _, later = await fake_connector.wait_for_activities(dm, count=2)
    assert later["text"] == "A question for you"
    assert len(fake_connector.calls_to("create_conversation")) == 1


async def test_personal_install_welcomes_in_the_same_chat(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    """Installing the app for yourself: membersAdded has you and the bot, in your own chat."""
    install = activity(
        fake_connector,
        type="conversationUpdate",
        membersAdded=[{"id": USER_X, "aadObjectId": "aad-x"}, {"id": BOT_ID}],
    )
    assert (await post(teams_bot, install)).status == 200

    (welcome,) = await fake_connector.wait_for_activities(X_CHAT)
    assert "Welcome" in words(welcome)
    assert fake_connector.calls_to("create_conversation") == []


async def test_welcome_does_not_call_people_by_their_teams_id(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    fake_connector.members[GENERAL] = [
        {"id": "29:1newcomer", "name": "Nia Newcomer", "aadObjectId": "aad-newcomer"}
    ]
    newcomer = {"id": "29:1newcomer", "aadObjectId": "aad-newcomer"}
    assert (await post(teams_bot, members_added(fake_connector, newcomer))).status == 200
    await fake_connector.wait_for("create_conversation")
    (dm,) = list(fake_connector.conversations)
    (welcome,) = await fake_connector.wait_for_activities(dm)
    assert "29:1newcomer" not in words(welcome)


# -- 5. proactive 1:1 through a stored reference -----------------------------------------------


async def test_direct_message_uses_the_stored_personal_reference(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    await say(teams_bot, fake_connector, "hello")
    await fake_connector.wait_for_activities(X_CHAT)

    await enqueue_dm(teams_bot, USER_X, "Your weekly nudge", key="test:nudge")

    _, nudge = await fake_connector.wait_for_activities(X_CHAT, count=2)
    assert nudge["text"] == "Your weekly nudge"
    assert nudge["recipient"]["id"] == USER_X
    assert fake_connector.calls_to("create_conversation") == []
    assert sends(fake_connector) == ["reply_to_activity", "reply_to_activity"]
    rows = await eventually(
        lambda: _rows_with_status(teams_bot, "sent", 2), "both outbox rows to be sent"
    )
    assert rows[-1].idempotency_key == "test:nudge"
    assert rows[-1].result == {"platform": "teams", "channel": X_CHAT, "message_id": nudge["id"]}


async def _rows_with_status(bot: RunningBot, status: str, count: int) -> list[OutboxRow] | None:
    rows = await outbox_rows(bot)
    return rows if sum(r.status == status for r in rows) >= count else None


# -- 6. a person who blocked the bot -----------------------------------------------------------


@pytest.mark.parametrize("style", ["MessageWritesBlocked", "ConversationBlockedByUser"])
async def test_blocked_person_fails_for_good_and_is_marked(
    teams_bot: RunningBot, fake_connector: FakeBotConnector, clock: FrozenClock, style: Any
) -> None:
    await say(teams_bot, fake_connector, "hello")
    await fake_connector.wait_for_activities(X_CHAT)
    fake_connector.block_user(X_CHAT, style=style)

    await enqueue_dm(teams_bot, USER_X, "Are you there?", key="test:blocked")

    async def failed_row() -> OutboxRow | None:
        rows = [r for r in await outbox_rows(teams_bot) if r.idempotency_key == "test:blocked"]
        return rows[0] if rows and rows[0].status == "failed" else None

    row = await eventually(failed_row, "the outbox row to fail")
    assert "blocked" in (row.last_error or "")
    (refused,) = fake_connector.calls_to("reply_to_activity")[1:]
    assert refused.params["conversation_id"] == X_CHAT
    assert len(fake_connector.activities(X_CHAT)) == 1  # only the first answer
    person = await identity(teams_bot)
    assert person is not None
    assert person.blocked_at is not None
    assert as_utc(person.blocked_at) == clock.now()
    errors = await metric(
        teams_bot, "evangelist_outbox_dispatch_errors_total", kind="permanent", platform="teams"
    )
    assert errors == 1.0

    # Writing to the bot again means they unblocked it.
    fake_connector.unblock_user(X_CHAT)
    await say(teams_bot, fake_connector, "hello again")
    await fake_connector.wait_for_activities(X_CHAT, count=2)
    person = await identity(teams_bot)
    assert person is not None and person.blocked_at is None


# -- 7. throttling -----------------------------------------------------------------------------


async def test_throttled_reply_is_sent_once_after_retry_after(
    teams_bot: RunningBot, fake_connector: FakeBotConnector, clock: FrozenClock
) -> None:
    fake_connector.fail_next("reply_to_activity", status=429)  # Retry-After: 1
    started = clock.now()

    await say(teams_bot, fake_connector, "help")

    await fake_connector.wait_for("reply_to_activity")

    async def waiting_row() -> OutboxRow | None:
        (row,) = await outbox_rows(teams_bot)
        return row if row.status == "pending" and row.last_error else None

    row = await eventually(waiting_row, "the throttled row to be put back")
    assert as_utc(row.next_attempt_at) == started + timedelta(seconds=1)
    assert "rate limit" in (row.last_error or "")
    assert len(fake_connector.calls_to("reply_to_activity")) == 1, "no retry before Retry-After"

    clock.advance(seconds=1)
    teams_bot.bot.dispatcher.poke()

    (reply,) = await fake_connector.wait_for_activities(X_CHAT)
    assert "Here is what Evangelist can do" in words(reply)
    (row,) = await eventually(
        lambda: _rows_with_status(teams_bot, "sent", 1), "the row to be recorded as sent"
    )
    await teams_bot.drain()
    assert [c.failed for c in fake_connector.calls_to("reply_to_activity")] == [True, False]
    assert len(fake_connector.activities()) == 1
    assert row.attempts == 1, "a rate limit is not the message's fault"
    throttled = await metric(
        teams_bot,
        "evangelist_outbox_dispatch_errors_total",
        kind="rate_limited",
        platform="teams",
    )
    assert throttled == 1.0


# -- 8. Action.Execute and other invokes -------------------------------------------------------


async def test_adaptive_card_action_invoke_answers_200_and_runs_the_action(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    execute = activity(
        fake_connector,
        type="invoke",
        name="adaptiveCard/action",
        value={
            "action": {
                "type": "Action.Execute",
                "verb": "whoami",
                "data": {"ev_action": "whoami", "ev_value": ""},
            },
            "trigger": "manual",
        },
    )

    answer = await post(teams_bot, execute)

    assert answer.status == 200
    assert answer.content_type == "application/json"
    assert answer.body["statusCode"] == 200
    assert answer.body["type"] in (
        "application/vnd.microsoft.activity.message",
        "application/vnd.microsoft.card.adaptive",
    )
    (sent,) = await fake_connector.wait_for_activities(X_CHAT)
    assert WHOAMI in words(sent)
    # The invoke response travels in the HTTP answer, never through the connector.
    assert all(a["type"] != "invokeResponse" for a in fake_connector.activities())


async def test_adaptive_card_action_with_only_a_verb(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    execute = activity(
        fake_connector,
        type="invoke",
        name="adaptiveCard/action",
        value={"action": {"type": "Action.Execute", "verb": "whoami"}},
    )
    assert (await post(teams_bot, execute)).status == 200
    (sent,) = await fake_connector.wait_for_activities(X_CHAT)
    assert WHOAMI in words(sent)


@pytest.mark.parametrize("name", ["composeExtension/query", "task/fetch", None])
async def test_unknown_invoke_is_a_400_not_a_500(
    teams_bot: RunningBot, fake_connector: FakeBotConnector, name: str | None
) -> None:
    invoke = activity(fake_connector, type="invoke", value={"commandId": "search"})
    if name is not None:
        invoke["name"] = name

    answer = await post(teams_bot, invoke)

    assert answer.status == 400
    assert answer.content_type == "application/json"
    assert isinstance(answer.body, dict)
    assert answer.body.get("code") == "NotSupported"
    assert await outbox_rows(teams_bot) == []


@pytest.mark.parametrize("value", ["whoami", {"action": "whoami"}, ["whoami"]])
async def test_malformed_card_action_invoke_is_a_400_not_a_500(
    teams_bot: RunningBot, fake_connector: FakeBotConnector, value: Any
) -> None:
    invoke = activity(fake_connector, type="invoke", name="adaptiveCard/action", value=value)
    answer = await post(teams_bot, invoke)
    assert answer.status == 400


# -- 9. Teams retries ------------------------------------------------------------------------


async def test_same_activity_twice_is_answered_once(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    message = activity(fake_connector, text="whoami")

    assert (await post(teams_bot, message)).status == 200
    assert (await post(teams_bot, message)).status == 200

    assert len(await outbox_rows(teams_bot)) == 1
    await say(teams_bot, fake_connector, "help")  # a later message, to wait on
    first, second = await fake_connector.wait_for_activities(X_CHAT, count=2)
    await teams_bot.drain()
    texts = sorted(words(a) for a in fake_connector.activities(X_CHAT))
    assert len(texts) == 2
    assert sum(WHOAMI in t for t in texts) == 1
    assert {WHOAMI in words(first), WHOAMI in words(second)} == {True, False}
    duplicates = await metric(teams_bot, "evangelist_events_duplicate_total", platform="teams")
    assert duplicates == 1.0


# -- 10. authentication on ---------------------------------------------------------------------


@dataclass
class NetworkAttempt:
    host: str
    on_event_loop: bool


@pytest.fixture
def network_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[NetworkAttempt]]:
    """Refuse (and record) any name lookup or connection that would leave the machine."""
    attempts: list[NetworkAttempt] = []
    local = {"127.0.0.1", "localhost", "::1", None, ""}
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect

    def on_loop() -> bool:
        # The service's event loop runs in the main thread; a worker thread is harmless.
        return threading.get_ident() == threading.main_thread().ident

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in local:
            attempts.append(NetworkAttempt(str(name), on_loop()))
            raise socket.gaierror(socket.EAI_NONAME, f"test network guard: {name} refused")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and address[0] not in local:
            attempts.append(NetworkAttempt(str(address[0]), on_loop()))
            raise ConnectionRefusedError(f"test network guard: {address[0]} refused")
        real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield attempts


@pytest.fixture
async def auth_bot(
    database_url: str,
    clock: FrozenClock,
    organisation: OrganisationConfig,
    network_guard: list[NetworkAttempt],
) -> AsyncIterator[RunningBot]:
    settings = make_settings(
        database_url,
        teams_app_id=AUTH_APP_ID,
        teams_app_password="secret",
        outbox_poll_seconds=0.05,
    )
    async with serving(build(settings, clock=clock, organisation=organisation)) as running:
        yield running


def unsigned_jwt(issuer: str, *, alg: str = "RS256") -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    claims = {
        "iss": issuer,
        "aud": AUTH_APP_ID,
        "serviceurl": "http://127.0.0.1/",
        "nbf": 1_772_445_000,
        "exp": 4_102_444_800,
    }
    return f"{part({'alg': alg, 'typ': 'JWT', 'kid': 'test-key'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-jwt",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer " + unsigned_jwt("https://attacker.example"),
        "Bearer " + unsigned_jwt("https://attacker.example", alg="none"),
    ],
    ids=["missing", "malformed", "empty", "basic", "foreign-issuer", "alg-none"],
)
async def test_auth_refuses_bad_credentials_with_401(
    auth_bot: RunningBot,
    fake_connector: FakeBotConnector,
    network_guard: list[NetworkAttempt],
    authorization: str | None,
) -> None:
    headers = {"Authorization": authorization} if authorization is not None else {}

    answer = await post(auth_bot, activity(fake_connector, text="help"), headers=headers)

    assert answer.status == 401, answer
    assert answer.content_type == "application/json"
    assert network_guard == [], "refused without asking anyone"
    assert await outbox_rows(auth_bot) == []
    assert fake_connector.calls == []


@pytest.mark.parametrize(
    ("issuer", "key_host"),
    [
        ("https://api.botframework.com", "login.botframework.com"),
        # The Bot Framework Emulator's issuer (v1 token), validated against Entra ID keys.
        (
            "https://sts.windows.net/d6d49420-f39b-4df7-a1dc-d59a935871db/",
            "login.microsoftonline.com",
        ),
    ],
    ids=["teams-issuer", "emulator-issuer"],
)
async def test_auth_with_a_trusted_issuer_is_refused_without_leaving_the_machine(
    auth_bot: RunningBot,
    fake_connector: FakeBotConnector,
    network_guard: list[NetworkAttempt],
    issuer: str,
    key_host: str,
) -> None:
    """A token claiming a trusted issuer makes the SDK fetch signing keys; offline that must
    fail cleanly (401 or 503), not crash or hang."""
    token = unsigned_jwt(issuer)
    headers = {"Authorization": f"Bearer {token}"}

    answer = await asyncio.wait_for(
        post(auth_bot, activity(fake_connector, text="help"), headers=headers), timeout=10
    )

    assert answer.status in (401, 503), answer
    assert answer.content_type == "application/json"
    assert {a.host for a in network_guard} <= {key_host}
    assert await outbox_rows(auth_bot) == []
    assert fake_connector.calls == []
    # And the bot is still serving.
    assert (await post(auth_bot, activity(fake_connector, text="help"))).status == 401


async def test_auth_never_does_blocking_network_io_on_the_event_loop(
    auth_bot: RunningBot, fake_connector: FakeBotConnector, network_guard: list[NetworkAttempt]
) -> None:
    token = unsigned_jwt("https://api.botframework.com")
    answer = await post(
        auth_bot,
        activity(fake_connector, text="help"),
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status in (401, 503)
    assert network_guard, "the SDK went for the signing keys"
    assert [a.host for a in network_guard if a.on_event_loop] == []


# -- 11. bad input -----------------------------------------------------------------------------


async def test_bad_requests_are_refused_cleanly_and_the_bot_keeps_working(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    bad_json = await post(teams_bot, raw=b'{"type": "message", "text": ')
    assert (bad_json.status, bad_json.content_type) == (400, "application/json")
    assert "error" in bad_json.body

    plain = await post(teams_bot, raw=b"help", headers={"Content-Type": "text/plain"})
    assert plain.status == 415

    no_type = await post(teams_bot, {"text": "help", "serviceUrl": fake_connector.service_url})
    assert (no_type.status, no_type.content_type) == (400, "application/json")
    not_an_object = await post(teams_bot, [activity(fake_connector, text="help")])
    assert not_an_object.status == 400

    no_service_url = activity(fake_connector, text="help")
    del no_service_url["serviceUrl"]
    assert (await post(teams_bot, no_service_url)).status == 400
    no_conversation = activity(fake_connector, text="help")
    del no_conversation["conversation"]
    assert (await post(teams_bot, no_conversation)).status == 400
    bad_timestamp = activity(fake_connector, text="help", timestamp="yesterday-ish")
    assert (await post(teams_bot, bad_timestamp)).status == 400

    huge = activity(fake_connector, text="x" * (1024 * 1024 + 10))
    too_big = await post(teams_bot, huge)
    assert (too_big.status, too_big.content_type) == (413, "application/json")

    assert await outbox_rows(teams_bot) == []
    assert fake_connector.calls == []
    assert await metric(teams_bot, "evangelist_http_requests_total", status="500") is None

    await say(teams_bot, fake_connector, "help")
    (reply,) = await fake_connector.wait_for_activities(X_CHAT)
    assert "Here is what Evangelist can do" in words(reply)


async def test_installation_update_marks_and_clears_blocked(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    await say(teams_bot, fake_connector, "hello")
    await fake_connector.wait_for_activities(X_CHAT)

    removed = activity(fake_connector, type="installationUpdate", action="remove")
    assert (await post(teams_bot, removed)).status == 200
    person = await identity(teams_bot)
    assert person is not None and person.blocked_at is not None

    added = activity(fake_connector, type="installationUpdate", action="add")
    assert (await post(teams_bot, added)).status == 200
    person = await identity(teams_bot)
    assert person is not None and person.blocked_at is None

    await say(teams_bot, fake_connector, "whoami")
    _, answer = await fake_connector.wait_for_activities(X_CHAT, count=2)
    assert WHOAMI in words(answer)


async def test_conversation_without_id_is_a_400_not_a_500(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    body = activity(fake_connector, text="help")
    body["conversation"] = {"conversationType": "personal"}
    assert (await post(teams_bot, body)).status == 400


async def test_reactions_and_edits_are_quietly_accepted(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    reaction = activity(
        fake_connector, type="messageReaction", replyToId="1:abc", reactionsAdded=[{"type": "like"}]
    )
    assert (await post(teams_bot, reaction)).status == 200
    edit = activity(fake_connector, type="messageUpdate", text="help (edited)")
    assert (await post(teams_bot, edit)).status == 200
    typing = activity(fake_connector, type="typing")
    assert (await post(teams_bot, typing)).status == 200

    assert await outbox_rows(teams_bot) == []
    assert fake_connector.calls == []
    assert await metric(teams_bot, "evangelist_http_requests_total", status="500") is None
    # Teams tells a bot only of reactions to its own messages: one counts as taking part.
    async with teams_bot.bot.db.transaction() as session:
        kinds = (await session.scalars(select(ParticipationRow.kind))).all()
    assert kinds == ["reacted"]
