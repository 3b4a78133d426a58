"""Deployment artefacts: the Slack and Teams manifests, the Teams icons and package, the image.

No network and no Docker: the files are parsed and the Teams packaging script is run as
operators run it, with the current Python.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from bot.platforms.slack.inbound import SEND_TO_DESK as SLACK_SEND_TO_DESK
from bot.platforms.teams.inbound import SEND_TO_DESK as TEAMS_SEND_TO_DESK

ROOT = Path(__file__).resolve().parents[2]
SLACK_MANIFEST = ROOT / "slack" / "manifest.yml"
TEAMS_DIR = ROOT / "teams"
TEAMS_MANIFEST = TEAMS_DIR / "manifest.json"
PACKAGE_SCRIPT = TEAMS_DIR / "package.py"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
COMPOSE_FILE = ROOT / "docker-compose.yml"

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
APP_ID = "123e4567-e89b-12d3-a456-426614174000"
BOT_ID = "9f1c2d3e-4b5a-4c6d-8e7f-0a1b2c3d4e5f"
GUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

# Bot events the service subscribes to, and the bot-token scopes each needs
# (Slack's event reference; member_joined_channel: channels:read for public channels,
# groups:read for private ones; app_home_opened needs only a bot user).
EVENT_SCOPES: dict[str, set[str]] = {
    "app_mention": {"app_mentions:read"},
    "message.channels": {"channels:history"},
    "message.groups": {"groups:history"},
    "message.im": {"im:history"},
    "reaction_added": {"reactions:read"},
    "member_joined_channel": {"channels:read", "groups:read"},
    "app_home_opened": set(),
    "user_status_changed": {"users:read"},
}
# Web API methods and app features the service uses, and the bot-token scopes they need.
FEATURE_SCOPES: dict[str, set[str]] = {
    "chat.postMessage / chat.postEphemeral / chat.update": {"chat:write"},
    "conversations.open (DM by user)": {"im:write"},
    "conversations.history / conversations.replies in channels, private channels, DMs": {
        "channels:history",
        "groups:history",
        "im:history",
    },
    "users.info with email and time zone": {"users:read", "users:read.email"},
    "files upload v2 (getUploadURLExternal / completeUploadExternal)": {"files:write"},
    "slash command and message shortcut": {"commands"},
    "views.publish (Home tab)": set(),
    "block actions (buttons)": set(),
}


def load_module(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def make_icons() -> ModuleType:
    return load_module("evangelist_teams_make_icons", TEAMS_DIR / "make_icons.py")


@pytest.fixture(scope="module")
def slack_manifest() -> dict[str, Any]:
    data = yaml.safe_load(SLACK_MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def teams_manifest() -> dict[str, Any]:
    data = json.loads(TEAMS_MANIFEST.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def run_package(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(PACKAGE_SCRIPT), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# -- Slack -------------------------------------------------------------------------------------


def test_slack_manifest_declares_the_bot_features(slack_manifest: dict[str, Any]) -> None:
    assert slack_manifest["_metadata"]["major_version"] == 1
    display = slack_manifest["display_information"]
    assert display["name"] and len(display["description"]) <= 140
    if "long_description" in display:
        assert 174 <= len(display["long_description"]) <= 4000

    features = slack_manifest["features"]
    assert features["bot_user"]["display_name"]
    assert features["app_home"]["home_tab_enabled"] is True
    assert features["app_home"]["messages_tab_enabled"] is True
    [command] = features["slash_commands"]
    assert command["command"] == "/evangelist"
    assert command["usage_hint"] == "help | whoami | status | digest | recognition on"
    assert command["url"].endswith("/slack/events")
    # The question desk's message shortcut; bot/platforms/slack/inbound.py listens for its
    # callback_id (SEND_TO_DESK), so the two must not drift apart.
    [shortcut] = features["shortcuts"]
    assert shortcut["type"] == "message"
    assert shortcut["callback_id"] == SLACK_SEND_TO_DESK
    assert 0 < len(shortcut["name"]) <= 24, "Slack refuses longer shortcut names"
    assert 0 < len(shortcut["description"]) <= 100


def test_slack_settings_use_one_request_url(slack_manifest: dict[str, Any]) -> None:
    settings = slack_manifest["settings"]
    events_url = settings["event_subscriptions"]["request_url"]
    assert events_url.startswith("https://") and events_url.endswith("/slack/events")
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"] == events_url
    assert slack_manifest["features"]["slash_commands"][0]["url"] == events_url
    assert settings["socket_mode_enabled"] is False
    assert settings["token_rotation_enabled"] is False
    assert settings["org_deploy_enabled"] is False
    assert sorted(settings["event_subscriptions"]["bot_events"]) == sorted(EVENT_SCOPES)
    assert "user_events" not in settings["event_subscriptions"]


@pytest.mark.parametrize("event", sorted(EVENT_SCOPES))
def test_every_slack_event_has_its_scope(slack_manifest: dict[str, Any], event: str) -> None:
    scopes = set(slack_manifest["oauth_config"]["scopes"]["bot"])
    assert event in slack_manifest["settings"]["event_subscriptions"]["bot_events"]
    missing = EVENT_SCOPES[event] - scopes
    assert not missing, f"{event} needs {sorted(missing)}"


def test_slack_scopes_are_the_least_the_features_need(slack_manifest: dict[str, Any]) -> None:
    scopes = slack_manifest["oauth_config"]["scopes"]
    bot = scopes["bot"]
    assert len(bot) == len(set(bot)), "a scope is listed twice"
    needed = set().union(*EVENT_SCOPES.values(), *FEATURE_SCOPES.values())
    assert set(bot) == needed, (
        f"missing: {sorted(needed - set(bot))}; not needed: {sorted(set(bot) - needed)}"
    )
    assert not scopes.get("user"), "the bot uses no user scopes"


def test_every_slack_scope_has_a_comment_saying_why() -> None:
    lines = SLACK_MANIFEST.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "bot:")
    explained = 0
    for i in range(start + 1, len(lines)):
        line = lines[i].strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("- "):
            break
        previous = lines[i - 1].strip()
        assert previous.startswith("#"), f"scope {line[2:]!r} has no comment explaining it"
        explained += 1
    assert explained >= len(set().union(*EVENT_SCOPES.values(), *FEATURE_SCOPES.values()))


# -- Teams manifest and icons ------------------------------------------------------------------


def test_teams_manifest_has_the_required_fields(teams_manifest: dict[str, Any]) -> None:
    for key in (
        "$schema",
        "manifestVersion",
        "version",
        "id",
        "developer",
        "name",
        "description",
        "icons",
        "accentColor",
        "bots",
        "validDomains",
    ):
        assert key in teams_manifest, key
    version = teams_manifest["manifestVersion"]
    assert re.fullmatch(r"1\.\d+", version)
    assert teams_manifest["$schema"] == (
        f"https://developer.microsoft.com/json-schemas/teams/v{version}/MicrosoftTeams.schema.json"
    )
    assert re.fullmatch(r"\d+\.\d+\.\d+", teams_manifest["version"])
    assert teams_manifest["id"] == ZERO_GUID
    assert 0 < len(teams_manifest["name"]["short"]) <= 30
    assert len(teams_manifest["name"]["full"]) <= 100
    assert len(teams_manifest["description"]["short"]) <= 80
    assert len(teams_manifest["description"]["full"]) <= 4000
    developer = teams_manifest["developer"]
    for key in ("websiteUrl", "privacyUrl", "termsOfUseUrl"):
        assert developer[key].startswith("https://example.org/")
    assert re.fullmatch(r"#[0-9A-Fa-f]{6}", teams_manifest["accentColor"])
    assert teams_manifest["icons"] == {"color": "color.png", "outline": "outline.png"}


def test_teams_bot_entry(teams_manifest: dict[str, Any]) -> None:
    [bot] = teams_manifest["bots"]
    assert bot["botId"] == ZERO_GUID
    assert sorted(bot["scopes"]) == ["groupChat", "personal", "team"]
    assert bot["supportsFiles"] is False
    assert bot["isNotificationOnly"] is False
    titles = [
        command["title"]
        for command_list in bot["commandLists"]
        for command in command_list["commands"]
    ]
    assert titles == ["help", "whoami", "status", "digest", "recognition"]
    for command_list in bot["commandLists"]:
        for command in command_list["commands"]:
            assert len(command["title"]) <= 32 and 0 < len(command["description"]) <= 128


def test_teams_message_action_sends_to_the_question_desk(teams_manifest: dict[str, Any]) -> None:
    [extension] = teams_manifest["composeExtensions"]
    assert extension["botId"] == teams_manifest["bots"][0]["botId"]
    [command] = extension["commands"]
    # bot/platforms/teams/inbound.py answers composeExtension/submitAction for this id.
    assert command["id"] == TEAMS_SEND_TO_DESK
    assert command["type"] == "action"
    assert command["context"] == ["message"]
    assert command["fetchTask"] is False
    assert 0 < len(command["title"]) <= 32 and 0 < len(command["description"]) <= 128
    # Without a task to fetch, Teams builds the dialog from the static parameters.
    assert [p["name"] for p in command["parameters"]] == ["note"]


def test_teams_icons_have_the_sizes_teams_requires(
    make_icons: ModuleType, teams_manifest: dict[str, Any]
) -> None:
    width, height, _, colour = make_icons.decode_png((TEAMS_DIR / "color.png").read_bytes())
    assert (width, height) == (192, 192)
    assert all(pixel[3] == 255 for row in colour for pixel in row), "the colour icon is opaque"
    accent = teams_manifest["accentColor"].lstrip("#")
    assert colour[0][0][:3] == tuple(int(accent[i : i + 2], 16) for i in (0, 2, 4))

    width, height, colour_type, outline = make_icons.decode_png(
        (TEAMS_DIR / "outline.png").read_bytes()
    )
    assert (width, height) == (32, 32)
    assert colour_type == 6, "the outline icon needs an alpha channel"
    alphas = [pixel[3] for row in outline for pixel in row]
    assert alphas.count(0) > 100, "the background is transparent"
    assert alphas.count(255) > 50, "the glyph is solid"
    assert all(
        pixel[3] == 0 for pixel in (outline[0][0], outline[0][-1], outline[-1][0], outline[-1][-1])
    )
    assert all(pixel[:3] == (255, 255, 255) for row in outline for pixel in row if pixel[3]), (
        "the outline icon may only be white"
    )


def test_teams_icons_match_their_generator(make_icons: ModuleType) -> None:
    for name, data in make_icons.build_icons().items():
        assert (TEAMS_DIR / name).read_bytes() == data, f"run python teams/make_icons.py ({name})"


def test_png_round_trip(make_icons: ModuleType) -> None:
    pixels = [[(x * 40, y * 40, 7, 255 - x) for x in range(5)] for y in range(3)]
    assert make_icons.decode_png(make_icons.encode_png(5, 3, pixels)) == (5, 3, 6, pixels)


# -- Teams package -----------------------------------------------------------------------------


def test_package_writes_the_three_files_with_substituted_ids(tmp_path: Path) -> None:
    out = tmp_path / "dist" / "evangelist-teams.zip"
    result = run_package(
        "--app-id", APP_ID.upper(), "--bot-id", BOT_ID, "--domain", "bot.example.com",
        "--app-version", "1.2.3", "--out", str(out), cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        assert archive.read("color.png") == (TEAMS_DIR / "color.png").read_bytes()
        assert archive.read("outline.png") == (TEAMS_DIR / "outline.png").read_bytes()
    assert manifest["id"] == APP_ID
    assert [bot["botId"] for bot in manifest["bots"]] == [BOT_ID]
    assert [ext["botId"] for ext in manifest["composeExtensions"]] == [BOT_ID]
    assert manifest["validDomains"] == ["bot.example.com"]
    assert manifest["version"] == "1.2.3"
    assert ZERO_GUID not in json.dumps(manifest)
    assert GUID_RE.match(manifest["id"])


def test_package_defaults(tmp_path: Path) -> None:
    result = run_package("--app-id", APP_ID, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(tmp_path / "evangelist-teams.zip") as archive:
        manifest = json.loads(archive.read("manifest.json"))
    assert manifest["bots"][0]["botId"] == APP_ID
    assert manifest["validDomains"] == []
    assert manifest["version"] == json.loads(TEAMS_MANIFEST.read_text())["version"]


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--app-id", "not-a-guid"], "--app-id"),
        (["--app-id", ZERO_GUID], "--app-id"),
        (["--app-id", "123e4567e89b12d3a456426614174000"], "--app-id"),
        (["--app-id", APP_ID, "--bot-id", "{" + BOT_ID + "}"], "--bot-id"),
        (["--app-id", APP_ID, "--domain", "https://bot.example.com/api"], "--domain"),
        (["--app-id", APP_ID, "--app-version", "v1"], "--app-version"),
    ],
)
def test_package_rejects_bad_input_with_exit_2(tmp_path: Path, args: list[str], named: str) -> None:
    out = tmp_path / "package.zip"
    result = run_package(*args, "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2
    assert named in result.stderr
    assert not out.exists()


def test_package_rejects_a_wrongly_sized_icon(tmp_path: Path, make_icons: ModuleType) -> None:
    source = tmp_path / "teams"
    source.mkdir()
    for name in ("manifest.json", "color.png", "outline.png"):
        shutil.copy(TEAMS_DIR / name, source / name)
    (source / "color.png").write_bytes(make_icons.encode_png(2, 2, [[(1, 2, 3, 255)] * 2] * 2))
    out = tmp_path / "package.zip"
    result = run_package(
        "--app-id", APP_ID, "--source", str(source), "--out", str(out), cwd=tmp_path
    )
    assert result.returncode == 2
    assert "192x192" in result.stderr
    assert not out.exists()


def test_package_rejects_a_long_short_name(tmp_path: Path) -> None:
    source = tmp_path / "teams"
    shutil.copytree(TEAMS_DIR, source, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    manifest = json.loads((source / "manifest.json").read_text())
    manifest["name"]["short"] = "An evangelist with a very long short name"
    (source / "manifest.json").write_text(json.dumps(manifest))
    result = run_package("--app-id", APP_ID, "--source", str(source), cwd=tmp_path)
    assert result.returncode == 2
    assert "name.short" in result.stderr


# -- Container image ---------------------------------------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, rest = pending.partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends in a continuation line"
    return instructions


def test_dockerfile_builds_in_two_stages_on_slim_python() -> None:
    instructions = dockerfile_instructions()
    args = {
        rest.split("=", 1)[0]: rest.split("=", 1)[1]
        for kw, rest in instructions
        if kw == "ARG" and "=" in rest
    }
    stages = [rest for kw, rest in instructions if kw == "FROM"]
    assert len(stages) >= 2
    base = args.get("PYTHON_IMAGE", "")
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-(bookworm|trixie)", base), base
    assert all(stage.startswith("${PYTHON_IMAGE}") for stage in stages)
    copies = [rest for kw, rest in instructions if kw == "COPY"]
    assert any(rest.startswith("--from=builder") and "/opt/venv" in rest for rest in copies)
    assert any("examples" in rest for rest in copies)


def test_dockerfile_runtime_contract() -> None:
    instructions = dockerfile_instructions()
    runtime = instructions[max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM") :]
    keywords = [kw for kw, _ in runtime]

    users = [rest for kw, rest in runtime if kw == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert users[-1].split(":")[0] in ("10001", "evangelist")
    assert any("--uid 10001" in rest for kw, rest in runtime if kw == "RUN")

    env = " ".join(rest for kw, rest in runtime if kw == "ENV")
    for setting in (
        "EVANGELIST_HOST=0.0.0.0",
        "EVANGELIST_PORT=3978",
        "EVANGELIST_DATABASE_URL=sqlite:////data/evangelist.db",
        "PYTHONUNBUFFERED=1",
    ):
        assert setting in env
    assert ("WORKDIR", "/app") in runtime
    assert any("/data" in rest for kw, rest in runtime if kw == "VOLUME")
    assert ("EXPOSE", "3978") in runtime

    [healthcheck] = [rest for kw, rest in runtime if kw == "HEALTHCHECK"]
    assert "/healthz" in healthcheck and "urllib" in healthcheck and "curl" not in healthcheck

    assert "ENTRYPOINT" not in keywords, (
        "a plain CMD lets `docker run IMAGE evangelist db upgrade` work"
    )
    [cmd] = [rest for kw, rest in runtime if kw == "CMD"]
    assert json.loads(cmd) == ["evangelist", "serve"]


def test_dockerignore_keeps_local_state_out_but_not_the_sources() -> None:
    patterns = {
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    for needed in (".git", ".venv", "**/*.db", ".pytest_cache", "**/__pycache__", ".env"):
        assert needed in patterns, needed
    for kept in (
        "README.md",
        "pyproject.toml",
        "bot",
        "migrations",
        "examples",
        "nudges",
        "content_library",
    ):
        assert kept not in patterns, kept


def test_compose_runs_the_bot_on_postgres() -> None:
    compose = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    postgres = compose["services"]["postgres"]
    assert postgres["image"] == "postgres:16"
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    assert {
        postgres["environment"][key]
        for key in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
    } == {"evangelist"}
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]

    bot = compose["services"]["evangelist"]
    assert bot["build"] == "."
    assert bot["depends_on"]["postgres"]["condition"] == "service_healthy"
    env = bot["environment"]
    assert (
        env["EVANGELIST_DATABASE_URL"]
        == "postgresql://evangelist:evangelist@postgres:5432/evangelist"
    )
    assert env["EVANGELIST_CONFIG"] == "/app/examples/organisation.yaml"
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_SIGNING_SECRET",
        "SLACK_APP_TOKEN",
        "TEAMS_APP_ID",
        "TEAMS_APP_PASSWORD",
    ):
        assert env[name] == "${" + name + ":-}", name
    assert bot["ports"] == ["127.0.0.1:3978:3978"]
