"""Forms: the neutral types, the campaign form, and how each platform shows and reads a form."""

from __future__ import annotations

import json
from datetime import date, time

import pytest

from bot.config.organisation import OrganisationConfig, parse_organisation
from bot.core.types import (
    FieldKind,
    Form,
    FormField,
    OutgoingMessage,
    Person,
    Role,
)
from bot.platforms.console.forms import parse_answer
from bot.platforms.slack.blocks import parse_action, render_blocks
from bot.platforms.slack.modals import read_state, render_modal
from bot.platforms.teams.cards import parse_form_submit, parse_submit, render_card
from bot.services.commands import CommandRegistry, FormSpec
from bot.services.forms import check_submission
from nudges.config import Stage
from nudges.forms import campaign_form, parse_campaign_form, unique_slug, validate_campaign_form

ORG = """\
organisation: {name: Example}
people:
  - {id: ada, name: Ada Okafor, email: ada@example.org, roles: [evangelist]}
  - {id: tom, name: Tom Becker, email: tom@example.org}
teams:
  - {id: admissions, name: Admissions, members: [tom]}
  - {id: research, name: Research Office}
sources:
  - {id: facebook, kind: facebook_page, name: Northfield on Facebook, page_id: "1234"}
"""

WEEKLY = {
    "name": "One reaction a week",
    "goal": "More of us react",
    "teams": "admissions",
    "roles": "",
    "people": "",
    "stages": "watch,react",
    "cadence": "weekly",
    "day": "tue",
    "on": "",
    "at": "10:30",
    "start": "2026-11-01",
    "end": "2027-03-31",
    "page": "",
    "message_watch": "Hi {first_name}! Could you react to one post on {page}? {post}",
}


@pytest.fixture(scope="module")
def org() -> OrganisationConfig:
    return parse_organisation(ORG)


def answers(**changes: str) -> dict[str, str]:
    return {**WEEKLY, **changes}


def sample_form() -> Form:
    fields = (
        FormField("name", "Your name", placeholder="Ada", hint="As colleagues know you"),
        FormField("bio", "About you", FieldKind.LONG_TEXT, required=False, max_length=5000),
        FormField(
            "colour",
            "Colour",
            FieldKind.CHOICE,
            options=(("red", "Red"), ("blue", "Blue")),
            initial="blue",
        ),
        FormField(
            "tags",
            "Tags",
            FieldKind.MULTI_CHOICE,
            required=False,
            options=(("a", "Alpha"), ("b", "Beta"), ("c", "Gamma")),
            initial="a,c",
        ),
        FormField("day", "Day", FieldKind.DATE, required=False, initial="2026-11-02"),
        FormField("at", "Time", FieldKind.TIME, initial="09:30"),
    )
    return Form("test.form", "Sign up", "Send", fields, intro="A **short** form.")


def field(form: Form, field_id: str) -> FormField:
    found = form.field(field_id)
    assert found is not None, field_id
    return found


# -- the campaign form ----------------------------------------------------------------------------


def test_campaign_form_offers_the_organisations_teams_and_the_ladder(
    org: OrganisationConfig,
) -> None:
    form = campaign_form(org)

    assert (form.id, form.title) == ("campaign.create", "New campaign")
    ids = [f.id for f in form.fields]
    assert ids[:6] == ["name", "goal", "teams", "roles", "people", "stages"]
    assert [i for i in ids if i.startswith("message_")] == [
        "message_watch",
        "message_react",
        "message_share",
        "message_comment",
        "message_create",
    ]
    teams = form.field("teams")
    assert teams is not None and teams.kind is FieldKind.MULTI_CHOICE
    assert teams.options == (("admissions", "Admissions"), ("research", "Research Office"))
    roles = form.field("roles")
    assert roles is not None and [v for v, _ in roles.options] == [r.value for r in Role]
    assert [field(form, i).initial for i in ("cadence", "day", "at")] == ["weekly", "tue", "10:30"]
    watch = field(form, "message_watch")
    assert watch.kind is FieldKind.LONG_TEXT and not watch.required
    assert "{first_name}" in (watch.hint or "") and "{post}" in (watch.hint or "")
    assert "Northfield on Facebook" in (field(form, "page").hint or "")
    assert field(campaign_form(org, {"name": "Again"}), "name").initial == "Again"


