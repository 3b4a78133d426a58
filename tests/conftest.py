"""Shared fixtures: a fresh database per test (SQLite, or PostgreSQL in CI), a frozen clock,
the local fake platforms, and the real aiohttp app served on loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import text

from bot.app import Evangelist, build
from bot.config.organisation import OrganisationConfig, load_organisation
from bot.config.settings import Settings
from bot.core.clock import FrozenClock
from bot.storage.database import create_engine
from bot.storage.migrate import upgrade
from bot.storage.models import Base
from tests.fakes.bot_connector import FakeBotConnector
from tests.fakes.slack_api import FakeSlackApi

ROOT = Path(__file__).resolve().parent.parent
DEMO_ORG = ROOT / "examples" / "organisation.yaml"
POSTGRES_URL = os.environ.get("EVANGELIST_TEST_POSTGRES_URL", "")
BACKEND = os.environ.get("EVANGELIST_TEST_BACKEND", "sqlite")
SIGNING_SECRET = "test-signing-secret-0123456789"
BOT_TOKEN = "xoxb-test-token-0001"


def pytest_report_header() -> list[str]:
    where = POSTGRES_URL or "not set: PostgreSQL-only tests are SKIPPED"
    return [f"database backend: {BACKEND}; EVANGELIST_TEST_POSTGRES_URL: {where}"]


def pytest_configure(config: pytest.Config) -> None:
    if BACKEND == "postgresql" and not POSTGRES_URL:
        raise pytest.UsageError(
            "EVANGELIST_TEST_BACKEND=postgresql needs EVANGELIST_TEST_POSTGRES_URL"
        )


requires_postgres = pytest.mark.skipif(
    not POSTGRES_URL, reason="EVANGELIST_TEST_POSTGRES_URL is not set (CI sets it)"
)


# -- databases ---------------------------------------------------------------------------------


def _pg_admin_url(database: str) -> str:
    base, _, _ = POSTGRES_URL.rpartition("/")
    return f"{base}/{database}"


async def create_pg_database(name: str) -> str:
    """Create an empty PostgreSQL database and return its URL."""
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        await connection.execute(text(f'CREATE DATABASE "{name}"'))
    await engine.dispose()
    return _pg_admin_url(name)


async def drop_pg_database(name: str) -> None:
    engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    async with engine.connect() as connection:
        await connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    await engine.dispose()


@pytest.fixture(scope="session")
def migrated_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per test session; each test gets a copy or a truncated one."""
    if BACKEND == "postgresql":
        name = f"evangelist_test_{os.getpid()}"
        url = asyncio.run(create_pg_database(name))
        upgrade(url)
        yield url
        asyncio.run(drop_pg_database(name))
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        upgrade(f"sqlite:///{path}")
        yield str(path)


@pytest.fixture
async def database_url(migrated_template: str, tmp_path: Path) -> AsyncIterator[str]:
    if BACKEND == "postgresql":
        engine = create_engine(migrated_template)
        async with engine.begin() as connection:
            tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
            await connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
        await engine.dispose()
        yield migrated_template
    else:
        path = tmp_path / "evangelist.db"
        shutil.copyfile(migrated_template, path)
        yield f"sqlite:///{path}"


# -- time, settings, organisation ---------------------------------------------------------------


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(datetime(2026, 3, 2, 10, 0, tzinfo=UTC))


@pytest.fixture(scope="session")
def organisation() -> OrganisationConfig:
    return load_organisation(DEMO_ORG)


def make_settings(database_url: str, **changes: Any) -> Settings:
    return Settings(database_url=database_url, log_format="text").with_overrides(**changes)


# -- fakes -------------------------------------------------------------------------------------


@pytest.fixture
async def fake_slack(clock: FrozenClock) -> AsyncIterator[FakeSlackApi]:
    async with FakeSlackApi() as fake:
        fake.clock = lambda: clock.now().timestamp()
        yield fake


@pytest.fixture
async def fake_connector() -> AsyncIterator[FakeBotConnector]:
    async with FakeBotConnector() as fake:
        yield fake


# -- the real app on loopback -------------------------------------------------------------------


@dataclass
class RunningBot:
    bot: Evangelist
    url: str

    async def drain(self) -> int:
        return await self.bot.dispatcher.drain()


async def start_bot(
    bot: Evangelist, *, background: bool = True
) -> tuple[RunningBot, web.AppRunner]:
    await bot.prepare()
    assert bot.web is not None
    runner = web.AppRunner(bot.web, handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    if background:
        await bot.start(scheduler=False)
    return RunningBot(bot, f"http://127.0.0.1:{port}"), runner


@asynccontextmanager
async def serving(bot: Evangelist) -> AsyncIterator[RunningBot]:
    """The bot served on loopback with its dispatcher running; shut down in order afterwards."""
    running, runner = await start_bot(bot)
    try:
        yield running
    finally:
        await runner.shutdown()
        await bot.stop()
        await runner.cleanup()


@pytest.fixture
async def slack_bot(
    database_url: str,
    fake_slack: FakeSlackApi,
    clock: FrozenClock,
    organisation: OrganisationConfig,
) -> AsyncIterator[RunningBot]:
    """The app with Slack in HTTP mode, pointed at the fake Slack Web API, dispatcher running."""
    settings = make_settings(
        database_url,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_base_url=fake_slack.base_url,
        outbox_poll_seconds=0.05,
    )
    async with serving(build(settings, clock=clock, organisation=organisation)) as running:
        yield running


@pytest.fixture
async def teams_bot(
    database_url: str, clock: FrozenClock, organisation: OrganisationConfig
) -> AsyncIterator[RunningBot]:
    """The app with Teams auth off (empty TEAMS_APP_ID), dispatcher running."""
    settings = make_settings(database_url, outbox_poll_seconds=0.05)
    async with serving(build(settings, clock=clock, organisation=organisation)) as running:
        yield running


def slack_headers(
    body: str,
    *,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    content_type: str = "application/json",
) -> dict[str, str]:
    """Headers Slack sends: v0 HMAC-SHA256 over 'v0:{timestamp}:{body}'."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": content_type,
    }


def event_envelope(event: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """The Events API envelope around an event, as Slack documents it."""
    return {
        "token": "verification-token-unused",
        "team_id": "T0001",
        "api_app_id": "A0EVANGELIST",
        "event": event,
        "type": "event_callback",
        "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0001", "user_id": "U0BOT", "is_bot": True}],
    }
