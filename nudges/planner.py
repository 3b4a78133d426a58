"""Which nudges to send, to whom, when: every campaign's wishes, put through each person's policy.

Each campaign slot for a person (an `Occurrence`) is a *wish*. A wish that the policy blocks at
its time (a holiday, a pause, the weekly cap) may still go later, until the campaign's next slot
for that person (or a week, whichever is sooner); after that it lapses, and it gives way
earlier when the campaign's next slot could go within the cap window. When several wishes
compete for the same person, the planner takes, among those that could go before the earliest
one's cap window closes, the campaign that reached this person least recently, then the higher
priority, then the earlier time. So overlapping campaigns take turns instead of the earliest
weekday winning every week.

The planner is pure: the same campaigns, people and history always give the same plan, which is
what lets a restart, another replica or the preview command agree with what was planned.
`plan_people` plans a whole audience at once and gives exactly what `plan_person` gives for each
person in turn; it only works out once what people share (a time zone's slots, the window's
instants on a local day, the variants, who is in each audience).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from nudges.cadence import occurrences
from nudges.config import CampaignConfig, Stage, channel_key
from nudges.policy import PersonState, Rules, Windows, next_allowed

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
    index: int
    """The campaign's place in the planning's list."""
    day: date
    due: datetime
    expires: datetime
    slot: tuple[str, date]
    """(campaign id, day): how `taken` names it."""
    earliest: datetime
    """When it may go at the soonest: its time, or the start of the planning if that is later."""
    latest: datetime
    """The last instant it may go: before it lapses and before the end of the planning."""


def in_audience(campaign: CampaignConfig, person: Recipient, teams: dict[str, set[str]]) -> bool:
    """Whether the campaign is for this person; `teams` maps a team to it and its sub-teams."""
    audience = campaign.audience
    if audience.stages and person.stage not in audience.stages:
        return False
    if audience.everyone or person.key in audience.people:
        return True
    if any(role.value in person.roles for role in audience.roles):
        return True
    groups = [teams.get(team, {team}) for team in audience.teams]
    groups += [teams.get(channel_key(channel), set()) for channel in audience.channels]
    return any(person.teams & group for group in groups)


def variant_for(campaign: CampaignConfig, person: str, stage: Stage) -> str | None:
    """The person's A/B arm: the same variant every time, spread evenly over people."""
    return _pick([v.id for v in campaign.variants(stage)], campaign.id, person)


def _pick(variants: Sequence[str], campaign: str, person: str) -> str | None:
    """`variant_for`, given the variants' ids (the planner keeps them per campaign and stage)."""
    if not variants:
        return None
    digest = hashlib.sha256(f"{campaign}\x00{person}".encode()).digest()
    return variants[int.from_bytes(digest[:4], "big") % len(variants)]


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
    return _Planning(rules, campaigns, start, end, teams).plan(person, taken)


def plan_people(
    rules: Rules,
    campaigns: Sequence[CampaignConfig],
    people: Iterable[Recipient],
    start: datetime,
    end: datetime,
    *,
    teams: dict[str, set[str]],
    taken: Mapping[str, Iterable[tuple[str, date]]] | None = None,
) -> list[PlannedNudge]:
    """`plan_person` for each person in turn, the plans concatenated, for a whole audience.

    `taken` maps a person's key to the slots already planned or sent to them. The result and
    the states it updates are exactly those of calling `plan_person` for each person in order;
    what does not depend on the person (slots per time zone, window instants per local day,
    variants, audiences) is worked out once for everyone instead of once per person.
    """
    planning = _Planning(rules, campaigns, start, end, teams)
    planned: list[PlannedNudge] = []
    for person in people:
        slots = taken.get(person.key, ()) if taken is not None else ()
        planned += planning.plan(person, slots)
    return planned


