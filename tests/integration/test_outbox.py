"""The outbox's delivery guarantee, with crashes at both dangerous moments.

Real database, real Slack platform client against the fake Slack Web API, a frozen clock.
A crash is simulated by an exception that is not an Exception (it escapes every handler, as a
killed process would stop everything) raised at the chosen moment.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.app import Evangelist, build
from bot.core.clock import FrozenClock
from bot.core.errors import NotSupported
from bot.core.types import Address, MessageRef, OutgoingMessage, Platform
from bot.delivery import outbox
from bot.platforms.slack.inbound import web_client
from bot.platforms.slack.platform import SlackPlatform
from bot.storage.models import OutboxRow
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, make_settings
from tests.fakes.slack_api import FakeSlackApi


class Crash(BaseException):
    """Stands for the process dying: no handler of ours catches a BaseException."""


class CrashingSlack(SlackPlatform):
    """The real Slack client, with a crash before or after the platform call."""

    crash_before_send = False
    crash_after_send = False

    async def _post(
        self, channel: str, message: OutgoingMessage, key: str, **extra: object
    ) -> MessageRef:
        if self.crash_before_send:
            raise Crash("died before sending")
        ref = await super()._post(channel, message, key, **extra)
        if self.crash_after_send:
            raise Crash("died after sending, before recording")
        return ref


class NoReadBack(CrashingSlack):
    """A platform that cannot tell whether a message arrived (like Teams)."""

    async def find_delivered(self, address: Address, key: str, since: object) -> MessageRef | None:
        raise NotSupported("no read-back")


@pytest.fixture
async def slack_outbox(
    database_url: str, fake_slack: FakeSlackApi, clock: FrozenClock
) -> AsyncIterator[tuple[Evangelist, CrashingSlack]]:
    settings = make_settings(
        database_url,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_base_url=fake_slack.base_url,
    )
    platform = CrashingSlack(web_client(settings))
    bot = build(settings, clock=clock, platforms={"slack": platform})
    yield bot, platform
    await bot.stop()


async def _enqueue(bot: Evangelist, key: str, channel: str = "C0NEWS") -> None:
    async with bot.db.transaction() as session:
        await outbox.enqueue(
            session,
            key=key,
            address=Address.to_channel(Platform.SLACK, channel),
            message=OutgoingMessage(text=f"message {key}"),
            now=bot.clock.now(),
        )


async def _row(bot: Evangelist, key: str) -> OutboxRow:
    async with bot.db.transaction() as session:
        row = await session.scalar(select(OutboxRow).where(OutboxRow.idempotency_key == key))
        assert row is not None
        return row


async def test_enqueue_is_idempotent(slack_outbox: tuple[Evangelist, CrashingSlack]) -> None:
    bot, _ = slack_outbox
    await _enqueue(bot, "same")
    await _enqueue(bot, "same")
    async with bot.db.transaction() as session:
        rows = (await session.scalars(select(OutboxRow))).all()
    assert len(rows) == 1


async def test_crash_after_claim_before_send_sends_once_after_restart(
    slack_outbox: tuple[Evangelist, CrashingSlack], fake_slack: FakeSlackApi, clock: FrozenClock
) -> None:
    bot, platform = slack_outbox
    await _enqueue(bot, "k1")
    platform.crash_before_send = True
    with pytest.raises(Crash):
        await bot.dispatcher.dispatch_once()
    assert fake_slack.calls_to("chat.postMessage") == []
    assert (await _row(bot, "k1")).status == outbox.SENDING

    # "Restart": a new worker, once the dead worker's lease has run out.
    platform.crash_before_send = False
    assert await bot.dispatcher.dispatch_once() == 0  # still leased: nobody touches it
    clock.advance(minutes=2)
    assert await bot.dispatcher.recover_expired() == 1
    assert await bot.dispatcher.drain() == 1
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert (await _row(bot, "k1")).status == outbox.SENT


async def test_crash_between_claim_and_sending_mark_is_released(
    slack_outbox: tuple[Evangelist, CrashingSlack], fake_slack: FakeSlackApi, clock: FrozenClock
) -> None:
    bot, _ = slack_outbox
    await _enqueue(bot, "k2")
    async with bot.db.transaction() as session:
        claimed = await outbox.claim_due(
            session,
            worker="dead",
            now=clock.now(),
            lease=timedelta(seconds=60),
            limit=10,
            platforms=("slack",),
        )
    assert [c.key for c in claimed] == ["k2"]
    assert await bot.dispatcher.dispatch_once() == 0
    clock.advance(seconds=61)
    assert await bot.dispatcher.recover_expired() == 1
    assert (await _row(bot, "k2")).status == outbox.PENDING
    await bot.dispatcher.drain()
    assert len(fake_slack.calls_to("chat.postMessage")) == 1


async def test_a_send_that_starts_late_in_its_batch_is_not_taken_for_abandoned(
    slack_outbox: tuple[Evangelist, CrashingSlack], clock: FrozenClock
) -> None:
    """A row claimed long ago (it waited behind the rate limits) gets a fresh lease when its
    send starts, so recovery does not put it back while the platform call is in flight."""
    bot, _ = slack_outbox
    await _enqueue(bot, "late")
    worker = bot.dispatcher.worker_id
    async with bot.db.transaction() as session:
        await outbox.claim_due(
            session,
            worker=worker,
            now=clock.now(),
            lease=bot.dispatcher.lease,
            limit=10,
            platforms=("slack",),
        )
    clock.advance(seconds=61)  # the claim's lease has run out by the time this row's turn comes
    row = await _row(bot, "late")
    async with bot.db.transaction() as session:
        assert await outbox.mark_sending(session, row.id, worker, clock.now(), bot.dispatcher.lease)
    clock.advance(seconds=20)  # the platform call is slow; recovery runs meanwhile
    assert await bot.dispatcher.recover_expired() == 0
    assert (await _row(bot, "late")).status == outbox.SENDING


async def test_crash_after_send_before_record_is_reconciled_not_resent(
    slack_outbox: tuple[Evangelist, CrashingSlack], fake_slack: FakeSlackApi, clock: FrozenClock
) -> None:
    bot, platform = slack_outbox
    await _enqueue(bot, "k3")
    platform.crash_after_send = True
    with pytest.raises(Crash):
        await bot.dispatcher.dispatch_once()
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    platform.crash_after_send = False
    clock.advance(minutes=2)
    assert await bot.dispatcher.recover_expired() == 1
    await bot.dispatcher.drain()
    # Slack was asked (conversations.history with metadata) instead of being sent the message again.
    assert len(fake_slack.calls_to("chat.postMessage")) == 1
    assert fake_slack.calls_to("conversations.history")
    row = await _row(bot, "k3")
    assert row.status == outbox.SENT
    assert row.result is not None and row.result["channel"] == "C0NEWS"


async def test_unknown_outcome_without_read_back_is_resent_and_flagged(
    database_url: str, fake_slack: FakeSlackApi, clock: FrozenClock
) -> None:
    settings = make_settings(
        database_url,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_base_url=fake_slack.base_url,
    )
    platform = NoReadBack(web_client(settings))
    bot = build(settings, clock=clock, platforms={"slack": platform})
    try:
        await _enqueue(bot, "k4")
        platform.crash_after_send = True
        with pytest.raises(Crash):
            await bot.dispatcher.dispatch_once()
        platform.crash_after_send = False
        clock.advance(minutes=2)
        await bot.dispatcher.recover_expired()
        await bot.dispatcher.drain()
        # At least once: the platform cannot tell, so the message goes again, marked as such.
        assert len(fake_slack.calls_to("chat.postMessage")) == 2
        row = await _row(bot, "k4")
        assert row.status == outbox.SENT and row.possible_duplicate
    finally:
        await bot.stop()


async def test_connection_reset_is_reconciled_before_any_resend(
    slack_outbox: tuple[Evangelist, CrashingSlack], fake_slack: FakeSlackApi, clock: FrozenClock
) -> None:
    bot, _ = slack_outbox
    await _enqueue(bot, "k5")
    fake_slack.fail_next("chat.postMessage", reset=True)
    await bot.dispatcher.dispatch_once()
    row = await _row(bot, "k5")
    assert row.status == outbox.SENDING  # held until it is known whether it arrived
    clock.advance(minutes=20)
    await bot.dispatcher.recover_expired()
    await bot.dispatcher.drain()
    assert len(fake_slack.calls_to("chat.postMessage", ok_only=True)) == 1
    assert (await _row(bot, "k5")).status == outbox.SENT


async def test_transient_errors_back_off_then_fail_for_good(
    slack_outbox: tuple[Evangelist, CrashingSlack], fake_slack: FakeSlackApi, clock: FrozenClock
) -> None:
    bot, _ = slack_outbox
    await _enqueue(bot, "k6")
    fake_slack.fail_next("chat.postMessage", status=503, times=100)
    delays = []
    for _ in range(20):
        await bot.dispatcher.dispatch_once()
        row = await _row(bot, "k6")
        if row.status == outbox.FAILED:
            break
        delays.append(
            (
                row.next_attempt_at.replace(tzinfo=None) - clock.now().replace(tzinfo=None)
            ).total_seconds()
        )
        clock.advance(seconds=delays[-1] + 0.001)
    assert row.status == outbox.FAILED
    assert row.attempts == 8
    assert delays == sorted(delays), "backoff grows"
    assert delays[0] <= 2.0 and delays[-1] > 60


async def test_two_workers_never_claim_the_same_row(
    slack_outbox: tuple[Evangelist, CrashingSlack], clock: FrozenClock
) -> None:
    bot, _ = slack_outbox
    for i in range(30):
        await _enqueue(bot, f"many-{i}", channel=f"C{i:04d}")
    claimed: list[int] = []
    for worker in ("a", "b", "c"):
        async with bot.db.transaction() as session:
            rows = await outbox.claim_due(
                session,
                worker=worker,
                now=clock.now(),
                lease=timedelta(seconds=60),
                limit=12,
                platforms=("slack",),
            )
        claimed += [r.id for r in rows]
    assert len(claimed) == len(set(claimed)) == 30


class CrashingUpload(SlackPlatform):
    """The real Slack client, dying right after a file upload went through."""

    crash_after_upload = True

    async def upload_image(self, address: Address, image: bytes, **kwargs: str) -> MessageRef:
        ref = await super().upload_image(address, image, **kwargs)
        if self.crash_after_upload:
            raise Crash("died after uploading, before recording")
        return ref


async def test_an_upload_with_an_unknown_outcome_is_resent_and_flagged(
    database_url: str, fake_slack: FakeSlackApi, clock: FrozenClock
) -> None:
    """A file carries no message metadata, so Slack cannot be asked whether it arrived."""
    settings = make_settings(
        database_url,
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_base_url=fake_slack.base_url,
    )
    platform = CrashingUpload(web_client(settings))
    bot = build(settings, clock=clock, platforms={"slack": platform})
    try:
        async with bot.db.transaction() as session:
            await outbox.enqueue(
                session,
                key="chart",
                address=Address.to_channel(Platform.SLACK, "C0NEWS"),
                message=OutgoingMessage(text="a chart"),
                operation="upload",
                attachment=b"\x89PNG\r\n\x1a\n",
                extra={"filename": "chart.png", "title": "A chart", "alt_text": "bars"},
                now=clock.now(),
            )
        with pytest.raises(Crash):
            await bot.dispatcher.dispatch_once()
        platform.crash_after_upload = False
        clock.advance(minutes=2)
        assert await bot.dispatcher.recover_expired() == 1
        await bot.dispatcher.drain()
        assert fake_slack.calls_to("conversations.history") == []
        assert len(fake_slack.calls_to("files.completeUploadExternal")) == 2
        row = await _row(bot, "chart")
        assert row.status == outbox.SENT and row.possible_duplicate
    finally:
        await bot.stop()
