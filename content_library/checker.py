"""Checks that curated links still answer: polite, concurrent and bounded in time; no database.

`LinkChecker.check_all` GETs each URL once (redirects followed by hand, a few KB of the body
read at most) and says whether the link is fine, moved, gone or just not answering right now.
It only reports: deciding that a link that keeps failing is dead is the library's job, which
is why every answer that may be temporary comes back `UNREACHABLE` rather than `BROKEN`.

Politeness, because the sites we check are other people's servers:

* at most `CheckLimits.per_host` requests in flight to one host (host = lowercase host name
  and port, so `http://x` and `https://x` are two hosts) and `CheckLimits.concurrency`
  overall;
* at least `CheckLimits.host_interval` seconds between the starts of two requests to a host;
* a host that answers 429 (or 503 with `Retry-After`) is not asked again in this run until the
  pause it asked for is over; URLs on it meanwhile come back `UNREACHABLE` without a request;
* a `User-Agent` that says who we are.

How the answers map to `Health`:

============================================  ===============  ==========================
final answer                                  health           why
============================================  ===============  ==========================
2xx, no redirect (or back to the start URL)   OK
2xx after redirects to another URL            REDIRECTED       `final_url` is where it
                                                               ended, even when only a
                                                               trailing slash or
                                                               http→https changed: the
                                                               library stores that URL
404, 410, other 4xx                           BROKEN           the site says it is gone
401, 403                                      UNREACHABLE      many sites refuse bots, so
                                                               one refusal proves nothing
405, 501 to a GET                             UNREACHABLE      a GET every browser sends
                                                               is refused: bot filtering
                                                               or a broken server, not a
                                                               verdict on the page
408, 425, 429, 5xx, non-standard codes        UNREACHABLE      temporary by definition
timeout, refused, DNS, TLS, reset             UNREACHABLE      may be back tomorrow
redirect loop, more than `max_redirects`,     BROKEN           a reader's browser gives
redirect to a non-http(s) URL, 3xx without                     up too
a Location
not an http(s) URL, no host, bad port         BROKEN           nothing to request
============================================  ===============  ==========================
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import math
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum

import aiohttp
from yarl import URL

__all__ = ["USER_AGENT", "CheckLimits", "CheckResult", "Health", "LinkChecker", "classify"]

USER_AGENT = "Evangelist-LinkCheck/1.0 (self-hosted; checks that curated links still work)"
BODY_BYTES = 4096
"""Read at most this much of a body: enough for a small answer to finish, so the connection
can be reused; anything longer is cut off (the connection is closed) rather than downloaded."""
DEFAULT_PAUSE = 60.0
"""Seconds to leave a host alone after a 429 without a usable `Retry-After`."""
HTTP_SCHEMES = frozenset({"http", "https"})
REFUSING = frozenset({401, 403, 405, 501})
TRANSIENT_4XX = frozenset({408, 425, 429})
PAUSING = frozenset({429, 503})
_HOST_NAME = re.compile(r"[a-z0-9_.-]+|[0-9a-f:.]+")  # a DNS name or an IP literal (no brackets)


class Health(StrEnum):
    """What one check concluded about a link."""

    OK = "ok"
    REDIRECTED = "redirected"
    BROKEN = "broken"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The outcome of checking one URL.

    `status` is the HTTP status of the last answer (None when nothing answered); `final_url`
    the URL that gave it, when redirects led away from `url` (None otherwise); `error` a short
    reason in words for anything but OK and REDIRECTED; `seconds` the time from the first
    request's start to the verdict (0 when no request was made).
    """

    url: str
    health: Health
    status: int | None
    final_url: str | None
    error: str | None
    seconds: float


@dataclass(frozen=True, slots=True)
class CheckLimits:
    """How hard a run may push: overall, per host, and in time."""

    concurrency: int = 20
    """Requests in flight overall."""
    per_host: int = 2
    """Requests in flight to one host."""
    host_interval: float = 0.5
    """Seconds between the starts of two requests to the same host."""
    timeout: float = 10.0
    """Seconds per request: connecting, the answer's headers and the few KB of body read."""
    max_redirects: int = 5
    budget: float = 600.0
    """Seconds for a whole `check_all`: no request starts after it (see `check_all`)."""

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.per_host < 1:
            raise ValueError("concurrency and per_host must be at least 1")
        if self.host_interval < 0 or self.max_redirects < 0:
            raise ValueError("host_interval and max_redirects must not be negative")
        if self.timeout <= 0 or self.budget <= 0:
            raise ValueError("timeout and budget must be positive")