def test_weekly_campaign_from_the_form(org: OrganisationConfig) -> None:
    campaign, errors = parse_campaign_form(WEEKLY, org, owner="ada")

    assert errors == {}
    assert campaign is not None
    assert campaign.id == "one-reaction-a-week"
    assert (campaign.name, campaign.goal, campaign.owner) == (
        "One reaction a week",
        "More of us react",
        "ada",
    )
    assert campaign.audience.teams == ["admissions"]
    assert campaign.audience.stages == [Stage.WATCH, Stage.REACT]
    assert (campaign.cadence.day, campaign.cadence.every_weeks) == ("tue", 1)
    assert campaign.cadence.once is None and campaign.cadence.at == time(10, 30)
    assert (campaign.start, campaign.end) == (date(2026, 11, 1), date(2027, 3, 31))
    assert [v.text for v in campaign.variants(Stage.WATCH)] == [WEEKLY["message_watch"]]
    assert campaign.variants(Stage.REACT) == []


def test_one_off_campaign_for_people_by_id_and_email(org: OrganisationConfig) -> None:
    campaign, errors = parse_campaign_form(
        answers(
            teams="",
            people="ada, TOM@example.org ada",
            cadence="once",
            day="",
            on="2026-12-01",
            at="9:05",
            message_watch="",
            message_share="Share {post}, {first_name}?",
        ),
        org,
    )

    assert errors == {}
    assert campaign is not None
    assert campaign.audience.people == ["ada", "tom"]
    assert campaign.cadence.once == date(2026, 12, 1) and campaign.cadence.day is None
    assert campaign.cadence.at == time(9, 5)
    assert list(campaign.messages) == [Stage.SHARE]


def test_every_two_weeks_and_ids_made_unique(org: OrganisationConfig) -> None:
    taken = ["one-reaction-a-week", "one-reaction-a-week-2"]
    campaign, errors = parse_campaign_form(
        answers(cadence="2weeks", day="fri", roles="leader,expert"), org, taken_ids=taken
    )

    assert errors == {}
    assert campaign is not None
    assert campaign.id == "one-reaction-a-week-3"
    assert (campaign.cadence.day, campaign.cadence.every_weeks) == ("fri", 2)
    assert campaign.audience.roles == [Role.LEADER, Role.EXPERT]
    assert unique_slug("  Ünïcode!! Sprint  ") == "unicode-sprint"
    assert unique_slug("!!!") == "campaign"


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"name": "  "}, "name", "name"),
        ({"message_watch": ""}, "message_watch", "at least one message"),
        ({"message_react": "Hi {nmae}!"}, "message_react", "{nmae}"),
        ({"start": "2027-04-01"}, "end", "before the start"),
        ({"teams": "admissions,marketing"}, "teams", "marketing"),
        ({"teams": ""}, "teams", "teams, roles or people"),
        ({"people": "ada, zed"}, "people", "zed"),
        ({"day": ""}, "day", "day"),
        ({"cadence": "once", "on": ""}, "on", "date"),
        ({"cadence": "once", "on": "2026-02-30"}, "on", "2026-11-01"),
        ({"at": "25:00"}, "at", "10:30"),
        ({"goal": "g" * 301}, "goal", "300"),
        ({"message_create": "Hi {"}, "message_create", "{{"),
    ],
)
def test_problems_come_back_on_the_field_to_fix(
    org: OrganisationConfig, changes: dict[str, str], field: str, words: str
) -> None:
    campaign, errors = parse_campaign_form(answers(**changes), org)

    assert campaign is None
    assert list(errors) == [field], errors
    assert words in errors[field]
    assert validate_campaign_form(org)(answers(**changes)) == errors


