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
    assert len(org.teams) == 2 and len(org.topics) >= 2


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
