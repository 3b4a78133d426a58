"""Running the bot as a service or in the console."""

from __future__ import annotations

import asyncio
import gc
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from bot.app import Evangelist, build
from bot.config.organisation import load_organisation
from bot.config.settings import Settings, load_settings, redact_url
from bot.core.errors import ConfigurationError
from bot.observability import configure_logging
from bot.storage.migrate import upgrade

log = logging.getLogger("evangelist")


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
    await bot.start(dispatcher=False)
    session = ConsoleSession(
        bot.chat,
        bot.console,
        bot.db,
        bot.dispatcher.drain,
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
        return await bot.desk.take_in(items, via="import")
    finally:
        await bot.db.close()