def test_several_problems_are_reported_at_once(org: OrganisationConfig) -> None:
    _, errors = parse_campaign_form(
        answers(name="", teams="nope", day="", message_watch="Hi {nmae}", start="2027-05-01"),
        org,
    )
    assert set(errors) == {"name", "teams", "day", "message_watch", "end"}
    assert "Value error" not in json.dumps(errors)


def test_bad_placeholder_message_names_the_ones_to_use(org: OrganisationConfig) -> None:
    _, errors = parse_campaign_form(answers(message_watch="Hi {nmae}"), org)
    assert errors["message_watch"].startswith("I don't know {nmae}. You can use {name}")


# -- the neutral form -----------------------------------------------------------------------------


def test_form_keeps_to_slacks_title_limit_and_unique_ids() -> None:
    with pytest.raises(ValueError, match="24"):
        Form("f", "A title that is much too long", "Send", ())
    with pytest.raises(ValueError, match="duplicate"):
        Form("f", "Title", "Send", (FormField("a", "A"), FormField("a", "Again")))
    with pytest.raises(ValueError, match="ev_"):
        Form("f", "Title", "Send", (FormField("ev_action", "Sneaky"),))


def test_outgoing_message_with_a_form_survives_the_outbox_round_trip() -> None:
    message = OutgoingMessage(text="Sign up", sections=("Hello",), form=sample_form())

    stored = json.loads(json.dumps(message.to_dict()))

    assert OutgoingMessage.from_dict(stored) == message
    old = {"text": "Hi", "sections": [], "buttons": [], "context": None}
    assert OutgoingMessage.from_dict(old) == OutgoingMessage(text="Hi")
    assert "form" not in OutgoingMessage(text="Hi").to_dict()  # old shape, old hashes


def test_registry_finds_forms_by_id_and_normalised_command() -> None:
    registry = CommandRegistry()
    spec = FormSpec("test.form", sample_form, command="Sign  Up")
    registry.form(spec)

    assert registry.find_form("test.form") is spec
    assert registry.form_for_command("  sign UP ") is spec
    assert registry.form_for_command("sign up now") is None
    with pytest.raises(ValueError):
        registry.form(spec)


def test_submissions_are_read_checked_and_cleaned() -> None:
    ada = Person(1, "ada", "Ada", "UTC", frozenset({Role.EMPLOYEE, Role.EVANGELIST}))

    def validate(values: dict[str, str]) -> dict[str, str]:
        return {"name": "Pick a real name."} if values["name"] == "nobody" else {}

    spec = FormSpec("test.form", sample_form, validate)

    clean = check_submission(spec, ada, json.dumps({"name": "Ada", "tags": ["a", "b"], "x": 1}))
    assert isinstance(clean, str)
    assert json.loads(clean) == {
        "name": "Ada",
        "bio": "",
        "colour": "",
        "tags": "a,b",
        "day": "",
        "at": "",
    }

    unreadable = check_submission(spec, ada, "not json")
    assert isinstance(unreadable, OutgoingMessage) and unreadable.form is not None
    assert isinstance(check_submission(spec, ada, "[1, 2]"), OutgoingMessage)

    fix = check_submission(spec, ada, json.dumps({"name": "nobody", "colour": "red", "day": ""}))
    assert isinstance(fix, OutgoingMessage) and fix.form is not None
    assert "- **Your name**: Pick a real name." in fix.sections[1]
    assert field(fix.form, "name").initial == "nobody"
    assert field(fix.form, "colour").initial == "red"
    assert field(fix.form, "day").initial is None  # the person cleared it: not the default


# -- Slack ----------------------------------------------------------------------------------------


def test_slack_message_with_a_form_offers_a_button_that_opens_it() -> None:
    blocks = render_blocks(OutgoingMessage(text="New campaign", form=sample_form()))

    (actions,) = [b for b in blocks if b["type"] == "actions"]
    (button,) = actions["elements"]
    assert button["text"]["text"] == "Open the form"
    assert button["style"] == "primary"
    assert parse_action(button["action_id"], button["value"]) == ("form.open", "test.form")


