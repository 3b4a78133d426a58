"""The question desk's life cycle, with a frozen clock, on the real app and the console platform.

Questions arrive as source items, people press the buttons the console shows them (the same
ButtonPress events Slack and Teams produce), jobs run when the test says so, and everything the
bot sends is read back from the console platform's transcript.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.app import Evangelist, build
from bot.config.organisation import OrganisationConfig, parse_organisation
from bot.core.clock import FrozenClock, as_utc
from bot.core.sources import ItemKind, SourceItem
from bot.core.types import Actor, Address, ButtonPress, MessageRef, Platform
from bot.platforms.console.platform import ConsoleEntry
from bot.storage.models import AssignmentRow, OutboxRow, ParticipationRow, QuestionRow
from tests.conftest import make_settings

# Monday 2 March 2026, 10:00 UTC: 10:00 in London, 11:00 in Berlin, 05:00 in New York.
MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)

ORG = """
organisation: {name: Northfield University, timezone: Europe/London}
questions:
  step_minutes: 60
  experts_before_channel: 2
  channel_minutes: 60
  claim_reminder_minutes: 120
  release_after_minutes: 60
  capacity: 2
people:
  - {id: ada, name: Ada Okafor, timezone: Europe/London, roles: [evangelist]}
  - {id: ravi, name: Ravi Menon, timezone: Europe/London, roles: [expert],
     handles: {facebook: [Ravi Menon]}}
  - {id: mia, name: Mia Schulz, timezone: Europe/Berlin, roles: [expert]}
  - {id: noah, name: Noah Brown, timezone: America/New_York, roles: [expert]}
  - {id: tom, name: Tom Becker, timezone: Europe/London}
teams:
  - {id: admissions, name: Admissions, members: [ravi, mia, noah, tom],
     channels: {console: ["#admissions"]}}
topics:
  - id: admissions
    name: Admissions
    keywords: [apply, application, deadline, tuition, fees]
    examples: ["When is the application deadline?"]
    experts:
      - {person: ravi, weight: 2}
      - {person: mia, weight: 1}
      - {person: noah, weight: 3}
    channel: "#admissions"
    fallback_owner: ada
  - id: research
    name: Research
    keywords: [phd, supervisor, research]
    experts: [{person: mia}]
    channel: "#research"
sources:
  - {id: page, kind: facebook_page, page_id: "111", name: our Facebook Page, poll_minutes: 0}
