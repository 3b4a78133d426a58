"""The question desk on Slack and Teams, through their real entry points.

A question arrives as a signed Meta webhook, reaches an expert as a Slack Block Kit DM or a Teams
Adaptive Card, is passed on and claimed by pressing the buttons the way each platform sends
presses (`block_actions` with `payload=`, an Action.Submit message activity), and is answered by
the page's reply arriving as another webhook. Chat messages reach the desk through the Slack
message shortcut, the Teams message action and a pasted brand-page link. Everything leaves
through the outbox to the fake Slack Web API and the fake Bot Connector; tests wait on the calls
the fakes receive, never on the clock.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import build
from bot.config.organisation import OrganisationConfig, parse_organisation
from bot.core.clock import FrozenClock
from bot.platforms.teams.inbound import html_to_text
from bot.storage.models import ConversationReferenceRow, ParticipationRow, QuestionRow
from tests.conftest import (
    BOT_TOKEN,
    SIGNING_SECRET,
    RunningBot,
    event_envelope,
    make_settings,
    serving,
    slack_headers,
)
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import RESPONSE_URL_CALL, FakeSlackApi

META_SECRET = "s3cret"
PAGE = "111"
POST = "111_1"
QUESTION = "When is the application deadline for the autumn intake?"
RAVI, MIA, TOM = "U0RAVI001", "U0MIA0001", "U0TOM0001"
TEAMS_RAVI, TEAMS_MIA, TEAMS_TOM = "29:1ravi", "29:1mia", "29:1tom"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd0110001"
BOT_ID = "28:bot-id"
CARD = "application/vnd.microsoft.card.adaptive"
FORM = "application/x-www-form-urlencoded"
POST_MESSAGE, UPDATE = "chat.postMessage", "chat.update"
SEND_TO_DESK = {"composeExtension": {"type": "message", "text": "Sent to the question desk."}}

# Monday 10:00 in London (the clock fixture): Ravi and Mia are at work, Noah in New York is not.
ORG = """
organisation: {name: Northfield University, timezone: Europe/London}
questions:
  step_minutes: 60
  experts_before_channel: 2
  channel_minutes: 60
  capacity: 2
people:
  - {id: ada, name: Ada Okafor, timezone: Europe/London, roles: [evangelist],
     slack: U0ADA0001, teams: "29:1ada"}
  - {id: ravi, name: Ravi Menon, timezone: Europe/London, roles: [expert],
     slack: U0RAVI001, teams: "29:1ravi"}
  - {id: mia, name: Mia Schulz, timezone: Europe/Berlin, roles: [expert],
     slack: U0MIA0001, teams: "29:1mia"}
  - {id: noah, name: Noah Brown, timezone: America/New_York, roles: [expert],
     slack: U0NOAH001, teams: "29:1noah"}
  - {id: tom, name: Tom Becker, timezone: Europe/London, slack: U0TOM0001, teams: "29:1tom"}
teams:
  - {id: admissions, name: Admissions, members: [ravi, mia, noah, tom]}
topics:
  - id: admissions
    name: Admissions
    keywords: [apply, application, deadline, tuition, fees]
    experts:
      - {person: ravi, weight: 2}
      - {person: mia, weight: 1}
      - {person: noah, weight: 3}
    channel: "{channel}"
    fallback_owner: ada
sources:
  - {id: page, kind: facebook_page, page_id: "111", name: our Facebook Page, poll_minutes: 0}
