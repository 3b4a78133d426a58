"""Commands of the question desk.

- `questions`: the evangelist's view (open questions by status and topic, the oldest waiting,
  first-response breaches, source health); for everyone else, the questions they hold.
- `questions mine`, `questions pause [N days]`, `questions resume`.
- `away until YYYY-MM-DD` / `away N days`, `back`: out of office, no routing meanwhile.
- `handles`, `handle add NETWORK NAME`, `handle remove NETWORK NAME`: public social handles,
  so a reply someone writes on a brand page is recognised as theirs and credited.
- `expertise …`: who knows which topic, learned and overridden (bot/questions/expertise_commands).
"""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.organisation import NETWORKS
from bot.core.clock import as_utc
from bot.core.markup import link as markup_link
from bot.core.permissions import Permission, allowed
from bot.core.types import OutgoingMessage
from bot.questions import expertise_commands, messages
from bot.questions.desk import OPEN, QuestionDesk
from bot.services.commands import Command, CommandContext, CommandRegistry
from bot.storage import audit
from bot.storage.models import PersonRow, QuestionRow, SocialHandleRow, SourceRow

MAX_LISTED = 8


def register(registry: CommandRegistry, desk: QuestionDesk) -> None:
    commands = DeskCommands(desk)
    registry.command(
        Command(
            "questions",
            "the question desk: open questions and sources (yours, or all for the evangelist)",
            commands.questions,
            usage="[mine | pause N days | resume]",
        )
    )
    registry.command(
        Command(
            "away",
            "out of office: no questions or nudges until then",
            commands.away,
            usage="until DATE",
        )
    )
    registry.command(Command("back", "back at work: questions can reach you again", commands.back))
    registry.command(
        Command(
            "handles",
            "your public social handles, so your answers on our pages count",
            commands.handles,
            aliases=("handle",),
            usage="[add|remove NETWORK NAME]",
        )
    )
    expertise_commands.register(registry, desk)


class DeskCommands:
    def __init__(self, desk: QuestionDesk) -> None:
        self.desk = desk

    async def questions(self, ctx: CommandContext) -> None:
        words = ctx.args.lower().split()
        if words[:1] == ["pause"]:
            await self._pause(ctx, words[1:])
        elif words[:1] == ["resume"]:
            row = await ctx.session.get(PersonRow, ctx.person.id)
            if row is not None:
                row.questions_paused_until = None
            ctx.reply("Questions can reach you again. Welcome back!")
        elif words[:1] == ["mine"] or not allowed(ctx.person, Permission.VIEW_QUESTION_QUEUE):
            ctx.reply(await self._mine(ctx))
        else:
            ctx.reply(await overview(self.desk, ctx.session, ctx.now))

    async def _mine(self, ctx: CommandContext) -> OutgoingMessage:
        rows = (
            await ctx.session.scalars(
                select(QuestionRow)
                .where(QuestionRow.assignee_id == ctx.person.id, QuestionRow.status.in_(OPEN))
                .order_by(QuestionRow.created_at)
            )
        ).all()
        if not rows:
            return OutgoingMessage(text="You have no open questions right now. Thank you!")
        lines = [
            f"- #{q.id} ({q.status}) “{messages.quote(_short(q.text))}”"
            + (" · " + markup_link("open", q.url) if q.url else "")
            for q in rows[:MAX_LISTED]
        ]
        return OutgoingMessage(
            text=f"You hold {len(rows)} open question(s).",
            sections=(f"**Your open questions ({len(rows)})**", "\n".join(lines)),
        )

    async def _pause(self, ctx: CommandContext, words: list[str]) -> None:
        days = int(words[0]) if words and words[0].isdigit() else 7
        days = max(1, min(days, 90))
        row = await ctx.session.get(PersonRow, ctx.person.id)
        if row is None:
            return
        row.questions_paused_until = ctx.now + timedelta(days=days)
        ctx.reply(f"Paused: no routed questions for {days} day(s). Say `questions resume` to undo.")

    async def away(self, ctx: CommandContext) -> None:
        until = parse_until(ctx.args, ctx.now, ctx.person.timezone)
        if until is None:
            ctx.reply("Tell me until when, like `away until 2026-12-01` or `away 3 days`.")
            return
        row = await ctx.session.get(PersonRow, ctx.person.id)
        if row is None:
            return
        row.away_until, row.away_source = until, "command"
        local = as_utc(until).astimezone(ZoneInfo(ctx.person.timezone))
        ctx.reply(
            f"Noted: no questions or nudges until {local:%A %d %B, %H:%M} your time. Enjoy! "
            "Say `back` if you return early."
        )

    async def back(self, ctx: CommandContext) -> None:
        row = await ctx.session.get(PersonRow, ctx.person.id)
        if row is not None:
            row.away_until, row.away_source = None, None
        ctx.reply("Welcome back! Questions and nudges can reach you again.")

    async def handles(self, ctx: CommandContext) -> None:
        words = ctx.args.split(maxsplit=2)
        if len(words) == 3 and words[0].lower() in ("add", "remove"):
            await self._change_handle(ctx, words[0].lower(), words[1].lower(), words[2])
            return
        if words:
            ctx.reply(
                "Say `handles` to list yours, or `handles add facebook Your Name` "
                f"(networks: {', '.join(NETWORKS)})."
            )
            return
        rows = (
            await ctx.session.scalars(
                select(SocialHandleRow)
                .where(SocialHandleRow.person_id == ctx.person.id)
                .order_by(SocialHandleRow.network, SocialHandleRow.handle)
            )
        ).all()
        if not rows:
            ctx.reply(
                "I don't know your public handles yet. Add one so your answers on our pages "
                "count: `handles add facebook Your Name` or `handles add instagram yourname`."
            )
            return
        listed = "\n".join(f"- {r.network}: {r.handle}" for r in rows)
        ctx.reply(OutgoingMessage(text="Your handles", sections=("**Your handles**", listed)))

    async def _change_handle(self, ctx: CommandContext, verb: str, network: str, raw: str) -> None:
        if network not in NETWORKS:
            ctx.reply(
                f"I don't know the network `{network[:20]}`. Use one of {', '.join(NETWORKS)}."
            )
            return
        handle = normalise_handle(raw)
        if not handle:
            ctx.reply("That handle is empty or too long.")
            return
        owner = await ctx.session.scalar(
            select(SocialHandleRow).where(
                SocialHandleRow.network == network, SocialHandleRow.handle == handle
            )
        )
        if verb == "remove":
            if owner is not None and owner.person_id == ctx.person.id:
                await ctx.session.execute(
                    delete(SocialHandleRow).where(SocialHandleRow.id == owner.id)
                )
            ctx.reply(f"Removed {network}: {handle}.")
            return
        if owner is not None and owner.person_id != ctx.person.id:
            ctx.reply("Someone else has registered that handle. Ask the evangelist if it's yours.")
            return
        if owner is None:
            ctx.session.add(
                SocialHandleRow(person_id=ctx.person.id, network=network, handle=handle)
            )
        audit.record(
            ctx.session,
            at=ctx.now,
            actor=ctx.person,
            action="handle.add",
            target=f"{network}:{handle}",
        )
        ctx.reply(f"Thanks! Replies on {network} by {handle} now count as yours.")


