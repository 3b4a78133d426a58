"""The outbox dispatcher: claims due rows and hands them to the platforms.

Delivery guarantee, stated plainly. A row is claimed (committed), then marked `sending`
(committed), then sent, then marked `sent`. A worker that dies

- after claiming and before `sending`: the row never reached the platform; when its lease runs
  out it goes back to pending and is sent once;
- after `sending` and before `sent`: the platform may or may not have the message. Slack lets us
  tag each message with its idempotency key (message metadata) and read the conversation back,
  so the row is reconciled: found → recorded as sent, not found → sent again. The console
  platform keeps its own record. Teams offers neither an idempotency key nor a way for a bot to
  read a conversation back, so there the row is sent again and flagged `possible_duplicate`:
  at least once, with the repeat window limited to a crash between the platform's answer and
  our commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any

from bot.core.clock import Clock, as_utc
from bot.core.errors import DeliveryError, NotSupported
from bot.core.ports import ChatPlatform
from bot.core.types import Address, AddressKind, MessageRef, OutgoingMessage
from bot.delivery import outbox
from bot.delivery.ratelimit import RateLimiter
from bot.observability import Metrics
from bot.storage import directory
from bot.storage.database import Database

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8
BACKOFF_BASE = 2.0
BACKOFF_CAP = 15 * 60.0
MAX_INLINE_WAIT = 2.0
"""Rate-limit waits up to this long happen in the worker; longer ones put the row back."""

Sleep = Callable[[float], Awaitable[None]]


class Dispatcher:
    """Sends outbox rows for the platforms it is given, at their documented rates."""

    def __init__(
        self,
        database: Database,
        platforms: Mapping[str, ChatPlatform],
        limiters: Mapping[str, RateLimiter],
        clock: Clock,
        metrics: Metrics,
        *,
        worker_id: str,
        lease: timedelta = timedelta(seconds=60),
        batch_size: int = 50,
        concurrency: int = 8,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.db = database
        self.platforms = dict(platforms)
        self.limiters = dict(limiters)
        self.clock = clock
        self.metrics = metrics
        self.worker_id = worker_id
        self.lease = lease
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.sleep = sleep
        self.rng = rng or random.Random()
        self._wakes = {name: asyncio.Event() for name in platforms}
        self._stopping = False

    def _calls(self, row: outbox.ClaimedRow) -> int:
        """What sending `row` costs against the platform-wide rate (usually one call)."""
        if row.operation != "send":
            return 1
        calls_to_send = getattr(self.platforms[row.platform], "calls_to_send", None)
        return int(calls_to_send(row.address)) if calls_to_send is not None else 1

    def poke(self) -> None:
        """Tell the loop there is new work (called after a transaction enqueued messages)."""
        for wake in self._wakes.values():
            wake.set()

    # -- the loop ---------------------------------------------------------------------------

    async def run(self, poll_seconds: float = 1.0) -> None:
        """Dispatch until `stop()`; wakes on `poke()` or every `poll_seconds`.

        Each platform has a loop of its own, so rows waiting for one platform's rate limits
        never hold up another's (a batch is only done when all its rows are).
        """
        await asyncio.gather(*(self._run_platform(name, poll_seconds) for name in self._wakes))

    async def _run_platform(self, platform: str, poll_seconds: float) -> None:
        wake = self._wakes[platform]
        while not self._stopping:
            wake.clear()
            try:
                sent = await self.dispatch_once((platform,))
            except Exception:
                log.exception("outbox dispatch for %s failed; retrying shortly", platform)
                sent = 0
            if sent or self._stopping:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=poll_seconds)

    def stop(self) -> None:
        self._stopping = True
        for wake in self._wakes.values():
            wake.set()

    async def drain(self, max_rounds: int = 100) -> int:
        """Dispatch until nothing is due now (console and tests); returns rows handled."""
        total = 0
        for _ in range(max_rounds):
            handled = await self.dispatch_once()
            total += handled
            if handled == 0:
                break
        return total

    # -- one round --------------------------------------------------------------------------

    async def dispatch_once(self, platforms: tuple[str, ...] | None = None) -> int:
        """Claim one batch (of `platforms`, default all) and deliver it; returns rows handled."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            rows = await outbox.claim_due(
                session,
                worker=self.worker_id,
                now=now,
                lease=self.lease,
                limit=self.batch_size,
                platforms=platforms or tuple(self.platforms),
            )
        if not rows:
            return 0
        groups: dict[tuple[str, str], list[outbox.ClaimedRow]] = defaultdict(list)
        for row in rows:
            groups[(row.platform, row.address.destination_key())].append(row)
        gate = asyncio.Semaphore(self.concurrency)
        await asyncio.gather(*(self._deliver_group(g, gate) for g in groups.values()))
        return len(rows)

    async def _deliver_group(self, rows: list[outbox.ClaimedRow], gate: asyncio.Semaphore) -> None:
        """Rows to one destination go in order, one at a time, as the platforms rate-limit them.

        A row waits for its slot outside `gate`, so rows waiting on one platform's limits never
        hold up another platform's. The slot is taken (recorded) in the same step as the check
        that found it free, with no await in between, so concurrent groups cannot take it twice.
        """
        for index, row in enumerate(rows):
            limiter = self.limiters.get(row.platform)
            key = row.address.destination_key()
            reserved: float | None = None
            calls = self._calls(row)
            while limiter is not None:
                wait = limiter.wait_time(key, self._seconds(), calls)
                if wait <= 0:
                    reserved = self._seconds()
                    limiter.record(key, reserved)
                    for _ in range(calls - 1):
                        limiter.record_overall(reserved)
                    break
                if wait > MAX_INLINE_WAIT:
                    await self._defer([r.id for r in rows[index:]], wait)
                    return
                await self.sleep(wait)
            async with gate:
                await self._deliver(row, reserved)

    async def _defer(self, row_ids: list[int], wait: float) -> None:
        at = self.clock.now() + timedelta(seconds=wait)
        async with self.db.transaction() as session:
            await outbox.release(session, row_ids, self.worker_id, at=at)

    async def _deliver(self, row: outbox.ClaimedRow, reserved: float | None = None) -> None:
        platform = self.platforms[row.platform]
        async with self.db.transaction() as session:
            if not await outbox.mark_sending(
                session, row.id, self.worker_id, self.clock.now(), self.lease
            ):
                log.warning("outbox row %s was taken over by another worker", row.id)
                return
        limiter = self.limiters.get(row.platform)
        if limiter is not None and reserved is not None:
            # The slot was taken before the database write; the send leaves now.
            limiter.restamp(row.address.destination_key(), reserved, self._seconds())
        started = time.perf_counter()
        try:
            if row.payload.get("after_key"):
                await self._original(str(row.payload["after_key"]))
            payload = await self._resolve_update(row)
            address = await self._resolve_thread(row)
            ref = await send(platform, row.operation, address, payload, row.attachment, row.key)
        except DeliveryError as error:
            await self._failed(row, error)
            return
        except Exception as error:  # an SDK bug or an unexpected answer: retry, but say so
            log.exception("unexpected error sending outbox row %s", row.id)
            await self._failed(row, DeliveryError(f"unexpected: {error!r}", permanent=False))
            return
        self.metrics.send_seconds.labels(row.platform).observe(time.perf_counter() - started)
        async with self.db.transaction() as session:
            await outbox.mark_sent(session, row.id, ref, self.clock.now())
        self.metrics.sent.labels(row.platform).inc()

    async def _resolve_update(self, row: outbox.ClaimedRow) -> dict[str, Any]:
        """An update may name the message it changes by that message's outbox key.

        The platform's reference only exists once the original was sent, so an update written
        in the same transaction as its original waits for it instead of failing.
        """
        key = row.payload.get("update_of_key")
        if row.operation != "update" or not key:
            return row.payload
        return {**row.payload, "update_of": await self._original(str(key))}

    async def _resolve_thread(self, row: outbox.ClaimedRow) -> Address:
        """A thread reply may name its parent by the parent's outbox key, the same way."""
        key = row.payload.get("thread_of_key")
        if not key:
            return row.address
        parent = MessageRef.from_dict(await self._original(str(key)))
        return Address.in_thread(parent.platform, parent.channel, parent.message_id)

    async def _original(self, key: str) -> dict[str, Any]:
        """The platform reference of the message sent under outbox key `key`."""
        async with self.db.transaction() as session:
            original = await outbox.find_by_key(session, key)
        if original is None or original.status == outbox.FAILED:
            raise DeliveryError(f"the message it refers to ({key}) was never sent", permanent=True)
        if original.status != outbox.SENT or not original.result:
            raise DeliveryError(
                f"the message it refers to ({key}) is not sent yet",
                permanent=False,
                retry_after=2.0,
                waiting=True,
            )
        return dict(original.result)

    async def _failed(self, row: outbox.ClaimedRow, error: DeliveryError) -> None:
        now = self.clock.now()
        kind = (
            "rate_limited"
            if error.rate_limited
            else ("permanent" if error.permanent else "transient")
        )
        self.metrics.dispatch_errors.labels(row.platform, kind).inc()
        attempts = row.attempts + 1
        async with self.db.transaction() as session:
            if error.permanent or (
                attempts >= MAX_ATTEMPTS and not (error.rate_limited or error.waiting)
            ):
                log.warning(
                    "outbox row %s failed for good after %s attempt(s): %s",
                    row.id,
                    attempts,
                    error.reason,
                    extra={"platform": row.platform, "idempotency_key": row.key},
                )
                await outbox.mark_failed(session, row.id, error.reason, now)
                if error.blocked and row.address.user:
                    await directory.mark_blocked(session, row.platform, row.address.user, now)
                return
            if error.outcome_unknown:
                # Leave it `sending` until the lease runs out; recovery then asks the platform
                # whether the message arrived before anything is sent again.
                delay = self.backoff(attempts)
                await outbox.hold_unknown(
                    session, row.id, until=now + timedelta(seconds=delay), error=error.reason
                )
                log.info(
                    "outbox row %s outcome unknown (%s); reconciling in %.1fs",
                    row.id,
                    error.reason,
                    delay,
                )
                return
            if error.rate_limited:
                delay = error.retry_after if error.retry_after is not None else 1.0
                limiter = self.limiters.get(row.platform)
                if limiter is not None:
                    limiter.pause(row.address.destination_key(), self._seconds() + delay)
            else:
                delay = self.backoff(attempts, error.retry_after)
            log.info(
                "outbox row %s will be retried in %.1fs: %s",
                row.id,
                delay,
                error.reason,
                extra={"platform": row.platform, "kind": kind},
            )
            await outbox.mark_retry(
                session,
                row.id,
                at=now + timedelta(seconds=delay),
                error=error.reason,
                count_attempt=not (error.rate_limited or error.waiting),
            )

    def backoff(self, attempts: int, retry_after: float | None = None) -> float:
        """Exponential backoff with jitter (between half and all of the step), or Retry-After."""
        if retry_after is not None:
            return max(0.0, retry_after)
        step = min(BACKOFF_CAP, BACKOFF_BASE * 2.0 ** max(0, attempts - 1))
        return step / 2 + self.rng.random() * step / 2

    def _seconds(self) -> float:
        return self.clock.now().timestamp()

    # -- recovery ---------------------------------------------------------------------------

    async def recover_expired(self) -> int:
        """Settle rows whose worker vanished (a scheduler job). Returns how many were settled."""
        now = self.clock.now()
        for limiter in self.limiters.values():
            limiter.forget_idle(now.timestamp())
        async with self.db.transaction() as session:
            expired = await outbox.expired_leases(session, now)
            snapshot = [
                (
                    r.id,
                    r.status,
                    r.platform,
                    r.idempotency_key,
                    r.address,
                    r.sending_since,
                    r.operation,
                )
                for r in expired
            ]
        settled = 0
        for row_id, status, platform_name, key, address_data, sending_since, op in snapshot:
            if status == outbox.CLAIMED:
                async with self.db.transaction() as session:
                    await outbox.release_expired(session, row_id, now)
                settled += 1
                continue
            platform = self.platforms.get(platform_name)
            if platform is None:
                continue
            since = as_utc(sending_since or now) - timedelta(seconds=30)
            try:
                if op == "upload":
                    # An uploaded file carries no message metadata to find our key in.
                    raise NotSupported("uploads cannot be read back")
                ref = await platform.find_delivered(Address.from_dict(address_data), key, since)
            except NotSupported:
                async with self.db.transaction() as session:
                    await outbox.requeue_unknown(session, row_id, now, possible_duplicate=True)
                log.warning(
                    "outbox row %s had an unknown outcome on %s; resending (may duplicate)",
                    row_id,
                    platform_name,
                )
                settled += 1
                continue
            except DeliveryError as error:
                log.warning("could not reconcile outbox row %s yet: %s", row_id, error.reason)
                continue
            async with self.db.transaction() as session:
                if ref is not None:
                    await outbox.mark_sent(session, row_id, ref, now)
                else:
                    await outbox.requeue_unknown(session, row_id, now, possible_duplicate=False)
            settled += 1
        return settled