"""

_ids = itertools.count(1)


def next_ts() -> str:
    return f"1772445600.{next(_ids):06d}"


SLACK_CHANNEL = "C0ADMISSIONS"
TEAMS_CHANNEL = "19:admissions@thread.tacv2"


def organisation(topic_channel: str) -> OrganisationConfig:
    return parse_organisation(ORG.replace("{channel}", topic_channel))


# -- Meta's side -------------------------------------------------------------------------------


def feed_comment(
    comment_id: str, message: str, *, parent_id: str = POST, sender: tuple[str, str]
) -> dict[str, Any]:
    """A Page `feed` notification for one new comment (PLATFORM-FACTS §D.1)."""
    value = {
        "item": "comment",
        "verb": "add",
        "post_id": POST,
        "comment_id": comment_id,
        "parent_id": parent_id,
        "from": {"id": sender[0], "name": sender[1]},
        "message": message,
        "created_time": 1772445600,
    }
    entry = {"id": PAGE, "time": 1772445600, "changes": [{"field": "feed", "value": value}]}
    return {"object": "page", "entry": [entry]}


async def meta_webhook(bot: RunningBot, payload: dict[str, Any]) -> dict[str, Any]:
    body = json.dumps(payload).encode()
    digest = hmac.new(META_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{bot.url}/webhooks/meta", data=body, headers=headers) as response,
    ):
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


async def ask_on_the_page(bot: RunningBot) -> None:
    answer = await meta_webhook(bot, feed_comment("111_1_c1", QUESTION, sender=("9001", "Maria")))
    assert answer == {"items": 1, "new_questions": 1}


async def page_replies(bot: RunningBot) -> None:
    reply = feed_comment(
        "111_1_r1", "Hi Maria, it is 30 June.", parent_id="111_1_c1", sender=(PAGE, "Northfield")
    )
    assert (await meta_webhook(bot, reply))["items"] == 1


async def nobody_takes_it(bot: RunningBot, clock: FrozenClock) -> None:
    """An hour each with Ravi and then Mia, unclaimed: the question goes to the topic channel."""
    assert bot.bot.desk is not None
    for _ in range(2):
        clock.advance(timedelta(minutes=60))
        assert await bot.bot.desk.run_due() == 1


# -- the database --------------------------------------------------------------------------------


async def questions(bot: RunningBot) -> list[QuestionRow]:
    async with bot.bot.db.transaction() as session:
        return list((await session.scalars(select(QuestionRow).order_by(QuestionRow.id))).all())


async def credit(bot: RunningBot) -> list[tuple[str, int | None]]:
    async with bot.bot.db.transaction() as session:
        rows = await session.execute(
            select(ParticipationRow.kind, ParticipationRow.person_id).where(
                ParticipationRow.kind.in_(("question_answered", "answer_verified"))
            )
        )
        return sorted((kind, person) for kind, person in rows.all())


# -- Slack's side --------------------------------------------------------------------------------


@dataclass
class Slack:
    bot: RunningBot
    fake: FakeSlackApi
    http: aiohttp.ClientSession

    async def interaction(self, payload: dict[str, Any]) -> None:
        """An interaction payload, form-encoded and signed as Slack sends it; Slack wants a 200."""
        body = urlencode({"payload": json.dumps(payload)})
        headers = slack_headers(body, content_type=FORM)
        async with self.http.post(
            f"{self.bot.url}/slack/events", data=body, headers=headers
        ) as response:
            assert response.status == 200, await response.text()

    async def event(self, event: dict[str, Any], *, event_id: str | None = None) -> None:
        body = json.dumps(event_envelope(event, event_id=event_id))
        async with self.http.post(
            f"{self.bot.url}/slack/events", data=body, headers=slack_headers(body)
        ) as response:
            assert response.status == 200, await response.text()

    async def press(
        self, user: str, message: dict[str, Any], action: str, *, channel: str, token: str
    ) -> None:
        """`block_actions` for the button `action` on a message the bot posted in `channel`."""
        [button] = [b for b in buttons(message) if b["action_id"].startswith(f"ev:{action}:")]
        await self.interaction(
            {
                "type": "block_actions",
                "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
                "api_app_id": "A0EVANGELIST",
                "token": "verification-token-unused",
                "container": {
                    "type": "message",
                    "message_ts": message["ts"],
                    "channel_id": channel,
                    "is_ephemeral": bool(message.get("ephemeral")),
                },
                "trigger_id": f"{next(_ids)}.1000000001.abc",
                **({} if message.get("ephemeral") else {"message": message}),
                "team": {"id": "T0001", "domain": "example"},
                "channel": {"id": channel, "name": "directmessage"},
                "state": {"values": {}},
                "response_url": self.fake.response_url(token),
                "actions": [
                    {
                        "action_id": button["action_id"],
                        "block_id": "b0",
                        "text": button["text"],
                        "value": button["value"],
                        "type": "button",
                        "action_ts": next_ts(),
                    }
                ],
            }
        )

    async def shortcut(self, user: str, text: str, *, token: str) -> None:
        """The message shortcut on someone's message in #general (a `message_action`)."""
        ts = next_ts()
        await self.interaction(
            {
                "type": "message_action",
                "token": "verification-token-unused",
                "action_ts": next_ts(),
                "team": {"id": "T0001", "domain": "example"},
                "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
                "channel": {"id": "C0GENERAL", "name": "general"},
                "is_enterprise_install": False,
                "callback_id": "ev_send_to_desk",
                "trigger_id": f"{next(_ids)}.1000000001.def",
                "message_ts": ts,
                "message": {"type": "message", "user": "U0GRACE01", "ts": ts, "text": text},
                "response_url": self.fake.response_url(token),
            }
        )

    def dm(self, user: str) -> list[dict[str, Any]]:
        return self.fake.messages(user)


