"""OutgoingMessage → Block Kit."""

from __future__ import annotations

import json
from typing import Any

from bot.core.types import FORM_OPEN_ACTION, Button, ButtonStyle, OutgoingMessage
from bot.platforms.markup import to_slack

ACTION_PREFIX = "ev:"
SECTION_LIMIT = 3000  # Slack's limit for a section's text
MAX_BLOCKS = 50
OPEN_FORM_LABEL = "Open the form"


def render_blocks(message: OutgoingMessage) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for section in message.sections or (message.text,):
        text = to_slack(section)
        for start in range(0, len(text), SECTION_LIMIT):
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": text[start : start + SECTION_LIMIT]},
                }
            )
    if message.context:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": to_slack(message.context)[:SECTION_LIMIT]}],
            }
        )
    buttons = message.buttons
    if message.form is not None:
        # A modal can only be opened with the trigger_id of an interaction, so a message
        # carries the form behind a button (PLATFORM-FACTS §A.5).
        opener = Button(FORM_OPEN_ACTION, OPEN_FORM_LABEL, message.form.id, ButtonStyle.PRIMARY)
        buttons = (opener, *buttons)
    if buttons:
        elements = []
        for index, button in enumerate(buttons[:25]):
            element: dict[str, Any] = {
                "type": "button",
                # action_id must be unique within the block, so the index rides along.
                "action_id": f"{ACTION_PREFIX}{button.action}:{index}",
                "text": {"type": "plain_text", "text": button.label[:75], "emoji": True},
                "value": json.dumps({"v": button.value})[:2000],
            }
            if button.style is not ButtonStyle.DEFAULT:
                element["style"] = button.style.value
            if button.url:
                # A link button still sends block_actions, which is how opens are counted.
                element["url"] = button.url[:3000]
            elements.append(element)
        blocks.append({"type": "actions", "elements": elements})
    return blocks[:MAX_BLOCKS]


def parse_action(action_id: str, value: str | None) -> tuple[str, str]:
    """'ev:help:0' + '{"v": "x"}' → ('help', 'x')."""
    name = action_id.removeprefix(ACTION_PREFIX).rsplit(":", 1)[0]
    try:
        decoded = json.loads(value or "{}")
        argument = str(decoded.get("v", "")) if isinstance(decoded, dict) else ""
    except ValueError:
        argument = value or ""
    return name, argument


def plain_text(message: OutgoingMessage) -> str:
    """The notification text; Slack truncates past 40,000 characters."""
    return to_slack(message.text)[:4000]
