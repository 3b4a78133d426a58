"""The question desk: from a public item to one expert, through escalation, to a credited answer.

Every change to a question happens in one transaction together with the outbox rows it causes
and the participation it records. Questions carry an ORM version, so two jobs or a job and a
button racing on the same question cannot both act: the second one's transaction fails whole
(see QuestionRow) and nothing it meant to send exists.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from bot.config.organisation import LanguageModelConfig, OrganisationConfig, TopicConfig
from bot.core.clock import Clock, as_utc
from bot.core.llm import TopicChoice
from bot.core.ports import LanguageModel
from bot.core.sources import ItemAction, SourceItem, TopicClassifier, TopicMatch
from bot.core.types import Address, MessageRef, OutgoingMessage, Platform
from bot.delivery import outbox
from bot.observability import Metrics
from bot.questions import expertise, knowledge, messages
from bot.questions.classifier import KeywordClassifier
from bot.questions.expertise import Evidence
from bot.questions.routing import Hours, Pick, Router, Wait
from bot.questions.text import detect_question, looks_like_spam, sanitise
from bot.storage import directory, participation
from bot.storage.database import Database, insert_for
from bot.storage.models import (
    AssignmentRow,
    PageReplyRow,
    PersonRow,
    QuestionRow,
    SocialHandleRow,
    TeamMemberRow,
    TeamRow,
)

log = logging.getLogger(__name__)

OPEN = ("new", "waiting", "routed", "claimed", "channel", "reported")
VERIFIABLE_SOURCES = ("facebook_page", "instagram", "youtube", "webhook")
"""Sources whose replies we see, so an 'I answered' can be checked on the page."""
TEXT_LIMIT = 2000
SECOND_OPINION_GRACE = timedelta(minutes=2)
"""How long a question may wait for the language model's second opinion on its topic; if the
process dies meanwhile, the escalation job routes it on the router's call when this passes."""


@dataclass
class IntakeReport:
    """What happened to a batch of items (for logs, the CLI and webhook answers)."""

    new: list[int] = field(default_factory=list)
    answered: list[int] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    second_opinions: list[int] = field(default_factory=list)
    """New questions the router was unsure of, waiting for the language model's topic."""
    failed: int = 0
    """Items that could not be stored (the database was unreachable, a bug): the caller must
    not acknowledge them, so the sender retries (webhooks) or the cursor stays (polling)."""

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


