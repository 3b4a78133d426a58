"""The scheduler: APScheduler 3 firing code-registered jobs with fixed ids.

Jobs hold no state of their own (an in-memory job store, nothing pickled): each run claims due
rows from our tables with a conditional UPDATE, so a job that fires twice cannot act twice.
With several processes on PostgreSQL only the holder of an advisory lock runs the jobs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.observability import Metrics
from bot.storage.database import Database

log = logging.getLogger(__name__)

# An arbitrary, fixed 64-bit key for pg_try_advisory_lock: "evangelist scheduler".
SCHEDULER_LOCK_KEY = 0x45564E47_53434844


@dataclass(frozen=True)
class Job:
    id: str
    seconds: float
    run: Callable[[], Awaitable[Any]]
    at_start: bool = False
    """Also run as soon as this process becomes the leader (work that is due must not wait
    for a whole interval after a start or a takeover)."""


class Leadership:
    """Who runs the scheduled jobs. SQLite means one process, so it is always the leader."""

    def __init__(self, database: Database) -> None:
        self.db = database
        self._connection: AsyncConnection | None = None
        self.is_leader = False

    async def try_acquire(self) -> bool:
        if self.is_leader:
            return True
        if self.db.dialect != "postgresql":
            self.is_leader = True
            return True
        connection = await self.db.engine.connect()
        try:
            got = await connection.scalar(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": SCHEDULER_LOCK_KEY}
            )
            await connection.commit()
        except Exception:
            await connection.close()
            raise
        if got:
            self._connection = connection
            self.is_leader = True
        else:
            await connection.close()
        return self.is_leader

    async def release(self) -> None:
        if self._connection is not None:
            try:
                await self._connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEDULER_LOCK_KEY}
                )
                await self._connection.commit()
            finally:
                await self._connection.close()
                self._connection = None
        self.is_leader = False


class JobScheduler:
    def __init__(
        self,
        database: Database,
        metrics: Metrics,
        jobs: list[Job],
        *,
        retry_leadership: float = 10.0,
        stop_grace: float = 10.0,
    ) -> None:
        self.jobs = jobs
        self.stop_grace = stop_grace
        self.metrics = metrics
        self.leadership = Leadership(database)
        self.retry_leadership = retry_leadership
        self._scheduler: AsyncIOScheduler | None = None
        self._campaign: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[Any]] = set()
        self._stopping = False

    async def start(self) -> None:
        self._campaign = asyncio.create_task(self._become_leader(), name="scheduler-leadership")

    async def _become_leader(self) -> None:
        while True:
            try:
                if await self.leadership.try_acquire():
                    break
            except Exception:
                log.exception("could not ask for the scheduler role")
            await asyncio.sleep(self.retry_leadership)
        self.metrics.scheduler_leader.set(1)
        scheduler = AsyncIOScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
        )
        for job in self.jobs:
            scheduler.add_job(
                self._wrap(job),
                IntervalTrigger(seconds=job.seconds),
                id=job.id,
                name=job.id,
                replace_existing=True,
                **({"next_run_time": datetime.now(UTC)} if job.at_start else {}),
            )
        scheduler.start()
        self._scheduler = scheduler
        log.info(
            "this process holds the scheduler role",
            extra={"jobs": ",".join(j.id for j in self.jobs)},
        )

    def _wrap(self, job: Job) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            task = asyncio.current_task()
            if task is not None:
                self._running.add(task)
            try:
                await job.run()
            except asyncio.CancelledError:
                if not self._stopping:
                    raise
                log.info("scheduled job %s stopped with the scheduler", job.id)
            except Exception:
                self.metrics.jobs.labels(job.id, "error").inc()
                log.exception("scheduled job %s failed", job.id)
            else:
                self.metrics.jobs.labels(job.id, "ok").inc()
            finally:
                if task is not None:
                    self._running.discard(task)

        return run

    async def run_now(self, job_id: str) -> None:
        """Run one job immediately (console, tests, operators)."""
        job = next(j for j in self.jobs if j.id == job_id)
        await self._wrap(job)()

    async def stop(self) -> None:
        if self._campaign is not None:
            self._campaign.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._campaign
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=False)
            self._scheduler = None
        # Jobs still running would outlive the database they use. They get a few seconds to
        # finish (a digest being drawn, a batch being sent); then they are stopped, which is
        # safe: their work is claimed in transactions, so what they had not committed is
        # simply done next time.
        self._stopping = True
        running = [task for task in self._running if task is not asyncio.current_task()]
        if running:
            await asyncio.wait(running, timeout=self.stop_grace)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await self.leadership.release()
        self.metrics.scheduler_leader.set(0)
