"""The one way sources talk HTTP: bounded time, bounded size, errors as `SourceError`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from bot.core.sources import SourceError

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
READ_CHUNK = 64 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=30, connect=10)


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise SourceError(f"HTTP {self.status}: the answer is not JSON") from exc


async def fetch(
    http: aiohttp.ClientSession,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpAnswer:
    """GET `url`; any status comes back as an answer, transport failures as a `SourceError`."""
    try:
        async with http.get(url, params=params, headers=headers, timeout=TIMEOUT) as response:
            # `read(n)` returns what has arrived so far, not n bytes: read until the end, and
            # stop as soon as the answer passes the cap.
            body = bytearray()
            async for chunk in response.content.iter_chunked(READ_CHUNK):
                body += chunk
                if len(body) > MAX_RESPONSE_BYTES:
                    raise SourceError(f"the answer from {response.url.host} is larger than 5 MB")
            return HttpAnswer(response.status, response.headers, bytes(body))
    except TimeoutError as exc:
        raise SourceError("timed out") from exc
    except aiohttp.ClientError as exc:
        raise SourceError(f"could not connect: {exc.__class__.__name__}") from exc


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """`Retry-After` in seconds (only the delta form; HTTP dates are rare from these APIs)."""
    value = headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
