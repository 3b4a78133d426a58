"""Settings from the environment, read once and checked at start-up.

Every secret may also be given as `NAME_FILE`, the path of a file that holds it (Docker and
Kubernetes secrets). An invalid value stops start-up with a message naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bot.core.errors import ConfigurationError

SECRET_VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "TEAMS_APP_PASSWORD",
    "META_APP_SECRET",
    "META_VERIFY_TOKEN",
    "OPENAI_API_KEY",
    "EVANGELIST_DATABASE_URL",
)
TEAMS_APP_TYPES = ("MultiTenant", "SingleTenant", "UserAssignedMSI")
LOG_FORMATS = ("json", "text")


@dataclass(frozen=True)
class Settings:
    """Everything the service reads from its environment. Names match CONTRACT.md."""

    database_url: str = "sqlite:///evangelist.db"
    config_path: Path | None = None
    host: str = "127.0.0.1"
    port: int = 3978
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_base_url: str = "https://slack.com/api/"
    teams_app_id: str = ""
    teams_app_password: str = ""
    teams_app_type: str = "MultiTenant"
    teams_tenant_id: str = ""
    teams_service_url: str = "https://smba.trafficmanager.net/teams/"
    meta_app_secret: str | None = None
    meta_verify_token: str | None = None
    meta_graph_base_url: str = "https://graph.facebook.com/v25.0/"
    youtube_api_base_url: str = "https://www.googleapis.com/youtube/v3/"
    openai_api_key: str | None = None
    openai_base_url: str | None = None
    log_level: str = "INFO"
    log_format: str = "json"
    max_body_bytes: int = 1024 * 1024
    outbox_poll_seconds: float = 1.0
    secrets: tuple[str, ...] = field(default=(), repr=False)

    @property
    def slack_enabled(self) -> bool:
        return bool(self.slack_bot_token and (self.slack_signing_secret or self.slack_app_token))

    @property
    def socket_mode(self) -> bool:
        return bool(self.slack_app_token)

    @property
    def teams_auth_enabled(self) -> bool:
        return bool(self.teams_app_id)

    def with_overrides(self, **changes: Any) -> Settings:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Settings(**values)

    def __repr__(self) -> str:
        # Never let a secret reach a log line through repr().
        shown = []
        for f in fields(self):
            if f.name == "secrets":
                continue
            value = getattr(self, f.name)
            if f.name.upper() in SECRET_VARIABLES or f.name.endswith(
                ("token", "secret", "password", "key")
            ):
                value = "***" if value else value
            if f.name == "database_url":
                value = redact_url(str(value))
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"


def redact_url(url: str) -> str:
    """Hide a password in a database URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if ":" in credentials else url


def _read(environ: Mapping[str, str], name: str, problems: list[str]) -> str | None:
    value = environ.get(name)
    file_name = environ.get(f"{name}_FILE")
    if file_name:
        if value:
            problems.append(f"{name} and {name}_FILE are both set; keep one")
            return value
        try:
            return Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(f"{name}_FILE={file_name!r}: cannot read it ({exc.strerror})")
            return None
    if value is None:
        return None
    value = value.strip()
    return value or None


