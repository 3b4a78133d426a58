"""The composition root: `build(settings, **overrides)` wires everything, creates nothing global."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.config.organisation import LanguageModelConfig, OrganisationConfig, load_organisation
from bot.config.settings import Settings
from bot.core.clock import Clock, SystemClock
from bot.core.ports import ChatPlatform, LanguageModel
from bot.core.types import Platform
from bot.delivery.dispatcher import Dispatcher
from bot.delivery.ratelimit import SLACK_LIMITS, TEAMS_LIMITS, UNLIMITED, RateLimiter
from bot.digests.commands import DigestCommands
from bot.digests.service import DigestService
from bot.observability import Metrics
from bot.platforms.console.platform import ConsolePlatform
from bot.questions.desk import QuestionDesk, sync_handles
from bot.questions.drafts import SuggestedReplies
from bot.questions.polling import SourcePoller
from bot.routing.service import RoutingService
from bot.scheduling import Job, JobScheduler
from bot.services import basics
from bot.services.chat import ChatService
from bot.services.commands import CommandRegistry
from bot.services.reactions import ReactionListener
from bot.storage import directory, events
from bot.storage.database import Database
from content_library.service import LibraryService
from nudges.service import NudgeService

log = logging.getLogger(__name__)


@dataclass
class Evangelist:
    """The running bot: every part, built once, started and stopped together."""

    settings: Settings
    clock: Clock
    db: Database
    metrics: Metrics
    registry: CommandRegistry
    organisation: OrganisationConfig | None
    chat: ChatService
    dispatcher: Dispatcher
    scheduler: JobScheduler
    platforms: dict[str, ChatPlatform]
    slack_inbound: Any = None
    teams_inbound: Any = None
    console: ConsolePlatform | None = None
    socket_mode: Any = None
    web: web.Application | None = None
    desk: QuestionDesk | None = None
    poller: SourcePoller | None = None
    drafts: SuggestedReplies | None = None
    routing: RoutingService | None = None
    nudges: NudgeService | None = None
    library: LibraryService | None = None
    digests: DigestService | None = None
    digest_commands: DigestCommands | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)

    async def prepare(self) -> None:
        """Load the organisation into the database (the file is the source of truth)."""
        if self.organisation is not None:
            async with self.db.transaction() as session:
                await directory.sync_organisation(session, self.organisation, self.clock.now())
                await sync_handles(session, self.organisation)
                if self.nudges is not None:
                    await self.nudges.sync_campaigns(session, self.clock.now())
                if self.library is not None:
                    await self.library.sync_feeds(session, self.clock.now())

    async def start(self, *, dispatcher: bool = True, scheduler: bool = True) -> None:
        if dispatcher:
            self._tasks.append(
                asyncio.create_task(
                    self.dispatcher.run(self.settings.outbox_poll_seconds), name="outbox"
                )
            )
        if scheduler:
            await self.scheduler.start()
        if self.socket_mode is not None:
            # Connecting retries on its own with backoff; the rest of the service must not wait.
            self._tasks.append(asyncio.create_task(self._connect_socket_mode(), name="socket-mode"))

    def keep_router_trained(self) -> None:
        """Train the topic router now and again every `routing.retrain_minutes`, in this process.

        Every replica routes, so every replica trains its own copy (not a leader-only job).
        """
        if self.routing is not None:
            self._tasks.append(asyncio.create_task(self.routing.run(), name="routing"))

    async def _connect_socket_mode(self) -> None:
        try:
            await self.socket_mode.connect_async()
            log.info("Slack Socket Mode connected")
        except Exception:
            log.exception("Slack Socket Mode could not connect; check SLACK_APP_TOKEN")

    async def stop(self) -> None:
        """Stop taking work, let the dispatcher finish its batch, release the scheduler role."""
        if self.socket_mode is not None:
            try:
                await self.socket_mode.close_async()
            except Exception:
                log.exception("closing the Socket Mode connection failed")
        self.dispatcher.stop()
        for task in self._tasks:
            if task.get_name() == "routing":
                task.cancel()  # retrains forever; nothing to finish
        for task in self._tasks:
            try:
                await asyncio.wait_for(task, timeout=20)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        self._tasks.clear()
        await self.scheduler.stop()
        if self.poller is not None:
            await self.poller.close()
        if self.drafts is not None:
            await self.drafts.close()
        if self.library is not None:
            await self.library.close()
        if self.digest_commands is not None:
            await self.digest_commands.close()
        await self.db.close()


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    organisation: OrganisationConfig | None = None,
    console: bool = False,
    console_media: Path | None = None,
    platforms: dict[str, ChatPlatform] | None = None,
    worker_id: str | None = None,
    **dispatcher_options: Any,
) -> Evangelist:
    """Wire the bot. `platforms` replaces real platform clients (tests, benchmarks)."""
    clock = clock or SystemClock()
    if organisation is None and settings.config_path is not None:
        organisation = load_organisation(settings.config_path)
    db = Database(settings.database_url)
    metrics = Metrics()
    registry = CommandRegistry()
    basics.register(registry)
    chat = ChatService(db, clock, metrics, registry, organisation)
    chat.hooks.append(ReactionListener())
    chosen: dict[str, ChatPlatform] = {}
    limiters: dict[str, RateLimiter] = {}
    bot = Evangelist(
        settings=settings,
        clock=clock,
        db=db,
        metrics=metrics,
        registry=registry,
        organisation=organisation,
        chat=chat,
        dispatcher=None,  # type: ignore[arg-type]
        scheduler=None,  # type: ignore[arg-type]
        platforms=chosen,
    )
    if settings.slack_enabled:
        _wire_slack(bot, chosen, limiters)
    if not console:
        _wire_teams(bot, chosen, limiters)
    if console:
        bot.console = ConsolePlatform(console_media)
        chosen[Platform.CONSOLE.value] = bot.console
        limiters[Platform.CONSOLE.value] = RateLimiter(UNLIMITED)
    chosen.update(platforms or {})
    bot.dispatcher = Dispatcher(
        db,
        chosen,
        limiters,
        clock,
        metrics,
        worker_id=worker_id or f"{socket.gethostname()}-{os.getpid()}",
        **dispatcher_options,
    )
    chat.on_enqueued = bot.dispatcher.poke
    if organisation is not None:
        _wire_desk(bot, organisation, list(chosen))
        _wire_nudges(bot, organisation, list(chosen))
        _wire_library(bot, organisation, list(chosen))
        _wire_digests(bot, organisation, list(chosen))
    bot.scheduler = JobScheduler(db, metrics, _jobs(bot))
    if not console:
        from bot.web.server import create_web_app

        bot.web = create_web_app(bot)
    return bot


def _wire_slack(
    bot: Evangelist, chosen: dict[str, ChatPlatform], limiters: dict[str, RateLimiter]
) -> None:
    from bot.platforms.slack.inbound import SlackInbound, web_client
    from bot.platforms.slack.platform import SlackPeople, SlackPlatform

    client = web_client(bot.settings)
    bot.slack_inbound = SlackInbound(bot.settings, bot.chat, client)
    chosen[Platform.SLACK.value] = SlackPlatform(client)
    bot.chat.directories[Platform.SLACK.value] = SlackPeople(client)
    limiters[Platform.SLACK.value] = RateLimiter(SLACK_LIMITS)
    if bot.settings.socket_mode:
        from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

        bot.socket_mode = AsyncSocketModeHandler(
            bot.slack_inbound.app, bot.settings.slack_app_token
        )


def _wire_teams(
    bot: Evangelist, chosen: dict[str, ChatPlatform], limiters: dict[str, RateLimiter]
) -> None:
    from bot.platforms.teams.inbound import TeamsInbound, build_adapter
    from bot.platforms.teams.platform import TeamsPlatform

    adapter = build_adapter(bot.settings)
    bot.teams_inbound = TeamsInbound(
        adapter, bot.chat, bot.db, bot.clock, auth_enabled=bot.settings.teams_auth_enabled
    )
    chosen[Platform.TEAMS.value] = TeamsPlatform(adapter, bot.db, bot.settings, bot.clock)
    limiters[Platform.TEAMS.value] = RateLimiter(TEAMS_LIMITS)


def _wire_desk(bot: Evangelist, organisation: OrganisationConfig, platforms: list[str]) -> None:
    """The question desk: its buttons, commands, chat listener and source poller."""
    from bot.questions import actions, listening
    from bot.questions import commands as desk_commands

    desk = QuestionDesk(
        bot.db,
        bot.clock,
        organisation,
        bot.metrics,
        platforms=platforms,
        on_enqueued=bot.dispatcher.poke,
        language_model=_language_model(bot, organisation),
    )
    bot.drafts = SuggestedReplies(desk)
    bot.routing = RoutingService(bot.db, organisation, desk)
    actions.register(bot.registry, desk, bot.drafts)
    desk_commands.register(bot.registry, desk)
    listening.register(bot.registry, desk)
    bot.chat.hooks.append(listening.DeskListener(desk))
    bot.desk = desk
    bot.poller = SourcePoller(desk, bot.db, bot.clock, bot.settings)


def _wire_nudges(bot: Evangelist, organisation: OrganisationConfig, platforms: list[str]) -> None:
    """Nudge campaigns: their buttons, commands and the planning and sending jobs."""
    from nudges import actions as nudge_actions
    from nudges import commands as nudge_commands

    bot.nudges = NudgeService(
        bot.db, bot.clock, organisation, platforms=platforms, on_enqueued=bot.dispatcher.poke
    )
    nudge_actions.register(bot.registry, bot.nudges)
    nudge_commands.register(bot.registry, bot.nudges)


def _wire_library(bot: Evangelist, organisation: OrganisationConfig, platforms: list[str]) -> None:
    """The learning library: its commands and buttons, and personal picks inside nudges."""
    from content_library import actions as library_actions
    from content_library import commands as library_commands

    bot.library = LibraryService(
        bot.db, bot.clock, organisation, platforms=platforms, on_enqueued=bot.dispatcher.poke
    )
    library_actions.register(bot.registry, bot.library)
    library_commands.register(bot.registry, bot.library)
    if bot.nudges is not None:
        bot.nudges.links = bot.library.picker


def _wire_digests(bot: Evangelist, organisation: OrganisationConfig, platforms: list[str]) -> None:
    """Leader digests: the weekly job, `digest` (this week so far) and `recognition on|off`."""
    from bot.digests import commands as digest_commands

    bot.digests = DigestService(
        bot.db,
        bot.clock,
        organisation,
        platforms=platforms,
        on_enqueued=bot.dispatcher.poke,
        language_model=bot.desk.language_model if bot.desk is not None else None,
    )
    bot.digest_commands = digest_commands.register(bot.registry, bot.digests)


def _language_model(bot: Evangelist, organisation: OrganisationConfig) -> LanguageModel | None:
    """On when OPENAI_API_KEY is set; a server that needs no key takes any non-empty value."""
    if not bot.settings.openai_api_key:
        return None
    from bot.llm.openai_model import OpenAIModel

    return OpenAIModel.build(
        api_key=bot.settings.openai_api_key,
        base_url=bot.settings.openai_base_url,
        config=organisation.language_model or LanguageModelConfig(),
        database=bot.db,
        clock=bot.clock,
        metrics=bot.metrics,
    )


def _jobs(bot: Evangelist) -> list[Job]:
    async def prune_events() -> None:
        async with bot.db.transaction() as session:
            removed = await events.prune_processed(session, bot.clock.now() - timedelta(days=7))
        if removed:
            log.info("pruned %s processed-event marks older than 7 days", removed)

    jobs = [
        # At start too: rows a crashed process held are picked up as soon as their lease ends.
        Job("outbox.recover", 15, bot.dispatcher.recover_expired, at_start=True),
        Job("events.prune", 3600, prune_events),
    ]
    if bot.desk is not None:
        jobs.append(Job("questions.escalate", 30, bot.desk.run_due))

    if bot.nudges is not None:
        jobs.append(Job("nudges.plan", 300, bot.nudges.run_due, at_start=True))
        jobs.append(Job("nudges.send", 30, bot.nudges.send_due, at_start=True))

    if bot.library is not None:
        jobs.append(Job("library.weekly", 300, bot.library.run_due, at_start=True))
        if bot.console is None:
            # Reaching out to other people's servers: not from the local console demo.
            jobs.append(Job("library.check", 3600, bot.library.check_due))
            jobs.append(Job("library.feeds", 900, bot.library.poll_feeds))

    if bot.digests is not None:
        jobs.append(Job("digests.weekly", 300, bot.digests.run_due, at_start=True))

    if bot.poller is not None and bot.poller.configs and bot.console is None:
        # The console is a local demo: it never reaches out to real brand pages.
        jobs.append(Job("sources.poll", 30, bot.poller.poll_due))
    return jobs
