"""Slack end to end: signed requests into the real aiohttp app, answers out to the fake Web API.

Everything enters through POST /slack/events exactly as Slack sends it (Events API envelope,
form-encoded slash commands, `payload=<json>` interactions) and leaves through the outbox
dispatcher running in the background. Waits are on the fake's recorded calls or on a database
or metrics condition, never fixed sleeps.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from bot.core.clock import FrozenClock
from bot.storage.models import AuditRow, Base, OutboxRow, ParticipationRow, ProcessedEventRow
from tests.conftest import RunningBot, event_envelope, slack_headers
from tests.fakes.slack_api import RESPONSE_URL_CALL, FakeSlackApi

ADA = "U0ADA0001"  # the evangelist in examples/organisation.yaml
TOM = "U0TOM0001"  # not linked to anyone in the file: becomes a stand-in employee
NEWCOMER = "U0NEW0001"
BOT_USER = "U0BOT"  # what the fake's auth.test says the bot is
GENERAL = "C0GENERAL"
FORM = "application/x-www-form-urlencoded"
POST_MESSAGE = "chat.postMessage"
MAX_BODY = 1024 * 1024

_ts = itertools.count(1)


def next_ts() -> str:
    """A fresh Slack message ts ("1700000000.000001", ...), unique within the session."""
    return f"1700000000.{next(_ts):06d}"


# -- playing Slack's side -------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    text: str
    seconds: float

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class SlackSide:
    """Signs and POSTs to /slack/events what Slack would send."""

    http: aiohttp.ClientSession
    bot: RunningBot
    fake: FakeSlackApi
    _triggers: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def events_url(self) -> str:
        return f"{self.bot.url}/slack/events"

    async def post(self, body: str | bytes, headers: dict[str, str]) -> Answer:
        started = time.monotonic()
        async with self.http.post(self.events_url, data=body, headers=headers) as response:
            text = await response.text()
            return Answer(response.status, text, time.monotonic() - started)

    async def signed(
        self, body: str, *, content_type: str = "application/json", **extra: str
    ) -> Answer:
        headers = slack_headers(body, content_type=content_type)
        headers.update(extra)
        return await self.post(body, headers)

    async def event(
        self, event: dict[str, Any], *, event_id: str | None = None, **headers: str
    ) -> str:
        """Deliver an Events API event; returns its event_id. Slack expects a 2xx."""
        envelope = event_envelope(event, event_id=event_id)
        answer = await self.signed(json.dumps(envelope), **headers)
        assert answer.status == 200, answer
        return str(envelope["event_id"])

    def trigger_id(self) -> str:
        n = next(self._triggers)
        return f"{n}.1000000001.{n:012x}"

    async def command(self, text: str, *, user: str, token: str) -> Answer:
        """A `/evangelist <text>` slash command, form-encoded as Slack sends it."""
        fields = {
            "token": "verification-token-unused",
            "team_id": "T0001",
            "team_domain": "example",
            "channel_id": GENERAL,
            "channel_name": "general",
            "user_id": user,
            "user_name": user.lower(),
            "command": "/evangelist",
            "text": text,
            "api_app_id": "A0EVANGELIST",
            "is_enterprise_install": "false",
            "response_url": self.fake.response_url(token),
            "trigger_id": self.trigger_id(),
        }
        return await self.signed(urlencode(fields), content_type=FORM)

    async def press(
        self,
        action_id: str,
        value: str,
        *,
        user: str,
        token: str,
        action_ts: str,
        message_ts: str = "1700000000.000100",
    ) -> Answer:
        """A `block_actions` interaction for a button on a message in #general."""
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": {
                "id": user,
                "username": user.lower(),
                "name": user.lower(),
                "team_id": "T0001",
            },
            "api_app_id": "A0EVANGELIST",
            "token": "verification-token-unused",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": GENERAL,
                "is_ephemeral": False,
            },
            "trigger_id": self.trigger_id(),
            "team": {"id": "T0001", "domain": "example"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": GENERAL, "name": "general"},
            "message": {"type": "message", "ts": message_ts, "user": BOT_USER, "text": "Hi"},
            "state": {"values": {}},
            "response_url": self.fake.response_url(token),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "b0",
                    "text": {"type": "plain_text", "text": "How do you know me?", "emoji": True},
                    "value": value,
                    "type": "button",
                    "action_ts": action_ts,
                }
            ],
        }
        return await self.signed(urlencode({"payload": json.dumps(payload)}), content_type=FORM)


