"""Link checker benchmark: a library's worth of URLs against loopback hosts that misbehave.

    .venv/bin/python benchmarks/link_checks.py [--urls 1000] [--hosts 50] [--concurrency 20]
        [--per-host 2] [--interval 0.5] [--timeout 1.5] [--budget 600] [--seed 7] [--json]

A local aiohttp server listens on 127.0.0.1 .. 127.0.0.<hosts> (each address is a distinct
host to the checker; if the extra loopback addresses cannot be bound it listens on <hosts>
ports of 127.0.0.1 instead, which the checker also treats as distinct hosts, and says so).
Each URL is given, from the seed, a host and a behaviour: answer 200, 404, 410 or 500, redirect
once, answer after 2 s (past the default 1.5 s timeout), never answer, or point at a closed port;
and a latency (log-uniform 20-400 ms). `LinkChecker.check_all` then checks them all with the
given limits, and the report gives the wall time, the verdicts (and whether each is the one its
behaviour calls for), and what the server saw of the checker's politeness: the most requests in
flight overall and to one host, and the shortest gap between two request starts to one host.
The server runs in the checker's process and event loop. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import random
import socket
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from content_library.checker import CheckLimits, Health, LinkChecker  # noqa: E402

SLOW_MS = 2000
LATENCY_MS = (20.0, 400.0)
BEHAVIOURS: dict[str, tuple[float, Health]] = {
    # behaviour: (share of the URLs, the verdict it calls for with the default 1.5 s timeout)
    "ok": (0.72, Health.OK),
    "404": (0.10, Health.BROKEN),
    "410": (0.03, Health.BROKEN),
    "500": (0.05, Health.UNREACHABLE),
    "redirect": (0.05, Health.REDIRECTED),
    "slow": (0.01, Health.UNREACHABLE),
    "hang": (0.02, Health.UNREACHABLE),
    "refused": (0.02, Health.UNREACHABLE),
}


def progress(message: str) -> None:
    print(f"[link_checks {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- the hosts -------------------------------------------------------------------------------


@dataclass
class Observed:
    """What the server saw: requests in flight (most so far) and when each one arrived."""

    in_flight: Counter[str] = field(default_factory=Counter)
    most_in_flight: Counter[str] = field(default_factory=Counter)
    overall: int = 0
    most_overall: int = 0
    arrivals: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))

    def enter(self, host: str) -> None:
        self.arrivals[host].append(time.monotonic())
        self.in_flight[host] += 1
        self.overall += 1
        self.most_in_flight[host] = max(self.most_in_flight[host], self.in_flight[host])
        self.most_overall = max(self.most_overall, self.overall)

    def leave(self, host: str) -> None:
        self.in_flight[host] -= 1
        self.overall -= 1


def min_gap(times_by_host: dict[str, list[float]]) -> float | None:
    """The shortest time between two consecutive events at one host, over all hosts."""
    gaps = [b - a for times in times_by_host.values() for a, b in itertools.pairwise(times)]
    return min(gaps) if gaps else None


class MisbehavingHosts:
    """The server: `/<behaviour>/<n>?ms=<latency>` answers as the behaviour says."""

    def __init__(self, addresses: list[str]) -> None:
        self.addresses = addresses
        self.seen = Observed()
        self._hung = asyncio.Event()
        self._runner: web.AppRunner | None = None

    async def start(self) -> list[str]:
        """Listen on an ephemeral port of every address; returns each one's origin URL."""
        app = web.Application()
        app.router.add_get("/{behaviour}/{n}", self._handle)
        # A handler whose client gave up (timed out) is cancelled, so it stops counting.
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self._runner.setup()
        bound = []
        for address in self.addresses:
            await web.TCPSite(self._runner, address, 0).start()
            bound.append(f"http://{address}:{self._runner.addresses[-1][1]}")
        return bound

    async def stop(self) -> None:
        self._hung.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        host = request.host
        self.seen.enter(host)
        try:
            await asyncio.sleep(int(request.query.get("ms", "0")) / 1000)
            return await self._answer(request)
        finally:
            self.seen.leave(host)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        behaviour, n = request.match_info["behaviour"], request.match_info["n"]
        if behaviour == "hang":
            await self._hung.wait()
        if behaviour == "slow":
            await asyncio.sleep(SLOW_MS / 1000)
        if behaviour == "redirect":
            return web.Response(status=301, headers={"Location": f"/ok/{n}?ms=20"})
        if behaviour in ("404", "410", "500"):
            return web.Response(status=int(behaviour), text="no")
        return web.Response(text="a page about something worth reading")


