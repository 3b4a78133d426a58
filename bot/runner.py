"""Running the bot as a service or in the console."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.app import Evangelist, build
from bot.config.organisation import TopicConfig, load_organisation
from bot.config.settings import Settings, load_settings, redact_url
from bot.core.errors import ConfigurationError
from bot.observability import configure_logging
from bot.questions.desk import QuestionDesk
from bot.storage.migrate import upgrade
from bot.storage.models import PersonRow

log = logging.getLogger("evangelist")
T = TypeVar("T")


def _settings(config: Path | None) -> Settings:
    settings = load_settings()
    if config is not None:
        settings = settings.with_overrides(config_path=config)
    return settings


def serve(config: Path | None) -> int:
    settings = _settings(config)
    configure_logging(settings.log_level, settings.log_format, settings.secrets)
    organisation = load_organisation(settings.config_path) if settings.config_path else None
    log.info("migrating %s", redact_url(settings.database_url))
    upgrade(settings.database_url)
    return asyncio.run(_serve(settings, organisation))


async def _serve(settings: Settings, organisation: object) -> int:
    from bot.cli import install_signal_handlers

    bot = build(settings, organisation=organisation)  # type: ignore[arg-type]
    await bot.prepare()
    # Everything imported and built so far lives as long as the process: move it out of the
    # garbage collector's sight, so full collections stay short (they paused acks ~90 ms).
    gc.collect()
    gc.freeze()
    assert bot.web is not None
    runner = web.AppRunner(bot.web, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.host, settings.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        await bot.db.close()
        raise ConfigurationError(
            f"cannot listen on EVANGELIST_HOST={settings.host!r} "
            f"EVANGELIST_PORT={settings.port}: {exc.strerror}"
        ) from exc
    await bot.start()
    bot.keep_router_trained()
    platforms = ", ".join(sorted(bot.platforms)) or "none"
    log.info(
        "Evangelist is listening on http://%s:%s (platforms: %s)",
        settings.host,
        settings.port,
        platforms,
    )
    stop = asyncio.Event()
    install_signal_handlers(stop)
    await stop.wait()
    log.info("shutting down")
    await runner.shutdown()
    await bot.stop()
    await runner.cleanup()
    return 0


def console(config: Path | None, person: str | None, script: str | None) -> int:
    settings = _settings(config)
    configure_logging("WARNING", "text", settings.secrets)
    if settings.config_path is None:
        raise ConfigurationError(
            "the console needs an organisation file: set EVANGELIST_CONFIG or pass --config "
            "(try examples/organisation.yaml)"
        )
    organisation = load_organisation(settings.config_path)
    upgrade(settings.database_url)
    lines = None
    if script is not None:
        handle = sys.stdin if script == "-" else open(script, encoding="utf-8")  # noqa: SIM115
        with handle:
            lines = handle.read().splitlines()
    return asyncio.run(_console(settings, organisation, person, lines))


async def _console(
    settings: Settings, organisation: object, person: str | None, lines: list[str] | None
) -> int:
    from bot.platforms.console.repl import ConsoleSession

    bot: Evangelist = build(settings, organisation=organisation, console=True)  # type: ignore[arg-type]
    await bot.prepare()
    org = bot.organisation
    assert org is not None and bot.console is not None
    handle = person or _default_person(org)
    if org.person(handle) is None:
        await bot.db.close()
        known = ", ".join(p.id for p in org.people)
        raise ConfigurationError(
            f"--as {handle!r}: no such person in the organisation file (try one of: {known})"
        )
    if bot.routing is not None:
        await bot.routing.retrain()
    await bot.start(dispatcher=False)

    async def deliver() -> int:
        # What a command started in the background (this week's digest, a suggested reply)
        # is shown before the next prompt, as a chat app would show it a moment later.
        if bot.digest_commands is not None:
            await bot.digest_commands.drain()
        if bot.drafts is not None:
            await bot.drafts.drain()
        return await bot.dispatcher.drain()

    session = ConsoleSession(
        bot.chat,
        bot.console,
        bot.db,
        deliver,
        sys.stdout,
        handle,
        echo=lines is not None,
        desk=bot.desk,
    )
    await session.switch_to(org.person(handle).console or handle)  # type: ignore[union-attr]
    try:
        if lines is not None:
            await session.run(lines)
        else:
            await session.run(read=_reader())
    finally:
        await bot.stop()
    return 0


def _reader() -> Callable[[str], str]:
    def read(prompt: str) -> str:
        if not sys.stdin.isatty():
            line = sys.stdin.readline()
            if not line:
                raise EOFError
            return line
        return input(prompt)

    return read


def _default_person(org: object) -> str:
    from bot.config.organisation import OrganisationConfig
    from bot.core.types import Role

    assert isinstance(org, OrganisationConfig)
    for p in org.people:
        if Role.EVANGELIST in p.roles:
            return p.id
    if not org.people:
        raise ConfigurationError("the organisation file lists no people")
    return org.people[0].id


def import_questions(config: Path | None, file: str, source: str, *, as_json: bool) -> int:
    """`evangelist questions import`: CSV rows become tracked (and routed) questions.

    Routed messages wait in the outbox; the running service (`serve`) delivers them.
    """
    import json

    from bot.sources.csv_import import parse_csv

    settings = _settings(config)
    configure_logging("WARNING", "text", settings.secrets)
    if settings.config_path is None:
        raise ConfigurationError(
            "importing questions needs the organisation file (EVANGELIST_CONFIG)"
        )
    try:
        text = sys.stdin.read() if file == "-" else Path(file).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{file}: cannot read it ({exc})") from exc
    try:
        items, rejected = parse_csv(text, source)
    except ValueError as exc:
        raise ConfigurationError(f"{file}: {exc}") from exc
    upgrade(settings.database_url)
    report = asyncio.run(_import(settings, items))
    outcome = {
        "rows": len(items) + len(rejected),
        "new_questions": len(report.new),
        "answered": len(report.answered),
        "skipped": report.skipped,
        "rejected": [{"line": line, "reason": reason} for line, reason in rejected],
    }
    if as_json:
        print(json.dumps(outcome))
    else:
        print(
            f"{file}: {outcome['new_questions']} new question(s) tracked, "
            f"{len(rejected)} row(s) rejected, skipped: {report.skipped or 'none'}"
        )
        for line, reason in rejected[:20]:
            print(f"  line {line}: {reason}")
    return 0


async def _import(settings: Settings, items: list[Any]) -> Any:
    bot: Evangelist = build(settings)
    try:
        await bot.prepare()
        if bot.desk is None:
            raise ConfigurationError("the organisation file is needed to route questions")
        if bot.routing is not None:
            await bot.routing.retrain()
        return await bot.desk.take_in(items, via="import")
    finally:
        await bot.db.close()


def explain_routing(config: Path | None, text: str, router: str | None, *, as_json: bool) -> int:
    """`evangelist routing explain`: the router trained as the service trains it, on one text."""
    import json

    settings = _settings(config)
    configure_logging("WARNING", "text", settings.secrets)
    if settings.config_path is None:
        raise ConfigurationError(
            "explaining routing needs the organisation file (EVANGELIST_CONFIG)"
        )
    upgrade(settings.database_url)
    outcome = asyncio.run(_explain(settings, text, router))
    if as_json:
        print(json.dumps(outcome))
        return 0
    where = outcome["topic"] or f"the fallback owner ({outcome['reason']})"
    print(f"router {outcome['router']}: {where}, {outcome['confidence']:.0%} sure")
    for pull in outcome["topics"]:
        print(f"  {pull['probability']:6.1%}  {pull['topic']} ({pull['name']})")
        for example in pull["examples"]:
            print(f'          {example["similarity"]:.2f}  "{example["text"]}"')
    return 0


async def _explain(settings: Settings, text: str, router: str | None) -> dict[str, Any]:
    from dataclasses import replace

    bot: Evangelist = build(settings)
    try:
        await bot.prepare()
        if bot.routing is None or bot.organisation is None:
            raise ConfigurationError("the organisation file is needed to route questions")
        if router:
            bot.routing.choice = replace(bot.routing.choice, name=router)
        await bot.routing.retrain()
        model = bot.routing.router
        if model is None or not hasattr(model, "explain"):
            raise ConfigurationError("no topic has a name or an example to learn from")
        decision, pulls = model.explain(text)
        org = bot.organisation
        return {
            "router": model.name,
            "topic": decision.topic,
            "confidence": round(decision.confidence, 4),
            "reason": decision.reason,
            "topics": [
                {
                    "topic": pull.topic,
                    "name": getattr(org.topic(pull.topic), "name", pull.topic),
                    "probability": pull.probability,
                    "examples": [{"text": t, "similarity": sim} for t, sim in pull.examples],
                }
                for pull in pulls
            ],
        }
    finally:
        await bot.db.close()


# -- expertise -------------------------------------------------------------------------------


def list_expertise(
    config: Path | None, person: str | None, topic: str | None, *, as_json: bool
) -> int:
    """`evangelist expertise list`: configured, learned and effective weights, as routing sees
    them now."""
    import json

    from bot.questions.expertise_view import Standing, standings

    async def work(session: AsyncSession, desk: QuestionDesk, now: datetime) -> list[Standing]:
        person_id = (await _person(session, person)).id if person else None
        topic_key = _topic(desk, topic).id if topic else None
        return await standings(
            session, desk.org, now, person_id=person_id, topic_key=topic_key, rule=desk.router.rule
        )

    settings = _desk_settings(config)
    found, now = asyncio.run(_on_desk(settings, work))
    if as_json:
        print(json.dumps({"as_of": now.isoformat(), "rows": [s.to_dict() for s in found]}))
        return 0
    header = ("person", "topic", "configured", "learned", "effective", "basis", "a/c/d", "override")
    table = [header] + [
        (
            s.person,
            s.topic,
            f"{s.configured:g}",
            f"{s.weight.score:.2f}",
            f"{s.weight.value:.2f}",
            s.weight.basis,
            f"{s.answers}/{s.claims}/{s.declines}",
            "-" if s.override is None else f"{s.override:g} ({s.overridden_by})",
        )
        for s in found
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    if not found:
        print("(no experts configured or learned yet)")
    return 0


def set_expertise(
    config: Path | None, person: str, topic: str, weight: str, note: str | None
) -> int:
    """`evangelist expertise set`: the evangelist's fixed weight for a person on a topic."""
    from bot.questions import expertise
    from bot.questions.expertise_view import parse_weight
    from bot.storage import audit

    value = parse_weight(weight)
    if value is None:
        raise ConfigurationError(
            f"WEIGHT {weight!r}: use a number from 0 to {expertise.MAX_OVERRIDE:g} "
            "(0 = never ask them about this topic)"
        )

    async def work(session: AsyncSession, desk: QuestionDesk, now: datetime) -> str:
        row, chosen = await _person(session, person), _topic(desk, topic)
        before = await expertise.set_override(
            session,
            person_id=row.id,
            topic_key=chosen.id,
            weight=value,
            by="cli",
            now=now,
            note=note,
        )
        audit.record(
            session,
            at=now,
            actor=None,
            action="expertise.set",
            target=f"{row.key}:{chosen.id}",
            details={"weight": value, "before": before, "note": note},
        )
        return f"{row.key} on {chosen.id}: weight fixed at {value:g}"

    message, _ = asyncio.run(_on_desk(_desk_settings(config), work))
    print(message)
    return 0


