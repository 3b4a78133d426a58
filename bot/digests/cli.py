"""`evangelist digest preview …` and `evangelist demo simulate …`."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
from typing import Any

from bot.config.settings import Settings, load_settings
from bot.core.errors import ConfigurationError
from bot.digests.weeks import parse_week
from bot.observability import configure_logging
from bot.storage.migrate import upgrade


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    digest = commands.add_parser("digest", help="leader digests")
    actions = digest.add_subparsers(dest="digest_command", metavar="ACTION")
    preview = actions.add_parser(
        "preview",
        help="write leaders' digests (Markdown and PNG) for a week, without sending them",
        description=(
            "Computes the digests of one ISO week (in each leader's time zone) from the "
            "database (EVANGELIST_DATABASE_URL) and writes <week>-<leader>.md and .png per "
            "leader into DIR. Nothing is sent and no snapshot is stored."
        ),
    )
    who = preview.add_mutually_exclusive_group(required=True)
    who.add_argument("--leader", metavar="EMAIL", help="one leader, by email")
    who.add_argument("--all", action="store_true", help="every team leader")
    preview.add_argument("--week", required=True, metavar="YYYY-Www", help="e.g. 2026-W12")
    preview.add_argument("--out", required=True, type=Path, metavar="DIR")
    preview.add_argument("--json", action="store_true", help="print the figures as JSON")
    preview.add_argument("--config", type=Path, help="organisation YAML")

    demo = commands.add_parser("demo", help="the demo organisation")
    demo_actions = demo.add_subparsers(dest="demo_command", metavar="ACTION")
    simulate = demo_actions.add_parser(
        "simulate",
        help="fill the database with weeks of realistic participation (for the digests)",
    )
    simulate.add_argument("--weeks", type=int, default=8, metavar="N", help="1 to 52 (8)")
    simulate.add_argument("--seed", type=int, default=1, metavar="S")
    simulate.add_argument("--config", type=Path, help="organisation YAML")


def run(args: argparse.Namespace) -> int | None:
    if args.command == "digest" and args.digest_command == "preview":
        return _preview(args)
    if args.command == "demo" and args.demo_command == "simulate":
        return _simulate(args)
    return None


def _settings(config: Path | None, what: str) -> Settings:
    settings = load_settings()
    if config is not None:
        settings = settings.with_overrides(config_path=config)
    if settings.config_path is None:
        raise ConfigurationError(
            f"{what} needs the organisation file: set EVANGELIST_CONFIG or pass --config "
            "(try examples/organisation.yaml)"
        )
    configure_logging("WARNING", "text", settings.secrets)
    return settings


def _preview(args: argparse.Namespace) -> int:
    parse_week(args.week, "UTC")  # a bad week is a usage error before anything is read
    settings = _settings(args.config, "digest preview")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"--out {str(args.out)!r}: cannot create it ({exc})") from exc
    upgrade(settings.database_url)
    written = asyncio.run(_write_previews(settings, args.week, args.leader, args.out))
    if args.json:
        print(json.dumps({"week": args.week, "digests": written}, ensure_ascii=False))
    else:
        for item in written:
            print(f"{item['markdown']}  ({item['figures']['scope']})")
    return 0


async def _write_previews(
    settings: Settings, week: str, email: str | None, out: Path
) -> list[dict[str, Any]]:
    from bot.app import build
    from bot.digests import chart

    # The console wiring: no web app, no Teams adapter; nothing is sent from here.
    bot = build(settings, console=True)
    try:
        await bot.prepare()
        assert bot.digests is not None
        digests = await bot.digests.preview(week, email, bot.clock.now())
        written = []
        for digest in digests:
            f = digest.figures
            name = f"{f.week}-{f.leader or 'organisation'}"
            png = await asyncio.to_thread(chart.render, f)
            (out / f"{name}.png").write_bytes(png)
            (out / f"{name}.md").write_text(digest.markdown(f"{name}.png"), encoding="utf-8")
            written.append(
                {
                    "leader": f.leader,
                    "markdown": str(out / f"{name}.md"),
                    "chart": str(out / f"{name}.png"),
                    "narrative": digest.narrative,
                    "narrative_source": digest.source,
                    "alt_text": chart.alt_text(f),
                    "figures": f.to_dict(),
                }
            )
        return written
    finally:
        if bot.drafts is not None:
            await bot.drafts.close()
        await bot.db.close()


def _simulate(args: argparse.Namespace) -> int:
    if not 1 <= args.weeks <= 52:
        raise ConfigurationError(f"--weeks {args.weeks}: give 1 to 52")
    settings = _settings(args.config, "demo simulate")
    upgrade(settings.database_url)
    print(asyncio.run(_run_simulation(settings, args.weeks, args.seed)))
    return 0


async def _run_simulation(settings: Settings, weeks: int, seed: int) -> str:
    from bot.app import build
    from bot.digests.simulate import simulate

    # The console wiring: no web app, no Teams adapter; nothing is sent from here.
    bot = build(settings, console=True)
    try:
        await bot.prepare()
        assert bot.organisation is not None
        report = await simulate(bot.db, bot.organisation, bot.clock.now(), weeks=weeks, seed=seed)
        return report.describe()
    finally:
        await bot.db.close()