def buttons(message: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        element
        for block in message.get("blocks") or []
        if block.get("type") == "actions"
        for element in block["elements"]
    ]


def shown(message: dict[str, Any]) -> str:
    """What a person reads in a Slack message: its text and its blocks' text."""
    return message.get("text", "") + json.dumps(message.get("blocks") or [], ensure_ascii=False)


async def response_to(fake: FakeSlackApi, token: str, *, posts: int) -> dict[str, Any]:
    """What the bot posted to the response_url `token`, once `posts` posts to any arrived."""
    calls = await fake.wait_for(RESPONSE_URL_CALL, count=posts)
    [answer] = [call.body for call in calls if call.params["token"] == token]
    assert isinstance(answer, dict)
    return answer


@pytest.fixture
async def slack(
    database_url: str, fake_slack: FakeSlackApi, clock: FrozenClock
) -> AsyncIterator[Slack]:
    settings = make_settings(
        database_url,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_base_url=fake_slack.base_url,
        outbox_poll_seconds=0.05,
        meta_app_secret=META_SECRET,
        meta_verify_token="tok",
    )
    async with (
        serving(build(settings, clock=clock, organisation=organisation(SLACK_CHANNEL))) as running,
        aiohttp.ClientSession() as http,
    ):
        yield Slack(running, fake_slack, http)


# -- Slack ---------------------------------------------------------------------------------------


async def test_slack_question_is_passed_on_claimed_answered_and_credited(slack: Slack) -> None:
    fake = slack.fake
    await ask_on_the_page(slack.bot)

    (asked,) = await fake.wait_for(POST_MESSAGE)
    assert asked.params["channel"] == RAVI  # a DM by user id
    [to_ravi] = slack.dm(RAVI)
    assert QUESTION in shown(to_ravi)
    actions = [b["action_id"] for b in buttons(to_ravi)]
    assert actions[0].startswith("ev:q.claim") and "ev:q.busy:2" in actions

    await slack.press(RAVI, to_ravi, "q.busy", channel=f"D{RAVI}", token="ravi-busy")

    await fake.wait_for(POST_MESSAGE, count=2)
    (passed,) = await fake.wait_for(UPDATE)
    assert (passed.params["channel"], passed.params["ts"]) == (f"D{RAVI}", to_ravi["ts"])
    [to_ravi] = slack.dm(RAVI)
    assert "You passed this one on" in shown(to_ravi) and not buttons(to_ravi)
    [to_mia] = slack.dm(MIA)
    assert QUESTION in shown(to_mia)
    assert "passed question" in (await response_to(fake, "ravi-busy", posts=1))["text"]

    await slack.press(MIA, to_mia, "q.claim", channel=f"D{MIA}", token="mia-claim")

    _, claimed = await fake.wait_for(UPDATE, count=2)
    assert claimed.params["ts"] == to_mia["ts"]
    [to_mia] = slack.dm(MIA)
    assert "Mia Schulz is answering" in shown(to_mia)
    assert [b["action_id"] for b in buttons(to_mia)] == ["ev:q.done:0", "ev:q.release:1"]
    assert "is yours" in (await response_to(fake, "mia-claim", posts=2))["text"]
    [question] = await questions(slack.bot)
    assert question.status == "claimed"

    await page_replies(slack.bot)

    await fake.wait_for(UPDATE, count=3)
    await fake.wait_for(POST_MESSAGE, count=3)
    to_mia, thanks = slack.dm(MIA)
    assert "Answered by Mia Schulz" in shown(to_mia) and not buttons(to_mia)
    assert "is on the page" in shown(thanks)
    [question] = await questions(slack.bot)
    assert (question.status, question.answer_kind) == ("answered", "page")
    mia = question.answered_by_id
    assert await credit(slack.bot) == [("answer_verified", mia), ("question_answered", mia)]


