"""Form → Slack modal, and a submitted modal's state → the form's answers.

Each field is one input block; block_id and action_id are both the field id, so the answers sit
at `view.state.values[field][field]` and validation errors go back keyed by field id
(PLATFORM-FACTS §A.5). Slack refuses a whole view over any one limit, so every text is cut to
Block Kit's documented sizes here.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from bot.core.types import FieldKind, Form, FormField
from bot.platforms.markup import to_slack
from bot.platforms.slack.blocks import ACTION_PREFIX, SECTION_LIMIT

CALLBACK_PREFIX = ACTION_PREFIX
"""A modal's callback_id is this prefix and the form id."""
TITLE_LIMIT = 24  # title, submit and close texts
LABEL_LIMIT = 2000
PLACEHOLDER_LIMIT = 150
INPUT_LIMIT = 3000  # plain_text_input max_length
OPTIONS_LIMIT = 100
OPTION_TEXT_LIMIT = 75
OPTION_VALUE_LIMIT = 150
MAX_BLOCKS = 100
_TIME = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


def render_modal(form: Form) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    if form.intro:
        text = to_slack(form.intro)[:SECTION_LIMIT]
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text}})
    blocks.extend(_input_block(f) for f in form.fields)
    return {
        "type": "modal",
        "callback_id": f"{CALLBACK_PREFIX}{form.id}",
        "title": _plain(form.title, TITLE_LIMIT),
        "submit": _plain(form.submit_label, TITLE_LIMIT),
        "close": _plain("Cancel", TITLE_LIMIT),
        "blocks": blocks[:MAX_BLOCKS],
    }


def form_id_of(callback_id: str) -> str:
    return callback_id.removeprefix(CALLBACK_PREFIX)


def read_state(form: Form, state_values: Any) -> dict[str, str]:
    """The answers in `view.state.values`: every field of the form, "" when left empty."""
    values = state_values if isinstance(state_values, dict) else {}
    answers: dict[str, str] = {}
    for f in form.fields:
        block = values.get(f.id)
        element = block.get(f.id) if isinstance(block, dict) else None
        answers[f.id] = _answer(element) if isinstance(element, dict) else ""
    return answers


def _answer(element: dict[str, Any]) -> str:
    kind = element.get("type")
    if kind in ("static_select", "radio_buttons"):
        return _option_value(element.get("selected_option"))
    if kind in ("multi_static_select", "checkboxes"):
        selected = element.get("selected_options")
        chosen = [_option_value(o) for o in selected] if isinstance(selected, list) else []
        return ",".join(v for v in chosen if v)
    if kind == "datepicker":
        return _text(element.get("selected_date"))
    if kind == "timepicker":
        return _text(element.get("selected_time"))
    return _text(element.get("value")).strip()


def _option_value(option: Any) -> str:
    return _text(option.get("value")) if isinstance(option, dict) else ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _input_block(f: FormField) -> dict[str, Any]:
    block: dict[str, Any] = {
        "type": "input",
        "block_id": f.id,
        "label": _plain(f.label, LABEL_LIMIT),
        "optional": not f.required,
        "element": _element(f),
    }
    if f.hint:
        block["hint"] = _plain(f.hint, LABEL_LIMIT)
    return block


def _element(f: FormField) -> dict[str, Any]:
    if f.kind in (FieldKind.CHOICE, FieldKind.MULTI_CHOICE) and f.options:
        return _select(f)
    if f.kind is FieldKind.DATE:
        element: dict[str, Any] = {"type": "datepicker", "action_id": f.id}
        if f.initial and _is_date(f.initial):
            element["initial_date"] = f.initial
    elif f.kind is FieldKind.TIME:
        element = {"type": "timepicker", "action_id": f.id}
        if f.initial and _TIME.match(f.initial):
            element["initial_time"] = f.initial
    else:
        limit = max(1, min(f.max_length, INPUT_LIMIT))
        element = {
            "type": "plain_text_input",
            "action_id": f.id,
            "multiline": f.kind is FieldKind.LONG_TEXT,
            "max_length": limit,
        }
        if f.initial:
            element["initial_value"] = f.initial[:limit]
    if f.placeholder:
        element["placeholder"] = _plain(f.placeholder, PLACEHOLDER_LIMIT)
    return element


def _select(f: FormField) -> dict[str, Any]:
    options = [_option(value, label) for value, label in f.options[:OPTIONS_LIMIT]]
    multi = f.kind is FieldKind.MULTI_CHOICE
    element: dict[str, Any] = {
        "type": "multi_static_select" if multi else "static_select",
        "action_id": f.id,
        "options": options,
    }
    # Initial options must be exactly options of the element, or Slack refuses the view.
    wanted = [v.strip() for v in (f.initial or "").split(",")] if multi else [f.initial or ""]
    initial = [o for o in options if o["value"] in wanted]
    if initial and multi:
        element["initial_options"] = initial
    elif initial:
        element["initial_option"] = initial[0]
    if f.placeholder:
        element["placeholder"] = _plain(f.placeholder, PLACEHOLDER_LIMIT)
    return element


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": _plain(label, OPTION_TEXT_LIMIT), "value": value[:OPTION_VALUE_LIMIT]}


def _plain(text: str, limit: int) -> dict[str, Any]:
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return {"type": "plain_text", "text": shown, "emoji": True}


def _is_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return len(text) == 10
