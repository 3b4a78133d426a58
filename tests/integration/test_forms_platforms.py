"""Forms end to end: a Slack modal, a Teams card with inputs, a console dialogue.

A small sign-up form and its handler are registered on the running bot's registry (the campaign
form is wired by the nudges capability; these tests only need the machinery). Slack requests are
signed and POSTed to /slack/events, Teams activities to /api/messages; answers are awaited on the
fakes' recorded calls, never with sleeps.
"""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from bot.app import build
from bot.config.organisation import OrganisationConfig
from bot.core.clock import FrozenClock
from bot.core.permissions import Permission
from bot.core.types import Address, FieldKind, Form, FormField, Platform
from bot.platforms.console.repl import ConsoleSession
from bot.services.commands import CommandContext, CommandRegistry, FormSpec
from bot.services.forms import answers
from tests.conftest import RunningBot, make_settings, slack_headers
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import RESPONSE_URL_CALL, FakeSlackApi
from tests.integration.test_teams import X_CHAT, activity, card_of, post, words

FORM_ID = "test.signup"
COMMAND = "signup now"
ADA = "U0ADA0001"  # the evangelist in examples/organisation.yaml
TOM = "U0TOM0001"  # not in the file: an employee, without the permission
GENERAL = "C0GENERAL"
FORM = "application/x-www-form-urlencoded"
POST_MESSAGE = "chat.postMessage"
VIEWS_OPEN = "views.open"

_triggers = itertools.count(1)


def signup_form() -> Form:
    return Form(
        FORM_ID,
        "Sign up",
        "Send",
        (
            FormField("name", "Your name"),
            FormField(
                "colour", "Colour", FieldKind.CHOICE, options=(("red", "Red"), ("blue", "Blue"))
            ),
            FormField("day", "Day", FieldKind.DATE, required=False),
            FormField(
                "tags",
                "Tags",
                FieldKind.MULTI_CHOICE,
                required=False,
                options=(("a", "Alpha"), ("b", "Beta")),
            ),
        ),
        intro="Tell me a little about yourself.",
    )


def validate_signup(values: dict[str, str]) -> dict[str, str]:
    return {"name": "Pick a real name."} if values["name"].lower() == "nobody" else {}


@dataclass
class Signups:
    """What the form's action handler received."""

    answers: list[dict[str, str]] = field(default_factory=list)
    wheres: list[Address] = field(default_factory=list)


def register_signup(
    registry: CommandRegistry, permission: Permission | None = Permission.MANAGE_CAMPAIGNS
) -> Signups:
    signups = Signups()

    async def on_signup(ctx: CommandContext) -> None:
        values = answers(ctx)
        signups.answers.append(values)
        signups.wheres.append(ctx.where)
        ctx.reply(f"Thanks, {values['name']}! You picked {values['colour']}.")

    registry.form(
        FormSpec(FORM_ID, signup_form, validate_signup, permission=permission, command=COMMAND)
    )
    registry.action(FORM_ID, on_signup)
    return signups


# -- Slack -----------------------------------------------------------------------------------------


@dataclass
class Slack:
    http: aiohttp.ClientSession
    bot: RunningBot
    fake: FakeSlackApi

    async def send(self, body: str, content_type: str = FORM) -> tuple[int, str]:
        headers = slack_headers(body, content_type=content_type)
        async with self.http.post(
            f"{self.bot.url}/slack/events", data=body, headers=headers
        ) as response:
            return response.status, await response.text()

    async def command(self, text: str, *, user: str, trigger_id: str) -> None:
        fields = {
            "team_id": "T0001",
            "channel_id": GENERAL,
            "user_id": user,
            "command": "/evangelist",
            "text": text,
            "api_app_id": "A0EVANGELIST",
            "response_url": self.fake.response_url(f"cmd-{trigger_id}"),
            "trigger_id": trigger_id,
        }
        status, _ = await self.send(urlencode(fields))
        assert status == 200

    async def interaction(self, payload: dict[str, Any]) -> tuple[int, str]:
        return await self.send(urlencode({"payload": json.dumps(payload)}))

    async def submit(self, view: dict[str, Any], state: dict[str, Any], user: str) -> Any:
        """A `view_submission` for a modal the fake opened, with these input values."""
        payload = {
            "type": "view_submission",
            "team": {"id": "T0001", "domain": "example"},
            "user": {"id": user, "username": "ada", "name": "ada", "team_id": "T0001"},
            "api_app_id": "A0EVANGELIST",
            "token": "verification-token-unused",
            "trigger_id": trigger(),
            "view": {**view, "state": {"values": state}, "hash": "1700000000.abc"},
            "response_urls": [],
            "is_enterprise_install": False,
        }
        status, text = await self.interaction(payload)
        assert status == 200, text
        return json.loads(text) if text else None


def trigger() -> str:
    n = next(_triggers)
    return f"{n}.1000000001.{n:012x}"


