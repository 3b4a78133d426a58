"""`evangelist serve` killed with SIGKILL while it sends a campaign, then started again on the
same database: every person gets their nudge exactly once.

The crash tests at the end of test_nudges.py stop a bot between two chosen statements. Here the
real process dies wherever it is (twice), with messages in flight to a fake Slack on loopback,
and the next process has to clean up after it: rows it had claimed, rows whose send may or may
not have arrived, and rows it never got to. (How far the first process got with writing the
nudges to the outbox depends on the machine: on PostgreSQL it is often killed between two of
those batches, and the next process claims the remaining nudges.)
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Awaitable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import yaml
from sqlalchemy import select, update

from bot.storage.database import Database
from bot.storage.models import NudgeRow, OutboxRow
from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.fakes import RecordedCall
from tests.fakes.slack_api import FakeSlackApi

T = TypeVar("T")

PEOPLE = 300
POST = "chat.postMessage"
NUDGE = "Hi {first_name}! One small step for our page today?"
EVERY_DAY = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
SETTLE_SECONDS = 60.0
"""The last run sends ~290 nudges at Slack's 20/s after reconciling at 15 s: ~30 s at most."""
IN_FLIGHT = 10.0
"""How long the stalled posts stay unanswered: far longer than it takes to kill the process,
far shorter than the ~15 s before the last process reconciles them."""


# -- the organisation ------------------------------------------------------------------------------


def zone_at_midday(now: datetime) -> str:
    """A fixed-offset zone where it is now between 12:00 and 13:00: the campaign's day and the
    window hold for the whole test, whatever the hour the suite runs at."""
    ahead = 12 - now.hour
    # The Etc names count the POSIX way round: Etc/GMT-3 is three hours ahead of UTC.
    return "Etc/GMT" if ahead == 0 else f"Etc/GMT{-ahead:+d}"


def write_organisation(path: Path, now: datetime) -> None:
    """PEOPLE people on Slack and one campaign, due since midnight (their time) and allowed now."""
    zone = zone_at_midday(now)
    today = now.astimezone(ZoneInfo(zone)).date()
    organisation = {
        "organisation": {"name": "Crash Test College", "timezone": zone},
        "people": [
            {
                "id": f"p{n:03d}",
                "name": f"Pat{n:03d} Example",
                "timezone": zone,
                "slack": slack_id(n),
                "working_hours": {"days": EVERY_DAY},
            }
            for n in range(PEOPLE)
        ],
        "nudges": {"window": {"start": "00:00", "end": "23:59"}},
        "campaigns": [
            {
                "id": "now",
                "name": "Right now",
                "audience": {"everyone": True},
                "cadence": {"once": today.isoformat(), "at": "00:00"},
                "messages": {"watch": [NUDGE]},
            }
        ],
    }
    path.write_text(yaml.safe_dump(organisation, sort_keys=False), encoding="utf-8")


def slack_id(n: int) -> str:
    return f"U{n:08d}"