async def test_slack_channel_post_is_claimed_from_the_channel(
    slack: Slack, clock: FrozenClock
) -> None:
    fake = slack.fake
    await ask_on_the_page(slack.bot)
    await fake.wait_for(POST_MESSAGE)
    await nobody_takes_it(slack.bot, clock)

    *_, call = await fake.wait_for(POST_MESSAGE, count=3)
    assert call.params["channel"] == SLACK_CHANNEL
    [post] = fake.messages(SLACK_CHANNEL)
    assert "Can anyone help?" in shown(post) and QUESTION in shown(post)

    await slack.press(TOM, post, "q.claim", channel=SLACK_CHANNEL, token="tom-claim")

    assert "is yours" in (await response_to(fake, "tom-claim", posts=1))["text"]
    *_, to_tom = await fake.wait_for(POST_MESSAGE, count=4)
    assert to_tom.params["channel"] == TOM
    await fake.wait_for(UPDATE, count=3)  # Ravi's and Mia's "passed on", then the post
    [post] = fake.messages(SLACK_CHANNEL)
    assert "Tom Becker is answering this one" in shown(post) and not buttons(post)
    [claimed] = slack.dm(TOM)
    assert [b["action_id"] for b in buttons(claimed)] == ["ev:q.done:0", "ev:q.release:1"]
    [question] = await questions(slack.bot)
    assert question.status == "claimed"


async def test_slack_message_shortcut_sends_a_message_to_the_desk(slack: Slack) -> None:
    fake = slack.fake
    text = f"Someone asked us: {QUESTION} <https://www.facebook.com/northfield/posts/123|on FB>"

    await slack.shortcut(TOM, text, token="tom-shortcut")

    answer = await response_to(fake, "tom-shortcut", posts=1)
    assert answer["response_type"] == "ephemeral"
    [question] = await questions(slack.bot)
    assert (
        answer["text"]
        == f"Tracking it as question #{question.id}. I'll bring it to the right expert."
    )
    assert (question.source_key, question.via) == ("channel", "channel")
    assert question.url == "https://www.facebook.com/northfield/posts/123"
    assert QUESTION in question.text and "<" not in question.text
    assert question.title == "Brought to the desk by Tom Becker"
    # The desk takes it from there: the right expert gets it.
    (asked,) = await fake.wait_for(POST_MESSAGE)
    assert asked.params["channel"] == RAVI

    # The same message sent again is recognised.
    await slack.shortcut(TOM, text, token="tom-again")
    again = await response_to(fake, "tom-again", posts=2)
    assert again["text"] == "That one is already on the question desk. Thank you!"
    assert len(await questions(slack.bot)) == 1


async def test_slack_pasted_page_link_offers_tracking_to_the_paster_only(slack: Slack) -> None:
    fake = slack.fake
    ts = next_ts()
    await slack.event(
        {
            "type": "message",
            "channel": "C0GENERAL",
            "user": TOM,
            "text": f"{QUESTION} <https://www.facebook.com/northfield/posts/123>",
            "ts": ts,
            "event_ts": ts,
            "channel_type": "channel",
        }
    )

    (offer,) = await fake.wait_for("chat.postEphemeral")
    assert (offer.params["channel"], offer.params["user"]) == ("C0GENERAL", TOM)
    [ephemeral] = fake.ephemerals
    [track] = buttons(ephemeral)
    assert track["action_id"] == "ev:q.track:0"
    assert await questions(slack.bot) == [], "nothing is tracked before the press"

    await slack.press(
        TOM, {**ephemeral, "ephemeral": True}, "q.track", channel="C0GENERAL", token="tom-track"
    )

    answer = await response_to(fake, "tom-track", posts=1)
    [question] = await questions(slack.bot)
    assert answer["text"].startswith(f"Tracking it as question #{question.id}.")
    assert question.url == "https://www.facebook.com/northfield/posts/123"
    assert question.via == "channel" and QUESTION in question.text


