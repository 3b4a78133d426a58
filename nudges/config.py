"""Nudge campaigns and the policy above them, as the organisation file declares them.

```yaml
nudges:                      # one policy for everyone, above all campaigns
  max_nudges: 1              # at most this many nudges…
  per_days: 7                # …in any this many days, from all campaigns together
  min_gap_hours: 48
  window: {start: "10:00", end: "16:00"}   # local time, on the person's working days
  holidays: [2026-12-25]     # added to questions.holidays
campaigns:
  - id: react-weekly
    name: One reaction a week
    goal: More of us react to the page's posts
    owner: ada               # who runs it ("Why am I getting this?")
    audience: {teams: [admissions], stages: [watch, react]}   # also roles, channels, people
    cadence: {day: tue, at: "10:30"}        # or {day: tue, every_weeks: 2}, or {once: 2026-12-01}
    start: 2026-11-01
    end: 2027-03-31
    messages:
      watch: ["Hi {first_name}! This week, could you react to one post on {page}? {post}"]
      react: [{id: a, text: "…"}, {id: b, text: "…"}]   # two variants: an A/B test
```
"""

from __future__ import annotations

import string
from datetime import date, time
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from bot.config.base import Strict, check_key, weekday
from bot.core.types import Role


class Stage(StrEnum):
    """The participation ladder, one small step at a time."""

    WATCH = "watch"
    REACT = "react"
    SHARE = "share"
    COMMENT = "comment"
    CREATE = "create"

    @property
    def rank(self) -> int:
        return LADDER.index(self)

    @property
    def next(self) -> Stage:
        """The next small step (the top rung asks for more of the same)."""
        return LADDER[min(self.rank + 1, len(LADDER) - 1)]


LADDER = (Stage.WATCH, Stage.REACT, Stage.SHARE, Stage.COMMENT, Stage.CREATE)

PLACEHOLDERS = {
    "name": "the person's full name",
    "first_name": "the person's first name",
    "page": "the brand page the campaign points at",
    "post": "a recent post on that page (its link)",
    "step": "the next small step for them, in words",
    "campaign": "the campaign's name",
    "link": "a pick from the learning library",
}


class WindowConfig(Strict):
    """Local times of day nudges may arrive (on working days, in the person's time zone)."""

    start: time = time(10, 0)
    end: time = time(16, 0)

    @model_validator(mode="after")
    def _order(self) -> WindowConfig:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


class NudgePolicyConfig(Strict):
    """The one policy per person that sits above every campaign."""

    max_nudges: int = Field(default=1, ge=1, le=10)
    per_days: int = Field(default=7, ge=1, le=90)
    min_gap_hours: int = Field(default=48, ge=0, le=24 * 30)
    window: WindowConfig = Field(default_factory=WindowConfig)
    holidays: list[date] = Field(default_factory=list)


class CadenceConfig(Strict):
    """Weekly on a weekday (every N weeks), or once on a date; at a local time of day."""

    day: str | None = None
    every_weeks: int = Field(default=1, ge=1, le=52)
    once: date | None = None
    """A one-off on this local date. (Not `on:`: YAML 1.1 reads a bare `on` as true.)"""
    at: time = time(10, 30)

    @field_validator("day")
    @classmethod
    def _day(cls, value: str | None) -> str | None:
        return weekday(value) if value is not None else None

    @model_validator(mode="after")
    def _one_kind(self) -> CadenceConfig:
        if (self.day is None) == (self.once is None):
            raise ValueError("give either day (weekly) or once (a one-off date), not both")
        if self.once is not None and self.every_weeks != 1:
            raise ValueError("every_weeks is for weekly cadences (with day)")
        return self


