"""`evangelist routing evaluate` and `evangelist routing explain`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bot.routing.build import ROUTERS
from bot.routing.evaluate import EvaluationError, evaluate, read_rows, report, sample_shots
from bot.routing.router import RouterSettings

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    routing = commands.add_parser("routing", help="the topic router: measure it, explain it")
    actions = routing.add_subparsers(dest="routing_command", metavar="ACTION")

    ev = actions.add_parser(
        "evaluate", help="train the router on one CSV as production does, measure it on another"
    )
    ev.add_argument("--train", type=Path, required=True, help="CSV of labelled questions")
    ev.add_argument("--test", type=Path, required=True, help="CSV of labelled questions")
    ev.add_argument("--label-column", required=True, help="the column naming the topic")
    ev.add_argument("--text-column", default="text", help="the question column (default: text)")
    ev.add_argument("--oos-label", help="the label of questions no topic covers")
    ev.add_argument("--shots", type=int, help="use only K training rows per label")
    ev.add_argument("--seed", type=int, default=0, help="seed for --shots (default 0)")
    ev.add_argument("--router", choices=ROUTERS, default="auto", help="default: auto")
    ev.add_argument(
        "--min-confidence",
        type=float,
        help="below this probability a question goes to the fallback owner (default 0.25)",
    )
    ev.add_argument(
        "--no-generic-oos",
        dest="generic_oos",
        action="store_false",
        help="leave out Evangelist's own off-topic questions (production learns them too)",
    )
    ev.add_argument("--json", action="store_true", help="print one JSON object")

    ex = actions.add_parser("explain", help="the top topics for a question, and why")
    ex.add_argument("text", help="the question")
    ex.add_argument("--config", type=Path, help="organisation YAML")
    ex.add_argument("--router", choices=ROUTERS, help="default: the organisation's choice")
    ex.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int | None:
    if args.routing_command == "evaluate":
        return _evaluate(args)
    if args.routing_command == "explain":
        from bot.runner import explain_routing

        code: int = explain_routing(args.config, args.text, args.router, as_json=args.json)
        return code
    return None


def _evaluate(args: argparse.Namespace) -> int:
    if args.shots is not None and args.shots < 1:
        print("--shots must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.min_confidence is not None and not 0 <= args.min_confidence < 1:
        print("--min-confidence must be in [0, 1)", file=sys.stderr)
        return EXIT_USAGE
    try:
        train = read_rows(args.train, args.label_column, args.text_column, args.oos_label)
        test = read_rows(args.test, args.label_column, args.text_column, args.oos_label)
        if args.shots:
            train = sample_shots(train, args.shots, args.seed)
        if all(row.label is None for row in train):
            raise EvaluationError("the training rows are all out of scope: nothing to learn")
        settings = (
            RouterSettings(min_confidence=args.min_confidence)
            if args.min_confidence is not None
            else None
        )
        figures = evaluate(
            train, test, router=args.router, settings=settings, generic_oos=args.generic_oos
        )
    except EvaluationError as error:
        print(f"routing evaluate: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # an encoder that cannot run, a server that failed
        print(f"routing evaluate failed: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(figures) if args.json else report(figures))
    return EXIT_OK
