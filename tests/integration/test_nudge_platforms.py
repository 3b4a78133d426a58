"""Nudge buttons through the real Slack and Teams entry points, double clicks included.

The nudge is planned and sent by the jobs, reaches Tom as a Block Kit DM on the fake Slack Web
API or as an Adaptive Card through the fake Bot Connector, and Tom presses its buttons the way
each platform delivers presses. A double click is two platform events with their own ids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import build
from bot.config.organisation import parse_organisation
from bot.core.clock import FrozenClock, as_utc
from bot.core.types import Actor, Platform, StatusChanged
from bot.storage.models import NudgePreferenceRow, NudgeRow, ParticipationRow, PersonRow
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, RunningBot, make_settings, serving
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import FakeSlackApi
from tests.integration.test_question_desk_platforms import (
    POST_MESSAGE,
    TENANT,
    UPDATE,
    Slack,
    Teams,
    buttons,
    card_of,
    response_to,
    shown,
    words,
)
from tests.integration.test_slack import wait_processed, wait_until

TOM_SLACK, TOM_TEAMS = "U0TOM0001", "29:1tom"

# The clock fixture is Monday 2 March 2026, 10:00 in London: the campaign's one-off slot.
ORG = """
organisation: {name: Northfield University, timezone: Europe/London}
people:
  - {id: ada, name: Ada Okafor, timezone: Europe/London, roles: [evangelist],
     slack: U0ADA0001, teams: "29:1ada"}
  - {id: tom, name: Tom Becker, timezone: Europe/London, slack: U0TOM0001, teams: "29:1tom"}
sources:
  - {id: page, kind: facebook_page, page_id: "111", name: our Facebook Page, poll_minutes: 0}
campaigns:
  - id: hello
    name: Say hello
    owner: ada
    audience: {people: [tom]}
    cadence: {once: 2026-03-02, at: "10:00"}
    messages:
      watch: ["Hi {first_name}! Could you {step} on {page}? {post}"]
