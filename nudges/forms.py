"""The "new campaign" form, and its answers turned into a `CampaignConfig`.

The form is platform-neutral (a Slack modal, a Teams card, a console dialogue). Its answers are
checked by the same model the organisation file uses, and every problem comes back on the field
the person can fix, in plain words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import date, time
from typing import Any

from pydantic import ValidationError

from bot.config.organisation import OrganisationConfig
from bot.core.types import FieldKind, Form, FormField, Role
from nudges.config import LADDER, PLACEHOLDERS, CampaignConfig, Stage

FORM_ID = "campaign.create"
COMMAND = "campaign new"
CADENCES = (
    ("weekly", "Weekly"),
    ("2weeks", "Every 2 weeks"),
    ("4weeks", "Every 4 weeks"),
    ("once", "Once"),
)
EVERY_WEEKS = {"weekly": 1, "2weeks": 2, "4weeks": 4}
DAYS = (
    ("mon", "Monday"),
    ("tue", "Tuesday"),
    ("wed", "Wednesday"),
    ("thu", "Thursday"),
    ("fri", "Friday"),
)
ROLES = (
    (Role.EMPLOYEE.value, "Everyone (all employees)"),
    (Role.EXPERT.value, "Experts"),
    (Role.EVANGELIST.value, "Evangelists"),
    (Role.LEADER.value, "Leaders"),
)
MESSAGE_FIELDS = {stage: f"message_{stage.value}" for stage in LADDER}
FIRST_MESSAGE = MESSAGE_FIELDS[LADDER[0]]
DEFAULTS = {"cadence": "weekly", "day": "tue", "at": "10:30"}
DATE_HINT = "Use a date like 2026-11-01."
TIME_HINT = "Use a time like 10:30."


def campaign_form(org: OrganisationConfig, initial: dict[str, str] | None = None) -> Form:
    """The form behind `campaign new`; `initial` fills in answers (field id → text)."""
    filled = {**DEFAULTS, **(initial or {})}
    fields = [
        FormField("name", "Name", max_length=100, placeholder="One reaction a week"),
        FormField("goal", "Goal", required=False, max_length=300, placeholder="More of us react"),
        *_audience_fields(org),
        FormField("cadence", "How often", FieldKind.CHOICE, options=CADENCES),
        FormField(
            "day", "Day", FieldKind.CHOICE, required=False, options=DAYS, hint="For weekly ones."
        ),
        FormField("on", "Date", FieldKind.DATE, required=False, hint="For a one-off campaign."),
        FormField("at", "Time", FieldKind.TIME, hint="In each person's own time zone."),
        FormField("start", "Starts", FieldKind.DATE, required=False),
        FormField("end", "Ends", FieldKind.DATE, required=False),
        FormField("page", "Brand page", required=False, max_length=200, hint=_page_hint(org)),
        *(_message_field(stage) for stage in LADDER),
    ]
    return Form(
        id=FORM_ID,
        title="New campaign",
        submit_label="Create",
        fields=tuple(_fill(f, filled.get(f.id)) for f in fields),
        intro=(
            "Who it is for, how often it goes out and what it says. Nudges still keep to "
            "everyone's limits: rare, in working hours, never on holidays."
        ),
    )


def parse_campaign_form(
    values: dict[str, str],
    org: OrganisationConfig,
    *,
    taken_ids: Collection[str] = (),
    owner: str | None = None,
) -> tuple[CampaignConfig | None, dict[str, str]]:
    """The campaign the answers describe, or None and what to fix (field id → message).

    Its id is a slug of the name, made unique against `taken_ids` ("-2", "-3"…).
    """
    answers = {k: (v or "").strip() for k, v in values.items()}
    errors: dict[str, str] = {}
    when = _when(answers, errors)
    audience = _audience(answers, org, errors)
    cadence = _cadence(answers, when, errors)
    messages = {s.value: [answers[f]] for s, f in MESSAGE_FIELDS.items() if answers.get(f)}
    if not answers.get("name"):
        errors["name"] = "Give the campaign a name."
    if not messages:
        errors[FIRST_MESSAGE] = "Write at least one message."
    data: dict[str, Any] = {
        "id": unique_slug(answers.get("name", ""), taken_ids),
        "name": answers.get("name", ""),
        "goal": answers.get("goal", ""),
        "owner": owner,
        "audience": audience,
        "cadence": cadence,
        "start": when.get("start"),
        "end": when.get("end"),
        "page": answers.get("page") or None,
        "messages": messages,
    }
    try:
        campaign = CampaignConfig.model_validate(data)
    except ValidationError as exc:
        _add_model_errors(exc, errors, _audience_field(org))
        return None, errors
    return (None, errors) if errors else (campaign, {})


def validate_campaign_form(org: OrganisationConfig) -> Callable[[dict[str, str]], dict[str, str]]:
    """A `FormSpec.validate` for the campaign form (ids are made unique when it is stored)."""

    def validate(values: dict[str, str]) -> dict[str, str]:
        return parse_campaign_form(values, org)[1]

    return validate


def unique_slug(name: str, taken_ids: Collection[str] = ()) -> str:
    """'One reaction a week!' → 'one-reaction-a-week' (or '…-2' when that is taken)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:56].rstrip("-")
    slug = slug or "campaign"
    taken = {t.lower() for t in taken_ids}
    candidate, n = slug, 1
    while candidate in taken:
        n += 1
        candidate = f"{slug}-{n}"
    return candidate