# -- Teams's side -------------------------------------------------------------------------------


@dataclass
class Teams:
    bot: RunningBot
    fake: FakeBotConnector
    http: aiohttp.ClientSession

    async def post(self, activity: dict[str, Any]) -> tuple[int, Any]:
        async with self.http.post(
            f"{self.bot.url}/api/messages",
            data=json.dumps(activity),
            headers={"Content-Type": "application/json"},
        ) as response:
            body = await response.json() if response.content_type == "application/json" else None
            return response.status, body

    def activity(
        self, user: tuple[str, str], conversation: str, kind: str = "personal", **extra: Any
    ) -> dict[str, Any]:
        """An Activity in Teams' wire format from `user` (id, name) in `conversation`."""
        return {
            "type": "message",
            "id": f"1772445600{next(_ids):06d}",
            "timestamp": "2026-03-02T10:00:00.000Z",
            "serviceUrl": self.fake.service_url,
            "channelId": "msteams",
            "from": {"id": user[0], "name": user[1]},
            "conversation": {"id": conversation, "conversationType": kind, "tenantId": TENANT},
            "recipient": {"id": BOT_ID, "name": "Evangelist"},
            "channelData": {"tenant": {"id": TENANT}},
            **extra,
        }

    async def press(
        self, user: tuple[str, str], chat: str, card: dict[str, Any], action: str
    ) -> None:
        """Action.Submit: a message activity with the button's data, replying to the card."""
        [data] = [a["data"] for a in card_of(card)["actions"] if a["data"]["ev_action"] == action]
        press = self.activity(user, chat, replyToId=card["id"], value=data)
        assert (await self.post(press))[0] == 200

    async def chat_with(self, user: str, *, sent: int) -> str:
        """The bot's one-to-one chat with `user`, once the bot sent `sent` activities in all."""
        await self.fake.wait_for_activities(count=sent)
        [chat] = [c for c, p in self.fake.conversations.items() if p["members"] == [{"id": user}]]
        return chat

    def now(self, chat: str, sent: dict[str, Any]) -> dict[str, Any]:
        """An activity the bot sent, as it is after the bot's updates."""
        current = self.fake.activity(chat, sent["id"])
        assert current is not None
        return current


def card_of(sent: dict[str, Any]) -> dict[str, Any]:
    (attachment,) = sent["attachments"]
    assert attachment["contentType"] == CARD
    content: dict[str, Any] = attachment["content"]
    return content


def words(sent: dict[str, Any]) -> str:
    parts = [sent.get("text") or "", sent.get("summary") or ""]
    for attachment in sent.get("attachments") or []:
        parts.extend(b.get("text", "") for b in (attachment.get("content") or {}).get("body", []))
    return "\n".join(parts)


@pytest.fixture
async def teams(
    database_url: str,
    fake_connector: FakeBotConnector,
    clock: FrozenClock,
) -> AsyncIterator[Teams]:
    """Teams with authentication off; proactive chats are opened through the fake connector."""
    settings = make_settings(
        database_url,
        outbox_poll_seconds=0.05,
        teams_service_url=fake_connector.service_url,
        teams_tenant_id=TENANT,
        meta_app_secret=META_SECRET,
        meta_verify_token="tok",
    )
    async with (
        serving(build(settings, clock=clock, organisation=organisation(TEAMS_CHANNEL))) as running,
        aiohttp.ClientSession() as http,
    ):
        yield Teams(running, fake_connector, http)


# -- Teams ---------------------------------------------------------------------------------------