class QuestionDesk:
    """Routes questions and keeps them moving; the chat service and jobs call into it."""

    def __init__(
        self,
        database: Database,
        clock: Clock,
        organisation: OrganisationConfig,
        metrics: Metrics,
        *,
        platforms: Sequence[str],
        on_enqueued: Callable[[], None] | None = None,
        classifier: TopicClassifier | None = None,
        language_model: LanguageModel | None = None,
    ) -> None:
        self.db = database
        self.clock = clock
        self.org = organisation
        self.metrics = metrics
        self.platforms = list(platforms)
        self.on_enqueued = on_enqueued or (lambda: None)
        self.classifier = classifier or KeywordClassifier(organisation.topics)
        self.hours = Hours(organisation)
        self.router = Router(organisation, self.hours)
        self.config = organisation.questions
        self.language_model = language_model

    # -- intake ---------------------------------------------------------------------------

    async def take_in(self, items: Sequence[SourceItem], *, via: str) -> IntakeReport:
        """Track the questions among `items`, notice answers, and route what is new.

        Each item commits on its own, so one bad item never loses the others.
        """
        report = IntakeReport()
        wrote = False
        for item in items:
            try:
                async with self.db.transaction() as session:
                    wrote |= await self._take_one(session, item, via, self.clock.now(), report)
            except Exception:
                log.exception("could not take in %s item %s", item.source_id, item.external_id)
                report.failed += 1
        for question_id in report.second_opinions:
            try:
                wrote |= await self._second_opinion(question_id)
            except StaleDataError:
                log.info("question %s moved on while the model was asked about it", question_id)
            except Exception:
                log.exception("routing question %s after the model's opinion failed", question_id)
        if wrote:
            self.on_enqueued()
        return report

    async def track(self, session: AsyncSession, item: SourceItem, now: datetime) -> IntakeReport:
        """Track an item someone brought from chat, inside their event's transaction."""
        report = IntakeReport()
        await self._take_one(session, item, "channel", now, report)
        return report

    async def _take_one(
        self,
        session: AsyncSession,
        item: SourceItem,
        via: str,
        now: datetime,
        report: IntakeReport,
    ) -> bool:
        existing = await self._question(session, item.source_id, item.external_id)
        if item.action is ItemAction.REMOVE:
            if existing is not None and existing.status in OPEN:
                return await self._close(session, existing, now, "removed from the page")
            report.skip("removed")
            return False
        staff = await self._staff_author(session, item)
        if item.by_page or staff is not None:
            return await self._reply_seen(session, item, staff, now, report)
        if existing is not None:
            if item.action is ItemAction.EDIT and existing.status in OPEN:
                existing.text = sanitise(item.text, TEXT_LIMIT)
                existing.updated_at = now
            report.skip("already tracked")
            return False
        return await self._new_question(session, item, via, now, report)

    async def _new_question(
        self,
        session: AsyncSession,
        item: SourceItem,
        via: str,
        now: datetime,
        report: IntakeReport,
    ) -> bool:
        text = sanitise(item.text, TEXT_LIMIT)
        spam = looks_like_spam(text)
        if spam:
            report.skip("spam")
            log.info("skipped %s item %s: %s", item.source_id, item.external_id, spam)
            return False
        signal = detect_question(text)
        if via != "channel" and not signal.is_question:
            report.skip("not a question")
            return False
        if await self._already_answered(session, item):
            report.skip("already answered on the page")
            return False
        question = await self._insert(session, item, text, signal.confidence, via, now)
        if question is None:  # the same item arrived by another road a moment ago
            report.skip("already tracked")
            return False
        report.new.append(question.id)
        self.metrics.questions.labels(item.source_id, "new").inc()
        if via != "channel" and self._wants_second_opinion(question):
            # Asked outside this transaction (a model may take seconds); see _second_opinion.
            question.status, question.stage = "waiting", "classifying"
            question.next_check_at = now + SECOND_OPINION_GRACE
            report.second_opinions.append(question.id)
            return False
        await self.advance(session, question, now)
        return True

    async def rank(self, text: str, limit: int = 3) -> list[TopicMatch]:
        """The classifier's topics for `text`, best first (in a worker thread: a trained router
        runs a neural encoder, which must not hold up the event loop)."""
        ranked = await asyncio.to_thread(self.classifier.rank, text, limit)
        return [m for m in ranked if m.score >= 0.0]

    def _wants_second_opinion(self, q: QuestionRow) -> bool:
        if self.language_model is None or not self.org.topics:
            return False
        threshold = (self.org.language_model or LanguageModelConfig()).classify_below
        return q.topic_score is None or q.topic_score < threshold

    async def _second_opinion(self, question_id: int) -> bool:
        """Ask the language model which topic an uncertain question is about, then route it.

        The model only chooses among the configured topics (or none, which sends the question
        to the fallback owner); if it fails or says nothing usable, the router's call stands.
        """
        assert self.language_model is not None
        async with self.db.transaction() as session:
            q = await session.get(QuestionRow, question_id)
            if q is None or q.stage != "classifying":
                return False
            text, current = q.text, q.topic_key
        topics = sorted(self.org.topics, key=lambda t: t.id != current)
        choices = [TopicChoice(t.id, t.name, t.description or "") for t in topics]
        picked = await self.language_model.classify(text, choices)
        now = self.clock.now()
        async with self.db.transaction() as session:
            q = await session.get(QuestionRow, question_id)
            if q is None or q.status != "waiting" or q.stage != "classifying":
                return False  # the escalation job got there first
            if picked is not None and (picked.topic_id is None or self.org.topic(picked.topic_id)):
                log.info(
                    "question %s: the language model chose %s over %s (%s)",
                    q.id,
                    picked.topic_id or "no topic",
                    q.topic_key or "no topic",
                    picked.reason,
                )
                q.topic_key = picked.topic_id
                q.topic_score = round(picked.confidence, 4) if picked.topic_id else None
                q.sla_due_at = self._sla_due(q.source_key, q.topic_key, as_utc(q.created_at))
            q.stage, q.next_check_at = None, None
            await self.advance(session, q, now)
        return True

    async def _insert(
        self,
        session: AsyncSession,
        item: SourceItem,
        text: str,
        confidence: float,
        via: str,
        now: datetime,
    ) -> QuestionRow | None:
        ranked = await self.rank(text)
        topic = ranked[0] if ranked else None
        posted = as_utc(item.posted_at) if item.posted_at else None
        values: dict[str, Any] = {
            "source_key": item.source_id,
            "external_id": item.external_id[:200],
            "kind": item.kind.value,
            "parent_id": item.parent_id,
            "thread_id": item.thread_id,
            "url": (item.url or "")[:1000] or None,
            "author_name": sanitise(item.author_name, 200) if item.author_name else None,
            "title": sanitise(item.title, 300) if item.title else None,
            "text": text,
            "posted_at": posted,
            "via": via,
            "confidence": confidence,
            "topic_key": topic.topic if topic else None,
            "topic_score": topic.score if topic else None,
            "excluded_topics": [],
            "status": "new",
            "step": 0,
            "version": 1,
            "sla_due_at": self._sla_due(item.source_id, topic.topic if topic else None, now),
            "created_at": now,
            "updated_at": now,
        }
        insert = insert_for(session)
        result = await session.execute(
            insert(QuestionRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["source_key", "external_id"])
        )
        if not result.rowcount:  # type: ignore[attr-defined]
            return None
        return await self._question(session, item.source_id, item.external_id)

    def _sla_due(self, source_key: str, topic_key: str | None, now: datetime) -> datetime:
        hours = self.config.first_response_hours
        topic = self.org.topic(topic_key) if topic_key else None
        source = self.org.source(source_key)
        if source is not None and source.first_response_hours:
            hours = source.first_response_hours
        if topic is not None and topic.first_response_hours:
            hours = topic.first_response_hours
        return self.hours.organisation_time().add(now, hours * 60)

    async def _already_answered(self, session: AsyncSession, item: SourceItem) -> bool:
        found = await session.scalar(
            select(PageReplyRow.id).where(
                PageReplyRow.source_key == item.source_id,
                PageReplyRow.parent_id == item.external_id,
            )
        )
        return found is not None

    async def _staff_author(self, session: AsyncSession, item: SourceItem) -> int | None:
        handles = {h.strip().lower().lstrip("@") for h in (item.author_id, item.author_name) if h}
        if not handles:
            return None
        return await session.scalar(
            select(SocialHandleRow.person_id).where(SocialHandleRow.handle.in_(handles)).limit(1)
        )

    # -- answers --------------------------------------------------------------------------

    async def _reply_seen(
        self,
        session: AsyncSession,
        item: SourceItem,
        staff: int | None,
        now: datetime,
        report: IntakeReport,
    ) -> bool:
        """The page or a staff member wrote something: an answer, if it replies to a question."""
        if not item.parent_id:
            report.skip("the page's own post" if item.by_page else "staff post")
            return False
        insert = insert_for(session)
        await session.execute(
            insert(PageReplyRow)
            .values(
                source_key=item.source_id,
                external_id=item.external_id[:200],
                parent_id=item.parent_id[:200],
                by_page=item.by_page,
                person_id=staff,
                url=(item.url or "")[:1000] or None,
                posted_at=as_utc(item.posted_at) if item.posted_at else None,
                seen_at=now,
            )
            .on_conflict_do_nothing(index_elements=["source_key", "external_id"])
        )
        if staff is not None:
            await participation.record(
                session,
                person_id=staff,
                kind="page_comment",
                reference=f"{item.source_id}:{item.external_id}",
                at=now,
            )
        question = await self._question(session, item.source_id, item.parent_id)
        if question is None or question.status not in OPEN:
            report.skip("reply")
            return False
        report.answered.append(question.id)
        return await self.mark_answered(
            session,
            question,
            now,
            by=staff,
            kind="page" if staff is None else "staff",
            url=item.url,
            at=item.posted_at,
        )

    async def mark_answered(
        self,
        session: AsyncSession,
        q: QuestionRow,
        now: datetime,
        *,
        by: int | None,
        kind: str,
        url: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Close a question as answered and credit whoever answered it."""
        credited = by
        if credited is None and kind == "page" and q.status in ("claimed", "reported"):
            credited = q.assignee_id  # the claimer most likely answered through the page
        answered_at = as_utc(at) if at else now
        q.status, q.stage, q.next_check_at = "answered", None, None
        q.answered_at, q.answer_kind, q.answered_by_id = answered_at, kind, credited
        q.answer_url = (url or q.answer_url or "")[:1000] or None
        q.first_response_at = q.first_response_at or answered_at
        q.updated_at = now
        self.metrics.questions.labels(q.source_key, "answered").inc()
        await self._finish_assignments(session, q, now, "answered")
        if credited is not None:
            await expertise.record(
                session,
                person_id=credited,
                topic_key=q.topic_key,
                evidence=Evidence.ANSWERED,
                now=now,
                rule=self.router.rule,
            )
            reference = f"question:{q.id}"
            await participation.record(
                session, person_id=credited, kind="question_answered", reference=reference, at=now
            )
            if kind in ("staff", "page"):
                await participation.record(
                    session,
                    person_id=credited,
                    kind="answer_verified",
                    reference=reference,
                    at=now,
                    details={"url": q.answer_url},
                )
                await self.send_to(session, credited, messages.credited(q), f"q{q.id}:credit", now)
        if kind == "elsewhere":
            status = "Already answered on the page"
        else:
            who = await self.name_of(session, credited) if credited else "the page"
            status = f"Answered by {who} ✓"
        await self._settle_messages(session, q, status, now)
        return True

    async def _close(self, session: AsyncSession, q: QuestionRow, now: datetime, why: str) -> bool:
        q.status, q.stage, q.next_check_at, q.closed_reason = "closed", None, None, why
        q.updated_at = now
        await self._finish_assignments(session, q, now, "closed")
        await self._settle_messages(session, q, f"Closed: {why}", now)
        return True

    async def _finish_assignments(
        self, session: AsyncSession, q: QuestionRow, now: datetime, outcome: str
    ) -> None:
        for assignment in await self.open_assignments(session, q.id):
            assignment.outcome, assignment.outcome_at = outcome, now

    async def _settle_messages(
        self, session: AsyncSession, q: QuestionRow, status: str, now: datetime
    ) -> None:
        """Update the current assignee's routed message and the channel post to the outcome."""
        last = await session.scalar(
            select(AssignmentRow)
            .where(AssignmentRow.question_id == q.id, AssignmentRow.message_key.is_not(None))
            .order_by(AssignmentRow.id.desc())
            .limit(1)
        )
        if last is not None and last.message_key:
            await self.update_sent(session, last.message_key, messages.settled(q, status), now)
        if q.channel_key:
            await self.update_sent(session, q.channel_key, messages.settled(q, status), now)

    # -- routing and escalation -------------------------------------------------------------

    async def advance(self, session: AsyncSession, q: QuestionRow, now: datetime) -> None:
        """Put the question in front of the next person (or channel) its history calls for."""
        topic = self.org.topic(q.topic_key) if q.topic_key else None
        if q.status not in ("channel",) and q.step < self.config.experts_before_channel:
            choice = await self.router.choose(
                session, q, topic, now, deadline=as_utc(q.sla_due_at or now)
            )
            if isinstance(choice, Wait):
                q.status, q.assignee_id, q.stage = "waiting", None, None
                q.next_check_at, q.updated_at = choice.until, now
                return
            if choice is None and q.step == 0:
                choice = await self.router.fallback_owner(session, q, topic, now)
            if choice is not None and await self._assign(session, q, choice, now):
                return
        if q.channel_key is None and await self._call_channel(session, q, topic, now):
            return
        pick = await self.router.last_resort(session, q, topic, now)
        if pick is not None and await self._assign(session, q, pick, now):
            return
        q.status, q.assignee_id, q.stage = "channel" if q.channel_key else "waiting", None, None
        q.next_check_at, q.updated_at = None, now
        log.warning("question %s has nobody left to ask; it stays open", q.id)

    async def _assign(
        self, session: AsyncSession, q: QuestionRow, pick: Pick, now: datetime
    ) -> bool:
        address = await self.address_of(session, pick.person_id)
        if address is None:
            log.info("question %s: %s is not reachable on any platform", q.id, pick.key)
            session.add(
                AssignmentRow(
                    question_id=q.id,
                    person_id=pick.person_id,
                    kind=pick.kind,
                    topic_key=q.topic_key,
                    reason="not reachable",
                    sent_at=now,
                    outcome="unreachable",
                    outcome_at=now,
                )
            )
            await session.flush()
            return False
        key = f"q{q.id}:ask:{q.step + 1}:{pick.person_id}"
        message = messages.routed(await self._routed_view(session, q, pick), now)
        await outbox.enqueue(
            session,
            key=key,
            address=address,
            message=message,
            now=now,
            person_id=pick.person_id,
            not_before=pick.not_before,
        )
        session.add(
            AssignmentRow(
                question_id=q.id,
                person_id=pick.person_id,
                kind=pick.kind,
                topic_key=q.topic_key,
                reason=pick.reason[:300],
                message_key=key,
                sent_at=now,
            )
        )
        start = pick.not_before or now
        person = await session.get(PersonRow, pick.person_id)
        zone = person.timezone if person else "UTC"
        q.status, q.assignee_id, q.stage, q.step = "routed", pick.person_id, None, q.step + 1
        q.next_check_at = (
            None  # the last resort: nobody to escalate to, it stays with them
            if pick.kind == "evangelist"
            else self.hours.of(pick.key, zone).add(start, self.config.step_minutes)
        )
        q.updated_at = now
        await participation.record(
            session,
            person_id=pick.person_id,
            kind="question_routed",
            reference=f"question:{q.id}",
            at=now,
        )
        self.metrics.questions.labels(q.source_key, "routed").inc()
        return True

    async def _routed_view(
        self, session: AsyncSession, q: QuestionRow, pick: Pick
    ) -> messages.Routed:
        topic = self.org.topic(q.topic_key) if q.topic_key else None
        return messages.Routed(
            question=q,
            source_label=self.source_label(q.source_key),
            topic_name=topic.name if topic else None,
            why=pick.reason,
            skeleton=await self._skeleton(session, q, pick.person_id),
            before=tuple(await knowledge.answered_before(session, q)),
        )

    async def _call_channel(
        self, session: AsyncSession, q: QuestionRow, topic: TopicConfig | None, now: datetime
    ) -> bool:
        address = self.topic_channel(topic)
        if address is None:
            return False
        await self._finish_assignments(session, q, now, "timed_out")
        key = f"q{q.id}:channel"
        label = self.source_label(q.source_key)
        before = tuple(await knowledge.answered_before(session, q))
        message = messages.channel_call(q, topic.name if topic else None, label, now, before)
        await outbox.enqueue(session, key=key, address=address, message=message, now=now)
        session.add(
            AssignmentRow(
                question_id=q.id,
                person_id=None,
                kind="channel",
                topic_key=q.topic_key,
                reason=f"asked in {address.channel}",
                sent_at=now,
            )
        )
        q.status, q.assignee_id, q.stage, q.channel_key = "channel", None, None, key
        q.next_check_at = self.hours.organisation_time().add(now, self.config.channel_minutes)
        q.updated_at = now
        return True

    def topic_channel(self, topic: TopicConfig | None) -> Address | None:
        """The topic's channel on the first running platform it can be written to."""
        if topic is None or not topic.channel:
            return None
        channel = topic.channel
        for name in self.platforms:
            if name == "console" and channel.startswith("#"):
                return Address.to_channel(Platform.CONSOLE, channel)
            if name == "slack" and channel[:1] in ("C", "G") and channel.isalnum():
                return Address.to_channel(Platform.SLACK, channel)
            if name == "teams" and channel.startswith("19:"):
                return Address.to_channel(Platform.TEAMS, channel)
        return None

    async def run_due(self, limit: int = 200) -> int:
        """The escalation job: take each due question one step further. Returns steps taken."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            due = list(
                (
                    await session.scalars(
                        select(QuestionRow.id)
                        .where(QuestionRow.next_check_at <= now, QuestionRow.status.in_(OPEN))
                        .order_by(QuestionRow.next_check_at, QuestionRow.id)
                        .limit(limit)
                    )
                ).all()
            )
        steps = 0
        for question_id in due:
            try:
                async with self.db.transaction() as session:
                    q = await session.get(QuestionRow, question_id)
                    if q is None or q.status not in OPEN or q.next_check_at is None:
                        continue
                    if as_utc(q.next_check_at) > now:
                        continue
                    await self._step(session, q, now)
                steps += 1
            except StaleDataError:
                log.info(
                    "question %s changed while stepping it; leaving it to its new owner",
                    question_id,
                )
            except Exception:
                log.exception("escalation step for question %s failed", question_id)
        if steps:
            self.on_enqueued()
        return steps

    async def _step(self, session: AsyncSession, q: QuestionRow, now: datetime) -> None:
        key = f"q{q.id}:v{q.version}"
        if q.status == "routed" and q.stage == "snoozed" and q.assignee_id is not None:
            pick = Pick(q.assignee_id, "", "", "expert", "you asked me to remind you")
            view = await self._routed_view(session, q, pick)
            view = dataclasses.replace(view, reminder=True)
            await self.send_to(
                session, q.assignee_id, messages.routed(view, now), f"{key}:remind", now
            )
            q.stage = None
            q.next_check_at = await self.working_add(
                session, q.assignee_id, now, self.config.step_minutes
            )
        elif q.status == "claimed" and q.stage is None and q.assignee_id is not None:
            await self.send_to(
                session, q.assignee_id, messages.claim_reminder(q), f"{key}:nudge", now
            )
            q.stage = "reminded"
            q.next_check_at = await self.working_add(
                session, q.assignee_id, now, self.config.release_after_minutes
            )
        elif q.status == "reported" and q.stage is None and q.assignee_id is not None:
            await self.send_to(session, q.assignee_id, messages.verify_ask(q), f"{key}:verify", now)
            q.stage, q.next_check_at = "asked", now + timedelta(hours=24)
        elif q.status == "reported":
            # Asked once and heard nothing more: take the person's word for it.
            await self.mark_answered(session, q, now, by=q.assignee_id, kind="reported")
            return
        else:
            if q.status == "claimed" and q.assignee_id is not None:
                await self.send_to(
                    session, q.assignee_id, messages.released(q), f"{key}:released", now
                )
                await expertise.record(
                    session,
                    person_id=q.assignee_id,
                    topic_key=q.topic_key,
                    evidence=Evidence.RELEASED,
                    now=now,
                    rule=self.router.rule,
                )
            await self._pass_on(
                session, q, now, "timed_out" if q.status == "routed" else "released"
            )
            await self.advance(session, q, now)
            return
        q.updated_at = now

    async def _pass_on(
        self, session: AsyncSession, q: QuestionRow, now: datetime, outcome: str
    ) -> None:
        """Close the current assignment and update its message: it has moved on."""
        for assignment in await self.open_assignments(session, q.id):
            assignment.outcome, assignment.outcome_at = outcome, now
            if assignment.message_key and assignment.kind != "channel":
                await self.update_sent(
                    session,
                    assignment.message_key,
                    messages.settled(q, "Passed on to someone else: nothing to do"),
                    now,
                )
        q.assignee_id = None

    # -- helpers ---------------------------------------------------------------------------

    async def send_to(
        self,
        session: AsyncSession,
        person_id: int,
        message: OutgoingMessage,
        key: str,
        now: datetime,
        not_before: datetime | None = None,
    ) -> bool:
        address = await self.address_of(session, person_id)
        if address is None:
            return False
        return await outbox.enqueue(
            session,
            key=key,
            address=address,
            message=message,
            now=now,
            person_id=person_id,
            not_before=not_before,
        )

    async def update_sent(
        self,
        session: AsyncSession,
        original_key: str,
        message: OutgoingMessage,
        now: datetime,
    ) -> None:
        """Change a message we sent, named by its outbox key."""
        await outbox.update_by_key(session, original_key, message, now)

    async def update_ref(
        self, session: AsyncSession, ref: MessageRef, message: OutgoingMessage, now: datetime
    ) -> None:
        """Change a message a button was pressed on (the platform gave us its reference)."""
        await outbox.update_pressed(session, ref, message, now)

    async def address_of(self, session: AsyncSession, person_id: int) -> Address | None:
        """Where to reach a person: the first running platform they are on and haven't blocked."""
        return await directory.address_of(session, person_id, self.platforms)

    async def open_assignments(
        self, session: AsyncSession, question_id: int
    ) -> list[AssignmentRow]:
        return list(
            (
                await session.scalars(
                    select(AssignmentRow).where(
                        AssignmentRow.question_id == question_id,
                        AssignmentRow.outcome.in_(("open", "claimed")),
                    )
                )
            ).all()
        )

    async def _question(
        self, session: AsyncSession, source_key: str, external_id: str
    ) -> QuestionRow | None:
        return await session.scalar(
            select(QuestionRow).where(
                QuestionRow.source_key == source_key,
                QuestionRow.external_id == external_id[:200],
            )
        )

    async def name_of(self, session: AsyncSession, person_id: int | None) -> str:
        person = await session.get(PersonRow, person_id) if person_id else None
        return person.name if person else "someone"

    async def working_add(
        self, session: AsyncSession, person_id: int, start: datetime, minutes: float
    ) -> datetime:
        person = await session.get(PersonRow, person_id)
        if person is None:
            return self.hours.organisation_time().add(start, minutes)
        return self.hours.of(person.key, person.timezone).add(start, minutes)

    async def _skeleton(self, session: AsyncSession, q: QuestionRow, person_id: int) -> str:
        person = await session.get(PersonRow, person_id)
        if person is None:
            return ""
        config = self.org.person(person.key)
        affiliation = config.affiliation if config and config.affiliation else None
        if affiliation is None:
            team = await session.scalar(
                select(TeamRow.name)
                .join(TeamMemberRow, TeamMemberRow.team_id == TeamRow.id)
                .where(TeamMemberRow.person_id == person_id)
                .order_by(TeamRow.key)
                .limit(1)
            )
            org = self.org.organisation.name
            affiliation = f"I work in {team} at {org}" if team else f"I work at {org}"
        return messages.skeleton(q.author_name, person.name.split()[0], affiliation)

    def source_label(self, source_key: str) -> str:
        source = self.org.source(source_key)
        if source is None:
            return messages.SOURCE_LABELS.get(source_key, "a brand page")
        return source.name or messages.SOURCE_LABELS.get(source.kind, source.id)


async def sync_handles(session: AsyncSession, organisation: OrganisationConfig) -> None:
    """Make the handles the organisation file lists match the table (people add their own too)."""
    people = {row.key: row.id for row in (await session.scalars(select(PersonRow))).all()}
    wanted: dict[tuple[str, str], int] = {}
    for person in organisation.people:
        for network, handles in person.handles.items():
            for handle in handles:
                normalised = " ".join(handle.split()).lower().lstrip("@")
                if normalised and person.id in people:
                    wanted[(network, normalised[:200])] = people[person.id]
    rows = {
        (r.network, r.handle): r for r in (await session.scalars(select(SocialHandleRow))).all()
    }
    for key, row in rows.items():
        if row.from_config and key not in wanted:
            await session.delete(row)
    for (network, handle), person_id in wanted.items():
        existing = rows.get((network, handle))
        if existing is None:
            session.add(
                SocialHandleRow(
                    person_id=person_id, network=network, handle=handle, from_config=True
                )
            )
        else:
            existing.person_id, existing.from_config = person_id, True
