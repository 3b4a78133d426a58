from __future__ import annotations

from pathlib import Path

import pytest

from bot.config.settings import load_settings, redact_url
from bot.core.errors import ConfigurationError
from bot.storage.database import async_url


def test_defaults_match_the_contract() -> None:
    settings = load_settings({})
    assert settings.database_url == "sqlite:///evangelist.db"
    assert (settings.host, settings.port) == ("127.0.0.1", 3978)
    assert settings.slack_api_base_url == "https://slack.com/api/"
    assert settings.meta_graph_base_url == "https://graph.facebook.com/v25.0/"
    assert not settings.slack_enabled and not settings.teams_auth_enabled


def test_secrets_come_from_files(tmp_path: Path) -> None:
    secret = tmp_path / "token"
    secret.write_text("xoxb-from-a-file\n")
    settings = load_settings(
        {"SLACK_BOT_TOKEN_FILE": str(secret), "SLACK_SIGNING_SECRET": "signing-secret"}
    )
    assert settings.slack_bot_token == "xoxb-from-a-file"
    assert settings.slack_enabled
    assert "xoxb-from-a-file" in settings.secrets


def test_every_problem_is_named_with_its_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(
            {
                "EVANGELIST_PORT": "eighty",
                "TEAMS_APP_TYPE": "Solo",
                "SLACK_BOT_TOKEN": "xoxb-1",
                "OPENAI_API_KEY_FILE": str(tmp_path / "missing"),
                "EVANGELIST_DATABASE_URL": "mysql://x",
            }
        )
    problems = "\n".join(caught.value.problems)
    assert "EVANGELIST_PORT='eighty'" in problems
    assert "TEAMS_APP_TYPE='Solo'" in problems
    assert "SLACK_SIGNING_SECRET" in problems
    assert "OPENAI_API_KEY_FILE" in problems
    assert "EVANGELIST_DATABASE_URL" in problems


def test_port_out_of_range() -> None:
    with pytest.raises(ConfigurationError, match="EVANGELIST_PORT='70000'"):
        load_settings({"EVANGELIST_PORT": "70000"})


def test_repr_hides_secrets() -> None:
    settings = load_settings(
        {
            "SLACK_BOT_TOKEN": "xoxb-very-secret",
            "SLACK_SIGNING_SECRET": "sig-very-secret",
            "EVANGELIST_DATABASE_URL": "postgresql://bot:hunter2@db/evangelist",
        }
    )
    shown = repr(settings)
    assert "very-secret" not in shown and "hunter2" not in shown


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("sqlite:///evangelist.db", "sqlite+aiosqlite:///evangelist.db"),
        ("postgresql://u:p@h/db", "postgresql+asyncpg://u:p@h/db"),
        ("postgres://u@h:5433/db", "postgresql+asyncpg://u@h:5433/db"),
        ("postgresql+asyncpg://u@h/db", "postgresql+asyncpg://u@h/db"),
    ],
)
def test_plain_urls_get_an_async_driver(given: str, expected: str) -> None:
    assert async_url(given) == expected


def test_redact_url() -> None:
    assert redact_url("postgresql://bot:hunter2@db/x") == "postgresql://bot:***@db/x"
    assert redact_url("sqlite:///x.db") == "sqlite:///x.db"
