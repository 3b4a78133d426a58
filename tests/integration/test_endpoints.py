"""/healthz, /readyz, /metrics and the behaviour every endpoint shares."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from bot.app import build
from bot.core.clock import FrozenClock
from tests.conftest import RunningBot, make_settings, start_bot


async def test_health_ready_and_metrics(teams_bot: RunningBot) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{teams_bot.url}/healthz") as response:
            assert response.status == 200
            assert response.headers["X-Request-Id"]
        async with http.get(f"{teams_bot.url}/readyz") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ready"
        async with http.get(f"{teams_bot.url}/metrics") as response:
            assert response.status == 200
            text = await response.text()
    assert "evangelist_outbox_pending 0.0" in text
    assert "evangelist_scheduler_leader" in text
    assert 'evangelist_http_requests_total{route="/readyz",status="200"} 1.0' in text


async def test_readyz_says_not_migrated(tmp_path: Path, clock: FrozenClock) -> None:
    settings = make_settings(f"sqlite:///{tmp_path / 'empty.db'}")
    bot = build(settings, clock=clock)
    running, runner = await start_bot(bot, background=False)
    try:
        async with aiohttp.ClientSession() as http, http.get(f"{running.url}/readyz") as response:
            assert response.status == 503
            assert (await response.json())["database"] == "not migrated"
    finally:
        await runner.cleanup()
        await bot.stop()


async def test_scheduler_leader_metric(database_url: str, clock: FrozenClock) -> None:
    bot = build(make_settings(database_url), clock=clock)
    running, runner = await start_bot(bot, background=False)
    try:
        await bot.scheduler.start()
        for _ in range(100):
            if bot.scheduler.leadership.is_leader:
                break
            await bot.scheduler._campaign  # type: ignore[misc]
        async with aiohttp.ClientSession() as http, http.get(f"{running.url}/metrics") as response:
            assert "evangelist_scheduler_leader 1.0" in await response.text()
        recovered = bot.metrics.jobs.labels("outbox.recover", "ok")
        before = recovered._value.get()  # it also runs once at start, in the scheduler's time
        await bot.scheduler.run_now("outbox.recover")
        await bot.scheduler.run_now("events.prune")
        assert recovered._value.get() >= before + 1
        assert bot.metrics.jobs.labels("events.prune", "ok")._value.get() == 1
    finally:
        await runner.cleanup()
        await bot.stop()
    assert bot.metrics.scheduler_leader._value.get() == 0


async def test_unknown_path_is_404_not_500(teams_bot: RunningBot) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{teams_bot.url}/nope", data=b"x") as response:
            assert response.status == 404
        async with http.get(f"{teams_bot.url}/api/messages") as response:
            assert response.status == 405
