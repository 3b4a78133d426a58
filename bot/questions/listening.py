"""The desk's ears in chat: pasted brand-page links, "send to the question desk", the home view.

A link to one of our brand pages pasted in a channel gets a quiet "Track this question?" offer,
visible only to the person who pasted it. Only the link and the words around it travel with the
offer's button; nothing of the channel's chatter is stored unless they press it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.core.permissions import Permission, allowed
from bot.core.sources import ItemKind, SourceItem
from bot.core.types import (
    Address,
    AddressKind,
    Button,
    ButtonStyle,
    ChannelMessage,
    ForwardedMessage,
    InboundEvent,
    OutgoingMessage,
    Person,
)
from bot.questions.commands import overview
from bot.questions.desk import OPEN, IntakeReport, QuestionDesk
from bot.services.chat import Reply
from bot.services.commands import CommandContext, CommandRegistry
from bot.storage.models import QuestionRow

_URL = re.compile(r"https?://[^\s<>|\"']+", re.I)
BRAND_HOSTS = ("facebook.com", "fb.com", "fb.me", "instagram.com", "youtube.com", "youtu.be")
OFFER_TEXT_LIMIT = 1200
"""Button values travel through the platform (Slack allows 2,000 characters)."""


def brand_link(text: str, extra_hosts: Sequence[str] = ()) -> str | None:
    """The first link in `text` that points at a brand page (or a configured feed's site)."""
    for match in _URL.finditer(text):
        url = match.group(0).rstrip(".,;:!?)>")
        host = (urlsplit(url).hostname or "").lower()
        if any(host == h or host.endswith("." + h) for h in (*BRAND_HOSTS, *extra_hosts)):
            return url
    return None


class DeskListener:
    """The chat service's hook for the question desk (see bot/services/chat.py EventHook)."""

    def __init__(self, desk: QuestionDesk) -> None:
        self.desk = desk
        self.extra_hosts = tuple(
            (urlsplit(s.url).hostname or "").lower()
            for s in desk.org.sources
            if s.kind == "rss" and s.enabled
        )

    def wants(self, event: InboundEvent) -> bool:
        if isinstance(event, ForwardedMessage):
            return True
        if isinstance(event, ChannelMessage):
            return "http" in event.text and brand_link(event.text, self.extra_hosts) is not None
        return False

    async def handle(
        self, session: AsyncSession, event: InboundEvent, person: Person, now: datetime
    ) -> list[Reply]:
        if isinstance(event, ForwardedMessage):
            # The brand-page link in the message is what experts need to open, not the chat link.
            link = brand_link(event.text, self.extra_hosts) or event.permalink
            if not event.text.strip() and link is None:
                return [(event.where, tracked_reply(IntakeReport()), person.id)]
            report = await self.desk.track(session, channel_item(event.text, link, person), now)
            return [(event.where, tracked_reply(report), person.id)]
        if isinstance(event, ChannelMessage):
            link = brand_link(event.text, self.extra_hosts)
            if link is None:
                return []
            value = json.dumps({"u": link, "t": event.text[:OFFER_TEXT_LIMIT]})
            offer = OutgoingMessage(
                text="Is this a question someone asked on our page?",
                sections=(
                    "Is that a question someone asked on one of our pages? I can track it and "
                    "bring it to the right expert.",
                ),
                buttons=(Button("q.track", "Track this question", value, ButtonStyle.PRIMARY),),
            )
            where = Address(
                event.where.platform,
                AddressKind.EPHEMERAL,
                channel=event.where.channel,
                user=event.actor.user_id,
                thread=event.where.thread,
            )
            return [(where, offer, person.id)]
        return []

    async def home_sections(
        self, session: AsyncSession, person: Person, now: datetime
    ) -> Sequence[str]:
        if allowed(person, Permission.VIEW_QUESTION_QUEUE):
            return (await overview(self.desk, session, now)).sections
        mine = await session.scalar(
            select(func.count())
            .select_from(QuestionRow)
            .where(QuestionRow.assignee_id == person.id, QuestionRow.status.in_(OPEN))
        )
        if not mine:
            return ()
        return (f"**Question desk:** you hold {mine} open question(s). Say `questions mine`.",)


def register(registry: CommandRegistry, desk: QuestionDesk) -> None:
    async def track(ctx: CommandContext) -> None:
        try:
            data = json.loads(ctx.args)
            link, text = str(data["u"]), str(data.get("t", ""))
        except (ValueError, KeyError, TypeError):
            ctx.reply("That offer has expired. Paste the link again to track it.")
            return
        report = await desk.track(ctx.session, channel_item(text, link, ctx.person), ctx.now)
        ctx.enqueued = True
        ctx.reply(tracked_reply(report))

    registry.action("q.track", track)


def tracked_reply(report: IntakeReport) -> OutgoingMessage:
    if report.new:
        return OutgoingMessage(
            text=f"Tracking it as question #{report.new[0]}. I'll bring it to the right expert."
        )
    if "already tracked" in report.skipped:
        return OutgoingMessage(text="That one is already on the question desk. Thank you!")
    return OutgoingMessage(text="I couldn't find a question to track there.")


def channel_item(text: str, link: str | None, person: Person) -> SourceItem:
    """A question someone brought from chat; the link (or the text) identifies it."""
    identity = link or text
    digest = hashlib.sha1(identity.strip().encode(), usedforsecurity=False).hexdigest()[:20]
    body = _URL.sub("", text).strip() or "(see the link)"
    return SourceItem(
        source_id="channel",
        external_id=f"link:{digest}",
        text=body,
        kind=ItemKind.POST,
        url=link,
        author_name=None,
        title=f"Brought to the desk by {person.name}",
    )