def state(name: str, colour: str | None, tags: list[str]) -> dict[str, Any]:
    """view.state.values as Slack sends it: block_id → action_id → the element's value."""
    option = {"text": {"type": "plain_text", "text": colour or ""}, "value": colour}
    return {
        "name": {"name": {"type": "plain_text_input", "value": name}},
        "colour": {
            "colour": {"type": "static_select", "selected_option": option if colour else None}
        },
        "day": {"day": {"type": "datepicker", "selected_date": None}},
        "tags": {
            "tags": {
                "type": "multi_static_select",
                "selected_options": [{"value": t} for t in tags],
            }
        },
    }


@pytest.fixture
async def slack(slack_bot: RunningBot, fake_slack: FakeSlackApi) -> AsyncIterator[Slack]:
    async with aiohttp.ClientSession() as http:
        yield Slack(http, slack_bot, fake_slack)


@pytest.fixture
def slack_signups(slack_bot: RunningBot) -> Signups:
    return register_signup(slack_bot.bot.registry)


async def test_slack_command_opens_the_modal_with_its_trigger(
    slack: Slack, fake_slack: FakeSlackApi, slack_signups: Signups
) -> None:
    trigger_id = trigger()
    await slack.command("  Signup   NOW ", user=ADA, trigger_id=trigger_id)

    (call,) = await fake_slack.wait_for(VIEWS_OPEN)
    assert call.params["trigger_id"] == trigger_id
    view = call.json_field("view")
    assert view["type"] == "modal" and view["callback_id"] == f"ev:{FORM_ID}"
    assert view["title"]["text"] == "Sign up"
    assert [b["block_id"] for b in view["blocks"] if b["type"] == "input"] == [
        "name",
        "colour",
        "day",
        "tags",
    ]
    assert fake_slack.calls_to(RESPONSE_URL_CALL) == []  # the modal is the answer


async def test_slack_modal_errors_go_back_into_the_modal_and_good_answers_to_the_handler(
    slack: Slack, slack_bot: RunningBot, fake_slack: FakeSlackApi, slack_signups: Signups
) -> None:
    await slack.command(COMMAND, user=ADA, trigger_id=trigger())
    await fake_slack.wait_for(VIEWS_OPEN)
    (modal,) = fake_slack.modals

    refused = await slack.submit(modal, state("nobody", "red", []), ADA)

    assert refused == {"response_action": "errors", "errors": {"name": "Pick a real name."}}
    assert await slack_bot.drain() == 0
    assert slack_signups.answers == []

    accepted = await slack.submit(modal, state("Ada", "blue", ["a", "b"]), ADA)

    assert accepted is None  # a plain ack closes the modal
    (dm,) = await fake_slack.wait_for(POST_MESSAGE)
    assert dm.params["channel"] in (ADA, f"D{ADA}")
    assert "Thanks, Ada! You picked blue." in dm.params["text"]
    assert slack_signups.answers == [{"name": "Ada", "colour": "blue", "day": "", "tags": "a,b"}]
    assert slack_signups.wheres == [Address.direct(Platform.SLACK, ADA)]


async def test_slack_home_tab_button_opens_the_modal(
    slack: Slack, fake_slack: FakeSlackApi, slack_signups: Signups
) -> None:
    trigger_id = trigger()
    status, _ = await slack.interaction(
        {
            "type": "block_actions",
            "user": {"id": ADA, "username": "ada", "name": "ada", "team_id": "T0001"},
            "api_app_id": "A0EVANGELIST",
            "container": {"type": "view", "view_id": "V00000001"},
            "trigger_id": trigger_id,
            "team": {"id": "T0001", "domain": "example"},
            "view": {"id": "V00000001", "type": "home", "blocks": []},
            "actions": [
                {
                    "action_id": "ev:form.open:0",
                    "block_id": "b0",
                    "value": json.dumps({"v": FORM_ID}),
                    "type": "button",
                    "action_ts": "5.000001",
                }
            ],
        }
    )
    assert status == 200

    (call,) = await fake_slack.wait_for(VIEWS_OPEN)
    assert call.params["trigger_id"] == trigger_id
    assert call.json_field("view")["callback_id"] == f"ev:{FORM_ID}"
    assert fake_slack.calls_to(POST_MESSAGE) == []


async def test_slack_person_without_the_permission_gets_no_modal_but_a_polite_no(
    slack: Slack, fake_slack: FakeSlackApi, slack_signups: Signups
) -> None:
    trigger_id = trigger()
    await slack.command(COMMAND, user=TOM, trigger_id=trigger_id)

    (call,) = await fake_slack.wait_for(RESPONSE_URL_CALL)
    assert "Sorry, only the evangelist can manage campaigns." in call.body["text"]
    assert fake_slack.calls_to(VIEWS_OPEN) == []


