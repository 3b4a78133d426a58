"""Building the neutral message markup (see `OutgoingMessage`): pieces every feature uses."""

from __future__ import annotations


def link(label: str, url: str) -> str:
    """`[label](url)` that every platform's renderer reads back whole.

    Brackets in the label and parentheses in the address (Wikipedia's `Mercury_(planet)`)
    would end the link early, so the label's brackets become parentheses and the address's
    parentheses are percent-encoded (servers read `%28` as `(`).
    """
    label = label.replace("[", "(").replace("]", ")")
    return f"[{label}]({url.replace('(', '%28').replace(')', '%29')})"
