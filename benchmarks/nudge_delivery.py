"""Nudge delivery benchmark: one campaign due now, delivered against rate-limiting fake platforms.

    .venv/bin/python benchmarks/nudge_delivery.py [--slack 3000] [--teams 1000]
        [--database-url sqlite|URL ...] [--quick] [--json]

The bot is built with `bot.app.build` exactly as `evangelist serve` builds it (real Slack and
Teams platform code, real outbox dispatcher with its documented rate limits, real clock), but
its Slack Web API and Bot Connector are the test suite's fakes on loopback, told to enforce the
platforms' documented rate limits with HTTP 429 + `Retry-After` (`FakeHttpServer.enforce_rate`).
Every person has their own DM, so the binding limit is each platform's overall one.

For each database it runs twice: with the fakes at the documented limits (the target: achieved
rate ≥ 90 % of the allowed rate, no duplicates, nothing lost) and with the fakes at half of them,
stricter than the dispatcher's own rules, to show 429 handling (no duplicates, nothing lost).
Each run: sync the organisation, plan (`NudgeService.plan`), write the due nudges to the outbox
(`send_due` until nothing is left), then start the dispatcher and time the delivery until the
outbox has nothing left to send or the timeout. Progress goes to stderr, the report (or
`--json`) to stdout; PASS/FAIL is informational and the exit status is 0 when it could measure.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import math
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select  # noqa: E402

from bot.app import Evangelist, build  # noqa: E402
from bot.config.organisation import OrganisationConfig  # noqa: E402
from bot.config.settings import Settings  # noqa: E402
from bot.delivery import outbox  # noqa: E402
from bot.storage.migrate import upgrade_async  # noqa: E402
from bot.storage.models import NudgeRow, OutboxRow, PersonRow  # noqa: E402
from tests.fakes import FakeHttpServer, RecordedCall  # noqa: E402
from tests.fakes.bot_connector import FakeBotConnector  # noqa: E402
from tests.fakes.slack_api import FakeSlackApi, dm_channel_for  # noqa: E402

BOT_TOKEN = "xoxb-bench-0000-0000-token"
SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"
TENANT = "bench-tenant-0001"
SCRATCH_DATABASE = "evangelist_bench_nudges"
TARGET_SHARE = 0.90
STRICTER_PEOPLE = 0.1
"""The stricter run delivers to this share of the people (half the rate: it would take twice as
long for everyone)."""
RECOVER_EVERY_S = 15.0
"""The scheduler's `outbox.recover` interval, run here by hand (the scheduler is off)."""
EXPECTED_WARNING = "TEAMS_APP_ID is empty"
"""Teams authentication is off against the fake connector, as in the integration tests."""
TEAMS_CALLS = ("create_conversation", "send_to_conversation", "reply_to_activity")
Rules = tuple[tuple[int, float], ...]