def reset_expertise(config: Path | None, person: str, topic: str) -> int:
    """`evangelist expertise reset`: back to the configured weight; learning starts again."""
    from bot.questions import expertise
    from bot.storage import audit

    async def work(session: AsyncSession, desk: QuestionDesk, now: datetime) -> str:
        row, chosen = await _person(session, person), _topic(desk, topic)
        changed = await expertise.reset(session, person_id=row.id, topic_key=chosen.id, now=now)
        audit.record(
            session,
            at=now,
            actor=None,
            action="expertise.reset",
            target=f"{row.key}:{chosen.id}",
            outcome="ok" if changed else "unchanged",
        )
        return f"{row.key} on {chosen.id}: back to the configured weight" + (
            "" if changed else " (nothing was learned or set)"
        )

    message, _ = asyncio.run(_on_desk(_desk_settings(config), work))
    print(message)
    return 0


def _desk_settings(config: Path | None) -> Settings:
    settings = _settings(config)
    configure_logging("WARNING", "text", settings.secrets)
    if settings.config_path is None:
        raise ConfigurationError("expertise needs the organisation file (EVANGELIST_CONFIG)")
    upgrade(settings.database_url)
    return settings


async def _on_desk(
    settings: Settings,
    work: Callable[[AsyncSession, QuestionDesk, datetime], Awaitable[T]],
) -> tuple[T, datetime]:
    """Run `work` in one transaction with the desk, at the bot's clock's now."""
    bot: Evangelist = build(settings)
    try:
        await bot.prepare()
        if bot.desk is None:
            raise ConfigurationError("the organisation file is needed for expertise")
        now = bot.clock.now()
        async with bot.db.transaction() as session:
            return await work(session, bot.desk, now), now
    finally:
        await bot.db.close()


async def _person(session: AsyncSession, key: str) -> PersonRow:
    from bot.questions.expertise_view import resolve_person

    row = await resolve_person(session, key)
    if row is None:
        raise ConfigurationError(f"PERSON {key!r}: no such person (use their id from the file)")
    return row


def _topic(desk: QuestionDesk, key: str) -> TopicConfig:
    from bot.questions.expertise_view import resolve_topic

    topic = resolve_topic(desk.org, key)
    if topic is None:
        known = ", ".join(t.id for t in desk.org.topics) or "none"
        raise ConfigurationError(f"TOPIC {key!r}: no such topic (topics: {known})")
    return topic
