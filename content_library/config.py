"""The learning library, as the organisation file declares it.

```yaml
library:
  weekly:                      # the link of the week, with an experiment and a thread prompt
    day: mon                   # in the organisation's time zone
    at: "10:00"
    channels: {slack: [C0LEARN01], teams: [], console: ["#learning"]}
    prompt: What is one thing here you could try on our pages this week?
  feeds:                       # subscribed feeds: new items wait in the suggested queue
    - url: https://blog.example.org/feed.xml
      topics: [video]
      level: share
  check:                       # link checks: how often, how fast, how politely
    every_days: 7
    concurrency: 20
    per_host: 2
    host_interval_seconds: 0.5
    timeout_seconds: 10
    broken_after: 3            # unreachable this many checks in a row = broken
  summary_day: mon             # the evangelist's weekly library summary
```

Personal picks are not configured here: a nudge campaign whose message uses `{link}` carries
one, under the nudge policy (see `nudges/config.py`).
"""

from __future__ import annotations

from datetime import time

from pydantic import Field, field_validator

from bot.config.base import ChannelsConfig, Strict, weekday
from nudges.config import Stage

DEFAULT_PROMPT = "What's one thing here you could try on our pages this week?"


class WeeklyConfig(Strict):
    """The weekly "link of the week" post to channels."""

    day: str = "mon"
    at: time = time(10, 0)
    channels: ChannelsConfig = Field(default_factory=ChannelsConfig)
    prompt: str = Field(default=DEFAULT_PROMPT, min_length=1, max_length=300)
    """The discussion prompt posted in the thread under the link."""

    @field_validator("day")
    @classmethod
    def _day(cls, value: str) -> str:
        return weekday(value)


class FeedConfig(Strict):
    url: str
    topics: list[str] = Field(default_factory=list, max_length=10)
    level: Stage | None = None
    """The ladder stage its items suit."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        from content_library.canonical import InvalidLink, canonical_url

        try:
            return canonical_url(value)
        except InvalidLink as exc:
            raise ValueError(str(exc)) from exc


class CheckConfig(Strict):
    """How links are checked: often enough to catch rot, gently enough for other people's
    servers (at most `per_host` requests at once to one host, `host_interval_seconds` apart)."""

    every_days: int = Field(default=7, ge=1, le=90)
    concurrency: int = Field(default=20, ge=1, le=200)
    per_host: int = Field(default=2, ge=1, le=10)
    host_interval_seconds: float = Field(default=0.5, ge=0, le=60)
    timeout_seconds: float = Field(default=10, gt=0, le=120)
    broken_after: int = Field(default=3, ge=1, le=20)
    """Checks in a row that cannot reach a link before it counts as broken (a 404 or 410
    is broken at once)."""
    batch: int = Field(default=500, ge=1, le=10_000)
    """Links checked per run of the job (every hour)."""
    private_addresses: bool = False
    """Also check links on private, loopback or link-local addresses (intranet libraries).
    Off, such links are not requested (a feed cannot make the service probe the internal
    network) and count as broken."""


class LibraryConfig(Strict):
    weekly: WeeklyConfig | None = None
    feeds: list[FeedConfig] = Field(default_factory=list, max_length=200)
    check: CheckConfig = Field(default_factory=CheckConfig)
    poll_hours: int = Field(default=6, ge=1, le=24 * 7)
    """How often subscribed feeds are read."""
    summary_day: str = "mon"

    @field_validator("summary_day")
    @classmethod
    def _summary_day(cls, value: str) -> str:
        return weekday(value)
