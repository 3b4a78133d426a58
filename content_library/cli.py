"""`evangelist library import FILE_OR_URL [--json]`: links into the learning library."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import TextIO

import aiohttp

from bot.config.settings import load_settings
from bot.core.clock import SystemClock
from bot.core.errors import ConfigurationError
from bot.observability import configure_logging
from bot.storage.database import Database
from bot.storage.migrate import upgrade
from content_library.importer import Importer, ImportReport

SHOWN_REJECTIONS = 20


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    library = commands.add_parser("library", help="the learning library")
    actions = library.add_subparsers(dest="library_command", metavar="ACTION")
    importer = actions.add_parser(
        "import",
        help="add links from YAML, CSV, RSS, Atom or OPML (a file or an http/https address)",
        description=(
            "Adds the links a document holds to the library (EVANGELIST_DATABASE_URL). Links "
            "are compared by their canonical address, so a link already in the library counts "
            "as a duplicate. Rows, entries or feeds that cannot be used are listed with where "
            "and why; everything else is added."
        ),
    )
    importer.add_argument("target", metavar="FILE_OR_URL")
    importer.add_argument("--by", metavar="PERSON", help="who added them (for the library)")
    importer.add_argument("--json", action="store_true", help="print the outcome as JSON")


def run(args: argparse.Namespace) -> int | None:
    if args.library_command != "import":
        return None
    if args.by is not None and not 0 < len(args.by) <= 100:
        raise ConfigurationError(
            f"--by {args.by[:20]!r}…: give a person's id (1 to 100 characters)"
        )
    settings = load_settings()
    configure_logging("WARNING", "text", settings.secrets)
    upgrade(settings.database_url)
    bar = ProgressBar(sys.stderr) if sys.stderr.isatty() and not args.json else None
    report = asyncio.run(_import(settings.database_url, args.target, args.by, bar))
    if bar is not None:
        bar.finish()
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(describe(args.target, report))
    return 0 if report.readable else 1


async def _import(
    database_url: str, target: str, by: str | None, bar: ProgressBar | None
) -> ImportReport:
    db = Database(database_url)
    try:
        async with aiohttp.ClientSession() as http:
            importer = Importer(db, SystemClock(), http)
            return await importer.run(
                target, added_by=by, progress=bar.update if bar is not None else None
            )
    finally:
        await db.close()


def describe(target: str, report: ImportReport) -> str:
    lines = [
        f"{target}: {report.added} link(s) added, {report.duplicates} duplicate(s), "
        f"{len(report.rejected)} rejected"
    ]
    for rejection in report.rejected[:SHOWN_REJECTIONS]:
        lines.append(f"  {rejection.where}: {rejection.reason}")
    if len(report.rejected) > SHOWN_REJECTIONS:
        more = len(report.rejected) - SHOWN_REJECTIONS
        lines.append(f"  … and {more} more (--json lists them all)")
    return "\n".join(lines)


class ProgressBar:
    """A one-line bar on a terminal: `links [########------------] 4,000/10,000`."""

    WIDTH = 30

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.drawn = False

    def update(self, what: str, done: int, total: int) -> None:
        filled = self.WIDTH * done // total if total else self.WIDTH
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self.stream.write(f"\r{what:<5} [{bar}] {done:,}/{total:,}")
        self.stream.flush()
        self.drawn = True

    def finish(self) -> None:
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