"""


async def send_the_nudge(running: RunningBot) -> None:
    nudges = running.bot.nudges
    assert nudges is not None
    assert await nudges.plan() == 1
    assert await nudges.send_due() == 1


async def state(running: RunningBot) -> tuple[list[str], str | None, str | None]:
    """Participation kinds, the nudge's response and Tom's ladder stage."""
    async with running.bot.db.transaction() as session:
        kinds = sorted((await session.scalars(select(ParticipationRow.kind))).all())
        nudge = await session.scalar(select(NudgeRow))
        prefs = await session.scalar(select(NudgePreferenceRow))
    return kinds, nudge.response if nudge else None, prefs.stage if prefs else None


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
    )
    bot = build(settings, clock=clock, organisation=parse_organisation(ORG))
    async with serving(bot) as running, aiohttp.ClientSession() as http:
        yield Slack(running, fake_slack, http)


@pytest.fixture
async def teams(
    database_url: str, fake_connector: FakeBotConnector, clock: FrozenClock
) -> AsyncIterator[Teams]:
    settings = make_settings(
        database_url,
        outbox_poll_seconds=0.05,
        teams_service_url=fake_connector.service_url,
        teams_tenant_id=TENANT,
    )
    bot = build(settings, clock=clock, organisation=parse_organisation(ORG))
    async with serving(bot) as running, aiohttp.ClientSession() as http:
        yield Teams(running, fake_connector, http)


async def test_slack_done_twice_is_one_done(slack: Slack) -> None:
    fake = slack.fake
    await send_the_nudge(slack.bot)
    await fake.wait_for(POST_MESSAGE)
    [nudge] = slack.dm(TOM_SLACK)
    assert "Hi Tom! Could you react to one post on our Facebook Page?" in shown(nudge)
    labels = [b["text"]["text"] for b in buttons(nudge)]
    assert labels == ["Done", "Not now", "Pause 2 weeks", "Stop these", "Why am I getting this?"]

    channel = f"D{TOM_SLACK}"
    await slack.press(TOM_SLACK, nudge, "nudge.done", channel=channel, token="done-1")
    await slack.press(TOM_SLACK, nudge, "nudge.done", channel=channel, token="done-2")
    first = await response_to(fake, "done-1", posts=2)
    second = await response_to(fake, "done-2", posts=2)
    answers = sorted([first["text"], second["text"]])
    assert answers[0].startswith("Already noted, Tom") and answers[1] == "Thank you, Tom!"
    assert await state(slack.bot) == (["ladder_up", "nudge_done"], "done", "react")

    (updated,) = await fake.wait_for(UPDATE)
    assert updated.params["ts"] == nudge["ts"]
    [nudge] = slack.dm(TOM_SLACK)
    assert [b["text"]["text"] for b in buttons(nudge)] == ["Why am I getting this?"]
    assert "Done. Thank you!" in shown(nudge)


async def test_slack_stop_these_and_why(slack: Slack, clock: FrozenClock) -> None:
    fake = slack.fake
    await send_the_nudge(slack.bot)
    await fake.wait_for(POST_MESSAGE)
    [nudge] = slack.dm(TOM_SLACK)
    channel = f"D{TOM_SLACK}"
    await slack.press(TOM_SLACK, nudge, "nudge.why", channel=channel, token="why")
    why = await response_to(fake, "why", posts=1)
    assert "Say hello" in shown(why) and "Ada Okafor" in shown(why)
    await slack.press(TOM_SLACK, nudge, "nudge.stop", channel=channel, token="stop-1")
    await slack.press(TOM_SLACK, nudge, "nudge.stop", channel=channel, token="stop-2")
    clock.advance(seconds=5)  # Slack's one message per second per channel, on a frozen clock
    for token in ("stop-1", "stop-2"):
        assert "no more nudges from “Say hello”" in shown(await response_to(fake, token, posts=3))
    async with slack.bot.bot.db.transaction() as session:
        prefs = await session.scalar(select(NudgePreferenceRow))
    assert prefs is not None and prefs.stopped == ["hello"]
    assert (await state(slack.bot))[1] == "stopped"


async def test_teams_not_now_then_done_double_clicked(teams: Teams, clock: FrozenClock) -> None:
    await send_the_nudge(teams.bot)
    chat = await teams.chat_with(TOM_TEAMS, sent=1)
    [sent] = teams.fake.activities(chat)
    card = card_of(sent)
    assert "Hi Tom!" in words(sent)
    assert [a["title"] for a in card["actions"]][:2] == ["Done", "Not now"]

    tom = (TOM_TEAMS, "Tom Becker")
    await teams.press(tom, chat, sent, "nudge.later")
    await teams.fake.wait_for_activities(count=2)  # the answer (the card is updated in place)
    assert (await state(teams.bot))[1] == "not_now"
    await teams.press(tom, chat, sent, "nudge.done")
    await teams.press(tom, chat, sent, "nudge.done")
    clock.advance(seconds=5)  # the per-conversation rate, on a frozen clock
    await teams.fake.wait_for_activities(count=4)
    card = card_of(teams.now(chat, sent))
    assert [a["title"] for a in card["actions"]] == ["Why am I getting this?"]
    assert await state(teams.bot) == (["ladder_up", "nudge_done"], "done", "react")
    said = " ".join(words(a) for a in teams.fake.activities(chat))
    assert "No problem, Tom" in said and "Thank you, Tom!" in said and "Already noted" in said


def status_event(user: str, text: str, emoji: str, expiration: int = 0) -> dict[str, Any]:
    """`user_status_changed` as Slack sends it (the profile fields that matter)."""
    return {
        "type": "user_status_changed",
        "user": {
            "id": user,
            "team_id": "T0001",
            "name": user.lower(),
            "profile": {
                "status_text": text,
                "status_emoji": emoji,
                "status_expiration": expiration,
                "real_name": "Someone",
            },
        },
        "event_ts": "1772445600.000100",
    }


async def away_source_is(running: RunningBot, source: str | None) -> bool:
    return (await person_row(running, "tom")).away_source == source


async def person_row(running: RunningBot, key: str) -> PersonRow:
    async with running.bot.db.transaction() as session:
        row = await session.scalar(select(PersonRow).where(PersonRow.key == key))
    assert row is not None
    return row


async def test_an_out_of_office_status_on_slack_holds_nudges_until_it_ends(
    slack: Slack, clock: FrozenClock
) -> None:
    back = clock.now() + timedelta(days=3)
    await slack.event(status_event(TOM_SLACK, "Vacationing", ":palm_tree:", int(back.timestamp())))
    await wait_until(lambda: away_source_is(slack.bot, "slack"), "Tom to be away by his status")
    tom = await person_row(slack.bot, "tom")
    assert as_utc(tom.away_until) == back  # type: ignore[arg-type]
    nudges = slack.bot.bot.nudges
    assert nudges is not None
    assert await nudges.plan() == 0  # today's one-off is held: he is away

    # Back early: the status is cleared, and so is the absence it set.
    await slack.event(status_event(TOM_SLACK, "", ""))
    await wait_until(lambda: away_source_is(slack.bot, None), "Tom's status to clear")
    tom = await person_row(slack.bot, "tom")
    assert tom.away_until is None
    assert await nudges.plan() == 1

    # People the bot doesn't know are not created by their statuses.
    stranger = Actor(Platform.SLACK, "U0STRANGER")
    assert await slack.bot.bot.chat.handle(StatusChanged("Ev-stranger", stranger, True))
    async with slack.bot.bot.db.transaction() as session:
        assert await session.scalar(select(PersonRow).where(PersonRow.key.like("slack:%"))) is None


async def test_a_status_never_clears_an_absence_the_person_told_the_bot(
    slack: Slack, clock: FrozenClock
) -> None:
    nudges = slack.bot.bot.nudges
    assert nudges is not None
    async with slack.bot.bot.db.transaction() as session:
        row = await session.scalar(select(PersonRow).where(PersonRow.key == "tom"))
        assert row is not None
        row.away_until, row.away_source = clock.now() + timedelta(days=5), "command"
    for event_id, status in (("Ev-meeting", "In a meeting"), ("Ev-cleared", "")):
        await slack.event(status_event(TOM_SLACK, status, ""), event_id=event_id)
        await wait_processed(slack.bot, event_id)
    tom = await person_row(slack.bot, "tom")
    assert tom.away_source == "command" and tom.away_until is not None