def test_slack_modal_has_one_input_block_per_field(org: OrganisationConfig) -> None:
    modal = render_modal(sample_form())

    assert modal["type"] == "modal"
    assert modal["callback_id"] == "ev:test.form"
    assert modal["title"]["text"] == "Sign up" and modal["submit"]["text"] == "Send"
    assert modal["blocks"][0]["text"] == {"type": "mrkdwn", "text": "A *short* form."}
    inputs = {b["block_id"]: b for b in modal["blocks"][1:]}
    assert all(b["type"] == "input" and b["element"]["action_id"] == k for k, b in inputs.items())
    name = inputs["name"]
    assert name["optional"] is False and name["hint"]["text"] == "As colleagues know you"
    assert name["element"]["type"] == "plain_text_input"
    assert name["element"]["placeholder"]["text"] == "Ada"
    bio = inputs["bio"]["element"]
    assert inputs["bio"]["optional"] is True
    assert (bio["multiline"], bio["max_length"]) == (True, 3000)  # Slack's most
    colour = inputs["colour"]["element"]
    assert colour["type"] == "static_select"
    assert colour["initial_option"] == colour["options"][1]
    tags = inputs["tags"]["element"]
    assert tags["type"] == "multi_static_select"
    assert [o["value"] for o in tags["initial_options"]] == ["a", "c"]
    assert inputs["day"]["element"] == {
        "type": "datepicker",
        "action_id": "day",
        "initial_date": "2026-11-02",
    }
    assert inputs["at"]["element"]["initial_time"] == "09:30"
    # The campaign form fits a modal too, with its defaults chosen.
    campaign = render_modal(campaign_form(org))
    assert campaign["title"]["text"] == "New campaign"
    assert len(campaign["blocks"]) == len(campaign_form(org).fields) + 1
    elements = {b["block_id"]: b["element"] for b in campaign["blocks"][1:]}
    assert elements["cadence"]["initial_option"]["value"] == "weekly"
    assert elements["day"]["initial_option"]["value"] == "tue"
    assert elements["at"]["initial_time"] == "10:30"
    assert elements["message_watch"]["multiline"] is True


def test_slack_modal_keeps_to_block_kit_limits() -> None:
    many = tuple((f"v{i}", "A very long option label " * 5) for i in range(150))
    form = Form(
        "big",
        "Big",
        "Send",
        (
            FormField("pick", "Pick", FieldKind.CHOICE, options=many, initial="v120"),
            FormField("text", "Text", initial="x" * 4000, max_length=10_000),
            FormField("when", "When", FieldKind.DATE, initial="not a date"),
        ),
    )
    blocks = {b["block_id"]: b["element"] for b in render_modal(form)["blocks"]}

    assert len(blocks["pick"]["options"]) == 100
    assert all(len(o["text"]["text"]) <= 75 for o in blocks["pick"]["options"])
    assert "initial_option" not in blocks["pick"]  # v120 is not among the 100 shown
    assert blocks["text"]["max_length"] == 3000 and len(blocks["text"]["initial_value"]) == 3000
    assert "initial_date" not in blocks["when"]  # Slack would refuse the whole view


def test_slack_view_state_becomes_the_answers() -> None:
    state = {
        "name": {"name": {"type": "plain_text_input", "value": " Ada "}},
        "bio": {"bio": {"type": "plain_text_input", "value": None}},
        "colour": {"colour": {"type": "static_select", "selected_option": {"value": "red"}}},
        "tags": {
            "tags": {
                "type": "multi_static_select",
                "selected_options": [{"value": "a"}, {"value": "b"}],
            }
        },
        "day": {"day": {"type": "datepicker", "selected_date": "2026-11-03"}},
        "at": {"at": {"type": "timepicker", "selected_time": "14:15"}},
    }
    assert read_state(sample_form(), state) == {
        "name": "Ada",
        "bio": "",
        "colour": "red",
        "tags": "a,b",
        "day": "2026-11-03",
        "at": "14:15",
    }
    assert read_state(sample_form(), None) == dict.fromkeys(
        ("name", "bio", "colour", "tags", "day", "at"), ""
    )