class _Planning:
    """One planning run over [start, end): what people share, worked out when first needed.

    Lives for one call, so nothing outlives the campaigns it was computed from (a campaign edit
    between two runs is always seen). Campaigns are known by their place in `campaigns`, not by
    their id: pydantic models are not hashable, and an id says nothing about the cadence.
    """

    def __init__(
        self,
        rules: Rules,
        campaigns: Sequence[CampaignConfig],
        start: datetime,
        end: datetime,
        teams: dict[str, set[str]],
    ) -> None:
        self.rules = rules
        self.campaigns = list(campaigns)
        self.start = start
        self.end = end
        self.teams = teams
        self.windows = Windows(rules)
        self._variants: dict[tuple[int, Stage], list[str]] = {}
        self._audiences: dict[int, _Audience] = {}
        self._wishes: dict[tuple[int, ZoneInfo], list[_Wish]] = {}
        self._profiles: dict[object, list[tuple[int, frozenset[str] | None]]] = {}

    def plan(self, person: Recipient, taken: Iterable[tuple[str, date]]) -> list[PlannedNudge]:
        """What `plan_person` promises, for one person."""
        state = person.state
        if state.opted_out:
            return []
        done = taken if isinstance(taken, set | frozenset) else set(taken)
        wishes: list[_Wish] = []
        for index in self.campaigns_for(person):
            for wish in self.wishes(index, state.zone):
                if not done or wish.slot not in done:
                    wishes.append(wish)
        planned: list[PlannedNudge] = []
        per = self.rules.per
        while wishes:
            options = self._options(state, wishes, skip=True)
            if not options:
                break
            kept = _superseded_dropped(options, per)
            if len(kept) != len(options):
                # A late wish gave way: ask about every wish, so that what replaced it and
                # what now comes first are the same as if nothing had been skipped.
                kept = _superseded_dropped(self._options(state, wishes, skip=False), per)
            options = kept
            first = min(at for at, _ in options)
            contenders = [(at, w) for at, w in options if at < first + per]
            if len(contenders) == 1:
                [(at, chosen)] = contenders
            else:
                at, chosen = min(contenders, key=lambda option: _preference(person, *option))
            variants = self.variants(chosen.index, person.stage)
            variant = _pick(variants, chosen.campaign.id, person.key)
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
                if w is not chosen
                and not (w.campaign.id == chosen.campaign.id and w.due <= chosen.due)
            ]
        return planned

    def _options(
        self, state: PersonState, wishes: list[_Wish], *, skip: bool
    ) -> list[tuple[datetime, _Wish]]:
        """When each wish could go, for those that can.

        With `skip`, a wish that cannot go before two cap windows after the first option found
        is not asked about: it can neither be a contender nor replace one (see
        `_superseded_dropped`).
        """
        options: list[tuple[datetime, _Wish]] = []
        first: datetime | None = None
        reach = 2 * self.rules.per
        for wish in wishes:
            if skip and first is not None and wish.earliest >= first + reach:
                continue
            at = next_allowed(
                self.rules,
                state,
                wish.campaign.id,
                wish.earliest,
                wish.latest,
                windows=self.windows,
            )
            if at is not None:
                options.append((at, wish))
                if first is None or at < first:
                    first = at
        return options

    def campaigns_for(self, person: Recipient) -> list[int]:
        """The campaigns (by place) that want this person at all.

        That is: not paused, not stopped by them, with a message for their stage, and with them
        in the audience. All of it but an audience's list of people depends only on the stage,
        teams, roles and stopped campaigns, which many people share: it is worked out once for
        each such profile, leaving only the lookups in lists of people for each person.
        """
        state = person.state
        profile: list[tuple[int, frozenset[str] | None]] | None
        try:
            key = (person.stage, person.teams, person.roles, state.stopped)
            profile = self._profiles.get(key)
        except TypeError:  # a set where a frozenset belongs: fine, but not a key
            key, profile = None, None
        if profile is None:
            profile = []
            for index, campaign in enumerate(self.campaigns):
                if campaign.paused or campaign.id in state.stopped:
                    continue
                if not self.variants(index, person.stage):
                    continue
                audience = self.audience(index)
                if audience.stages and person.stage not in audience.stages:
                    continue
                if audience.everyone or audience.has_group(person):
                    profile.append((index, None))
                elif audience.people:
                    profile.append((index, audience.people))
            if key is not None:
                self._profiles[key] = profile
        return [index for index, people in profile if people is None or person.key in people]

    def variants(self, index: int, stage: Stage) -> list[str]:
        """The ids of the campaign's variants for a stage (building them validates each text)."""
        key = (index, stage)
        ids = self._variants.get(key)
        if ids is None:
            ids = self._variants[key] = [v.id for v in self.campaigns[index].variants(stage)]
        return ids

    def audience(self, index: int) -> _Audience:
        """The campaign's audience, ready to test people against."""
        audience = self._audiences.get(index)
        if audience is None:
            audience = self._audiences[index] = _Audience(self.campaigns[index], self.teams)
        return audience

    def wishes(self, index: int, zone: ZoneInfo) -> list[_Wish]:
        """The campaign's wishes in this run for anyone in `zone`, before `taken` is applied.

        A wish is a slot due before the end whose time to go (until the campaign's next slot or
        `MAX_DELAY`, whichever is sooner) reaches past the start.
        """
        key = (index, zone)
        wishes = self._wishes.get(key)
        if wishes is not None:
            return wishes
        campaign, start, end = self.campaigns[index], self.start, self.end
        slots = list(occurrences(campaign, zone, start - MAX_DELAY, end + MAX_DELAY))
        wishes = []
        for position, slot in enumerate(slots):
            if slot.due >= end:
                continue
            following = slots[position + 1].due if position + 1 < len(slots) else None
            expires = slot.due + MAX_DELAY
            if following is not None:
                expires = min(expires, following)
            if expires > start:
                wishes.append(
                    _Wish(
                        campaign,
                        index,
                        slot.day,
                        slot.due,
                        expires,
                        (campaign.id, slot.day),
                        max(slot.due, start),
                        min(expires, end) - timedelta(microseconds=1),
                    )
                )
        self._wishes[key] = wishes
        return wishes


