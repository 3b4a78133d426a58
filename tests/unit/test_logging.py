"""Secrets never reach a log line."""

from __future__ import annotations

import io
import json
import logging

from bot.observability import JsonFormatter, RedactingFilter


def _capture(secrets: tuple[str, ...]) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter(secrets))
    logger = logging.getLogger(f"test-redaction-{id(stream)}")
    logger.handlers = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_known_secrets_and_token_shapes_are_redacted() -> None:
    logger, stream = _capture(("my-signing-secret-123",))
    logger.info("signing with %s", "my-signing-secret-123")
    logger.warning(
        "token xoxb-1234-5678-abcdef leaked", extra={"header": "Bearer eyJhbGciOi.abc.def"}
    )
    logger.info("db postgresql://bot:hunter2@db:5432/x")
    try:
        raise RuntimeError("failed with xapp-1-A0-secret")
    except RuntimeError:
        logger.exception("boom")
    output = stream.getvalue()
    for secret in ("my-signing-secret-123", "xoxb-1234", "eyJhbGciOi", "hunter2", "xapp-1-A0"):
        assert secret not in output
    lines = [json.loads(line) for line in output.splitlines()]
    assert lines[0]["msg"] == "signing with ***"
    assert lines[1]["header"] == "***"
    assert "exception" in lines[3] and "***" in lines[3]["exception"]


async def test_service_logs_carry_no_secrets(tmp_path: object) -> None:
    from bot.config.settings import load_settings

    settings = load_settings(
        {"SLACK_BOT_TOKEN": "xoxb-abc-123", "SLACK_SIGNING_SECRET": "sig-secret-value"}
    )
    logger, stream = _capture(settings.secrets)
    logger.info("settings: %r and %s", settings, settings.slack_signing_secret)
    assert "sig-secret-value" not in stream.getvalue()
    assert "xoxb-abc-123" not in stream.getvalue()