def loopback_addresses(count: int) -> tuple[list[str], bool]:
    """The addresses of `count` distinct hosts, and whether they are distinct addresses.

    127.0.0.1..N when they can be bound, else 127.0.0.1 N times: each gets its own ephemeral
    port, and the checker tells hosts apart by name and port.
    """
    addresses = [f"127.0.0.{n}" for n in range(1, count + 1)]
    try:
        for address in addresses:
            with socket.socket() as probe:
                probe.bind((address, 0))
        return addresses, True
    except OSError:
        return ["127.0.0.1"] * count, False


def closed_port(address: str) -> int:
    """A port on `address` that nothing listens on (bound, then closed at once)."""
    with socket.socket() as probe:
        probe.bind((address, 0))
        port: int = probe.getsockname()[1]
    return port


# -- the URLs --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    url: str
    behaviour: str
    expected: Health


def plan(count: int, origins: list[str], refused: list[str], seed: int) -> list[Planned]:
    """`count` URLs, each with a host, a behaviour and a latency drawn from `seed`."""
    rng = random.Random(seed)
    names = list(BEHAVIOURS)
    weights = [share for share, _ in BEHAVIOURS.values()]
    low, high = (math.log(ms) for ms in LATENCY_MS)
    urls = []
    for n in range(count):
        behaviour = rng.choices(names, weights)[0]
        host = rng.randrange(len(origins))
        origin = refused[host] if behaviour == "refused" else origins[host]
        latency = round(math.exp(rng.uniform(low, high)))
        url = f"{origin}/{behaviour}/{n}?ms={latency}"
        urls.append(Planned(url, behaviour, BEHAVIOURS[behaviour][1]))
    return urls


# -- one run ---------------------------------------------------------------------------------


@dataclass
class Figures:
    urls: int
    hosts: int
    distinct_addresses: bool
    limits: dict[str, float]
    wall_s: float = 0.0
    urls_per_s: float = 0.0
    cpu_s: float = 0.0
    results: int = 0
    by_health: dict[str, int] = field(default_factory=dict)
    by_behaviour: dict[str, dict[str, int]] = field(default_factory=dict)
    as_expected: int = 0
    requests_seen: int = 0
    most_in_flight: int = 0
    most_in_flight_one_host: int = 0
    min_gap_s: float | None = None
    min_client_gap_s: float | None = None
    busiest_host_requests: int = 0
    politeness_floor_s: float = 0.0
    """(requests to the busiest host - 1) x interval: no polite run can be faster."""

    @property
    def all_answered(self) -> bool:
        return self.results == self.urls and self.wall_s <= self.limits["budget"]


async def measure(args: argparse.Namespace) -> Figures:
    addresses, distinct = loopback_addresses(args.hosts)
    hosts = MisbehavingHosts(addresses)
    origins = await hosts.start()
    refused = [f"http://{a}:{closed_port(a)}" for a in addresses]
    limits = CheckLimits(
        concurrency=args.concurrency,
        per_host=args.per_host,
        host_interval=args.interval,
        timeout=args.timeout,
        budget=args.budget,
    )
    figures = Figures(args.urls, args.hosts, distinct, asdict(limits))
    planned = plan(args.urls, origins, refused, args.seed)
    progress(f"checking {len(planned):,} URLs on {args.hosts} hosts")
    connector = aiohttp.TCPConnector(limit=max(100, args.concurrency))
    starts: dict[str, list[float]] = defaultdict(list)
    trace = start_recorder(starts)
    try:
        async with aiohttp.ClientSession(connector=connector, trace_configs=[trace]) as http:
            checker = LinkChecker(http, limits)
            began, cpu = time.monotonic(), time.process_time()
            results = await checker.check_all([p.url for p in planned])
            figures.wall_s = time.monotonic() - began
            figures.cpu_s = time.process_time() - cpu
    finally:
        await hosts.stop()
    tally(figures, planned, {r.url: r.health for r in results}, hosts.seen, args.interval)
    figures.min_client_gap_s = min_gap(starts)
    return figures


