"""OutgoingMessage → Adaptive Card (buttons are Action.Submit)."""

from __future__ import annotations

from typing import Any

from bot.core.types import ButtonStyle, OutgoingMessage
from bot.platforms.markup import to_teams

CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
ACTION_KEY = "ev_action"
VALUE_KEY = "ev_value"


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
    card: dict[str, Any] = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        # 1.4 renders on every Teams client, desktop and mobile.
        "version": "1.4",
        "body": body,
    }
    if message.buttons:
        card["actions"] = [
            {
                "type": "Action.Submit",
                "title": button.label,
                "data": {ACTION_KEY: button.action, VALUE_KEY: button.value},
                **(
                    {"style": "positive" if button.style is ButtonStyle.PRIMARY else "destructive"}
                    if button.style is not ButtonStyle.DEFAULT
                    else {}
                ),
            }
            for button in message.buttons
        ]
    return card


def parse_submit(value: Any) -> tuple[str, str] | None:
    """The data of one of our Action.Submit buttons, or None for anything else."""
    if not isinstance(value, dict) or not isinstance(value.get(ACTION_KEY), str):
        return None
    argument = value.get(VALUE_KEY, "")
    return value[ACTION_KEY], argument if isinstance(argument, str) else str(argument)
