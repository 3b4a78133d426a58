"""Pieces every section of the organisation file shares (and `nudges/config.py` with it)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field

KEY = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
"""Index = Python's date.weekday() (0 = Monday)."""
FULL_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Strict(BaseModel):
    """Unknown keys are errors (a typo until proven otherwise); values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ChannelsConfig(Strict):
    """Channels by platform: Slack channel ids, Teams conversation ids, console names."""

    slack: list[str] = Field(default_factory=list)
    teams: list[str] = Field(default_factory=list)
    console: list[str] = Field(default_factory=list)

    def by_platform(self) -> list[tuple[str, str]]:
        """(platform, channel) pairs, in the order written."""
        return [
            *(("slack", c) for c in self.slack),
            *(("teams", c) for c in self.teams),
            *(("console", c) for c in self.console),
        ]


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r} (use an IANA name like Europe/London)"
        ) from exc
    return value


def check_key(value: str) -> str:
    if not KEY.match(value):
        raise ValueError("use lower-case letters, digits, '.', '_' or '-' (at most 64)")
    return value


def weekday(value: str) -> str:
    """'tue', 'Tuesday' → 'tue'; anything else is an error naming the choices."""
    lowered = value.strip().lower()
    if lowered not in WEEKDAYS and lowered not in FULL_WEEKDAYS:
        raise ValueError(f"unknown day {value!r} (use mon, tue, wed, thu, fri, sat, sun)")
    return lowered[:3]
