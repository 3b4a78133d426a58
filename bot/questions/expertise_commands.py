"""Seeing and steering what the desk has learned about who knows which topic.

- `expertise`: anyone; their own topics and weights.
- `expertise PERSON` / `expertise TOPIC`: the evangelist; the table for a person or a topic
  (configured, learned, effective, answers/claims/declines, override).
- `expertise set PERSON TOPIC WEIGHT` / `expertise reset PERSON TOPIC`: the evangelist; fix a
  weight (0 to 3; 0 = never ask them about it) or go back to the configured weight. Audited.
"""

from __future__ import annotations

from bot.config.organisation import TopicConfig
from bot.core.permissions import Permission, require
from bot.core.types import OutgoingMessage
from bot.questions import expertise
from bot.questions.desk import QuestionDesk
from bot.questions.expertise_view import (
    describe,
    parse_weight,
    resolve_person,
    resolve_topic,
    standings,
)
from bot.services.commands import Command, CommandContext, CommandRegistry
from bot.storage import audit
from bot.storage.models import PersonRow

MAX_LINES = 40


def _name(person: PersonRow | None) -> str:
    return person.name if person else "someone"


def register(registry: CommandRegistry, desk: QuestionDesk) -> None:
    commands = ExpertiseCommands(desk)
    registry.command(
        Command(
            "expertise",
            "your topics and weights; the evangelist sees and sets anyone's",
            commands.run,
            usage="[PERSON | TOPIC | set PERSON TOPIC WEIGHT | reset PERSON TOPIC]",
        )
    )


class ExpertiseCommands:
    def __init__(self, desk: QuestionDesk) -> None:
        self.desk = desk

    async def run(self, ctx: CommandContext) -> None:
        words = ctx.args.split()
        verb = words[0].lower() if words else ""
        if not words:
            await self._mine(ctx)
        elif verb == "set" and len(words) >= 4:
            require(ctx.person, Permission.MANAGE_TOPICS)
            await self._set(ctx, " ".join(words[1:-2]), words[-2], words[-1])
        elif verb == "reset" and len(words) >= 3:
            require(ctx.person, Permission.MANAGE_TOPICS)
            await self._reset(ctx, " ".join(words[1:-1]), words[-1])
        elif verb in ("set", "reset"):
            ctx.reply(
                "Say `expertise set PERSON TOPIC WEIGHT` (0 to 3; 0 = never ask) or "
                "`expertise reset PERSON TOPIC`."
            )
        else:
            require(ctx.person, Permission.MANAGE_TOPICS)
            await self._table(ctx, ctx.args.strip())

    async def _mine(self, ctx: CommandContext) -> None:
        found = [
            s
            for s in await standings(
                ctx.session, self.desk.org, ctx.now, person_id=ctx.person.id, rule=self._rule
            )
            if s.weight.value > 0 or s.configured > 0 or s.override is not None
        ]
        if not found:
            ctx.reply(
                "You're not an expert on any topic yet. When you answer questions from our "
                "pages, I learn what you know, and the evangelist can name you for a topic."
            )
            return
        lines = "\n".join(describe(s) for s in found[:MAX_LINES])
        ctx.reply(
            OutgoingMessage(
                text=f"Your topics ({len(found)})",
                sections=(
                    f"**Your topics ({len(found)})**",
                    lines,
                    "The higher your weight, the sooner questions on that topic come to you. "
                    "Answers raise it, 'wrong topic' lowers it, and both fade over months.",
                ),
            )
        )

    async def _table(self, ctx: CommandContext, what: str) -> None:
        topic = None if what.startswith(("@", "<")) else resolve_topic(self.desk.org, what)
        person = None if topic else await resolve_person(ctx.session, what)
        if topic is None and person is None:
            ctx.reply(f"I don't know a person or topic called `{what[:60]}`.")
            return
        found = await standings(
            ctx.session,
            self.desk.org,
            ctx.now,
            person_id=person.id if person else None,
            topic_key=topic.id if topic else None,
            rule=self._rule,
        )
        title = f"Expertise on {topic.name}" if topic else f"Expertise of {_name(person)}"
        if not found:
            ctx.reply(f"{title}: nothing configured or learned yet.")
            return
        by = "person" if topic else "topic"
        lines = "\n".join(describe(s, by=by) for s in found[:MAX_LINES])
        ctx.reply(OutgoingMessage(text=title, sections=(f"**{title}**", lines)))

    async def _set(self, ctx: CommandContext, who: str, what: str, value: str) -> None:
        found = await self._pair(ctx, who, what)
        weight = parse_weight(value)
        if found is None:
            return
        if weight is None:
            ctx.reply(f"The weight must be a number from 0 to {expertise.MAX_OVERRIDE:g}.")
            return
        person, topic = found
        before = await expertise.set_override(
            ctx.session,
            person_id=person.id,
            topic_key=topic.id,
            weight=weight,
            by=ctx.person.key,
            now=ctx.now,
        )
        audit.record(
            ctx.session,
            at=ctx.now,
            actor=ctx.person,
            action="expertise.set",
            target=f"{person.key}:{topic.id}",
            details={"weight": weight, "before": before},
        )
        effect = "I won't ask them about it" if weight == 0 else "questions follow that weight"
        ctx.reply(f"Set {person.name} on {topic.name} to {weight:g}: {effect}.")

    async def _reset(self, ctx: CommandContext, who: str, what: str) -> None:
        found = await self._pair(ctx, who, what)
        if found is None:
            return
        person, topic = found
        changed = await expertise.reset(
            ctx.session, person_id=person.id, topic_key=topic.id, now=ctx.now
        )
        audit.record(
            ctx.session,
            at=ctx.now,
            actor=ctx.person,
            action="expertise.reset",
            target=f"{person.key}:{topic.id}",
            outcome="ok" if changed else "unchanged",
        )
        configured = next((e.weight for e in topic.experts if e.person == person.key), None)
        back = (
            f"the configured weight {configured:g}" if configured else "no weight (not configured)"
        )
        ctx.reply(
            f"{person.name} is back to {back} on {topic.name}; what I had learned is forgotten "
            "and learning starts again."
        )

    async def _pair(
        self, ctx: CommandContext, who: str, what: str
    ) -> tuple[PersonRow, TopicConfig] | None:
        person = await resolve_person(ctx.session, who)
        topic = resolve_topic(self.desk.org, what)
        if person is None:
            ctx.reply(f"I don't know a person called `{who[:60]}`.")
            return None
        if topic is None:
            known = ", ".join(t.id for t in self.desk.org.topics) or "none"
            ctx.reply(f"I don't know the topic `{what[:60]}` (topics: {known}).")
            return None
        return person, topic

    @property
    def _rule(self) -> expertise.Rule:
        return self.desk.router.rule
