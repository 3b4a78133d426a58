"""The five buttons on every nudge, and "No nudges at all".

Each answer is written with a conditional UPDATE (`response IS NULL`), so a double click, a
platform retry or two replicas seeing the same press change the state once; the second press
gets a friendly "already noted". Pauses and stops are idempotent by their nature.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, update

from bot.core.types import Button, OutgoingMessage
from bot.delivery import outbox
from bot.services.basics import first_name
from bot.services.commands import CommandContext, CommandRegistry
from bot.storage import participation
from bot.storage.models import NudgeRow
from nudges import messages
from nudges.commands import opt_out, pause_nudges
from nudges.config import Stage
from nudges.service import Campaign, NudgeService, owner_name

PAUSE = timedelta(days=14)


def register(registry: CommandRegistry, service: NudgeService) -> None:
    actions = NudgeActions(service)
    registry.action(messages.DONE, actions.done)
    registry.action(messages.NOT_NOW, actions.not_now)
    registry.action(messages.PAUSE, actions.pause)
    registry.action(messages.STOP, actions.stop)
    registry.action(messages.WHY, actions.why)
    registry.action(messages.ALL_OFF, actions.all_off)


class NudgeActions:
    def __init__(self, service: NudgeService) -> None:
        self.service = service

    async def _load(self, ctx: CommandContext) -> tuple[NudgeRow, Campaign] | None:
        value = ctx.args.strip()
        row = await ctx.session.get(NudgeRow, int(value)) if value.isdigit() else None
        if row is None or row.person_id != ctx.person.id:
            ctx.reply("I can't find that nudge any more. Say `nudges` to see your settings.")
            return None
        campaign = await self.service.campaign(ctx.session, row.campaign_key)
        if campaign is None:
            ctx.reply("That campaign is gone, so there's nothing to do. Thank you!")
            return None
        return row, campaign

    async def _answer(self, ctx: CommandContext, row: NudgeRow, response: str) -> bool:
        """Record the person's answer once; True if this press was the one that did."""
        query = update(NudgeRow).where(NudgeRow.id == row.id)
        if response == "done":
            # "Not now" and then doing it after all is the best outcome: let Done follow it.
            query = query.where(or_(NudgeRow.response.is_(None), NudgeRow.response == "not_now"))
        else:
            query = query.where(NudgeRow.response.is_(None))
        result = await ctx.session.execute(query.values(response=response, responded_at=ctx.now))
        await ctx.session.refresh(row)
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def _settle(
        self, ctx: CommandContext, row: NudgeRow, campaign: Campaign, response: str
    ) -> None:
        """The pressed message shows the answer instead of the buttons."""
        if ctx.message is None:
            return
        sent = await self.service.render(ctx.session, row, campaign.config, ctx.person.name)
        settled = messages.settled(sent.text, response, campaign.config, row.id)
        await outbox.update_pressed(ctx.session, ctx.message, settled, ctx.now)
        ctx.enqueued = True

    async def done(self, ctx: CommandContext) -> None:
        loaded = await self._load(ctx)
        if loaded is None:
            return
        row, campaign = loaded
        if not await self._answer(ctx, row, "done"):
            ctx.reply(f"Already noted, {first_name(ctx.person)}. Thank you!")
            return
        prefs = await self.service.preferences(ctx.session, ctx.person.id, ctx.now)
        before = Stage(prefs.stage)
        asked = Stage(row.stage).next
        after = asked if asked.rank > before.rank and not row.test else before
        if not row.test:
            prefs.stage, prefs.stage_at, prefs.updated_at = after.value, ctx.now, ctx.now
            await participation.record(
                ctx.session,
                person_id=ctx.person.id,
                kind="nudge_done",
                reference=f"nudge:{row.id}",
                at=ctx.now,
                details={"campaign": row.campaign_key, "step": asked.value},
            )
            if after.rank > before.rank:
                await participation.record(
                    ctx.session,
                    person_id=ctx.person.id,
                    kind="ladder_up",
                    reference=f"nudge:{row.id}",
                    at=ctx.now,
                    details={"from": before.value, "to": after.value},
                )
        await self._settle(ctx, row, campaign, "done")
        ctx.reply(messages.thanks(first_name(ctx.person), before, after, test=row.test))

    async def not_now(self, ctx: CommandContext) -> None:
        loaded = await self._load(ctx)
        if loaded is None:
            return
        row, campaign = loaded
        if not await self._answer(ctx, row, "not_now"):
            ctx.reply("Already noted. Thanks for letting me know!")
            return
        await self._settle(ctx, row, campaign, "not_now")
        ctx.reply(
            f"No problem, {first_name(ctx.person)}. Nothing to catch up on: "
            "it may come round again another week."
        )

    async def pause(self, ctx: CommandContext) -> None:
        loaded = await self._load(ctx)
        if loaded is None:
            return
        row, campaign = loaded
        await self._answer(ctx, row, "paused")
        until = await pause_nudges(self.service, ctx, ctx.now + PAUSE)
        await self._settle(ctx, row, campaign, "paused")
        ctx.reply(
            f"Paused until {messages.local_words(until, ctx.person.timezone)}. Enjoy the quiet! "
            "Say `nudges resume` if you want them back sooner."
        )

    async def stop(self, ctx: CommandContext) -> None:
        loaded = await self._load(ctx)
        if loaded is None:
            return
        row, campaign = loaded
        await self._answer(ctx, row, "stopped")
        prefs = await self.service.preferences(ctx.session, ctx.person.id, ctx.now)
        if row.campaign_key not in (prefs.stopped or []):
            prefs.stopped = sorted({*(prefs.stopped or []), row.campaign_key})
            prefs.updated_at = ctx.now
        await self.service.drop_planned(
            ctx.session, campaign=row.campaign_key, person_id=ctx.person.id
        )
        await self._settle(ctx, row, campaign, "stopped")
        ctx.reply(
            OutgoingMessage(
                text=f"Done: no more nudges from “{campaign.config.name}”.",
                sections=(
                    f"Done: no more nudges from “{campaign.config.name}”. Other campaigns may "
                    "still say hello now and then.",
                ),
                buttons=(Button(messages.ALL_OFF, "No nudges at all", str(row.id)),),
            )
        )

    async def why(self, ctx: CommandContext) -> None:
        loaded = await self._load(ctx)
        if loaded is None:
            return
        _, campaign = loaded
        org = self.service.org
        window = f"{org.nudges.window.start:%H:%M} to {org.nudges.window.end:%H:%M} your time"
        ctx.reply(
            messages.why(
                campaign.config,
                owner_name(org, campaign.config),
                org.nudges.max_nudges,
                org.nudges.per_days,
                window,
            )
        )

    async def all_off(self, ctx: CommandContext) -> None:
        await opt_out(self.service, ctx)