"""


@pytest.fixture
def org() -> OrganisationConfig:
    return parse_organisation(ORG)


@pytest.fixture
async def desk_bot(
    database_url: str, org: OrganisationConfig
) -> AsyncIterator[tuple[Evangelist, FrozenClock]]:
    clock = FrozenClock(MONDAY_10)
    bot = build(make_settings(database_url), clock=clock, organisation=org, console=True)
    await bot.prepare()
    try:
        yield bot, clock
    finally:
        await bot.db.close()


def question(external_id: str, text: str, **extra: Any) -> SourceItem:
    return SourceItem(
        source_id="page",
        external_id=external_id,
        text=text,
        parent_id="111_1",
        thread_id="111_1",
        author_name="Maria Lopez",
        url=f"https://www.facebook.com/111_1?comment_id={external_id}",
        **extra,
    )


def reply(to: str, external_id: str, **who: Any) -> SourceItem:
    return SourceItem(
        source_id="page",
        external_id=external_id,
        text="Hi Maria, the deadline is 30 June.",
        kind=ItemKind.REPLY,
        parent_id=to,
        thread_id="111_1",
        url=f"https://www.facebook.com/111_1?comment_id={external_id}",
        **who,
    )


def inbox(bot: Evangelist, who: str) -> list[ConsoleEntry]:
    assert bot.console is not None
    return [e for e in bot.console.entries.values() if e.conversation == f"dm:{who}"]


def channel(bot: Evangelist, name: str) -> list[ConsoleEntry]:
    assert bot.console is not None
    return [e for e in bot.console.entries.values() if e.conversation == name]


async def press(bot: Evangelist, who: str, entry: ConsoleEntry, action: str) -> None:
    """Press the button `action` on a message the console shows `who`."""
    button = next(b for b in entry.message.buttons if b.action == action)
    where = (
        Address.direct(Platform.CONSOLE, who)
        if entry.conversation.startswith("dm:")
        else Address.to_channel(Platform.CONSOLE, entry.conversation)
    )
    event = ButtonPress(
        f"press-{who}-{entry.message_id}-{action}",
        Actor(Platform.CONSOLE, who),
        button.action,
        button.value,
        where,
        MessageRef(Platform.CONSOLE, entry.conversation, entry.message_id),
    )
    assert await bot.chat.handle(event)
    await bot.dispatcher.drain()


async def take_in(bot: Evangelist, *items: SourceItem, via: str = "webhook") -> list[int]:
    assert bot.desk is not None
    report = await bot.desk.take_in(list(items), via=via)
    await bot.dispatcher.drain()
    return report.new


async def tick(bot: Evangelist, clock: FrozenClock, minutes: float) -> None:
    clock.advance(timedelta(minutes=minutes))
    assert bot.desk is not None
    await bot.desk.run_due()
    await bot.dispatcher.drain()


async def load(bot: Evangelist, question_id: int) -> QuestionRow:
    async with bot.db.transaction() as session:
        row = await session.get(QuestionRow, question_id)
        assert row is not None
        return row


async def participation(bot: Evangelist) -> list[tuple[str, str, str]]:
    async with bot.db.transaction() as session:
        rows = await session.execute(
            select(ParticipationRow.kind, ParticipationRow.reference, ParticipationRow.person_id)
        )
        names = {1: "ada", 2: "ravi", 3: "mia", 4: "noah", 5: "tom"}
        return sorted((kind, ref, names.get(pid, str(pid))) for kind, ref, pid in rows.all())


async def test_routed_declined_rerouted_claimed_answered_and_credited(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = desk_bot
    [qid] = await take_in(bot, question("c1", "When is the application deadline for autumn?"))

    # Noah has the highest weight but it is 05:00 in New York: Ravi, next by weight, gets it.
    [asked] = inbox(bot, "ravi")
    assert "When is the application deadline for autumn?" in "\n".join(asked.message.sections)
    assert "Why you: you're one of our experts on Admissions" in "\n".join(asked.message.sections)
    skeleton = asked.message.sections[-1]
    assert "Hi Maria, I'm Ravi and I work in Admissions at Northfield University." in skeleton
    assert not inbox(bot, "mia") and not inbox(bot, "noah")

    await press(bot, "ravi", asked, "q.busy")
    assert "Passed" in asked.message.text or "passed" in "\n".join(asked.message.sections)
    [mias] = inbox(bot, "mia")
    assert (await load(bot, qid)).assignee_id is not None

    await press(bot, "mia", mias, "q.claim")
    q = await load(bot, qid)
    assert q.status == "claimed" and as_utc(q.claimed_at) == MONDAY_10
    assert [b.action for b in mias.message.buttons] == ["q.done", "q.release"]

    clock.advance(timedelta(minutes=20))
    await take_in(bot, reply("c1", "r1", author_name="Mia Schulz", by_page=True), via="poll")
    q = await load(bot, qid)
    assert q.status == "answered" and q.answer_kind == "page"
    assert q.answer_url == "https://www.facebook.com/111_1?comment_id=r1"
    assert "Answered by Mia Schulz" in mias.message.text
    thanks = inbox(bot, "mia")[-1]
    assert "is on the page" in "\n".join(thanks.message.sections)
    assert await participation(bot) == [
        ("answer_verified", f"question:{qid}", "mia"),
        ("question_answered", f"question:{qid}", "mia"),
        ("question_claimed", f"question:{qid}", "mia"),
        ("question_declined", f"question:{qid}", "ravi"),
        ("question_routed", f"question:{qid}", "mia"),
        ("question_routed", f"question:{qid}", "ravi"),
    ]


async def test_wrong_topic_is_remembered_and_moves_the_question(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, _ = desk_bot
    [qid] = await take_in(bot, question("c2", "How do I apply for a PhD with a supervisor?"))
    first = await load(bot, qid)
    [asked] = inbox(bot, "ravi") or inbox(bot, "mia")
    who = "ravi" if inbox(bot, "ravi") else "mia"
    await press(bot, who, asked, "q.topic")
    q = await load(bot, qid)
    assert first.topic_key in q.excluded_topics
    assert q.topic_key != first.topic_key
    assert q.assignee_id is not None


async def test_unclaimed_question_escalates_step_by_step(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = desk_bot
    [qid] = await take_in(
        bot, question("c3", "What are the tuition fees for international students?")
    )
    assert len(inbox(bot, "ravi")) == 1

    await tick(bot, clock, 59)
    assert not inbox(bot, "mia"), "nothing moves before the step is over"

    await tick(bot, clock, 1)
    assert len(inbox(bot, "mia")) == 1
    assert "Passed on" in inbox(bot, "ravi")[0].message.text

    await tick(bot, clock, 60)
    [post] = channel(bot, "#admissions")
    assert post.message.text.startswith("Can anyone help?")
    assert (await load(bot, qid)).status == "channel"

    await tick(bot, clock, 60)
    [to_ada] = inbox(bot, "ada")
    assert "nobody else could take it" in "\n".join(to_ada.message.sections)

    # Anyone in the channel can still take it; the post updates itself.
    await press(bot, "tom", post, "q.claim")
    q = await load(bot, qid)
    assert q.status == "claimed"
    assert "Tom Becker is answering" in post.message.text
    assert "took this one" in to_ada.message.text

    # Running the job again at the same moment changes nothing and sends nothing.
    async with bot.db.transaction() as session:
        before = await session.scalar(select(func.count()).select_from(OutboxRow))
    await tick(bot, clock, 0)
    async with bot.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(OutboxRow)) == before


async def test_claimed_then_silent_is_reminded_then_released(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = desk_bot
    [qid] = await take_in(
        bot, question("c4", "Is the application deadline the same for EU students?")
    )
    [asked] = inbox(bot, "ravi")
    await press(bot, "ravi", asked, "q.claim")

    await tick(bot, clock, 120)
    assert "gentle nudge" in inbox(bot, "ravi")[-1].message.text
    await tick(bot, clock, 60)
    assert "passed question" in inbox(bot, "ravi")[-1].message.text.lower()
    q = await load(bot, qid)
    assert q.status == "routed" and len(inbox(bot, "mia")) == 1


async def test_working_hours_decide_who_and_when(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = desk_bot
    # 17:30 London on Monday: Ravi (London) and Mia (Berlin, 18:30) have finished; Noah (New
    # York, 12:30) is at work and gets it although he was not first by weight earlier.
    clock.set(datetime(2026, 3, 2, 17, 30, tzinfo=UTC))
    await take_in(bot, question("c5", "When is the application deadline for spring?"))
    assert len(inbox(bot, "noah")) == 1 and not inbox(bot, "ravi")

    # 23:30 UTC: nobody works. The question waits for the first expert's morning.
    clock.set(datetime(2026, 3, 2, 23, 30, tzinfo=UTC))
    [qid] = await take_in(bot, question("c6", "Can I apply without my final transcript?"))
    q = await load(bot, qid)
    assert q.status == "waiting"
    assert as_utc(q.next_check_at) == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    await tick(bot, clock, 8.5 * 60 - 1)
    assert not any("transcript" in e.message.text for e in inbox(bot, "mia"))
    await tick(bot, clock, 1)
    assert [e for e in inbox(bot, "mia") if "transcript" in e.message.text]


async def test_capacity_sends_the_next_question_elsewhere(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, _ = desk_bot
    ids = await take_in(
        bot,
        question("c7", "When is the application deadline?"),
        question("c8", "How much are the tuition fees?"),
        question("c9", "Can I pay tuition fees in instalments?"),
    )
    assert len(ids) == 3
    async with bot.db.transaction() as session:
        holders = (
            await session.execute(
                select(AssignmentRow.person_id, func.count()).group_by(AssignmentRow.person_id)
            )
        ).all()
    counts = dict(holders)
    assert max(counts.values()) <= 2, counts


async def test_webhook_and_poll_of_one_item_track_it_once(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, _ = desk_bot
    item = question("c10", "When is the application deadline?")
    assert len(await take_in(bot, item, via="webhook")) == 1
    assert await take_in(bot, item, via="poll") == []
    async with bot.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(QuestionRow)) == 1
    assert len(inbox(bot, "ravi")) == 1


async def test_threads_the_page_already_answered_are_not_routed(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, _ = desk_bot
    await take_in(bot, reply("c11", "r11", by_page=True), via="poll")
    assert await take_in(bot, question("c11", "When is the deadline?"), via="poll") == []
    assert not inbox(bot, "ravi")


async def test_staff_reply_by_known_handle_is_verified_and_credited(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, _ = desk_bot
    [qid] = await take_in(bot, question("c12", "When is the application deadline?"))
    await take_in(bot, reply("c12", "r12", author_name="Ravi Menon", author_id="9876"))
    q = await load(bot, qid)
    assert q.status == "answered" and q.answer_kind == "staff"
    assert ("answer_verified", f"question:{qid}", "ravi") in await participation(bot)


async def test_reported_answer_is_checked_then_asked_once(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = desk_bot
    [qid] = await take_in(bot, question("c13", "When is the application deadline?"))
    [asked] = inbox(bot, "ravi")
    await press(bot, "ravi", asked, "q.claim")
    await press(bot, "ravi", asked, "q.done")
    assert (await load(bot, qid)).status == "reported"
    await tick(bot, clock, 180)
    ask = inbox(bot, "ravi")[-1]
    assert "couldn't see your answer" in ask.message.text
    await tick(bot, clock, 60)
    assert inbox(bot, "ravi")[-1] is ask, "asked once only"
    await press(bot, "ravi", ask, "q.posted")
    q = await load(bot, qid)
    assert q.status == "answered" and q.answer_kind == "reported"


async def test_spam_and_non_questions_are_not_tracked(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, _ = desk_bot
    new = await take_in(
        bot,
        question("s1", "Great work everyone!!"),
        question("s2", "Earn $500 a day from home, DM me on whatsapp +1 555 0100 click here"),
    )
    assert new == []


async def test_a_restart_in_the_middle_of_a_step_repeats_nothing(
    database_url: str, org: OrganisationConfig
) -> None:
    clock = FrozenClock(MONDAY_10)
    first = build(make_settings(database_url), clock=clock, organisation=org, console=True)
    await first.prepare()
    assert first.desk is not None
    await first.desk.take_in([question("c14", "When is the application deadline?")], via="poll")
    # The process dies before its dispatcher sent anything.
    await first.db.close()

    clock.advance(timedelta(minutes=61))
    second = build(make_settings(database_url), clock=clock, organisation=org, console=True)
    await second.prepare()
    assert second.desk is not None
    # Two schedulers (or a re-fired job) run the same due step: it happens once.
    await second.desk.run_due()
    await second.desk.run_due()
    await second.dispatcher.drain()
    try:
        assert len(inbox(second, "ravi")) == 1  # the first question, delivered after restart
        assert len(inbox(second, "mia")) == 1  # the escalation, once
        async with second.db.transaction() as session:
            steps = await session.scalar(select(func.count()).select_from(AssignmentRow))
        assert steps == 2
    finally:
        await second.db.close()


async def test_two_people_claiming_at_once_get_one_owner(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = desk_bot
    [qid] = await take_in(bot, question("c15", "When is the application deadline?"))
    await tick(bot, clock, 60)
    await tick(bot, clock, 60)
    [post] = channel(bot, "#admissions")
    await asyncio.gather(press(bot, "tom", post, "q.claim"), press(bot, "mia", post, "q.claim"))
    claims = [p for p in await participation(bot) if p[0] == "question_claimed"]
    assert len(claims) == 1
    q = await load(bot, qid)
    assert q.status == "claimed"
    loser = "mia" if claims[0][2] == "tom" else "tom"
    # The loser pressed in the channel, so the answer comes back there (ephemeral on Slack).
    told = [e.message.text for e in inbox(bot, loser) + channel(bot, "#admissions")]
    assert any("already answering" in t or "same moment" in t for t in told), told


async def test_a_question_close_to_an_answered_one_shows_the_earlier_answer(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = desk_bot
    await take_in(bot, question("k1", "When is the application deadline for the autumn intake?"))
    await take_in(bot, reply("k1", "kr1", author_name="Ravi Menon"))
    await take_in(bot, question("k2", "What is the application deadline for autumn intake?"))
    latest = (
        inbox(bot, "ravi")[-1] if inbox(bot, "ravi")[-1].message.buttons else inbox(bot, "mia")[-1]
    )
    text = "\n".join(latest.message.sections)
    assert "Answered before: [by Ravi Menon](https://www.facebook.com/111_1?comment_id=kr1)" in text
    await tick(bot, clock, 60)
    await tick(bot, clock, 60)
    [post] = channel(bot, "#admissions")
    assert "Answered before: [by Ravi Menon]" in "\n".join(post.message.sections)
