"""What the question desk says: routed questions, channel calls for help, reminders, credit.

Messages are built in the neutral markup (bot/core/types.py) and look the same on Slack, Teams
and the console. Public text is untrusted: it is sanitised at intake and quoted here with the
markup characters neutralised, so a comment cannot format, link or ping inside our messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.core.clock import as_utc
from bot.core.markup import link as markup_link
from bot.core.types import Button, ButtonStyle, OutgoingMessage
from bot.storage.models import QuestionRow

SOURCE_LABELS = {
    "facebook_page": "our Facebook Page",
    "instagram": "Instagram",
    "youtube": "YouTube",
    "rss": "a feed we follow",
    "webhook": "a connected site",
    "csv": "an import",
    "channel": "a chat channel",
    "demo": "our demo page",
}

# Look-alikes for the characters our markup reads: asterisk operator, square brackets with
# quill, modifier prime and full-width low line.
_NEUTRALISE = str.maketrans(
    {"*": "\u2217", "[": "\u2045", "]": "\u2046", "`": "\u02b9", "_": "\uff3f"}
)


def quote(text: str) -> str:
    """Public text shown inside our markup without being read as markup."""
    return text.translate(_NEUTRALISE)


def waited(since: datetime | None, now: datetime) -> str:
    """'3 h 20 min', '2 days', 'just now'."""
    if since is None:
        return "an unknown time"
    seconds = max(0.0, (as_utc(now) - as_utc(since)).total_seconds())
    if seconds < 90:
        return "just now"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def ago(since: datetime | None, now: datetime) -> str:
    span = waited(since, now)
    return span if span in ("just now", "an unknown time") else f"{span} ago"


@dataclass(frozen=True)
class Routed:
    """Everything a routed question message shows."""

    question: QuestionRow
    source_label: str
    topic_name: str | None
    why: str
    skeleton: str
    before: tuple[tuple[str, str], ...] = ()
    """Similar questions answered before: (who, link)."""
    reminder: bool = False


def routed(view: Routed, now: datetime) -> OutgoingMessage:
    q = view.question
    asked = ago(q.posted_at or q.created_at, now)
    lead = (
        "Reminder: this question still needs an answer" if view.reminder else "A question for you"
    )
    sections = [
        f"**{lead}** from {view.source_label}"
        + (f" about _{view.topic_name}_" if view.topic_name else ""),
        _question_block(q),
        f"Asked {asked} · " + (markup_link("open it on the page", q.url) if q.url else "no link"),
        f"Why you: {view.why}.",
    ]
    if view.before:
        sections.extend(_answered_before(view.before))
    sections.append(
        "If you answer, reply on the page _as yourself_ and say how you are related to us. "
        "For example:\n" + view.skeleton
    )
    qid = str(q.id)
    return OutgoingMessage(
        text=f"{lead}: {_short(q.text)}",
        sections=tuple(sections),
        buttons=(
            Button("q.claim", "I'll answer", qid, ButtonStyle.PRIMARY),
            Button("q.topic", "Not me: wrong topic", qid),
            Button("q.busy", "Not me: busy", qid),
            Button("q.already", "Already answered", qid),
            Button("q.snooze", "Remind me in 1 h", qid),
        ),
        context=f"Question #{q.id} · one person at a time: nobody else has it right now",
    )


def claimed(q: QuestionRow, who: str) -> OutgoingMessage:
    return OutgoingMessage(
        text=f"{who} is answering question #{q.id}.",
        sections=(
            f"**{who} is answering this one.** Thank you!",
            _question_block(q),
            (markup_link("Open it on the page", q.url) if q.url else "")
            + "\nWhen your reply is up, press **I answered**. I'll check the page and credit you.",
        ),
        buttons=(
            Button("q.done", "I answered", str(q.id), ButtonStyle.PRIMARY),
            Button("q.release", "I can't after all", str(q.id)),
        ),
        context=f"Question #{q.id}",
    )


def settled(q: QuestionRow, status: str) -> OutgoingMessage:
    """The final state of a routed message or channel post; no buttons left to press."""
    return OutgoingMessage(
        text=f"Question #{q.id}: {status}",
        sections=(f"**{status}**", _question_block(q)),
        context=f"Question #{q.id}",
    )


def channel_call(
    q: QuestionRow,
    topic_name: str | None,
    source_label: str,
    now: datetime,
    before: tuple[tuple[str, str], ...] = (),
) -> OutgoingMessage:
    about = f" about _{topic_name}_" if topic_name else ""
    return OutgoingMessage(
        text=f"Can anyone help? A question{about} has waited {waited(q.created_at, now)}.",
        sections=(
            f"**Can anyone help?** Someone asked on {source_label}{about} and it has waited "
            f"{waited(q.posted_at or q.created_at, now)}.",
            _question_block(q),
            *(_answered_before(before) if before else ()),
            (markup_link("Open it on the page", q.url) + " · " if q.url else "")
            + "Press **I'll answer** to take it; answer as yourself and say how you are related "
            "to us.",
        ),
        buttons=(Button("q.claim", "I'll answer", str(q.id), ButtonStyle.PRIMARY),),
        context=f"Question #{q.id}",
    )


def claim_reminder(q: QuestionRow) -> OutgoingMessage:
    return OutgoingMessage(
        text=f"A gentle nudge about question #{q.id}.",
        sections=(
            "**A gentle nudge:** you took this question. Is your answer up yet?",
            _question_block(q),
            (markup_link("Open it on the page", q.url) + ". " if q.url else "")
            + "If you can't get to it, press **I can't after all** and I'll find someone else.",
        ),
        buttons=(
            Button("q.done", "I answered", str(q.id), ButtonStyle.PRIMARY),
            Button("q.release", "I can't after all", str(q.id)),
        ),
        context=f"Question #{q.id}",
    )


def released(q: QuestionRow) -> OutgoingMessage:
    return OutgoingMessage(
        text=f"I've passed question #{q.id} on.",
        sections=(
            f"I haven't seen an answer to question #{q.id} yet, so I've passed it on to "
            "someone else. No harm done: thank you for looking.",
        ),
    )


def verify_ask(q: QuestionRow) -> OutgoingMessage:
    return OutgoingMessage(
        text=f"I couldn't see your answer to question #{q.id} yet.",
        sections=(
            f"I couldn't see your answer to question #{q.id} on the page yet. Sometimes that "
            "takes a while, or the reply went somewhere I can't see. Is it up?",
            _question_block(q),
        ),
        buttons=(
            Button("q.posted", "Yes, it's posted", str(q.id), ButtonStyle.PRIMARY),
            Button("q.release", "Not yet, pass it on", str(q.id)),
        ),
        context=f"Question #{q.id} · I'll only ask once",
    )


def credited(q: QuestionRow) -> OutgoingMessage:
    return OutgoingMessage(
        text=f"Your answer to question #{q.id} is up. Thank you!",
        sections=(
            f"**Your answer to question #{q.id} is on the page.** Thank you! It counts toward "
            "your team's participation.",
        ),
    )


def source_trouble(name: str, error: str, failures: int) -> OutgoingMessage:
    return OutgoingMessage(
        text=f"I can't read {name} right now.",
        sections=(
            f"**I can't read {name}** ({failures} attempt{'s' if failures != 1 else ''} in a row).",
            f"The last error: {quote(error[:300])}",
            "I'll keep trying and tell you once it works again. `questions` shows source health.",
        ),
    )


def source_recovered(name: str) -> OutgoingMessage:
    return OutgoingMessage(
        text=f"{name} works again.", sections=(f"Good news: {name} works again.",)
    )


def skeleton(author: str | None, first_name: str, affiliation: str) -> str:
    greeting = f"Hi {author.split()[0]}" if author and author.split() else "Hi"
    return f"{quote(greeting)}, I'm {first_name} and {affiliation}. <your answer>"


def _answered_before(before: tuple[tuple[str, str], ...]) -> tuple[str]:
    return ("Answered before: " + "; ".join(markup_link(f"by {who}", url) for who, url in before),)


def _question_block(q: QuestionRow) -> str:
    title = f"**{quote(q.title)}**\n" if q.title else ""
    author = f"{quote(q.author_name)} asked:\n" if q.author_name else ""
    return f"{author}{title}“{quote(q.text)}”"


def _short(text: str, limit: int = 120) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