def classify(status: int) -> tuple[Health, str | None]:
    """The health a final (non-redirect) HTTP status means, with the reason when not OK."""
    if 200 <= status < 300:
        return Health.OK, None
    if status in (404, 410):
        return Health.BROKEN, f"HTTP {status}: the page is gone"
    if status in REFUSING:
        return Health.UNREACHABLE, f"HTTP {status}: the site refused the check (bots blocked?)"
    if status in TRANSIENT_4XX:
        return Health.UNREACHABLE, f"HTTP {status}: try again later"
    if 400 <= status < 500:
        return Health.BROKEN, f"HTTP {status}: the site rejects this link"
    if 500 <= status < 600:
        return Health.UNREACHABLE, f"HTTP {status}: server error"
    return Health.UNREACHABLE, f"HTTP {status}: not a status we can judge"


# -- one request -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    """What one request got: a status (and what matters of its headers) or an error."""

    started: float
    status: int | None = None
    location: str | None = None
    set_cookie: bool = False
    pause: float | None = None
    """Seconds the host asked us to stay away (429, 503 with `Retry-After`)."""
    error: str | None = None


def _parse(url: str) -> URL | str:
    """`url` as a URL we can request, or why it is not one."""
    try:
        parsed = URL(url)
        port = parsed.port
    except (TypeError, ValueError) as exc:
        return f"not a valid URL: {exc}"
    if parsed.scheme not in HTTP_SCHEMES:
        return "not an http(s) URL"
    host = (parsed.raw_host or "").lower()
    if not host or port is None or not _HOST_NAME.fullmatch(host):
        return "no valid host name"
    return parsed


def _host_key(url: URL) -> str:
    return f"{(url.raw_host or '').lower()}:{url.port}"


def _pause(response: aiohttp.ClientResponse) -> float | None:
    """How long the host asked us to stay away, for 429 and 503 answers."""
    if response.status not in PAUSING:
        return None
    seconds = _retry_after_seconds(
        response.headers.get("Retry-After"), response.headers.get("Date")
    )
    if seconds is None and response.status == 429:
        return DEFAULT_PAUSE
    return seconds


