"""The digest in words: the chat message, the Markdown preview and the template narrative."""

from __future__ import annotations

from bot.core.markup import link
from bot.core.types import OutgoingMessage
from bot.digests.figures import DigestFigures, PeopleWeek

PRIVACY_NOTE = (
    "Only people who agreed are named (anyone can say `recognition on` or `recognition off`). "
    "Groups under {k} people are not broken down, and no digest lists who did not take part."
)


def title(f: DigestFigures) -> str:
    when = f"this week so far ({f.days})" if f.so_far else f"week {f.week[-2:]} ({f.days})"
    return f"Participation digest: {f.scope}, {when}"


def percent(rate: float) -> str:
    return f"{round(rate * 100)}%"


def points(now: float, before: float) -> str:
    change = round(now * 100) - round(before * 100)
    if change == 0:
        return "no change"
    return f"{'▲' if change > 0 else '▼'} {abs(change)} pts"


def duration(minutes: float) -> str:
    """45 min, 2 h 10 min, 3 days: what a reader takes in at a glance."""
    whole = round(minutes)
    if whole < 60:
        return f"{whole} min"
    if whole < 48 * 60:
        hours, rest = divmod(whole, 60)
        return f"{hours} h {rest} min" if rest else f"{hours} h"
    return f"{round(whole / (24 * 60))} days"


def lines(f: DigestFigures) -> list[str]:
    """The digest's body as bullets, in the order a leader reads it."""
    out = [_people_line(f), _desk_line(f)]
    if f.oldest is not None:
        where = f" ({link('open it', f.oldest.url)})" if f.oldest.url else ""
        topic = f" about {f.oldest.topic}" if f.oldest.topic else ""
        waited = duration(f.oldest.hours * 60)
        out.append(f"- **Oldest unanswered:** a question{topic}, waiting {waited}{where}")
    if f.topics:
        asked = ", ".join(f"{name} ({n})" for name, n in f.topics)
        out.append(f"- **The public asked most about:** {asked}")
    if f.this is not None:
        out.append(_nudges_line(f.this))
        out.append(
            f"- **Learning:** {_n(f.this.links_opened, 'link')} opened, "
            f"{_n(f.this.experiments, 'experiment')} tried"
        )
    return out


def _people_line(f: DigestFigures) -> str:
    if f.this is None:
        return (
            f"- **Taking part:** not shown: the group has {f.people} "
            f"{'person' if f.people == 1 else 'people'}, under the privacy threshold of "
            f"{f.min_group}"
        )
    line = f"- **Taking part:** {percent(f.this.rate)} of {f.people} people"
    if f.so_far:
        line += " so far"
        if f.average_rate is not None:
            line += f" ({_average_label(f)} {percent(f.average_rate)})"
    elif f.previous is not None:
        line += f" ({points(f.this.rate, f.previous.rate)} on last week"
        if f.average_rate is not None:
            line += f"; {_average_label(f)} {percent(f.average_rate)}"
        line += ")"
    return line


def _average_label(f: DigestFigures) -> str:
    weeks = f.average_weeks
    return "last week's figure" if weeks == 1 else f"{weeks}-week average"


def _desk_line(f: DigestFigures) -> str:
    d = f.desk
    line = f"- **Public questions:** {d.routed} routed, {d.claimed} claimed, {d.answered} answered"
    if not f.so_far and (d.answered or f.desk_before.answered):
        line += f" (last week {f.desk_before.answered})"
    if d.median_minutes is not None and d.p90_minutes is not None:
        line += (
            f"; first answer in {duration(d.median_minutes)} (median), "
            f"{duration(d.p90_minutes)} (p90)"
        )
    if d.sla_breaches:
        line += f"; {_n(d.sla_breaches, 'question')} missed the first-response target"
    return line


def _nudges_line(week: PeopleWeek) -> str:
    line = f"- **Nudges:** {week.nudges_sent} sent, {week.nudges_done} acted on"
    if week.ladder_up:
        line += f"; {_n(week.ladder_up, 'move')} up the ladder"
    return line


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def recognition(f: DigestFigures) -> str | None:
    if not f.recognised and not f.others:
        return None
    named = "; ".join(f"{r.name} {r.did}" for r in f.recognised)
    if f.others:
        more = f"{f.others} {'other' if f.others == 1 else 'others'} stepped up too"
        named = f"{named}. {more}" if named else more.capitalize()
    return f"**Who stepped up:** {named}."


def breakdown(f: DigestFigures) -> str | None:
    if not f.groups and not f.hidden_groups:
        return None
    rows = [f"- {g.name}: {percent(g.rate)} of {g.people} people" for g in f.groups]
    if f.hidden_groups:
        rows.append(
            f"- {_n(f.hidden_groups, 'team')} not shown separately, to keep groups under "
            f"{f.min_group} people private"
        )
    return "**By team**\n" + "\n".join(rows)


def template_narrative(f: DigestFigures) -> str:
    """Three plain sentences from the figures alone: used when there is no model, or when
    the model's words did not match the numbers."""
    if _quiet(f):
        when = "so far this week" if f.so_far else "this week or the week before"
        return (
            f"Nothing was recorded for your {f.people} people {when}: no public questions "
            "reached them and nobody took part yet. Habits start small: one reaction or one "
            "answer from someone in the team is a good first step."
        )
    first = (
        f"{percent(f.this.rate)} of your {f.people} people took part"
        + (" so far this week" if f.so_far else " this week")
        if f.this is not None
        else f"Your group of {f.people} is under the privacy threshold, so only the question "
        "desk is shown"
    )
    if f.this is not None and f.previous is not None and not f.so_far:
        first += f", {_change_words(f.this.rate, f.previous.rate)}"
    d = f.desk
    second = (
        f"The desk saw {d.routed} public questions routed to your people and {d.answered} answered"
    )
    if d.median_minutes is not None:
        second += f", with a median first answer of {duration(d.median_minutes)}"
    third = (
        f"{f.recognised[0].name} {f.recognised[0].did}."
        if f.recognised
        else "Every answer from your people is one the public sees, so each one counts."
    )
    return f"{first}. {second}. {third}"


def _quiet(f: DigestFigures) -> bool:
    nobody = f.this is not None and f.this.active == 0 and not f.this.nudges_sent
    before = f.so_far or (f.previous is not None and f.previous.active == 0)
    return nobody and before and not f.desk.routed and not f.desk_before.routed


def _change_words(now: float, before: float) -> str:
    change = round(now * 100) - round(before * 100)
    if change == 0:
        return "the same as last week"
    return f"{'up' if change > 0 else 'down'} {abs(change)} points on last week"


def message(f: DigestFigures, narrative: str) -> OutgoingMessage:
    sections = [f"**{title(f)}**", narrative, "\n".join(lines(f))]
    sections += [s for s in (recognition(f), breakdown(f)) if s]
    return OutgoingMessage(
        text=title(f),
        sections=tuple(sections),
        context=PRIVACY_NOTE.format(k=f.min_group),
    )


def markdown(f: DigestFigures, narrative: str, chart: str | None) -> str:
    """The preview file: the same words, as a Markdown document with the chart beside it."""
    parts = [f"# {title(f)}", narrative, "\n".join(lines(f))]
    parts += [s for s in (recognition(f), breakdown(f)) if s]
    if chart:
        parts.append(f"![{f.scope}, participation trend]({chart})")
    parts.append(f"_{PRIVACY_NOTE.format(k=f.min_group)}_")
    return "\n\n".join(parts) + "\n"