class AudienceConfig(Strict):
    """Who a campaign is for: the union of what is listed, narrowed to the ladder stages."""

    everyone: bool = False
    teams: list[str] = Field(default_factory=list)
    """Members of these teams and of their sub-teams."""
    roles: list[Role] = Field(default_factory=list)
    people: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    """Members of the channels, as the organisation file knows them: the people in the teams
    that list the channel (on any platform) under `channels`, with their sub-teams."""
    stages: list[Stage] = Field(default_factory=list)
    """Only people at these ladder stages (all stages when empty)."""

    @model_validator(mode="after")
    def _someone(self) -> AudienceConfig:
        if not (self.everyone or self.teams or self.roles or self.people or self.channels):
            raise ValueError("name teams, roles, channels or people (or set everyone: true)")
        return self


def channel_key(channel: str) -> str:
    """How a channel is named among team ids in the planner's group map (`audience_groups`)."""
    return f"channel:{channel}"


def check_placeholders(text: str) -> str:
    """The text, if every {placeholder} in it is one we fill in; else a ValueError naming them."""
    try:
        names = [field for _, field, _, _ in string.Formatter().parse(text) if field]
    except ValueError as exc:
        raise ValueError(f"{exc} (write {{{{ and }}}} for literal braces)") from exc
    unknown = sorted({n for n in names if n not in PLACEHOLDERS})
    if unknown:
        known = ", ".join("{" + n + "}" for n in PLACEHOLDERS)
        raise ValueError(f"unknown placeholder(s) {unknown}; use {known}")
    return text


MessageText = Annotated[
    str, Field(min_length=1, max_length=1000), AfterValidator(check_placeholders)
]


class VariantConfig(Strict):
    id: str = Field(min_length=1, max_length=20)
    text: MessageText

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_key(value)


Variants = Annotated[list[VariantConfig | MessageText], Field(min_length=1, max_length=5)]


class CampaignConfig(Strict):
    id: str
    name: str = Field(min_length=1, max_length=100)
    goal: str = Field(default="", max_length=300)
    owner: str | None = None
    """The person who runs it (named in "Why am I getting this?"); default: an evangelist."""
    audience: AudienceConfig
    cadence: CadenceConfig
    start: date | None = None
    end: date | None = None
    priority: int = Field(default=0, ge=-100, le=100)
    """When campaigns compete for the same person's one nudge, the higher goes first."""
    page: str | None = Field(default=None, max_length=200)
    """The brand page the messages point at ({page}); default: the first source's name."""
    url: str | None = Field(default=None, max_length=1000, pattern=r"^https?://")
    """The post or page to engage with ({post}); default: the first source's page."""
    messages: dict[Stage, Variants]
    """Message variants by the person's current ladder stage."""
    paused: bool = False

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_key(value)

    @field_validator("messages")
    @classmethod
    def _messages(
        cls, value: dict[Stage, list[VariantConfig | str]]
    ) -> dict[Stage, list[VariantConfig | str]]:
        if not value:
            raise ValueError("give at least one stage's message")
        for stage, variants in value.items():
            ids = [v.id for v in _with_ids(variants)]
            if len(ids) != len(set(ids)):
                raise ValueError(f"{stage.value}: variant ids must differ ({', '.join(ids)})")
        return value

    @model_validator(mode="after")
    def _dates(self) -> CampaignConfig:
        if self.start and self.end and self.end < self.start:
            raise ValueError(f"end {self.end} is before start {self.start}")
        return self

    @property
    def uses_link(self) -> bool:
        """Whether its messages carry a learning-library pick ({link})."""
        return any(
            "link" in _fields(v.text)
            for variants in self.messages.values()
            for v in _with_ids(variants)
        )

    def variants(self, stage: Stage) -> list[VariantConfig]:
        """The variants for a stage, each with an id ('a', 'b', … when not given)."""
        return _with_ids(self.messages.get(stage, []))


def _fields(text: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(text) if field}


def _with_ids(variants: list[VariantConfig | str]) -> list[VariantConfig]:
    """Plain message strings get the ids 'a', 'b', … by their place in the list."""
    return [
        v if isinstance(v, VariantConfig) else VariantConfig(id=chr(ord("a") + i), text=v)
        for i, v in enumerate(variants)
    ]
