"""Which nudges to send, to whom, when: every campaign's wishes, put through each person's policy.

Each campaign slot for a person (an `Occurrence`) is a *wish*. A wish that the policy blocks at
its time (a holiday, a pause, the weekly cap) may still go later, until the campaign's next slot
for that person (or a week, whichever is sooner); after that it lapses. When several wishes
compete for the same person, the planner takes, among those that could go before the earliest
one's cap window closes, the campaign that reached this person least recently, then the higher
priority, then the earlier time. So overlapping campaigns take turns instead of the earliest
weekday winning every week.

The planner is pure: the same campaigns, people and history always give the same plan, which is
what lets a restart, another replica or the preview command agree with what was planned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from nudges.cadence import occurrences
from nudges.config import CampaignConfig, Stage
from nudges.policy import PersonState, Rules, next_allowed

MAX_DELAY = timedelta(days=7)
"""The longest a blocked wish waits for the policy to let it through."""


@dataclass
class Recipient:
    """A person as the planner sees them: the policy state plus what audiences select on."""

    state: PersonState
    name: str
    stage: Stage = Stage.WATCH
    teams: frozenset[str] = frozenset()
    roles: frozenset[str] = frozenset()
    last_by_campaign: dict[str, datetime] = field(default_factory=dict)
    """When each campaign last reached them."""

    @property
    def key(self) -> str:
        return self.state.key


@dataclass(frozen=True, slots=True)
class PlannedNudge:
    person: str
    campaign: str
    day: date
    """The campaign slot's local date: (campaign, person, day) names the nudge."""
    send_at: datetime
    """UTC."""
    local_time: datetime
    """The same instant on the person's clock."""
    variant: str
    stage: Stage

    @property
    def key(self) -> str:
        return f"nudge:{self.campaign}:{self.person}:{self.day.isoformat()}"


@dataclass(frozen=True, slots=True)
class _Wish:
    campaign: CampaignConfig
    day: date
    due: datetime
    expires: datetime


def in_audience(campaign: CampaignConfig, person: Recipient, teams: dict[str, set[str]]) -> bool:
    """Whether the campaign is for this person; `teams` maps a team to it and its sub-teams."""
    audience = campaign.audience
    if audience.stages and person.stage not in audience.stages:
        return False
    if audience.everyone or person.key in audience.people:
        return True
    if any(role.value in person.roles for role in audience.roles):
        return True
    return any(person.teams & teams.get(team, {team}) for team in audience.teams)


def variant_for(campaign: CampaignConfig, person: str, stage: Stage) -> str | None:
    """The person's A/B arm: the same variant every time, spread evenly over people."""
    variants = campaign.variants(stage)
    if not variants:
        return None
    digest = hashlib.sha256(f"{campaign.id}\x00{person}".encode()).digest()
    return variants[int.from_bytes(digest[:4], "big") % len(variants)].id


def plan_person(
    rules: Rules,
    campaigns: Sequence[CampaignConfig],
    person: Recipient,
    start: datetime,
    end: datetime,
    *,
    teams: dict[str, set[str]],
    taken: Iterable[tuple[str, date]] = (),
) -> list[PlannedNudge]:
    """The nudges for one person that go in [start, end); adds them to `person.state.sent`.

    `taken` names slots (campaign, day) already planned or sent: they are not planned again.
    Wishes from before `start` that could still go are considered (they may be late).
    """
    state = person.state
    if state.opted_out:
        return []
    done = set(taken)
    wishes: list[_Wish] = []
    for campaign in campaigns:
        if campaign.paused or campaign.id in state.stopped:
            continue
        if not campaign.variants(person.stage) or not in_audience(campaign, person, teams):
            continue
        slots = list(occurrences(campaign, state.zone, start - MAX_DELAY, end + MAX_DELAY))
        for index, slot in enumerate(slots):
            if (campaign.id, slot.day) in done or slot.due >= end:
                continue
            following = slots[index + 1].due if index + 1 < len(slots) else None
            expires = slot.due + MAX_DELAY
            if following is not None:
                expires = min(expires, following)
            if expires > start:
                wishes.append(_Wish(campaign, slot.day, slot.due, expires))
    planned: list[PlannedNudge] = []
    while wishes:
        options: list[tuple[datetime, _Wish]] = []
        for wish in wishes:
            latest = min(wish.expires, end) - timedelta(microseconds=1)
            at = next_allowed(rules, state, wish.campaign.id, max(wish.due, start), latest)
            if at is not None:
                options.append((at, wish))
        if not options:
            break
        first = min(at for at, _ in options)
        contenders = [(at, w) for at, w in options if at < first + rules.per]
        at, chosen = min(contenders, key=lambda option: _preference(person, *option))
        variant = variant_for(chosen.campaign, person.key, person.stage)
        assert variant is not None
        planned.append(
            PlannedNudge(
                person.key,
                chosen.campaign.id,
                chosen.day,
                at,
                at.astimezone(state.zone),
                variant,
                person.stage,
            )
        )
        state.add(at)
        person.last_by_campaign[chosen.campaign.id] = at
        # One nudge per campaign slot; earlier slots of the same campaign lapse with it.
        wishes = [
            w
            for w in wishes
            if w is not chosen and not (w.campaign.id == chosen.campaign.id and w.due <= chosen.due)
        ]
    return planned


def _preference(person: Recipient, at: datetime, wish: _Wish) -> tuple[float, int, datetime, str]:
    last = person.last_by_campaign.get(wish.campaign.id)
    # Never reached them first, then the longest ago.
    staleness = float("-inf") if last is None else last.timestamp()
    return (staleness, -wish.campaign.priority, at, wish.campaign.id)


def team_closure(parents: dict[str, str | None]) -> dict[str, set[str]]:
    """Each team with all its sub-teams (a team's members include its sub-teams' members)."""
    children: dict[str, set[str]] = {team: set() for team in parents}
    for team, parent in parents.items():
        if parent is not None and parent in children:
            children[parent].add(team)
    closure: dict[str, set[str]] = {}
    for team in parents:
        seen: set[str] = set()
        stack = [team]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            stack.extend(children.get(current, ()))
        closure[team] = seen
    return closure
