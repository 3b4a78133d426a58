"""Suggested replies: whoever claims a question gets a draft reply, privately, to edit and post.

With a language model configured (and `language_model.drafts` on), a claim starts a background
task once its transaction has committed. The task reads the question in a transaction of its
own, asks the model for a draft in the question's language, and enqueues one direct message to
the claimer. When the model has nothing (unavailable, over budget, an answer that failed our
checks), the template reply with its disclosure line goes instead. Nothing else happens: the
draft is never posted and never triggers an action, and a slow or failing model never delays or
breaks the claim.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from bot.config.organisation import LanguageModelConfig
from bot.core.clock import as_utc
from bot.core.llm import Draft, DraftRequest
from bot.core.types import OutgoingMessage
from bot.questions.desk import QuestionDesk
from bot.questions.messages import quote
from bot.storage.models import QuestionRow

log = logging.getLogger(__name__)

PLACEHOLDER = " <your answer>"
"""How the template reply (`messages.skeleton`) ends; the disclosure line is what comes before."""
HEADER = "**Suggested reply — only you can see this.** Edit it and post it on the page as yourself."


class SuggestedReplies:
    """Drafts replies for claimers in the background; `pending` and `drain` let tests wait."""

    def __init__(self, desk: QuestionDesk) -> None:
        self.desk = desk
        self.config = desk.org.language_model or LanguageModelConfig()
        self.pending: set[asyncio.Task[None]] = set()

    @property
    def enabled(self) -> bool:
        return self.desk.language_model is not None and self.config.drafts

    def after_commit(self, session: AsyncSession, question_id: int, person_id: int) -> None:
        """Draft a reply for the claimer once the claim in `session` has committed.

        A claim that rolls back (another person won the race) never commits, so it drafts
        nothing.
        """
        if not self.enabled:
            return

        def committed(_session: Session) -> None:
            self.start(question_id, person_id)

        event.listen(session.sync_session, "after_commit", committed, once=True)

    def start(self, question_id: int, person_id: int) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(
            self._suggest(question_id, person_id), name=f"draft-q{question_id}"
        )
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)
        return task

    async def drain(self) -> None:
        """Wait until every draft in progress is delivered or given up."""
        while self.pending:
            await asyncio.gather(*self.pending, return_exceptions=True)

    async def close(self) -> None:
        """Stop drafting (shutdown) and close the model's connections."""
        for task in self.pending:
            task.cancel()
        await asyncio.gather(*self.pending, return_exceptions=True)
        close = getattr(self.desk.language_model, "close", None)
        if close is not None:
            await close()

    async def _suggest(self, question_id: int, person_id: int) -> None:
        model = self.desk.language_model
        if model is None:
            return
        try:
            found = await self._request(question_id, person_id)
            if found is None:
                return
            request, template, key = found
            draft = await model.draft_reply(request)
            message = suggestion(question_id, draft, template)
            if await self._deliver(question_id, person_id, message, key):
                self.desk.on_enqueued()
        except Exception:
            log.exception("suggesting a reply for question %s failed", question_id)

    async def _request(
        self, question_id: int, person_id: int
    ) -> tuple[DraftRequest, str, str] | None:
        async with self.desk.db.transaction() as session:
            q = await session.get(QuestionRow, question_id)
            if q is None or q.status != "claimed" or q.assignee_id != person_id:
                return None
            template = await self.desk._skeleton(session, q, person_id)
            topic = self.desk.org.topic(q.topic_key) if q.topic_key else None
            claimed = int(as_utc(q.claimed_at).timestamp()) if q.claimed_at else q.version
            request = DraftRequest(
                question=f"{q.title}\n{q.text}" if q.title else q.text,
                language=None,
                source=self.desk.source_label(q.source_key),
                author=q.author_name,
                topic=topic.name if topic else None,
                claimer=await self.desk.name_of(session, person_id),
                disclosure=template.removesuffix(PLACEHOLDER),
                tone=self.config.tone,
            )
        return request, template, f"q{question_id}:draft:{person_id}:{claimed}"

    async def _deliver(
        self, question_id: int, person_id: int, message: OutgoingMessage, key: str
    ) -> bool:
        async with self.desk.db.transaction() as session:
            q = await session.get(QuestionRow, question_id)
            if q is None or q.status != "claimed" or q.assignee_id != person_id:
                return False  # it moved on while the model was writing
            return await self.desk.send_to(session, person_id, message, key, self.desk.clock.now())


def suggestion(question_id: int, draft: Draft | None, template: str) -> OutgoingMessage:
    """The private message with the suggested reply (the model's draft, or the template)."""
    if draft is not None:
        body = quote(draft.text)
        note = (
            "_Written by a language model from the public comment. Check every fact before you "
            "post it; nobody else sees this draft._"
        )
        context = f"Question #{question_id} · suggested by a language model"
    else:
        body = quote(template)
        note = "_Our template: fill in your answer. Nobody else sees this._"
        context = f"Question #{question_id} · template reply"
    return OutgoingMessage(
        text=f"Suggested reply for question #{question_id} (only you can see this)",
        sections=(HEADER, body, note),
        context=context,
    )
