"""The dispatcher keeps to the platforms' documented rates and orders messages per destination."""

from __future__ import annotations

from datetime import timedelta

from bot.app import build
from bot.core.clock import FrozenClock
from bot.core.types import Address, OutgoingMessage, Platform
from bot.delivery import outbox
from bot.delivery.ratelimit import SLACK_LIMITS, RateLimiter
from bot.platforms.console.platform import ConsolePlatform
from tests.conftest import make_settings


async def test_per_channel_rate_defers_instead_of_bursting(
    database_url: str, clock: FrozenClock
) -> None:
    recorder = ConsolePlatform()
    slept: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds=seconds)

    bot = build(
        make_settings(database_url), clock=clock, platforms={"slack": recorder}, sleep=fake_sleep
    )
    bot.dispatcher.limiters["slack"] = RateLimiter(SLACK_LIMITS)
    try:
        async with bot.db.transaction() as session:
            for i in range(5):
                await outbox.enqueue(
                    session,
                    key=f"burst-{i}",
                    address=Address.to_channel(Platform.SLACK, "C0BUSY"),
                    message=OutgoingMessage(text=f"number {i}"),
                    now=clock.now(),
                )
            await outbox.enqueue(
                session,
                key="elsewhere",
                address=Address.to_channel(Platform.SLACK, "C0QUIET"),
                message=OutgoingMessage(text="other channel"),
                now=clock.now(),
            )
        await bot.dispatcher.dispatch_once()
        sent = [e.message.text for e in recorder.entries.values()]
        # Three to the busy channel fit in its window; the quiet channel is not held up.
        assert [t for t in sent if t.startswith("number")] == ["number 0", "number 1", "number 2"]
        assert "other channel" in sent
        assert await bot.dispatcher.dispatch_once() == 0  # the rest wait for the window
        clock.advance(timedelta(seconds=4))
        await bot.dispatcher.drain()
        numbers = [
            e.message.text for e in recorder.entries.values() if e.message.text.startswith("number")
        ]
        assert numbers == [f"number {i}" for i in range(5)]  # in order, each once
        assert slept == []  # waits past two seconds put rows back instead of holding a worker
        async with bot.db.transaction() as session:
            stats = await outbox.stats(session, clock.now())
        assert stats["sent"] == 6 and stats["pending"] == 0
    finally:
        await bot.stop()
