"""`evangelist demo simulate`: weeks of realistic participation for a demo organisation.

A newcomer who runs the simulation and then `evangelist digest preview` sees what a leader sees
after a few months: a trend, the question desk's week, who stepped up. For the N weeks before
`now` (1 to 52) it makes, deterministically for a seed (`random.Random(seed)`, no wall clock):

* People with a propensity to take part: a few very active, most occasional, a few never (never
  a topic's expert). Everyone's weeks follow a gentle upward trend with noise and one dip week
  (a holiday week when many are away). Things people do happen in their own working hours, in
  their own time zone, mostly Monday to Friday.
* 6-15 public questions a week on the organisation's topics, routed to an expert of their topic
  (an assignment and a `question_routed` event), most claimed within the hour and answered
  (`question_claimed`, `question_answered`; seen on the page: `answer_verified`, and for a
  staff reply a `page_comment`), some answered by the page itself, a few closed, a few slow
  ones escalated to a second person and answered after their first-response time
  (`sla_due_at`, as the desk computes it), and one or two still waiting.
* Nudges as the real planner plans them (`nudges.planner.plan_people`, week by week, with each
  person's ladder stage): sent, or skipped while someone is away; some answered "not now",
  some done (`nudge_done`), and a done that asks for a step above where they stood moves them
  up (`ladder_up`, and their `nudge_preferences` stage).
* A learning library of eight links, started eight weeks before `now`: a link of the week,
  personal picks in the campaigns that carry `{link}`, `link_opened`, `experiment_tried` and
  now and then an `experiment_note`; plus a few people's own comments on the pages and
  reactions to the bot's messages (`reacted`: the link-of-the-week post, a nudge).
* Consent: about a third of people, the more active more likely, agree to be named.

Every row it makes is marked so it can be found again, and nothing else is touched:
participation `reference`, nudge `key` and link share `key` start with ``sim:``; questions have
`source_key` ``sim`` (their assignments go with them); links have `source` ``sim`` (their
feedback goes with them). Consent and nudge preferences live on rows that are not the
simulation's own, so the simulation only fills in what is empty (a person's `recognition_at`
that is NULL; a preference row that does not exist) and writes down what it set in one audit
row (action ``demo.simulate``). Undoing it (`remove_simulation`, which every run does first)
clears a consent or deletes a preference row only if it still holds exactly what the
simulation set: if the person changed it since, it is theirs and stays.

So that a running bot on the same database never acts on made-up data: open questions wait
with nobody holding them and no next check (the escalation job never picks them up), answers
carry no URL (so "answered before" never quotes one to a real expert), links are `retired` (never
checked, posted or picked), the current week has no simulated link of the week (the real one
still goes out), and no outbox rows, expertise or page replies are written.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, delete, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from bot.config.base import WEEKDAYS
from bot.config.organisation import OrganisationConfig, TopicConfig
from bot.core.clock import as_utc
from bot.questions.routing import Hours
from bot.storage.database import Database, insert_for
from bot.storage.directory import sync_organisation
from bot.storage.models import (
    AssignmentRow,
    AuditRow,
    LinkFeedbackRow,
    LinkRow,
    LinkShareRow,
    NudgePreferenceRow,
    NudgeRow,
    ParticipationRow,
    PersonRow,
    QuestionRow,
)
from content_library.picks import iso_week
from nudges.config import Stage
from nudges.planner import PlannedNudge, Recipient, plan_people
from nudges.policy import PersonState, Rules
from nudges.service import IMPLIED_STAGE

SIM = "sim"
PREFIX = "sim:"
AUDIT_ACTION = "demo.simulate"
MAX_WEEKS = 52
QUESTION_SETTLE = timedelta(days=1)
"""No simulated question is asked in the last day, so every one has run its course by `now`."""
LINK_BASE = "https://example.org/evangelist-demo"

LIBRARY: tuple[tuple[str, str, str | None, str | None], ...] = (
    # (slug, title, level, experiment)
    ("one-reaction", "Why one reaction helps a post travel", "watch",
     "React to one post from our page before Friday."),
    ("feed-myths", "Five myths about how feeds pick posts", "watch",
     "Spot one of the five myths in your own feed this week."),
    ("share-in-your-words", "Sharing with a line of your own", "react",
     "Share one of our posts with a sentence about why it matters to you."),
    ("comments-that-add", "Comments that add something", "share",
     "Leave one comment that adds a fact, a link or a thank-you."),
    ("answering-in-public", "Answering questions in public, kindly and briefly", "comment",
     "Answer one public question in three sentences or fewer."),
    ("phone-photos", "Better photos with the phone you have", "create",
     "Take one photo of your workday by a window."),
    ("two-line-stories", "Two lines are a story", "create",
     "Write two lines about something you did this week."),
    ("privacy-basics", "What not to post: privacy basics for staff", None, None),
)  # fmt: skip
AUTHORS = (
    "Priya S.", "Jonas B.", "Amelia R.", "Kwame A.", "Sofia L.",
    "Tariq H.", "Mei Ling", "Oskar N.", "Chloe D.", "Diego M.",
)  # fmt: skip

EFFORT = {
    Stage.WATCH: 1.0,
    Stage.REACT: 1.0,
    Stage.SHARE: 0.85,
    Stage.COMMENT: 0.7,
    Stage.CREATE: 0.6,
}
"""How readily a nudge is done, by the step it asks for: creating is harder than reacting."""

EventKey = tuple[str, str, str]
"""(person key, kind, reference): what the participation table keeps once."""


@dataclass(frozen=True)
class SimulationReport:
    """What one simulation made (counts), for the command to print."""

    weeks: int
    seed: int
    start: datetime
    end: datetime
    people: int
    people_consenting: int
    """People in the file who agree to be named, after the simulation."""
    consent_set: int
    """Of those, how many the simulation set."""
    questions: int
    answered: int
    open_questions: int
    sla_missed: int
    nudges: int
    """Sent (not counting skipped ones)."""
    nudges_done: int
    ladder_up: int
    links: int
    link_opens: int
    experiments: int
    comments: int
    reactions: int
    """To the bot's own messages (the link of the week, nudges)."""
    events: int
    """Participation events in all."""
    removed: int = field(default=0, compare=False)
    """Rows of a previous simulation removed first (not part of what this one made)."""

    def describe(self) -> str:
        before = (
            f" The previous simulation ({self.removed} rows) was removed first."
            if self.removed
            else ""
        )
        return (
            f"Simulated {self.weeks} week{'s' if self.weeks != 1 else ''} for {self.people} "
            f"people ({self.start:%d %b %Y} to {self.end:%d %b %Y}, seed {self.seed}): "
            f"{self.questions} public questions ({self.answered} answered, {self.sla_missed} "
            f"past their first-response time, {self.open_questions} still waiting), "
            f"{self.nudges} nudges sent ({self.nudges_done} done, {self.ladder_up} steps up the "
            f"ladder), {self.links} library links opened {self.link_opens} times with "
            f"{self.experiments} experiments tried, {self.comments} comments on the pages and "
            f"{self.reactions} reactions to the bot's messages: "
            f"{self.events} participation events in all. {self.consent_set} people were set to "
            f"agree to be named ({self.people_consenting} agree in all). Everything simulated is "
            f"marked 'sim' and is replaced by the next run.{before}"
        )


