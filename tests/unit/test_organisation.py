from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import main
from bot.config.organisation import load_organisation, parse_organisation
from bot.core.errors import ConfigurationError
from bot.core.types import Role
from tests.conftest import DEMO_ORG

BROKEN = """\
organisation:
  name: Example
people:
  - id: ada
    name: Ada
    timezone: Mars/Olympus
    roles: [evangelist, wizard]
  - id: ada
    name: Ada again
    slack: not-an-id
    favourite_colour: blue
teams:
  - id: t1
    name: Team
    leaders: [nobody]
"""


def test_demo_organisation_is_valid() -> None:
    org = load_organisation(DEMO_ORG)
    assert {p.id for p in org.people} >= {"ada", "grace", "ravi"}
    assert Role.EMPLOYEE in org.people[0].roles  # everyone is an employee
    assert len(org.teams) == 3 and len(org.topics) >= 2
    # Digests break down only groups of at least min_group: the demo's teams are big enough.
    assert org.digests.min_group == 5 and [p.id for p in org.leaders()] == ["grace"]
    sizes = {t.id: len(t.members) for t in org.teams}
    assert sizes == {"admissions": 5, "international": 5, "research": 7}


def test_every_error_has_its_path_and_line() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_organisation(BROKEN, source="org.yaml")
    problems = caught.value.problems
    text = "\n".join(problems)
    assert "org.yaml:6: people[0].timezone: unknown time zone 'Mars/Olympus'" in text
    assert "people[0].roles[1]" in text
    assert "org.yaml:10: people[1].slack" in text
    assert "people[1].favourite_colour: unknown setting" in text
    assert len(problems) == 4


def test_cross_references_are_checked() -> None:
    text = (
        BROKEN.replace("Mars/Olympus", "UTC")
        .replace(", wizard", "")
        .replace("    slack: not-an-id\n    favourite_colour: blue\n", "")
    )
    with pytest.raises(ConfigurationError) as caught:
        parse_organisation(text, source="org.yaml")
    joined = "\n".join(caught.value.problems)
    assert "people[1].id: 'ada' is also used by people[0]" in joined
    assert "teams[0].leaders[0]: no person with id 'nobody'" in joined


def test_invalid_yaml_names_the_line() -> None:
    with pytest.raises(ConfigurationError, match="line 3"):
        parse_organisation("organisation:\n  name: x\n  - broken: [\n", source="o.yaml")


def test_not_a_mapping() -> None:
    with pytest.raises(ConfigurationError, match="expected a mapping"):
        parse_organisation("- just\n- a list\n")


def test_validate_command_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "validate", str(DEMO_ORG)]) == 0
    assert "OK" in capsys.readouterr().out
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    assert main(["config", "validate", str(broken)]) == 2
    err = capsys.readouterr().err
    assert "people[0].timezone" in err and "favourite_colour" in err
    assert main(["config", "validate", str(tmp_path / "missing.yaml")]) == 2
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert main(["config", "validate", str(binary)]) == 2


def test_python_m_bot_is_the_same_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "config", "validate", str(DEMO_ORG)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout


DESK = """\
organisation: {name: Example}
questions:
  working_hours: {start: "17:00", end: "09:00", days: [mon, funday]}
people:
  - {id: ada, name: Ada, handles: {myspace: [ada]}}
sources:
  - {id: page, kind: facebook_page, page_id: "12a"}
  - {id: page, kind: rss, url: "ftp://example.org/feed"}
  - {id: tube, kind: youtube, channel_id: UCabcdefghijklmnop}
  - {id: hook, kind: webhook}
  - {id: odd, kind: tiktok}
"""


def test_desk_settings_and_sources_are_checked_with_their_paths() -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_organisation(DESK, source="org.yaml")
    problems = "\n".join(caught.value.problems)
    assert "questions.working_hours.days" in problems and "funday" in problems
    assert "people[0].handles" in problems and "myspace" in problems
    assert "sources[0].facebook_page.page_id" in problems
    assert "sources[1].rss.url" in problems
    assert "sources[3].webhook.secret_env: Field required" in problems
    assert "sources[4]" in problems and "tiktok" in problems


