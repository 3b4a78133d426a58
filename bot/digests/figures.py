"""What a digest says, as numbers: computed once, stored as the week's snapshot, then rendered.

Every figure about people is None when the group it describes is smaller than the privacy
threshold (`min_group`); figures about the public's questions are always shown.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

ACTIVE_KINDS = (
    "question_claimed",
    "question_answered",
    "answer_verified",
    "page_comment",
    "nudge_done",
    "link_opened",
    "experiment_tried",
    "experiment_note",
    "reacted",
)
"""Participation events that make a person active in a week. Being routed a question, saying
"not me" or moving on the ladder are not, by themselves, taking part."""

MIX = {
    "Answered questions": ("question_answered",),
    "Claimed questions": ("question_claimed",),
    "Comments on our pages": ("page_comment",),
    "Nudges done": ("nudge_done",),
    "Links opened": ("link_opened",),
    "Experiments tried": ("experiment_tried",),
    "Learning notes": ("experiment_note",),
    "Reactions": ("reacted",),
}
"""This week's mix of participation, by what people did (the chart's second panel)."""

TREND_WEEKS = 8


@dataclass(frozen=True, slots=True)
class PeopleWeek:
    """Figures about the people in a group for one week."""

    people: int
    active: int
    nudges_sent: int = 0
    nudges_done: int = 0
    ladder_up: int = 0
    links_opened: int = 0
    experiments: int = 0
    mix: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.active / self.people if self.people else 0.0


@dataclass(frozen=True, slots=True)
class DeskWeek:
    """The question desk for one week: public questions put to the group's people."""

    routed: int = 0
    claimed: int = 0
    answered: int = 0
    median_minutes: float | None = None
    p90_minutes: float | None = None
    sla_breaches: int = 0


@dataclass(frozen=True, slots=True)
class WeekPoint:
    """One week of the trend (the chart's first panel)."""

    label: str
    rate: float | None
    """Share of people active; None when the group is under the threshold."""
    answered: int


@dataclass(frozen=True, slots=True)
class Group:
    """A row of the breakdown: a team (with its sub-teams) of at least `min_group` people."""

    name: str
    people: int
    active: int

    @property
    def rate(self) -> float:
        return self.active / self.people if self.people else 0.0


@dataclass(frozen=True, slots=True)
class Recognised:
    """Someone who stepped up this week and agreed to be named."""

    name: str
    did: str


@dataclass(frozen=True, slots=True)
class Oldest:
    """The question that has waited longest for an answer, at the end of the period."""

    hours: float
    topic: str | None
    url: str | None


@dataclass(frozen=True, slots=True)
class DigestFigures:
    leader: str
    """The leader's person key ('' for the organisation-wide digest)."""
    leader_name: str
    scope: str
    """What the digest covers, as the leader reads it: 'Admissions and Research Office'."""
    week: str
    days: str
    zone: str
    so_far: bool
    """True for 'this week so far' (an incomplete week)."""
    min_group: int
    people: int
    this: PeopleWeek | None
    previous: PeopleWeek | None
    """The week before, for the week-over-week change (None when withheld)."""
    average_rate: float | None
    """The mean active share over the 8 weeks before this one (None when withheld)."""
    desk: DeskWeek
    desk_before: DeskWeek
    trend: list[WeekPoint]
    groups: list[Group] = field(default_factory=list)
    hidden_groups: int = 0
    """Teams in scope not shown separately because they (or what is left) are too small."""
    recognised: list[Recognised] = field(default_factory=list)
    others: int = 0
    """How many more people stepped up without being named (they have not opted in)."""
    topics: list[tuple[str, int]] = field(default_factory=list)
    oldest: Oldest | None = None
    average_weeks: int = TREND_WEEKS
    """How many weeks `average_rate` covers (fewer in an organisation's first weeks)."""

    @property
    def withheld(self) -> bool:
        return self.this is None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DigestFigures:
        values = dict(data)
        for name in ("this", "previous"):
            if values.get(name) is not None:
                values[name] = PeopleWeek(**values[name])
        values["desk"] = DeskWeek(**values["desk"])
        values["desk_before"] = DeskWeek(**values["desk_before"])
        values["trend"] = [WeekPoint(**p) for p in values["trend"]]
        values["groups"] = [Group(**g) for g in values.get("groups", ())]
        values["recognised"] = [Recognised(**r) for r in values.get("recognised", ())]
        values["topics"] = [(str(t), int(n)) for t, n in values.get("topics", ())]
        if values.get("oldest") is not None:
            values["oldest"] = Oldest(**values["oldest"])
        return cls(**values)
