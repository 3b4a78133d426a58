"""The neutral message markup, translated for each platform.

Source markup: `**bold**`, `_italic_`, `` `code` ``, `[label](https://url)`, `- ` bullets.
"""

from __future__ import annotations

import re

_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*", re.S)


# Slack's own references (<#C123>, <@U123>) may appear in text; everything else is escaped.
_SLACK_REFERENCE = re.compile(r"<([#@][A-Z0-9]{2,})>")
_ESCAPED_SLACK_REFERENCE = re.compile(r"&lt;([#@][A-Z0-9]{2,})&gt;")


def to_slack(text: str) -> str:
    """Slack mrkdwn: escape &, <, > first (Slack's rule), then bold and links."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _ESCAPED_SLACK_REFERENCE.sub(r"<\1>", text)
    text = _LINK.sub(lambda m: f"<{m.group(2)}|{m.group(1)}>", text)
    text = _BOLD.sub(r"*\1*", text)
    return re.sub(r"^- ", "• ", text, flags=re.M)


def to_teams(text: str) -> str:
    """Adaptive Card TextBlocks read this markdown subset as it is."""
    return _SLACK_REFERENCE.sub(r"\1", text)


def to_plain(text: str) -> str:
    text = _SLACK_REFERENCE.sub(r"\1", text)
    text = _LINK.sub(lambda m: f"{m.group(1)} <{m.group(2)}>", text)
    text = _BOLD.sub(r"\1", text)
    return re.sub(r"(?<![\w`])_(\S(?:.*?\S)?)_(?!\w)", r"\1", text)