def read_secret(environ: Mapping[str, str], name: str) -> str | None:
    """A credential named in the organisation file (a source token): `NAME` or `NAME_FILE`."""
    problems: list[str] = []
    value = _read(environ, name, problems)
    if problems:
        raise ConfigurationError("; ".join(problems), problems)
    return value


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Build `Settings` from the environment; a `ConfigurationError` names each problem."""
    env = os.environ if environ is None else environ
    problems: list[str] = []
    values: dict[str, Any] = {}
    secrets: list[str] = []

    def text(name: str, attr: str) -> None:
        value = _read(env, name, problems)
        if value is not None:
            values[attr] = value
            if name in SECRET_VARIABLES and len(value) >= 6:
                secrets.append(value)

    text("EVANGELIST_DATABASE_URL", "database_url")
    text("EVANGELIST_HOST", "host")
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "SLACK_API_BASE_URL",
        "TEAMS_APP_ID",
        "TEAMS_APP_PASSWORD",
        "TEAMS_APP_TYPE",
        "TEAMS_TENANT_ID",
        "TEAMS_SERVICE_URL",
        "META_APP_SECRET",
        "META_VERIFY_TOKEN",
        "META_GRAPH_BASE_URL",
        "YOUTUBE_API_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_BASE_URL",
    ):
        text(name, name.lower())
    text("EVANGELIST_LOG_LEVEL", "log_level")
    text("EVANGELIST_LOG_FORMAT", "log_format")

    config = _read(env, "EVANGELIST_CONFIG", problems)
    if config:
        values["config_path"] = Path(config)
    _number(env, "EVANGELIST_PORT", "port", int, 1, 65535, values, problems)
    _number(
        env,
        "EVANGELIST_MAX_BODY_BYTES",
        "max_body_bytes",
        int,
        1024,
        64 * 1024 * 1024,
        values,
        problems,
    )
    _number(
        env,
        "EVANGELIST_OUTBOX_POLL_SECONDS",
        "outbox_poll_seconds",
        float,
        0.05,
        60,
        values,
        problems,
    )
    _check(values, problems)
    if problems:
        raise ConfigurationError("invalid settings: " + "; ".join(problems), problems)
    return Settings(**values, secrets=tuple(secrets))


def _number(
    env: Mapping[str, str],
    name: str,
    attr: str,
    kind: type[int] | type[float],
    low: float,
    high: float,
    values: dict[str, Any],
    problems: list[str],
) -> None:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return
    try:
        number = kind(raw)
    except ValueError:
        problems.append(f"{name}={raw!r} is not a {'whole ' if kind is int else ''}number")
        return
    if not low <= number <= high:
        problems.append(f"{name}={raw!r} must be between {low:g} and {high:g}")
        return
    values[attr] = number


def _check(values: dict[str, Any], problems: list[str]) -> None:
    app_type = values.get("teams_app_type", "MultiTenant")
    if app_type not in TEAMS_APP_TYPES:
        problems.append(f"TEAMS_APP_TYPE={app_type!r} must be one of {', '.join(TEAMS_APP_TYPES)}")
    elif (
        app_type != "MultiTenant"
        and values.get("teams_app_id")
        and not values.get("teams_tenant_id")
    ):
        problems.append(f"TEAMS_APP_TYPE={app_type!r} needs TEAMS_TENANT_ID")
    if values.get("slack_bot_token") and not (
        values.get("slack_signing_secret") or values.get("slack_app_token")
    ):
        problems.append(
            "SLACK_BOT_TOKEN is set but neither SLACK_SIGNING_SECRET (HTTP mode) "
            "nor SLACK_APP_TOKEN (Socket Mode) is"
        )
    token = values.get("slack_app_token")
    if token and not token.startswith("xapp-"):
        problems.append("SLACK_APP_TOKEN must be an app-level token starting with 'xapp-'")
    fmt = values.get("log_format", "json")
    if fmt not in LOG_FORMATS:
        problems.append(f"EVANGELIST_LOG_FORMAT={fmt!r} must be json or text")
    level = str(values.get("log_level", "INFO")).upper()
    values["log_level"] = level
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        problems.append(f"EVANGELIST_LOG_LEVEL={level!r} must be DEBUG, INFO, WARNING or ERROR")
    url = values.get("database_url", "sqlite:///evangelist.db")
    if not url.startswith(("sqlite", "postgresql", "postgres://")):
        problems.append(
            f"EVANGELIST_DATABASE_URL={redact_url(url)!r}: use a sqlite:/// or postgresql:// URL"
        )
    for name in (
        "slack_api_base_url",
        "meta_graph_base_url",
        "youtube_api_base_url",
        "openai_base_url",
        "teams_service_url",
    ):
        base = values.get(name)
        if base and not base.startswith(("http://", "https://")):
            problems.append(f"{name.upper()}={base!r} must be an http(s) URL")
