"""Expertise that learns, on the real app and the console platform, with a frozen clock.

Wrong-topic declines move questions away from someone, answers raise their weight, people who
keep answering a topic emerge as experts, and the evangelist can see and override all of it in
chat and from the command line.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.app import Evangelist, build
from bot.cli import main
from bot.config.organisation import OrganisationConfig, parse_organisation
from bot.core.clock import FrozenClock
from bot.core.types import Actor, Address, IncomingMessage, Platform
from bot.platforms.console.platform import ConsoleEntry
from bot.storage.models import AssignmentRow, AuditRow, ExpertiseRow, PersonRow
from tests.conftest import make_settings
from tests.integration.test_question_lifecycle import (
    MONDAY_10,
    inbox,
    press,
    question,
    reply,
    take_in,
)

ORG = """
organisation: {name: Northfield University, timezone: Europe/London}
questions: {capacity: 5, experts_before_channel: 2}
people:
  - {id: ada, name: Ada Okafor, timezone: Europe/London, roles: [evangelist]}
  - {id: ravi, name: Ravi Menon, timezone: Europe/London, roles: [expert]}
  - {id: mia, name: Mia Schulz, timezone: Europe/Berlin, roles: [expert]}
  - {id: tom, name: Tom Becker, timezone: Europe/London, handles: {facebook: [Tom Becker]}}
topics:
  - id: admissions
    name: Admissions
    keywords: [apply, application, deadline, tuition, fees]
    experts:
      - {person: ravi, weight: 2}
      - {person: mia, weight: 1}
    channel: "#admissions"
  - id: research
    name: Research
    keywords: [phd, supervisor, research]
    experts: [{person: ravi}]
sources:
  - {id: page, kind: facebook_page, page_id: "111", name: our Facebook Page, poll_minutes: 0}
"""

_ids = itertools.count(1)


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


async def say(bot: Evangelist, who: str, text: str) -> ConsoleEntry:
    """`who` writes `text` to the bot in a direct message; returns the bot's answer."""
    where = Address.direct(Platform.CONSOLE, who)
    event = IncomingMessage(f"msg-{next(_ids)}", Actor(Platform.CONSOLE, who), text, where)
    assert await bot.chat.handle(event)
    await bot.dispatcher.drain()
    return inbox(bot, who)[-1]


def shown(entry: ConsoleEntry) -> str:
    return "\n".join((entry.message.text, *entry.message.sections))


async def first_asked(bot: Evangelist, question_id: int) -> str:
    async with bot.db.transaction() as session:
        row = await session.execute(
            select(PersonRow.key)
            .join(AssignmentRow, AssignmentRow.person_id == PersonRow.id)
            .where(AssignmentRow.question_id == question_id)
            .order_by(AssignmentRow.id)
            .limit(1)
        )
        return str(row.scalar_one())


async def learned(bot: Evangelist, who: str, topic: str) -> ExpertiseRow | None:
    async with bot.db.transaction() as session:
        return await session.scalar(
            select(ExpertiseRow)
            .join(PersonRow, PersonRow.id == ExpertiseRow.person_id)
            .where(PersonRow.key == who, ExpertiseRow.topic_key == topic)
        )


async def ask_and_settle(bot: Evangelist, external_id: str, text: str) -> tuple[str, str]:
    """Route a question, then close it with the page's own reply (credits nobody), so nobody's
    load changes for the next one. Returns who was asked first and why they were told."""
    [qid] = await take_in(bot, question(external_id, text))
    who = await first_asked(bot, qid)
    why = shown(inbox(bot, who)[-1])
    await take_in(bot, reply(external_id, f"r-{external_id}", by_page=True), via="poll")
    return who, why


