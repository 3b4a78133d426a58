"""OutgoingMessage → Adaptive Card (buttons are Action.Submit; a form's fields are inputs)."""

from __future__ import annotations

import base64
import json
from collections.abc import Collection
from typing import Any

from bot.core.types import Button, ButtonStyle, FieldKind, Form, FormField, OutgoingMessage
from bot.platforms.markup import to_teams

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ACTION_KEY = "ev_action"
VALUE_KEY = "ev_value"
FORM_KEY = "ev_form"
"""Marks the submit data of a form; Teams merges the inputs' values in next to it."""


def render_card(message: OutgoingMessage) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"type": "TextBlock", "text": to_teams(section), "wrap": True}
        for section in (message.sections or (message.text,))
    ]
    if message.context:
        body.append(
            {
                "type": "TextBlock",
                "text": to_teams(message.context),
                "wrap": True,
                "isSubtle": True,
                "size": "Small",
            }
        )
    if message.form is not None:
        body.extend(form_inputs(message.form))
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        # 1.4 renders on every Teams client, desktop and mobile.
        "version": "1.4",
        "body": body,
    }
    actions: list[dict[str, Any]] = []
    if message.form is not None:
        actions.append(
            {
                "type": "Action.Submit",
                "title": message.form.submit_label,
                "style": "positive",
                "data": {ACTION_KEY: message.form.id, FORM_KEY: "1"},
            }
        )
    actions += [_action(button) for button in message.buttons]
    if actions:
        card["actions"] = actions
    return card


def _action(button: Button) -> dict[str, Any]:
    style = (
        {"style": "positive" if button.style is ButtonStyle.PRIMARY else "destructive"}
        if button.style is not ButtonStyle.DEFAULT
        else {}
    )
    if button.url:
        # Action.OpenUrl opens the link in the client; Teams does not tell the bot.
        return {"type": "Action.OpenUrl", "title": button.label, "url": button.url, **style}
    return {
        "type": "Action.Submit",
        "title": button.label,
        "data": {ACTION_KEY: button.action, VALUE_KEY: button.value},
        **style,
    }


def form_inputs(form: Form) -> list[dict[str, Any]]:
    """The form's intro and one input per field (`id` = field id), each with its hint."""
    body: list[dict[str, Any]] = []
    if form.intro:
        body.append({"type": "TextBlock", "text": to_teams(form.intro), "wrap": True})
    for f in form.fields:
        body.append(_input(f))
        if f.hint:
            body.append(
                {
                    "type": "TextBlock",
                    "text": to_teams(f.hint),
                    "wrap": True,
                    "isSubtle": True,
                    "size": "Small",
                    "spacing": "None",
                }
            )
    return body


def _input(f: FormField) -> dict[str, Any]:
    element: dict[str, Any] = {"id": f.id, "label": f.label, "isRequired": f.required}
    if f.required:
        element["errorMessage"] = f"{f.label} is needed."
    if f.kind in (FieldKind.CHOICE, FieldKind.MULTI_CHOICE) and f.options:
        element.update(
            type="Input.ChoiceSet",
            style="compact",
            isMultiSelect=f.kind is FieldKind.MULTI_CHOICE,
            choices=[{"title": label, "value": value} for value, label in f.options],
        )
    elif f.kind is FieldKind.DATE:
        element["type"] = "Input.Date"
    elif f.kind is FieldKind.TIME:
        element["type"] = "Input.Time"
    else:
        element.update(
            type="Input.Text", isMultiline=f.kind is FieldKind.LONG_TEXT, maxLength=f.max_length
        )
    if f.placeholder:
        element["placeholder"] = f.placeholder
    if f.initial:
        # A multi-select ChoiceSet takes its initial values comma-separated, as we keep them.
        element["value"] = f.initial
    return element


def parse_submit(value: Any) -> tuple[str, str] | None:
    """The data of one of our Action.Submit buttons, or None for anything else."""
    if not isinstance(value, dict) or not isinstance(value.get(ACTION_KEY), str):
        return None
    argument = value.get(VALUE_KEY, "")
    return value[ACTION_KEY], argument if isinstance(argument, str) else str(argument)


def is_form_submit(value: Any) -> bool:
    return isinstance(value, dict) and value.get(FORM_KEY) is not None


def parse_form_submit(value: dict[str, Any], field_ids: Collection[str] | None) -> str:
    """A form's submit data → the JSON answers: only the form's fields, every value a string.

    Teams leaves out inputs that were left empty; they come back as "". Without the form's
    field ids (a form no longer registered), every key that is not ours is kept.
    """
    ids = field_ids if field_ids is not None else [k for k in value if not k.startswith("ev_")]
    return json.dumps({i: _as_text(value.get(i)) for i in ids})


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


IMAGE_CARD_MAX_BYTES = 27_000
"""Teams refuses (or silently drops) bot messages much over 28 KB, card JSON included
(Microsoft Q&A 2152702); an inline image has to fit inside that."""


def image_card(image: bytes, *, title: str, alt_text: str) -> dict[str, Any]:
    """An Adaptive Card showing a PNG inline (a data URI, allowed since card schema 1.2)."""
    return {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": [
            {"type": "TextBlock", "text": to_teams(title), "wrap": True, "weight": "Bolder"},
            {
                "type": "Image",
                "url": "data:image/png;base64," + base64.b64encode(image).decode("ascii"),
                "altText": alt_text[:1000],
                "size": "Stretch",
            },
        ],
    }
