"""Polling brand-page sources: a scheduler job that claims each due source, reads it, hands the
items to the desk, and keeps the source's health record.

A poll claims its source with a conditional UPDATE (due, and no other poll holding it), so two
schedulers cannot read the same source at once. Items are taken in before the cursor moves: a
crash in between means the next poll reads them again, and the desk de-duplicates them.
A source that starts failing tells the evangelist once, and once more when it recovers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.organisation import SourceConfig
from bot.config.settings import Settings, read_secret
from bot.core.clock import Clock, as_utc
from bot.core.sources import BrandSource, PollResult, SourceError
from bot.core.types import OutgoingMessage
from bot.questions import messages
from bot.questions.desk import OPEN, QuestionDesk
from bot.storage.database import Database
from bot.storage.models import PersonRow, QuestionRow, SourceRow

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
ALERT_AFTER_FAILURES = 3
MAX_BACKOFF = timedelta(hours=6)
MAX_DOUBLINGS = 10
"""2**10 minutes is past MAX_BACKOFF already, for the shortest interval (1 minute)."""
WATCH_LIMIT = 50


def poll_minutes(config: SourceConfig) -> int:
    """How often a source is polled; 0 for sources that only receive (webhook, CSV)."""
    return int(getattr(config, "poll_minutes", 0) or 0) if config.enabled else 0


def build_source(
    config: SourceConfig,
    http: aiohttp.ClientSession,
    settings: Settings,
    environ: Mapping[str, str],
) -> BrandSource | None:
    """The reader for a polled source, or None when it only receives or lacks a credential."""
    if poll_minutes(config) <= 0:
        return None
    if config.kind == "rss":
        from bot.sources.rss import RssSource

        return RssSource(config, http)
    if config.kind == "youtube":
        from bot.sources.youtube import YouTubeSource

        key = read_secret(environ, config.api_key_env)
        return YouTubeSource(config, http, settings.youtube_api_base_url, key) if key else None
    if config.kind in ("facebook_page", "instagram"):
        from bot.sources.meta import FacebookPageSource, InstagramSource

        token = read_secret(environ, config.access_token_env)
        if not token:
            return None
        if config.kind == "facebook_page":
            return FacebookPageSource(config, http, settings.meta_graph_base_url, token)
        return InstagramSource(config, http, settings.meta_graph_base_url, token)
    return None


class SourcePoller:
    def __init__(
        self,
        desk: QuestionDesk,
        database: Database,
        clock: Clock,
        settings: Settings,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.desk = desk
        self.db = database
        self.clock = clock
        self.settings = settings
        self.environ = os.environ if environ is None else environ
        self.configs = {s.id: s for s in desk.org.sources if poll_minutes(s) > 0}
        self._http: aiohttp.ClientSession | None = None
        self._readers: dict[str, BrandSource | None] = {}

    def reader(self, key: str) -> BrandSource | None:
        if key not in self._readers:
            if self._http is None:
                self._http = aiohttp.ClientSession(headers={"User-Agent": "Evangelist/1"})
            reader = build_source(self.configs[key], self._http, self.settings, self.environ)
            if reader is None:
                log.warning("source %s has no credential; set its token variable", key)
            self._readers[key] = reader
        return self._readers[key]

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    async def poll_due(self) -> int:
        """The scheduler job: poll every source that is due. Returns how many were polled."""
        if not self.configs:
            return 0
        now = self.clock.now()
        await self._ensure_rows(now)
        polled = 0
        for key in sorted(self.configs):
            try:
                if await self._claim(key, now):
                    await self.poll_one(key)
                    polled += 1
            except Exception:
                # One source's trouble must not keep the others from being read.
                log.exception("polling source %s failed outside the source itself", key)
        return polled

    async def _ensure_rows(self, now: datetime) -> None:
        async with self.db.transaction() as session:
            known = set((await session.scalars(select(SourceRow.key))).all())
            for key, config in self.configs.items():
                if key not in known:
                    session.add(
                        SourceRow(key=key, kind=config.kind, cursor={}, usage={}, next_poll_at=now)
                    )

    async def _claim(self, key: str, now: datetime) -> bool:
        async with self.db.transaction() as session:
            result = await session.execute(
                update(SourceRow)
                .where(
                    SourceRow.key == key,
                    or_(SourceRow.next_poll_at.is_(None), SourceRow.next_poll_at <= now),
                    or_(SourceRow.lease_until.is_(None), SourceRow.lease_until < now),
                )
                .values(lease_until=now + LEASE, last_polled_at=now)
            )
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def poll_one(self, key: str) -> PollResult | SourceError | None:
        reader = self.reader(key)
        now = self.clock.now()
        if reader is None:
            await self._failed(key, SourceError("no credential configured", permanent=True), now)
            return None
        async with self.db.transaction() as session:
            state = await session.get(SourceRow, key)
            cursor: dict[str, Any] = dict(state.cursor or {}) if state else {}
            watch = list(
                (
                    await session.scalars(
                        select(QuestionRow.external_id)
                        .where(QuestionRow.source_key == key, QuestionRow.status.in_(OPEN))
                        .order_by(QuestionRow.created_at.desc())
                        .limit(WATCH_LIMIT)
                    )
                ).all()
            )
        try:
            result = await reader.poll(cursor, now, watch)
        except SourceError as error:
            await self._failed(key, error, self.clock.now())
            return error
        except Exception as error:  # a bug or an unexpected answer: keep the job alive
            log.exception("polling source %s failed unexpectedly", key)
            await self._failed(key, SourceError(f"unexpected: {error!r}"[:300]), self.clock.now())
            return SourceError(repr(error))
        report = await self.desk.take_in(result.items, via="poll")
        if report.failed:
            # Keep the old cursor: the next poll reads these items again.
            unstored = SourceError(f"{report.failed} item(s) could not be stored")
            await self._failed(key, unstored, self.clock.now())
            return unstored
        await self._succeeded(key, result, self.clock.now())
        return result

    async def _succeeded(self, key: str, result: PollResult, now: datetime) -> None:
        interval = timedelta(minutes=poll_minutes(self.configs[key]))
        wait = max(interval, timedelta(seconds=result.retry_after or 0))
        async with self.db.transaction() as session:
            state = await session.get(SourceRow, key)
            if state is None:
                return
            recovered = state.alerted_at is not None
            state.cursor = result.cursor
            state.last_success_at, state.failures, state.alerted_at = now, 0, None
            state.lease_until, state.next_poll_at = None, now + wait
            state.rate_headroom = result.rate_headroom
            state.token_expires_at = result.token_expires_at or state.token_expires_at
            state.items_seen += len(result.items)
            state.usage = _count_usage(state.usage, now, result.calls, result.quota_units)
            self.desk.metrics.source_polls.labels(key, "ok").inc()
            if recovered:
                await self._tell_evangelists(
                    session,
                    messages.source_recovered(self._name(key)),
                    f"source:{key}:ok:{now.timestamp():.0f}",
                    now,
                )
        if recovered:
            self.desk.on_enqueued()

    async def _failed(self, key: str, error: SourceError, now: datetime) -> None:
        outcome = "rate_limited" if error.rate_limited else "error"
        self.desk.metrics.source_polls.labels(key, outcome).inc()
        log.warning("source %s: %s", key, error.reason, extra={"source": key, "outcome": outcome})
        interval = timedelta(minutes=max(1, poll_minutes(self.configs[key])))
        alerted = False
        async with self.db.transaction() as session:
            state = await session.get(SourceRow, key)
            if state is None:
                return
            state.failures += 0 if error.rate_limited else 1
            state.last_error, state.last_error_at = error.reason[:1000], now
            if error.rate_headroom is not None:
                state.rate_headroom = error.rate_headroom
            backoff = _backoff(interval, state.failures)
            if error.retry_after is not None:
                backoff = max(interval, timedelta(seconds=error.retry_after))
            state.lease_until, state.next_poll_at = None, now + backoff
            serious = error.permanent or state.failures >= ALERT_AFTER_FAILURES
            if serious and state.alerted_at is None:
                state.alerted_at = now
                since = as_utc(state.last_success_at).timestamp() if state.last_success_at else 0
                await self._tell_evangelists(
                    session,
                    messages.source_trouble(self._name(key), error.reason, max(1, state.failures)),
                    f"source:{key}:trouble:{since:.0f}",
                    now,
                )
                alerted = True
        if alerted:
            self.desk.on_enqueued()

    async def _tell_evangelists(
        self, session: AsyncSession, message: OutgoingMessage, key: str, now: datetime
    ) -> None:
        for person in self.desk.org.evangelists():
            row = await session.scalar(select(PersonRow).where(PersonRow.key == person.id))
            if row is not None:
                await self.desk.send_to(session, row.id, message, f"{key}:{row.id}", now)

    def _name(self, key: str) -> str:
        config = self.configs.get(key)
        return (config.name if config else None) or key


def _backoff(interval: timedelta, failures: int) -> timedelta:
    """Doubling per consecutive failure, up to MAX_BACKOFF."""
    # Capped doublings: at 15-minute polls a source failing for ~8 days reaches 38 failures, and
    # 2**37 intervals overflow timedelta, which made every later poll of it crash the job.
    doublings = min(max(0, failures - 1), MAX_DOUBLINGS)
    return min(MAX_BACKOFF, interval * (1 << doublings))


def _count_usage(
    usage: Mapping[str, Any] | None, now: datetime, calls: int, units: int
) -> dict[str, Any]:
    day = now.date().isoformat()
    current = dict(usage or {})
    if current.get("day") != day:
        current = {"day": day, "calls": 0, "units": 0}
    current["calls"] = int(current.get("calls", 0)) + calls
    current["units"] = int(current.get("units", 0)) + units
    return current