async def overview(desk: QuestionDesk, session: AsyncSession, now: datetime) -> OutgoingMessage:
    """The evangelist's view of the desk."""
    rows = (
        await session.scalars(
            select(QuestionRow).where(QuestionRow.status.in_(OPEN)).order_by(QuestionRow.created_at)
        )
    ).all()
    sections = [f"**Question desk: {len(rows)} open**"]
    if rows:
        by_status = Counter(q.status for q in rows)
        by_topic = Counter(q.topic_key or "no topic" for q in rows)
        sections.append("By status: " + ", ".join(f"{k} {v}" for k, v in sorted(by_status.items())))
        sections.append("By topic: " + ", ".join(f"{k} {v}" for k, v in sorted(by_topic.items())))
        breaches = [q for q in rows if _breached(q, now)]
        if breaches:
            sections.append(
                f"**{len(breaches)} past the first-response target:** "
                + ", ".join(f"#{q.id}" for q in breaches[:MAX_LISTED])
            )
        oldest = rows[0]
        sections.append(
            f"Oldest waiting: #{oldest.id} ({messages.waited(oldest.created_at, now)}) "
            f"“{messages.quote(_short(oldest.text))}”"
        )
    sections.append(await source_health(desk, session))
    return OutgoingMessage(text=f"Question desk: {len(rows)} open", sections=tuple(sections))


async def source_health(desk: QuestionDesk, session: AsyncSession) -> str:
    if not desk.org.sources:
        return "No brand-page sources are configured yet (see `sources:` in the organisation file)."
    states = {r.key: r for r in (await session.scalars(select(SourceRow))).all()}
    lines = []
    for source in desk.org.sources:
        state = states.get(source.id)
        name = source.name or source.id
        if not source.enabled:
            lines.append(f"- {name}: off")
        elif state is None or (state.last_success_at is None and state.last_error is None):
            lines.append(f"- {name}: no contact yet")
        elif state.failures:
            error = messages.quote((state.last_error or "")[:120])
            lines.append(f"- {name}: **failing** ({state.failures} in a row): {error}")
        else:
            extra = (
                f", rate budget {state.rate_headroom:.0f}% free"
                if state.rate_headroom is not None
                else ""
            )
            lines.append(f"- {name}: ok{extra}")
    return "**Sources**\n" + "\n".join(lines)


def _breached(q: QuestionRow, now: datetime) -> bool:
    return q.first_response_at is None and q.sla_due_at is not None and as_utc(q.sla_due_at) < now


def _short(text: str, limit: int = 80) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def normalise_handle(raw: str) -> str:
    handle = " ".join(raw.strip().split()).lower().lstrip("@")
    return handle if 0 < len(handle) <= 200 else ""


def parse_until(args: str, now: datetime, timezone: str) -> datetime | None:
    """'until 2026-12-01' (the start of that day, local) or '3 days' / '2 weeks'."""
    text = args.strip().lower().removeprefix("until").strip()
    match = re.fullmatch(r"(\d{1,3})\s*(day|days|d|week|weeks|w)", text)
    if match:
        count = int(match.group(1)) * (7 if match.group(2).startswith("w") else 1)
        return now + timedelta(days=max(1, min(count, 365)))
    try:
        day = date.fromisoformat(text)
    except ValueError:
        return None
    local = datetime.combine(day, time(0, 0), ZoneInfo(timezone))
    return local if local > now else None
