"""What the library says: the link of the week, picks' buttons, the evangelist's summary."""

from __future__ import annotations

from collections.abc import Sequence

from bot.core.markup import link as markup_link
from bot.core.types import FORM_OPEN_ACTION, Button, ButtonStyle, OutgoingMessage
from bot.questions.text import neutralise_mentions
from bot.storage.models import LinkRow
from nudges.messages import LinkPick

OPEN, HELPFUL, NOT_FOR_ME, TRIED = "library.open", "library.up", "library.down", "library.tried"
APPROVE, DISMISS = "library.approve", "library.dismiss"
NOTE_FORM = "library.note"
"""The "what I learned" form; its submission arrives as this action."""

DEFAULT_EXPERIMENT = (
    "Try one thing from it on our pages this week: a reaction, a share or a reply. "
    "Small is fine, and getting it wrong is how we learn."
)


def shown(text: str) -> str:
    """Text from feeds or people, safe to put in a message: `<@U…>` or `<!here>` written in a
    feed's title must not ping anyone (the same rule as for public questions on the desk)."""
    return neutralise_mentions(text)


def title_of(link: LinkRow) -> str:
    return shown(link.title) if link.title else link.url


def target_of(link: LinkRow) -> str:
    """Where the link really lives now: a redirected link is shared at its new address."""
    return link.final_url if link.health == "redirected" and link.final_url else link.url


def link_buttons(link: LinkRow) -> tuple[Button, ...]:
    value = str(link.id)
    return (
        Button(OPEN, "Open ↗", value, ButtonStyle.PRIMARY, url=target_of(link)),
        Button(HELPFUL, "👍 Helpful", value),
        Button(NOT_FOR_ME, "👎 Not for me", value),
    )


def pick_of(link: LinkRow) -> LinkPick:
    return LinkPick(
        link_id=link.id, url=target_of(link), title=title_of(link), buttons=link_buttons(link)
    )


def markdown_link(link: LinkRow) -> str:
    return markup_link(title_of(link), target_of(link))


def weekly_post(link: LinkRow, week: str) -> OutgoingMessage:
    """The link of the week with its experiment; the discussion prompt goes in the thread."""
    sections = [f"📚 **Link of the week:** {markdown_link(link)}"]
    if link.summary:
        sections.append(_clip(shown(link.summary), 400))
    experiment = shown(link.experiment) if link.experiment else DEFAULT_EXPERIMENT
    sections.append(f"🧪 **Experiment of the week:** {experiment}")
    return OutgoingMessage(
        text=f"Link of the week: {title_of(link)}",
        sections=tuple(sections),
        buttons=(
            *link_buttons(link),
            Button(TRIED, "🧪 I tried it", f"{link.id}:{week}"),
            Button(FORM_OPEN_ACTION, "✍️ What I learned", NOTE_FORM),
        ),
        context="Tried it? Press “I tried it”. Sharing what you learned is up to you.",
    )


def thread_prompt(prompt: str) -> OutgoingMessage:
    return OutgoingMessage(text=f"💬 {prompt}")


def learned_note(name: str, note: str, link: LinkRow) -> OutgoingMessage:
    text = f"✍️ **{name}** tried this week's experiment ({markdown_link(link)}):"
    return OutgoingMessage(
        text=f"{name} shared what they learned", sections=(text, _clip(shown(note), 1500))
    )


def suggestion(link: LinkRow, feed: str) -> OutgoingMessage:
    """One suggested link from a subscribed feed, to approve or dismiss."""
    sections = [f"**{markdown_link(link)}**"]
    if link.summary:
        sections.append(_clip(shown(link.summary), 300))
    return OutgoingMessage(
        text=f"Suggested: {title_of(link)}",
        sections=tuple(sections),
        buttons=(
            Button(APPROVE, "Add to the library", str(link.id), ButtonStyle.PRIMARY),
            Button(DISMISS, "Dismiss", str(link.id)),
        ),
        context=f"#{link.id} · from {feed}",
    )


def link_line(link: LinkRow) -> str:
    """'#12 [Title](url) · video, share · broken (HTTP 404)'."""
    details = [shown(", ".join(link.topics))] if link.topics else []
    if link.level:
        details.append(link.level)
    if link.health == "broken":
        details.append(f"broken ({link.check_error or f'HTTP {link.http_status}'})")
    elif link.health == "redirected":
        details.append("moved")
    suffix = f" · {' · '.join(details)}" if details else ""
    return f"#{link.id} {markdown_link(link)}{suffix}"


def summary(
    counts: dict[str, int],
    broken: Sequence[LinkRow],
    helpful: Sequence[tuple[LinkRow, int]],
    unopened: Sequence[tuple[LinkRow, int, int]],
    week: str,
) -> OutgoingMessage:
    """The evangelist's weekly look at the library."""
    lines = [
        f"📚 **The learning library, {week}:** {counts['active']} links in circulation, "
        f"{counts['suggested']} suggested waiting (say `library suggested`)."
    ]
    if broken:
        lines.append(
            f"**Broken, out of circulation ({len(broken)}):**\n"
            + "\n".join(f"- {link_line(link)}" for link in broken[:10])
        )
    if helpful:
        lines.append(
            "**Most helpful:**\n"
            + "\n".join(f"- {link_line(link)} · 👍 {n}" for link, n in helpful[:5])
        )
    if unopened:
        lines.append(
            "**Least opened:**\n"
            + "\n".join(
                f"- {link_line(link)} · opened {opens} time(s) in {shares} share(s)"
                for link, opens, shares in unopened[:5]
            )
        )
    return OutgoingMessage(text=f"The learning library, {week}", sections=tuple(lines))


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
