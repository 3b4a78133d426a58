"""`digest` (this week so far, for leaders) and `recognition on|off` (consent to be named)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.core.types import Address, AddressKind, OutgoingMessage, Platform, Role
from bot.digests.service import DigestService
from bot.services.basics import first_name
from bot.services.commands import Command, CommandContext, CommandRegistry
from bot.storage import directory
from bot.storage.models import PersonRow

log = logging.getLogger(__name__)


def register(registry: CommandRegistry, service: DigestService) -> DigestCommands:
    commands = DigestCommands(service)
    registry.command(
        Command(
            "digest",
            "leaders: your teams' participation this week so far, with the chart",
            commands.digest,
        )
    )
    registry.command(
        Command(
            "recognition",
            "whether leaders' digests may name you when you step up",
            commands.recognition,
            usage="[on | off]",
        )
    )
    return commands


class DigestCommands:
    def __init__(self, service: DigestService) -> None:
        self.service = service
        self.pending: set[asyncio.Task[None]] = set()

    async def digest(self, ctx: CommandContext) -> None:
        org = self.service.org
        leads = any(ctx.person.key in team.leaders for team in org.teams)
        if not leads and Role.EVANGELIST not in ctx.person.roles:
            ctx.reply(
                "Digests are for team leaders: the organisation file does not list you as "
                "leading a team. (Anyone can say `recognition on` to be named in them.)"
            )
            return
        scope = "your teams" if leads else "the whole organisation"
        ctx.reply(f"Putting together this week so far for {scope}: it comes in a direct message.")
        self._after_commit(ctx.session, ctx.person.key, ctx.platform, ctx.where, ctx.person.id)

    def _after_commit(
        self, session: AsyncSession, key: str, platform: Platform, where: Address, person_id: int
    ) -> None:
        # Reading weeks of events and drawing the chart take a moment: after the command's
        # transaction, in the background, so the platform gets its answer at once.
        def committed(_session: Session) -> None:
            task = asyncio.get_running_loop().create_task(
                self._so_far(key, platform, where, person_id), name=f"digest-{key}"
            )
            self.pending.add(task)
            task.add_done_callback(self.pending.discard)

        event.listen(session.sync_session, "after_commit", committed, once=True)

    async def _so_far(self, key: str, platform: Platform, where: Address, person_id: int) -> None:
        try:
            now = self.service.clock.now()
            address = where if where.kind is AddressKind.DIRECT else None
            if address is None:
                async with self.service.db.transaction() as session:
                    address = await directory.address_of(session, person_id, [platform.value])
            if address is None:
                return
            await self.service.so_far(key, address, now)
        except Exception:
            log.exception("this week's digest for %s failed", key)

    async def drain(self) -> None:
        """Wait for the digests being put together (tests)."""
        while self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)

    async def close(self) -> None:
        for task in self.pending:
            task.cancel()
        await asyncio.gather(*self.pending, return_exceptions=True)

    async def recognition(self, ctx: CommandContext) -> None:
        wanted = ctx.args.strip().lower()
        name = first_name(ctx.person)
        if wanted in ("on", "yes"):
            await _set(ctx.session, ctx.person.id, ctx.now)
            ctx.reply(
                f"Thanks, {name}! When you answer a public question or comment on our pages, "
                "your leader's weekly digest may name you. Say `recognition off` any time."
            )
            return
        if wanted in ("off", "no"):
            await _set(ctx.session, ctx.person.id, None)
            ctx.reply(
                f"Done, {name}: digests will not name you from now on. What you do still counts, "
                "as a number with others."
            )
            return
        row = await ctx.session.get(PersonRow, ctx.person.id)
        on = row is not None and row.recognition_at is not None
        ctx.reply(
            OutgoingMessage(
                text="Recognition in digests: " + ("on" if on else "off"),
                sections=(
                    "Leaders get a weekly digest of their teams' participation. It names people "
                    "who stepped up (answered a public question, commented on our pages) only "
                    "if they agreed; everyone else is a number, and nobody is ever listed for "
                    "not taking part.",
                    f"You are {'named' if on else 'not named'}. Say `recognition "
                    f"{'off' if on else 'on'}` to change it.",
                ),
            )
        )


async def _set(session: AsyncSession, person_id: int, at: datetime | None) -> None:
    await session.execute(
        update(PersonRow).where(PersonRow.id == person_id).values(recognition_at=at)
    )
