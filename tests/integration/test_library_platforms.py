"""The learning library on Slack and Teams, through their real entry points.

The link of the week is posted by the service and delivered by the running dispatcher to the
fake Slack Web API (Block Kit, the discussion prompt as a thread reply under the post's `ts`) and
to the fake Bot Connector (an Adaptive Card, the prompt in the channel thread
`<channel>;messageid=<post>`). People press its buttons the way each platform sends presses:
a signed `block_actions` (Slack sends one for a link button too, which is how opens are
counted), a `view_submission` for the "What I learned" modal, an Action.Submit message activity
on Teams (Action.OpenUrl never reaches the bot there). A personal pick inside a nudge carries
the same link buttons. Tests wait on the calls the fakes receive or on database rows, never on
the clock.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.app import build
from bot.config.organisation import parse_organisation
from bot.core.clock import FrozenClock
from bot.storage.models import LinkFeedbackRow, ParticipationRow, PersonRow
from content_library import store
from content_library.candidates import LinkCandidate
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, RunningBot, make_settings, serving
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import FakeSlackApi
from tests.integration.test_question_desk_platforms import (
    BOT_ID,
    POST_MESSAGE,
    TENANT,
    Slack,
    Teams,
    buttons,
    card_of,
    response_to,
    shown,
    words,
)
from tests.integration.test_slack import wait_until

LEARN_SLACK = "C0LEARN01"
LEARN_TEAMS = "19:learning@thread.tacv2"
TOM_SLACK, TOM_TEAMS = "U0TOM0001", "29:1tom"
LINK = "https://learn.example.org/reply-well"
PROMPT = "Which of these would you try first?"
VIEWS_OPEN = "views.open"

# The clock fixture is Monday 2 March 2026, 10:00 in London: the link of the week is due, and
# so is the pick campaign's one-off slot.
ORG = f"""
organisation: {{name: Northfield University, timezone: Europe/London}}
people:
  - {{id: ada, name: Ada Okafor, timezone: Europe/London, roles: [evangelist],
     slack: U0ADA0001, teams: "29:1ada"}}
  - {{id: tom, name: Tom Becker, timezone: Europe/London, slack: {TOM_SLACK}, teams: "{TOM_TEAMS}"}}
campaigns:
  - id: picks
    name: A pick from the library
    owner: ada
    audience: {{people: [tom]}}
    cadence: {{once: 2026-03-02, at: "10:00"}}
    messages:
      watch: ["Hi {{first_name}}! Something worth five minutes: {{link}}"]
library:
  weekly:
    day: mon
    at: "10:00"
    channels: {{CHANNELS}}
    prompt: {PROMPT}
"""
SLACK_ORG = ORG.replace("{CHANNELS}", f"{{slack: [{LEARN_SLACK}]}}")
# The Slack app serves Teams too (authentication off); each posts only where it is configured.
TEAMS_ORG = ORG.replace("{CHANNELS}", f'{{teams: ["{LEARN_TEAMS}"]}}')


# -- the library and the database -------------------------------------------------------------


async def add_the_link(running: RunningBot) -> int:
    bot = running.bot
    candidate = LinkCandidate(
        url=LINK,
        where="test",
        title="How to reply well",
        experiment="Reply to one comment on our page this week.",
    )
    async with bot.db.transaction() as session:
        added = await store.add_links(
            session, [candidate], source="test", added_by="ada", now=bot.clock.now()
        )
    assert bot.library is not None
    bot.library.changed()
    (link_id,) = added.ids
    return int(link_id)


async def post_the_weekly(running: RunningBot) -> None:
    assert running.bot.library is not None
    assert await running.bot.library.post_weekly() == 1


async def tom_id(running: RunningBot) -> int:
    async with running.bot.db.transaction() as session:
        person = await session.scalar(select(PersonRow.id).where(PersonRow.key == "tom"))
    assert person is not None
    return int(person)


async def feedback(running: RunningBot, link_id: int) -> tuple[int, int | None] | None:
    """Tom's (opens, vote) on the link, or None before he did anything with it."""
    person = await tom_id(running)
    async with running.bot.db.transaction() as session:
        row = await session.get(LinkFeedbackRow, (link_id, person))
        return (row.opens, row.vote) if row is not None else None


async def participation(running: RunningBot) -> list[tuple[str, str]]:
    async with running.bot.db.transaction() as session:
        rows = await session.execute(
            select(ParticipationRow.kind, ParticipationRow.reference).order_by(ParticipationRow.id)
        )
        return [(kind, reference) for kind, reference in rows.all()]


