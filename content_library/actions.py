"""The library's buttons: open, 👍 / 👎, "I tried it", "What I learned", approve / dismiss."""

from __future__ import annotations

from sqlalchemy import select, update

from bot.core.permissions import Permission, require
from bot.core.types import FORM_OPEN_ACTION, Address, Button, ButtonStyle, OutgoingMessage, Platform
from bot.delivery import outbox
from bot.services.basics import first_name
from bot.services.commands import CommandContext, CommandRegistry, FormSpec
from bot.services.forms import answers, problems_message
from bot.storage import participation
from bot.storage.models import LinkRow, LinkShareRow
from content_library import messages, store
from content_library.commands import audited
from content_library.forms import note_form, validate_note_form
from content_library.picks import iso_week
from content_library.service import LibraryService, weekly_key


def register(registry: CommandRegistry, service: LibraryService) -> None:
    actions = LibraryActions(service)
    registry.action(messages.OPEN, actions.open)
    registry.action(messages.HELPFUL, actions.helpful)
    registry.action(messages.NOT_FOR_ME, actions.not_for_me)
    registry.action(messages.TRIED, actions.tried)
    registry.action(messages.APPROVE, actions.approve)
    registry.action(messages.DISMISS, actions.dismiss)
    registry.form(FormSpec(messages.NOTE_FORM, note_form, validate_note_form))
    registry.action(messages.NOTE_FORM, actions.note)


class LibraryActions:
    def __init__(self, service: LibraryService) -> None:
        self.service = service

    async def _link(self, ctx: CommandContext, value: str | None = None) -> LinkRow | None:
        text = (value if value is not None else ctx.args).strip()
        link = await ctx.session.get(LinkRow, int(text)) if text.isdigit() else None
        if link is None:
            ctx.reply("That link is no longer in the library.")
        return link

    async def open(self, ctx: CommandContext) -> None:
        """Slack sends a press for a link button too: that is how opens are counted."""
        link = await self._link(ctx)
        if link is None:
            return
        await self.service.opened(ctx.session, link.id, ctx.person.id, ctx.now)
        if ctx.platform is Platform.CONSOLE:
            # The console cannot open a browser; it shows where the link goes.
            ctx.reply(f"Opening {messages.target_of(link)}")

    async def helpful(self, ctx: CommandContext) -> None:
        await self._vote(ctx, +1, "Thanks! Noted as helpful: more like this.")

    async def not_for_me(self, ctx: CommandContext) -> None:
        await self._vote(ctx, -1, "Thanks for saying so: you'll get fewer like this.")

    async def _vote(self, ctx: CommandContext, vote: int, thanks: str) -> None:
        link = await self._link(ctx)
        if link is None:
            return
        changed = await self.service.vote(ctx.session, link.id, ctx.person.id, vote, ctx.now)
        ctx.reply(thanks if changed else "Already noted. Thank you!")

    async def tried(self, ctx: CommandContext) -> None:
        link_id, _, week = ctx.args.partition(":")
        link = await self._link(ctx, link_id)
        if link is None:
            return
        week = week or iso_week(ctx.now)
        if not await self.service.tried(ctx.session, link.id, week, ctx.person.id, ctx.now):
            ctx.reply(f"Already noted, {first_name(ctx.person)}. Thank you for trying it!")
            return
        ctx.reply(
            OutgoingMessage(
                text=f"Nice one, {first_name(ctx.person)}!",
                sections=(
                    f"Nice one, {first_name(ctx.person)}! Trying is the whole point, "
                    "whatever happened.",
                    "Want to tell the others what you learned? Only if you like.",
                ),
                buttons=(
                    Button(
                        FORM_OPEN_ACTION,
                        "✍️ What I learned",
                        messages.NOTE_FORM,
                        ButtonStyle.PRIMARY,
                    ),
                ),
            )
        )

    async def note(self, ctx: CommandContext) -> None:
        """The "what I learned" note: shared in this week's thread only when they said yes."""
        values = answers(ctx)
        errors = validate_note_form(values)
        if errors:
            ctx.reply(problems_message(note_form(), values, errors))
            return
        week = iso_week(ctx.now.astimezone(self.service.zone))
        share = await ctx.session.scalar(
            select(LinkShareRow).where(LinkShareRow.kind == "weekly", LinkShareRow.week == week)
        )
        link = await ctx.session.get(LinkRow, share.link_id) if share is not None else None
        await participation.record(
            ctx.session,
            person_id=ctx.person.id,
            kind="experiment_note",
            reference=f"experiment:{week}",
            at=ctx.now,
        )
        if values.get("share") != "yes":
            ctx.reply("Saved for you. Thank you for trying it!")
            return
        where = self._thread(ctx.platform, week)
        if link is None or where is None:
            ctx.reply(
                "Thank you! There's no link of the week on this platform to share it under, "
                "so I kept it to you."
            )
            return
        address, parent = where
        await outbox.enqueue(
            ctx.session,
            key=f"library-note:{week}:{ctx.person.id}",
            address=address,
            message=messages.learned_note(ctx.person.name, values["note"], link),
            now=ctx.now,
            thread_of_key=parent,
        )
        ctx.enqueued = True
        ctx.reply("Shared in this week's thread. Thank you for trying it!")

    def _thread(self, platform: Platform, week: str) -> tuple[Address, str] | None:
        """This week's post on the person's platform (its first channel), as a thread."""
        weekly = self.service.config.weekly
        if weekly is None:
            return None
        for name, channel in weekly.channels.by_platform():
            if name == platform.value:
                address = Address.in_thread(platform, channel, "")
                return address, weekly_key(week, name, channel)
        return None

    async def approve(self, ctx: CommandContext) -> None:
        await self._curate(ctx, store.ACTIVE, "library.approve", "✓ Added to the library")

    async def dismiss(self, ctx: CommandContext) -> None:
        await self._curate(ctx, store.DISMISSED, "library.dismiss", "Dismissed")

    async def _curate(self, ctx: CommandContext, status: str, action: str, words: str) -> None:
        require(ctx.person, Permission.MANAGE_LIBRARY)
        link = await self._link(ctx)
        if link is None:
            return
        result = await ctx.session.execute(
            update(LinkRow)
            .where(LinkRow.id == link.id, LinkRow.status == store.SUGGESTED)
            .values(status=status)
        )
        await ctx.session.refresh(link)
        if not result.rowcount:  # type: ignore[attr-defined]
            ctx.reply(f"#{link.id} was already handled (it is {link.status}).")
            return
        audited(ctx, action, f"link:{link.id}")
        self.service.changed()
        if ctx.message is not None:
            settled = OutgoingMessage(
                text=f"{words}: {messages.title_of(link)}",
                sections=(f"{messages.link_line(link)}",),
                context=f"{words} by {ctx.person.name}",
            )
            await outbox.update_pressed(ctx.session, ctx.message, settled, ctx.now)
            ctx.enqueued = True
        ctx.reply(f"{words}: #{link.id}.")