async def test_two_wrong_topic_declines_send_the_next_question_to_another_expert(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = desk_bot
    for n in (1, 2):
        [qid] = await take_in(bot, question(f"w{n}", "When is the application deadline?"))
        assert await first_asked(bot, qid) == "ravi", "weight 2 against Mia's 1"
        await press(bot, "ravi", inbox(bot, "ravi")[-1], "q.topic")
        await take_in(bot, reply(f"w{n}", f"rw{n}", by_page=True), via="poll")
        clock.advance(timedelta(minutes=5))

    row = await learned(bot, "ravi", "admissions")
    assert row is not None and row.declines == 2 and row.learned == pytest.approx(-2, abs=1e-3)
    who, _ = await ask_and_settle(bot, "w3", "What are the tuition fees?")
    assert who == "mia"

    # The topic they declined is the one that learns, not the one the question moved to.
    assert await learned(bot, "ravi", "research") is None


async def test_three_wrong_topic_declines_mean_not_asked_until_they_fade(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = desk_bot
    await say(bot, "mia", "away 3 days")  # Ravi is the only admissions expert left
    for n in (1, 2, 3):
        [qid] = await take_in(bot, question(f"x{n}", "When is the application deadline?"))
        assert await first_asked(bot, qid) == "ravi"
        await press(bot, "ravi", inbox(bot, "ravi")[-1], "q.topic")
        await take_in(bot, reply(f"x{n}", f"rx{n}", by_page=True), via="poll")
    ada = shown(await say(bot, "ada", "expertise admissions"))
    assert "**Ravi Menon (ravi)**: weight 0 (not asked)" in ada
    assert "wrong-topic 3" in ada

    # With Ravi at weight 0 there is no expert left for admissions: the channel is asked.
    [qid] = await take_in(bot, question("x4", "Can I pay tuition fees in instalments?"))
    async with bot.db.transaction() as session:
        asked = (
            await session.scalars(
                select(AssignmentRow.kind).where(AssignmentRow.question_id == qid)
            )
        ).all()
    assert list(asked) == ["channel"]

    # Months later the declines have faded and Ravi is asked again.
    clock.advance(timedelta(days=120))
    await say(bot, "mia", "away 3 days")
    who, _ = await ask_and_settle(bot, "x5", "When is the application deadline for autumn?")
    assert who == "ravi"


async def test_answers_raise_the_weight_and_the_reason_says_so(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = desk_bot
    await say(bot, "ravi", "away 1 day")  # so Mia, weight 1, gets the admissions questions
    for n in (1, 2):
        await take_in(bot, question(f"a{n}", "When is the application deadline?"))
        await press(bot, "mia", inbox(bot, "mia")[-1], "q.claim")
        await take_in(bot, reply(f"a{n}", f"ra{n}", by_page=True), via="poll")
    row = await learned(bot, "mia", "admissions")
    assert row is not None and (row.answers, row.claims) == (2, 2)
    assert row.learned == pytest.approx(2.6)

    mine = shown(await say(bot, "mia", "expertise"))
    assert "**Admissions**: weight 1.86" in mine
    assert "configured 1, learned +0.86 (score 2.60)" in mine
    assert "answers 2, claims 2" in mine

    clock.advance(timedelta(minutes=1))
    await take_in(bot, question("a3", "What are the tuition fees?"))
    assert "Why you: you answered 2 questions about Admissions" in shown(inbox(bot, "mia")[-1])


async def test_someone_who_keeps_answering_emerges_as_an_expert(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = desk_bot
    for n in (1, 2, 3):
        [qid] = await take_in(bot, question(f"e{n}", "When is the application deadline?"))
        await take_in(bot, reply(f"e{n}", f"re{n}", author_name="Tom Becker"), via="poll")
        clock.advance(timedelta(hours=1))
    row = await learned(bot, "tom", "admissions")
    assert row is not None and row.answers == 3

    # Both configured experts are away: Tom, an emerging expert, is asked rather than nobody.
    await say(bot, "ravi", "away 2 days")
    await say(bot, "mia", "away 2 days")
    [qid] = await take_in(bot, question("e4", "Are the tuition fees the same next year?"))
    assert await first_asked(bot, qid) == "tom"
    assert "Why you: you answered 3 questions about Admissions" in shown(inbox(bot, "tom")[-1])

    table = shown(await say(bot, "ada", "expertise @tom"))
    assert "**Admissions**: weight 0.90 · emerging expert" in table


async def test_an_evangelist_override_changes_who_is_asked_next(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = desk_bot
    who, _ = await ask_and_settle(bot, "o1", "When is the application deadline?")
    assert who == "ravi"

    answer = await say(bot, "ada", "expertise set mia admissions 3")
    assert "Set Mia Schulz on Admissions to 3" in answer.message.text
    clock.advance(timedelta(minutes=1))
    who, why = await ask_and_settle(bot, "o2", "When is the application deadline?")
    assert who == "mia"
    assert "Why you: our evangelist asked for you on Admissions" in why

    # Weight 0: never asked about it, even when nobody else is free.
    await say(bot, "ada", "expertise set Mia Schulz admissions 0")
    await say(bot, "ravi", "away 1 day")
    clock.advance(timedelta(minutes=1))
    [qid] = await take_in(bot, question("o3", "What are the tuition fees?"))
    async with bot.db.transaction() as session:
        kinds = (
            await session.scalars(
                select(AssignmentRow.kind).where(AssignmentRow.question_id == qid)
            )
        ).all()
    assert "expert" not in kinds
    await say(bot, "ravi", "back")

    reset = await say(bot, "ada", "expertise reset mia admissions")
    assert "back to the configured weight 1" in reset.message.text
    clock.advance(timedelta(minutes=1))
    who, _ = await ask_and_settle(bot, "o4", "When is the application deadline?")
    assert who == "ravi"

    table = shown(await say(bot, "ada", "expertise admissions"))
    assert "**Mia Schulz (mia)**: weight 1.00 · configured 1" in table
    async with bot.db.transaction() as session:
        audited = (
            await session.execute(
                select(AuditRow.actor, AuditRow.action, AuditRow.target).order_by(AuditRow.id)
            )
        ).all()
    assert [tuple(a) for a in audited if a[1].startswith("expertise")] == [
        ("ada", "expertise.set", "mia:admissions"),
        ("ada", "expertise.set", "mia:admissions"),
        ("ada", "expertise.reset", "mia:admissions"),
    ]


async def test_only_the_evangelist_sees_others_and_overrides(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, _ = desk_bot
    for words in ("expertise set tom admissions 3", "expertise reset ravi admissions"):
        denied = await say(bot, "tom", words)
        assert denied.message.text == "Sorry, only the evangelist can manage topics and experts."
    denied = await say(bot, "ravi", "expertise mia")
    assert "only the evangelist" in denied.message.text
    assert await learned(bot, "tom", "admissions") is None
    assert (await learned(bot, "ravi", "admissions")) is None

    own = shown(await say(bot, "tom", "expertise"))
    assert "not an expert on any topic yet" in own
    ravi = shown(await say(bot, "ravi", "expertise"))
    assert "**Admissions**: weight 2.00" in ravi and "**Research**: weight 1.00" in ravi

    async with bot.db.transaction() as session:
        outcomes = (
            await session.scalars(select(AuditRow.outcome).where(AuditRow.actor == "tom"))
        ).all()
    assert outcomes == ["denied", "denied"]
    helped = shown(await say(bot, "ravi", "help"))
    assert "`expertise` [PERSON | TOPIC | set PERSON TOPIC WEIGHT | reset PERSON TOPIC]" in helped


async def test_bad_expertise_commands_are_answered_plainly(
    desk_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, _ = desk_bot
    assert "0 to 3" in (await say(bot, "ada", "expertise set ravi admissions 9")).message.text
    assert "topic `cooking`" in (await say(bot, "ada", "expertise set ravi cooking 1")).message.text
    assert (
        "person called `zed`"
        in (await say(bot, "ada", "expertise reset zed admissions")).message.text
    )
    assert "Say `expertise set" in (await say(bot, "ada", "expertise set ravi")).message.text
    assert "`nobody`" in (await say(bot, "ada", "expertise nobody")).message.text
    assert await learned(bot, "ravi", "admissions") is None


def test_the_cli_lists_sets_and_resets(
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "org.yaml"
    config.write_text(ORG, encoding="utf-8")
    monkeypatch.setenv("EVANGELIST_DATABASE_URL", database_url)
    monkeypatch.setenv("EVANGELIST_CONFIG", str(config))

    def listed(*options: str) -> list[dict[str, object]]:
        capsys.readouterr()
        assert main(["expertise", "list", "--json", *options]) == 0
        rows = json.loads(capsys.readouterr().out)["rows"]
        assert isinstance(rows, list)
        return rows

    assert [(r["person"], r["topic"], r["effective"]) for r in listed()] == [
        ("ravi", "admissions", 2.0),
        ("mia", "admissions", 1.0),
        ("ravi", "research", 1.0),
    ]
    assert main(["expertise", "set", "tom", "admissions", "1.5", "--note", "ran open days"]) == 0
    assert "tom on admissions: weight fixed at 1.5" in capsys.readouterr().out
    [tom] = [r for r in listed("--topic", "admissions") if r["person"] == "tom"]
    assert (tom["effective"], tom["basis"], tom["note"]) == (1.5, "override", "ran open days")
    assert [r["topic"] for r in listed("--person", "tom")] == ["admissions"]

    # The override routes the next question to Tom (weight 1.5 against Ravi's 2, Ravi away).
    assert asyncio.run(_first_asked_with_ravi_away(database_url)) == "tom"

    assert main(["expertise", "list"]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == [
        "person",
        "topic",
        "configured",
        "learned",
        "effective",
        "basis",
        "a/c/d",
        "override",
    ]
    assert "1.5 (cli)" in text

    assert main(["expertise", "reset", "tom", "admissions"]) == 0
    assert "back to the configured weight" in capsys.readouterr().out
    assert listed("--person", "tom") == []

    assert main(["expertise", "set", "tom", "admissions", "4"]) == 2
    assert "WEIGHT '4'" in capsys.readouterr().err
    assert main(["expertise", "list", "--topic", "cooking"]) == 2
    assert "TOPIC 'cooking'" in capsys.readouterr().err
    assert main(["expertise", "reset", "zed", "admissions"]) == 2


async def _first_asked_with_ravi_away(database_url: str) -> str:
    org = parse_organisation(ORG)
    clock = FrozenClock(MONDAY_10)
    bot = build(make_settings(database_url), clock=clock, organisation=org, console=True)
    await bot.prepare()
    try:
        await say(bot, "ravi", "away 1 day")
        [qid] = await take_in(bot, question("cli1", "When is the application deadline?"))
        return await first_asked(bot, qid)
    finally:
        await bot.db.close()