async def test_teams_question_is_passed_on_claimed_answered_and_credited(teams: Teams) -> None:
    fake = teams.fake
    # The bot is in use: someone talked to it, so it knows its own id and the service URL.
    assert (await teams.post(teams.activity((TEAMS_TOM, "Tom Becker"), "a:tom", text="hi")))[
        0
    ] == 200
    await fake.wait_for_activities("a:tom")

    await ask_on_the_page(teams.bot)

    ravi = await teams.chat_with(TEAMS_RAVI, sent=2)  # Ravi never wrote: a chat is created
    [to_ravi] = fake.activities(ravi)
    assert QUESTION in words(to_ravi)
    actions = card_of(to_ravi)["actions"]
    assert {a["type"] for a in actions} == {"Action.Submit"}
    assert actions[0]["data"]["ev_action"] == "q.claim"
    assert [a["data"]["ev_action"] for a in actions][1:3] == ["q.topic", "q.busy"]

    await teams.press((TEAMS_RAVI, "Ravi Menon"), ravi, to_ravi, "q.busy")

    (passed,) = await fake.wait_for("update_activity")
    assert passed.params == {"conversation_id": ravi, "activity_id": to_ravi["id"]}
    assert "You passed this one on" in words(teams.now(ravi, to_ravi))
    assert "actions" not in card_of(teams.now(ravi, to_ravi))
    mia = await teams.chat_with(TEAMS_MIA, sent=4)
    [to_mia] = fake.activities(mia)
    assert QUESTION in words(to_mia)
    _, said = fake.activities(ravi)
    assert "passed question" in words(said)

    await teams.press((TEAMS_MIA, "Mia Schulz"), mia, to_mia, "q.claim")

    await fake.wait_for("update_activity", count=2)
    claimed = card_of(teams.now(mia, to_mia))
    assert "Mia Schulz is answering" in words(teams.now(mia, to_mia))
    assert [a["data"]["ev_action"] for a in claimed["actions"]] == ["q.done", "q.release"]
    [question] = await questions(teams.bot)
    assert question.status == "claimed"

    await page_replies(teams.bot)

    await fake.wait_for("update_activity", count=3)
    in_mia_chat = await fake.wait_for_activities(mia, count=3)  # the card, "yours", the credit
    assert "Answered by Mia Schulz" in words(teams.now(mia, to_mia))
    assert "actions" not in card_of(teams.now(mia, to_mia))
    assert any("is on the page" in words(sent) for sent in in_mia_chat)
    [question] = await questions(teams.bot)
    assert (question.status, question.answer_kind) == ("answered", "page")
    answerer = question.answered_by_id
    assert await credit(teams.bot) == [
        ("answer_verified", answerer),
        ("question_answered", answerer),
    ]


async def test_teams_channel_post_is_claimed_from_the_channel(
    teams: Teams, clock: FrozenClock
) -> None:
    fake = teams.fake
    team = {
        "teamsChannelId": TEAMS_CHANNEL,
        "teamsTeamId": TEAMS_CHANNEL,
        "channel": {"id": TEAMS_CHANNEL},
        "team": {"id": TEAMS_CHANNEL, "name": "Admissions"},
        "tenant": {"id": TENANT},
    }
    # The bot was added to the team: from then on it can post in the channel.
    added = teams.activity(
        ("29:1owner", "Team Owner"),
        TEAMS_CHANNEL,
        "channel",
        type="conversationUpdate",
        membersAdded=[{"id": BOT_ID}],
        channelData=team,
    )
    assert (await teams.post(added))[0] == 200
    await ask_on_the_page(teams.bot)
    await fake.wait_for_activities(count=1)
    await nobody_takes_it(teams.bot, clock)

    [post] = await fake.wait_for_activities(TEAMS_CHANNEL)
    assert "Can anyone help?" in words(post) and QUESTION in words(post)
    await fake.wait_for("update_activity", count=2)  # Ravi's and Mia's cards: passed on

    # Pressed in the channel, the card's data arrives from the post's thread.
    thread = f"{TEAMS_CHANNEL};messageid={post['id']}"
    [data] = [a["data"] for a in card_of(post)["actions"]]
    press = teams.activity(
        (TEAMS_TOM, "Tom Becker"),
        thread,
        "channel",
        replyToId=post["id"],
        value=data,
        channelData=team,
    )
    assert (await teams.post(press))[0] == 200

    [thanks] = await fake.wait_for_activities(thread)
    assert "is yours" in words(thanks)
    tom = await teams.chat_with(TEAMS_TOM, sent=5)
    [claimed] = fake.activities(tom)
    assert [a["data"]["ev_action"] for a in card_of(claimed)["actions"]] == ["q.done", "q.release"]
    *_, update = await fake.wait_for("update_activity", count=3)
    assert update.params == {"conversation_id": TEAMS_CHANNEL, "activity_id": post["id"]}
    assert "Tom Becker is answering this one" in words(teams.now(TEAMS_CHANNEL, post))
    assert "actions" not in card_of(teams.now(TEAMS_CHANNEL, post))