def _retry_after_seconds(value: str | None, date: str | None) -> float | None:
    """`Retry-After` in seconds: a delta, or an HTTP date measured from the answer's `Date`
    (the server's own clock, so a skewed clock on either side does not matter)."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        until = parsedate_to_datetime(value)
        sent = parsedate_to_datetime(date) if date else datetime.now(UTC)
    except (TypeError, ValueError):
        return None
    if until.tzinfo is None or sent.tzinfo is None:
        return None
    return max(0.0, (until - sent).total_seconds())


def _describe(exc: BaseException, timeout: float) -> str:
    """A transport failure in a few words."""
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return "the host name does not resolve"
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "TLS failed (certificate or handshake)"
    if isinstance(exc, aiohttp.ClientConnectorError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return f"could not connect: {reason}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "the server closed the connection without answering"
    return f"{type(exc).__name__}: {exc}"[:200]


# -- politeness --------------------------------------------------------------------------------


class _HostGate:
    """Per-host politeness: a slot count with priority waiters, and when requests started.

    Redirect hops wait ahead of new URLs, so a chain already under way is not stuck behind
    the host's whole queue (and is finished within the budget when it can be).
    """

    def __init__(self, slots: int) -> None:
        self._free = slots
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._order = itertools.count()
        self.starting = asyncio.Lock()
        """Held while a request waits for its turn to start: starts happen one at a time."""
        self.last_start: float | None = None
        self.paused_until = -math.inf

    async def acquire(self, *, urgent: bool) -> None:
        if self._free and not self._waiting:
            self._free -= 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (0 if urgent else 1, next(self._order), future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # the slot was handed over just as we were cancelled
            raise

    def release(self) -> None:
        # Hand the slot straight to the next live waiter, so nobody can jump the queue.
        while self._waiting:
            _, _, future = heapq.heappop(self._waiting)
            if not future.done():
                future.set_result(None)
                return
        self._free += 1


# -- the checker -------------------------------------------------------------------------------


class LinkChecker:
    """Checks links with one shared `aiohttp.ClientSession`, politely (see the module doc).

    Politeness state (per-host slots, last start, pauses) lives in the checker and is shared
    by every call on it, so use one checker per run. The session's connector should allow at
    least `limits.concurrency` connections, or requests queue inside aiohttp and their
    timeout runs while they wait. Times come from `monotonic` and waits go through `sleep`,
    so tests can replace both; request timeouts are aiohttp's and use the real clock.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        limits: CheckLimits = CheckLimits(),  # frozen, so one shared default is safe
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        user_agent: str = USER_AGENT,
    ) -> None:
        self._http = http
        self._limits = limits
        self._monotonic = monotonic
        self._sleep = sleep
        self._headers = {"User-Agent": user_agent, "Accept": "text/html,*/*;q=0.8"}
        self._timeout = aiohttp.ClientTimeout(total=limits.timeout)
        self._overall = asyncio.Semaphore(limits.concurrency)
        self._hosts: dict[str, _HostGate] = {}

    async def check(self, url: str) -> CheckResult:
        """Check one URL now (politeness limits apply; the run budget does not)."""
        result = await self._check(url, deadline=None)
        assert result is not None  # only a deadline can leave a URL unchecked
        return result

    async def check_all(self, urls: Sequence[str]) -> list[CheckResult]:
        """Check every URL, at most `limits.budget` seconds' worth; results in input order.

        A URL whose first request could not start before the budget ran out has no result:
        the list holds only the URLs checked (match them by `CheckResult.url`), and the
        caller checks the rest in a later run. Invalid URLs cost no request and are always
        reported. A request started in time is allowed to finish (so the run can end up to
        `timeout` after the budget); a redirect hop that would start after it ends the
        check as UNREACHABLE. A URL listed twice is checked once and reported at each place.
        """
        deadline = self._monotonic() + self._limits.budget
        unique = list(dict.fromkeys(urls))
        results = await asyncio.gather(*(self._check(url, deadline) for url in unique))
        found = {url: r for url, r in zip(unique, results, strict=True) if r is not None}
        return [found[url] for url in urls if url in found]

    # -- one URL: the redirect chain ---------------------------------------------------------

    async def _check(self, url: str, deadline: float | None) -> CheckResult | None:
        start = _parse(url)
        if isinstance(start, str):
            return CheckResult(url, Health.BROKEN, None, None, start, 0.0)
        current, visited, cookies, hops = start, {start}, False, 0
        began: float | None = None
        while True:
            answer = await self._request(current, deadline, urgent=hops > 0)
            if answer is None and began is None:
                return None  # never started: the budget ran out first
            if answer is None:
                answer = _Answer(self._monotonic(), error="the run's time budget ran out")
            began = answer.started if began is None else began
            cookies = cookies or answer.set_cookie
            done = self._verdict(url, start, current, answer, began)
            if done is not None:
                return done
            target = _redirect_target(current, answer.location or "")
            hops += 1
            why = self._refuse_hop(target, visited, cookies, hops, answer.location or "")
            if why is not None:
                return self._result(url, start, current, Health.BROKEN, answer, began, why)
            assert isinstance(target, URL)
            visited.add(target)
            current = target

    def _verdict(
        self, url: str, start: URL, current: URL, answer: _Answer, began: float
    ) -> CheckResult | None:
        """The result when `answer` ends the chain; None when it is a redirect to follow."""
        if answer.status is None:
            return self._result(url, start, current, Health.UNREACHABLE, answer, began)
        if 300 <= answer.status < 400:
            if answer.location:
                return None
            missing = f"HTTP {answer.status} without a Location to follow"
            return self._result(url, start, current, Health.BROKEN, answer, began, missing)
        health, why = classify(answer.status)
        if health is Health.OK and _without_fragment(current) != _without_fragment(start):
            health = Health.REDIRECTED
        if answer.pause is not None:
            why = f"{why}; host paused for {answer.pause:g} s (Retry-After), not retried"
        return self._result(url, start, current, health, answer, began, why)

    def _refuse_hop(
        self, target: URL | None, visited: set[URL], cookies: bool, hops: int, location: str
    ) -> str | None:
        """Why a redirect must not be followed, or None to follow it."""
        if target is None:
            return f"redirects to a non-http(s) URL: {location[:100]}"
        # Going back to a URL already seen is a loop, unless a cookie was set on the way:
        # "set a cookie, then come back" is a common dance that works in a browser.
        if target in visited and not cookies:
            return f"redirect loop back to {target}"
        if hops > self._limits.max_redirects:
            return f"more than {self._limits.max_redirects} redirects"
        return None

    def _result(
        self,
        url: str,
        start: URL,
        current: URL,
        health: Health,
        answer: _Answer,
        began: float,
        why: str | None = None,
    ) -> CheckResult:
        moved = _without_fragment(current) != _without_fragment(start)
        final = str(_keep_fragment(current, start)) if moved else None
        seconds = max(0.0, self._monotonic() - began)
        return CheckResult(url, health, answer.status, final, why or answer.error, seconds)

    # -- one request, politely ---------------------------------------------------------------

    def _gate(self, url: URL) -> _HostGate:
        key = _host_key(url)
        gate = self._hosts.get(key)
        if gate is None:
            gate = self._hosts[key] = _HostGate(self._limits.per_host)
        return gate

    async def _request(self, url: URL, deadline: float | None, *, urgent: bool) -> _Answer | None:
        """One GET through the host's gate and the overall limit; None if it cannot start in
        time. The host slot is taken before the overall one: a request waiting for its host
        holds nothing that other hosts need."""
        gate = self._gate(url)
        await gate.acquire(urgent=urgent)
        try:
            return await self._start_and_send(gate, url, deadline)
        finally:
            gate.release()

    async def _start_and_send(
        self, gate: _HostGate, url: URL, deadline: float | None
    ) -> _Answer | None:
        async with gate.starting:
            now = self._monotonic()
            if now < gate.paused_until:
                wait = f"{gate.paused_until - now:.0f} s"
                return _Answer(now, error=f"not requested: the host asked for a pause ({wait})")
            due = now if gate.last_start is None else gate.last_start + self._limits.host_interval
            if deadline is not None and max(now, due) >= deadline:
                return None
            if due > now:
                await self._sleep(due - now)
            # Waiting for the overall limit while holding `starting` is fine: it only makes
            # this host's next request wait, and it could not start before this one anyway.
            await self._overall.acquire()
            started = self._monotonic()
            if deadline is not None and started >= deadline:
                self._overall.release()
                return None
            gate.last_start = started
        try:
            answer = await self._fetch(url, started)
        finally:
            self._overall.release()
        if answer.pause is not None:
            gate.paused_until = max(gate.paused_until, self._monotonic() + answer.pause)
        return answer

    async def _fetch(self, url: URL, started: float) -> _Answer:
        """GET `url` without following redirects; transport failures become an `error`."""
        get = self._http.get(
            url, allow_redirects=False, headers=self._headers, timeout=self._timeout
        )
        try:
            async with get as response:
                await _read_a_little(response)
                return _Answer(
                    started,
                    status=response.status,
                    location=response.headers.get("Location"),
                    set_cookie="Set-Cookie" in response.headers,
                    pause=_pause(response),
                )
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            # TimeoutError is an OSError; ValueError covers headers aiohttp cannot decode.
            return _Answer(started, error=_describe(exc, self._limits.timeout))


async def _read_a_little(response: aiohttp.ClientResponse) -> None:
    """Read up to `BODY_BYTES` so a small answer completes; the status is already known, so a
    body that fails or stalls does not change the verdict."""
    with contextlib.suppress(aiohttp.ClientError, OSError):
        await response.content.read(BODY_BYTES)


def _redirect_target(current: URL, location: str) -> URL | None:
    """The absolute http(s) URL a `Location` points to, or None when it is not one."""
    try:
        target = current.join(URL(location))
    except (TypeError, ValueError):
        return None
    return target if isinstance(_parse(str(target)), URL) else None


def _without_fragment(url: URL) -> URL:
    return url.with_fragment(None)


def _keep_fragment(final: URL, start: URL) -> URL:
    """A redirect without a fragment keeps the original one, as browsers do (RFC 9110 §10.2.2)."""
    if final.fragment or not start.fragment:
        return final
    return final.with_fragment(start.fragment)
