"""Tests of the fakes themselves, driven through the real SDK clients.

If the SDKs' wire behaviour changes (content types, routes, error handling),
these fail first, before the bot's integration tests start lying.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from botbuilder.core import CardFactory, MessageFactory, TurnContext
from botbuilder.integration.aiohttp import CloudAdapter, ConfigurationBotFrameworkAuthentication
from botbuilder.schema import (
    Activity,
    ChannelAccount,
    ConversationAccount,
    ConversationParameters,
    ConversationReference,
    ErrorResponseException,
)
from msrest.exceptions import ClientRequestError
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.bot_connector import MESSAGE_WRITES_BLOCKED_BODY, FakeBotConnector
from tests.fakes.slack_api import UPLOAD_CALL, FakeSlackApi

TurnCallback = Callable[[TurnContext], Awaitable[Any]]


# -- fixtures ---------------------------------------------------------------------


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi() as fake:
        yield fake


@pytest.fixture
async def client(slack: FakeSlackApi) -> AsyncWebClient:
    return AsyncWebClient(token="xoxb-test", base_url=slack.base_url)


@pytest.fixture
async def connector() -> AsyncIterator[FakeBotConnector]:
    async with FakeBotConnector() as fake:
        yield fake


@pytest.fixture
def adapter() -> CloudAdapter:
    # Empty app id/password disables auth: no token fetch, no Authorization header.
    config = SimpleNamespace(APP_ID="", APP_PASSWORD="")
    return CloudAdapter(ConfigurationBotFrameworkAuthentication(config))


def reference(fake: FakeBotConnector, conversation_id: str = "a:conv-1") -> ConversationReference:
    return ConversationReference(
        service_url=fake.service_url,
        channel_id="msteams",
        conversation=ConversationAccount(id=conversation_id),
        bot=ChannelAccount(id="28:bot"),
        user=ChannelAccount(id="29:user"),
    )


async def send_proactive(
    adapter: CloudAdapter, ref: ConversationReference, activity: Activity | str
) -> Any:
    sent: list[Any] = []

    async def callback(turn_context: TurnContext) -> None:
        sent.append(await turn_context.send_activity(activity))

    await adapter.continue_conversation(ref, callback, bot_app_id="")
    return sent[0]


# -- common machinery --------------------------------------------------------------


async def test_ephemeral_port_and_stop(slack: FakeSlackApi) -> None:
    assert slack.port > 0
    assert slack.base_url == f"http://127.0.0.1:{slack.port}/api/"
    other = FakeSlackApi()
    await other.start()
    assert other.port != slack.port
    await other.stop()


async def test_wait_for_wakes_up_when_call_arrives(
    slack: FakeSlackApi, client: AsyncWebClient
) -> None:
    waiter = asyncio.create_task(slack.wait_for("chat.postMessage", count=2, timeout=5))
    await client.chat_postMessage(channel="C1", text="one")
    await asyncio.sleep(0)
    assert not waiter.done()
    await client.chat_postMessage(channel="C1", text="two")
    calls = await waiter
    assert [c.params["text"] for c in calls] == ["one", "two"]


async def test_wait_for_timeout_lists_what_was_received(
    slack: FakeSlackApi, client: AsyncWebClient
) -> None:
    await client.auth_test()
    with pytest.raises(TimeoutError, match=r"'chat\.postMessage'.*got 0.*POST auth\.test"):
        await slack.wait_for("chat.postMessage", timeout=0.1)


# -- Slack ----------------------------------------------------------------------------


async def test_auth_test_records_bearer_token(slack: FakeSlackApi, client: AsyncWebClient) -> None:
    response = await client.auth_test()
    assert response["user_id"] == "U0BOT"
    assert response["bot_id"] == "B0BOT"
    assert response["team_id"] == "T0001"
    (call,) = slack.calls_to("auth.test")
    assert call.authorization == "Bearer xoxb-test"
    assert call.headers["authorization"] == "Bearer xoxb-test"  # case-insensitive


async def test_identity_is_configurable() -> None:
    async with FakeSlackApi(team_id="T9", user_id="U9", bot_id="B9") as fake:
        client = AsyncWebClient(token="xoxb-test", base_url=fake.base_url)
        response = await client.auth_test()
    assert (response["team_id"], response["user_id"], response["bot_id"]) == ("T9", "U9", "B9")


async def test_missing_token_is_not_authed(slack: FakeSlackApi) -> None:
    client = AsyncWebClient(base_url=slack.base_url)
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C1", text="hi")
    assert caught.value.response["error"] == "not_authed"
    assert slack.messages("C1") == []


async def test_post_message_with_blocks_and_metadata(
    slack: FakeSlackApi, client: AsyncWebClient
) -> None:
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    metadata = {"event_type": "evangelist_post", "event_payload": {"post_id": "p1"}}
    response = await client.chat_postMessage(
        channel="C1", text="hi", blocks=blocks, metadata=metadata
    )

    assert response["channel"] == "C1"
    assert response["ts"] == "1700000000.000100"
    assert response["message"]["metadata"] == metadata
    (call,) = slack.calls_to("chat.postMessage")
    assert call.headers["Content-Type"].startswith("application/json")
    assert call.json_field("blocks") == blocks
    assert call.json_field("metadata") == metadata
    assert slack.messages("C1")[0]["blocks"] == blocks


async def test_post_message_needs_content(client: AsyncWebClient) -> None:
    # slack_sdk warns before sending a message without text; Slack then refuses it.
    with pytest.warns(UserWarning, match="text"), pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C1")
    assert caught.value.response["error"] == "no_text"


async def test_ts_increase_across_posts(slack: FakeSlackApi, client: AsyncWebClient) -> None:
    first = await client.chat_postMessage(channel="C1", text="a")
    second = await client.chat_postMessage(channel="C2", text="b")
    assert float(second["ts"]) > float(first["ts"])


async def test_history_newest_first_metadata_only_on_request(
    slack: FakeSlackApi, client: AsyncWebClient
) -> None:
    metadata = {"event_type": "evangelist_post", "event_payload": {"post_id": "p1"}}
    first = await client.chat_postMessage(channel="C1", text="old", metadata=metadata)
    await client.chat_postMessage(channel="C1", text="new")

    with_meta = await client.conversations_history(channel="C1", include_all_metadata=True)
    without = await client.conversations_history(channel="C1")
    after_first = await client.conversations_history(channel="C1", oldest=first["ts"])

    assert [m["text"] for m in with_meta["messages"]] == ["new", "old"]
    assert with_meta["messages"][1]["metadata"] == metadata
    assert with_meta["messages"][1]["bot_id"] == "B0BOT"
    assert all("metadata" not in m for m in without["messages"])
    assert [m["text"] for m in after_first["messages"]] == ["new"]
    call = slack.calls_to("conversations.history")[0]
    assert call.http_method == "GET"
    assert call.params["include_all_metadata"] == "1"  # slack_sdk turns True into "1"


async def test_history_limit_and_has_more(slack: FakeSlackApi, client: AsyncWebClient) -> None:
    for text in ("a", "b", "c"):
        await client.chat_postMessage(channel="C1", text=text)
    response = await client.conversations_history(channel="C1", limit=2)
    assert [m["text"] for m in response["messages"]] == ["c", "b"]
    assert response["has_more"] is True


async def test_thread_replies_stay_out_of_history(
    slack: FakeSlackApi, client: AsyncWebClient
) -> None:
    parent = await client.chat_postMessage(channel="C1", text="parent")
    await client.chat_postMessage(channel="C1", text="reply", thread_ts=parent["ts"])

    history = await client.conversations_history(channel="C1")
    replies = await client.conversations_replies(channel="C1", ts=parent["ts"])

    assert [m["text"] for m in history["messages"]] == ["parent"]
    assert history["messages"][0]["reply_count"] == 1
    assert [m["text"] for m in replies["messages"]] == ["parent", "reply"]


async def test_post_to_user_id_lands_in_dm(slack: FakeSlackApi, client: AsyncWebClient) -> None:
    response = await client.chat_postMessage(channel="U123", text="psst")
    opened = await client.conversations_open(users="U123")
    assert response["channel"] == "DU123"
    assert opened["channel"]["id"] == "DU123"
    assert [m["text"] for m in slack.messages("DU123")] == ["psst"]
    assert slack.messages("U123") == slack.messages("DU123")


async def test_update_and_delete(slack: FakeSlackApi, client: AsyncWebClient) -> None:
    posted = await client.chat_postMessage(channel="C1", text="draft")
    updated = await client.chat_update(channel="C1", ts=posted["ts"], text="final")
    assert (updated["channel"], updated["ts"], updated["text"]) == ("C1", posted["ts"], "final")
    assert slack.messages("C1")[0]["text"] == "final"

    with pytest.raises(SlackApiError) as caught:
        await client.chat_update(channel="C1", ts="1.000000", text="nope")
    assert caught.value.response["error"] == "message_not_found"

    await client.chat_delete(channel="C1", ts=posted["ts"])
    assert slack.messages("C1") == []


async def test_post_ephemeral(slack: FakeSlackApi, client: AsyncWebClient) -> None:
    response = await client.chat_postEphemeral(channel="C1", user="U1", text="only you")
    assert response["message_ts"] == slack.ephemerals[0]["ts"]
    assert slack.messages("C1") == []


async def test_views_publish(slack: FakeSlackApi, client: AsyncWebClient) -> None:
    view = {"type": "home", "blocks": [{"type": "divider"}]}
    response = await client.views_publish(user_id="U1", view=view)
    assert response["view"]["id"].startswith("V")
    assert slack.views["U1"]["blocks"] == view["blocks"]
    assert slack.calls_to("views.publish")[0].json_field("view") == view


async def test_users_info_default_and_preloaded(
    slack: FakeSlackApi, client: AsyncWebClient
) -> None:
    slack.add_user("U2", tz="America/New_York", profile={"email": "ada@example.com"})
    default = await client.users_info(user="U1")
    preloaded = await client.users_info(user="U2")
    assert default["user"]["profile"]["email"] == "u1@example.com"
    assert default["user"]["tz"] == "Europe/London"
    assert preloaded["user"]["tz"] == "America/New_York"
    assert preloaded["user"]["profile"]["email"] == "ada@example.com"
    assert preloaded["user"]["profile"]["display_name"] == "u2"


async def test_files_upload_v2(slack: FakeSlackApi, client: AsyncWebClient) -> None:
    content = b"\x89PNG fake image bytes"
    response = await client.files_upload_v2(
        content=content, filename="a.png", channel="C1", initial_comment="look"
    )

    file_id = response["file"]["id"]
    assert response["file"]["name"] == "a.png"
    assert slack.uploaded[file_id] == content
    assert slack.files[file_id]["channel_id"] == "C1"
    assert [c.name for c in slack.calls] == [
        "files.getUploadURLExternal",
        UPLOAD_CALL,
        "files.completeUploadExternal",
    ]
    assert slack.calls_to("files.completeUploadExternal")[0].json_field("files")[0]["id"] == file_id


async def test_rate_limit_is_retried_by_sdk_handler(slack: FakeSlackApi) -> None:
    client = AsyncWebClient(
        token="xoxb-test",
        base_url=slack.base_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    slack.fail_next("chat.postMessage", status=429, headers={"Retry-After": "1"})

    response = await client.chat_postMessage(channel="C1", text="eventually")

    assert response["ok"] is True
    first, second = slack.calls_to("chat.postMessage")
    assert (first.failed, second.failed) == (True, False)
    assert second.received_at - first.received_at >= 1.0  # Retry-After honoured
    assert slack.calls_to("chat.postMessage", ok_only=True) == [second]
    assert [m["text"] for m in slack.messages("C1")] == ["eventually"]


async def test_rate_limit_without_handler_raises(
    slack: FakeSlackApi, client: AsyncWebClient
) -> None:
    slack.fail_next("chat.postMessage")
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C1", text="x")
    assert caught.value.response.status_code == 429
    assert caught.value.response["error"] == "ratelimited"
    assert caught.value.response.headers["Retry-After"] == "1"


async def test_enforced_rate_limit_answers_429_per_channel_and_overall(
    slack: FakeSlackApi, client: AsyncWebClient
) -> None:
    now = [100.0]
    slack.rate_clock = lambda: now[0]
    per_channel = slack.enforce_rate(
        "chat.postMessage", [(2, 2.0)], per_key=lambda call: str(call.params["channel"])
    )
    overall = slack.enforce_rate("chat.postMessage", [(3, 1.0)])

    await client.chat_postMessage(channel="C1", text="1")
    await client.chat_postMessage(channel="C1", text="2")
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C1", text="3")  # C1 is full for 2 s
    assert caught.value.response.status_code == 429
    assert caught.value.response["error"] == "ratelimited"
    assert caught.value.response.headers["Retry-After"] == "2"
    await client.chat_postMessage(channel="C2", text="4")
    with pytest.raises(SlackApiError):
        await client.chat_postMessage(channel="C3", text="5")  # 3 accepted this second
    await client.auth_test()  # not matched: never limited

    now[0] += 1.0
    await client.chat_postMessage(channel="C3", text="6")
    now[0] += 1.0
    await client.chat_postMessage(channel="C1", text="7")

    assert [m["text"] for m in slack.messages("C1")] == ["1", "2", "7"]
    throttled = [c.throttled for c in slack.calls_to("chat.postMessage")]
    assert throttled == [False, False, True, False, True, False, False]
    assert len(slack.calls_to("chat.postMessage", ok_only=True)) == 5
    assert (per_channel.accepted, per_channel.throttled) == (5, 1)
    assert (overall.accepted, overall.throttled) == (5, 1)
    assert "POST chat.postMessage [throttled 429]" in slack.describe_calls()
    slack.clear_rate_limits()
    for text in "abc":
        await client.chat_postMessage(channel="C1", text=text)


async def test_enforced_rate_limit_on_connector_with_fixed_retry_after(
    connector: FakeBotConnector, adapter: CloudAdapter
) -> None:
    connector.rate_clock = lambda: 0.0
    limit = connector.enforce_rate(
        lambda call: call.name in {"send_to_conversation", "reply_to_activity"},
        [(1, 1.0)],
        retry_after=0.5,
    )
    await send_proactive(adapter, reference(connector), "first")
    with pytest.raises(ErrorResponseException) as caught:
        await send_proactive(adapter, reference(connector, "a:conv-2"), "second")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "0.5"
    assert caught.value.error.error.code == "Throttled"
    assert (limit.accepted, limit.throttled) == (1, 1)
    assert [a["text"] for a in connector.activities()] == ["first"]
    with pytest.raises(ValueError, match="rules"):
        connector.enforce_rate("reply_to_activity", [(0, 1.0)])


async def test_injected_application_error(slack: FakeSlackApi, client: AsyncWebClient) -> None:
    slack.fail_next(
        "chat.postMessage", status=200, body={"ok": False, "error": "channel_not_found"}
    )
    with pytest.raises(SlackApiError) as caught:
        await client.chat_postMessage(channel="C404", text="x")
    assert caught.value.response["error"] == "channel_not_found"
    assert slack.calls_to("chat.postMessage")[0].failed
    assert slack.messages("C404") == []


async def test_fault_times_and_then_success(slack: FakeSlackApi, client: AsyncWebClient) -> None:
    slack.fail_next("auth.test", status=200, body={"ok": False, "error": "fatal_error"}, times=2)
    for _ in range(2):
        with pytest.raises(SlackApiError):
            await client.auth_test()
    assert (await client.auth_test())["ok"] is True
    assert [c.failed for c in slack.calls_to("auth.test")] == [True, True, False]


async def test_slow_answer_times_client_out_but_is_processed(slack: FakeSlackApi) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url, timeout=0.2)  # type: ignore[arg-type]
    slack.fail_next("chat.postMessage", status=None, delay=0.5)

    with pytest.raises(asyncio.TimeoutError):
        await client.chat_postMessage(channel="C1", text="late")

    (call,) = slack.calls_to("chat.postMessage")
    assert not call.failed and call.fault is not None and call.fault.delay == 0.5
    await asyncio.sleep(0.5)  # the server finishes the request after the client gave up
    assert [m["text"] for m in slack.messages("C1")] == ["late"]


async def test_connection_reset_is_retried_once_by_default(
    slack: FakeSlackApi, client: AsyncWebClient
) -> None:
    # AsyncWebClient's default retry handlers resend on connection errors,
    # POSTs included: a reset after Slack processed a post would duplicate it.
    slack.fail_next("chat.postMessage", reset=True)
    assert (await client.chat_postMessage(channel="C1", text="again"))["ok"] is True
    assert [c.failed for c in slack.calls_to("chat.postMessage")] == [True, False]
    assert [m["text"] for m in slack.messages("C1")] == ["again"]


async def test_connection_reset_without_retry_handlers(slack: FakeSlackApi) -> None:
    client = AsyncWebClient(token="xoxb-test", base_url=slack.base_url, retry_handlers=[])
    slack.fail_next("chat.postMessage", reset=True)
    with pytest.raises(aiohttp.ClientConnectionError):
        await client.chat_postMessage(channel="C1", text="lost")
    assert slack.calls_to("chat.postMessage")[0].failed
    assert slack.messages("C1") == []


async def test_stop_cuts_off_delayed_request(slack: FakeSlackApi) -> None:
    async with aiohttp.ClientSession() as session:
        slack.fail_next("auth.test", delay=30)
        request = asyncio.create_task(session.post(f"{slack.base_url}auth.test"))
        await slack.wait_for("auth.test")
        await asyncio.wait_for(slack.stop(), timeout=3)
        with pytest.raises(aiohttp.ClientError):
            await request


async def test_unknown_method_is_ok_and_recorded(
    slack: FakeSlackApi, client: AsyncWebClient
) -> None:
    response = await client.reactions_add(channel="C1", timestamp="1.0", name="tada")
    assert response["ok"] is True
    assert slack.calls_to("reactions.add")[0].params["name"] == "tada"


async def test_form_and_empty_json_bodies_parse(slack: FakeSlackApi) -> None:
    blocks = [{"type": "divider"}]
    headers = {"Authorization": "Bearer xoxb-test"}
    async with aiohttp.ClientSession(headers=headers) as session:
        form = {"channel": "C1", "text": "form", "blocks": json.dumps(blocks)}
        async with session.post(f"{slack.base_url}chat.postMessage?unfurl_links=0", data=form) as r:
            assert (await r.json())["ok"] is True
        empty_json = {"Content-Type": "application/json"}
        async with session.post(f"{slack.base_url}auth.test", headers=empty_json) as r:
            assert (await r.json())["user_id"] == "U0BOT"
        async with session.post(f"{slack.base_url}auth.test", data={"token": "xoxp-legacy"}) as r:
            assert (await r.json())["ok"] is True

    call = slack.calls_to("chat.postMessage")[0]
    assert call.params["blocks"] == json.dumps(blocks)  # recorded as given
    assert call.json_field("blocks") == blocks  # and decodable
    assert call.params["unfurl_links"] == "0"
    assert slack.messages("C1")[0]["blocks"] == blocks


async def test_multipart_request_and_upload(slack: FakeSlackApi) -> None:
    headers = {"Authorization": "Bearer xoxb-test"}
    async with aiohttp.ClientSession(headers=headers) as session:
        fields = {"filename": "b.txt", "length": "5"}
        form = aiohttp.FormData(fields, default_to_multipart=True)
        async with session.post(f"{slack.base_url}files.getUploadURLExternal", data=form) as r:
            ticket = await r.json()
        upload = aiohttp.FormData()
        upload.add_field("file", b"hello", filename="b.txt")
        async with session.post(ticket["upload_url"], data=upload) as r:
            assert (r.status, await r.text()) == (200, "OK - 5")

    (ticket_call,) = slack.calls_to("files.getUploadURLExternal")
    assert ticket_call.headers["Content-Type"].startswith("multipart/form-data")
    assert ticket_call.params["filename"] == "b.txt"
    assert slack.uploaded[ticket["file_id"]] == b"hello"


# -- Bot Framework connector -----------------------------------------------------------


async def test_continue_conversation_send(
    connector: FakeBotConnector, adapter: CloudAdapter
) -> None:
    response = await send_proactive(adapter, reference(connector), "hello")

    # botbuilder 4.17 replies to the continuation activity's random id
    # rather than calling send_to_conversation.
    (call,) = await connector.wait_for("reply_to_activity")
    assert call.params["conversation_id"] == "a:conv-1"
    assert call.authorization is None
    assert call.body["text"] == "hello"
    assert call.body["from"] == {"id": "28:bot"}
    assert call.body["recipient"] == {"id": "29:user"}
    assert call.body["replyToId"] == call.params["activity_id"]
    (activity,) = connector.activities("a:conv-1")
    assert activity["id"] == response.id


async def test_conversation_ids_are_decoded(
    connector: FakeBotConnector, adapter: CloudAdapter
) -> None:
    channel_thread = "19:abc@thread.tacv2;messageid=123"
    await send_proactive(adapter, reference(connector, channel_thread), "in thread")

    (call,) = connector.calls_to("reply_to_activity")
    assert call.path.startswith("/v3/conversations/19%3Aabc%40thread.tacv2%3Bmessageid%3D123/")
    assert call.params["conversation_id"] == channel_thread
    assert [a["text"] for a in connector.activities(channel_thread)] == ["in thread"]


async def test_adaptive_card_attachment(connector: FakeBotConnector, adapter: CloudAdapter) -> None:
    card = {"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlock", "text": "x"}]}
    await send_proactive(
        adapter, reference(connector), MessageFactory.attachment(CardFactory.adaptive_card(card))
    )
    (activity,) = connector.activities()
    (attachment,) = activity["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert attachment["content"] == card


async def test_create_conversation_then_send(
    connector: FakeBotConnector, adapter: CloudAdapter
) -> None:
    seen: list[str] = []

    async def callback(turn_context: TurnContext) -> None:
        seen.append(turn_context.activity.conversation.id)
        await turn_context.send_activity("welcome")

    params = ConversationParameters(
        is_group=False,
        bot=ChannelAccount(id="28:bot"),
        members=[ChannelAccount(id="29:user")],
        tenant_id="tid",
        channel_data={"tenant": {"id": "tid"}},
    )
    for _ in range(2):
        await adapter.create_conversation(
            bot_app_id="",
            callback=callback,
            conversation_parameters=params,
            channel_id="msteams",
            service_url=connector.service_url,
        )

    create, _ = connector.calls_to("create_conversation")
    assert create.body["members"] == [{"id": "29:user"}]
    assert create.body["channelData"] == {"tenant": {"id": "tid"}}
    assert create.body["tenantID"] == "tid"  # msrest's spelling, not "tenantId"
    # Teams returns the same 1:1 conversation for the same bot and user.
    assert seen[0] == seen[1] and seen[0].startswith("a:")
    assert [a["text"] for a in connector.activities(seen[0])] == ["welcome", "welcome"]
    assert connector.calls[1].name == "reply_to_activity"


async def test_update_and_delete_activity(
    connector: FakeBotConnector, adapter: CloudAdapter
) -> None:
    ref = reference(connector)
    sent = await send_proactive(adapter, ref, "draft")

    async def edit(turn_context: TurnContext) -> None:
        update = MessageFactory.text("final")
        update.id = sent.id
        await turn_context.update_activity(update)

    async def delete(turn_context: TurnContext) -> None:
        await turn_context.delete_activity(sent.id)

    await adapter.continue_conversation(ref, edit, bot_app_id="")
    assert (connector.activity("a:conv-1", sent.id) or {}).get("text") == "final"
    assert connector.activities()[0]["text"] == "draft"  # bodies as posted

    await adapter.continue_conversation(ref, delete, bot_app_id="")
    assert connector.activity("a:conv-1", sent.id) is None
    assert [c.name for c in connector.calls] == [
        "reply_to_activity",
        "update_activity",
        "delete_activity",
    ]

    with pytest.raises(ErrorResponseException) as caught:
        await adapter.continue_conversation(ref, delete, bot_app_id="")
    assert caught.value.response.status_code == 404
    assert caught.value.error.error.code == "ActivityNotFoundInConversation"


async def test_blocked_user_documented_body(
    connector: FakeBotConnector, adapter: CloudAdapter
) -> None:
    connector.block_user("a:conv-1")

    with pytest.raises(ErrorResponseException) as caught:
        await send_proactive(adapter, reference(connector), "are you there?")

    exc = caught.value
    assert exc.response.status_code == 403
    assert exc.response.text == MESSAGE_WRITES_BLOCKED_BODY
    assert len(exc.response.content) == 196  # Content-Length in Microsoft's example
    assert "MessageWritesBlocked" in exc.response.text
    assert exc.error.error is None  # not the {"error": {...}} envelope
    assert exc.error.additional_properties["errorCode"] == 209
    assert str(exc) == "Operation returned an invalid status code 'Forbidden'"
    assert connector.activities() == []
    assert connector.calls_to("reply_to_activity")[0].params["conversation_id"] == "a:conv-1"


async def test_blocked_user_error_envelope(
    connector: FakeBotConnector, adapter: CloudAdapter
) -> None:
    connector.block_user("a:conv-1", style="ConversationBlockedByUser")

    with pytest.raises(ErrorResponseException) as caught:
        await send_proactive(adapter, reference(connector), "are you there?")

    assert caught.value.response.status_code == 403
    assert caught.value.error.error.code == "ConversationBlockedByUser"
    assert "ConversationBlockedByUser" in str(caught.value)

    connector.unblock_user("a:conv-1")
    await send_proactive(adapter, reference(connector), "welcome back")
    assert [a["text"] for a in connector.activities()] == ["welcome back"]


async def test_create_conversation_for_blocked_user_fails(
    connector: FakeBotConnector, adapter: CloudAdapter
) -> None:
    params = ConversationParameters(
        bot=ChannelAccount(id="28:bot"), members=[ChannelAccount(id="29:user")], tenant_id="tid"
    )

    async def noop(turn_context: TurnContext) -> None:
        return None

    async def create() -> None:
        await adapter.create_conversation(
            "", noop, params, channel_id="msteams", service_url=connector.service_url
        )

    await create()
    (conversation_id,) = connector.conversations
    connector.block_user(conversation_id, style="ConversationBlockedByUser")
    with pytest.raises(ErrorResponseException) as caught:
        await create()
    assert caught.value.response.status_code == 403
    assert caught.value.error.error.code == "ConversationBlockedByUser"


async def test_throttled_post_is_not_retried_by_sdk(
    connector: FakeBotConnector, adapter: CloudAdapter
) -> None:
    connector.fail_next("reply_to_activity", status=429)
    with pytest.raises(ErrorResponseException) as caught:
        await send_proactive(adapter, reference(connector), "x")
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"
    assert caught.value.error.error.code == "Throttled"
    assert len(connector.calls) == 1


async def test_reset_on_post_raises_client_request_error(
    connector: FakeBotConnector, adapter: CloudAdapter
) -> None:
    connector.fail_next("reply_to_activity", reset=True)
    with pytest.raises(ClientRequestError):
        await send_proactive(adapter, reference(connector), "x")
    assert [c.failed for c in connector.calls] == [True]
    assert connector.activities() == []


async def test_sdk_silently_retries_put_on_503(
    connector: FakeBotConnector, adapter: CloudAdapter
) -> None:
    ref = reference(connector)
    sent = await send_proactive(adapter, ref, "draft")
    connector.fail_next("update_activity", status=503)

    async def edit(turn_context: TurnContext) -> None:
        update = MessageFactory.text("final")
        update.id = sent.id
        await turn_context.update_activity(update)

    await adapter.continue_conversation(ref, edit, bot_app_id="")
    assert [c.failed for c in connector.calls_to("update_activity")] == [True, False]
    assert (connector.activity("a:conv-1", sent.id) or {}).get("text") == "final"


async def test_members_attachments_and_unknown_routes(connector: FakeBotConnector) -> None:
    conversation = "a:conv-9"
    connector.members[conversation] = [{"id": "29:u", "name": "Ada", "email": "ada@example.com"}]
    base = f"{connector.service_url}v3/conversations/a%3Aconv-9"
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base}/members") as r:
            assert await r.json() == connector.members[conversation]
        async with session.get(f"{base}/members/29%3Au") as r:
            assert (await r.json())["name"] == "Ada"
        async with session.get(f"{base}/pagedmembers") as r:
            assert (await r.json())["members"][0]["id"] == "29:u"
        async with session.get(f"{connector.service_url}v3/conversations/a%3Anope/members") as r:
            assert r.status == 404
            assert (await r.json())["error"]["code"] == "ConversationNotFound"
        attachment = {"type": "image/png", "name": "a.png", "originalBase64": "AAAA"}
        async with session.post(f"{base}/attachments", json=attachment) as r:
            attachment_id = (await r.json())["id"]
        async with session.get(f"{connector.service_url}v3/bogus") as r:
            assert r.status == 404

    assert connector.attachments[attachment_id] == attachment
    assert connector.calls[-1].name == "unknown"
    assert connector.calls_to("get_conversation_member")[0].params["member_id"] == "29:u"
