"""Nudge commands.

For everyone:
- `nudges`: your settings (paused, stopped campaigns, the next nudge) with one-click buttons;
- `nudges pause [N days | N weeks | until DATE]`, `nudges resume`;
- `nudges off` (also `opt-out`) and `nudges on` (also `opt-in`): only the person can undo an
  opt-out; no leader or evangelist command touches it;
- `ladder [STAGE]`: where you are on the ladder, or tell the bot ("I already share posts").

For the evangelist: `campaigns` and `campaign list | stats ID | preview ID [PERSON] | test ID |
pause ID | resume ID | end ID | new`.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from sqlalchemy import case, func, select

from bot.core.permissions import Permission, require
from bot.core.types import Button, ButtonStyle, OutgoingMessage
from bot.questions.commands import parse_until
from bot.services.basics import first_name
from bot.services.commands import Command, CommandContext, CommandRegistry, FormSpec
from bot.services.forms import answers, form_message, problems_message
from bot.storage import audit, directory, participation
from bot.storage.models import NudgeRow
from nudges import messages
from nudges.config import LADDER, CampaignConfig, Stage
from nudges.forms import (
    COMMAND,
    FORM_ID,
    campaign_form,
    parse_campaign_form,
    validate_campaign_form,
)
from nudges.service import PLANNED, SENT, Campaign, NudgeService

DEFAULT_PAUSE = timedelta(days=14)
MAX_PAUSE = timedelta(days=365)


def register(registry: CommandRegistry, service: NudgeService) -> None:
    commands = NudgeCommands(service)
    registry.command(
        Command(
            "nudges",
            "your nudge settings: pause them, stop them, or turn them back on",
            commands.nudges,
            usage="[pause N days | resume | off | on]",
        )
    )
    registry.command(Command("opt-out", "no nudges at all (only you can undo it)", commands.off))
    registry.command(Command("opt-in", "nudges back on after an opt-out", commands.on))
    registry.command(
        Command(
            "ladder",
            "where you are on the ladder: watch, react, share, comment, create",
            commands.ladder,
            usage="[STAGE]",
        )
    )
    registry.command(
        Command(
            "campaign",
            "nudge campaigns: list, stats, preview, test, pause, resume, end, new",
            commands.campaign,
            permission=Permission.MANAGE_CAMPAIGNS,
            usage="[list | stats ID | preview ID [PERSON] | test ID | pause ID | end ID | new]",
            aliases=("campaigns",),
        )
    )
    org = service.org
    registry.form(
        FormSpec(
            FORM_ID,
            lambda: campaign_form(org),
            validate_campaign_form(org),
            permission=Permission.MANAGE_CAMPAIGNS,
            command=COMMAND,
        )
    )
    registry.action(FORM_ID, commands.create)
    registry.action("nudges.pause", commands.pause_button)
    registry.action("nudges.off", commands.off)
    registry.action("nudges.on", commands.on)


async def pause_nudges(service: NudgeService, ctx: CommandContext, until: datetime) -> datetime:
    """Pause the person's nudges until `until` (never shortening a longer pause)."""
    prefs = await service.preferences(ctx.session, ctx.person.id, ctx.now)
    current = prefs.paused_until
    if current is None or current.replace(tzinfo=until.tzinfo) < until - timedelta(hours=1):
        prefs.paused_until, prefs.updated_at = until, ctx.now
    else:
        until = current.replace(tzinfo=until.tzinfo)
    await service.drop_planned(ctx.session, person_id=ctx.person.id, before=until)
    return until


async def opt_out(service: NudgeService, ctx: CommandContext) -> None:
    prefs = await service.preferences(ctx.session, ctx.person.id, ctx.now)
    if prefs.opted_out_at is None:
        prefs.opted_out_at, prefs.updated_at = ctx.now, ctx.now
    await service.drop_planned(ctx.session, person_id=ctx.person.id)
    ctx.reply(
        OutgoingMessage(
            text="Done: no more nudges.",
            sections=(
                f"Done, {first_name(ctx.person)}: no more nudges from any campaign. "
                "Questions from the public that need your expertise still reach you.",
                "Only you can turn nudges back on: say `nudges on` any time.",
            ),
        )
    )


