"""Brand-page webhooks: Meta (Facebook Page feed, Instagram comments) and the signed generic one.

Signatures are checked on the raw bytes before anything is parsed (Meta signs the bytes it
sent, PLATFORM-FACTS §D.1). A bad signature is a 403 and nothing is stored; a body that is not
what the sender documents is a 400, logged with the reason. Items are taken in before the answer,
so a 200 means the desk has them.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from aiohttp import web

from bot.config.organisation import FacebookPageSourceConfig, InstagramSourceConfig
from bot.config.settings import read_secret
from bot.core.errors import ConfigurationError
from bot.sources import meta, webhook

if TYPE_CHECKING:
    from bot.app import Evangelist

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def add_routes(app: web.Application, bot: Evangelist) -> None:
    app.router.add_get("/webhooks/meta", _meta_handshake(bot))
    app.router.add_post("/webhooks/meta", _meta_notification(bot))
    app.router.add_post("/webhooks/sources/{source_id}", _generic(bot))


def _refuse(bot: Evangelist, endpoint: str, status: int, reason: str) -> web.Response:
    bot.metrics.webhooks.labels(endpoint, str(status)).inc()
    log.warning("%s webhook refused (%s): %s", endpoint, status, reason)
    return web.json_response({"error": reason}, status=status)


def _meta_handshake(bot: Evangelist) -> Handler:
    async def handshake(request: web.Request) -> web.Response:
        token = bot.settings.meta_verify_token
        if not token:
            return _refuse(bot, "meta", 404, "Meta webhooks are off (set META_VERIFY_TOKEN)")
        query = request.query
        given = query.get("hub.verify_token", "")
        if query.get("hub.mode") != "subscribe" or not hmac.compare_digest(given, token):
            return _refuse(bot, "meta", 403, "the verify token does not match")
        return web.Response(text=query.get("hub.challenge", ""), content_type="text/plain")

    return handshake


def _meta_notification(bot: Evangelist) -> Handler:
    async def notification(request: web.Request) -> web.Response:
        secret = bot.settings.meta_app_secret
        if not secret or bot.desk is None:
            return _refuse(bot, "meta", 404, "Meta webhooks are off (set META_APP_SECRET)")
        body = await request.read()
        signature = request.headers.get("X-Hub-Signature-256")
        if not meta.verify_signature(secret, body, signature):
            return _refuse(bot, "meta", 403, "X-Hub-Signature-256 is missing or wrong")
        try:
            payload = json.loads(body)
            sources = [
                s
                for s in bot.desk.org.sources
                if isinstance(s, FacebookPageSourceConfig | InstagramSourceConfig) and s.enabled
            ]
            items = meta.parse_notification(payload, sources)
        except (ValueError, meta.MalformedPayload) as exc:
            return _refuse(bot, "meta", 400, f"malformed notification: {exc}")
        report = await bot.desk.take_in(items, via="webhook")
        if report.failed:
            # Not stored: a non-2xx makes Meta deliver it again; what was stored is de-duplicated.
            return _refuse(bot, "meta", 503, f"{report.failed} item(s) could not be stored")
        bot.metrics.webhooks.labels("meta", "200").inc()
        return web.json_response({"items": len(items), "new_questions": len(report.new)})

    return notification


def _generic(bot: Evangelist) -> Handler:
    async def generic(request: web.Request) -> web.Response:
        source_id = request.match_info["source_id"]
        config = bot.desk.org.source(source_id) if bot.desk else None
        if bot.desk is None or config is None or config.kind != "webhook" or not config.enabled:
            return _refuse(bot, "sources", 404, f"no webhook source {source_id[:64]!r}")
        try:
            secret = read_secret(os.environ, config.secret_env)
        except ConfigurationError as exc:
            secret = None
            log.error("webhook source %s: %s", source_id, exc)
        if not secret:
            return _refuse(bot, "sources", 503, f"{config.secret_env} is not set")
        body = await request.read()
        try:
            webhook.verify(
                secret,
                request.headers.get("X-Evangelist-Timestamp"),
                request.headers.get("X-Evangelist-Signature"),
                body,
                bot.clock.now().timestamp(),
            )
            items = webhook.parse(source_id, body)
        except webhook.WebhookRejected as rejected:
            return _refuse(bot, "sources", rejected.status, rejected.reason)
        report = await bot.desk.take_in(items, via="webhook")
        if report.failed:
            return _refuse(bot, "sources", 503, f"{report.failed} item(s) could not be stored")
        bot.metrics.webhooks.labels("sources", "200").inc()
        return web.json_response(
            {
                "items": len(items),
                "new_questions": len(report.new),
                "question_ids": report.new,
                "skipped": report.skipped,
            }
        )

    return generic
