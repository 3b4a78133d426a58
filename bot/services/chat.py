"""What the bot does with each inbound event, the same on every platform.

One transaction per event: the de-duplication mark, the state change and the outbox rows for
the replies commit together, so a platform's retry is either ignored (it committed) or
processed in full (it did not).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from bot.config.organisation import OrganisationConfig
from bot.core.clock import Clock
from bot.core.errors import PermissionDenied
from bot.core.permissions import Permission, allowed
from bot.core.ports import PeopleDirectory
from bot.core.types import (
    FORM_OPEN_ACTION,
    Actor,
    Address,
    AddressKind,
    Button,
    ButtonPress,
    ChannelMessage,
    ForwardedMessage,
    HomeOpened,
    InboundEvent,
    IncomingMessage,
    MemberJoined,
    MessageRef,
    OutgoingMessage,
    Person,
    ReactionAdded,
    StatusChanged,
)
from bot.delivery import outbox
from bot.observability import Metrics
from bot.services import basics, forms
from bot.services.commands import CommandContext, CommandRegistry, split_command
from bot.storage import audit, directory, events
from bot.storage.database import Database

log = logging.getLogger(__name__)

SORRY = OutgoingMessage(
    text="Sorry, something went wrong on my side. Please try again in a minute.",
)

RACED = OutgoingMessage(
    text="Someone changed that at the same moment as you. Have a look at the latest message."
)

Reply = tuple[Address, OutgoingMessage, int | None]


class EventHook(Protocol):
    """A capability that listens to events beyond commands (the question desk, nudges)."""

    def wants(self, event: InboundEvent) -> bool:
        """A cheap, I/O-free filter: most channel chatter must cost nothing."""
        ...

    async def handle(
        self, session: AsyncSession, event: InboundEvent, person: Person, now: datetime
    ) -> list[Reply]: ...

    async def home_sections(
        self, session: AsyncSession, person: Person, now: datetime
    ) -> Sequence[str]:
        """Paragraphs for the person's home view (Slack App Home; `home` elsewhere)."""
        ...