# -- the form ----------------------------------------------------------------------------------


def _audience_fields(org: OrganisationConfig) -> list[FormField]:
    fields = []
    if org.teams:  # a choice without options would be refused by Slack
        teams = tuple((t.id, t.name) for t in org.teams)
        fields.append(
            FormField(
                "teams",
                "Teams",
                FieldKind.MULTI_CHOICE,
                required=False,
                options=teams,
                hint="Sub-teams are included.",
            )
        )
    fields += [
        FormField("roles", "Roles", FieldKind.MULTI_CHOICE, required=False, options=ROLES),
        FormField(
            "people",
            "People",
            required=False,
            max_length=2000,
            placeholder="ada, tom@example.org",
            hint="Ids or emails from the organisation file, separated by commas.",
        ),
        FormField(
            "stages",
            "Only people at these stages",
            FieldKind.MULTI_CHOICE,
            required=False,
            options=tuple((s.value, s.value.capitalize()) for s in LADDER),
            hint="Leave empty for every stage.",
        ),
    ]
    return fields


def _message_field(stage: Stage) -> FormField:
    names = ", ".join("{" + name + "}" for name in PLACEHOLDERS)
    return FormField(
        MESSAGE_FIELDS[stage],
        f"Message for people who {stage.value}",
        FieldKind.LONG_TEXT,
        required=False,
        hint=f"Write at least one message. You can use {names}.",
    )


def _page_hint(org: OrganisationConfig) -> str:
    if not org.sources:
        return "The page the messages point at ({page})."
    first = org.sources[0]
    return f"The page the messages point at ({{page}}). Empty: {first.name or first.id}."


def _fill(f: FormField, value: str | None) -> FormField:
    return replace(f, initial=value) if value else f


# -- the answers -------------------------------------------------------------------------------


def _audience_field(org: OrganisationConfig) -> str:
    return "teams" if org.teams else "roles"


def _audience(
    answers: dict[str, str], org: OrganisationConfig, errors: dict[str, str]
) -> dict[str, Any]:
    teams = _choices(answers, "teams", {t.id for t in org.teams}, "team", errors)
    roles = _choices(answers, "roles", {value for value, _ in ROLES}, "role", errors)
    stages = _choices(answers, "stages", {s.value for s in LADDER}, "stage", errors)
    people = _people(answers.get("people", ""), org, errors)
    if not (teams or roles or people) and not {"teams", "roles", "people"} & errors.keys():
        errors[_audience_field(org)] = "Choose teams, roles or people: at least one."
    return {"teams": teams, "roles": roles, "people": people, "stages": stages}


def _choices(
    answers: dict[str, str], field: str, known: set[str], noun: str, errors: dict[str, str]
) -> list[str]:
    chosen = [v.strip() for v in answers.get(field, "").split(",") if v.strip()]
    unknown = [v for v in chosen if v not in known]
    if unknown:
        errors[field] = f"I don't know the {noun}(s) {', '.join(unknown)}."
    return [v for v in dict.fromkeys(chosen) if v in known]


def _people(text: str, org: OrganisationConfig, errors: dict[str, str]) -> list[str]:
    by_name = {p.id.lower(): p.id for p in org.people}
    by_name |= {p.email.lower(): p.id for p in org.people if p.email}
    found: list[str] = []
    unknown: list[str] = []
    for word in (w for w in re.split(r"[,;\s]+", text) if w):
        person = by_name.get(word.lower())
        if person is None:
            unknown.append(word)
        elif person not in found:
            found.append(person)
    if unknown:
        errors["people"] = (
            f"I can't find {', '.join(unknown)} in the organisation file (use ids or emails)."
        )
    return found


