"""Leader digests, as the organisation file declares them.

```yaml
digests:
  day: mon              # when each leader gets last week's digest, in their own time zone
  at: "09:00"
  min_group: 5          # no figure about people for a group smaller than this
  narrative: true       # three sentences from the language model, when one is configured
  leaders:              # per-leader exceptions, by person id
    grace: {day: fri, at: "16:00"}
    omar: {enabled: false}
```

A digest always covers the last complete week (Monday 00:00 to Monday 00:00 in the leader's
time zone); `day` and `at` only choose when it arrives.
"""

from __future__ import annotations

from datetime import time

from pydantic import Field, field_validator

from bot.config.base import Strict, weekday

MIN_GROUP_FLOOR = 3
"""Below three, a breakdown names a person to anyone who knows one other member."""


class LeaderDigestConfig(Strict):
    """One leader's exceptions to the organisation's digest schedule."""

    enabled: bool = True
    day: str | None = None
    at: time | None = None

    @field_validator("day")
    @classmethod
    def _day(cls, value: str | None) -> str | None:
        return weekday(value) if value is not None else None


class DigestConfig(Strict):
    enabled: bool = True
    day: str = "mon"
    at: time = time(9, 0)
    min_group: int = Field(default=5, ge=MIN_GROUP_FLOOR, le=1000)
    """The privacy threshold k: people-based figures only for groups of at least k people."""
    narrative: bool = True
    leaders: dict[str, LeaderDigestConfig] = Field(default_factory=dict)

    @field_validator("day")
    @classmethod
    def _day(cls, value: str) -> str:
        return weekday(value)

    def schedule_of(self, person: str) -> tuple[bool, str, time]:
        """(enabled, day, time) for one leader."""
        own = self.leaders.get(person)
        if own is None:
            return self.enabled, self.day, self.at
        return (
            self.enabled and own.enabled,
            own.day or self.day,
            own.at if own.at is not None else self.at,
        )
