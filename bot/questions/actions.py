"""The buttons on routed questions and channel posts: claim, not me, already answered, snooze,
I answered, release, it's posted. Each re-reads the question in the event's transaction and
answers the presser in a sentence; the pressed message updates itself to the new state.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from bot.core.types import OutgoingMessage
from bot.questions import expertise, messages
from bot.questions.desk import OPEN, VERIFIABLE_SOURCES, QuestionDesk
from bot.questions.drafts import SuggestedReplies
from bot.questions.expertise import Evidence
from bot.services.commands import CommandContext, CommandRegistry
from bot.storage import audit, participation
from bot.storage.models import AssignmentRow, QuestionRow

SNOOZE = timedelta(hours=1)


def register(
    registry: CommandRegistry, desk: QuestionDesk, drafts: SuggestedReplies | None = None
) -> None:
    actions = Actions(desk, drafts)
    registry.action("q.claim", actions.claim)
    registry.action("q.topic", actions.wrong_topic)
    registry.action("q.busy", actions.busy)
    registry.action("q.already", actions.already)
    registry.action("q.snooze", actions.snooze)
    registry.action("q.done", actions.done)
    registry.action("q.release", actions.release)
    registry.action("q.posted", actions.posted)


class Actions:
    def __init__(self, desk: QuestionDesk, drafts: SuggestedReplies | None = None) -> None:
        self.desk = desk
        self.drafts = drafts

    async def _load(self, ctx: CommandContext) -> QuestionRow | None:
        question = None
        if ctx.args.strip().isdigit():
            question = await ctx.session.get(QuestionRow, int(ctx.args.strip()))
        if question is None:
            ctx.reply("I can't find that question any more.")
            return None
        if question.status not in OPEN:
            ctx.reply(f"Question #{question.id} is already {_done_words(question)}. Thank you!")
            await self._show(ctx, question, f"Already {_done_words(question)}")
            return None
        return question

    async def _show(self, ctx: CommandContext, q: QuestionRow, status: str) -> None:
        """Update the pressed message so its buttons match the question's state."""
        if ctx.message is not None:
            await self._update_pressed(ctx, messages.settled(q, status))

    async def _update_pressed(self, ctx: CommandContext, message: OutgoingMessage) -> None:
        if ctx.message is None:
            return
        await self.desk.update_ref(ctx.session, ctx.message, message, ctx.now)
        ctx.enqueued = True

    # -- buttons ---------------------------------------------------------------------------

    async def claim(self, ctx: CommandContext) -> None:
        q = await self._load(ctx)
        if q is None:
            return
        me = ctx.person.id
        if q.status in ("claimed", "reported"):
            if q.assignee_id == me:
                ctx.reply(f"Question #{q.id} is already yours.")
            else:
                who = await self.desk.name_of(ctx.session, q.assignee_id)
                ctx.reply(f"{who} is already answering question #{q.id}. Thank you anyway!")
            return
        for assignment in await self.desk.open_assignments(ctx.session, q.id):
            if assignment.person_id == me:
                assignment.outcome, assignment.outcome_at = "claimed", ctx.now
            elif assignment.kind != "channel":
                assignment.outcome, assignment.outcome_at = "superseded", ctx.now
                if assignment.message_key:
                    await self.desk.update_sent(
                        ctx.session,
                        assignment.message_key,
                        messages.settled(q, f"{ctx.person.name} took this one: nothing to do"),
                        ctx.now,
                    )
        if not await self._has_assignment(ctx, q.id):
            ctx.session.add(
                AssignmentRow(
                    question_id=q.id,
                    person_id=me,
                    kind="volunteer",
                    topic_key=q.topic_key,
                    reason="volunteered",
                    sent_at=ctx.now,
                    outcome="claimed",
                    outcome_at=ctx.now,
                )
            )
        q.status, q.assignee_id, q.stage, q.claimed_at = "claimed", me, None, ctx.now
        await self._learn(ctx, q.topic_key, Evidence.CLAIMED)
        q.first_response_at = q.first_response_at or ctx.now
        q.next_check_at = await self.desk.working_add(
            ctx.session, me, ctx.now, self.desk.config.claim_reminder_minutes
        )
        q.updated_at = ctx.now
        await participation.record(
            ctx.session,
            person_id=me,
            kind="question_claimed",
            reference=f"question:{q.id}",
            at=ctx.now,
        )
        claimed = messages.claimed(q, ctx.person.name)
        if q.channel_key:
            await self.desk.update_sent(
                ctx.session,
                q.channel_key,
                messages.settled(q, f"{ctx.person.name} is answering this one"),
                ctx.now,
            )
            ctx.enqueued = True
        if ctx.message is not None and not self._pressed_in_channel(ctx, q):
            await self._update_pressed(ctx, claimed)
        else:
            await self.desk.send_to(ctx.session, me, claimed, f"q{q.id}:claimed:{me}", ctx.now)
            ctx.enqueued = True
        ctx.reply(f"Thank you! Question #{q.id} is yours. Answer as yourself on the page.")
        if self.drafts is not None:
            self.drafts.after_commit(ctx.session, q.id, me)

    async def wrong_topic(self, ctx: CommandContext) -> None:
        q = await self._current(ctx)
        if q is None:
            return
        excluded = list(q.excluded_topics or [])
        if q.topic_key and q.topic_key not in excluded:
            excluded.append(q.topic_key)
        q.excluded_topics = excluded
        await self._learn(ctx, q.topic_key, Evidence.DECLINED_TOPIC)  # before the topic moves
        ranked = await self.desk.rank(q.text, limit=5)
        better = next((m for m in ranked if m.topic not in excluded), None)
        moved = better is not None and better.topic != q.topic_key
        if better is not None and moved:
            q.topic_key, q.topic_score, q.step = better.topic, better.score, 0
        await self._decline(ctx, q, "declined_topic")
        topic = self.desk.org.topic(q.topic_key) if q.topic_key else None
        where = f" under {topic.name}" if moved and topic else ""
        ctx.reply(f"Thanks, I've noted it's not your topic and passed #{q.id} on{where}.")

    async def busy(self, ctx: CommandContext) -> None:
        q = await self._current(ctx)
        if q is None:
            return
        await self._decline(ctx, q, "declined_busy")
        ctx.reply(f"No problem. I've passed question #{q.id} on to someone else.")

    async def already(self, ctx: CommandContext) -> None:
        q = await self._load(ctx)
        if q is None:
            return
        audit.record(
            ctx.session,
            at=ctx.now,
            actor=ctx.person,
            action="question.already_answered",
            target=f"question:{q.id}",
        )
        await self.desk.mark_answered(ctx.session, q, ctx.now, by=None, kind="elsewhere")
        ctx.enqueued = True
        ctx.reply(f"Thanks for checking. I've closed question #{q.id} as already answered.")

    async def snooze(self, ctx: CommandContext) -> None:
        q = await self._current(ctx)
        if q is None:
            return
        q.stage, q.next_check_at, q.updated_at = "snoozed", ctx.now + SNOOZE, ctx.now
        ctx.reply(f"I'll bring question #{q.id} back to you in an hour.")

    async def done(self, ctx: CommandContext) -> None:
        q = await self._current(ctx)
        if q is None:
            return
        await participation.record(
            ctx.session,
            person_id=ctx.person.id,
            kind="question_answered",
            reference=f"question:{q.id}",
            at=ctx.now,
        )
        source = self.desk.org.source(q.source_key)
        if source is None or source.kind not in VERIFIABLE_SOURCES:
            await self.desk.mark_answered(
                ctx.session, q, ctx.now, by=ctx.person.id, kind="reported"
            )
            ctx.enqueued = True
            ctx.reply(f"Thank you! I've marked question #{q.id} as answered by you.")
            return
        q.status, q.stage, q.reported_at, q.updated_at = "reported", None, ctx.now, ctx.now
        q.next_check_at = ctx.now + timedelta(minutes=self.desk.config.verify_after_minutes)
        await self._show(ctx, q, "You answered this one: I'm checking the page")
        ctx.reply(f"Thank you! I'll look for your reply to question #{q.id} on the page.")

    async def release(self, ctx: CommandContext) -> None:
        q = await self._current(ctx)
        if q is None:
            return
        await self._learn(ctx, q.topic_key, Evidence.RELEASED)
        await self._decline(ctx, q, "released")
        ctx.reply(f"No harm done. I've passed question #{q.id} on.")

    async def posted(self, ctx: CommandContext) -> None:
        q = await self._current(ctx)
        if q is None:
            return
        await self.desk.mark_answered(ctx.session, q, ctx.now, by=ctx.person.id, kind="reported")
        ctx.enqueued = True
        ctx.reply(f"Thank you! Question #{q.id} is marked as answered by you.")

    # -- shared ----------------------------------------------------------------------------

    async def _current(self, ctx: CommandContext) -> QuestionRow | None:
        """The question, if the presser is the one it is waiting for."""
        q = await self._load(ctx)
        if q is None:
            return None
        if q.assignee_id != ctx.person.id:
            ctx.reply(f"Question #{q.id} has moved on from you; nothing to do.")
            await self._show(ctx, q, "Moved on: nothing to do")
            return None
        return q

    async def _decline(self, ctx: CommandContext, q: QuestionRow, outcome: str) -> None:
        await participation.record(
            ctx.session,
            person_id=ctx.person.id,
            kind="question_declined",
            reference=f"question:{q.id}",
            at=ctx.now,
            details={"reason": outcome},
        )
        for assignment in await self.desk.open_assignments(ctx.session, q.id):
            if assignment.person_id == ctx.person.id:
                assignment.outcome, assignment.outcome_at = outcome, ctx.now
        q.assignee_id = None
        status = "You passed this one on" if outcome != "released" else "You released this one"
        await self._show(ctx, q, status)
        await self.desk.advance(ctx.session, q, ctx.now)
        ctx.enqueued = True

    async def _learn(self, ctx: CommandContext, topic: str | None, evidence: Evidence) -> None:
        """What the press says about the presser's expertise on `topic` (see expertise)."""
        await expertise.record(
            ctx.session,
            person_id=ctx.person.id,
            topic_key=topic,
            evidence=evidence,
            now=ctx.now,
            rule=self.desk.router.rule,
        )

    async def _has_assignment(self, ctx: CommandContext, question_id: int) -> bool:
        found = await ctx.session.scalar(
            select(AssignmentRow.id).where(
                AssignmentRow.question_id == question_id,
                AssignmentRow.person_id == ctx.person.id,
                AssignmentRow.outcome == "claimed",
            )
        )
        return found is not None

    def _pressed_in_channel(self, ctx: CommandContext, q: QuestionRow) -> bool:
        """Whether the press came from the topic channel's post rather than a direct message."""
        if ctx.message is None or not q.channel_key:
            return False
        topic = self.desk.org.topic(q.topic_key) if q.topic_key else None
        channel = self.desk.topic_channel(topic)
        # A press on a Teams channel post comes from the post's thread, "<channel>;messageid=…".
        pressed_in = ctx.message.channel.split(";messageid=")[0]
        return channel is not None and channel.channel == pressed_in


def _done_words(q: QuestionRow) -> str:
    return "answered" if q.status == "answered" else "closed"