async def test_slack_modal_that_cannot_open_falls_back_to_a_message_with_the_button(
    slack: Slack, fake_slack: FakeSlackApi, slack_signups: Signups
) -> None:
    fake_slack.fail_next(VIEWS_OPEN, status=200, body={"ok": False, "error": "expired_trigger_id"})
    await slack.command(COMMAND, user=ADA, trigger_id=trigger())

    (call,) = await fake_slack.wait_for(RESPONSE_URL_CALL)
    (button,) = [e for b in call.body["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert button["action_id"] == "ev:form.open:0"
    assert json.loads(button["value"]) == {"v": FORM_ID}
    assert button["text"]["text"] == "Open the form"


# -- Teams -----------------------------------------------------------------------------------------


def submitted(**inputs: str) -> dict[str, Any]:
    """What Teams puts in activity.value: the Action.Submit data with the inputs merged in."""
    return {"ev_action": FORM_ID, "ev_form": "1", **inputs}


async def test_teams_card_inputs_errors_and_the_answers(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    signups = register_signup(teams_bot.bot.registry, permission=None)

    assert (await post(teams_bot, activity(fake_connector, text="signup now"))).status == 200
    (offered,) = await fake_connector.wait_for_activities(X_CHAT)
    card = card_of(offered)
    inputs = {e["id"]: e["type"] for e in card["body"] if e["type"].startswith("Input.")}
    assert inputs == {
        "name": "Input.Text",
        "colour": "Input.ChoiceSet",
        "day": "Input.Date",
        "tags": "Input.ChoiceSet",
    }
    assert card["actions"][0]["data"] == {"ev_action": FORM_ID, "ev_form": "1"}

    wrong = activity(
        fake_connector, replyToId=offered["id"], value=submitted(name="Nobody", colour="red")
    )
    assert (await post(teams_bot, wrong)).status == 200
    _, again = await fake_connector.wait_for_activities(X_CHAT, count=2)
    assert "Your name" in words(again) and "Pick a real name." in words(again)
    values = {e["id"]: e.get("value") for e in card_of(again)["body"] if "id" in e}
    assert values == {"name": "Nobody", "colour": "red", "day": None, "tags": None}
    assert signups.answers == []

    right = activity(
        fake_connector,
        replyToId=again["id"],
        value=submitted(name="Xavier", colour="blue", tags="a,b", ev_value="ignored"),
    )
    assert (await post(teams_bot, right)).status == 200
    *_, thanks = await fake_connector.wait_for_activities(X_CHAT, count=3)
    assert "Thanks, Xavier! You picked blue." in words(thanks)
    assert signups.answers == [{"name": "Xavier", "colour": "blue", "day": "", "tags": "a,b"}]


async def test_teams_card_action_invoke_carries_the_answers_too(
    teams_bot: RunningBot, fake_connector: FakeBotConnector
) -> None:
    signups = register_signup(teams_bot.bot.registry, permission=None)
    invoke = activity(
        fake_connector,
        type="invoke",
        name="adaptiveCard/action",
        value={
            "action": {"type": "Action.Execute", "data": submitted(name="Xavier", colour="red")}
        },
    )

    answer = await post(teams_bot, invoke)

    assert answer.status == 200
    (thanks,) = await fake_connector.wait_for_activities(X_CHAT)
    assert "Thanks, Xavier! You picked red." in words(thanks)
    assert signups.answers == [{"name": "Xavier", "colour": "red", "day": "", "tags": ""}]


# -- console ---------------------------------------------------------------------------------------

DIALOGUE = """\
/evangelist signup now
nobody
7
2


Ada


1
/evangelist signup now
cancel
:quit
"""


async def test_console_dialogue_with_a_fix_after_a_validation_error(
    database_url: str, clock: FrozenClock, organisation: OrganisationConfig
) -> None:
    bot = build(make_settings(database_url), clock=clock, organisation=organisation, console=True)
    await bot.prepare()
    assert bot.console is not None
    signups = register_signup(bot.registry)
    out = io.StringIO()
    session = ConsoleSession(
        bot.chat, bot.console, bot.db, bot.dispatcher.drain, out, "ada", echo=True
    )
    await session.switch_to("ada")
    try:
        await session.run(DIALOGUE.splitlines())
    finally:
        await bot.stop()
    transcript = out.getvalue()

    # The first round: a choice by number (after one that is not), two optional fields skipped.
    # The second: the form again with the answers as defaults; Enter keeps the colour.
    assert signups.answers == [{"name": "Ada", "colour": "blue", "day": "", "tags": "a"}], (
        transcript
    )
    assert signups.wheres == [Address.direct(Platform.CONSOLE, "ada")]
    expected_in_order = [
        "ada> /evangelist signup now",
        "Sign up",
        "  Tell me a little about yourself.",
        "- Your name",
        "  > nobody",
        "- Colour",
        "    1) Red  2) Blue",
        "  > 7",
        "  (pick a number from 1 to 2)",
        "  > 2",
        "- Day (optional)",
        "- Tags (optional)",
        "  Almost there: a few things to fix.",
        "  - Your name: Pick a real name.",
        "- Your name [nobody]",
        "  > Ada",
        "- Colour [Blue]",
        "  Thanks, Ada! You picked blue.",
        "ada> /evangelist signup now",
        "  > cancel",
        "(form cancelled)",
        "ada> :quit",
        "Bye!",
    ]
    lines = transcript.split("\n")
    position = 0
    for line in expected_in_order:
        assert line in lines[position:], f"missing or out of order: {line!r}\n---\n{transcript}"
        position = lines.index(line, position) + 1
