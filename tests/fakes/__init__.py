"""Local fake servers speaking the Slack Web API and Bot Framework Connector wire formats.

``FakeSlackApi`` (``tests.fakes.slack_api``) and ``FakeBotConnector``
(``tests.fakes.bot_connector``) are aiohttp servers bound to 127.0.0.1 on an
ephemeral port, meant to run inside a test's event loop.  The machinery they
share -- call recording, waiting on calls, fault injection and opt-in rate
limiting -- lives here in ``FakeHttpServer``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import socket
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

from aiohttp import web
from multidict import CIMultiDict

__all__ = [
    "FakeHttpServer",
    "Fault",
    "RateLimit",
    "RecordedCall",
    "Responder",
    "build_response",
]

Responder = Callable[["RecordedCall"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Fault:
    """An injected failure, consumed by one matching request.

    ``status=None`` with a ``delay`` means "answer normally, but late": the
    request is then processed for real, which is what a client timeout looks
    like from the server's side.
    """

    status: int | None = 429
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0
    reset: bool = False

    @property
    def fails(self) -> bool:
        """Whether the request is answered with something other than the normal response."""
        return self.reset or self.status is not None


@dataclass
class RecordedCall:
    """One request received by a fake server.

    ``name`` is the Slack method (``"chat.postMessage"``) or the connector
    operation (``"send_to_conversation"``).  ``params`` holds query-string and
    form fields (Slack; JSON object bodies are merged in too) or decoded path
    parameters (connector).  ``path`` is the path as sent, still
    percent-encoded.  ``body`` is the decoded JSON body, if any.  ``headers``
    is case-insensitive.
    """

    name: str
    http_method: str
    path: str
    params: dict[str, Any]
    body: Any
    headers: Mapping[str, str]
    received_at: float
    raw_body: bytes = b""
    failed: bool = False
    fault: Fault | None = None
    throttled: bool = False
    """Answered 429 by a rate limit set with ``FakeHttpServer.enforce_rate``."""

    @property
    def authorization(self) -> str | None:
        """The ``Authorization`` header, if the client sent one."""
        return self.headers.get("Authorization")

    def json_field(self, key: str, default: Any = None) -> Any:
        """Return ``params[key]`` (else ``body[key]``), JSON-decoded when it is a JSON string.

        Slack clients send structured fields such as ``blocks`` or ``metadata``
        either as JSON values (JSON bodies) or as JSON-encoded strings (form
        bodies); this hides the difference.
        """
        if key in self.params:
            value = self.params[key]
        elif isinstance(self.body, dict) and key in self.body:
            value = self.body[key]
        else:
            return default
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value


def build_response(
    status: int, body: Any, headers: Mapping[str, str] | None = None
) -> web.Response:
    """Build a response from ``body``.

    Dicts and lists become JSON, ``str`` plain text, ``bytes`` raw bytes and
    ``None`` an empty body.  A ``Content-Type`` in ``headers`` wins over the
    default for the body type.
    """
    hdrs: CIMultiDict[str] = CIMultiDict(headers or {})
    if body is None:
        return web.Response(status=status, headers=hdrs)
    if isinstance(body, bytes):
        hdrs.setdefault("Content-Type", "application/octet-stream")
        return web.Response(status=status, body=body, headers=hdrs)
    if isinstance(body, str):
        hdrs.setdefault("Content-Type", "text/plain; charset=utf-8")
        return web.Response(status=status, body=body.encode(), headers=hdrs)
    hdrs.setdefault("Content-Type", "application/json; charset=utf-8")
    return web.Response(status=status, body=json.dumps(body).encode(), headers=hdrs)


CallMatcher = str | Collection[str] | Callable[[RecordedCall], bool]


@dataclass
class RateLimit:
    """A sliding-window rate limit enforced by a fake; returned by ``enforce_rate``.

    A call it ``applies_to`` is accepted while, for every ``(count, seconds)``
    rule, fewer than ``count`` calls were accepted in the last ``seconds``
    (counted per ``per_key(call)``, or over all its calls when ``per_key`` is
    ``None``).  Throttled calls do not count towards the window.
    """

    applies_to: Callable[[RecordedCall], bool]
    rules: tuple[tuple[int, float], ...]
    per_key: Callable[[RecordedCall], str] | None = None
    retry_after: float | None = None
    """Fixed ``Retry-After``; ``None`` answers the whole seconds until the window frees up."""
    accepted: int = 0
    throttled: int = 0
    _windows: dict[str, deque[float]] = field(default_factory=dict, repr=False)

    def key_of(self, call: RecordedCall) -> str:
        return self.per_key(call) if self.per_key is not None else ""

    def wait(self, call: RecordedCall, now: float) -> float:
        """Seconds until ``call`` would be accepted (0 when it is accepted now)."""
        times = self._windows.get(self.key_of(call))
        if not times:
            return 0.0
        longest = max(seconds for _, seconds in self.rules)
        while times and times[0] <= now - longest:
            times.popleft()
        wait = 0.0
        for count, seconds in self.rules:
            # The rule is full while its count-th latest accepted call is inside the window.
            if len(times) >= count and times[-count] > now - seconds:
                wait = max(wait, times[-count] + seconds - now)
        return wait

    def accept(self, call: RecordedCall, now: float) -> None:
        self._windows.setdefault(self.key_of(call), deque()).append(now)
        self.accepted += 1


class FakeHttpServer:
    """Base class: an aiohttp server on 127.0.0.1 that records calls and injects faults.

    Subclasses register routes in ``_add_routes`` and pass every request
    through ``_serve``, which records it, applies any queued fault and
    otherwise calls the subclass's responder.
    """

    def __init__(self, host: str = "127.0.0.1") -> None:
        self._host = host
        self._port: int | None = None
        self._runner: web.AppRunner | None = None
        self._faults: dict[str, deque[Fault]] = {}
        self._changed = asyncio.Condition()
        self._stopping = asyncio.Event()
        self.calls: list[RecordedCall] = []
        self.rate_limits: list[RateLimit] = []
        self.rate_clock: Callable[[], float] = time.monotonic
        """Time source of ``enforce_rate``'s windows; tests may replace it."""

    # -- lifecycle -------------------------------------------------------

    async def start(self) -> Self:
        """Bind an ephemeral port on the host and start serving."""
        self._stopping.clear()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self._add_routes(app)
        # A short shutdown timeout: stop() must not hang on a handler that is
        # deliberately slow (delay faults are also woken by _stopping).
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, 0)
        await site.start()
        self._port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        """Stop serving; in-flight delayed requests are cut off."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def port(self) -> int:
        """The bound port (only after ``start``)."""
        if self._port is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return self._port

    @property
    def url(self) -> str:
        """Root URL of the server, with a trailing slash."""
        return f"http://{self._host}:{self.port}/"

    # -- inspection ------------------------------------------------------

    def calls_to(self, name: str, *, ok_only: bool = False) -> list[RecordedCall]:
        """Calls named ``name``; ``ok_only`` drops those answered by an injected failure."""
        return [c for c in self.calls if c.name == name and not (ok_only and c.failed)]

    async def wait_for(
        self,
        name: str,
        count: int = 1,
        # A timeout argument (like asyncio.wait_for) keeps call sites one line long.
        timeout: float = 5.0,  # noqa: ASYNC109
        *,
        ok_only: bool = False,
    ) -> list[RecordedCall]:
        """Wait until at least ``count`` calls named ``name`` were recorded, and return them all.

        Raises ``TimeoutError`` listing what was received instead.
        """

        def enough() -> bool:
            return len(self.calls_to(name, ok_only=ok_only)) >= count

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(enough), timeout)
            except TimeoutError:
                got = len(self.calls_to(name, ok_only=ok_only))
                wanted = f"{count} call(s) to {name!r}{' (ok only)' if ok_only else ''}"
                raise TimeoutError(
                    f"{type(self).__name__}: waited {timeout}s for {wanted}, got {got}. "
                    f"Received: {self.describe_calls()}"
                ) from None
        return self.calls_to(name, ok_only=ok_only)

    def describe_calls(self) -> str:
        """A one-line summary of every recorded call, for assertion messages."""
        if not self.calls:
            return "nothing"
        parts = []
        for call in self.calls:
            label = " [throttled 429]" if call.throttled else _fault_label(call.fault)
            parts.append(f"{call.http_method} {call.name}{label}")
        return ", ".join(parts)

    def clear_calls(self) -> None:
        """Forget recorded calls (state such as stored messages is kept)."""
        self.calls.clear()

    # -- fault injection -------------------------------------------------

    def fail_next(
        self,
        name: str,
        status: int | None = 429,
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        *,
        times: int = 1,
        delay: float = 0.0,
        reset: bool = False,
    ) -> None:
        """Make the next ``times`` calls named ``name`` fail.

        They answer ``status`` with ``headers`` and ``body`` (``None`` picks the
        fake's default error body for that status; a 429 gets
        ``Retry-After: 1`` unless headers are given).  ``delay`` answers after
        that many seconds; ``status=None`` with a delay answers normally, late.
        ``reset`` drops the TCP connection (RST) without answering.
        """
        if headers is None:
            headers = {"Retry-After": "1"} if status == 429 else {}
        if body is None and status is not None:
            body = self._default_fault_body(name, status)
        fault = Fault(status=status, headers=dict(headers), body=body, delay=delay, reset=reset)
        self._faults.setdefault(name, deque()).extend([fault] * times)

    def clear_faults(self) -> None:
        """Drop every queued fault."""
        self._faults.clear()

    def _default_fault_body(self, name: str, status: int) -> Any:
        """Body used by ``fail_next`` when none is given; overridden per platform."""
        return None

    def _pop_fault(self, name: str) -> Fault | None:
        queue = self._faults.get(name)
        return queue.popleft() if queue else None

    # -- rate limits -----------------------------------------------------

    def enforce_rate(
        self,
        match: CallMatcher,
        rules: Sequence[tuple[int, float]],
        *,
        per_key: Callable[[RecordedCall], str] | None = None,
        retry_after: float | None = None,
    ) -> RateLimit:
        """Answer 429 with ``Retry-After`` to calls beyond ``rules``, as the platforms do.

        ``match`` is a call name, a collection of names or a predicate on the
        ``RecordedCall``.  Each rule is ``(count, seconds)``: at most ``count``
        accepted calls in any ``seconds``, per ``per_key(call)`` (e.g. the
        channel) or over all matching calls.  A call must pass every limit that
        matches it; one that does not is recorded as failed and ``throttled``,
        answered with the fake's default 429 body, and does not count towards
        any window.  A queued ``fail_next`` fault takes precedence (such a call
        is not counted either).  Off unless called; returns the limit, whose
        ``accepted`` and ``throttled`` count what it saw.
        """
        if not rules or any(count < 1 or seconds <= 0 for count, seconds in rules):
            raise ValueError(f"rules must be (count >= 1, seconds > 0) pairs, not {rules!r}")
        limit = RateLimit(
            applies_to=_matcher(match),
            rules=tuple((int(count), float(seconds)) for count, seconds in rules),
            per_key=per_key,
            retry_after=retry_after,
        )
        self.rate_limits.append(limit)
        return limit

    def clear_rate_limits(self) -> None:
        """Stop enforcing every rate limit."""
        self.rate_limits.clear()

    def _throttle(self, call: RecordedCall) -> Fault | None:
        """Accept ``call`` in every matching limit, or return the 429 that refuses it."""
        limits = [limit for limit in self.rate_limits if limit.applies_to(call)]
        if not limits:
            return None
        now = self.rate_clock()
        waits = [(limit, limit.wait(call, now)) for limit in limits]
        refusing = [(limit, wait) for limit, wait in waits if wait > 0]
        if not refusing:
            for limit in limits:
                limit.accept(call, now)
            return None
        for limit, _ in refusing:
            limit.throttled += 1
        fixed = [limit.retry_after for limit, _ in refusing if limit.retry_after is not None]
        # Slack and the Bot Connector send whole seconds (slack_sdk parses it with int()).
        seconds = max(fixed) if fixed else max(1, math.ceil(max(w for _, w in refusing)))
        text = str(int(seconds)) if float(seconds).is_integer() else str(seconds)
        body = self._default_fault_body(call.name, 429)
        return Fault(status=429, headers={"Retry-After": text}, body=body)

    # -- request pipeline for subclasses ----------------------------------

    def _add_routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def _serve(
        self,
        request: web.Request,
        *,
        name: str,
        params: dict[str, Any],
        body: Any,
        raw_body: bytes,
        respond: Responder,
    ) -> web.StreamResponse:
        """Record the request, then answer it with a queued fault, a 429 or ``respond``."""
        fault = self._pop_fault(name)
        call = RecordedCall(
            name=name,
            http_method=request.method,
            path=request.rel_url.raw_path,
            params=params,
            body=body,
            headers=CIMultiDict(request.headers),
            received_at=time.monotonic(),
            raw_body=raw_body,
        )
        if fault is None and self.rate_limits:
            fault = self._throttle(call)
            call.throttled = fault is not None
        call.failed, call.fault = fault is not None and fault.fails, fault
        await self._record(call)
        if fault is None:
            return await respond(call)
        return await self._inject(request, fault, call, respond)

    async def _record(self, call: RecordedCall) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _inject(
        self, request: web.Request, fault: Fault, call: RecordedCall, respond: Responder
    ) -> web.StreamResponse:
        if fault.delay > 0:
            await self._sleep(fault.delay)
        if fault.reset or self._stopping.is_set():
            return _reset_connection(request)
        if fault.status is None:
            return await respond(call)
        return build_response(fault.status, fault.body, fault.headers)

    async def _sleep(self, seconds: float) -> None:
        # Wait on the stop event rather than sleeping blindly so stop() never
        # has to sit out a long injected delay.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)


def _matcher(match: CallMatcher) -> Callable[[RecordedCall], bool]:
    if callable(match):
        return match
    names = frozenset([match] if isinstance(match, str) else match)
    return lambda call: call.name in names


def _fault_label(fault: Fault | None) -> str:
    if fault is None:
        return ""
    if fault.reset:
        return " [reset]"
    if fault.status is None:
        return f" [delayed {fault.delay}s]"
    return f" [failed {fault.status}]"


def _reset_connection(request: web.Request) -> web.Response:
    """Abort the TCP connection with an RST, as a crashed or overloaded peer would.

    SO_LINGER with a zero timeout makes close() send RST instead of FIN, so
    clients see ECONNRESET / "connection reset by peer" rather than a clean
    EOF.  The returned response is never delivered; aiohttp discards the write
    to the closed transport.
    """
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    return web.Response(status=500)