async def feedback_is(running: RunningBot, link_id: int, wanted: tuple[int, int | None]) -> None:
    async def reached() -> bool:
        return await feedback(running, link_id) == wanted

    await wait_until(reached, f"Tom's feedback on link {link_id} to be {wanted}")


# -- fixtures -----------------------------------------------------------------------------------


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
    bot = build(settings, clock=clock, organisation=parse_organisation(SLACK_ORG))
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
    bot = build(settings, clock=clock, organisation=parse_organisation(TEAMS_ORG))
    async with serving(bot) as running, aiohttp.ClientSession() as http:
        yield Teams(running, fake_connector, http)


# -- Slack ----------------------------------------------------------------------------------------


def note_state(modal: dict[str, Any], note: str, share: str) -> dict[str, Any]:
    """view.state.values for the note modal as Slack sends it, built from the opened view."""
    elements = {b["block_id"]: b["element"] for b in modal["blocks"] if b["type"] == "input"}
    assert set(elements) == {"note", "share"}
    assert elements["note"]["type"] == "plain_text_input" and elements["note"]["multiline"]
    [option] = [o for o in elements["share"]["options"] if o["value"] == share]
    return {
        "note": {"note": {"type": "plain_text_input", "value": note}},
        "share": {"share": {"type": elements["share"]["type"], "selected_option": option}},
    }


async def submit_view(slack: Slack, modal: dict[str, Any], state: dict[str, Any]) -> None:
    await slack.interaction(
        {
            "type": "view_submission",
            "team": {"id": "T0001", "domain": "example"},
            "user": {"id": TOM_SLACK, "username": "tom", "name": "tom", "team_id": "T0001"},
            "api_app_id": "A0EVANGELIST",
            "token": "verification-token-unused",
            "trigger_id": "77.1000000001.abcdef",
            "view": {**modal, "state": {"values": state}, "hash": "1772445600.abc"},
            "response_urls": [],
            "is_enterprise_install": False,
        }
    )


async def test_slack_weekly_post_thread_and_every_button(slack: Slack, clock: FrozenClock) -> None:
    fake = slack.fake
    link_id = await add_the_link(slack.bot)
    await post_the_weekly(slack.bot)

    first, second = await fake.wait_for(POST_MESSAGE, count=2)
    assert first.params["channel"] == LEARN_SLACK and not first.params.get("thread_ts")
    post, prompt = fake.messages(LEARN_SLACK)
    assert "Link of the week" in shown(post) and "Reply to one comment" in shown(post)
    elements = buttons(post)
    assert [e["action_id"].rsplit(":", 1)[0] for e in elements] == [
        "ev:library.open",
        "ev:library.up",
        "ev:library.down",
        "ev:library.tried",
        "ev:form.open",
    ]
    assert elements[0]["url"] == LINK
    assert [e for e in elements if "url" in e] == [elements[0]]  # only Open is a link
    # The prompt is a reply in the post's thread: Slack's ts for the post is its thread_ts.
    assert second.params["channel"] == LEARN_SLACK
    assert second.params["thread_ts"] == post["ts"] == prompt["thread_ts"]
    assert PROMPT in shown(prompt)

    # Open: Slack opens the link in the browser and still sends block_actions with our value.
    await slack.press(TOM_SLACK, post, "library.open", channel=LEARN_SLACK, token="open")
    await feedback_is(slack.bot, link_id, (1, None))
    assert await participation(slack.bot) == [("link_opened", f"link:{link_id}")]

    # 👍: the vote and an answer only Tom sees. Answers count against the channel's Slack
    # budget (3 sends in 3 s) and the clock is frozen, so time moves on between presses.
    clock.advance(seconds=5)
    await slack.press(TOM_SLACK, post, "library.up", channel=LEARN_SLACK, token="up")
    answer = await response_to(fake, "up", posts=1)
    assert answer["response_type"] == "ephemeral"
    assert "Noted as helpful" in answer["text"]
    await feedback_is(slack.bot, link_id, (1, 1))

    clock.advance(seconds=5)
    await slack.press(TOM_SLACK, post, "library.tried", channel=LEARN_SLACK, token="tried")
    assert "Nice one, Tom" in shown(await response_to(fake, "tried", posts=2))
    kinds = [kind for kind, _ in await participation(slack.bot)]
    assert kinds == ["link_opened", "experiment_tried"]

    # "What I learned" opens the note form as a modal (no message is answered).
    await slack.press(TOM_SLACK, post, "form.open", channel=LEARN_SLACK, token="note")
    (opened,) = await fake.wait_for(VIEWS_OPEN)
    view = opened.json_field("view")
    assert view["callback_id"] == "ev:library.note" and view["title"]["text"] == "What I learned"
    (modal,) = fake.modals

    clock.advance(seconds=5)
    learned = "A question with a link gets answered faster."
    await submit_view(slack, modal, note_state(modal, learned, "yes"))

    calls = await fake.wait_for(POST_MESSAGE, count=4)
    [shared] = [c for c in calls[2:] if c.params.get("thread_ts")]
    [thanks] = [c for c in calls[2:] if not c.params.get("thread_ts")]
    assert shared.params["channel"] == LEARN_SLACK
    assert shared.params["thread_ts"] == post["ts"]
    note = fake.messages(LEARN_SLACK)[-1]
    assert "Tom Becker" in shown(note) and learned in shown(note)
    assert thanks.params["channel"] == TOM_SLACK
    assert "Shared in this week's thread" in thanks.params["text"]
    assert set(fake.responses) == {"up", "tried"}  # Open and the form open answered nothing
    kinds = [kind for kind, _ in await participation(slack.bot)]
    assert kinds == ["link_opened", "experiment_tried", "experiment_note"]