def message_action(teams: Teams, command: str = "sendToDesk", **value: Any) -> dict[str, Any]:
    """Tom uses the message action on Grace's message in their one-to-one chat."""
    chat = "19:tom_grace@unq.gbl.spaces"
    payload = {
        "id": "1772445600999",
        "messageType": "message",
        "createdDateTime": "2026-03-02T09:58:00.000Z",
        "from": {
            "user": {"id": "29:1grace", "displayName": "Grace", "userIdentityType": "aadUser"}
        },
        "body": {
            "contentType": "html",
            "content": (
                '<p>Someone asked on <a href="https://www.facebook.com/northfield/posts/123">'
                f"our page</a>:</p><p>{QUESTION}</p>"
            ),
        },
        "linkToMessage": f"https://teams.microsoft.com/l/message/{chat}/1772445600999",
    }
    return teams.activity(
        (TEAMS_TOM, "Tom Becker"),
        chat,
        type="invoke",
        name="composeExtension/submitAction",
        value={
            "commandId": command,
            "commandContext": "message",
            "messagePayload": payload,
            "context": {"theme": "default"},
            **value,
        },
    )


async def test_teams_message_action_sends_a_message_to_the_desk(teams: Teams) -> None:
    invoke = message_action(teams, data={"note": "She asked twice"})

    status, body = await teams.post(invoke)

    assert (status, body) == (200, SEND_TO_DESK)
    [question] = await questions(teams.bot)
    assert (question.source_key, question.via) == ("channel", "channel")
    # The brand-page link in the message is what the expert opens, not the Teams message link.
    assert question.url == "https://www.facebook.com/northfield/posts/123"
    assert QUESTION in question.text and "<p>" not in question.text
    assert "Note from Tom Becker: She asked twice" in question.text
    # The answer goes to Tom's own chat with the bot, not into his chat with Grace...
    tom = await teams.chat_with(TEAMS_TOM, sent=2)
    texts = [words(a) for a in teams.fake.activities(tom)]
    assert f"Tracking it as question #{question.id}." in "\n".join(texts)
    # ...and that chat, where the bot cannot write, is not remembered as Tom's chat with it.
    async with teams.bot.bot.db.transaction() as session:
        references = (await session.scalars(select(ConversationReferenceRow))).all()
    assert "19:tom_grace@unq.gbl.spaces" not in [r.conversation_id for r in references]
    # The desk routed it like any other question.
    ravi = await teams.chat_with(TEAMS_RAVI, sent=2)
    assert QUESTION in words(teams.fake.activities(ravi)[0])


async def test_teams_unknown_message_action_is_a_400(teams: Teams) -> None:
    status, body = await teams.post(message_action(teams, command="somethingElse"))
    assert status == 400 and body["code"] == "NotSupported"
    no_message = message_action(teams)
    del no_message["value"]["messagePayload"]
    status, body = await teams.post(no_message)
    assert status == 400 and body["code"] == "BadRequest"
    assert await questions(teams.bot) == []


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>When is the deadline?</p>", "When is the deadline?"),
        ("<div>one<br>two</div><p>three &amp; four</p>", "one\ntwo\n\nthree & four"),
        (
            '<p><a href="https://www.facebook.com/p/1">our post</a> asks</p>',
            "our post https://www.facebook.com/p/1 asks",
        ),
        (
            '<a href="https://fb.com/p/1">https://fb.com/p/1</a>',
            "https://fb.com/p/1",
        ),
        ('<p><at id="0">Ravi</at>, can you?</p>', "Ravi, can you?"),
    ],
)
def test_teams_message_html_becomes_plain_text(html: str, text: str) -> None:
    assert html_to_text(html) == text
