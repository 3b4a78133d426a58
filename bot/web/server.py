"""The aiohttp application: platform endpoints, health, readiness and metrics."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from bot.delivery import outbox
from bot.observability import request_id
from bot.storage.migrate import current_revision, head_revision
from bot.web import webhooks

if TYPE_CHECKING:
    from bot.app import Evangelist

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def create_web_app(bot: Evangelist) -> web.Application:
    app = web.Application(
        client_max_size=bot.settings.max_body_bytes,
        middlewares=[_request_context(bot), _errors],
    )
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz(bot))
    app.router.add_get("/metrics", _metrics(bot))
    if bot.slack_inbound is not None and not bot.settings.socket_mode:
        app.router.add_post("/slack/events", bot.slack_inbound.handle_http)
    if bot.teams_inbound is not None:
        app.router.add_post("/api/messages", bot.teams_inbound.handle_http)
    webhooks.add_routes(app, bot)
    return app


def _request_context(bot: Evangelist) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request.headers.get("X-Request-Id", "")[:64] or uuid.uuid4().hex[:16]
        token = request_id.set(rid)
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            response.headers["X-Request-Id"] = rid
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            route = (
                request.match_info.route.resource.canonical
                if request.match_info.route.resource
                else "unmatched"
            )
            bot.metrics.http_requests.labels(route, str(status)).inc()
            if status >= 400:
                log.info(
                    "%s %s → %s",
                    request.method,
                    route,
                    status,
                    extra={"ms": round((time.perf_counter() - started) * 1000, 1)},
                )
            request_id.reset(token)

    return middleware


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """One error handler for every endpoint: log it, answer briefly, keep serving."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status == 413:
            return web.json_response({"error": "request body too large"}, status=413)
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return web.json_response({"error": "internal error"}, status=500)


async def _healthz(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def _readyz(bot: Evangelist) -> Handler:
    head = head_revision()

    async def readyz(_: web.Request) -> web.Response:
        try:
            current = await current_revision(bot.db)
        except Exception as exc:
            log.warning("readiness: database unreachable: %r", exc)
            return web.json_response(
                {"status": "unavailable", "database": "unreachable"}, status=503
            )
        if current != head:
            return web.json_response(
                {
                    "status": "unavailable",
                    "database": "not migrated",
                    "revision": current,
                    "head": head,
                },
                status=503,
            )
        return web.json_response({"status": "ready", "revision": current})

    return readyz


def _metrics(bot: Evangelist) -> Handler:
    async def metrics(_: web.Request) -> web.Response:
        try:
            async with bot.db.transaction() as session:
                numbers = await outbox.stats(session, bot.clock.now())
            bot.metrics.outbox_pending.set(numbers["pending"])
            bot.metrics.outbox_failed.set(numbers["failed"])
            bot.metrics.outbox_oldest_age.set(numbers["oldest_pending_age_seconds"])
        except Exception as exc:
            log.warning("metrics: could not read the outbox: %r", exc)
        body = generate_latest(bot.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    return metrics
