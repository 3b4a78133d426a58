"""The baseline: a bare Bolt-for-Python aiohttp app whose listeners do nothing.

Usage: BARE_HOST=127.0.0.1 BARE_PORT=3999 SLACK_BOT_TOKEN=xoxb-... SLACK_SIGNING_SECRET=... \
       SLACK_API_BASE_URL=http://127.0.0.1:PORT/api/ python benchmarks/bare_bolt.py

It mounts Bolt's AsyncApp at POST /slack/events the same way Evangelist does (through
``slack_bolt.adapter.aiohttp.to_bolt_request`` / ``to_aiohttp_response``), with request
verification on, and answers GET /readyz with 200. The Web API client points at the fake Slack
(Bolt calls ``auth.test`` once, on the first request). It stops gracefully on SIGTERM/SIGINT.

This is the floor for Slack HTTP ingest in Python: whatever Evangelist adds on top of it (its own
signature and shape checks, the request middlewares, one database transaction per event, the
outbox) shows up as the difference between the two.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient


def build_app() -> web.Application:
    client = AsyncWebClient(
        token=os.environ["SLACK_BOT_TOKEN"],
        base_url=os.environ.get("SLACK_API_BASE_URL", "https://slack.com/api/"),
    )
    # `token=` is not passed alongside `client=`: Bolt would ignore it and log a warning; the
    # client carries it (this is also how Evangelist builds its AsyncApp).
    bolt = AsyncApp(
        client=client,
        signing_secret=os.environ["SLACK_SIGNING_SECRET"],
        raise_error_for_unhandled_request=False,
    )

    async def nothing(body: dict[str, Any], event: dict[str, Any]) -> None:
        return None

    # The same event types the workload sends; without a listener Bolt answers 404.
    bolt.event("app_mention")(nothing)
    bolt.event("message")(nothing)
    bolt.event("reaction_added")(nothing)

    async def events(request: web.Request) -> web.Response:
        bolt_request = await to_bolt_request(request)
        response = await bolt.async_dispatch(bolt_request)
        return await to_aiohttp_response(response)

    async def ready(_: web.Request) -> web.Response:
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_post("/slack/events", events)
    app.router.add_get("/readyz", ready)
    app.router.add_get("/healthz", ready)
    return app


async def serve(host: str, port: int) -> int:
    runner = web.AppRunner(build_app(), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.shutdown()
    await runner.cleanup()
    return 0


def main() -> int:
    logging.basicConfig(level=os.environ.get("EVANGELIST_LOG_LEVEL", "WARNING"))
    host = os.environ.get("BARE_HOST", "127.0.0.1")
    port = int(os.environ.get("BARE_PORT", "3999"))
    return asyncio.run(serve(host, port))


if __name__ == "__main__":
    sys.exit(main())