# -- Teams ----------------------------------------------------------------------------------------


def test_teams_card_has_an_input_per_field_and_one_submit() -> None:
    card = render_card(OutgoingMessage(text="Sign up", form=sample_form()))

    assert card["version"] == "1.4"
    inputs = {e["id"]: e for e in card["body"] if e["type"].startswith("Input.")}
    assert list(inputs) == ["name", "bio", "colour", "tags", "day", "at"]
    assert inputs["name"] == {
        "id": "name",
        "type": "Input.Text",
        "label": "Your name",
        "isRequired": True,
        "errorMessage": "Your name is needed.",
        "isMultiline": False,
        "maxLength": 1000,
        "placeholder": "Ada",
    }
    assert inputs["bio"]["isMultiline"] is True and inputs["bio"]["isRequired"] is False
    assert inputs["colour"]["type"] == "Input.ChoiceSet"
    assert (inputs["colour"]["style"], inputs["colour"]["isMultiSelect"]) == ("compact", False)
    assert inputs["colour"]["choices"] == [
        {"title": "Red", "value": "red"},
        {"title": "Blue", "value": "blue"},
    ]
    assert inputs["colour"]["value"] == "blue"
    assert (inputs["tags"]["isMultiSelect"], inputs["tags"]["value"]) == (True, "a,c")
    assert (inputs["day"]["type"], inputs["day"]["value"]) == ("Input.Date", "2026-11-02")
    assert (inputs["at"]["type"], inputs["at"]["value"]) == ("Input.Time", "09:30")
    texts = [e["text"] for e in card["body"] if e["type"] == "TextBlock"]
    assert "A **short** form." in texts and "As colleagues know you" in texts
    (submit,) = card["actions"]
    assert submit["type"] == "Action.Submit" and submit["title"] == "Send"
    assert submit["data"] == {"ev_action": "test.form", "ev_form": "1"}


def test_teams_card_for_the_campaign_form(org: OrganisationConfig) -> None:
    card = render_card(OutgoingMessage(text="New campaign", form=campaign_form(org)))

    inputs = {e["id"]: e for e in card["body"] if e["type"].startswith("Input.")}
    assert list(inputs) == [f.id for f in campaign_form(org).fields]
    assert inputs["teams"]["isMultiSelect"] is True
    assert (inputs["cadence"]["value"], inputs["at"]["value"]) == ("weekly", "10:30")
    assert inputs["message_watch"]["maxLength"] == 1000


def test_teams_submit_keeps_only_the_forms_fields_as_strings() -> None:
    # Teams merges the inputs into the submit data; empty inputs may be left out.
    value = {"ev_action": "test.form", "ev_form": "1", "name": "Ada", "tags": "a,b", "extra": 1}

    assert parse_submit(value) == ("test.form", "")
    assert json.loads(parse_form_submit(value, ["name", "tags", "day"])) == {
        "name": "Ada",
        "tags": "a,b",
        "day": "",
    }
    unknown_form = json.loads(parse_form_submit(value, None))
    assert unknown_form == {"name": "Ada", "tags": "a,b", "extra": "1"}


# -- console --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field_id", "text", "expected"),
    [
        ("colour", "2", ("blue", None)),
        ("colour", "RED", ("red", None)),
        ("colour", "Blue", ("blue", None)),
        ("colour", "3", ("", "pick a number from 1 to 2")),
        ("tags", "1, gamma,b,1", ("a,c,b", None)),
        ("tags", "1, zeta", ("", "'zeta' is not one of the choices")),
        ("day", "2026-11-09", ("2026-11-09", None)),
        ("day", "9 Nov", ("", "use a date like 2026-11-01")),
        ("at", "9:05", ("09:05", None)),
        ("at", "24:00", ("", "use a time like 10:30")),
        ("name", "Ada", ("Ada", None)),
    ],
)
def test_console_answers_are_read_like_the_form_shows_them(
    field_id: str, text: str, expected: tuple[str, str | None]
) -> None:
    assert parse_answer(field(sample_form(), field_id), text) == expected