# -- the service -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Service:
    """One `evangelist serve` process; its log is kept for failure messages."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = {**env, "EVANGELIST_PORT": str(free_port())}
        self.lines: list[str] = []
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            self.lines.append(line.decode(errors="replace").rstrip())

    def log(self) -> str:
        return "\n".join(self.lines[-40:])

    async def until(self, waiting: Awaitable[T]) -> T:
        """What `waiting` gives, unless the service exits first."""
        assert self.process is not None
        work = asyncio.ensure_future(waiting)
        exited = asyncio.ensure_future(self.process.wait())
        await asyncio.wait({work, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not work.done():
            work.cancel()
            raise AssertionError(f"serve exited ({self.process.returncode}):\n{self.log()}")
        exited.cancel()
        try:
            return work.result()
        except TimeoutError as error:
            raise AssertionError(f"{str(error)[:400]}\nserve's log:\n{self.log()}") from None

    def holds(self, rows: list[OutboxRow]) -> Counter[str]:
        """The statuses of the rows this process's dispatcher holds (its worker id ends in the
        pid, see `bot.app.build`)."""
        assert self.process is not None
        worker = f"-{self.process.pid}"
        return Counter(r.status for r in rows if (r.claimed_by or "").endswith(worker))

    async def kill(self) -> None:
        """SIGKILL: no shutdown code runs, whatever was in flight stays as it was."""
        assert self.process is not None and self._reader is not None
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        await self._reader

    async def ensure_gone(self) -> None:
        if self.process is not None and self.process.returncode is None:
            await self.kill()


def service_environment(database_url: str, config: Path, fake: FakeSlackApi) -> dict[str, str]:
    # Nothing of the developer's own configuration may reach the service under test.
    own = ("EVANGELIST_", "SLACK_", "TEAMS_", "META_", "OPENAI_", "YOUTUBE_")
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(own)},
        "EVANGELIST_DATABASE_URL": database_url,
        "EVANGELIST_CONFIG": str(config),
        "EVANGELIST_HOST": "127.0.0.1",
        "EVANGELIST_LOG_FORMAT": "text",
        "EVANGELIST_LOG_LEVEL": "INFO",
        "EVANGELIST_OUTBOX_POLL_SECONDS": "0.1",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_BASE_URL": fake.base_url,
    }


# -- what the fake Slack and the database say ------------------------------------------------------


def outbox_key(call: RecordedCall) -> str:
    """The idempotency key the bot tags each Slack message with (its message metadata)."""
    metadata = call.json_field("metadata") or {}
    return str(metadata["event_payload"]["key"])


def people_nudged(fake: FakeSlackApi) -> int:
    return sum(1 for n in range(PEOPLE) if fake.messages(slack_id(n)))


async def outbox_rows(database_url: str) -> list[OutboxRow]:
    database = Database(database_url)
    try:
        async with database.transaction() as session:
            query = select(OutboxRow).where(OutboxRow.idempotency_key.like("nudge:%"))
            return list((await session.scalars(query)).all())
    finally:
        await database.close()


async def nudge_rows(database_url: str) -> list[NudgeRow]:
    database = Database(database_url)
    try:
        async with database.transaction() as session:
            return list((await session.scalars(select(NudgeRow))).all())
    finally:
        await database.close()


async def let_leases_run_out(database_url: str) -> None:
    """What a minute of waiting would do before the next start: the dead process's leases end.

    The dispatcher's lease is 60 s and `serve` has no setting for it, so waiting for real would
    take the test past a minute per kill. Moving `lease_until` into the past changes nothing
    else: the next process still finds the rows claimed or `sending` and settles them its own
    way (`Dispatcher.recover_expired`, every 15 s).
    """
    database = Database(database_url)
    try:
        async with database.transaction() as session:
            await session.execute(
                update(OutboxRow)
                .where(OutboxRow.status.in_(("claimed", "sending")))
                .values(lease_until=datetime.now(UTC) - timedelta(seconds=1))
            )
    finally:
        await database.close()


async def stalled_posts_landed(fake: FakeSlackApi, stalled: set[str]) -> None:
    """Wait until Slack has kept the posts it was still working on when the process died.

    A real lease (60 s, renewed when a send starts) outlasts any request in flight; the test
    ends leases early (`let_leases_run_out`), so it waits for those requests itself. Otherwise
    the next process would look for the message before Slack stored it, and send it again.
    """
    channels = {
        str(call.params["channel"]) for call in fake.calls_to(POST) if outbox_key(call) in stalled
    }
    deadline = time.monotonic() + IN_FLIGHT + 10
    # The fake stores a stalled post when it finally answers: poll its state.
    while not all(fake.messages(channel) for channel in channels):
        assert time.monotonic() < deadline, "the stalled posts never landed"
        await asyncio.sleep(0.05)


async def all_settled(database_url: str) -> list[OutboxRow]:
    """The nudges' outbox rows once every one is sent or failed for good."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        rows = await outbox_rows(database_url)
        if len(rows) == PEOPLE and all(r.status in ("sent", "failed") for r in rows):
            return rows
        if time.monotonic() > deadline:
            raise TimeoutError(f"outbox after {SETTLE_SECONDS}s: {Counter(r.status for r in rows)}")
        # The database is another process's: asking again shortly is the only way to watch it.
        await asyncio.sleep(0.2)


# -- the test --------------------------------------------------------------------------------------