class _Audience:
    """`in_audience` for one campaign, with its lists made into sets and its teams expanded."""

    __slots__ = ("everyone", "people", "roles", "stages", "teams")

    def __init__(self, campaign: CampaignConfig, teams: dict[str, set[str]]) -> None:
        audience = campaign.audience
        self.stages = tuple(audience.stages)
        self.everyone = audience.everyone
        self.people = frozenset(audience.people)
        self.roles = frozenset(role.value for role in audience.roles)
        self.teams: frozenset[str] = frozenset().union(
            *(teams.get(team, {team}) for team in audience.teams),
            *(teams.get(channel_key(channel), set()) for channel in audience.channels),
        )

    def has_group(self, person: Recipient) -> bool:
        """Whether one of the person's roles or teams is in the audience."""
        return not (self.roles.isdisjoint(person.roles) and self.teams.isdisjoint(person.teams))


def _superseded_dropped(
    options: list[tuple[datetime, _Wish]], per: timedelta
) -> list[tuple[datetime, _Wish]]:
    """The options without the late ones a newer slot of their campaign replaces.

    A wish that can only go after its time gives way when a newer slot of the same campaign can
    go within `per` of it. Otherwise the late nudge would push the next one late by as much,
    and every one after that: a service started on a Wednesday would send each Tuesday's nudge
    on the following Wednesday, for ever. When the next slot is further away (a campaign every
    four weeks), the late wish still goes. The service plans a day ahead, so a nudge is late
    here only when nothing planned it before its time (a first start, a long outage); a nudge
    already planned and due during an outage is sent when the service is back.
    """
    newest: dict[int, list[tuple[datetime, datetime]]] = {}
    for at, wish in options:
        newest.setdefault(wish.index, []).append((wish.due, at))
    if all(len(found) == 1 for found in newest.values()):
        return options
    return [
        (at, wish)
        for at, wish in options
        if at <= wish.due  # on time: never replaced (a daylight-saving week is 1 h short)
        or not any(due > wish.due and other < at + per for due, other in newest[wish.index])
    ]


def _preference(person: Recipient, at: datetime, wish: _Wish) -> tuple[float, int, datetime, str]:
    last = person.last_by_campaign.get(wish.campaign.id)
    # Never reached them first, then the longest ago.
    staleness = float("-inf") if last is None else last.timestamp()
    return (staleness, -wish.campaign.priority, at, wish.campaign.id)


def audience_groups(
    parents: dict[str, str | None], channels: dict[str, list[str]]
) -> dict[str, set[str]]:
    """What the planner's `teams` argument wants: each team with its sub-teams, and each
    channel (`channel_key`) with the teams that list it and their sub-teams."""
    groups = team_closure(parents)
    for team, listed in channels.items():
        for channel in listed:
            groups.setdefault(channel_key(channel), set()).update(groups.get(team, {team}))
    return groups


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
