"""`/evangelist library …`: find links (everyone) and curate them (the evangelist).

For everyone: `library` and `library search WORDS`.
For the evangelist: `library add [URL [TITLE]]` (a form without a URL), `library suggested`,
`library subscribe URL`, `library unsubscribe URL`, `library feeds`, `library stats`,
`library remove ID|URL`.
"""

from __future__ import annotations

from sqlalchemy import select

from bot.core.permissions import Permission, allowed, require
from bot.core.types import FORM_OPEN_ACTION, Button, ButtonStyle, OutgoingMessage
from bot.services.commands import Command, CommandContext, CommandRegistry, FormSpec
from bot.services.forms import answers, problems_message
from bot.storage import audit
from bot.storage.models import LibraryFeedRow, LinkRow
from content_library import messages, store
from content_library.candidates import LinkCandidate
from content_library.canonical import InvalidLink, canonical_url
from content_library.forms import ADD_COMMAND, ADD_FORM, add_form, parse_add_form, validate_add_form
from content_library.picks import iso_week
from content_library.service import LibraryService

SHOWN = 10


def register(registry: CommandRegistry, service: LibraryService) -> None:
    commands = LibraryCommands(service)
    registry.command(
        Command(
            "library",
            "the learning library: search it; the evangelist also adds and curates links",
            commands.library,
            usage="[search WORDS | add URL | suggested | subscribe URL | feeds | stats | remove]",
        )
    )
    registry.form(
        FormSpec(
            ADD_FORM,
            add_form,
            validate_add_form,
            permission=Permission.MANAGE_LIBRARY,
            command=ADD_COMMAND,
        )
    )
    registry.action(ADD_FORM, commands.add_from_form)


def audited(ctx: CommandContext, action: str, target: str) -> None:
    """Record what the evangelist did to the library in the audit log."""
    audit.record(ctx.session, at=ctx.now, actor=ctx.person, action=action, target=target)


def written_url(text: str) -> str:
    """The address someone typed: Slack sends a typed link as `<url>` or `<url|label>`."""
    text = text.strip()
    if text.startswith("<") and ">" in text:
        text = text[1 : text.index(">")].partition("|")[0]
    return text.replace("&amp;", "&")