async def test_slack_pick_carries_the_link_button_and_votes(slack: Slack) -> None:
    fake = slack.fake
    link_id = await add_the_link(slack.bot)
    nudges = slack.bot.bot.nudges
    assert nudges is not None
    assert await nudges.plan() == 1
    assert await nudges.send_due() == 1

    (sent,) = await fake.wait_for(POST_MESSAGE)
    assert sent.params["channel"] == TOM_SLACK
    [nudge] = slack.dm(TOM_SLACK)
    assert "Something worth five minutes" in shown(nudge) and LINK in shown(nudge)
    elements = buttons(nudge)
    assert [e["action_id"].rsplit(":", 1)[0] for e in elements][:4] == [
        "ev:library.open",
        "ev:library.up",
        "ev:library.down",
        "ev:nudge.done",
    ]
    assert elements[0]["url"] == LINK and json.loads(elements[0]["value"]) == {"v": str(link_id)}
    assert all("url" not in e for e in elements[1:])

    channel = f"D{TOM_SLACK}"
    await slack.press(TOM_SLACK, nudge, "library.open", channel=channel, token="open")
    await feedback_is(slack.bot, link_id, (1, None))
    await slack.press(TOM_SLACK, nudge, "library.down", channel=channel, token="down")
    assert "fewer like this" in (await response_to(fake, "down", posts=1))["text"]
    await feedback_is(slack.bot, link_id, (1, -1))


# -- Teams ----------------------------------------------------------------------------------------

TEAM = {
    "teamsChannelId": LEARN_TEAMS,
    "teamsTeamId": LEARN_TEAMS,
    "channel": {"id": LEARN_TEAMS},
    "team": {"id": LEARN_TEAMS, "name": "Learning"},
    "tenant": {"id": TENANT},
}


async def test_teams_weekly_post_open_url_thread_prompt_and_a_vote(teams: Teams) -> None:
    fake = teams.fake
    # The bot was added to the team: from then on it can post in the channel.
    added = teams.activity(
        ("29:1owner", "Team Owner"),
        LEARN_TEAMS,
        "channel",
        type="conversationUpdate",
        membersAdded=[{"id": BOT_ID}],
        channelData=TEAM,
    )
    assert (await teams.post(added))[0] == 200
    link_id = await add_the_link(teams.bot)
    await post_the_weekly(teams.bot)

    [post] = await fake.wait_for_activities(LEARN_TEAMS)
    assert "Link of the week" in words(post)
    actions = card_of(post)["actions"]
    assert actions[0] == {
        "type": "Action.OpenUrl",
        "title": "Open ↗",
        "url": LINK,
        "style": "positive",
    }
    assert {a["type"] for a in actions[1:]} == {"Action.Submit"}
    assert [a["data"]["ev_action"] for a in actions[1:]] == [
        "library.up",
        "library.down",
        "library.tried",
        "form.open",
    ]
    up = actions[1]["data"]
    assert up == {"ev_action": "library.up", "ev_value": str(link_id)}

    # The prompt is in the post's thread, which Teams names after the post's id.
    thread = f"{LEARN_TEAMS};messageid={post['id']}"
    [prompt] = await fake.wait_for_activities(thread)
    assert PROMPT in words(prompt)

    # 👍 pressed in the channel: the card's data arrives from the post's thread.
    press = teams.activity(
        (TOM_TEAMS, "Tom Becker"),
        thread,
        "channel",
        replyToId=post["id"],
        value=up,
        channelData=TEAM,
    )
    assert (await teams.post(press))[0] == 200
    _, answer = await fake.wait_for_activities(thread, count=2)
    assert "Noted as helpful" in words(answer)
    assert await feedback(teams.bot, link_id) == (0, 1)  # Action.OpenUrl is never counted