class NudgeCommands:
    def __init__(self, service: NudgeService) -> None:
        self.service = service

    # -- everyone --------------------------------------------------------------------------

    async def nudges(self, ctx: CommandContext) -> None:
        word, _, rest = ctx.args.strip().partition(" ")
        word = word.lower()
        if word == "pause":
            await self._pause(ctx, rest)
        elif word in ("resume", "unpause"):
            prefs = await self.service.preferences(ctx.session, ctx.person.id, ctx.now)
            prefs.paused_until, prefs.updated_at = None, ctx.now
            ctx.reply("Nudges are back on. Welcome back!")
        elif word in ("off", "stop", "opt-out"):
            await opt_out(self.service, ctx)
        elif word in ("on", "start", "opt-in"):
            await self.on(ctx)
        elif word:
            ctx.reply(
                "Try `nudges`, `nudges pause 2 weeks`, `nudges pause until 2027-01-10`, "
                "`nudges resume`, `nudges off` or `nudges on`."
            )
        else:
            ctx.reply(await self._settings(ctx))

    async def pause_button(self, ctx: CommandContext) -> None:
        await self._pause(ctx, "")

    async def off(self, ctx: CommandContext) -> None:
        await opt_out(self.service, ctx)

    async def on(self, ctx: CommandContext) -> None:
        prefs = await self.service.preferences(ctx.session, ctx.person.id, ctx.now)
        was_out = prefs.opted_out_at is not None
        prefs.opted_out_at, prefs.updated_at = None, ctx.now
        if prefs.stopped:
            stopped = ", ".join(prefs.stopped)
            extra = f" Campaigns you stopped stay stopped ({stopped})."
        else:
            extra = ""
        policy = self.service.org.nudges
        often = messages.how_often(policy.max_nudges, policy.per_days)
        opening = (
            f"Welcome back! Nudges are on again: at most {often}."
            if was_out
            else "Nudges are on for you."
        )
        ctx.reply(opening + extra)

    async def _pause(self, ctx: CommandContext, rest: str) -> None:
        until = parse_until(rest, ctx.now, ctx.person.timezone) if rest else None
        if rest and until is None:
            ctx.reply(
                "Tell me how long, like `nudges pause 2 weeks` or `nudges pause until 2027-01-10`."
            )
            return
        until = min(until or ctx.now + DEFAULT_PAUSE, ctx.now + MAX_PAUSE)
        until = await pause_nudges(self.service, ctx, until)
        ctx.reply(
            f"Paused until {messages.local_words(until, ctx.person.timezone)}. "
            "Say `nudges resume` to undo."
        )

    async def _settings(self, ctx: CommandContext) -> OutgoingMessage:
        prefs = await self.service.preferences(ctx.session, ctx.person.id, ctx.now)
        stage = await self.service.stage_of(ctx.session, ctx.person.id)
        lines = []
        if prefs.opted_out_at is not None:
            lines.append("- Nudges: **off** (you turned them off; say `nudges on` to undo)")
        elif (
            prefs.paused_until is not None
            and prefs.paused_until.replace(tzinfo=ctx.now.tzinfo) > ctx.now
        ):
            when = messages.local_words(prefs.paused_until, ctx.person.timezone)
            lines.append(f"- Nudges: paused until {when}")
        else:
            lines.append("- Nudges: on")
        org = self.service.org
        lines.append(
            f"- At most {messages.how_often(org.nudges.max_nudges, org.nudges.per_days)}, "
            f"{org.nudges.window.start:%H:%M} to {org.nudges.window.end:%H:%M} your time, "
            "on working days"
        )
        if prefs.stopped:
            lines.append(f"- Campaigns you stopped: {', '.join(prefs.stopped)}")
        following = await ctx.session.scalar(
            select(NudgeRow.send_at)
            .where(
                NudgeRow.person_id == ctx.person.id,
                NudgeRow.status == PLANNED,
                NudgeRow.send_at > ctx.now,
            )
            .order_by(NudgeRow.send_at)
            .limit(1)
        )
        if following is not None and prefs.opted_out_at is None:
            lines.append(f"- Next one: {messages.local_words(following, ctx.person.timezone)}")
        lines.append(f"- Your ladder: {messages.ladder_line(stage)}")
        buttons = (
            (Button("nudges.on", "Turn nudges on", style=ButtonStyle.PRIMARY),)
            if prefs.opted_out_at is not None
            else (
                Button("nudges.pause", "Pause 2 weeks"),
                Button("nudges.off", "No nudges at all", style=ButtonStyle.DANGER),
            )
        )
        return OutgoingMessage(
            text="Your nudge settings",
            sections=("**Your nudge settings**", "\n".join(lines)),
            buttons=buttons,
        )

    async def ladder(self, ctx: CommandContext) -> None:
        wanted = ctx.args.strip().lower()
        prefs = await self.service.preferences(ctx.session, ctx.person.id, ctx.now)
        if wanted:
            try:
                stage = Stage(wanted)
            except ValueError:
                names = ", ".join(s.value for s in LADDER)
                ctx.reply(f"The ladder has these steps: {names}. Say `ladder share`, for example.")
                return
            before = Stage(prefs.stage)
            prefs.stage, prefs.stage_at, prefs.updated_at = stage.value, ctx.now, ctx.now
            if stage.rank > before.rank:
                await participation.record(
                    ctx.session,
                    person_id=ctx.person.id,
                    kind="ladder_up",
                    reference=f"ladder:{ctx.now.isoformat()}",
                    at=ctx.now,
                    details={"from": before.value, "to": stage.value},
                )
            # What was planned asked for the old stage's next step.
            await self.service.drop_planned(ctx.session, person_id=ctx.person.id)
            ctx.reply(
                OutgoingMessage(
                    text=f"Thanks! You're at {stage.value}.",
                    sections=(
                        f"Thanks, {first_name(ctx.person)}! Nudges will now suggest "
                        f"{messages.STEP_WORDS[stage.next]}.",
                        f"Your ladder: {messages.ladder_line(stage)}",
                    ),
                )
            )
            return
        stage = await self.service.stage_of(ctx.session, ctx.person.id)
        ctx.reply(
            OutgoingMessage(
                text=f"You're at {stage.value}.",
                sections=(
                    "People take part in small steps: watch, react, share, comment, create. "
                    f"Your next one: {messages.STEP_WORDS[stage.next]}.",
                    f"Your ladder: {messages.ladder_line(stage)}",
                    "Further along already? Tell me, like `ladder comment`.",
                ),
            )
        )

    # -- the evangelist --------------------------------------------------------------------

    async def campaign(self, ctx: CommandContext) -> None:
        require(ctx.person, Permission.MANAGE_CAMPAIGNS)
        words = ctx.args.split()
        verb = words[0].lower() if words else "list"
        key = words[1] if len(words) > 1 else None
        if verb in ("list", "stats") and key is None:
            ctx.reply(await self._list(ctx))
            return
        if verb == "new":  # reached when the platform did not open the form itself
            ctx.reply(form_message(campaign_form(self.service.org)))
            return
        if key is None or verb not in ("stats", "preview", "test", "pause", "resume", "end"):
            ctx.reply(
                "Try `campaign list`, `campaign stats ID`, `campaign preview ID [PERSON]`, "
                "`campaign test ID`, `campaign pause ID`, `campaign resume ID`, "
                "`campaign end ID` or `campaign new`."
            )
            return
        campaign = await self.service.campaign(ctx.session, key)
        if campaign is None:
            ctx.reply(f"There is no campaign `{key[:64]}`. Say `campaign list` to see them.")
            return
        if verb == "stats":
            ctx.reply(await self._stats(ctx, campaign))
        elif verb == "preview":
            await self._preview(ctx, campaign, words[2] if len(words) > 2 else None)
        elif verb == "test":
            await self._test(ctx, campaign)
        else:
            await self._change(ctx, campaign, verb)

    async def create(self, ctx: CommandContext) -> None:
        """The campaign form's answers: a new campaign, live from its start date."""
        require(ctx.person, Permission.MANAGE_CAMPAIGNS)
        values = answers(ctx)
        taken = set(await self.service.campaigns(ctx.session))
        config, errors = parse_campaign_form(
            values, self.service.org, taken_ids=taken, owner=ctx.person.key
        )
        if config is None or errors:
            ctx.reply(problems_message(campaign_form(self.service.org), values, errors))
            return
        await self.service.save_campaign(ctx.session, config, by=ctx.person.key, now=ctx.now)
        audit.record(
            ctx.session,
            at=ctx.now,
            actor=ctx.person,
            action="campaign.create",
            target=f"campaign:{config.id}",
        )
        ctx.reply(
            OutgoingMessage(
                text=f"“{config.name}” is live.",
                sections=(
                    f"**“{config.name}” is live** (`{config.id}`): {describe(config)}.",
                    f"See its message with `campaign preview {config.id}`, send yourself one with "
                    f"`campaign test {config.id}`, and pause it any time with "
                    f"`campaign pause {config.id}`. Everyone's nudge policy applies as usual.",
                ),
            )
        )

    async def _figures(self, ctx: CommandContext) -> dict[tuple[str, str], dict[str, int]]:
        """Counts per (campaign, variant): planned, sent, done, not now, paused, stopped."""
        rows = await ctx.session.execute(
            select(
                NudgeRow.campaign_key,
                NudgeRow.variant,
                func.sum(case((NudgeRow.status == PLANNED, 1), else_=0)),
                func.sum(case((NudgeRow.status == SENT, 1), else_=0)),
                func.sum(case((NudgeRow.response == "done", 1), else_=0)),
                func.sum(case((NudgeRow.response == "not_now", 1), else_=0)),
                func.sum(case((NudgeRow.response == "paused", 1), else_=0)),
                func.sum(case((NudgeRow.response == "stopped", 1), else_=0)),
            )
            .where(NudgeRow.test.is_(False))
            .group_by(NudgeRow.campaign_key, NudgeRow.variant)
        )
        names = ("planned", "sent", "done", "not_now", "paused", "stopped")
        return {
            (campaign, variant): dict(zip(names, (int(v or 0) for v in values), strict=True))
            for campaign, variant, *values in rows
        }

    async def _list(self, ctx: CommandContext) -> OutgoingMessage:
        campaigns = await self.service.campaigns(ctx.session)
        if not campaigns:
            return OutgoingMessage(
                text="No campaigns yet.",
                sections=(
                    "No campaigns yet. Say `campaign new`, or add them under `campaigns:` "
                    "in the organisation file.",
                ),
            )
        figures = await self._figures(ctx)
        totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for (key, _), counts in figures.items():
            for name, value in counts.items():
                totals[key][name] += value
        lines = []
        for key, campaign in campaigns.items():
            t = totals.get(key, {})
            sent = t.get("sent", 0)
            rate = f"{100 * t.get('done', 0) / sent:.0f}%" if sent else "n/a"
            lines.append(
                f"- **{campaign.config.name}** (`{key}`, {_status(campaign)}, "
                f"{describe(campaign.config)}): "
                f"sent {sent}, done {t.get('done', 0)}, not now {t.get('not_now', 0)}, "
                f"paused {t.get('paused', 0)}, stopped {t.get('stopped', 0)}, "
                f"response {rate}, planned {t.get('planned', 0)}"
            )
        return OutgoingMessage(
            text=f"{len(campaigns)} campaign(s)",
            sections=("**Campaigns**", "\n".join(lines)),
            context="Response: Done presses per nudge sent. `campaign stats ID` splits by variant.",
        )

    async def _stats(self, ctx: CommandContext, campaign: Campaign) -> OutgoingMessage:
        figures = await self._figures(ctx)
        key = campaign.config.id
        lines = []
        for stage in LADDER:
            for variant in campaign.config.variants(stage):
                counts = figures.get((key, variant.id), {})
                sent = counts.get("sent", 0)
                rate = f"{100 * counts.get('done', 0) / sent:.0f}%" if sent else "n/a"
                lines.append(
                    f"- {stage.value} / {variant.id}: sent {sent}, done {counts.get('done', 0)}, "
                    f"not now {counts.get('not_now', 0)}, paused {counts.get('paused', 0)}, "
                    f"stopped {counts.get('stopped', 0)}, response {rate}"
                )
        config = campaign.config
        return OutgoingMessage(
            text=f"{config.name}: figures by variant",
            sections=(
                f"**{config.name}** (`{key}`, {_status(campaign)})"
                + (f"\n{config.goal}" if config.goal else ""),
                "\n".join(lines) or "No variants.",
            ),
            context="With two variants for a stage, people are split between them at random "
            "(always the same one for the same person).",
        )

    async def _preview(self, ctx: CommandContext, campaign: Campaign, who: str | None) -> None:
        person = ctx.person
        if who:
            found = await directory.person_by_key(ctx.session, who.lstrip("@").lower())
            if found is None:
                ctx.reply(
                    f"I don't know `{who[:40]}`. Use a person's id from the organisation file."
                )
                return
            person = found
        stage = await self.service.stage_of(ctx.session, person.id)
        variants = campaign.config.variants(stage)
        if not variants:
            ctx.reply(
                f"“{campaign.config.name}” has no message for people at {stage.value}, "
                f"so {person.name} would get nothing from it."
            )
            return
        values = self.service.fill_for(campaign.config, person.name)
        sections = [f"**Preview for {person.name}** (at {stage.value}):"]
        for variant in variants:
            text = messages.fill(variant.text, campaign.config, stage, values)
            sections.append(f"Variant {variant.id}: {text}")
        ctx.reply(
            OutgoingMessage(text=f"Preview of {campaign.config.name}", sections=tuple(sections))
        )

    async def _test(self, ctx: CommandContext, campaign: Campaign) -> None:
        stage = await self.service.stage_of(ctx.session, ctx.person.id)
        sent = await self.service.test_send(
            ctx.session, campaign.config, ctx.person.id, stage, ctx.now
        )
        audit.record(
            ctx.session,
            at=ctx.now,
            actor=ctx.person,
            action="campaign.test",
            target=f"campaign:{campaign.config.id}",
        )
        if sent:
            ctx.enqueued = True
            ctx.reply(f"Sent you a test of “{campaign.config.name}”. It isn't counted anywhere.")
        else:
            ctx.reply("I can't reach you on any platform to send the test.")

    async def _change(self, ctx: CommandContext, campaign: Campaign, verb: str) -> None:
        status = {"pause": "paused", "resume": "active", "end": "ended"}[verb]
        config = campaign.config
        if campaign.status == "ended" and status != "ended":
            ctx.reply(f"“{config.name}” has ended; it can't be resumed.")
            return
        if campaign.status == "removed":
            ctx.reply(f"“{config.name}” is no longer in the organisation file.")
            return
        await self.service.set_status(ctx.session, config.id, status, ctx.now)
        audit.record(
            ctx.session,
            at=ctx.now,
            actor=ctx.person,
            action=f"campaign.{verb}",
            target=f"campaign:{config.id}",
        )
        words = {
            "paused": "is paused: nothing more goes out until you resume it",
            "active": "is running again",
            "ended": "has ended. Nudges already sent keep their buttons",
        }[status]
        ctx.reply(f"“{config.name}” {words}.")


def _status(campaign: Campaign) -> str:
    if campaign.config.paused and campaign.status == "active":
        return "paused in the file"
    return campaign.status


DAY_NAMES = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}


def describe(campaign: CampaignConfig) -> str:
    """When a campaign asks, in words: 'every Tuesday at 10:30, local time'."""
    cadence = campaign.cadence
    if cadence.once is not None:
        when = f"once, on {cadence.once:%d %B %Y} at {cadence.at:%H:%M}"
    else:
        day = DAY_NAMES.get(cadence.day or "", cadence.day or "")
        every = {1: "every", 2: "every other"}.get(
            cadence.every_weeks, f"every {cadence.every_weeks} weeks on a"
        )
        when = f"{every} {day} at {cadence.at:%H:%M}"
    return f"{when}, local time"
