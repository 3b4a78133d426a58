"""A form at the console: one question at a time, the answers checked as they come."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

from bot.core.types import FieldKind, Form, FormField
from bot.platforms.markup import to_plain

CANCEL = "cancel"
PROMPT = "  > "
_TIME = re.compile(r"^(\d{1,2}):(\d{2})$")

Ask = Callable[[str], str]
"""Reads one answer (a script line, or the terminal); raises EOFError when input ends."""
Say = Callable[[str], None]


class FormCancelled(Exception):
    """The person typed `cancel` (or pressed Ctrl-C) in the middle of a form."""


def fill_in(form: Form, ask: Ask, say: Say) -> dict[str, str]:
    """Ask every question of `form`; the answers by field id ("" for a skipped one).

    Raises `FormCancelled`, or whatever `ask` raises when the input ends.
    """
    say(f"{form.title}")
    if form.intro:
        say("\n".join(f"  {line}" for line in to_plain(form.intro).splitlines()))
    say(
        "  One question at a time. Enter skips an optional one or keeps the value in brackets; "
        "`-` clears it; `cancel` stops."
    )
    return {f.id: _ask_field(f, ask, say) for f in form.fields}


def _ask_field(f: FormField, ask: Ask, say: Say) -> str:
    say(_question(f))
    while True:
        try:
            text = ask(PROMPT).strip()
        except KeyboardInterrupt:
            raise FormCancelled from None
        if text.lower() == CANCEL:
            raise FormCancelled
        if not text:
            if f.initial:
                return f.initial
            if not f.required:
                return ""
            say("  (this one is needed)")
            continue
        if text == "-" and not f.required:
            return ""
        value, problem = parse_answer(f, text)
        if problem is None:
            return value
        say(f"  ({problem})")


def _question(f: FormField) -> str:
    title = f.label + ("" if f.required else " (optional)")
    if f.initial:
        title += f" [{_shown(f, f.initial)}]"
    lines = [f"- {title}"]
    if f.hint:
        lines.append(f"    {to_plain(f.hint)}")
    if f.options:
        lines.append(
            "    " + "  ".join(f"{n}) {label}" for n, (_, label) in enumerate(f.options, 1))
        )
    if f.kind is FieldKind.MULTI_CHOICE:
        lines.append("    (several: numbers or values separated by commas)")
    elif f.kind is FieldKind.DATE:
        lines.append("    (a date like 2026-11-01)")
    elif f.kind is FieldKind.TIME:
        lines.append("    (a time like 10:30)")
    return "\n".join(lines)


def _shown(f: FormField, value: str) -> str:
    labels = dict(f.options)
    return ", ".join(labels.get(v, v) for v in value.split(",")) if f.options else value


def parse_answer(f: FormField, text: str) -> tuple[str, str | None]:
    """(the value to submit, None), or ("", what is wrong with the answer)."""
    if f.kind is FieldKind.CHOICE and f.options:
        value = _choice(f, text)
        return (value, None) if value else ("", f"pick a number from 1 to {len(f.options)}")
    if f.kind is FieldKind.MULTI_CHOICE and f.options:
        values: list[str] = []
        for part in (p.strip() for p in text.split(",")):
            value = _choice(f, part) if part else ""
            if part and not value:
                return "", f"{part!r} is not one of the choices"
            if value and value not in values:
                values.append(value)
        return ",".join(values), None
    if f.kind is FieldKind.DATE:
        try:
            return date.fromisoformat(text).isoformat(), None
        except ValueError:
            return "", "use a date like 2026-11-01"
    if f.kind is FieldKind.TIME:
        match = _TIME.match(text)
        if match is None or int(match[1]) > 23 or int(match[2]) > 59:
            return "", "use a time like 10:30"
        return f"{int(match[1]):02d}:{match[2]}", None
    if len(text) > f.max_length:
        return "", f"at most {f.max_length} characters, please"
    return text, None


def _choice(f: FormField, text: str) -> str:
    """An option by its number, its value or its label; "" when none matches."""
    if text.isdigit() and 1 <= int(text) <= len(f.options):
        return f.options[int(text) - 1][0]
    lowered = text.lower()
    for value, label in f.options:
        if lowered in (value.lower(), label.lower()):
            return value
    return ""