def test_working_hours_must_end_after_they_start() -> None:
    text = 'organisation: {name: X}\nquestions:\n  working_hours: {start: "17:00", end: "09:00"}\n'
    with pytest.raises(ConfigurationError) as caught:
        parse_organisation(text)
    assert "must be after start" in "\n".join(caught.value.problems)


def test_duplicate_source_ids_are_refused() -> None:
    text = (
        "organisation: {name: X}\nsources:\n"
        "  - {id: a, kind: csv}\n  - {id: a, kind: webhook, secret_env: S}\n"
    )
    with pytest.raises(ConfigurationError) as caught:
        parse_organisation(text)
    assert "sources[1].id: 'a' is also used by sources[0]" in "\n".join(caught.value.problems)


def test_the_language_model_section_is_optional_with_defaults() -> None:
    assert parse_organisation("organisation: {name: X}\n").language_model is None
    config = parse_organisation("organisation: {name: X}\nlanguage_model: {}\n").language_model
    assert config is not None
    assert (config.chat_model, config.embedding_model) == ("gpt-4o-mini", "text-embedding-3-small")
    assert config.daily_token_budget == 200_000
    assert (config.timeout_seconds, config.max_retries) == (20, 2)
    assert config.drafts is True and config.classify_below == 0.5 and config.tone


def test_the_language_model_settings_are_checked_with_their_paths() -> None:
    text = """\
organisation: {name: X}
language_model:
  chat_model: ""
  daily_token_budget: -1
  timeout_seconds: 0
  max_retries: 9
  classify_below: 1.5
  drafts: perhaps
  temperature: 0.2
"""
    with pytest.raises(ConfigurationError) as caught:
        parse_organisation(text, source="org.yaml")
    problems = "\n".join(caught.value.problems)
    for path in (
        "org.yaml:3: language_model.chat_model",
        "org.yaml:4: language_model.daily_token_budget",
        "org.yaml:5: language_model.timeout_seconds",
        "org.yaml:6: language_model.max_retries",
        "org.yaml:7: language_model.classify_below",
        "org.yaml:8: language_model.drafts",
        "language_model.temperature: unknown setting",
    ):
        assert path in problems, problems
    assert len(caught.value.problems) == 7


CAMPAIGN_ORG = """
organisation: {name: Northfield}
people:
  - {id: ada, name: Ada, roles: [evangelist]}
  - {id: tom, name: Tom}
  - {id: mia, name: Mia}
teams:
  - id: admissions
    name: Admissions
    members: [tom]
    channels: {slack: [C0ADM], console: ["#admissions"]}
  - {id: intake, name: Intake, parent: admissions, members: [mia]}
campaigns:
  - id: hello
    name: Hello
    owner: OWNER
    audience: {channels: [CHANNEL], people: [PERSON]}
    cadence: {once: 2026-12-01}
    messages: {watch: ["Hi {first_name}!"]}
"""


def test_campaign_references_are_checked() -> None:
    good = CAMPAIGN_ORG.replace("OWNER", "ada").replace("CHANNEL", '"#admissions"')
    org = parse_organisation(good.replace("PERSON", "ada"))
    # A channel's members: the teams that list it, with their sub-teams.
    assert org.audience_groups()["channel:#admissions"] == {"admissions", "intake"}
    assert org.audience_groups()["channel:C0ADM"] == {"admissions", "intake"}
    bad = CAMPAIGN_ORG.replace("OWNER", "zed").replace("CHANNEL", "'#nowhere'")
    with pytest.raises(ConfigurationError) as caught:
        parse_organisation(bad.replace("PERSON", "nobody"))
    problems = " ".join(caught.value.problems)
    assert "campaigns[0].owner: no person with id 'zed'" in problems
    assert "campaigns[0].audience.people[0]: no person with id 'nobody'" in problems
    assert "campaigns[0].audience.channels[0]: no team lists the channel '#nowhere'" in problems


def test_yaml_on_is_not_a_cadence_key() -> None:
    """YAML 1.1 reads a bare `on:` as true: the one-off key is `once:`, and `on` is refused."""
    text = CAMPAIGN_ORG.replace("OWNER", "ada").replace("CHANNEL", '"#admissions"')
    text = text.replace("PERSON", "ada").replace("once: 2026-12-01", "on: 2026-12-01")
    with pytest.raises(ConfigurationError):
        parse_organisation(text)