def progress(message: str) -> None:
    print(f"[nudge_delivery {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the limits the fakes enforce ---------------------------------------------------------------


@dataclass(frozen=True)
class FakeLimits:
    """What the fake platforms accept (count, seconds); see PLATFORM-FACTS.md §A.6 and §B.7."""

    name: str
    slack_per_channel: Rules
    slack_overall: Rules
    teams_per_conversation: Rules
    teams_per_tenant: Rules

    def halved(self, name: str) -> FakeLimits:
        def half(rules: Rules) -> Rules:
            return tuple((max(1, count // 2), seconds) for count, seconds in rules)

        return FakeLimits(
            name,
            half(self.slack_per_channel),
            half(self.slack_overall),
            half(self.teams_per_conversation),
            half(self.teams_per_tenant),
        )

    def overall(self, platform: str) -> Rules:
        return self.slack_overall if platform == "slack" else self.teams_per_tenant


# Slack: chat.postMessage "about 1 per second per channel, short bursts allowed", modelled as the
# dispatcher's own 3 per 3 s; the workspace-wide limit is not published, so the dispatcher's 20/s
# is the fake's too. Teams, per bot per conversation 7/1 s, 8/2 s, 60/30 s, 1,800/h (send and
# create conversation); per app per tenant 30 requests/s (Microsoft's pages say 30 or 50: the
# lower one).
DOCUMENTED = FakeLimits(
    "documented",
    slack_per_channel=((3, 3.0),),
    slack_overall=((20, 1.0),),
    teams_per_conversation=((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0)),
    teams_per_tenant=((30, 1.0),),
)
STRICTER = DOCUMENTED.halved("half")


def enforce(slack: FakeSlackApi, connector: FakeBotConnector, limits: FakeLimits) -> None:
    def channel(call: RecordedCall) -> str:
        return dm_channel_for(str(call.params.get("channel", "")))

    slack.enforce_rate("chat.postMessage", limits.slack_per_channel, per_key=channel)
    slack.enforce_rate("chat.postMessage", limits.slack_overall)
    # Per thread: a conversation's sends; a create is keyed by the person it is with (the id of
    # the conversation it makes is not in the request). With one nudge per DM this rule never
    # binds here; it is enforced as documented all the same.
    connector.enforce_rate(TEAMS_CALLS, limits.teams_per_conversation, per_key=_conversation)
    connector.enforce_rate(TEAMS_CALLS, limits.teams_per_tenant)


def _conversation(call: RecordedCall) -> str:
    if "conversation_id" in call.params:
        return str(call.params["conversation_id"])
    members = (call.body or {}).get("members") or [{}]
    return f"with:{members[0].get('id', '')}"


def most_accepted(rules: Rules, seconds: float) -> float:
    """The most calls `rules` accept in `seconds` from a standing start (sliding windows)."""
    return min(count * (math.floor(seconds / window) + 1) for count, window in rules)


# -- the organisation ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    key: str
    platform: str
    user: str


def midday_zone(now: datetime) -> str:
    """A fixed-offset zone where it is around noon now, so "today" stays today for the run."""
    offset = max(-12, min(14, 12 - now.hour))
    # POSIX-style names: Etc/GMT-3 is three hours *ahead* of UTC.
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def population(slack: int, teams: int, prefix: str) -> list[Person]:
    """Slack and Teams people interleaved evenly, so every outbox batch holds both."""
    total, people = slack + teams, []
    for i in range(total):
        on_teams = (i + 1) * teams // total > i * teams // total
        user = f"29:1{prefix}{i:06d}" if on_teams else f"U{prefix.upper()}{i:07d}"
        people.append(Person(f"{prefix}{i}", "teams" if on_teams else "slack", user))
    return people


def organisation(people: Sequence[Person], now: datetime) -> OrganisationConfig:
    """Everyone in one midday zone, every day a working day, one campaign due at 00:00 today."""
    zone = midday_zone(now)
    today = now.astimezone(ZoneInfo(zone)).date()
    all_week = {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]}
    return OrganisationConfig.model_validate(
        {
            "organisation": {"name": "Bench University", "timezone": zone},
            "people": [
                {
                    "id": p.key,
                    "name": f"Person {p.key}",
                    "timezone": zone,
                    p.platform: p.user,
                    "working_hours": all_week,
                }
                for p in people
            ],
            "nudges": {"window": {"start": "00:00", "end": "23:59"}},
            "campaigns": [
                {
                    "id": "hello",
                    "name": "Say hello",
                    "audience": {"everyone": True},
                    "cadence": {"once": today.isoformat(), "at": "00:00"},
                    "messages": {"watch": ["Hi {first_name}! Could you react to a post?"]},
                }
            ],
        }
    )


# -- one run -----------------------------------------------------------------------------------


@dataclass
class PlatformResult:
    platform: str
    people: int = 0
    planned: int = 0
    """People with a nudge planned (one each: one campaign, one slot)."""
    outbox: int = 0
    delivered: int = 0
    """People with at least one nudge accepted by the fake (their DM)."""
    duplicates: int = 0
    """People with more than one nudge accepted."""
    lost: int = 0
    """People with a nudge planned and none accepted."""
    calls: int = 0
    accepted_calls: int = 0
    throttled: int = 0
    """429s the fake answered (slack_sdk retries one itself; the rest reach the outbox)."""
    rate_limited_in_outbox: int = 0
    outbox_status: dict[str, int] = field(default_factory=dict)
    possible_duplicate: int = 0
    wall_s: float | None = None
    """From the dispatcher's start to the platform's last accepted call."""
    allowed_per_s: float = 0.0
    achieved_per_s: float | None = None
    share: float | None = None
    """Accepted calls / the most the fake's overall rule accepts in `wall_s`."""
    nudges_per_s: float | None = None


@dataclass
class Run:
    database: str
    limits: str
    slack_people: int
    teams_people: int
    sync_s: float = 0.0
    plan_s: float = 0.0
    planned: int = 0
    outbox_s: float = 0.0
    outbox: int = 0
    delivery_s: float = 0.0
    timed_out: bool = False
    timeout_s: float = 0.0
    cpu_percent: float = 0.0
    warnings: list[str] = field(default_factory=list)
    platforms: dict[str, PlatformResult] = field(default_factory=dict)

    @property
    def target_applies(self) -> bool:
        return self.limits == DOCUMENTED.name

    @property
    def passed(self) -> bool:
        results = [p for p in self.platforms.values() if p.people]
        clean = all(p.duplicates == 0 and p.lost == 0 for p in results) and not self.timed_out
        if not self.target_applies:
            return clean
        return clean and all(p.share is not None and p.share >= TARGET_SHARE for p in results)


class WarningLog(logging.Handler):
    """Keeps the bot's warnings (rows failed for good, unexpected errors) for the report."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith(EXPECTED_WARNING):
            return
        self.lines.append(f"{record.name}: {record.getMessage()}"[:300])


def settings_for(database_url: str, slack: FakeSlackApi, connector: FakeBotConnector) -> Settings:
    """Production defaults (outbox poll 1 s, dispatcher batch 50, concurrency 8), fakes' URLs."""
    return Settings(
        database_url=database_url,
        log_format="text",
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_base_url=slack.base_url,
        teams_service_url=connector.service_url,
        teams_tenant_id=TENANT,
    )


def expected_seconds(people: Sequence[Person], limits: FakeLimits) -> float:
    """Delivery time at the fakes' overall limits (a Teams first contact is 2 calls)."""
    slack = sum(p.platform == "slack" for p in people)
    teams = sum(p.platform == "teams" for p in people)
    (slack_count, slack_window), *_ = limits.slack_overall
    (teams_count, teams_window), *_ = limits.teams_per_tenant
    return max(slack * slack_window / slack_count, 2 * teams * teams_window / teams_count)


async def measure(
    database_url: str,
    label: str,
    limits: FakeLimits,
    people: list[Person],
    deadline_s: float | None,
) -> Run:
    run = Run(
        label,
        limits.name,
        sum(p.platform == "slack" for p in people),
        sum(p.platform == "teams" for p in people),
    )
    run.timeout_s = deadline_s or 3 * expected_seconds(people, limits) + 60
    await upgrade_async(database_url)
    warnings = WarningLog()
    logging.getLogger().addHandler(warnings)
    try:
        async with FakeSlackApi() as slack, FakeBotConnector() as connector:
            enforce(slack, connector, limits)
            org = organisation(people, datetime.now(UTC))
            bot = build(settings_for(database_url, slack, connector), organisation=org)
            try:
                await write_outbox(bot, run)
                began = await deliver(bot, run)
                figures = await stored_figures(bot)
                rate_limited = {
                    p: bot.metrics.registry.get_sample_value(
                        "evangelist_outbox_dispatch_errors_total",
                        {"platform": p, "kind": "rate_limited"},
                    )
                    for p in ("slack", "teams")
                }
            finally:
                await bot.stop()
            tally(run, people, limits, began, figures, slack, connector)
            for platform, count in rate_limited.items():
                run.platforms[platform].rate_limited_in_outbox = int(count or 0)
    finally:
        logging.getLogger().removeHandler(warnings)
    run.warnings = warnings.lines
    return run


async def write_outbox(bot: Evangelist, run: Run) -> None:
    """Organisation sync, planning, and the due nudges written to the outbox (all timed)."""
    assert bot.nudges is not None
    began = time.perf_counter()
    await bot.prepare()
    run.sync_s = time.perf_counter() - began
    began = time.perf_counter()
    run.planned = await bot.nudges.plan()
    run.plan_s = time.perf_counter() - began
    began = time.perf_counter()
    # One `nudges.send` job writes at most 2,000; loop as its next runs would (30 s apart).
    while written := await bot.nudges.send_due():
        run.outbox += written
    run.outbox_s = time.perf_counter() - began
    progress(
        f"{run.database}/{run.limits}: organisation {run.sync_s:.1f} s, {run.planned:,} planned "
        f"in {run.plan_s:.1f} s, {run.outbox:,} to the outbox in {run.outbox_s:.1f} s"
    )


async def deliver(bot: Evangelist, run: Run) -> float:
    """Run the dispatcher (and the lease recovery job) until nothing is left to send.

    Returns the monotonic time the dispatcher started (the fakes stamp calls on that clock).
    """
    began, cpu = time.monotonic(), time.process_time()
    await bot.start(scheduler=False)
    last_recover = last_note = began
    while True:
        await asyncio.sleep(0.5)
        now = time.monotonic()
        left = await unfinished(bot)
        if not left:
            break
        if now - began > run.timeout_s:
            run.timed_out = True
            progress(f"{run.database}/{run.limits}: TIMED OUT with {left:,} row(s) unfinished")
            break
        if now - last_recover >= RECOVER_EVERY_S:
            await bot.dispatcher.recover_expired()
            last_recover = now
        if now - last_note >= 15:
            progress(f"{run.database}/{run.limits}: {left:,} left after {now - began:.0f} s")
            last_note = now
    run.delivery_s = time.monotonic() - began
    run.cpu_percent = 100 * (time.process_time() - cpu) / run.delivery_s
    return began


async def unfinished(bot: Evangelist) -> int:
    """Outbox rows neither sent nor failed for good."""
    async with bot.db.transaction() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(OutboxRow)
            .where(OutboxRow.status.not_in([outbox.SENT, outbox.FAILED]))
        )
    return int(left or 0)


# -- counting what arrived ----------------------------------------------------------------------

StoredFigures = tuple[set[str], dict[str, dict[str, int]], dict[str, int]]


async def stored_figures(bot: Evangelist) -> StoredFigures:
    """Who has a nudge planned, outbox rows by platform and status, rows flagged as possible
    duplicates by platform."""
    async with bot.db.transaction() as session:
        planned = await session.scalars(
            select(PersonRow.key).join(NudgeRow, NudgeRow.person_id == PersonRow.id)
        )
        by_status = await session.execute(
            select(OutboxRow.platform, OutboxRow.status, func.count()).group_by(
                OutboxRow.platform, OutboxRow.status
            )
        )
        flagged = await session.execute(
            select(OutboxRow.platform, func.count())
            .where(OutboxRow.possible_duplicate.is_(True))
            .group_by(OutboxRow.platform)
        )
        statuses: dict[str, dict[str, int]] = {}
        for platform, status, count in by_status.all():
            statuses.setdefault(platform, {})[status] = int(count)
        return set(planned.all()), statuses, {p: int(n) for p, n in flagged.all()}


def deliveries(
    people: Sequence[Person], slack: FakeSlackApi, connector: FakeBotConnector
) -> dict[str, int]:
    """Nudges each person received, as the fakes stored them: messages in their Slack DM,
    activities in their Teams 1:1 conversation (the SDK puts the conversation in the body)."""
    with_member = {
        conversation: member.get("id", "")
        for conversation, params in connector.conversations.items()
        for member in params.get("members") or []
    }
    on_teams = Counter(
        with_member.get((activity.get("conversation") or {}).get("id", ""), "?")
        for activity in connector.activities()
    )
    return {
        p.key: len(slack.messages(p.user)) if p.platform == "slack" else on_teams[p.user]
        for p in people
    }


def tally(
    run: Run,
    people: Sequence[Person],
    limits: FakeLimits,
    began: float,
    figures: StoredFigures,
    slack: FakeSlackApi,
    connector: FakeBotConnector,
) -> None:
    planned, statuses, flagged = figures
    received = deliveries(people, slack, connector)
    fakes: dict[str, tuple[FakeHttpServer, tuple[str, ...]]] = {
        "slack": (slack, ("chat.postMessage",)),
        "teams": (connector, TEAMS_CALLS),
    }
    for platform, (fake, names) in fakes.items():
        mine = [p for p in people if p.platform == platform]
        result = PlatformResult(platform, people=len(mine))
        result.planned = sum(p.key in planned for p in mine)
        result.delivered = sum(received[p.key] > 0 for p in mine)
        result.duplicates = sum(received[p.key] > 1 for p in mine)
        result.lost = sum(p.key in planned and not received[p.key] for p in mine)
        result.outbox_status = statuses.get(platform, {})
        result.outbox = sum(result.outbox_status.values())
        result.possible_duplicate = flagged.get(platform, 0)
        calls = [c for c in fake.calls if c.name in names]
        accepted = [c for c in calls if not c.failed]
        result.calls, result.accepted_calls = len(calls), len(accepted)
        result.throttled = sum(c.throttled for c in calls)
        rules = limits.overall(platform)
        result.allowed_per_s = rules[0][0] / rules[0][1]
        if accepted:
            wall = max(c.received_at for c in accepted) - began
            result.wall_s = wall
            result.achieved_per_s = len(accepted) / wall
            result.share = len(accepted) / most_accepted(rules, wall)
            result.nudges_per_s = result.delivered / wall
        run.platforms[platform] = result


# -- the report --------------------------------------------------------------------------------


def fmt(value: float | None, pattern: str = "{:.1f}") -> str:
    return "-" if value is None else pattern.format(value)


def table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        pairs = enumerate(zip(cells, widths, strict=True))
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in pairs)

    return [line(headers), "  ".join("-" * w for w in widths), *map(line, rows)]


def verdict(run: Run, result: PlatformResult) -> str:
    clean = result.duplicates == 0 and result.lost == 0 and not run.timed_out
    if not run.target_applies:
        return "ok" if clean else "FAIL"
    reached = result.share is not None and result.share >= TARGET_SHARE
    return "PASS" if clean and reached else "FAIL"


def run_report(run: Run) -> list[str]:
    title = "documented limits" if run.target_applies else "half the documented limits"
    per_s = run.outbox / run.outbox_s if run.outbox_s else 0.0
    lines = [
        f"{run.database}, fakes at {title}: {run.slack_people:,} Slack + "
        f"{run.teams_people:,} Teams people, one campaign due now",
        f"  organisation sync {run.sync_s:.1f} s; planned {run.planned:,} in {run.plan_s:.1f} s; "
        f"{run.outbox:,} to the outbox in {run.outbox_s:.1f} s ({per_s:,.0f}/s)",
        f"  delivery {run.delivery_s:.1f} s{' (TIMED OUT)' if run.timed_out else ''}; this "
        f"process (bot and fakes) used {run.cpu_percent:.0f} % of one core meanwhile",
        "",
    ]
    headers = [
        "platform", "people", "planned", "outbox", "delivered", "dup", "lost", "calls",
        "accepted", "429s", "429→outbox", "wall s", "achieved/s", "allowed/s", "share",
        "nudges/s", "verdict",
    ]  # fmt: skip
    rows = []
    for result in run.platforms.values():
        if not result.people:
            continue
        rows.append(
            [
                result.platform,
                f"{result.people:,}",
                f"{result.planned:,}",
                f"{result.outbox:,}",
                f"{result.delivered:,}",
                str(result.duplicates),
                str(result.lost),
                f"{result.calls:,}",
                f"{result.accepted_calls:,}",
                f"{result.throttled:,}",
                f"{result.rate_limited_in_outbox:,}",
                fmt(result.wall_s),
                fmt(result.achieved_per_s),
                f"{result.allowed_per_s:g}",
                fmt(None if result.share is None else 100 * result.share, "{:.1f} %"),
                fmt(result.nudges_per_s),
                verdict(run, result),
            ]
        )
    lines += ["  " + line for line in table(headers, rows)]
    return lines + [f"  {note}" for note in run_notes(run)]


def run_notes(run: Run) -> list[str]:
    """Facts worth reading next to the figures: what failed, where 429s came from."""
    notes = []
    for result in run.platforms.values():
        if not result.people:
            continue
        unfinished = {k: v for k, v in result.outbox_status.items() if k != outbox.SENT}
        if unfinished:
            notes.append(f"{result.platform}: outbox rows not sent: {unfinished}")
        if result.possible_duplicate:
            notes.append(
                f"{result.platform}: {result.possible_duplicate} row(s) flagged possible_duplicate"
            )
        if result.delivered and result.accepted_calls != result.delivered:
            calls = result.accepted_calls / result.delivered
            notes.append(
                f"{result.platform}: {calls:.2f} accepted calls per nudge (a Teams first "
                "contact is create conversation + send); the allowed rate counts calls"
            )
        if run.target_applies and result.throttled:
            notes.append(
                f"{result.platform}: {result.throttled:,} 429s at the documented limit: the bot "
                "sent faster than the platform accepts"
            )
        if run.target_applies and result.share is not None and result.share < TARGET_SHARE:
            why = (
                "; no 429s, so the platform was never the limit: the bot sent slower than allowed"
                if not result.throttled
                else ""
            )
            notes.append(
                f"{result.platform}: share {100 * result.share:.1f} % is below the "
                f"{100 * TARGET_SHARE:.0f} % target{why}"
            )
    if run.warnings:
        notes.append(f"{len(run.warnings)} warning(s) logged by the bot, first: {run.warnings[0]}")
    return notes


LEGEND = """\
people/planned/outbox: people on the platform / with a nudge planned / outbox rows written.
delivered: people whose DM holds the nudge on the fake; dup: people with more than one;
lost: planned but not delivered. calls/accepted: requests to the sending routes / those the
fake accepted; 429s: answered 429 (slack_sdk retries one after Retry-After by itself);
429→outbox: rate-limit errors that reached the dispatcher (retried from the outbox).
wall s: dispatcher start to the last accepted call. achieved/s: accepted calls / wall s.
share: accepted calls / the most the fake's overall rule (c calls per s seconds) accepts in
wall s, c * (floor(wall / s) + 1): a sender that uses every slot scores 100 %.
Target (documented limits only): share ≥ 90 %, no duplicates, nothing lost.
The half-limit run shows 429 handling: no duplicates, nothing lost."""


def print_report(runs: Sequence[Run]) -> None:
    lines = ["Nudge delivery against rate-limiting fake platforms (real clock, loopback HTTP)", ""]
    for run in runs:
        lines += [*run_report(run), ""]
    lines.append(LEGEND)
    print("\n".join(lines))


def as_json(runs: Sequence[Run]) -> str:
    limits = {limit.name: asdict(limit) for limit in (DOCUMENTED, STRICTER)}
    data = [{**asdict(run), "pass": run.passed} for run in runs]
    return json.dumps({"target_share": TARGET_SHARE, "limits": limits, "runs": data}, indent=1)


# -- main -----------------------------------------------------------------------------------


async def scratch_postgres(server_url: str, *, create: bool) -> str:
    """Create (or drop) the scratch database on the server `server_url` points at."""
    import asyncpg

    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)')
        if create:
            await connection.execute(f'CREATE DATABASE "{SCRATCH_DATABASE}"')
    finally:
        await connection.close()
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{SCRATCH_DATABASE}"))


