"""The link checker against a real aiohttp server on loopback: verdicts and politeness.

Several loopback addresses (127.0.0.2, 127.0.0.3, ...) stand for distinct hosts; Linux routes
all of 127.0.0.0/8 to loopback. Tests that need them skip when they cannot be bound.
"""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from types import SimpleNamespace

import aiohttp
import pytest
from aiohttp import web

from content_library.checker import USER_AGENT, CheckLimits, Health, LinkChecker

HOLD = 0.03
"""Server-side work time of `/hold`: long enough that queued requests would overlap."""
FAST = CheckLimits(concurrency=20, per_host=2, host_interval=0.0, timeout=2.0)


class LinkSite:
    """One aiohttp app served on several loopback addresses, each address a distinct host.

    It records, per host (the `Host` header), the requests in flight (at most so far) and
    the paths asked for; `release` frees every request parked on `/hang` or `/stall-body`.
    """

    def __init__(self, addresses: tuple[str, ...]) -> None:
        self.addresses = addresses
        self.ports: dict[str, int] = {}
        self.release = asyncio.Event()
        self.in_flight: dict[str, int] = defaultdict(int)
        self.most_in_flight: dict[str, int] = defaultdict(int)
        self.overall = 0
        self.most_overall = 0
        self.paths: dict[str, list[str]] = defaultdict(list)
        self.user_agents: set[str] = set()
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        # Cancel a handler whose client went away, so a timed-out request stops counting.
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=0.5, handler_cancellation=True
        )
        await self._runner.setup()
        for address in self.addresses:
            site = web.TCPSite(self._runner, address, 0)
            await site.start()
            self.ports[address] = self._runner.addresses[-1][1]

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str, address: str = "127.0.0.1") -> str:
        return f"http://{address}:{self.ports[address]}{path}"

    def host(self, address: str) -> str:
        return f"{address}:{self.ports[address]}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        host = request.host
        self.paths[host].append(request.path_qs)
        self.user_agents.add(request.headers.get("User-Agent", ""))
        self._enter(host)
        try:
            return await self._answer(request)
        finally:
            # Before the answer is written: the server's count never runs ahead of the client's.
            self.in_flight[host] -= 1
            self.overall -= 1

    def _enter(self, host: str) -> None:
        self.in_flight[host] += 1
        self.overall += 1
        self.most_in_flight[host] = max(self.most_in_flight[host], self.in_flight[host])
        self.most_overall = max(self.most_overall, self.overall)

    async def _answer(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path in ("/ok", "/dir/"):
            return web.Response(text="fine")
        if path == "/hold":
            await asyncio.sleep(HOLD)
            return web.Response(text="held")
        if path in ("/hang", "/stall-body"):
            return await self._park(request, headers_first=path == "/stall-body")
        if path == "/big":
            return web.Response(body=b"x" * 1_000_000)
        if path.startswith("/status/"):
            headers = {"Retry-After": request.query["retry_after"]} if request.query else {}
            return web.Response(status=int(path.removeprefix("/status/")), headers=headers)
        if path == "/cookie" and request.cookies.get("seen"):
            return web.Response(text="welcome back")
        return self._redirect(request)

    async def _park(self, request: web.Request, *, headers_first: bool) -> web.StreamResponse:
        response = web.StreamResponse()
        if headers_first:
            await response.prepare(request)  # the status and headers, then nothing
        await self.release.wait()
        return response

    def _redirect(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        targets = {
            "/dir": "/dir/",
            "/hop/1": "/hop/2",
            "/hop/2": "/ok",
            "/loop/a": "/loop/b",
            "/loop/b": "/loop/a",
            "/to/javascript": "javascript:alert(1)",
            "/to/ftp": "ftp://example.org/file",
            "/cookie/check": "/cookie",
        }
        if path == "/cookie":
            response = found("/cookie/check")
            response.set_cookie("seen", "1")
            return response
        if path.startswith("/many/"):
            return found(f"/many/{int(path.removeprefix('/many/')) + 1}")
        if path == "/away":
            return found(request.query["to"])
        if path == "/no-location":
            return web.Response(status=302)
        if path in targets:
            return found(targets[path])
        return web.Response(status=404)


def found(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location})


def loopback_addresses(count: int) -> tuple[str, ...]:
    """127.0.0.1 .. 127.0.0.<count>, or skip the test when one cannot be bound."""
    addresses = tuple(f"127.0.0.{n}" for n in range(1, count + 1))
    for address in addresses:
        try:
            with socket.socket() as probe:
                probe.bind((address, 0))
        except OSError as exc:
            pytest.skip(f"cannot bind {address} as a second loopback host: {exc}")
    return addresses


@pytest.fixture
async def site() -> AsyncIterator[LinkSite]:
    server = LinkSite(("127.0.0.1",))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def sites() -> AsyncIterator[LinkSite]:
    server = LinkSite(loopback_addresses(4))
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
def starts() -> dict[str, list[float]]:
    """Client-side request start times per host, filled by the session's trace."""
    return defaultdict(list)


@pytest.fixture
async def http(starts: dict[str, list[float]]) -> AsyncIterator[aiohttp.ClientSession]:
    async def on_start(
        session: aiohttp.ClientSession, context: SimpleNamespace, params: object
    ) -> None:
        url = params.url  # type: ignore[attr-defined]
        starts[f"{url.host}:{url.port}"].append(asyncio.get_running_loop().time())

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    # unsafe=True: keep cookies from IP-address hosts, as the cookie-dance test needs.
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar, trace_configs=[trace]) as session:
        yield session