@pytest.fixture
async def slack(slack_bot: RunningBot, fake_slack: FakeSlackApi) -> AsyncIterator[SlackSide]:
    async with aiohttp.ClientSession() as http:
        yield SlackSide(http, slack_bot, fake_slack)


def mention(text: str, *, user: str = ADA, channel: str = GENERAL, **extra: str) -> dict[str, Any]:
    ts = next_ts()
    return {
        "type": "app_mention",
        "user": user,
        "text": f"<@{BOT_USER}> {text}",
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        **extra,
    }


def channel_message(text: str, *, user: str = ADA, channel: str = GENERAL) -> dict[str, Any]:
    ts = next_ts()
    return {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "ts": ts,
        "event_ts": ts,
        "channel_type": "channel",
    }


def member_joined(user: str, channel: str = GENERAL) -> dict[str, Any]:
    return {
        "type": "member_joined_channel",
        "user": user,
        "channel": channel,
        "channel_type": "C",
        "team": "T0001",
        "inviter": ADA,
        "event_ts": next_ts(),
    }


# -- observing the bot ----------------------------------------------------------------------------


async def wait_until(check: Callable[[], Awaitable[bool]], what: str, within: float = 5.0) -> None:
    """Poll a condition (a database row, a counter) until it holds; fail after `within` s."""
    try:
        async with asyncio.timeout(within):
            # A database row or a counter has no event to wait on: poll it.
            while True:
                if await check():
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"timed out after {within}s waiting for {what}") from None


async def outbox_rows(bot: RunningBot) -> list[OutboxRow]:
    async with bot.bot.db.transaction() as session:
        return list((await session.scalars(select(OutboxRow).order_by(OutboxRow.id))).all())


async def processed_ids(bot: RunningBot) -> set[str]:
    async with bot.bot.db.transaction() as session:
        return set((await session.scalars(select(ProcessedEventRow.event_id))).all())


async def audit_rows(bot: RunningBot) -> list[AuditRow]:
    async with bot.bot.db.transaction() as session:
        return list((await session.scalars(select(AuditRow).order_by(AuditRow.id))).all())


async def wait_processed(bot: RunningBot, event_id: str) -> None:
    async def done() -> bool:
        return event_id in await processed_ids(bot)

    await wait_until(done, f"event {event_id} to be marked processed")


async def wait_counted(bot: RunningBot, kind: str) -> None:
    """Wait until the service has taken an event of this kind in (it counts them first)."""

    async def counted() -> bool:
        value = bot.bot.metrics.events.labels("slack", kind)._value.get()
        return bool(value)

    await wait_until(counted, f"a {kind} event to be counted")


async def wait_outbox_status(bot: RunningBot, status: str, count: int = 1) -> list[OutboxRow]:
    async def reached() -> bool:
        return sum(r.status == status for r in await outbox_rows(bot)) >= count

    await wait_until(reached, f"{count} outbox row(s) {status!r}")
    return [r for r in await outbox_rows(bot) if r.status == status]


async def database_dump(bot: RunningBot) -> str:
    """Every row of every table, as text."""
    lines = []
    async with bot.bot.db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            for row in (await session.execute(select(table))).all():
                lines.append(f"{table.name}: {tuple(row)!r}")
    return "\n".join(lines)


def counter(bot: RunningBot, name: str, **labels: str) -> float:
    return bot.bot.metrics.registry.get_sample_value(name, labels) or 0.0


async def wait_duplicates(bot: RunningBot, count: int) -> None:
    async def seen() -> bool:
        return counter(bot, "evangelist_events_duplicate_total", platform="slack") >= count

    await wait_until(seen, f"{count} duplicate event(s) to be recognised")


def blocks_text(call: Any) -> str:
    return json.dumps(call.json_field("blocks"))


def buttons(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        element
        for block in blocks
        if block.get("type") == "actions"
        for element in block.get("elements", [])
        if element.get("type") == "button"
    ]


def call_ts(fake: FakeSlackApi) -> str:
    """The ts the fake gave the (single) message in #general."""
    (message,) = [m for m in fake.messages(GENERAL) if m.get("user") == BOT_USER]
    return str(message["ts"])


# -- events ----------------------------------------------------------------------------------------


