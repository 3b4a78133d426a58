"""Question desk benchmark: from a signed Meta webhook to the routed DM handed to Slack.

    .venv/bin/python benchmarks/questions.py [--rate 100] [--seconds 180]
        [--database-url sqlite|URL ...] [--keep]

For each database it starts `evangelist serve` as a subprocess (Slack pointed at a fake Slack
Web API running in this process, Meta webhooks on), sends an open loop of signed Facebook Page
`feed` comment notifications at `--rate` questions a minute, and times each question from just
before its webhook POST is sent to the moment the fake Slack receives the `chat.postMessage`
carrying the routed DM. The fake answers at once, so Slack's own latency is not in the figure.

`--database-url` may be given more than once: `sqlite` (the default) is a fresh SQLite file in a
temporary directory; a PostgreSQL URL names a server where a scratch database is created and
dropped afterwards. It then prints what polling costs per source per hour, measured against the
test suite's fake Graph, YouTube and feed servers. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (HERE, ROOT):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from ingest import clean_environment, fmt, log_summary, table, venv_bin  # noqa: E402
from loadgen import percentile  # noqa: E402
from procs import Server, free_port  # noqa: E402

from bot.config.organisation import (  # noqa: E402
    FacebookPageSourceConfig,
    RssSourceConfig,
    YouTubeSourceConfig,
)
from bot.core.sources import PollResult  # noqa: E402
from bot.sources.meta import FacebookPageSource  # noqa: E402
from bot.sources.rss import RssSource  # noqa: E402
from bot.sources.youtube import DEFAULT_DAILY_QUOTA, YouTubeSource, daily_quota_plan  # noqa: E402
from tests.fakes.feed_server import FakeFeedServer, rss_feed, rss_item  # noqa: E402
from tests.fakes.graph_api import FakeGraphApi  # noqa: E402
from tests.fakes.slack_api import FakeSlackApi  # noqa: E402
from tests.fakes.youtube_api import FakeYouTubeApi  # noqa: E402

APP_SECRET = "bench-meta-app-secret-0123456789"
VERIFY_TOKEN = "bench-verify-token"
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
BOT_TOKEN = "xoxb-bench-0000-0000-token"
PAGE = "111"
SCRATCH_DATABASE = "evangelist_bench_questions"
WARMUP = 5
DELIVERY_TIMEOUT_S = 60.0
REF = re.compile(rb"ref (Q\d{6})")
NOW = datetime.now(UTC).replace(microsecond=0)
"""The polling-cost runs read the fakes as of now (the sources' look-back windows are real)."""

ZONES = ("UTC", "America/New_York", "Asia/Tokyo", "Europe/Berlin", "Australia/Sydney")
"""One expert per topic in each zone: at any minute at most one of a topic's five is off."""
TOPICS = (
    ("admissions", "application deadline", "When is the application deadline for autumn"),
    ("fees", "tuition", "How much is the tuition for international students"),
    ("housing", "accommodation", "Is accommodation guaranteed in the first year"),
    ("research", "supervisor", "How do I find a supervisor for a PhD"),
    ("sport", "gym", "What are the gym opening times at weekends"),
    ("library", "library", "Can alumni still use the library"),
    ("careers", "internship", "Does the careers service help with an internship"),
    ("parking", "parking", "Is there visitor parking near the main entrance"),
    ("visas", "visa", "Which visa do I need for a one-year course"),
    ("events", "open day", "Can I bring my parents to the open day"),
)


def progress(message: str) -> None:
    print(f"[questions {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the organisation ---------------------------------------------------------------------------


def organisation_yaml() -> str:
    """10 topics x 5 experts (capacity 50), working every minute but 23:59 in five zones."""
    all_week = "{start: '00:00', end: '23:59', days: [mon, tue, wed, thu, fri, sat, sun]}"
    people = ["  - {id: eva, name: Eva Evangelist, roles: [evangelist], slack: U0EVA}"]
    topics = []
    for t, (key, keyword, _) in enumerate(TOPICS):
        experts = []
        for e, zone in enumerate(ZONES):
            person = f"x{t}{e}"
            people.append(
                f"  - {{id: {person}, name: Expert {t}{e}, timezone: {zone}, roles: [expert], "
                f"slack: U0X{t}{e}, working_hours: {all_week}}}"
            )
            experts.append(f"{{person: {person}}}")
        topics.append(
            f"  - {{id: {key}, name: {key.title()}, keywords: ['{keyword}'], "
            f"experts: [{', '.join(experts)}]}}"
        )
    return "\n".join(
        [
            "organisation: {name: Bench University, timezone: UTC}",
            f"questions: {{capacity: 50, working_hours: {all_week}}}",
            "people:",
            *people,
            "topics:",
            *topics,
            "sources:",
            f"  - {{id: page, kind: facebook_page, page_id: '{PAGE}', poll_minutes: 0}}",
        ]
    )


# -- the requests -------------------------------------------------------------------------------


@dataclass
class Question:
    ref: str
    body: bytes
    headers: dict[str, str]
    measured: bool
    due: float = 0.0
    sent: float = 0.0
    answered: float = 0.0
    status: int = 0
    delivered: float | None = None


def build_questions(count: int) -> list[Question]:
    """Signed Page `feed` comment notifications, each question tagged with a unique ref."""
    questions = []
    now = int(time.time())
    for n in range(count):
        ref = f"Q{n:06d}"
        _, _, text = TOPICS[n % len(TOPICS)]
        value = {
            "item": "comment",
            "verb": "add",
            "comment_id": f"2001_{n}",
            "post_id": f"{PAGE}_2001",
            "parent_id": f"{PAGE}_2001",
            "from": {"id": f"71{n:08d}", "name": f"Visitor {n}"},
            "message": f"{text} (ref {ref})?",
            "created_time": now,
        }
        change = {"field": "feed", "value": value}
        payload = {"object": "page", "entry": [{"id": PAGE, "time": now, "changes": [change]}]}
        body = json.dumps(payload).encode()
        digest = hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}
        questions.append(Question(ref, body, headers, measured=n >= WARMUP))
    return questions


async def open_loop(url: str, questions: Sequence[Question], per_minute: float) -> None:
    """Send question i at start + i / rate whether or not earlier ones were answered."""
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def one(question: Question) -> None:
            question.sent = time.monotonic()
            try:
                async with session.post(url, data=question.body, headers=question.headers) as r:
                    await r.read()
                    question.status = r.status
            except (aiohttp.ClientError, TimeoutError):
                question.status = 0
            question.answered = time.monotonic()

        tasks = []
        start = loop.time() + 0.05
        for index, question in enumerate(questions):
            due = start + index * 60 / per_minute
            await asyncio.sleep(max(0.0, due - loop.time()))
            question.due = due
            tasks.append(loop.create_task(one(question)))
        await asyncio.gather(*tasks)


def match_deliveries(fake: FakeSlackApi, questions: Sequence[Question]) -> int:
    """Stamp each question with the first chat.postMessage carrying its ref; return how many
    DMs named a question that already had one (duplicates)."""
    by_ref = {q.ref: q for q in questions}
    for question in questions:
        question.delivered = None
    duplicates = 0
    for call in fake.calls_to("chat.postMessage"):
        found = REF.search(call.raw_body)
        asked = by_ref.get(found.group(1).decode()) if found else None
        if asked is None:
            continue
        if asked.delivered is not None:
            duplicates += 1
            continue
        asked.delivered = call.received_at
    return duplicates


async def await_deliveries(fake: FakeSlackApi, questions: Sequence[Question]) -> int:
    """Wait until every question's DM reached the fake (at most DELIVERY_TIMEOUT_S after the
    load); returns the duplicates. Other DMs the bot sends do not end the wait early."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DELIVERY_TIMEOUT_S
    while True:
        duplicates = match_deliveries(fake, questions)
        missing = sum(1 for q in questions if q.delivered is None)
        if not missing or loop.time() >= deadline:
            return duplicates
        more = len(fake.calls_to("chat.postMessage")) + missing
        with contextlib.suppress(TimeoutError):
            await fake.wait_for("chat.postMessage", more, timeout=deadline - loop.time())


# -- one database -------------------------------------------------------------------------------


@dataclass
class Run:
    name: str
    figures: dict[str, Any] = field(default_factory=dict)


async def scratch_postgres(admin_url: str, *, create: bool) -> str:
    """Create (or drop) the scratch database on the server `admin_url` points at."""
    import asyncpg

    parts = urlsplit(admin_url)
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)')
        if create:
            await connection.execute(f'CREATE DATABASE "{SCRATCH_DATABASE}"')
    finally:
        await connection.close()
    return urlunsplit(parts._replace(path=f"/{SCRATCH_DATABASE}"))


def server_env(database_url: str, port: int, config: Path, slack_url: str) -> dict[str, str]:
    env = clean_environment()
    env.update(
        EVANGELIST_DATABASE_URL=database_url,
        EVANGELIST_HOST="127.0.0.1",
        EVANGELIST_PORT=str(port),
        EVANGELIST_CONFIG=str(config),
        EVANGELIST_LOG_LEVEL="WARNING",
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_BASE_URL=slack_url,
        META_APP_SECRET=APP_SECRET,
        META_VERIFY_TOKEN=VERIFY_TOKEN,
    )
    return env


async def run_database(
    target: str, args: argparse.Namespace, work: Path, fake: FakeSlackApi
) -> Run:
    run = Run("sqlite" if target == "sqlite" else "postgresql")
    if target == "sqlite":
        database_url = f"sqlite:///{work / 'questions-bench.db'}"
    else:
        database_url = await scratch_postgres(target, create=True)
    config = work / "organisation.yaml"
    port = free_port()
    env = server_env(database_url, port, config, fake.base_url)
    log = work / f"{run.name}.log"
    server = Server(
        run.name, [venv_bin("evangelist"), "serve"], env, f"http://127.0.0.1:{port}", log, ROOT
    )
    fake.clear_calls()
    try:
        run.figures["cold_start_s"] = await server.start()
        progress(f"{run.name}: pid {server.pid} ready in {run.figures['cold_start_s']:.2f}s")
        await measure(run, server, args, fake)
    finally:
        await server.stop()
        if target != "sqlite":
            await scratch_postgres(target, create=False)
    run.figures["log_lines"], run.figures["log_sample"] = log_summary(log)
    return run


async def measure(run: Run, server: Server, args: argparse.Namespace, fake: FakeSlackApi) -> None:
    count = WARMUP + round(args.rate * args.seconds / 60)
    questions = build_questions(count)
    progress(
        f"{run.name}: {count - WARMUP} questions at {args.rate:g}/min "
        f"(+{WARMUP} warm-up), about {count * 60 / args.rate:.0f}s"
    )
    await open_loop(f"{server.base_url}/webhooks/meta", questions, args.rate)
    run.figures["duplicates"] = await await_deliveries(fake, questions)
    run.figures.update(summarise([q for q in questions if q.measured]))


def summarise(questions: Sequence[Question]) -> dict[str, Any]:
    delivered = [q for q in questions if q.delivered is not None]
    to_dm = [(q.delivered - q.sent) * 1000 for q in delivered if q.delivered is not None]
    acks = [(q.answered - q.sent) * 1000 for q in questions if q.status == 200]
    lags = [(q.sent - q.due) * 1000 for q in questions]
    return {
        "sent": len(questions),
        "acked": len(acks),
        "delivered": len(delivered),
        "dm_p50_ms": percentile(to_dm, 50),
        "dm_p95_ms": percentile(to_dm, 95),
        "dm_max_ms": max(to_dm, default=float("nan")),
        "ack_p50_ms": percentile(acks, 50),
        "ack_p95_ms": percentile(acks, 95),
        "ack_max_ms": max(acks, default=float("nan")),
        "lag_p95_ms": percentile(lags, 95),
    }


# -- polling cost -------------------------------------------------------------------------------


async def facebook_cost(http: aiohttp.ClientSession) -> dict[str, Any]:
    """20 posts in the look-back window, 5 with comments, 10 open questions watched."""
    async with FakeGraphApi() as graph:
        watched = []
        for p in range(20):
            post = f"{PAGE}_{p}"
            graph.add_post(PAGE, post, f"Post {p}", created_time=NOW - timedelta(hours=6 * p + 1))
            for c in range(2 if p < 5 else 0):
                comment = f"{p}_{c}"
                graph.add_comment(
                    post,
                    comment,
                    "When is the deadline?",
                    from_id="7100",
                    from_name="Visitor",
                    created_time=NOW - timedelta(hours=6 * p),
                )
                watched.append(comment)
        config = FacebookPageSourceConfig(id="page", kind="facebook_page", page_id=PAGE)
        source = FacebookPageSource(config, http, graph.base_url, graph.token)
        first = await source.poll({}, NOW, watched[:10])
        steady = await source.poll(first.cursor, NOW + timedelta(minutes=15), watched[:10])
    name = "Facebook Page (20 posts, 5 with comments, 10 watched)"
    return cost_row(name, config.poll_minutes, first, steady)


async def youtube_cost(http: aiohttp.ClientSession) -> dict[str, Any]:
    """A busy channel: a first poll that reads all its pages; then a quiet one."""
    channel = "UCbench00000000000000000"
    config = YouTubeSourceConfig(id="yt", kind="youtube", channel_id=channel)
    async with FakeYouTubeApi(api_key="bench-key") as youtube:
        for n in range(100 * config.max_pages + 50):
            youtube.add_thread(
                f"video{n % 7}",
                "What camera is this?",
                channel_id=channel,
                published_at=NOW - timedelta(minutes=n),
            )
        source = YouTubeSource(config, http, youtube.base_url, "bench-key")
        busy = await source.poll({}, NOW)
        quiet = await source.poll(busy.cursor, NOW + timedelta(minutes=30))
    name = f"YouTube channel (busy: {config.max_pages} pages of threads)"
    row = cost_row(name, config.poll_minutes, busy, quiet)
    plan = daily_quota_plan(config.poll_minutes, config.max_pages, 0)
    row["units_day"] = plan["units_per_day"]
    row["quota"] = DEFAULT_DAILY_QUOTA
    return row


async def rss_cost(http: aiohttp.ClientSession) -> dict[str, Any]:
    """One conditional GET a poll; 304 Not Modified when nothing changed."""
    async with FakeFeedServer() as feed:
        feed.set_feed(rss_feed([rss_item("e1", "Evening classes?", "Any?", published=NOW)]))
        config = RssSourceConfig(id="forum", kind="rss", url=feed.feed_url)
        source = RssSource(config, http)
        changed = await source.poll({}, NOW)
        unchanged = await source.poll(changed.cursor, NOW + timedelta(minutes=30))
        not_modified = feed.not_modified
    row = cost_row("RSS/Atom feed (conditional GET)", config.poll_minutes, changed, unchanged)
    row["note"] = f"{not_modified} of 2 answered 304"
    return row


def cost_row(name: str, minutes: int, busy: PollResult, quiet: PollResult) -> dict[str, Any]:
    """Per hour at the default interval, counting every poll as a busy one (the worst case)."""
    polls = 60 / minutes
    return {
        "source": name,
        "minutes": minutes,
        "calls_busy": busy.calls,
        "calls_quiet": quiet.calls,
        "calls_hour": busy.calls * polls,
        "units_hour": busy.quota_units * polls,
    }


async def polling_costs() -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http:
        return [await facebook_cost(http), await youtube_cost(http), await rss_cost(http)]


# -- the report ---------------------------------------------------------------------------------


def print_report(runs: list[Run], costs: list[dict[str, Any]], args: argparse.Namespace) -> None:
    print(
        f"\nQuestions: Meta webhook -> routed DM handed to Slack, open loop at {args.rate:g}/min "
        f"for {args.seconds:g}s (+{WARMUP} warm-up), times in ms\n"
    )
    headers = [
        "database",
        "sent",
        "200",
        "DMs",
        "DM p50",
        "DM p95",
        "DM max",
        "ack p50",
        "ack p95",
        "ack max",
        "lag p95",
        "cold s",
    ]
    rows = [
        [
            r.name,
            str(f["sent"]),
            str(f["acked"]),
            str(f["delivered"]),
            fmt(f["dm_p50_ms"]),
            fmt(f["dm_p95_ms"]),
            fmt(f["dm_max_ms"]),
            fmt(f["ack_p50_ms"]),
            fmt(f["ack_p95_ms"]),
            fmt(f["ack_max_ms"]),
            fmt(f["lag_p95_ms"]),
            fmt(f["cold_start_s"], 2),
        ]
        for r in runs
        for f in [r.figures]
    ]
    print(table(headers, rows))
    for run in runs:
        for note in notes_for(run):
            print(f"  note: {note}")
    print("\nPolling cost per source (measured against the fakes; default intervals)\n")
    headers = ["source", "every min", "calls/poll", "calls/hour", "units/hour", "units/day"]
    # calls/poll: a busy poll / a quiet one; the hourly figures count every poll as busy.
    rows = [
        [
            c["source"],
            str(c["minutes"]),
            f"{c['calls_busy']} / {c['calls_quiet']}",
            fmt(c["calls_hour"], 0),
            fmt(c["units_hour"], 0),
            f"{c['units_day']} of {c['quota']:,}" if "units_day" in c else "-",
        ]
        for c in costs
    ]
    print(table(headers, rows))
    print(
        "  calls/poll: a busy poll / a quiet one; per hour and per day count every poll as busy.\n"
        "  Graph spends no quota units (its limit is the Pages BUC call budget); YouTube's\n"
        "  units/day is daily_quota_plan's worst case against the default 10,000 a day."
    )
    for cost in costs:
        if "note" in cost:
            print(f"  {cost['source']}: {cost['note']}")


def notes_for(run: Run) -> list[str]:
    f, notes = run.figures, []
    if f["delivered"] < f["sent"]:
        notes.append(f"{run.name}: {f['sent'] - f['delivered']} question(s) got no DM in time")
    if f["duplicates"]:
        notes.append(f"{run.name}: {f['duplicates']} duplicate DM(s)")
    if f["acked"] < f["sent"]:
        notes.append(f"{run.name}: {f['sent'] - f['acked']} webhook(s) not answered 200")
    if f["log_lines"]:
        notes.append(f"{run.name}: {f['log_lines']} server log line(s), e.g. {f['log_sample'][:2]}")
    return notes


# -- main -----------------------------------------------------------------------------------------


async def run(args: argparse.Namespace, work: Path) -> None:
    runs = []
    async with FakeSlackApi() as fake:
        for target in args.database_url or ["sqlite"]:
            runs.append(await run_database(target, args, work, fake))
    progress("measuring polling cost against the fakes")
    costs = await polling_costs()
    print_report(runs, costs, args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100.0, help="questions per minute")
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the load")
    parser.add_argument(
        "--database-url",
        action="append",
        help="'sqlite' (default: a temporary file) or a PostgreSQL server URL; repeatable",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.seconds <= 0:
        parser.error("--rate and --seconds must be positive")
    work = Path(tempfile.mkdtemp(prefix="evangelist-questions-"))
    (work / "organisation.yaml").write_text(organisation_yaml(), encoding="utf-8")
    try:
        asyncio.run(run(args, work))
    finally:
        if args.keep:
            progress(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