class LibraryCommands:
    def __init__(self, service: LibraryService) -> None:
        self.service = service

    async def library(self, ctx: CommandContext) -> None:
        verb, _, rest = ctx.args.strip().partition(" ")
        verb, rest = verb.lower(), rest.strip()
        if verb in ("", "help"):
            await self.overview(ctx)
        elif verb in ("search", "find"):
            await self.search(ctx, rest)
        else:
            handler = {
                "add": self.add,
                "suggested": self.suggested,
                "subscribe": self.subscribe,
                "unsubscribe": self.unsubscribe,
                "feeds": self.feeds,
                "stats": self.stats,
                "remove": self.remove,
            }.get(verb)
            if handler is None:
                ctx.reply(f"I don't know `library {verb}`. Say `library` to see what I can do.")
                return
            require(ctx.person, Permission.MANAGE_LIBRARY)
            await handler(ctx, rest)

    async def overview(self, ctx: CommandContext) -> None:
        counts = await store.counts(ctx.session)
        lines = [
            f"📚 The learning library has **{counts[store.ACTIVE]}** link(s) worth your time. "
            "Find one with `library search WORDS`."
        ]
        if allowed(ctx.person, Permission.MANAGE_LIBRARY):
            lines.append(
                f"{counts[store.SUGGESTED]} suggested waiting · {counts[store.BROKEN]} broken · "
                f"{counts[store.UNCHECKED]} not checked yet.\n"
                "`library add URL [TITLE]` (or `library add` for the form) · `library suggested` · "
                "`library subscribe FEED_URL` · `library feeds` · `library stats` · "
                "`library remove ID`. Bulk: `evangelist library import FILE_OR_URL`."
            )
        ctx.reply(OutgoingMessage(text="The learning library", sections=tuple(lines)))

    async def search(self, ctx: CommandContext, words: str) -> None:
        if not words:
            ctx.reply("Search for what? Say `library search WORDS`.")
            return
        found = await store.search(ctx.session, words, SHOWN)
        if not found:
            ctx.reply(f"Nothing in the library matches “{words[:100]}”.")
            return
        lines = "\n".join(f"- {messages.link_line(link)}" for link in found)
        ctx.reply(OutgoingMessage(text=f"Library links for “{words[:100]}”", sections=(lines,)))

    async def add(self, ctx: CommandContext, rest: str) -> None:
        if not rest:
            ctx.reply(
                OutgoingMessage(
                    text="Add a link to the library",
                    buttons=(
                        Button(FORM_OPEN_ACTION, "Add a link", ADD_FORM, ButtonStyle.PRIMARY),
                    ),
                )
            )
            return
        if rest.startswith("<") and ">" in rest:  # Slack's `<url|label>` may hold spaces
            end = rest.index(">") + 1
            address, title = rest[:end], rest[end:]
        else:
            address, _, title = rest.partition(" ")
        try:
            url = canonical_url(written_url(address))
        except InvalidLink as exc:
            ctx.reply(f"I can't add that link: {exc}.")
            return
        candidate = LinkCandidate(url=url, where="chat", title=title.strip()[:300] or None)
        await self.store_one(ctx, candidate)

    async def store_one(self, ctx: CommandContext, candidate: LinkCandidate) -> None:
        added = await store.add_links(
            ctx.session, [candidate], source="chat", added_by=ctx.person.key, now=ctx.now
        )
        if not added.added:
            existing = await store.find(ctx.session, candidate.url)
            if existing is not None and existing.status != store.ACTIVE:
                # Removed, dismissed or only suggested before: adding it means "I want it".
                existing.status = store.ACTIVE
                audited(ctx, "library.add", f"link:{existing.id}")
                self.service.changed()
                ctx.reply(f"{messages.link_line(existing)} is back in the library.")
                return
            where = f" (#{existing.id})" if existing is not None else ""
            ctx.reply(f"That link is already in the library{where}.")
            return
        link = await ctx.session.get(LinkRow, added.ids[0])
        assert link is not None
        audited(ctx, "library.add", f"link:{link.id}")
        self.service.changed()
        ctx.reply(
            f"Added {messages.link_line(link)}. It will be checked within the hour "
            "and can be picked from now on."
        )

    async def add_from_form(self, ctx: CommandContext) -> None:
        require(ctx.person, Permission.MANAGE_LIBRARY)
        values = answers(ctx)
        candidate, errors = parse_add_form(values)
        if candidate is None or errors:
            ctx.reply(problems_message(add_form(), values, errors))
            return
        await self.store_one(ctx, candidate)

    async def suggested(self, ctx: CommandContext, rest: str) -> None:
        rows = (
            await ctx.session.scalars(
                select(LinkRow)
                .where(LinkRow.status == store.SUGGESTED)
                .order_by(LinkRow.added_at.desc(), LinkRow.id.desc())
                .limit(SHOWN)
            )
        ).all()
        if not rows:
            ctx.reply("Nothing is waiting: subscribed feeds have no new suggestions.")
            return
        total = (await store.counts(ctx.session))[store.SUGGESTED]
        ctx.reply(f"{total} suggestion(s) waiting; the newest {len(rows)}:")
        for link in rows:
            ctx.reply(messages.suggestion(link, link.source.removeprefix("feed:")))

    async def _feed(
        self, ctx: CommandContext, rest: str, refusal: str
    ) -> tuple[str, LibraryFeedRow | None] | None:
        """The feed address typed (canonical) and its subscription, if any; None (with
        `refusal` and the reason said) when it is not an address."""
        try:
            url = canonical_url(written_url(rest))
        except InvalidLink as exc:
            ctx.reply(f"{refusal}: {exc}.")
            return None
        row = await ctx.session.scalar(select(LibraryFeedRow).where(LibraryFeedRow.url == url))
        return url, row

    async def subscribe(self, ctx: CommandContext, rest: str) -> None:
        found = await self._feed(ctx, rest, "I can't subscribe to that")
        if found is None:
            return
        url, row = found
        if row is not None and row.active:
            ctx.reply("Already subscribed: its new items arrive in `library suggested`.")
            return
        if row is None:
            ctx.session.add(
                LibraryFeedRow(
                    url=url,
                    origin="chat",
                    topics=[],
                    active=True,
                    cursor={},
                    added_by=ctx.person.key,
                    added_at=ctx.now,
                )
            )
        else:
            row.active, row.polled_at = True, None
        audited(ctx, "library.subscribe", url[:200])
        ctx.reply(
            f"Subscribed to {url}. I'll read it within a quarter of an hour; new items wait in "
            "`library suggested` for you to add or dismiss."
        )

    async def unsubscribe(self, ctx: CommandContext, rest: str) -> None:
        found = await self._feed(ctx, rest, "That is not a feed address")
        if found is None:
            return
        url, row = found
        if row is None or not row.active:
            ctx.reply("I'm not subscribed to that feed. Say `library feeds` to see the list.")
            return
        row.active = False
        audited(ctx, "library.unsubscribe", url[:200])
        ctx.reply(f"Unsubscribed from {url}. Links it suggested before stay where they are.")

    async def feeds(self, ctx: CommandContext, rest: str) -> None:
        rows = (
            await ctx.session.scalars(
                select(LibraryFeedRow)
                .where(LibraryFeedRow.active.is_(True))
                .order_by(LibraryFeedRow.id)
            )
        ).all()
        if not rows:
            ctx.reply("No feeds subscribed. Add one with `library subscribe FEED_URL`.")
            return
        lines = []
        for row in rows:
            state = (
                f"⚠️ {row.last_error}"
                if row.last_error
                else ("read" if row.polled_at else "not read yet")
            )
            lines.append(
                f"- {row.url} · {state}" + (" · from the file" if row.origin == "file" else "")
            )
        ctx.reply(OutgoingMessage(text="Subscribed feeds", sections=("\n".join(lines),)))

    async def stats(self, ctx: CommandContext, rest: str) -> None:
        week = iso_week(ctx.now.astimezone(self.service.zone))
        ctx.reply(await self.service.summary(ctx.session, week))

    async def remove(self, ctx: CommandContext, rest: str) -> None:
        link = await store.find(ctx.session, rest) if rest else None
        if link is None:
            ctx.reply("Which link? Say `library remove ID` (the #number) or the link's address.")
            return
        if link.status == store.RETIRED:
            ctx.reply(f"#{link.id} is already out of the library.")
            return
        link.status = store.RETIRED
        audited(ctx, "library.remove", f"link:{link.id}")
        self.service.changed()
        ctx.reply(f"Removed #{link.id} from circulation. Nobody gets it from now on.")
