"""The `evangelist` command."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from bot import __version__
from bot.core.errors import ConfigurationError

log = logging.getLogger("evangelist")

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="evangelist",
        description="Your organisation's in-house social media evangelist for Slack and Teams.",
    )
    top.add_argument("--version", action="version", version=f"evangelist {__version__}")
    commands = top.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the service (HTTP endpoints, scheduler, outbox)")
    serve.add_argument(
        "--config", type=Path, help="organisation YAML (overrides EVANGELIST_CONFIG)"
    )

    console = commands.add_parser("console", help="the whole bot in this terminal")
    console.add_argument(
        "--as",
        dest="person",
        metavar="USER",
        help="speak as this person (id from the organisation file)",
    )
    console.add_argument(
        "--script",
        metavar="FILE",
        help="read lines from FILE ('-' for standard input) and exit at its end",
    )
    console.add_argument(
        "--config", type=Path, help="organisation YAML (overrides EVANGELIST_CONFIG)"
    )

    db = commands.add_parser("db", help="database maintenance")
    db_commands = db.add_subparsers(dest="db_command", metavar="ACTION")
    db_commands.add_parser("upgrade", help="migrate the database to the newest schema")

    config = commands.add_parser("config", help="configuration checks")
    config_commands = config.add_subparsers(dest="config_command", metavar="ACTION")
    validate = config_commands.add_parser("validate", help="check an organisation YAML file")
    validate.add_argument("file", type=Path)
    questions = commands.add_parser("questions", help="the question desk")
    question_commands = questions.add_subparsers(dest="questions_command", metavar="ACTION")
    importer = question_commands.add_parser(
        "import", help="track questions from a CSV file (id,text,url,author,posted_at,...)"
    )
    importer.add_argument("file", help="CSV file ('-' for standard input)")
    importer.add_argument("--source", default="csv", help="source id to file them under")
    importer.add_argument("--config", type=Path, help="organisation YAML")
    importer.add_argument("--json", action="store_true", help="print the outcome as JSON")
    _expertise_parser(commands)
    from bot.routing.cli import add_parser as add_routing_parser

    add_routing_parser(commands)
    from nudges.cli import add_parser as add_campaign_parser

    add_campaign_parser(commands)
    from content_library.cli import add_parser as add_library_parser

    add_library_parser(commands)
    from bot.digests.cli import add_parser as add_digest_parser

    add_digest_parser(commands)
    return top


def _expertise_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    expertise = commands.add_parser("expertise", help="who knows which topic: see and override")
    actions = expertise.add_subparsers(dest="expertise_command", metavar="ACTION")
    listing = actions.add_parser("list", help="configured, learned and effective weights")
    listing.add_argument("--person", metavar="KEY", help="only this person")
    listing.add_argument("--topic", metavar="ID", help="only this topic")
    listing.add_argument("--config", type=Path, help="organisation YAML")
    listing.add_argument("--json", action="store_true", help="print the rows as JSON")
    setter = actions.add_parser(
        "set", help="fix a person's weight on a topic (0 to 3; 0 = never ask them about it)"
    )
    setter.add_argument("person", metavar="PERSON", help="the person's id")
    setter.add_argument("topic", metavar="TOPIC", help="the topic's id")
    setter.add_argument("weight", metavar="WEIGHT", help="0 to 3")
    setter.add_argument("--note", help="why, for the audit log and the table")
    setter.add_argument("--config", type=Path, help="organisation YAML")
    resetter = actions.add_parser(
        "reset", help="back to the configured weight: drop the override, forget what was learned"
    )
    resetter.add_argument("person", metavar="PERSON", help="the person's id")
    resetter.add_argument("topic", metavar="TOPIC", help="the topic's id")
    resetter.add_argument("--config", type=Path, help="organisation YAML")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.command == "serve":
            from bot.runner import serve

            return serve(args.config)
        if args.command == "console":
            from bot.runner import console

            return console(args.config, args.person, args.script)
        if args.command == "db" and args.db_command == "upgrade":
            return _db_upgrade()
        if args.command == "config" and args.config_command == "validate":
            return _validate(args.file)
        if args.command == "questions" and args.questions_command == "import":
            from bot.runner import import_questions

            return import_questions(args.config, args.file, args.source, as_json=args.json)
        if args.command == "routing":
            from bot.routing.cli import run as run_routing

            outcome = run_routing(args)
            if outcome is not None:
                return outcome
        if args.command == "campaign":
            from nudges.cli import run as run_campaign

            outcome = run_campaign(args)
            if outcome is not None:
                return outcome
        if args.command == "library":
            from content_library.cli import run as run_library

            outcome = run_library(args)
            if outcome is not None:
                return outcome
        if args.command in ("digest", "demo"):
            from bot.digests.cli import run as run_digest

            outcome = run_digest(args)
            if outcome is not None:
                return outcome
        if args.command == "expertise" and args.expertise_command == "list":
            from bot.runner import list_expertise

            return list_expertise(args.config, args.person, args.topic, as_json=args.json)
        if args.command == "expertise" and args.expertise_command == "set":
            from bot.runner import set_expertise

            return set_expertise(args.config, args.person, args.topic, args.weight, args.note)
        if args.command == "expertise" and args.expertise_command == "reset":
            from bot.runner import reset_expertise

            return reset_expertise(args.config, args.person, args.topic)
    except ConfigurationError as error:
        _print_problems(error)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    parser().print_help(sys.stderr)
    return EXIT_USAGE


def _db_upgrade() -> int:
    from bot.config.settings import load_settings, redact_url
    from bot.storage.migrate import upgrade

    settings = load_settings()
    upgrade(settings.database_url)
    print(f"database {redact_url(settings.database_url)} is at the newest schema")
    return EXIT_OK


def _validate(file: Path) -> int:
    from bot.config.organisation import load_organisation

    org = load_organisation(file)
    print(
        f"{file}: OK — {len(org.people)} people, {len(org.teams)} teams, {len(org.topics)} topics, "
        f"{len(org.campaigns)} campaigns"
    )
    return EXIT_OK


def _print_problems(error: ConfigurationError) -> None:
    if len(error.problems) == 1 and str(error) == error.problems[0]:
        print(f"error: {error}", file=sys.stderr)
        return
    print(f"error: {error}", file=sys.stderr)
    for problem in error.problems:
        print(f"  - {problem}", file=sys.stderr)


def install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