async def send(
    platform: ChatPlatform,
    operation: str,
    address: Address,
    payload: dict[str, object],
    attachment: bytes | None,
    key: str,
) -> MessageRef:
    """Map an outbox row onto the ChatPlatform port."""
    message = OutgoingMessage.from_dict(payload["message"])  # type: ignore[arg-type]
    if operation == "update":
        ref = MessageRef.from_dict(payload["update_of"])  # type: ignore[arg-type]
        return await platform.update_message(ref, message)
    if operation == "upload":
        extra: dict[str, str] = payload.get("extra") or {}  # type: ignore[assignment]
        return await platform.upload_image(
            address,
            attachment or b"",
            filename=extra.get("filename", "image.png"),
            title=extra.get("title", message.text),
            alt_text=extra.get("alt_text", message.text),
            key=key,
        )
    if address.kind is AddressKind.DIRECT:
        return await platform.send_to_person(_required(address.user, "user"), message, key=key)
    if address.kind is AddressKind.CHANNEL:
        return await platform.post_to_channel(
            _required(address.channel, "channel"), message, key=key
        )
    if address.kind is AddressKind.THREAD:
        return await platform.reply_in_thread(
            _required(address.channel, "channel"),
            _required(address.thread, "thread"),
            message,
            key=key,
        )
    if address.kind is AddressKind.EPHEMERAL:
        return await platform.send_ephemeral(address, message, key=key)
    if address.kind is AddressKind.HOME:
        return await platform.publish_home(_required(address.user, "user"), message, key=key)
    raise DeliveryError(f"unknown address kind {address.kind}", permanent=True)


def _required(value: str | None, name: str) -> str:
    if not value:
        raise DeliveryError(f"address has no {name}", permanent=True)
    return value