def closed_port() -> int:
    """A port nothing listens on: bound once, then closed."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- verdicts ----------------------------------------------------------------------------------


async def test_ok_link(site: LinkSite, http: aiohttp.ClientSession) -> None:
    result = await LinkChecker(http, FAST).check(site.url("/ok"))

    assert (result.health, result.status, result.final_url, result.error) == (
        Health.OK,
        200,
        None,
        None,
    )
    assert result.seconds >= 0
    assert site.user_agents == {USER_AGENT}


async def test_redirect_chain_of_two_reports_the_final_url(
    site: LinkSite, http: aiohttp.ClientSession
) -> None:
    result = await LinkChecker(http, FAST).check(site.url("/hop/1#intro"))

    assert result.health is Health.REDIRECTED
    assert result.status == 200
    # The fragment is not sent; the final URL keeps it, as a browser would.
    assert result.final_url == site.url("/ok#intro")
    assert site.paths[site.host("127.0.0.1")] == ["/hop/1", "/hop/2", "/ok"]


async def test_trailing_slash_redirect_is_still_redirected(
    site: LinkSite, http: aiohttp.ClientSession
) -> None:
    result = await LinkChecker(http, FAST).check(site.url("/dir"))

    assert (result.health, result.final_url) == (Health.REDIRECTED, site.url("/dir/"))


async def test_redirect_to_another_host(sites: LinkSite, http: aiohttp.ClientSession) -> None:
    target = sites.url("/ok", "127.0.0.2")

    result = await LinkChecker(http, FAST).check(sites.url(f"/away?to={target}"))

    assert (result.health, result.final_url) == (Health.REDIRECTED, target)


async def test_redirect_loop_is_broken(site: LinkSite, http: aiohttp.ClientSession) -> None:
    result = await LinkChecker(http, FAST).check(site.url("/loop/a"))

    assert (result.health, result.status) == (Health.BROKEN, 302)
    assert result.error is not None and "loop" in result.error
    assert len(site.paths[site.host("127.0.0.1")]) == 2


async def test_cookie_dance_back_to_the_start_is_ok(
    site: LinkSite, http: aiohttp.ClientSession
) -> None:
    result = await LinkChecker(http, FAST).check(site.url("/cookie"))

    assert (result.health, result.status, result.final_url) == (Health.OK, 200, None)


async def test_too_many_redirects_is_broken(site: LinkSite, http: aiohttp.ClientSession) -> None:
    limits = CheckLimits(host_interval=0.0, timeout=2.0, max_redirects=3)

    result = await LinkChecker(http, limits).check(site.url("/many/0"))

    assert result.health is Health.BROKEN
    assert result.error == "more than 3 redirects"
    assert result.final_url == site.url("/many/3")
    assert len(site.paths[site.host("127.0.0.1")]) == 4


@pytest.mark.parametrize("scheme", ["javascript", "ftp"])
async def test_redirect_to_a_non_http_url_is_broken(
    site: LinkSite, http: aiohttp.ClientSession, scheme: str
) -> None:
    result = await LinkChecker(http, FAST).check(site.url(f"/to/{scheme}"))

    assert (result.health, result.status) == (Health.BROKEN, 302)
    assert result.error is not None and "non-http(s)" in result.error


async def test_redirect_without_location_is_broken(
    site: LinkSite, http: aiohttp.ClientSession
) -> None:
    result = await LinkChecker(http, FAST).check(site.url("/no-location"))

    assert (result.health, result.status) == (Health.BROKEN, 302)


@pytest.mark.parametrize(
    ("status", "health"),
    [
        (404, Health.BROKEN),
        (410, Health.BROKEN),
        (400, Health.BROKEN),
        (401, Health.UNREACHABLE),
        (403, Health.UNREACHABLE),
        (405, Health.UNREACHABLE),
        (408, Health.UNREACHABLE),
        (500, Health.UNREACHABLE),
        (501, Health.UNREACHABLE),
        (503, Health.UNREACHABLE),
        (204, Health.OK),
    ],
)
async def test_statuses(
    site: LinkSite, http: aiohttp.ClientSession, status: int, health: Health
) -> None:
    result = await LinkChecker(http, FAST).check(site.url(f"/status/{status}"))

    assert (result.health, result.status, result.final_url) == (health, status, None)
    assert (result.error is None) == (health is Health.OK)


async def test_429_pauses_the_host_for_the_run(site: LinkSite, http: aiohttp.ClientSession) -> None:
    limits = CheckLimits(per_host=1, host_interval=0.0, timeout=2.0)
    urls = [site.url("/status/429?retry_after=120"), site.url("/ok")]

    limited, later = await LinkChecker(http, limits).check_all(urls)

    assert (limited.health, limited.status) == (Health.UNREACHABLE, 429)
    assert limited.error is not None and "120 s" in limited.error
    # The second URL is not requested while the host's pause lasts.
    assert (later.health, later.status) == (Health.UNREACHABLE, None)
    assert site.paths[site.host("127.0.0.1")] == ["/status/429?retry_after=120"]


async def test_slow_answer_times_out(site: LinkSite, http: aiohttp.ClientSession) -> None:
    limits = CheckLimits(host_interval=0.0, timeout=0.3)

    result = await LinkChecker(http, limits).check(site.url("/hang"))

    assert (result.health, result.status) == (Health.UNREACHABLE, None)
    assert result.error == "no answer within 0.3 s"


async def test_a_stalled_or_large_body_does_not_change_the_verdict(
    site: LinkSite, http: aiohttp.ClientSession
) -> None:
    limits = CheckLimits(host_interval=0.0, timeout=0.3)
    checker = LinkChecker(http, limits)

    stalled = await checker.check(site.url("/stall-body"))
    big = await checker.check(site.url("/big"))

    assert (stalled.health, stalled.status) == (Health.OK, 200)
    assert (big.health, big.status) == (Health.OK, 200)


async def test_connection_refused(http: aiohttp.ClientSession) -> None:
    result = await LinkChecker(http, FAST).check(f"http://127.0.0.1:{closed_port()}/x")

    assert (result.health, result.status) == (Health.UNREACHABLE, None)
    assert result.error is not None and result.error.startswith("could not connect")


@pytest.mark.parametrize(
    "url",
    ["ftp://example.org/file", "mailto:someone@example.org", "not a url", "http://", "http://a b/"],
)
async def test_non_http_or_invalid_urls_are_broken_without_a_request(
    http: aiohttp.ClientSession, starts: dict[str, list[float]], url: str
) -> None:
    result = await LinkChecker(http, FAST).check(url)

    assert (result.health, result.status, result.seconds) == (Health.BROKEN, None, 0.0)
    assert result.error
    assert not starts


async def test_check_all_keeps_order_and_duplicates(
    site: LinkSite, http: aiohttp.ClientSession
) -> None:
    urls = [site.url("/status/404"), "ftp://x/", site.url("/ok"), site.url("/status/404")]

    results = await LinkChecker(http, FAST).check_all(urls)

    assert [r.url for r in results] == urls
    assert [r.health for r in results] == [Health.BROKEN, Health.BROKEN, Health.OK, Health.BROKEN]
    assert site.paths[site.host("127.0.0.1")].count("/status/404") == 1


# -- politeness --------------------------------------------------------------------------------


async def test_per_host_concurrency_is_never_exceeded(
    sites: LinkSite, http: aiohttp.ClientSession
) -> None:
    limits = CheckLimits(concurrency=20, per_host=2, host_interval=0.0, timeout=2.0)
    urls = [sites.url(f"/hold?n={n}", a) for a in sites.addresses for n in range(6)]

    results = await LinkChecker(http, limits).check_all(urls)

    assert [r.health for r in results] == [Health.OK] * len(urls)
    assert dict(sites.most_in_flight) == {sites.host(a): 2 for a in sites.addresses}


async def test_overall_concurrency_is_never_exceeded(
    sites: LinkSite, http: aiohttp.ClientSession
) -> None:
    limits = CheckLimits(concurrency=3, per_host=2, host_interval=0.0, timeout=2.0)
    urls = [sites.url(f"/hold?n={n}", a) for n in range(4) for a in sites.addresses]

    results = await LinkChecker(http, limits).check_all(urls)

    assert len(results) == len(urls)
    assert sites.most_overall == 3
    assert max(sites.most_in_flight.values()) <= 2


async def test_host_interval_is_honoured(
    sites: LinkSite, http: aiohttp.ClientSession, starts: dict[str, list[float]]
) -> None:
    interval = 0.05
    limits = CheckLimits(concurrency=20, per_host=2, host_interval=interval, timeout=2.0)
    hosts = sites.addresses[:2]
    urls = [sites.url(f"/ok?n={n}", a) for n in range(5) for a in hosts]

    results = await LinkChecker(http, limits).check_all(urls)

    assert len(results) == len(urls)
    for address in hosts:
        times = starts[sites.host(address)]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert len(times) == 5
        # A lower bound only (1 ms for timer rounding): slower is allowed, faster is not.
        assert min(gaps) >= interval - 0.001, gaps


class FakeClock:
    """A monotonic clock that only moves when told to, and a `sleep` that moves it."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_host_interval_waits_through_the_injected_sleep(
    site: LinkSite, http: aiohttp.ClientSession
) -> None:
    clock = FakeClock()
    limits = CheckLimits(per_host=2, host_interval=30.0, timeout=2.0)
    checker = LinkChecker(http, limits, monotonic=clock, sleep=clock.sleep)

    results = await checker.check_all([site.url(f"/ok?n={n}") for n in range(3)])

    assert [r.health for r in results] == [Health.OK] * 3
    assert clock.slept == [30.0, 30.0]


async def test_urls_not_started_within_the_budget_are_omitted(
    site: LinkSite, http: aiohttp.ClientSession
) -> None:
    served = site.paths[site.host("127.0.0.1")]

    def clock() -> float:  # jumps past the budget once two requests have been served
        return 0.0 if len(served) < 2 else 1_000.0

    limits = CheckLimits(concurrency=1, per_host=1, host_interval=0.0, timeout=2.0, budget=100)
    urls = [site.url(f"/ok?n={n}") for n in range(5)] + ["mailto:x@example.org"]

    results = await LinkChecker(http, limits, monotonic=clock).check_all(urls)

    assert [r.url for r in results] == [urls[0], urls[1], urls[5]]
    assert len(served) == 2


def test_limits_are_validated() -> None:
    bad: list[Callable[[], CheckLimits]] = [
        lambda: CheckLimits(concurrency=0),
        lambda: CheckLimits(per_host=0),
        lambda: CheckLimits(host_interval=-1),
        lambda: CheckLimits(timeout=0),
        lambda: CheckLimits(budget=0),
    ]
    for make in bad:
        with pytest.raises(ValueError):
            make()