@contextlib.asynccontextmanager
async def fresh_database(target: str, work: Path, name: str) -> AsyncIterator[str]:
    if target == "sqlite":
        yield f"sqlite:///{work / f'{name}.db'}"
        return
    url = await scratch_postgres(target, create=True)
    try:
        yield url
    finally:
        await scratch_postgres(target, create=False)


async def run_all(args: argparse.Namespace, work: Path) -> list[Run]:
    people = population(args.slack, args.teams, "p")
    fewer = population(
        round(args.slack * STRICTER_PEOPLE), round(args.teams * STRICTER_PEOPLE), "p"
    )
    variants = [(DOCUMENTED, people)] + ([] if args.no_stricter else [(STRICTER, fewer)])
    runs = []
    for target in args.database_url or ["sqlite"]:
        label = "sqlite" if target == "sqlite" else "postgresql"
        for limits, who in variants:
            progress(f"{label}/{limits.name}: {len(who):,} people")
            async with fresh_database(target, work, f"{label}-{limits.name}") as url:
                runs.append(await measure(url, label, limits, who, args.timeout))
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--slack", type=int, help="Slack people (3,000; --quick 400)")
    parser.add_argument("--teams", type=int, help="Teams people (1,000; --quick 150)")
    parser.add_argument(
        "--database-url",
        action="append",
        help="'sqlite' (default: a temporary file) or a PostgreSQL server URL, where a scratch "
        f"database {SCRATCH_DATABASE} is created and dropped; repeatable",
    )
    parser.add_argument("--quick", action="store_true", help="fewer people: under a minute")
    parser.add_argument("--no-stricter", action="store_true", help="skip the half-limit run")
    parser.add_argument(
        "--timeout", type=float, help="seconds per delivery phase (default: 3 x expected + 60)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = parser.parse_args(argv)
    args.slack = args.slack if args.slack is not None else (400 if args.quick else 3000)
    args.teams = args.teams if args.teams is not None else (150 if args.quick else 1000)
    if args.slack < 0 or args.teams < 0 or args.slack + args.teams == 0:
        parser.error("--slack and --teams must be >= 0 and not both 0")
    errors = logging.StreamHandler(sys.stderr)
    errors.setLevel(logging.ERROR)  # warnings are collected for the report instead
    logging.getLogger().addHandler(errors)
    logging.getLogger().setLevel(logging.WARNING)
    work = Path(tempfile.mkdtemp(prefix="evangelist-nudge-delivery-"))
    try:
        runs = asyncio.run(run_all(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(as_json(runs) if args.json else "", end="\n" if args.json else "")
    if not args.json:
        print_report(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
