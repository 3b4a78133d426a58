"""The test suite's fake Slack Web API, run as its own process for the benchmarks.

Usage: python benchmarks/fake_slack.py   (prints one JSON line {"base_url": ..., "pid": ...})

It runs ``tests.fakes.slack_api.FakeSlackApi`` unchanged and adds two routes of its own:

* ``GET /_bench/stats`` -> ``{"calls": {method: count}, "recorded": n}``
* ``POST /_bench/reset`` -> forgets recorded calls and stored messages

The fake records every call in memory; the benchmark resets it between backends so its memory
and lookups stay small. It stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import Counter
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.fakes.slack_api import FakeSlackApi  # noqa: E402


class BenchFakeSlackApi(FakeSlackApi):
    """FakeSlackApi plus call counters for the benchmark; the Slack behaviour is untouched."""

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/_bench/stats", self._bench_stats)
        app.router.add_post("/_bench/reset", self._bench_reset)
        super()._add_routes(app)

    async def _bench_stats(self, _: web.Request) -> web.Response:
        counts = Counter(call.name for call in self.calls)
        return web.json_response({"calls": dict(counts), "recorded": len(self.calls)})

    async def _bench_reset(self, _: web.Request) -> web.Response:
        self.clear_calls()
        self._messages.clear()
        self.ephemerals.clear()
        self.views.clear()
        return web.json_response({"ok": True})


async def main() -> int:
    fake = BenchFakeSlackApi()
    await fake.start()
    print(json.dumps({"base_url": fake.base_url, "url": fake.url}), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
