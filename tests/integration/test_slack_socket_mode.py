"""Slack Socket Mode: events over a WebSocket instead of /slack/events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.app import build
from bot.config.organisation import OrganisationConfig
from bot.core.clock import FrozenClock
from tests.conftest import BOT_TOKEN, RunningBot, event_envelope, make_settings, serving
from tests.fakes.slack_api import FakeSlackApi
from tests.fakes.slack_socket import FakeSocketMode


@pytest.fixture
async def socket_bot(
    database_url: str,
    fake_slack: FakeSlackApi,
    clock: FrozenClock,
    organisation: OrganisationConfig,
) -> AsyncIterator[tuple[RunningBot, FakeSocketMode]]:
    socket = await FakeSocketMode().start()
    opened: list[str] = []

    def connections_open(call: Any) -> dict[str, Any]:
        opened.append(call.headers.get("Authorization", ""))
        return {"ok": True, "url": socket.ws_url}

    fake_slack._handlers["apps.connections.open"] = connections_open
    settings = make_settings(
        database_url,
        slack_bot_token=BOT_TOKEN,
        slack_app_token="xapp-1-A0EVANGELIST-test",
        slack_api_base_url=fake_slack.base_url,
        outbox_poll_seconds=0.05,
    )
    async with serving(build(settings, clock=clock, organisation=organisation)) as running:
        await socket.wait_connected()
        # Socket Mode authenticates with the app-level token, not the bot token.
        assert opened == ["Bearer xapp-1-A0EVANGELIST-test"]
        yield running, socket
    await socket.stop()


async def test_event_over_socket_is_acked_and_answered(
    socket_bot: tuple[RunningBot, FakeSocketMode], fake_slack: FakeSlackApi
) -> None:
    running, socket = socket_bot
    mention = event_envelope(
        {
            "type": "app_mention",
            "user": "U0ADA0001",
            "text": "<@U0BOT> whoami",
            "ts": "1700000001.000100",
            "channel": "C0GENERAL",
            "event_ts": "1700000001.000100",
        },
        event_id="EvSOCKET1",
    )
    await socket.send("events_api", mention)
    [call] = await fake_slack.wait_for("chat.postMessage")
    assert call.params["thread_ts"] == "1700000001.000100"
    assert "U0ADA0001" in call.params["text"] + str(call.params.get("blocks"))
    # Slack redelivers over the socket with retry_attempt set: still answered once.
    await socket.send("events_api", mention, retry_attempt=1)
    await socket.send(
        "slash_commands",
        {
            "command": "/evangelist",
            "text": "help",
            "user_id": "U0ADA0001",
            "channel_id": "C0GENERAL",
            "trigger_id": "T-socket-1",
            "response_url": fake_slack.url + "response/socket-1",
        },
    )
    await running.drain()
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    # No HTTP endpoint for Slack events in Socket Mode.
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{running.url}/slack/events", json={}) as response,
    ):
        assert response.status == 404
