"""The console platform end to end: a scripted session's transcript."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bot.app import build
from bot.config.organisation import OrganisationConfig
from bot.core.clock import FrozenClock
from bot.platforms.console.repl import ConsoleSession
from tests.conftest import DEMO_ORG, ROOT, make_settings

SCRIPT = """\
help
1
/evangelist status
:as tom
/evangelist status
:join #admissions
2
:join #admissions
#admissions just chatting, nothing for the bot
#admissions @evangelist whoami
frobnicate
:quit
help
"""


async def run_script(
    database_url: str, clock: FrozenClock, org: OrganisationConfig, script: str
) -> str:
    bot = build(make_settings(database_url), clock=clock, organisation=org, console=True)
    await bot.prepare()
    assert bot.console is not None
    out = io.StringIO()
    session = ConsoleSession(
        bot.chat, bot.console, bot.db, bot.dispatcher.drain, out, "ada", echo=True
    )
    await session.switch_to("ada")
    try:
        await session.run(script.splitlines())
    finally:
        await bot.stop()
    return out.getvalue()


async def test_scripted_transcript(
    database_url: str, clock: FrozenClock, organisation: OrganisationConfig
) -> None:
    transcript = await run_script(database_url, clock, organisation, SCRIPT)
    blocks = transcript.split("\n")
    expected_in_order = [
        "You are Ada Okafor (ada). Type :help for console commands.",
        "ada> help",
        "[DM] Evangelist:",
        "  Hi Ada! I'm Evangelist.",
        "  [1] How do you know me?",
        "ada> 1",
        "  This is how I know you, Ada:",
        "  - Time zone: Europe/London (it is Monday 10:00 for you now)",
        "ada> /evangelist status",
        "[only you] Evangelist:",
        "  - Messages waiting to be sent: 0",
        "ada> :as tom",
        "You are now Tom Becker (tom).",
        "tom> /evangelist status",
        "  Sorry, only the evangelist can view delivery status.",
        "tom> :join #admissions",
        "  Welcome to #admissions, Tom! I'm Evangelist, the bot that helps us take part in our"
        " social media together.",
        "  [2] Show me  [3] Maybe later",
        "tom> 2",
        "  Hi Tom! I'm Evangelist.",
        "tom> :join #admissions",
        "(you joined #admissions)",
        "tom> #admissions just chatting, nothing for the bot",
        "tom> #admissions @evangelist whoami",
        "[#admissions thread] Evangelist:",
        "  - Time zone: America/New_York (it is Monday 05:00 for you now)",
        "tom> frobnicate",
        "  I don't know `frobnicate` yet. Say `help` to see what I can do.",
        "tom> :quit",
        "Bye!",
    ]
    position = 0
    for line in expected_in_order:
        assert line in blocks[position:], f"missing or out of order: {line!r}\n---\n{transcript}"
        position = blocks.index(line, position) + 1
    # The second join welcomes nobody, chatter gets no answer, and nothing runs after :quit.
    assert transcript.count("Welcome to #admissions") == 1
    after_chatter = transcript.split("tom> #admissions just chatting, nothing for the bot")[
        1
    ].split("tom> #admissions @evangelist")[0]
    assert after_chatter.strip() == ""
    assert transcript.rstrip().endswith("Bye!")
    # The evangelist's help lists the admin command; an employee's does not.
    ada_help = transcript.split("ada> 1")[0]
    tom_help = transcript.split("tom> 2")[1].split("tom> :join")[0]
    assert "status" in ada_help and "status" not in tom_help


def run_console(
    args: list[str], stdin: str, env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    """`evangelist console ARGS` with `stdin`; a console that does not end within a minute
    fails the test with every thread's stack (faulthandler), not just "timed out"."""
    command = [sys.executable, "-m", "bot", "console", *args]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**env, "PYTHONFAULTHANDLER": "1"},
        cwd=cwd,
    )
    try:
        out, err = process.communicate(stdin, timeout=60)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        out, err = process.communicate()
        pytest.fail(f"the console did not end within 60 s:\n{out[-2000:]}\n{err[-12000:]}")
    return subprocess.CompletedProcess(command, process.returncode, out, err)


def test_console_command_ends_cleanly_at_end_of_input(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "EVANGELIST_DATABASE_URL": f"sqlite:///{tmp_path / 'console.db'}",
        "EVANGELIST_CONFIG": str(DEMO_ORG),
    }
    result = run_console(["--as", "ravi", "--script", "-"], "whoami\n", env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "I know you from the organisation file as `ravi`." in result.stdout
    assert result.stdout.rstrip().endswith("Bye!")
    # Interactive mode with standard input closed at once ends just as cleanly.
    empty = run_console([], "", env, tmp_path)
    assert empty.returncode == 0, empty.stderr
    assert "You are Ada Okafor (ada)" in empty.stdout


def test_console_refuses_unknown_person(tmp_path: Path) -> None:
    env = {**os.environ, "EVANGELIST_DATABASE_URL": f"sqlite:///{tmp_path / 'c.db'}"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot",
            "console",
            "--config",
            str(DEMO_ORG),
            "--as",
            "nobody",
            "--script",
            "-",
        ],
        input="",
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "--as 'nobody'" in result.stderr