# -- what the simulation makes, before it is written ------------------------------------------


@dataclass
class _Person:
    key: str
    zone: ZoneInfo
    recipient: Recipient
    propensity: float = 0.0
    told: Stage = Stage.WATCH
    """The stage their preference row holds (what `nudge_done` compares with)."""
    implied: Stage = Stage.WATCH
    """What they did shows (answering in public is commenting)."""
    stage_at: datetime | None = None
    """Their last `done`: when their preference row changed."""


@dataclass(frozen=True)
class _Week:
    index: int
    start: datetime
    end: datetime
    factor: float
    """How much more (or less) than usual people take part this week."""
    away: frozenset[str]


@dataclass
class _Assignment:
    person: str
    kind: str
    sent_at: datetime
    outcome: str = "open"
    outcome_at: datetime | None = None


@dataclass
class _Question:
    external_id: str
    topic: str | None
    text: str
    author: str
    created: datetime
    sla_due: datetime
    score: float | None = None
    status: str = "new"
    assignee: str | None = None
    first_response: datetime | None = None
    claimed: datetime | None = None
    answered: datetime | None = None
    answered_by: str | None = None
    answer_kind: str | None = None
    closed_reason: str | None = None
    updated: datetime | None = None
    assignments: list[_Assignment] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return f"{PREFIX}question:{self.external_id}"

    @property
    def missed(self) -> bool:
        """Past its first-response time with no first response (closed ones aside)."""
        if self.status == "closed":
            return False
        return self.first_response is None or self.first_response > self.sla_due


@dataclass
class _Plan:
    start: datetime
    events: dict[EventKey, tuple[datetime, dict[str, Any] | None]] = field(default_factory=dict)
    questions: list[_Question] = field(default_factory=list)
    nudges: list[dict[str, Any]] = field(default_factory=list)
    """NudgeRow values, with `person` (a key) and `link` (a slug) still to resolve."""
    shares: list[dict[str, Any]] = field(default_factory=list)
    feedback: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    """(link slug, person key) → LinkFeedbackRow values."""
    consent: dict[str, datetime] = field(default_factory=dict)
    links: list[str] = field(default_factory=list)
    """The slugs the library holds."""
    launched: datetime | None = None
    """When the library started (its links were added)."""
    people: dict[str, _Person] = field(default_factory=dict)

    def count(self, kind: str) -> int:
        return sum(1 for _, k, _ in self.events if k == kind)


def _minutes(at: datetime, minutes: float) -> datetime:
    return at + timedelta(seconds=round(minutes * 60))