async def test_mention_help_replies_in_thread_with_button_and_outbox_key(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    event = mention("help")
    event_id = await slack.event(event)

    (call,) = await fake_slack.wait_for(POST_MESSAGE)
    assert call.params["channel"] == GENERAL
    assert call.params["thread_ts"] == event["ts"]
    assert "Ada" in call.params["text"]
    actions = [b["action_id"] for b in buttons(call.json_field("blocks"))]
    assert actions and all(a.startswith("ev:") for a in actions), actions
    assert "ev:whoami:0" in actions

    (row,) = await wait_outbox_status(slack_bot, "sent")
    assert row.idempotency_key == f"reply:slack:{event_id}:0"
    metadata = call.json_field("metadata")
    assert metadata == {
        "event_type": "evangelist_outbox",
        "event_payload": {"key": row.idempotency_key},
    }
    assert row.result == {
        "platform": "slack",
        "channel": GENERAL,
        "message_id": call_ts(fake_slack),
    }


async def test_mention_inside_a_thread_is_answered_in_that_thread(
    slack: SlackSide, fake_slack: FakeSlackApi
) -> None:
    await slack.event(mention("whoami", thread_ts="1699999999.000100"))

    (call,) = await fake_slack.wait_for(POST_MESSAGE)
    assert (call.params["channel"], call.params["thread_ts"]) == (GENERAL, "1699999999.000100")


async def test_direct_message_whoami_answers_in_the_dm(
    slack: SlackSide, fake_slack: FakeSlackApi
) -> None:
    ts = next_ts()
    await slack.event(
        {
            "type": "message",
            "channel": "D0ADA0001",
            "user": ADA,
            "text": "whoami",
            "ts": ts,
            "event_ts": ts,
            "channel_type": "im",
        }
    )

    (call,) = await fake_slack.wait_for(POST_MESSAGE)
    assert call.params["channel"] == "D0ADA0001"
    assert not call.params.get("thread_ts")
    assert ADA in blocks_text(call)
    assert "Ada Okafor" in call.params["text"]


async def test_a_mention_keeps_the_people_it_names_but_not_the_bot(
    slack: SlackSide, fake_slack: FakeSlackApi
) -> None:
    await slack.event(mention(f"expertise set <@{ADA}|ada> admissions 2"))

    (call,) = await fake_slack.wait_for(POST_MESSAGE)
    assert "Set Ada Okafor on Admissions and applications to 2" in call.params["text"]


async def test_channel_message_without_mention_is_not_answered_and_not_stored(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    secret = "Quarterly-numbers-7f3a are terrible, do not share"
    quiet_id = await slack.event(channel_message(secret))
    await wait_counted(slack_bot, "ChannelMessage")
    # A later mention gets its answer; by then a reply to the first one would have been sent.
    loud = mention("help")
    loud_id = await slack.event(loud)
    await fake_slack.wait_for(POST_MESSAGE)
    await slack_bot.drain()

    assert [c.params.get("thread_ts") for c in fake_slack.calls_to(POST_MESSAGE)] == [loud["ts"]]
    assert len(await outbox_rows(slack_bot)) == 1
    dump = await database_dump(slack_bot)
    assert quiet_id not in dump  # nothing is written for a message not addressed to the bot
    assert "7f3a" not in dump and "Quarterly" not in dump
    assert loud_id in dump  # the scan does see what the mention left


async def test_reaction_is_acknowledged_counted_and_not_answered(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    await slack.event(
        {
            "type": "reaction_added",
            "user": ADA,
            "reaction": "tada",
            "item_user": TOM,
            "item": {"type": "message", "channel": GENERAL, "ts": "1700000000.000100"},
            "event_ts": next_ts(),
        }
    )
    await wait_counted(slack_bot, "ReactionAdded")

    async with slack.http.get(f"{slack_bot.url}/metrics") as response:
        assert response.status == 200
        metrics = await response.text()
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
    }
    key = (
        "evangelist_events_received_total",
        (("kind", "ReactionAdded"), ("platform", "slack")),
    )
    assert samples.get(key) == 1.0

    assert await slack_bot.drain() == 0
    assert await outbox_rows(slack_bot) == []
    assert fake_slack.calls_to(POST_MESSAGE) == []
    assert await reactions_recorded(slack_bot) == []  # someone else's message: no signal


async def reactions_recorded(bot: RunningBot) -> list[str]:
    async with bot.bot.db.transaction() as session:
        rows = await session.scalars(
            select(ParticipationRow.reference).where(ParticipationRow.kind == "reacted")
        )
        return list(rows.all())


async def test_a_reaction_to_the_bots_message_counts_as_taking_part_once(
    slack: SlackSide, slack_bot: RunningBot
) -> None:
    for reaction in ("tada", "eyes"):
        await slack.event(
            {
                "type": "reaction_added",
                "user": ADA,
                "reaction": reaction,
                "item_user": BOT_USER,
                "item": {"type": "message", "channel": GENERAL, "ts": "1700000000.000200"},
                "event_ts": next_ts(),
            }
        )

    async def both_taken_in() -> bool:
        async with slack_bot.bot.db.transaction() as session:
            rows = await session.scalars(select(ProcessedEventRow))
            return len(rows.all()) == 2

    await wait_until(both_taken_in, "both reactions to be processed")
    # One per person and message; the emoji and the message's words are not kept.
    assert await reactions_recorded(slack_bot) == [f"slack:{GENERAL}:1700000000.000200"]


async def test_member_joined_gets_one_welcome_dm_and_the_bot_itself_none(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    await slack.event(member_joined(BOT_USER))  # the bot was added to a channel
    await slack.event(member_joined(NEWCOMER))
    (call,) = await fake_slack.wait_for(POST_MESSAGE)
    assert call.params["channel"] in (NEWCOMER, f"D{NEWCOMER}")
    assert "Welcome" in call.params["text"]
    assert {b["action_id"] for b in buttons(call.json_field("blocks"))} == {
        "ev:help:0",
        "ev:dismiss:1",
    }
    [welcome] = await wait_outbox_status(slack_bot, "sent")

    again = await slack.event(member_joined(NEWCOMER, channel="C0RANDOM"))
    await wait_processed(slack_bot, again)
    await slack_bot.drain()

    assert len(fake_slack.calls_to(POST_MESSAGE)) == 1
    assert [r.idempotency_key for r in await outbox_rows(slack_bot)] == [welcome.idempotency_key]
    assert fake_slack.messages(BOT_USER) == []


async def test_app_home_opened_publishes_a_home_view(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    messages_tab = await slack.event(
        {"type": "app_home_opened", "user": ADA, "channel": "D0ADA0001", "tab": "messages"}
        | {"event_ts": next_ts()}
    )
    await slack.event(
        {"type": "app_home_opened", "user": ADA, "channel": "D0ADA0001", "tab": "home"}
        | {"event_ts": next_ts()}
    )

    (call,) = await fake_slack.wait_for("views.publish")
    assert call.params["user_id"] == ADA
    view = call.json_field("view")
    assert view["type"] == "home"
    assert "Hi Ada" in json.dumps(view["blocks"])
    assert fake_slack.views[ADA]["type"] == "home"
    await wait_outbox_status(slack_bot, "sent")
    assert messages_tab not in await processed_ids(slack_bot)  # the Messages tab is not Home
    assert fake_slack.calls_to(POST_MESSAGE) == []


# -- slash commands and buttons --------------------------------------------------------------------


async def test_slash_command_help_is_acked_fast_and_answered_ephemerally(
    slack: SlackSide, fake_slack: FakeSlackApi
) -> None:
    answer = await slack.command("help", user=ADA, token="cmd-help")

    assert answer.status == 200
    assert answer.seconds < 2.5  # Slack gives up after 3 s
    (call,) = await fake_slack.wait_for(RESPONSE_URL_CALL)
    assert call.params["token"] == "cmd-help"
    assert call.body["response_type"] == "ephemeral"
    assert "Hi Ada" in call.body["text"]
    assert "ev:whoami:0" in json.dumps(call.body["blocks"])
    assert fake_slack.calls_to(POST_MESSAGE) == []


async def test_slash_command_status_for_the_evangelist(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    answer = await slack.command("status", user=ADA, token="cmd-status")
    assert answer.status == 200

    (call,) = await fake_slack.wait_for(RESPONSE_URL_CALL)
    assert call.body["response_type"] == "ephemeral"
    assert call.body["text"] == "Delivery status"
    assert "Messages waiting to be sent" in json.dumps(call.body["blocks"])
    await wait_outbox_status(slack_bot, "sent")
    assert [(a.actor, a.action, a.outcome) for a in await audit_rows(slack_bot)] == [
        ("ada", "status.view", "ok")
    ]


async def test_slash_command_status_is_denied_to_others_and_audited(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    answer = await slack.command("status", user=TOM, token="cmd-denied")
    assert answer.status == 200

    (call,) = await fake_slack.wait_for(RESPONSE_URL_CALL)
    assert call.body["response_type"] == "ephemeral"
    assert "only the evangelist" in call.body["text"]
    assert "Delivery status" not in json.dumps(call.body)
    (row,) = await audit_rows(slack_bot)
    assert (row.actor, row.action, row.outcome) == (f"slack:{TOM}", "status", "denied")
    assert row.details == {"permission": "view delivery status"}


async def test_button_press_is_answered_ephemerally_once_per_action_ts(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    value = json.dumps({"v": ""})
    first = await slack.press("ev:whoami:0", value, user=ADA, token="btn-1", action_ts="1.000001")
    assert first.status == 200
    (call,) = await fake_slack.wait_for(RESPONSE_URL_CALL)
    assert call.params["token"] == "btn-1"
    assert call.body["response_type"] == "ephemeral"
    assert "Ada Okafor" in call.body["text"]
    assert ADA in json.dumps(call.body["blocks"])

    # The same click delivered again (same action_ts, new trigger and response_url).
    again = await slack.press("ev:whoami:0", value, user=ADA, token="btn-2", action_ts="1.000001")
    assert again.status == 200
    await wait_duplicates(slack_bot, 1)
    await slack_bot.drain()

    assert [c.params["token"] for c in fake_slack.calls_to(RESPONSE_URL_CALL)] == ["btn-1"]
    assert len(await outbox_rows(slack_bot)) == 1


async def test_unknown_button_gets_a_polite_answer(
    slack: SlackSide, fake_slack: FakeSlackApi
) -> None:
    answer = await slack.press("ev:gone:0", "{}", user=ADA, token="btn-old", action_ts="2.000001")
    assert answer.status == 200

    (call,) = await fake_slack.wait_for(RESPONSE_URL_CALL)
    assert "no longer active" in call.body["text"]


# -- request signing -------------------------------------------------------------------------------


async def test_bad_or_stale_signature_is_refused_without_side_effects(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    body = json.dumps(event_envelope(mention("help")))
    forged = slack_headers(body, secret="not-the-signing-secret")
    stale = slack_headers(body, timestamp=int(time.time()) - 301)
    tampered = slack_headers(body)

    assert (await slack.post(body, forged)).status == 401
    assert (await slack.post(body, stale)).status == 401
    assert (await slack.post(body.replace("help", "status"), tampered)).status == 401
    command = urlencode({"command": "/evangelist", "text": "status", "user_id": ADA})
    assert (
        await slack.post(command, slack_headers(command, secret="nope", content_type=FORM))
    ).status == 401

    assert fake_slack.calls == []
    assert await processed_ids(slack_bot) == set()
    assert await outbox_rows(slack_bot) == []


async def test_fresh_signature_just_inside_the_window_is_accepted(
    slack: SlackSide, fake_slack: FakeSlackApi
) -> None:
    body = json.dumps(event_envelope(mention("help")))
    answer = await slack.post(body, slack_headers(body, timestamp=int(time.time()) - 240))
    assert answer.status == 200
    await fake_slack.wait_for(POST_MESSAGE)


def _without(*names: str) -> Callable[[str], dict[str, str]]:
    def headers(body: str) -> dict[str, str]:
        return {k: v for k, v in slack_headers(body).items() if k not in names}

    return headers


def _timestamp(value: str) -> Callable[[str], dict[str, str]]:
    def headers(body: str) -> dict[str, str]:
        return slack_headers(body) | {"X-Slack-Request-Timestamp": value}

    return headers


@pytest.mark.parametrize(
    "make_headers",
    [
        pytest.param(_without("X-Slack-Signature"), id="no-signature"),
        pytest.param(
            _without("X-Slack-Signature", "X-Slack-Request-Timestamp"), id="no-signing-headers"
        ),
        pytest.param(_without("X-Slack-Request-Timestamp"), id="no-timestamp"),
        pytest.param(_timestamp("yesterday"), id="non-numeric-timestamp"),
    ],
)
async def test_missing_or_malformed_signing_headers_are_401(
    slack: SlackSide,
    slack_bot: RunningBot,
    fake_slack: FakeSlackApi,
    make_headers: Callable[[str], dict[str, str]],
) -> None:
    body = json.dumps(event_envelope(mention("help")))
    answer = await slack.post(body, make_headers(body))

    assert answer.status == 401, answer
    assert fake_slack.calls == []
    assert await processed_ids(slack_bot) == set()


# -- Events API retries ----------------------------------------------------------------------------


async def test_event_retries_are_answered_once(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    event = mention("help")
    event_id = await slack.event(event)
    await fake_slack.wait_for(POST_MESSAGE)
    for attempt in ("1", "2"):
        await slack.event(
            event,
            event_id=event_id,
            **{"X-Slack-Retry-Num": attempt, "X-Slack-Retry-Reason": "http_timeout"},
        )
    await wait_duplicates(slack_bot, 2)
    await slack_bot.drain()

    assert len(fake_slack.calls_to(POST_MESSAGE)) == 1
    assert len(await outbox_rows(slack_bot)) == 1


async def test_simultaneous_deliveries_of_one_event_are_answered_once(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    envelope = event_envelope(mention("help"))
    body = json.dumps(envelope)
    retry = {"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    answers = await asyncio.gather(
        slack.post(body, slack_headers(body)),
        slack.post(body, slack_headers(body) | retry),
        slack.post(body, slack_headers(body) | retry | {"X-Slack-Retry-Num": "2"}),
    )
    assert [a.status for a in answers] == [200, 200, 200]
    await wait_duplicates(slack_bot, 2)
    await fake_slack.wait_for(POST_MESSAGE)
    await slack_bot.drain()

    assert len(fake_slack.calls_to(POST_MESSAGE)) == 1
    assert [r.idempotency_key for r in await outbox_rows(slack_bot)] == [
        f"reply:slack:{envelope['event_id']}:0"
    ]


async def test_retry_whose_original_never_arrived_is_processed(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    event = mention("whoami")
    await slack.event(event, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})

    (call,) = await fake_slack.wait_for(POST_MESSAGE)
    assert call.params["thread_ts"] == event["ts"]
    assert ADA in blocks_text(call)


# -- delivery failures -----------------------------------------------------------------------------


async def test_rate_limited_post_is_delivered_once_after_retry_after(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    fake_slack.fail_next(POST_MESSAGE, status=429, headers={"Retry-After": "1"})
    event = mention("help")
    await slack.event(event)

    first, second = await fake_slack.wait_for(POST_MESSAGE, count=2, timeout=6)
    assert (first.failed, second.failed) == (True, False)
    assert second.received_at - first.received_at >= 1.0  # Retry-After honoured
    (row,) = await wait_outbox_status(slack_bot, "sent")
    assert row.attempts == 1
    await slack_bot.drain()
    assert len(fake_slack.calls_to(POST_MESSAGE)) == 2
    assert [m["thread_ts"] for m in fake_slack.messages(GENERAL)] == [event["ts"]]


async def test_permanent_error_marks_the_row_failed_and_is_not_retried(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi, clock: FrozenClock
) -> None:
    fake_slack.fail_next(POST_MESSAGE, status=200, body={"ok": False, "error": "channel_not_found"})
    await slack.event(mention("help"))

    (row,) = await wait_outbox_status(slack_bot, "failed")
    assert row.last_error is not None and "channel_not_found" in row.last_error
    assert row.attempts == 1
    clock.advance(hours=1)  # any retry would be due by now
    assert await slack_bot.drain() == 0

    assert len(fake_slack.calls_to(POST_MESSAGE)) == 1
    (after,) = await outbox_rows(slack_bot)
    assert after.status == "failed"
    assert (
        counter(
            slack_bot, "evangelist_outbox_dispatch_errors_total", platform="slack", kind="permanent"
        )
        == 1.0
    )


# -- bad input -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BadRequest:
    name: str
    body: str
    content_type: str
    status: int


def _signed_headers(case: BadRequest) -> dict[str, str]:
    return slack_headers(case.body, content_type=case.content_type)


BIG_TEXT = "x" * (MAX_BODY + 1)
BAD_REQUESTS = [
    BadRequest("malformed-json", '{"type": "event_callback", "event": ', "application/json", 400),
    BadRequest("json-not-an-object", "[1, 2, 3]", "application/json", 400),
    BadRequest("text-plain", '{"type": "url_verification"}', "text/plain", 415),
    BadRequest("callback-without-event", '{"type": "event_callback"}', "application/json", 400),
    BadRequest(
        "over-1-MiB",
        json.dumps(event_envelope(mention(BIG_TEXT))),
        "application/json",
        413,
    ),
    BadRequest("form-neither-command-nor-payload", "hello=world", FORM, 400),
    BadRequest("payload-not-json", "payload=%7Bnot+json", FORM, 400),
    BadRequest("payload-without-type", "payload=%7B%7D", FORM, 400),
]


@pytest.mark.parametrize("case", BAD_REQUESTS, ids=lambda c: c.name)
async def test_bad_input_is_refused_with_a_client_error(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi, case: BadRequest
) -> None:
    answer = await slack.post(case.body, _signed_headers(case))

    assert answer.status == case.status, answer.text[:300]
    assert answer.json()["error"]
    assert fake_slack.calls == []
    assert await processed_ids(slack_bot) == set()


async def test_unknown_event_type_is_acknowledged(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    pin = {
        "type": "pin_added",
        "user": ADA,
        "channel_id": GENERAL,
        "item": {"type": "message", "channel": GENERAL},
        "event_ts": next_ts(),
    }
    answer = await slack.signed(json.dumps(event_envelope(pin)))

    assert answer.status == 200
    assert await processed_ids(slack_bot) == set()
    assert fake_slack.calls_to(POST_MESSAGE) == []


async def test_url_verification_echoes_the_challenge(slack: SlackSide) -> None:
    challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    body = json.dumps(
        {"token": "verification-token-unused", "challenge": challenge, "type": "url_verification"}
    )
    answer = await slack.signed(body)

    assert answer.status == 200
    assert answer.json() == {"challenge": challenge}


async def test_service_keeps_answering_after_bad_input(
    slack: SlackSide, fake_slack: FakeSlackApi
) -> None:
    statuses = {}
    for case in BAD_REQUESTS:
        statuses[case.name] = (await slack.post(case.body, _signed_headers(case))).status
    pin = {"type": "pin_added", "user": ADA, "channel_id": GENERAL, "event_ts": next_ts()}
    statuses["unknown-event"] = (await slack.signed(json.dumps(event_envelope(pin)))).status
    body = json.dumps(event_envelope(mention("help")))
    statuses["bad-signature"] = (await slack.post(body, slack_headers(body, secret="x"))).status
    assert statuses == {c.name: c.status for c in BAD_REQUESTS} | {
        "unknown-event": 200,
        "bad-signature": 401,
    }

    event = mention("help")
    await slack.event(event)
    (call,) = await fake_slack.wait_for(POST_MESSAGE)
    assert call.params["thread_ts"] == event["ts"]


async def test_wrong_method_is_405(slack: SlackSide, slack_bot: RunningBot) -> None:
    async with slack.http.get(slack.events_url) as response:
        assert response.status == 405


# -- more Slack shapes ---------------------------------------------------------------------------


async def test_mention_also_delivered_as_channel_message_is_answered_once(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    # With message.channels subscribed, Slack sends a mention twice: as `message` and as
    # `app_mention`, with different event ids.
    event = mention("help")
    as_message = {k: v for k, v in event.items() if k != "type"} | {
        "type": "message",
        "channel_type": "channel",
    }
    await slack.event(as_message)
    await slack.event(event)
    (call,) = await fake_slack.wait_for(POST_MESSAGE)
    await slack_bot.drain()

    assert call.params["thread_ts"] == event["ts"]
    assert len(fake_slack.calls_to(POST_MESSAGE)) == 1
    assert len(await outbox_rows(slack_bot)) == 1


async def test_empty_slash_command_shows_help(slack: SlackSide, fake_slack: FakeSlackApi) -> None:
    assert (await slack.command("", user=ADA, token="cmd-empty")).status == 200

    (call,) = await fake_slack.wait_for(RESPONSE_URL_CALL)
    assert "Hi Ada" in call.body["text"]


async def test_expired_response_url_falls_back_to_post_ephemeral(
    slack: SlackSide, fake_slack: FakeSlackApi
) -> None:
    fake_slack.fail_next(RESPONSE_URL_CALL, status=404, body="expired_url")
    assert (await slack.command("whoami", user=ADA, token="cmd-expired")).status == 200

    (call,) = await fake_slack.wait_for("chat.postEphemeral")
    assert (call.params["channel"], call.params["user"]) == (GENERAL, ADA)
    assert ADA in blocks_text(call)
    assert fake_slack.calls_to(POST_MESSAGE) == []


async def test_button_on_the_home_tab_is_answered_by_direct_message(
    slack: SlackSide, fake_slack: FakeSlackApi
) -> None:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": ADA, "username": "ada", "name": "ada", "team_id": "T0001"},
        "api_app_id": "A0EVANGELIST",
        "token": "verification-token-unused",
        "container": {"type": "view", "view_id": "V00000001"},
        "trigger_id": slack.trigger_id(),
        "team": {"id": "T0001", "domain": "example"},
        "is_enterprise_install": False,
        "view": {"id": "V00000001", "type": "home", "blocks": []},
        "actions": [
            {
                "action_id": "ev:whoami:0",
                "block_id": "b0",
                "value": json.dumps({"v": ""}),
                "type": "button",
                "action_ts": "3.000001",
            }
        ],
    }
    body = urlencode({"payload": json.dumps(payload)})
    assert (await slack.signed(body, content_type=FORM)).status == 200

    (call,) = await fake_slack.wait_for(POST_MESSAGE)
    assert call.params["channel"] in (ADA, f"D{ADA}")
    assert ADA in blocks_text(call)


async def test_bot_and_edited_messages_in_a_dm_are_not_answered(
    slack: SlackSide, slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    def dm(**fields: Any) -> dict[str, Any]:
        ts = next_ts()
        base = {"type": "message", "channel": "D0ADA0001", "ts": ts, "event_ts": ts}
        return base | {"channel_type": "im"} | fields

    await slack.event(dm(user=BOT_USER, bot_id="B0BOT", text="This is how I know you"))
    await slack.event(dm(user="U0OTHERBOT", bot_id="B0OTHER", text="help"))
    await slack.event(
        dm(
            subtype="message_changed",
            message={"type": "message", "user": ADA, "text": "help", "ts": "1700000000.000001"},
        )
    )
    await slack.event(dm(user=ADA, text="whoami"))  # the one that gets an answer
    (call,) = await fake_slack.wait_for(POST_MESSAGE)
    await slack_bot.drain()

    assert ADA in blocks_text(call)
    assert len(fake_slack.calls_to(POST_MESSAGE)) == 1
    assert len(await outbox_rows(slack_bot)) == 1


async def test_welcome_does_not_show_the_raw_channel_id(
    slack: SlackSide, fake_slack: FakeSlackApi
) -> None:
    await slack.event(member_joined(NEWCOMER))

    (call,) = await fake_slack.wait_for(POST_MESSAGE)
    shown = re.sub(r"<#C0GENERAL(\|[^>]*)?>", "", blocks_text(call) + call.params["text"])
    assert GENERAL not in shown


# -- delivery failures that clear up ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "failed_calls"),
    [
        pytest.param({"status": 429, "headers": {"Retry-After": "1"}, "times": 2}, 2, id="429x2"),
        pytest.param(
            {"status": 200, "body": {"ok": False, "error": "internal_error"}}, 1, id="internal"
        ),
        pytest.param({"status": 503, "body": "Service Unavailable"}, 1, id="http-503"),
    ],
)
async def test_transient_failure_goes_back_to_the_outbox_and_is_sent_once_later(
    slack: SlackSide,
    slack_bot: RunningBot,
    fake_slack: FakeSlackApi,
    clock: FrozenClock,
    fault: dict[str, Any],
    failed_calls: int,
) -> None:
    fake_slack.fail_next(POST_MESSAGE, **fault)
    await slack.event(mention("help"))

    async def waiting_for_retry() -> bool:
        rows = await outbox_rows(slack_bot)
        return bool(rows) and rows[0].status == "pending" and rows[0].last_error is not None

    await wait_until(waiting_for_retry, "the row to be put back for a retry", within=6)
    assert len(fake_slack.calls_to(POST_MESSAGE)) == failed_calls
    clock.advance(minutes=1)  # the row's retry time (backoff or Retry-After) has come

    calls = await fake_slack.wait_for(POST_MESSAGE, count=failed_calls + 1)
    (row,) = await wait_outbox_status(slack_bot, "sent")
    await slack_bot.drain()
    assert [c.failed for c in fake_slack.calls_to(POST_MESSAGE)] == [True] * failed_calls + [False]
    assert len(fake_slack.messages(GENERAL)) == 1
    assert calls[-1].json_field("metadata")["event_payload"]["key"] == row.idempotency_key


# -- more bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param(
            '{"type": "event_callback", "event": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "application/json",
            id="event-json",
        ),
        pytest.param(urlencode({"payload": "[" * 100_000 + "]" * 100_000}), FORM, id="payload"),
    ],
)
async def test_deeply_nested_json_is_a_400(
    slack: SlackSide, fake_slack: FakeSlackApi, body: str, content_type: str
) -> None:
    answer = await slack.signed(body, content_type=content_type)

    assert answer.status == 400, answer.text[:200]
    assert fake_slack.calls == []