def _when(answers: dict[str, str], errors: dict[str, str]) -> dict[str, date | time]:
    """The dates and the time of day given, read the way the form shows them."""
    found: dict[str, date | time] = {}
    for field in ("on", "start", "end"):
        text = answers.get(field)
        if not text:
            continue
        try:
            found[field] = date.fromisoformat(text)
        except ValueError:
            errors[field] = DATE_HINT
    text = answers.get("at") or DEFAULTS["at"]
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text)
    if match and int(match[1]) < 24 and int(match[2]) < 60:
        found["at"] = time(int(match[1]), int(match[2]))
    else:
        errors["at"] = TIME_HINT
    start, end = found.get("start"), found.get("end")
    if isinstance(start, date) and isinstance(end, date) and end < start:
        errors["end"] = "The end date is before the start date."
    return found


def _cadence(
    answers: dict[str, str], when: dict[str, date | time], errors: dict[str, str]
) -> dict[str, Any]:
    kind = answers.get("cadence") or ""
    at = when.get("at", DEFAULTS["at"])
    if kind == "once":
        if not answers.get("on"):
            errors["on"] = "Choose the date for a one-off campaign."
        return {"once": when.get("on"), "at": at}
    if kind not in EVERY_WEEKS:
        errors["cadence"] = "Choose how often: weekly, every 2 or 4 weeks, or once."
        return {"day": answers.get("day") or "mon", "at": at}
    if not answers.get("day"):
        errors["day"] = "Choose a day for a weekly campaign."
    return {"day": answers.get("day") or "mon", "every_weeks": EVERY_WEEKS[kind], "at": at}


# -- pydantic's words → the field and a friendly sentence ----------------------------------------

_GROUPS = {
    "teams": "audience",
    "roles": "audience",
    "people": "audience",
    "stages": "audience",
    "cadence": "cadence",
    "day": "cadence",
    "on": "cadence",
    "at": "cadence",
    **{f: "messages" for f in MESSAGE_FIELDS.values()},
}
_NOT_THE_RIGHT_BRANCH = {"model_type", "model_attributes_type", "dict_type"}
_UNKNOWN_PLACEHOLDERS = re.compile(r"unknown placeholder\(s\) \[([^\]]*)\]")


def _add_model_errors(exc: ValidationError, errors: dict[str, str], audience: str) -> None:
    """Add what the model found, unless the field (or its group) already has a problem."""
    reported = {_GROUPS.get(f, f) for f in errors}
    for error in exc.errors():
        if error["type"] in _NOT_THE_RIGHT_BRANCH:
            continue  # the other branch of "variant or plain text"
        field = _field_of(tuple(error["loc"]), audience)
        if field in errors or _GROUPS.get(field, field) in reported:
            continue
        errors[field] = _friendly(field, error)


def _field_of(loc: tuple[Any, ...], audience: str) -> str:
    if not loc:
        return "end"  # the one model-wide check: end before start
    head = str(loc[0])
    if head == "audience":
        return str(loc[1]) if len(loc) > 1 and str(loc[1]) in _GROUPS else audience
    if head == "cadence":
        sub = str(loc[1]) if len(loc) > 1 else "cadence"
        sub = "on" if sub == "once" else sub  # the form's date field for a one-off
        return sub if sub in ("day", "on", "at") else "cadence"
    if head == "messages":
        stage = str(loc[1]) if len(loc) > 1 else LADDER[0].value
        return f"message_{stage}" if f"message_{stage}" in _GROUPS else FIRST_MESSAGE
    return "name" if head == "id" else head


def _friendly(field: str, error: Any) -> str:
    kind = error["type"]
    if not error["loc"]:
        return "The end date is before the start date."
    if field in ("on", "start", "end") and kind != "value_error":
        return DATE_HINT
    if field == "at":
        return TIME_HINT
    if field == "name" and error["loc"][0] == "id":
        return "Use a name with some letters or digits."
    if kind == "string_too_long":
        return f"That is too long: at most {error['ctx']['max_length']} characters."
    message = str(error["msg"]).removeprefix("Value error, ")
    unknown = _UNKNOWN_PLACEHOLDERS.match(message)
    if unknown:
        names = ", ".join("{" + n + "}" for n in re.findall(r"'([^']*)'", unknown[1]))
        known = ", ".join("{" + n + "}" for n in PLACEHOLDERS)
        return f"I don't know {names}. You can use {known}."
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
