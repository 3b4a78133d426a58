"""An open-loop HTTP load generator and the statistics the benchmarks report.

Open loop: request i is sent at ``start + i / rate`` whether or not earlier requests have been
answered, so a slow server builds a queue and its queueing time shows up in the latency (a
closed loop would slow down with the server and hide it). Every request runs in its own task;
the only back-pressure is the connector's connection limit, which is set high.

The generator measures itself too: ``lag`` is how late each request actually started compared
with its schedule. If the generator falls behind (it shares the CPU with the server), the offered
load was lower than asked for and the latencies are flattered; the report says so.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from workload import SignedRequest


@dataclass(slots=True)
class Sample:
    kind: str
    due: float  # loop time the request was scheduled for
    sent: float  # loop time its task started sending
    done: float  # loop time the response body was read (or the error seen)
    status: int  # HTTP status; 0 for a transport error or timeout
    error: str | None = None

    @property
    def latency(self) -> float:
        """Acknowledgement latency: from the moment it was sent to the full response."""
        return self.done - self.sent

    @property
    def latency_from_schedule(self) -> float:
        """The same, counted from when it should have been sent (includes generator lag)."""
        return self.done - self.due

    @property
    def lag(self) -> float:
        return self.sent - self.due

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class PhaseResult:
    rate: float
    warmup: list[Sample]
    measured: list[Sample]
    wall_seconds: float
    cpu_seconds: float  # this (generator) process's CPU time during the phase
    errors_by_kind: dict[str, int] = field(default_factory=dict)


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


async def open_loop(
    url: str,
    requests: Sequence[SignedRequest],
    rate: float,
    *,
    warmup_count: int = 0,
    connection_limit: int = 256,
    request_timeout: float = 30.0,
) -> PhaseResult:
    """Send `requests` to `url` at `rate` per second; the first `warmup_count` are not measured."""
    loop = asyncio.get_running_loop()
    samples: list[Sample | None] = [None] * len(requests)
    connector = aiohttp.TCPConnector(limit=connection_limit, limit_per_host=0, ttl_dns_cache=None)
    timeout = aiohttp.ClientTimeout(total=request_timeout)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def one(index: int, request: SignedRequest, due: float) -> None:
            sent = loop.time()
            status, error = 0, None
            try:
                async with session.post(url, data=request.body, headers=request.headers) as resp:
                    await resp.read()
                    status = resp.status
            except TimeoutError:
                error = "timeout"
            except aiohttp.ClientError as exc:
                error = type(exc).__name__
            samples[index] = Sample(request.kind, due, sent, loop.time(), status, error)

        async def touch() -> None:
            async with session.get(url.replace("/slack/events", "/healthz")) as resp:
                await resp.read()

        # Open a few keep-alive connections before the clock starts, as Slack's senders would
        # have; the warm-up phase opens the rest.
        await asyncio.gather(*(touch() for _ in range(8)), return_exceptions=True)
        tasks: set[asyncio.Task[None]] = set()
        cpu0, wall0 = time.process_time(), loop.time()
        start = loop.time() + 0.05
        for index, request in enumerate(requests):
            due = start + index / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            task = loop.create_task(one(index, request, due))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
        cpu1, wall1 = time.process_time(), loop.time()

    done = [s for s in samples if s is not None]
    result = PhaseResult(
        rate=rate,
        warmup=done[:warmup_count],
        measured=done[warmup_count:],
        wall_seconds=wall1 - wall0,
        cpu_seconds=cpu1 - cpu0,
    )
    for sample in result.measured:
        if not sample.ok:
            result.errors_by_kind[sample.kind] = result.errors_by_kind.get(sample.kind, 0) + 1
    return result


def summarise(result: PhaseResult) -> dict[str, Any]:
    """The figures of one phase, in milliseconds and events per second."""
    measured = result.measured
    ok = [s for s in measured if s.ok]
    latencies = [s.latency * 1000 for s in ok]
    from_schedule = [s.latency_from_schedule * 1000 for s in ok]
    lags = [s.lag * 1000 for s in measured]
    if measured:
        first_due = min(s.due for s in measured)
        last_done = max(s.done for s in measured)
        span = last_done - first_due
        offered_span = max(s.due for s in measured) - first_due
    else:
        span = offered_span = math.nan
    statuses: dict[str, int] = {}
    for sample in measured:
        key = str(sample.status) if sample.status else (sample.error or "error")
        statuses[key] = statuses.get(key, 0) + 1
    by_kind: dict[str, dict[str, float]] = {}
    for kind in sorted({s.kind for s in ok}):
        values = [s.latency * 1000 for s in ok if s.kind == kind]
        by_kind[kind] = {
            "count": len(values),
            "p50_ms": percentile(values, 50),
            "p99_ms": percentile(values, 99),
            "max_ms": max(values),
        }
    return {
        "offered_rate": result.rate,
        "sent": len(measured),
        "ok": len(ok),
        "errors": len(measured) - len(ok),
        "errors_by_kind": dict(result.errors_by_kind),
        "statuses": statuses,
        # Completed 2xx over the time from the first scheduled send to the last answer.
        "achieved_rate": len(ok) / span if span and span > 0 else math.nan,
        "offered_rate_actual": (len(measured) - 1) / offered_span if offered_span else math.nan,
        "p50_ms": percentile(latencies, 50),
        "p90_ms": percentile(latencies, 90),
        "p99_ms": percentile(latencies, 99),
        "p999_ms": percentile(latencies, 99.9),
        "max_ms": max(latencies) if latencies else math.nan,
        "mean_ms": sum(latencies) / len(latencies) if latencies else math.nan,
        "p99_from_schedule_ms": percentile(from_schedule, 99),
        "generator_lag_p50_ms": percentile(lags, 50),
        "generator_lag_p99_ms": percentile(lags, 99),
        "generator_lag_max_ms": max(lags) if lags else math.nan,
        "generator_cpu_percent": 100 * result.cpu_seconds / result.wall_seconds
        if result.wall_seconds
        else math.nan,
        "phase_seconds": result.wall_seconds,
        "by_kind": by_kind,
    }