def start_recorder(starts: dict[str, list[float]]) -> aiohttp.TraceConfig:
    """A trace that notes when the client starts each request, per host."""

    async def on_start(
        session: aiohttp.ClientSession, context: object, params: aiohttp.TraceRequestStartParams
    ) -> None:
        starts[f"{params.url.host}:{params.url.port}"].append(time.monotonic())

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    return trace


def tally(
    figures: Figures,
    planned: list[Planned],
    health: dict[str, Health],
    seen: Observed,
    interval: float,
) -> None:
    figures.results = len(health)
    figures.urls_per_s = figures.results / figures.wall_s if figures.wall_s else 0.0
    figures.by_health = {h.value: sum(v is h for v in health.values()) for h in Health}
    by_behaviour: dict[str, Counter[str]] = defaultdict(Counter)
    for p in planned:
        got = health.get(p.url)
        by_behaviour[p.behaviour][got.value if got else "not checked"] += 1
        figures.as_expected += got is p.expected
    figures.by_behaviour = {b: dict(c) for b, c in sorted(by_behaviour.items())}
    figures.requests_seen = sum(len(times) for times in seen.arrivals.values())
    figures.most_in_flight = seen.most_overall
    figures.most_in_flight_one_host = max(seen.most_in_flight.values(), default=0)
    figures.min_gap_s = min_gap(seen.arrivals)
    figures.busiest_host_requests = max(map(len, seen.arrivals.values()), default=0)
    figures.politeness_floor_s = max(0, figures.busiest_host_requests - 1) * interval


# -- the report ------------------------------------------------------------------------------


def report(f: Figures) -> str:
    limits = f.limits
    where = (
        f"127.0.0.1-127.0.0.{f.hosts}"
        if f.distinct_addresses
        else f"{f.hosts} ports of 127.0.0.1 (extra loopback addresses could not be bound)"
    )
    gap = "-" if f.min_gap_s is None else f"{f.min_gap_s:.3f} s"
    client_gap = "-" if f.min_client_gap_s is None else f"{f.min_client_gap_s:.3f} s"
    answered = "yes" if f.all_answered else "NO"
    lines = [
        f"Link checker: {f.urls:,} URLs on {where}",
        f"limits: concurrency {limits['concurrency']}, per host {limits['per_host']}, "
        f"interval {limits['host_interval']:g} s, timeout {limits['timeout']:g} s, "
        f"budget {limits['budget']:g} s",
        "",
        f"wall time          {f.wall_s:.2f} s ({f.urls_per_s:.1f} URLs/s; CPU {f.cpu_s:.2f} s)",
        f"politeness floor   {f.politeness_floor_s:.1f} s (busiest host: "
        f"{f.busiest_host_requests} requests, one per interval at best)",
        "results            " + ", ".join(f"{k} {v:,}" for k, v in f.by_health.items()),
        f"as planned         {f.as_expected:,} / {f.urls:,} verdicts match the behaviour",
        f"requests seen      {f.requests_seen:,} (redirects add a hop; refused ones never arrive)",
        f"max in flight      overall {f.most_in_flight} (limit {limits['concurrency']}), "
        f"one host {f.most_in_flight_one_host} (limit {limits['per_host']})",
        f"min start gap      {gap} at the server (arrivals), {client_gap} at the client "
        f"(request starts); interval {limits['host_interval']:g} s",
        f"all within budget  {answered}: {f.results:,} of {f.urls:,} URLs have a result",
        "",
        "by behaviour:",
    ]
    for behaviour, counts in f.by_behaviour.items():
        parts = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        lines.append(f"  {behaviour:<9} {parts}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=1000)
    parser.add_argument("--hosts", type=int, default=50, help="1-254 loopback hosts")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--per-host", type=int, default=2)
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between starts")
    parser.add_argument("--timeout", type=float, default=1.5, help="seconds per request")
    parser.add_argument("--budget", type=float, default=600.0, help="seconds for the run")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true", help="one JSON object instead of text")
    args = parser.parse_args(argv)
    if not 1 <= args.hosts <= 254 or args.urls < 1:
        parser.error("--hosts must be 1-254 and --urls at least 1")
    figures = asyncio.run(measure(args))
    if args.json:
        print(json.dumps({**asdict(figures), "all_answered": figures.all_answered}, indent=1))
    else:
        print(report(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
