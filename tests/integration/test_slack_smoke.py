from __future__ import annotations

import json

import aiohttp

from tests.conftest import RunningBot, event_envelope, slack_headers
from tests.fakes.slack_api import FakeSlackApi


async def test_mention_help_is_answered_in_thread(
    slack_bot: RunningBot, fake_slack: FakeSlackApi
) -> None:
    body = json.dumps(
        event_envelope(
            {
                "type": "app_mention",
                "user": "U0ADA0001",
                "text": "<@U0BOT> help",
                "ts": "1700000000.000100",
                "channel": "C0GENERAL",
                "event_ts": "1700000000.000100",
            }
        )
    )
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{slack_bot.url}/slack/events", data=body, headers=slack_headers(body)
        ) as response,
    ):
        assert response.status == 200
    calls = await fake_slack.wait_for("chat.postMessage")
    assert calls[0].params["channel"] == "C0GENERAL"
    assert calls[0].params["thread_ts"] == "1700000000.000100"
    assert "Ada" in calls[0].params["text"]
