"""Print the Nth shell command of the README's '## Quick start' section (1-based)."""

from __future__ import annotations

import re
import sys
from pathlib import Path


def quick_start_commands(readme: str) -> list[str]:
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```(?:sh|bash|shell)\n(.*?)```", section, re.S)]


if __name__ == "__main__":
    commands = quick_start_commands(
        Path(__file__).resolve().parent.parent.joinpath("README.md").read_text()
    )
    if len(commands) != 2:
        sys.exit(
            f"README's Quick start must have exactly two shell commands, found {len(commands)}"
        )
    print(commands[int(sys.argv[1]) - 1])
