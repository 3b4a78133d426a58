"""Structured logs that never carry secrets, and Prometheus metrics."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# Token shapes we never want in a log even if nobody registered them as secrets.
_TOKEN_PATTERNS = re.compile(
    r"(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-[A-Za-z0-9_-]{16,}|"
    r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]{8,}|(?<=://)[^/\s:@]+:[^/\s@]+(?=@))"
)
_STANDARD = set(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Replaces known secret values and token-shaped strings with '***' in every record."""

    def __init__(self, secrets: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.secrets = tuple(sorted({s for s in secrets if s}, key=len, reverse=True))

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return _TOKEN_PATTERNS.sub("***", text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = self.redact(record.getMessage())
        record.args = None
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.redact(value))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = self.redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id.get()
        if rid:
            entry["request_id"] = rid
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = (
                    value if isinstance(value, str | int | float | bool | None) else str(value)
                )
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")


def configure_logging(
    level: str = "INFO", fmt: str = "json", secrets: tuple[str, ...] = ()
) -> None:
    """Send logs to stderr as JSON lines (or text), with secrets redacted. Idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter(secrets))
    root = logging.getLogger()
    for existing in list(root.handlers):
        if getattr(existing, "_evangelist", False):
            root.removeHandler(existing)
    handler._evangelist = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # Third-party loggers that are chatty at INFO.
    for name in ("aiohttp.access", "slack_bolt", "slack_sdk", "apscheduler", "msrest", "urllib3"):
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


class Metrics:
    """Every metric of one app instance, on its own registry (tests build many apps)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.scheduler_leader = Gauge(
            "evangelist_scheduler_leader", "1 if this process holds the scheduler role", registry=r
        )
        self.outbox_pending = Gauge(
            "evangelist_outbox_pending", "outbox rows waiting to be sent", registry=r
        )
        self.outbox_failed = Gauge(
            "evangelist_outbox_failed", "outbox rows that failed permanently", registry=r
        )
        self.outbox_oldest_age = Gauge(
            "evangelist_outbox_oldest_pending_age_seconds",
            "age of the oldest outbox row still waiting",
            registry=r,
        )
        self.events = Counter(
            "evangelist_events_received_total",
            "inbound platform events by platform and kind",
            ["platform", "kind"],
            registry=r,
        )
        self.duplicates = Counter(
            "evangelist_events_duplicate_total",
            "inbound events ignored because they were already processed",
            ["platform"],
            registry=r,
        )
        self.event_errors = Counter(
            "evangelist_event_errors_total",
            "inbound events whose handling failed",
            ["platform"],
            registry=r,
        )
        self.sent = Counter(
            "evangelist_outbox_sent_total",
            "messages the platforms accepted",
            ["platform"],
            registry=r,
        )
        self.dispatch_errors = Counter(
            "evangelist_outbox_dispatch_errors_total",
            "failed send attempts by platform and kind (transient, permanent, rate_limited)",
            ["platform", "kind"],
            registry=r,
        )
        self.send_seconds = Histogram(
            "evangelist_outbox_send_seconds",
            "time the platform took to accept a message",
            ["platform"],
            registry=r,
        )
        self.http_requests = Counter(
            "evangelist_http_requests_total",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.questions = Counter(
            "evangelist_questions_total",
            "question desk transitions by source and event (new, routed, answered)",
            ["source", "event"],
            registry=r,
        )
        self.source_polls = Counter(
            "evangelist_source_polls_total",
            "brand-page source polls by source and outcome (ok, error, rate_limited)",
            ["source", "outcome"],
            registry=r,
        )
        self.webhooks = Counter(
            "evangelist_webhooks_total",
            "brand-page webhook deliveries by endpoint and outcome",
            ["endpoint", "outcome"],
            registry=r,
        )
        self.jobs = Counter(
            "evangelist_scheduler_job_runs_total",
            "scheduler job runs by job and outcome",
            ["job", "outcome"],
            registry=r,
        )
        self.llm_calls = Counter(
            "evangelist_llm_calls_total",
            "language model calls by purpose and outcome (ok, invalid, error, timeout, "
            "over_budget, circuit_open)",
            ["purpose", "outcome"],
            registry=r,
        )
        self.llm_tokens = Counter(
            "evangelist_llm_tokens_total",
            "language model tokens spent (prompt + completion) by purpose",
            ["purpose"],
            registry=r,
        )
