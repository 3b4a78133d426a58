"""Forms: opening one (a button, a chat command) and checking what comes back.

A capability registers a `FormSpec` and an action handler under the same id. The platforms show
the form their own way (Slack modal, Teams card inputs, console dialogue) and send the answers
back as a `ButtonPress`; `check_submission` reads and validates them before the handler runs, so
handlers only ever see clean answers.
"""

from __future__ import annotations

import json
from typing import Any

from bot.core.permissions import require
from bot.core.types import FORM_OPEN_ACTION, Form, OutgoingMessage, Person
from bot.services.commands import CommandContext, CommandRegistry, FormSpec

UNREADABLE = "Sorry, I couldn't read that form. Could you fill it in again?"


def register(registry: CommandRegistry) -> None:
    registry.action(FORM_OPEN_ACTION, open_form_action)


async def open_form_action(ctx: CommandContext) -> None:
    """`form.open` (value: the form id): reply with the form, if the person may use it."""
    spec = ctx.registry.find_form(ctx.args.strip())
    if spec is None:
        ctx.reply("That form is no longer available. Say `help` to see what I can do now.")
        return
    if spec.permission is not None:
        require(ctx.person, spec.permission)
    ctx.reply(form_message(spec.build()))


def form_message(form: Form) -> OutgoingMessage:
    return OutgoingMessage(text=f"{form.title}: just a few questions.", form=form)


def answers(ctx: CommandContext) -> dict[str, str]:
    """The answers a form's action handler receives (field id → text)."""
    decoded = json.loads(ctx.args or "{}")
    return {str(k): str(v) for k, v in decoded.items()} if isinstance(decoded, dict) else {}


def check_submission(spec: FormSpec, person: Person, raw: str) -> str | OutgoingMessage:
    """The answers as clean JSON for the handler, or the reply that asks to fix them.

    Clean means: exactly the form's field ids, every value a string ("" when left empty).
    Raises `PermissionDenied` when the person may not use the form.
    """
    if spec.permission is not None:
        require(person, spec.permission)
    form = spec.build()
    try:
        decoded = json.loads(raw)
    except (ValueError, RecursionError):
        decoded = None
    if not isinstance(decoded, dict):
        return OutgoingMessage(text=UNREADABLE, form=form)
    values = {f.id: _as_text(decoded.get(f.id)) for f in form.fields}
    errors = spec.validate(values)
    if errors:
        return problems_message(form, values, errors)
    return json.dumps(values)


def problems_message(form: Form, values: dict[str, str], errors: dict[str, str]) -> OutgoingMessage:
    """What is wrong, by field label, with the form again holding what the person sent."""
    labels = {f.id: f.label for f in form.fields}
    lines = [
        f"- **{labels[field_id]}**: {message}" if field_id in labels else f"- {message}"
        for field_id, message in sorted(errors.items(), key=lambda e: _order(form, e[0]))
    ]
    return OutgoingMessage(
        text="Almost there: a few things to fix.",
        sections=("**Almost there: a few things to fix.**", "\n".join(lines)),
        form=form.with_values(values),
    )


def _order(form: Form, field_id: str) -> int:
    ids = [f.id for f in form.fields]
    return ids.index(field_id) if field_id in ids else len(ids)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return ",".join(str(v).strip() for v in value if str(v).strip())
    return str(value).strip()
