"""What nudges say: the campaign's words with the placeholders filled in, five small buttons,
and short, warm answers to each of them. No guilt, no counting what someone did not do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.markup import link
from bot.core.types import Button, ButtonStyle, OutgoingMessage
from nudges.config import LADDER, CampaignConfig, Stage

STEP_WORDS: dict[Stage, str] = {
    Stage.WATCH: "have a look at what we post",
    Stage.REACT: "react to one post",
    Stage.SHARE: "share one post with your own network",
    Stage.COMMENT: "leave one comment, or answer someone's question",
    Stage.CREATE: "create a post of your own",
}
"""The small step each rung stands for, as it reads after "this week, …"."""

DONE, NOT_NOW, PAUSE, STOP, WHY, ALL_OFF = (
    "nudge.done",
    "nudge.later",
    "nudge.pause",
    "nudge.stop",
    "nudge.why",
    "nudge.off",
)

RESPONSE_WORDS = {
    "done": "✓ Done. Thank you!",
    "not_now": "Not now: no problem.",
    "paused": "Nudges paused.",
    "stopped": "You stopped this campaign.",
}


@dataclass(frozen=True, slots=True)
class LinkPick:
    """A learning-library link a nudge carries ({link}), with the buttons that go with it."""

    link_id: int
    url: str
    title: str
    buttons: tuple[Button, ...] = ()
    """Open, helpful, not for me: the library's own buttons, put before the nudge's."""

    @property
    def markup(self) -> str:
        return link(self.title, self.url)


@dataclass(frozen=True, slots=True)
class Fill:
    """Everything a message's placeholders can be filled with, for one person."""

    name: str
    page: str
    post: str
    link: str = ""

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else "there"


def fill(template: str, campaign: CampaignConfig, stage: Stage, values: Fill) -> str:
    """The template with every placeholder filled (config validation allows no others)."""
    return template.format(
        name=values.name,
        first_name=values.first_name,
        page=values.page,
        post=values.post,
        link=values.link or values.post,
        step=STEP_WORDS[stage.next],
        campaign=campaign.name,
    ).strip()


def ladder_line(stage: Stage) -> str:
    """'watch ✓ · react ✓ · **share** · comment · create': where someone stands, kindly."""
    parts = []
    for rung in LADDER:
        if rung.rank < stage.rank:
            parts.append(f"{rung.value} ✓")
        elif rung is stage:
            parts.append(f"**{rung.value}**")
        else:
            parts.append(rung.value)
    return " · ".join(parts)


def nudge_message(
    nudge_id: int,
    text: str,
    campaign: CampaignConfig,
    *,
    test: bool = False,
    pick: LinkPick | None = None,
) -> OutgoingMessage:
    value = str(nudge_id)
    return OutgoingMessage(
        text=text,
        sections=(text,),
        buttons=(
            *(pick.buttons if pick is not None else ()),
            Button(DONE, "Done", value, ButtonStyle.PRIMARY),
            Button(NOT_NOW, "Not now", value),
            Button(PAUSE, "Pause 2 weeks", value),
            Button(STOP, "Stop these", value),
            Button(WHY, "Why am I getting this?", value),
        ),
        context=(
            f"Test send of “{campaign.name}”: buttons work, nothing is counted."
            if test
            else f"From “{campaign.name}”. Small steps, no pressure: every button is fine."
        ),
    )


def settled(text: str, response: str, campaign: CampaignConfig, nudge_id: int) -> OutgoingMessage:
    """The nudge after someone answered it: their answer instead of the buttons."""
    return OutgoingMessage(
        text=text,
        sections=(text,),
        buttons=(Button(WHY, "Why am I getting this?", str(nudge_id)),),
        context=f"{RESPONSE_WORDS.get(response, response)} · “{campaign.name}”",
    )


def how_often(max_nudges: int, per_days: int) -> str:
    """'one nudge a week', '2 nudges every 10 days'."""
    often = "one nudge" if max_nudges == 1 else f"{max_nudges} nudges"
    return f"{often} a week" if per_days == 7 else f"{often} every {per_days} days"


def thanks(first_name: str, before: Stage, after: Stage, *, test: bool = False) -> OutgoingMessage:
    if after.rank > before.rank:
        step = (
            f"That's a new step for you: **{after.value}**. "
            if after is not Stage.CREATE
            else "You're creating now: the top of the ladder. "
        )
    else:
        step = ""
    body = (
        f"Thank you, {first_name}! {step}Every small thing you do on our pages helps people "
        "find us."
    )
    if test:
        body = f"Thank you, {first_name}! This was a test send, so nothing was recorded."
    return OutgoingMessage(
        text=f"Thank you, {first_name}!",
        sections=(body, f"Your ladder: {ladder_line(after)}"),
    )


def why(
    campaign: CampaignConfig,
    owner: str,
    max_nudges: int,
    per_days: int,
    window: str,
) -> OutgoingMessage:
    lines = [
        f"This came from **{campaign.name}**, run by {owner}."
        + (f" Its goal: {campaign.goal.rstrip('.')}." if campaign.goal else ""),
        f"You get at most {how_often(max_nudges, per_days)} from all campaigns together, "
        f"only {window} "
        "on your working days, never on holidays or while you're away.",
        "Press *Stop these* to stop this campaign, *Pause 2 weeks* for a break, or say "
        "`nudges off` to stop them all. No one is told, and no one can turn them back on but you.",
    ]
    return OutgoingMessage(text=f"Why you got this: {campaign.name}", sections=tuple(lines))


def local_words(at: datetime, zone: str) -> str:
    local = at.astimezone(ZoneInfo(zone))
    return f"{local:%A %d %B, %H:%M}"