class ChatService:
    """Turns inbound events into state changes and outbox rows."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        metrics: Metrics,
        registry: CommandRegistry,
        organisation: OrganisationConfig | None = None,
        on_enqueued: Callable[[], None] | None = None,
        directories: Mapping[str, PeopleDirectory] | None = None,
    ) -> None:
        self.db = database
        self.clock = clock
        self.metrics = metrics
        self.registry = registry
        self.organisation = organisation
        self.on_enqueued = on_enqueued or (lambda: None)
        self.directories: dict[str, PeopleDirectory] = dict(directories or {})
        self.hooks: list[EventHook] = []

    @property
    def bot_name(self) -> str:
        return self.organisation.organisation.bot_name if self.organisation else "Evangelist"

    async def handle(self, event: InboundEvent, people: PeopleDirectory | None = None) -> bool:
        """Process one event; False when it was a duplicate. Never raises for a bad event.

        `people` overrides the platform's directory for this event (Teams can only ask its roster
        from inside the turn that brought the event).
        """
        platform = event.actor.platform.value
        kind = type(event).__name__
        self.metrics.events.labels(platform, kind).inc()
        if isinstance(event, ChannelMessage | ReactionAdded) and not any(
            hook.wants(event) for hook in self.hooks
        ):
            # Chatter no capability wants is counted, and nothing is written or kept.
            return True
        if isinstance(event, StatusChanged):
            return await self._status_changed(event)
        try:
            event = await self._introduce(event, people)
            async with self.db.transaction() as session:
                now = self.clock.now()
                if not await events.mark_processed(session, platform, event.event_id, now):
                    self.metrics.duplicates.labels(platform).inc()
                    log.info("duplicate %s %s ignored", platform, event.event_id)
                    return False
                replies, wrote = await self._dispatch(session, event, now)
                wrote |= await self._enqueue_replies(session, event, replies, now)
        except StaleDataError:
            # Someone else changed the same thing at the same moment (two people claiming one
            # question); this event's transaction rolled back whole, so nothing half-happened.
            log.info("%s %s lost a race; asking the person to look again", kind, event.event_id)
            await self._apologise(event, RACED)
            return True
        except Exception:
            self.metrics.event_errors.labels(platform).inc()
            log.exception(
                "handling %s %s failed", kind, event.event_id, extra={"platform": platform}
            )
            await self._apologise(event)
            return True
        if wrote:
            self.on_enqueued()
        return True

    async def may(self, actor: Actor, permission: Permission | None) -> bool:
        """Whether a platform user may do something, answered with one quick read.

        Used before opening a Slack modal, whose trigger expires in 3 s. Nobody is created or
        introduced here: someone we have not met yet is answered "no", and their command then
        takes the normal path, which introduces them and answers properly.
        """
        if permission is None:
            return True
        async with self.db.transaction() as session:
            person = await directory.person_by_identity(
                session, actor.platform.value, actor.user_id
            )
        return person is not None and allowed(person, permission)

    async def _status_changed(self, event: StatusChanged) -> bool:
        """Out of office by a platform status: held like `away`, cleared when the status ends.

        Statuses change all day across a workspace: only people we know are looked at, nobody
        is created, and a status never clears an absence the person told the bot about.
        """
        platform = event.actor.platform.value
        try:
            async with self.db.transaction() as session:
                now = self.clock.now()
                person = await directory.person_by_identity(session, platform, event.actor.user_id)
                if person is None:
                    return True
                if not await events.mark_processed(session, platform, event.event_id, now):
                    return False
                await directory.set_away_from_status(
                    session, person.id, platform, event.away, event.until, now
                )
        except Exception:
            self.metrics.event_errors.labels(platform).inc()
            log.exception("handling status change %s failed", event.event_id)
        return True

    async def _introduce(
        self, event: InboundEvent, people: PeopleDirectory | None = None
    ) -> InboundEvent:
        """Ask the platform who a newcomer is (name, email, time zone) before we meet them.

        Only for platform users we have no identity for, so it costs one lookup per person ever;
        their email links them to the organisation file when the file lists them by email only.
        """
        actor = event.actor
        directory_port = people or self.directories.get(actor.platform.value)
        if directory_port is None or actor.display_name or not actor.user_id:
            return event
        async with self.db.transaction() as session:
            if await directory.is_known_identity(session, actor.platform.value, actor.user_id):
                return event
        try:
            profile = await asyncio.wait_for(directory_port.profile(actor.user_id), timeout=5)
        except Exception as exc:
            log.info("could not look up %s user %s: %r", actor.platform.value, actor.user_id, exc)
            return event
        if profile is None:
            return event
        introduced = dataclasses.replace(
            actor,
            display_name=profile.name or actor.display_name,
            email=profile.email or actor.email,
            timezone=profile.timezone or actor.timezone,
        )
        return dataclasses.replace(event, actor=introduced)

    async def _dispatch(
        self, session: AsyncSession, event: InboundEvent, now: datetime
    ) -> tuple[list[Reply], bool]:
        """The replies to send, and whether handlers wrote outbox rows of their own."""
        if isinstance(event, IncomingMessage):
            person = await directory.resolve_actor(session, event.actor, now)
            await directory.clear_blocked(session, event.actor.platform.value, event.actor.user_id)
            spec = self.registry.form_for_command(event.text)
            if spec is not None:
                # "campaign new" opens its form here on every platform (Slack opens a modal
                # before the command gets this far, when it can).
                return await self._run_command(
                    session,
                    person,
                    FORM_OPEN_ACTION,
                    spec.form_id,
                    event.where,
                    now,
                    is_action=True,
                )
            name, args = split_command(event.text)
            return await self._run_command(
                session, person, name, args, event.where, now, is_action=False
            )
        if isinstance(event, ButtonPress):
            person = await directory.resolve_actor(session, event.actor, now)
            return await self._run_command(
                session,
                person,
                event.action,
                event.value,
                event.where,
                now,
                is_action=True,
                message=event.message,
            )
        if isinstance(event, MemberJoined):
            return await self._welcome(session, event, now), False
        if isinstance(event, HomeOpened):
            person = await directory.resolve_actor(session, event.actor, now)
            extra: list[str] = []
            for hook in self.hooks:
                extra.extend(await hook.home_sections(session, person, now))
            home = basics.help_message(person, self.registry, self.bot_name)
            # A button for each form the person may open (Slack opens it as a modal).
            openers = tuple(
                Button(FORM_OPEN_ACTION, spec.build().title, spec.form_id)
                for spec in self.registry.forms()
                if spec.permission is None or allowed(person, spec.permission)
            )
            home = dataclasses.replace(
                home, sections=(*home.sections, *extra), buttons=(*home.buttons, *openers)
            )
            address = Address(event.actor.platform, AddressKind.HOME, user=event.actor.user_id)
            return [(address, home, person.id)], False
        if isinstance(event, ChannelMessage | ReactionAdded | ForwardedMessage):
            person = await directory.resolve_actor(session, event.actor, now)
            replies: list[Reply] = []
            for hook in self.hooks:
                if hook.wants(event):
                    replies.extend(await hook.handle(session, event, person, now))
            return replies, False
        raise TypeError(f"unknown event {event!r}")

    async def _run_command(
        self,
        session: AsyncSession,
        person: Person,
        name: str,
        args: str,
        where: Address,
        now: datetime,
        *,
        is_action: bool,
        message: MessageRef | None = None,
    ) -> tuple[list[Reply], bool]:
        handler = self.registry.find_action(name) if is_action else None
        form = self.registry.find_form(name) if is_action else None
        command = None if is_action else self.registry.find(name)
        ctx = CommandContext(
            session=session,
            person=person,
            args=args,
            where=where,
            platform=where.platform,
            now=now,
            organisation=self.organisation,
            registry=self.registry,
            message=message,
        )
        if is_action and handler is None:
            ctx.reply("That button is no longer active. Say `help` to see what I can do now.")
        elif not is_action and command is None:
            ctx.reply(
                OutgoingMessage(
                    text=f"I don't know `{name[:40]}` yet.",
                    sections=(f"I don't know `{name[:40]}` yet. Say `help` to see what I can do.",),
                )
            )
        else:
            try:
                # A form's answers reach its handler only once they are readable and valid.
                checked = forms.check_submission(form, person, args) if form else args
                if isinstance(checked, OutgoingMessage):
                    ctx.reply(checked)
                else:
                    ctx.args = checked
                    await (handler or command.handler)(ctx)  # type: ignore[union-attr]
            except PermissionDenied as denied:
                audit.record(
                    session,
                    at=now,
                    actor=person,
                    action=name,
                    outcome="denied",
                    details={"permission": denied.permission},
                )
                ctx.replies.clear()
                ctx.reply(f"Sorry, only the evangelist can {denied.permission}.")
        return [(where, reply, person.id) for reply in ctx.replies], ctx.enqueued

    async def _welcome(
        self, session: AsyncSession, event: MemberJoined, now: datetime
    ) -> list[Reply]:
        person = await directory.resolve_actor(session, event.actor, now)
        if not await directory.claim_welcome(session, person.id, now):
            return []
        message = basics.welcome_message(person, event.channel, self.bot_name)
        return [(Address.direct(event.actor.platform, event.actor.user_id), message, person.id)]

    async def _enqueue_replies(
        self,
        session: AsyncSession,
        event: InboundEvent,
        replies: list[Reply],
        now: datetime,
    ) -> bool:
        wrote = False
        for index, (address, message, person_id) in enumerate(replies):
            key = f"{_key_prefix(event)}:{event.actor.platform.value}:{event.event_id}:{index}"
            wrote |= await outbox.enqueue(
                session, key=key, address=address, message=message, now=now, person_id=person_id
            )
        return wrote

    async def _apologise(self, event: InboundEvent, message: OutgoingMessage = SORRY) -> None:
        if not isinstance(event, IncomingMessage | ButtonPress | ForwardedMessage):
            return
        try:
            async with self.db.transaction() as session:
                await outbox.enqueue(
                    session,
                    key=f"sorry:{event.actor.platform.value}:{event.event_id}",
                    address=event.where,
                    message=message,
                    now=self.clock.now(),
                )
            self.on_enqueued()
        except Exception:
            log.exception("could not even apologise for event %s", event.event_id)


def _key_prefix(event: InboundEvent) -> str:
    return {
        MemberJoined: "welcome",
        HomeOpened: "home",
        ButtonPress: "press",
        ChannelMessage: "channel",
        ForwardedMessage: "forward",
    }.get(type(event), "reply")