async def test_a_killed_service_sends_every_nudge_exactly_once_after_restarts(
    database_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "organisation.yaml"
    write_organisation(config, datetime.now(UTC))
    services: list[Service] = []
    async with FakeSlackApi() as fake:
        # The service runs on the real clock and reconciles a send by reading the conversation
        # back from just before it; Slack stamps messages with the real time too.
        fake.clock = time.time
        env = service_environment(database_url, config, fake)

        async def started() -> Service:
            service = Service(env)
            services.append(service)
            await service.start()
            return service

        try:
            stalled, lost = await first_run_dies_mid_campaign(await started(), fake, database_url)
            await stalled_posts_landed(fake, stalled)
            await let_leases_run_out(database_url)
            await second_run_dies_after_its_first_delivery(await started(), fake, database_url)
            await let_leases_run_out(database_url)
            last = await started()
            rows = await last.until(all_settled(database_url))
        finally:
            # The last one is killed too: test_serve.py covers SIGTERM, and everything asserted
            # below is already final once every row is settled.
            for service in services:
                await service.ensure_gone()

    assert_everyone_nudged_once(fake, stalled, lost)
    assert_database_agrees(rows, await nudge_rows(database_url))


async def four_faults_arrived(fake: FakeSlackApi) -> None:
    deadline = time.monotonic() + 10
    # Recorded calls have no event of their own to wait on: poll the fake's list.
    while sum(1 for c in fake.calls_to(POST) if c.fault is not None) < 4:
        assert time.monotonic() < deadline, "the four faulty posts never arrived"
        await asyncio.sleep(0.02)


async def first_run_dies_mid_campaign(
    service: Service, fake: FakeSlackApi, database_url: str
) -> tuple[set[str], set[str]]:
    """Start, let a few nudges through, then stall Slack's answers and kill the process.

    Returns the outbox keys of the stalled posts Slack kept (only the answer is lost) and of
    those it dropped (the request is lost). Both are `sending` when the process dies: the next
    process cannot know which is which without asking Slack.
    """
    await service.until(fake.wait_for(POST, 10, timeout=30, ok_only=True))
    # Nothing else runs between the wait and these lines, so the faults go to the very next
    # posts. Those come from the batch of 50 already claimed (at most 8 of which are in flight),
    # not from a later one, which is claimed only when this one is done: so all four arrive
    # while the first stalled ones are still unanswered.
    fake.fail_next(POST, status=None, delay=IN_FLIGHT, times=2)  # kept, answered late
    fake.fail_next(POST, status=None, delay=IN_FLIGHT, reset=True, times=2)  # dropped
    # Wait for the four faulty posts themselves: a post that arrived before the faults were
    # queued may be recorded after them (recording waits for the fake's lock).
    await service.until(four_faults_arrived(fake))
    await service.kill()

    faults = [(c, c.fault) for c in fake.calls_to(POST) if c.fault is not None]
    stalled = {outbox_key(call) for call, fault in faults if not fault.reset}
    lost = {outbox_key(call) for call, fault in faults if fault.reset}
    assert len(stalled) == 2 and len(lost) == 2
    rows = await outbox_rows(database_url)
    by_key = {r.idempotency_key: r for r in rows}
    assert {by_key[key].status for key in stalled | lost} == {"sending"}
    # The rest of its batch was claimed and never started: it waits for the lease to run out.
    assert service.holds(rows)["claimed"] > 0
    assert 0 < people_nudged(fake) < PEOPLE
    return stalled, lost


async def second_run_dies_after_its_first_delivery(
    service: Service, fake: FakeSlackApi, database_url: str
) -> None:
    """Start again; kill it as soon as it has delivered anything.

    What it leaves behind depends on timing: a batch it had just claimed, the first process's
    rows it was putting back (recovery also runs at start), or nothing but planned nudges.
    """
    delivered = len(fake.calls_to(POST, ok_only=True))
    await service.until(fake.wait_for(POST, delivered + 1, timeout=30, ok_only=True))
    await service.kill()
    assert people_nudged(fake) < PEOPLE


def assert_everyone_nudged_once(fake: FakeSlackApi, stalled: set[str], lost: set[str]) -> None:
    answered = [c for c in fake.calls_to(POST, ok_only=True) if c.params["text"].startswith("Hi")]
    posts = Counter(str(c.params["channel"]) for c in answered)
    assert {user: count for user, count in posts.items() if count != 1} == {}
    assert set(posts) == {slack_id(n) for n in range(PEOPLE)}
    inboxes = {slack_id(n): fake.messages(slack_id(n)) for n in range(PEOPLE)}
    assert {user: len(messages) for user, messages in inboxes.items() if len(messages) != 1} == {}
    for n in range(PEOPLE):
        (message,) = inboxes[slack_id(n)]
        assert message["text"] == NUDGE.format(first_name=f"Pat{n:03d}")
    # A stalled post that Slack kept was found in the conversation, not sent again; a dropped
    # one was sent again (its first try is the only post Slack did not answer).
    keys = Counter(outbox_key(c) for c in fake.calls_to(POST))
    assert {k: keys[k] for k in stalled} == dict.fromkeys(stalled, 1)
    assert {k: keys[k] for k in lost} == dict.fromkeys(lost, 2)


def assert_database_agrees(outbox: list[OutboxRow], nudges: list[NudgeRow]) -> None:
    assert len(nudges) == PEOPLE
    assert len({n.person_id for n in nudges}) == PEOPLE
    assert Counter(n.status for n in nudges) == {"sent": PEOPLE}
    assert Counter(r.status for r in outbox) == {"sent": PEOPLE}
    assert {r.idempotency_key for r in outbox} == {n.key for n in nudges}
    # Slack lets a message be found again by its key, so nothing is flagged as a maybe-repeat.
    assert [r.idempotency_key for r in outbox if r.possible_duplicate] == []
    delivered: set[Any] = {(r.result or {}).get("channel") for r in outbox}
    assert delivered == {f"D{slack_id(n)}" for n in range(PEOPLE)}