class _Simulation:
    """The whole history, made in memory from the file, the seed and `now` (no database)."""

    def __init__(self, org: OrganisationConfig, now: datetime, weeks: int, seed: int) -> None:
        self.org = org
        self.now = now
        self.weeks = weeks
        self.rng = random.Random(seed)
        self.plan = _Plan(start=now - timedelta(weeks=weeks))
        self.zone = ZoneInfo(org.organisation.timezone)
        self.launch = max(0, weeks - len(LIBRARY))
        self.with_link = {c.id for c in org.campaigns if c.uses_link}
        self.rules = Rules.from_config(org.nudges, frozenset(org.questions.holidays))
        self.teams = org.audience_groups()
        self.taken: dict[str, set[tuple[str, date]]] = {}
        self.hours = Hours(org)
        self.this_week = iso_week(now.astimezone(self.zone))
        weekly = org.library.weekly
        where = weekly.channels.by_platform() if weekly is not None else []
        self.channel: tuple[str | None, str | None] = where[0] if where else (None, None)

    @property
    def start(self) -> datetime:
        return self.plan.start

    def run(self) -> _Plan:
        self._cast()
        for week in self._weeks():
            self._questions(week)
            self._nudges(week)
            self._library(week)
            self._comments(week)
        self._open_questions()
        self._consent()
        return self.plan

    # -- people ----------------------------------------------------------------------------

    def _cast(self) -> None:
        """Propensities and starting stages: a few very active, most occasional, a few never."""
        members: dict[str, set[str]] = {}
        for team in self.org.teams:
            for key in team.members:
                members.setdefault(key, set()).add(team.id)
        for person in self.org.people:
            state = PersonState(key=person.id, zone=ZoneInfo(person.timezone))
            if person.working_hours is not None:
                days = frozenset(WEEKDAYS.index(d) for d in person.working_hours.days)
                state = PersonState(key=person.id, zone=state.zone, working_days=days)
            recipient = Recipient(
                state=state,
                name=person.name,
                teams=frozenset(members.get(person.id, ())),
                roles=frozenset(r.value for r in person.roles),
            )
            self.plan.people[person.id] = _Person(person.id, state.zone, recipient)
        self._propensities()

    def _propensities(self) -> None:
        experts = {e.person for t in self.org.topics for e in t.experts}
        order = sorted(self.plan.people)
        self.rng.shuffle(order)
        size = len(order)
        never_count = max(1, round(size * 0.12)) if size >= 5 else 0
        pool = [k for k in order if k not in experts]
        never = set(pool[len(pool) - never_count :]) if never_count else set()
        champions = max(1, round(size * 0.15))
        for rank, key in enumerate(k for k in order if k not in never):
            person = self.plan.people[key]
            if rank < champions:
                person.propensity = self.rng.uniform(0.7, 0.9)
                person.told = self.rng.choice((Stage.REACT, Stage.SHARE))
            else:
                person.propensity = self.rng.uniform(0.15, 0.55)
                person.told = Stage.REACT if self.rng.random() < 0.2 else Stage.WATCH

    def _weeks(self) -> list[_Week]:
        """The weeks, oldest first: a gentle rise with noise, and one dip (a holiday week)."""
        n = self.weeks
        dip = self.rng.randrange(max(1, n - 7), n - 2) if n >= 4 else None
        keys = sorted(self.plan.people)
        weeks = []
        for i in range(n):
            start = self.start + timedelta(weeks=i)
            factor = (0.7 + 0.5 * (i / (n - 1) if n > 1 else 1.0)) * self.rng.uniform(0.88, 1.12)
            away_share = 0.4 if i == dip else 0.04
            if i == dip:
                factor *= 0.55
            away = frozenset(k for k in keys if self.rng.random() < away_share)
            weeks.append(_Week(i, start, start + timedelta(weeks=1), factor, away))
        return weeks

    def _chance(self, key: str, week: _Week, scale: float) -> bool:
        person = self.plan.people[key]
        if key in week.away:
            return False
        return self.rng.random() < min(0.95, person.propensity * week.factor * scale)

    # -- time ------------------------------------------------------------------------------

    def _moment(self, zone: ZoneInfo, lo: datetime, hi: datetime) -> datetime | None:
        """A moment in [lo, hi) in someone's working hours, mostly Monday to Friday."""
        hi = min(hi, self.now)
        if hi <= lo:
            return None
        first = lo.astimezone(zone).date()
        last = (hi - timedelta(seconds=1)).astimezone(zone).date()
        days = [first + timedelta(days=d) for d in range((last - first).days + 1)]
        weights = [1.0 if d.weekday() < 5 else 0.06 for d in days]
        for _ in range(8):
            day = self.rng.choices(days, weights)[0]
            minute = int(self.rng.triangular(8.5 * 60, 18 * 60, 11 * 60))
            local = time(minute // 60, minute % 60, self.rng.randrange(60))
            at = datetime.combine(day, local, zone).astimezone(UTC)
            if lo <= at < hi:
                return at
        return None

    def _event(
        self,
        person: str,
        kind: str,
        reference: str,
        at: datetime,
        details: dict[str, Any] | None = None,
    ) -> bool:
        """Record it once (the table's unique rule), and never outside the simulated weeks."""
        key = (person, kind, reference)
        if key in self.plan.events or not self.start <= at < self.now:
            return False
        self.plan.events[key] = (at, details)
        implied = IMPLIED_STAGE.get(kind)
        someone = self.plan.people.get(person)
        if implied is not None and someone is not None and implied.rank > someone.implied.rank:
            someone.implied = implied
        return True

    # -- the question desk -----------------------------------------------------------------

    def _questions(self, week: _Week) -> None:
        latest = min(week.end, self.now - QUESTION_SETTLE)
        if latest <= week.start:
            return
        span = (latest - week.start).total_seconds()
        count = self.rng.randint(6, 15)
        asked = sorted(
            week.start + timedelta(seconds=int(self.rng.random() * span)) for _ in range(count)
        )
        for created in asked:
            self._question(created, week)

    def _new_question(self, created: datetime) -> _Question:
        topics = self.org.topics
        weights = [len(t.examples) + 1 for t in topics]
        topic = self.rng.choices(topics, weights)[0] if topics else None
        examples = topic.examples if topic and topic.examples else ["Who can I ask about this?"]
        hours = self.org.questions.first_response_hours
        if topic is not None and topic.first_response_hours:
            hours = topic.first_response_hours
        question = _Question(
            external_id=f"q{len(self.plan.questions) + 1:05d}",
            topic=topic.id if topic else None,
            text=self.rng.choice(examples),
            author=self.rng.choice(AUTHORS),
            created=created,
            sla_due=self.hours.organisation_time().add(created, hours * 60),
            score=round(self.rng.uniform(0.55, 0.95), 3) if topic else None,
        )
        self.plan.questions.append(question)
        return question

    def _askees(self, topic_key: str | None) -> list[tuple[str, str]]:
        """Whom the desk would ask, in order: (person, assignment kind)."""
        topic: TopicConfig | None = self.org.topic(topic_key) if topic_key else None
        experts = [e for e in (topic.experts if topic else []) if e.person in self.plan.people]
        chain: list[tuple[str, str]] = []
        if experts:
            first = self.rng.choices(experts, [e.weight for e in experts])[0]
            rest = sorted((e for e in experts if e is not first), key=lambda e: -e.weight)
            chain = [(e.person, "expert") for e in (first, *rest)]
        evangelists = [p.id for p in self.org.evangelists()]
        if topic is not None and topic.fallback_owner:
            chain.append((topic.fallback_owner, "fallback"))
        elif evangelists:
            chain.append((evangelists[0], "evangelist"))
        unique: dict[str, str] = {}
        for person, kind in chain:
            unique.setdefault(person, kind)
        return list(unique.items())

    def _route(self, q: _Question, person: str, kind: str, at: datetime) -> None:
        for earlier in q.assignments:
            if earlier.outcome == "open":
                earlier.outcome, earlier.outcome_at = "timed_out", at
        q.assignments.append(_Assignment(person, kind, at))
        q.status, q.assignee, q.updated = "routed", person, at
        self._event(person, "question_routed", q.reference, at)

    def _question(self, created: datetime, week: _Week) -> None:
        q = self._new_question(created)
        chain = self._askees(q.topic)
        # The desk does not ask people who are away (unless nobody else is left).
        askees = ([a for a in chain if a[0] not in week.away] or chain)[:2]
        routed = _minutes(created, self.rng.uniform(1, 15))
        if not askees:
            self._answer(q, None, _minutes(routed, self.rng.uniform(20, 180)), "page")
            return
        first, kind = askees[0]
        self._route(q, first, kind, routed)
        fate = self.rng.random()
        if fate < 0.06:
            self._answer(q, None, _minutes(routed, self.rng.uniform(20, 180)), "page")
        elif fate < 0.09:
            self._close(q, _minutes(routed, self.rng.uniform(10, 90)))
        elif fate < 0.91 or len(askees) < 2:
            budget = max(5.0, (q.sla_due - routed).total_seconds() / 60 * 0.9)
            delay = min(budget, max(2.0, self.rng.lognormvariate(math.log(35), 0.9)))
            self._claim(q, first, _minutes(routed, delay))
        else:
            self._slow(q, askees[1], routed)

    def _slow(self, q: _Question, second: tuple[str, str], routed: datetime) -> None:
        """Nobody took it in time: asked again, then claimed after its first-response time."""
        moved = _minutes(routed, self.org.questions.step_minutes)
        claimed = _minutes(q.sla_due, self.rng.uniform(30, 12 * 60))
        if claimed >= self.now - timedelta(hours=6):
            self._leave_waiting(q, second, moved)
            return
        self._route(q, *second, moved)
        self._claim(q, second[0], claimed)

    def _claim(self, q: _Question, person: str, at: datetime) -> None:
        q.status, q.assignee, q.claimed, q.first_response, q.updated = (
            "claimed", person, at, at, at,
        )  # fmt: skip
        for assignment in q.assignments:
            if assignment.person == person and assignment.outcome == "open":
                assignment.outcome, assignment.outcome_at = "claimed", at
        self._event(person, "question_claimed", q.reference, at)
        answered = _minutes(at, min(300.0, max(5.0, self.rng.lognormvariate(math.log(50), 0.7))))
        kind = self.rng.choices(("staff", "reported", "page"), (0.55, 0.3, 0.15))[0]
        self._answer(q, person, answered, kind)

    def _answer(self, q: _Question, person: str | None, at: datetime, kind: str) -> None:
        """As the desk's `mark_answered`: credited, verified when seen on the page."""
        q.status, q.answered, q.answer_kind, q.answered_by = "answered", at, kind, person
        q.first_response = q.first_response or at
        q.updated = at
        for assignment in q.assignments:
            if assignment.outcome in ("open", "claimed"):
                assignment.outcome, assignment.outcome_at = "answered", at
        if person is None:
            return
        self._event(person, "question_answered", q.reference, at)
        if kind in ("staff", "page"):
            self._event(person, "answer_verified", q.reference, at, {"url": None})
        if kind == "staff":
            self._event(person, "page_comment", f"{PREFIX}reply:{q.external_id}", at)

    def _close(self, q: _Question, at: datetime) -> None:
        q.status, q.closed_reason, q.updated = "closed", "not a question for us", at
        for assignment in q.assignments:
            if assignment.outcome == "open":
                assignment.outcome, assignment.outcome_at = "closed", at

    def _leave_waiting(self, q: _Question, second: tuple[str, str] | None, at: datetime) -> None:
        """Still open at `now`: asked, maybe asked again, and nobody holds it (see above)."""
        if second is not None and at < self.now:
            self._route(q, *second, at)
            at = _minutes(at, self.org.questions.step_minutes)
        if at < self.now:
            for assignment in q.assignments:
                if assignment.outcome == "open":
                    assignment.outcome, assignment.outcome_at = "timed_out", at
            q.updated = at
        q.status, q.assignee = "waiting", None

    def _open_questions(self) -> None:
        """One or two questions still waiting: one from before last week, if the weeks allow."""
        days = self.weeks * 7
        ages = [self.rng.uniform(8, 11) if days > 11 else self.rng.uniform(1, days - 0.5)]
        if self.rng.random() < 0.5:
            ages.append(self.rng.uniform(1, min(5, days - 0.5)))
        for age in sorted(ages, reverse=True):
            q = self._new_question(self.now - timedelta(seconds=int(age * 86400)))
            askees = self._askees(q.topic)
            if not askees:
                q.status = "waiting"
                continue
            routed = _minutes(q.created, self.rng.uniform(1, 15))
            self._route(q, *askees[0], routed)
            second = askees[1] if len(askees) > 1 else None
            self._leave_waiting(q, second, _minutes(routed, self.org.questions.step_minutes))

    # -- nudges ----------------------------------------------------------------------------

    def _nudges(self, week: _Week) -> None:
        campaigns = [
            c
            for c in self.org.campaigns
            if not c.paused and (c.id not in self.with_link or week.index >= self.launch)
        ]
        people = [self.plan.people[k] for k in sorted(self.plan.people)]
        for person in people:
            person.recipient.stage = max(person.told, person.implied, key=lambda s: s.rank)
        planned = plan_people(
            self.rules,
            campaigns,
            [p.recipient for p in people],
            week.start,
            week.end,
            teams=self.teams,
            taken=self.taken,
        )
        for nudge in planned:
            self._nudge(week, nudge)

    def _nudge(self, week: _Week, n: PlannedNudge) -> None:
        self.taken.setdefault(n.person, set()).add((n.campaign, n.day))
        values: dict[str, Any] = {
            "key": f"{PREFIX}{n.key}",
            "campaign_key": n.campaign,
            "person": n.person,
            "slot_day": n.day,
            "send_at": n.send_at,
            "variant": n.variant,
            "stage": n.stage.value,
            "status": "sent",
            "reason": None,
            "response": None,
            "test": False,
            "planned_at": max(self.start, n.send_at - timedelta(hours=12)),
            "sent_at": n.send_at,
            "responded_at": None,
            "link": None,
        }
        self.plan.nudges.append(values)
        if n.person in week.away:
            values.update(status="skipped", reason="out of office", sent_at=None)
            return
        if n.campaign in self.with_link:
            values["link"] = self._pick(n)
        self._respond(week, n, values)

    def _pick(self, n: PlannedNudge) -> str | None:
        """A link this person was never picked, shared inside the nudge."""
        had = {s["link"] for s in self.plan.shares if s["person"] == n.person}
        fresh = [slug for slug in self.plan.links if slug not in had]
        if not fresh:
            return None
        slug = self.rng.choice(fresh)
        self.plan.shares.append(
            {
                "key": f"{PREFIX}pick:{n.key}",
                "link": slug,
                "kind": "pick",
                "person": n.person,
                "nudge": f"{PREFIX}{n.key}",
                "week": iso_week(n.local_time),
                "shared_at": n.send_at,
            }
        )
        return slug

    def _respond(self, week: _Week, n: PlannedNudge, values: dict[str, Any]) -> None:
        person = self.plan.people[n.person]
        roll = self.rng.random()
        done = min(0.95, person.propensity * week.factor * EFFORT[n.stage.next])
        if roll >= done + 0.1:
            if self._chance(n.person, week, 0.2):  # a thumbs-up instead of a button
                self._react(n.person, f"{PREFIX}reacted:{n.key}", n.send_at, week.end)
            return
        # Answered in their working hours, mostly within the day, some days later.
        within = max(120.0, min(3 * 24 * 60, self.rng.lognormvariate(math.log(240), 1.0)))
        at = self._moment(person.zone, _minutes(n.send_at, 2), _minutes(n.send_at, within))
        if at is None:
            return
        response = "done" if roll < done else "not_now"
        values.update(response=response, responded_at=at)
        if response == "done":
            self._done(person, n, at, values["link"])

    def _done(self, person: _Person, n: PlannedNudge, at: datetime, link: str | None) -> None:
        """As the Done button: the event, and a step up when it asked for more than before."""
        reference = f"{PREFIX}{n.key}"
        asked, before = n.stage.next, person.told
        details = {"campaign": n.campaign, "step": asked.value}
        self._event(n.person, "nudge_done", reference, at, details)
        if asked.rank > before.rank:
            person.told = asked
            moved = {"from": before.value, "to": asked.value}
            self._event(n.person, "ladder_up", reference, at, moved)
        person.stage_at = at
        if link is not None:
            self._open(n.person, link, at)

    # -- the learning library and the pages ------------------------------------------------

    def _library(self, week: _Week) -> None:
        if week.index < self.launch:
            return
        if week.index == self.launch:
            self.plan.links = [slug for slug, *_ in LIBRARY]
            self.plan.launched = week.start
        slug, _, _, experiment = LIBRARY[(week.index - self.launch) % len(LIBRARY)]
        shared = self._weekly_moment(week)
        label = iso_week(shared.astimezone(self.zone))
        if label != self.this_week:  # this week's real link of the week still goes out
            self.plan.shares.append(
                {"key": f"{PREFIX}weekly:{label}", "link": slug, "kind": "weekly",
                 "person": None, "nudge": None, "week": label, "shared_at": shared,
                 "platform": self.channel[0], "channel": self.channel[1]}
            )  # fmt: skip
        for key in sorted(self.plan.people):
            zone = self.plan.people[key].zone
            if self._chance(key, week, 0.25):  # a reaction to the link-of-the-week post
                self._react(key, f"{PREFIX}reacted:weekly:{label}", shared, week.end)
            if not self._chance(key, week, 0.6):
                continue
            opened = self._moment(zone, shared, week.end)
            if opened is None:
                continue
            self._open(key, slug, opened)
            if experiment and self.rng.random() < 0.35:
                self._try(key, slug, label, self._moment(zone, opened, week.end))

    def _weekly_moment(self, week: _Week) -> datetime:
        weekly = self.org.library.weekly
        if weekly is not None:
            first = week.start.astimezone(self.zone).date()
            for offset in range(8):
                day = first + timedelta(days=offset)
                at = datetime.combine(day, weekly.at, self.zone).astimezone(UTC)
                if day.weekday() == WEEKDAYS.index(weekly.day) and week.start <= at < week.end:
                    return at
        return week.start + timedelta(hours=1)

    def _open(self, person: str, slug: str, at: datetime) -> None:
        self._event(person, "link_opened", f"{PREFIX}link:{slug}", at)
        row = self.plan.feedback.get((slug, person))
        if row is None:
            vote = self.rng.choices((1, -1, None), (0.35, 0.07, 0.58))[0]
            self.plan.feedback[(slug, person)] = {
                "opens": 1,
                "vote": vote,
                "first_opened_at": at,
                "voted_at": at if vote is not None else None,
                "updated_at": at,
            }
            return
        row["opens"] += 1
        row["first_opened_at"] = min(row["first_opened_at"], at)
        row["updated_at"] = max(row["updated_at"], at)

    def _react(self, person: str, reference: str, lo: datetime, hi: datetime) -> None:
        """A reaction to one of the bot's own messages (see bot/services/reactions.py)."""
        at = self._moment(self.plan.people[person].zone, lo, hi)
        if at is not None:
            self._event(person, "reacted", reference, at)

    def _try(self, person: str, slug: str, label: str, at: datetime | None) -> None:
        if at is None:
            return
        self._event(person, "experiment_tried", f"{PREFIX}experiment:{label}:link:{slug}", at)
        if self.rng.random() < 0.3:
            self._event(person, "experiment_note", f"{PREFIX}experiment:{label}", at)

    def _comments(self, week: _Week) -> None:
        for key in sorted(self.plan.people):
            if not self._chance(key, week, 0.25):
                continue
            for number in range(self.rng.choice((1, 1, 2))):
                at = self._moment(self.plan.people[key].zone, week.start, week.end)
                if at is not None:
                    reference = f"{PREFIX}comment:{week.index}:{key}:{number}"
                    self._event(key, "page_comment", reference, at)

    def _consent(self) -> None:
        """About a third agree to be named, early on; the more active (and those who answer in
        public anyway), the likelier."""
        keys = sorted(self.plan.people)
        wanted = round(len(keys) / 3)
        people = self.plan.people
        experts = {e.person for t in self.org.topics for e in t.experts}
        weight = {k: people[k].propensity + 0.15 + (0.5 if k in experts else 0.0) for k in keys}
        ranked = sorted(keys, key=lambda k: self.rng.random() ** (1 / weight[k]), reverse=True)
        until = min(self.start + timedelta(weeks=2), self.now)
        for key in ranked[:wanted]:
            at = self._moment(people[key].zone, self.start, until)
            self.plan.consent[key] = at if at is not None else self.start


# -- the database -------------------------------------------------------------------------------


async def simulate(
    db: Database, org: OrganisationConfig, now: datetime, *, weeks: int, seed: int
) -> SimulationReport:
    """Replace any previous simulation with `weeks` weeks of history ending at `now`."""
    _check(org, now, weeks)
    now = as_utc(now)
    plan = _Simulation(org, now, weeks, seed).run()
    async with db.transaction() as session:
        await sync_organisation(session, org, now)
        removed = await remove_simulation(session)
        ids = await _person_ids(session, list(plan.people))
        links = await _insert_links(session, plan)
        await _insert_questions(session, plan, ids)
        nudges = await _insert_nudges(session, plan, ids, links)
        await _insert_learning(session, plan, ids, links, nudges)
        await _insert_events(session, plan, ids)
        consent = await _grant_consent(session, plan, ids)
        preferences = await _insert_preferences(session, plan, ids)
        session.add(_audit(plan, now, weeks, seed, consent, preferences))
        consenting = await _consenting(session, list(plan.people))
    return _report(plan, now, weeks, seed, consenting, len(consent), removed)


def _check(org: OrganisationConfig, now: datetime, weeks: int) -> None:
    if not 1 <= weeks <= MAX_WEEKS:
        raise ValueError(f"--weeks must be between 1 and {MAX_WEEKS}, not {weeks}")
    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime (UTC)")
    if org.source(SIM) is not None:
        raise ValueError(
            f"the organisation has a source called {SIM!r}, which the simulation uses to mark "
            "its own rows: rename the source to simulate"
        )


def _prefixed(column: InstrumentedAttribute[str]) -> ColumnElement[bool]:
    # substr, not LIKE: SQLite's LIKE ignores case, and only lower-case 'sim:' is ours.
    return func.substr(column, 1, len(PREFIX)) == PREFIX


async def remove_simulation(session: AsyncSession) -> int:
    """Remove every simulated row and undo the consent and preferences a simulation set (only
    where they still hold what it set); how many rows were removed or changed."""
    changed = await _undo_settings(session)
    links = select(LinkRow.id).where(LinkRow.source == SIM).scalar_subquery()
    questions = select(QuestionRow.id).where(QuestionRow.source_key == SIM).scalar_subquery()
    statements = (
        delete(ParticipationRow).where(_prefixed(ParticipationRow.reference)),
        delete(LinkFeedbackRow).where(LinkFeedbackRow.link_id.in_(links)),
        delete(LinkShareRow).where(
            or_(_prefixed(LinkShareRow.key), LinkShareRow.link_id.in_(links))
        ),
        delete(NudgeRow).where(_prefixed(NudgeRow.key)),
        delete(AssignmentRow).where(AssignmentRow.question_id.in_(questions)),
        delete(QuestionRow).where(QuestionRow.source_key == SIM),
        delete(LinkRow).where(LinkRow.source == SIM),
        delete(AuditRow).where(AuditRow.action == AUDIT_ACTION),
    )
    for statement in statements:
        result = await session.execute(statement.execution_options(synchronize_session=False))
        changed += int(result.rowcount)  # type: ignore[attr-defined]
    return changed


async def _undo_settings(session: AsyncSession) -> int:
    records = (await session.scalars(select(AuditRow).where(AuditRow.action == AUDIT_ACTION))).all()
    changed = 0
    for record in records:
        details = record.details or {}
        consented = await _unchanged(session, PersonRow.recognition_at, details.get("consented"))
        if consented:
            await session.execute(
                update(PersonRow).where(PersonRow.id.in_(consented)).values(recognition_at=None)
            )
        prefs = await _unchanged(session, NudgePreferenceRow.updated_at, details.get("preferences"))
        if prefs:
            await session.execute(
                delete(NudgePreferenceRow).where(NudgePreferenceRow.person_id.in_(prefs))
            )
        changed += len(consented) + len(prefs)
    return changed


async def _unchanged(
    session: AsyncSession, column: InstrumentedAttribute[Any], recorded: Any
) -> list[int]:
    """People (ids) whose `column` still holds the instant the simulation recorded for them."""
    if not isinstance(recorded, dict) or not recorded:
        return []
    if column.class_ is PersonRow:
        query = select(PersonRow.id, PersonRow.key, column)
    else:
        query = select(NudgePreferenceRow.person_id, PersonRow.key, column).join(
            PersonRow, PersonRow.id == NudgePreferenceRow.person_id
        )
    rows = await session.execute(query.where(PersonRow.key.in_(list(recorded))))
    return [
        int(pid)
        for pid, key, value in rows.all()
        if value is not None and as_utc(value) == datetime.fromisoformat(str(recorded[key]))
    ]


async def _person_ids(session: AsyncSession, keys: list[str]) -> dict[str, int]:
    rows = await session.execute(select(PersonRow.key, PersonRow.id).where(PersonRow.key.in_(keys)))
    return {key: int(pid) for key, pid in rows.all()}


async def _insert_many(
    session: AsyncSession, model: type[Any], rows: Sequence[dict[str, Any]]
) -> None:
    if rows:
        await session.execute(insert(model), list(rows))


async def _ids_of(
    session: AsyncSession, key: InstrumentedAttribute[str], criterion: ColumnElement[bool]
) -> dict[str, int]:
    table = key.class_
    rows = (await session.execute(select(key, table.id).where(criterion))).all()
    return {str(k): int(i) for k, i in rows}


async def _insert_links(session: AsyncSession, plan: _Plan) -> dict[str, int]:
    """The library's links, by slug → id (retired: they never leave the simulation)."""
    rows: list[dict[str, Any]] = [
        {
            "url": f"{LINK_BASE}/library/{slug}",
            "title": title,
            "summary": None,
            "topics": [],
            "level": level,
            "experiment": experiment,
            "source": SIM,
            "added_by": "simulation",
            "added_at": plan.launched or plan.start,
            "status": "retired",
            "health": "unchecked",
        }
        for slug, title, level, experiment in LIBRARY
        if slug in plan.links
    ]
    if rows:
        # A real link at the same address stays the real one (and out of the simulation).
        insert_ = insert_for(session)
        await session.execute(insert_(LinkRow).values(rows).on_conflict_do_nothing())
    found = await _ids_of(session, LinkRow.url, LinkRow.source == SIM)
    return {url.rsplit("/", 1)[1]: i for url, i in found.items()}


async def _insert_questions(session: AsyncSession, plan: _Plan, ids: dict[str, int]) -> None:
    rows = [_question_row(q, ids) for q in plan.questions]
    await _insert_many(session, QuestionRow, rows)
    found = await _ids_of(session, QuestionRow.external_id, QuestionRow.source_key == SIM)
    assignments = [
        {
            "question_id": found[q.external_id],
            "person_id": ids[a.person],
            "kind": a.kind,
            "topic_key": q.topic,
            "reason": f"simulated: {a.kind} for this topic",
            "message_key": None,
            "sent_at": a.sent_at,
            "outcome": a.outcome,
            "outcome_at": a.outcome_at,
        }
        for q in plan.questions
        for a in q.assignments
        if a.person in ids
    ]
    await _insert_many(session, AssignmentRow, assignments)


def _question_row(q: _Question, ids: dict[str, int]) -> dict[str, Any]:
    return {
        "source_key": SIM,
        "external_id": q.external_id,
        "kind": "comment",
        "url": f"{LINK_BASE}/questions/{q.external_id}",
        "author_name": q.author,
        "text": q.text,
        "posted_at": q.created,
        "via": "poll",
        "confidence": 1.0,
        "topic_key": q.topic,
        "topic_score": q.score,
        "excluded_topics": [],
        "status": q.status,
        "assignee_id": ids.get(q.assignee) if q.assignee else None,
        "step": len(q.assignments),
        "next_check_at": None,
        "version": 1,
        "sla_due_at": q.sla_due,
        "first_response_at": q.first_response,
        "claimed_at": q.claimed,
        "answered_at": q.answered,
        "answered_by_id": ids.get(q.answered_by) if q.answered_by else None,
        "answer_kind": q.answer_kind,
        "closed_reason": q.closed_reason,
        "created_at": q.created,
        "updated_at": q.updated or q.created,
    }


async def _insert_nudges(
    session: AsyncSession, plan: _Plan, ids: dict[str, int], links: dict[str, int]
) -> dict[str, int]:
    rows = []
    for nudge in plan.nudges:
        values = {k: v for k, v in nudge.items() if k not in ("person", "link")}
        values["person_id"] = ids[nudge["person"]]
        values["link_id"] = links.get(nudge["link"]) if nudge["link"] else None
        values["campaign_version"] = 1
        rows.append(values)
    await _insert_many(session, NudgeRow, rows)
    return await _ids_of(session, NudgeRow.key, _prefixed(NudgeRow.key))


async def _insert_learning(
    session: AsyncSession,
    plan: _Plan,
    ids: dict[str, int],
    links: dict[str, int],
    nudges: dict[str, int],
) -> None:
    shares = [
        {
            "key": share["key"],
            "link_id": links[share["link"]],
            "kind": share["kind"],
            "person_id": ids.get(share["person"]) if share["person"] else None,
            "platform": share.get("platform"),
            "channel": share.get("channel"),
            "week": share["week"],
            "nudge_id": nudges.get(share["nudge"]) if share["nudge"] else None,
            "shared_at": share["shared_at"],
        }
        for share in plan.shares
        if share["link"] in links
    ]
    await _insert_many(session, LinkShareRow, shares)
    feedback = [
        {"link_id": links[slug], "person_id": ids[person], **values}
        for (slug, person), values in plan.feedback.items()
        if slug in links and person in ids
    ]
    await _insert_many(session, LinkFeedbackRow, feedback)


async def _insert_events(session: AsyncSession, plan: _Plan, ids: dict[str, int]) -> None:
    rows = [
        {"person_id": ids[person], "kind": kind, "reference": reference, "at": at,
         "details": details}
        for (person, kind, reference), (at, details) in plan.events.items()
        if person in ids
    ]  # fmt: skip
    await _insert_many(session, ParticipationRow, rows)


async def _grant_consent(
    session: AsyncSession, plan: _Plan, ids: dict[str, int]
) -> dict[str, datetime]:
    """Consent for the chosen people who have none (those who do keep theirs as it is)."""
    chosen = [ids[k] for k in plan.consent if k in ids]
    empty = await session.scalars(
        select(PersonRow.key).where(PersonRow.id.in_(chosen), PersonRow.recognition_at.is_(None))
    )
    granted = {key: plan.consent[key] for key in sorted(empty.all())}
    if granted:
        await session.execute(
            update(PersonRow),
            [{"id": ids[key], "recognition_at": at} for key, at in granted.items()],
        )
    return granted


async def _insert_preferences(
    session: AsyncSession, plan: _Plan, ids: dict[str, int]
) -> dict[str, datetime]:
    """A preference row (their ladder stage) for who pressed Done and has none of their own."""
    pressed = {k: p for k, p in plan.people.items() if p.stage_at is not None and k in ids}
    existing = set(
        (
            await session.scalars(
                select(NudgePreferenceRow.person_id).where(
                    NudgePreferenceRow.person_id.in_([ids[k] for k in pressed])
                )
            )
        ).all()
    )
    made: dict[str, datetime] = {}
    rows = []
    for key, person in sorted(pressed.items()):
        if ids[key] in existing or person.stage_at is None:
            continue
        made[key] = person.stage_at
        rows.append(
            {"person_id": ids[key], "stopped": [], "stage": person.told.value,
             "stage_at": person.stage_at, "updated_at": person.stage_at}
        )  # fmt: skip
    await _insert_many(session, NudgePreferenceRow, rows)
    return made


def _audit(
    plan: _Plan,
    now: datetime,
    weeks: int,
    seed: int,
    consent: dict[str, datetime],
    preferences: dict[str, datetime],
) -> AuditRow:
    """What the simulation set on rows that are not its own, so the next run can undo it."""
    return AuditRow(
        at=now,
        actor_person_id=None,
        actor="simulation",
        action=AUDIT_ACTION,
        target=f"{weeks} weeks, seed {seed}",
        outcome="ok",
        details={
            "weeks": weeks,
            "seed": seed,
            "start": plan.start.isoformat(),
            "now": now.isoformat(),
            "consented": {k: at.isoformat() for k, at in consent.items()},
            "preferences": {k: at.isoformat() for k, at in preferences.items()},
        },
    )


async def _consenting(session: AsyncSession, keys: list[str]) -> int:
    found = await session.scalar(
        select(func.count())
        .select_from(PersonRow)
        .where(PersonRow.key.in_(keys), PersonRow.recognition_at.is_not(None))
    )
    return int(found or 0)


def _report(
    plan: _Plan,
    now: datetime,
    weeks: int,
    seed: int,
    consenting: int,
    consent_set: int,
    removed: int,
) -> SimulationReport:
    questions = plan.questions
    return SimulationReport(
        weeks=weeks,
        seed=seed,
        start=plan.start,
        end=now,
        people=len(plan.people),
        people_consenting=consenting,
        consent_set=consent_set,
        questions=len(questions),
        answered=sum(1 for q in questions if q.status == "answered"),
        open_questions=sum(1 for q in questions if q.status == "waiting"),
        sla_missed=sum(1 for q in questions if q.missed),
        nudges=sum(1 for n in plan.nudges if n["status"] == "sent"),
        nudges_done=sum(1 for n in plan.nudges if n["response"] == "done"),
        ladder_up=plan.count("ladder_up"),
        links=len(plan.links),
        link_opens=plan.count("link_opened"),
        experiments=plan.count("experiment_tried"),
        comments=plan.count("page_comment"),
        reactions=plan.count("reacted"),
        events=len(plan.events),
        removed=removed,
    )
