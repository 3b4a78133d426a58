"""Leader digests from real rows: every figure against a hand-computed week, the privacy rules
(threshold k, consent, scope), week boundaries in each leader's time zone, and the weekly job
sending each digest once (console; Slack and Teams in test_digest_platforms.py).

The organisation: Lara (London) leads Alpha, five people, with the sub-team Alpha Small (four);
Kim (Tokyo) leads Beta, five people. The week is 2026-W10: Monday 2 March to Sunday 8 March.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.app import Evangelist, build
from bot.config.organisation import OrganisationConfig, parse_organisation
from bot.core.clock import FrozenClock
from bot.core.types import Actor, Address, IncomingMessage, Platform
from bot.digests.figures import DigestFigures, Oldest
from bot.storage import participation
from bot.storage.models import AssignmentRow, DigestRow, NudgeRow, OutboxRow, PersonRow, QuestionRow
from tests.conftest import make_settings
from tests.fakes.openai_api import CHAT, FakeOpenAI

W10_MONDAY = datetime(2026, 3, 2, tzinfo=UTC)  # 00:00 in London (GMT) is 00:00 UTC
AFTER_W10 = datetime(2026, 3, 9, 9, 30, tzinfo=UTC)  # Monday 9 March, 09:30 London

ORG = """
organisation: {name: Test Org, timezone: Europe/London}
people:
  - {id: eve, name: Eve Stone, email: eve@example.org, roles: [evangelist]}
  - {id: lara, name: Lara Lead, email: lara@example.org, timezone: Europe/London, roles: [leader]}
  - {id: kim, name: Kim Chief, email: kim@example.org, timezone: Asia/Tokyo, roles: [leader]}
  - {id: a1, name: Ann One, email: a1@example.org}
  - {id: a2, name: Abe Two}
  - {id: a3, name: Ava Three}
  - {id: a4, name: Al Four}
  - {id: a5, name: Amy Five}
  - {id: s1, name: Sam One}
  - {id: s2, name: Sue Two}
  - {id: s3, name: Sid Three}
  - {id: s4, name: Sal Four}
  - {id: s5, name: Sol Five}
  - {id: b1, name: Bo One}
  - {id: b2, name: Bea Two}
  - {id: b3, name: Ben Three}
  - {id: b4, name: Bex Four}
  - {id: b5, name: Bob Five}
teams:
  - {id: alpha, name: Alpha, leaders: [lara], members: [a1, a2, a3, a4, a5]}
  - {id: alpha-small, name: Alpha Small, parent: alpha, members: [s1, s2, s3, s4]}
  - {id: beta, name: Beta, leaders: [kim], members: [b1, b2, b3, b4, b5]}
topics:
  - {id: fees, name: Fees, experts: [{person: a1}]}
  - {id: phd, name: PhD positions, experts: [{person: b1}]}
"""


def org_with(**replace: str) -> OrganisationConfig:
    text = ORG
    for old, new in replace.items():
        text = text.replace(old, new)
    return parse_organisation(text)


@pytest.fixture
async def digest_bot(database_url: str) -> AsyncIterator[tuple[Evangelist, FrozenClock]]:
    async with running(database_url, org_with()) as pair:
        yield pair


class running:
    """The bot on the console platform with a frozen clock (an async context manager)."""

    def __init__(self, database_url: str, org: OrganisationConfig) -> None:
        self.clock = FrozenClock(AFTER_W10)
        self.bot = build(
            make_settings(database_url), clock=self.clock, organisation=org, console=True
        )

    async def __aenter__(self) -> tuple[Evangelist, FrozenClock]:
        await self.bot.prepare()
        return self.bot, self.clock

    async def __aexit__(self, *exc: object) -> None:
        assert self.bot.digest_commands is not None
        await self.bot.digest_commands.close()
        await self.bot.db.close()


_refs = itertools.count(1)


async def person_id(bot: Evangelist, key: str) -> int:
    async with bot.db.transaction() as session:
        found = await session.scalar(select(PersonRow.id).where(PersonRow.key == key))
    assert found is not None
    return found


async def did(bot: Evangelist, key: str, kind: str, at: datetime, ref: str | None = None) -> None:
    pid = await person_id(bot, key)
    async with bot.db.transaction() as session:
        await participation.record(
            session, person_id=pid, kind=kind, reference=ref or f"t{next(_refs)}", at=at
        )


async def question(
    bot: Evangelist,
    created: datetime,
    *,
    routed_to: str,
    first: datetime | None = None,
    answered_by: str | None = None,
    topic: str | None = None,
    sla_hours: float = 4,
    closed: datetime | None = None,
) -> int:
    assignee = await person_id(bot, routed_to)
    answerer = await person_id(bot, answered_by) if answered_by else None
    async with bot.db.transaction() as session:
        row = QuestionRow(
            source_key="page",
            external_id=f"q{next(_refs)}",
            text="A question from the public?",
            via="test",
            topic_key=topic,
            status="answered" if first else ("closed" if closed else "routed"),
            assignee_id=assignee,
            version=1,
            sla_due_at=created + timedelta(hours=sla_hours),
            first_response_at=first,
            answered_at=first,
            answered_by_id=answerer,
            url=f"https://www.facebook.com/post/{next(_refs)}",
            created_at=created,
            updated_at=first or closed or created,
        )
        session.add(row)
        await session.flush()
        session.add(
            AssignmentRow(question_id=row.id, person_id=assignee, kind="expert", sent_at=created)
        )
        return row.id


async def nudged(bot: Evangelist, key: str, at: datetime, *, test: bool = False) -> None:
    pid = await person_id(bot, key)
    async with bot.db.transaction() as session:
        n = next(_refs)
        session.add(
            NudgeRow(
                key=f"n{n}",
                campaign_key="c",
                person_id=pid,
                slot_day=at.date(),
                send_at=at,
                variant="a",
                stage="watch",
                status="sent",
                test=test,
                planned_at=at,
                sent_at=at,
            )
        )


async def preview(bot: Evangelist, email: str, week: str = "2026-W10") -> DigestFigures:
    assert bot.digests is not None
    [digest] = await bot.digests.preview(week, email, bot.clock.now())
    return digest.figures


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment in W10, `day` 0 = Monday (UTC, which is London time in March before the 29th)."""
    return W10_MONDAY + timedelta(days=day, hours=hour, minutes=minute)


async def lara_week(bot: Evangelist) -> None:
    """The hand-computed week (see test_every_figure_of_a_week)."""
    await did(bot, "a1", "question_claimed", at(0, 10, 30), "question:1")
    await did(bot, "a1", "question_answered", at(0, 11, 30), "question:1")
    await did(bot, "a1", "question_claimed", at(1, 10), "question:2")
    await did(bot, "a1", "question_answered", at(1, 13), "question:2")
    await did(bot, "a2", "nudge_done", at(2, 11))
    await did(bot, "a2", "ladder_up", at(2, 11))
    await did(bot, "a3", "link_opened", at(3, 15))
    await did(bot, "s1", "experiment_tried", at(4, 16))
    await did(bot, "a4", "question_routed", at(3, 9))  # being asked is not taking part
    await did(bot, "a5", "question_declined", at(3, 9))
    await did(bot, "a1", "link_opened", at(-3, 12))  # the week before
    await did(bot, "b4", "link_opened", at(-7 * 8, 12))  # Kim's team, 8 weeks before
    await did(bot, "b1", "question_answered", at(2, 12))  # Kim's team: not Lara's
    await nudged(bot, "a2", at(1, 10))
    await nudged(bot, "a3", at(1, 10))
    await nudged(bot, "a4", at(1, 10), test=True)  # a test-send is outside the figures
    await question(bot, at(0, 10), routed_to="a1", first=at(0, 11, 30), answered_by="a1",
                   topic="fees")  # fmt: skip
    await question(bot, at(1, 9), routed_to="a1", first=at(1, 13), answered_by="a1", topic="fees")
    await question(bot, at(2, 9), routed_to="a1")  # never answered, missed its 4 hours
    await question(bot, at(4, 9), routed_to="a4", closed=at(4, 10))  # spam: closed in time
    await question(bot, at(3, 9), routed_to="a4", first=at(3, 9, 30), topic="fees")
    await question(bot, at(2, 10), routed_to="b1", first=at(2, 12), answered_by="b1",
                   topic="phd")  # fmt: skip


async def test_every_figure_of_a_week(digest_bot: tuple[Evangelist, FrozenClock]) -> None:
    bot, _ = digest_bot
    await lara_week(bot)
    f = await preview(bot, "lara@example.org")

    assert (f.scope, f.week, f.days, f.people, f.so_far) == (
        "Alpha", "2026-W10", "2–8 Mar 2026", 9, False,
    )  # fmt: skip
    assert f.this is not None and f.previous is not None
    # Active: a1, a2, a3, s1 (a4 was only routed, a5 only declined) of 9.
    assert f.this.active == 4 and f.this.rate == pytest.approx(4 / 9)
    assert f.previous.active == 1
    # The organisation's first event was 8 weeks before; since then one of Lara's people was
    # active once → (1/9) / 8.
    assert f.average_rate == pytest.approx(1 / 72) and f.average_weeks == 8
    assert (f.this.nudges_sent, f.this.nudges_done, f.this.ladder_up) == (2, 1, 1)
    assert (f.this.links_opened, f.this.experiments) == (1, 1)
    assert f.this.mix == {
        "Answered questions": 2,
        "Claimed questions": 2,
        "Nudges done": 1,
        "Links opened": 1,
        "Experiments tried": 1,
    }
    d = f.desk
    assert (d.routed, d.claimed, d.answered) == (5, 2, 2)
    # First answers this week: 30, 90 and 240 minutes → median 90; nearest-rank p90 = 240.
    assert (d.median_minutes, d.p90_minutes) == (90.0, 240.0)
    assert d.sla_breaches == 1  # not the one closed as spam before its deadline
    assert f.desk_before.answered == 0
    assert f.topics == [("Fees", 3), ("No clear topic", 2)]
    # Waiting from Wednesday 09:00 to the week's end, Monday 00:00: 111 hours.
    assert f.oldest is not None and f.oldest.hours == 111.0 and f.oldest.topic is None
    assert f.trend[0].label == "2026-W02" and len(f.trend) == 9
    assert [p.answered for p in f.trend] == [0] * 8 + [2]
    assert f.trend[-1].rate == pytest.approx(4 / 9) and f.trend[-2].rate == pytest.approx(1 / 9)


async def test_leaders_see_their_scope_only(digest_bot: tuple[Evangelist, FrozenClock]) -> None:
    bot, _ = digest_bot
    await lara_week(bot)
    lara = await preview(bot, "lara@example.org")
    kim = await preview(bot, "kim@example.org")
    assert kim.scope == "Beta" and kim.people == 5
    assert kim.this is not None and kim.this.active == 1  # b1 answered; nothing of Alpha's
    assert (kim.desk.routed, kim.desk.answered) == (1, 1)
    assert kim.topics == [("PhD positions", 1)]
    assert kim.oldest is None
    assert lara.desk.routed == 5 and ("PhD positions", 1) not in lara.topics
    assert bot.digests is not None
    both = await bot.digests.preview("2026-W10", None, bot.clock.now())
    assert {d.figures.leader: d.figures for d in both} == {"lara": lara, "kim": kim}
    # The evangelist leads no team: the whole organisation (everyone in the file).
    eve = await preview(bot, "eve@example.org")
    assert eve.scope == "Test Org" and eve.people == 18
    assert eve.desk.routed == 6 and eve.this is not None and eve.this.active == 5


async def test_a_group_of_four_is_never_broken_down(database_url: str) -> None:
    async with running(database_url, org_with()) as (bot, _):
        f = await preview(bot, "lara@example.org")
        # Alpha Small has four: not shown. Showing Alpha's five alone would give the four away
        # (nine minus five), so no row is shown at all.
        assert f.groups == [] and f.hidden_groups == 2
    bigger = org_with(**{"members: [s1, s2, s3, s4]": "members: [s1, s2, s3, s4, s5]"})
    async with running(database_url, bigger) as (bot, _):
        await did(bot, "s5", "link_opened", at(1, 12))
        f = await preview(bot, "lara@example.org")
        assert [(g.name, g.people, g.active) for g in f.groups] == [
            ("Alpha (direct)", 5, 0),
            ("Alpha Small", 5, 1),
        ]
        assert f.hidden_groups == 0


async def test_a_scope_under_k_shows_no_figure_about_people(database_url: str) -> None:
    small = org_with(**{"members: [b1, b2, b3, b4, b5]": "members: [b1, b2, b3, b4]"})
    async with running(database_url, small) as (bot, _):
        await lara_week(bot)
        f = await preview(bot, "kim@example.org")
        assert f.people == 4 and f.withheld and f.previous is None and f.average_rate is None
        assert all(p.rate is None for p in f.trend)
        assert f.others == 0  # a count of the unnamed could point at someone
        # The public's questions are about questions, and stay.
        assert (f.desk.routed, f.desk.answered) == (1, 1)
        assert bot.digests is not None
        [digest] = await bot.digests.preview("2026-W10", "kim@example.org", bot.clock.now())
        text = "\n".join(digest.message().sections)
        assert "under the privacy threshold of 5" in text and "%" not in text


async def say(bot: Evangelist, who: str, text: str) -> list[str]:
    assert bot.console is not None
    before = len(bot.console.entries)
    await bot.chat.handle(
        IncomingMessage(
            f"m{next(_refs)}",
            Actor(Platform.CONSOLE, who),
            text,
            Address.direct(Platform.CONSOLE, who),
        )
    )
    await bot.dispatcher.drain()
    entries = list(bot.console.entries.values())[before:]
    return ["\n".join((e.message.text, *e.message.sections)) for e in entries]


async def test_named_only_with_consent(digest_bot: tuple[Evangelist, FrozenClock]) -> None:
    bot, clock = digest_bot
    await lara_week(bot)
    f = await preview(bot, "lara@example.org")
    assert f.recognised == [] and f.others == 1  # a1 answered; not asked yet

    clock.set(at(6, 12))
    [reply] = await say(bot, "a1", "recognition on")
    assert "may name you" in reply
    f = await preview(bot, "lara@example.org")
    assert [(r.name, r.did) for r in f.recognised] == [("Ann One", "answered 2 public questions")]
    assert f.others == 0
    [status] = await say(bot, "a1", "recognition")
    assert "You are named" in status

    [reply] = await say(bot, "a1", "recognition off")
    assert "will not name you" in reply
    f = await preview(bot, "lara@example.org")
    assert f.recognised == [] and f.others == 1


async def test_weeks_end_at_each_leaders_local_midnight(
    digest_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, _ = digest_bot
    # Sunday 8 March 20:00 UTC is Monday 05:00 in Tokyo: Kim's week 11, still week 10 in London.
    await did(bot, "b2", "link_opened", datetime(2026, 3, 8, 20, tzinfo=UTC))
    # Sunday 1 March 16:00 UTC is Monday 01:00 in Tokyo: Kim's week 10, London's week 9.
    await did(bot, "b3", "link_opened", datetime(2026, 3, 1, 16, tzinfo=UTC))
    await did(bot, "a2", "link_opened", datetime(2026, 3, 8, 20, tzinfo=UTC))
    kim = await preview(bot, "kim@example.org")
    assert kim.this is not None and kim.this.links_opened == 1  # b3 only
    kim_next = await preview(bot, "kim@example.org", "2026-W11")
    assert kim_next.this is not None and kim_next.this.links_opened == 1  # b2
    lara = await preview(bot, "lara@example.org")
    assert lara.this is not None and lara.this.active == 1  # a2, late on Sunday
    # Both leaders at once (one read for both zones' weeks) give the same figures.
    assert bot.digests is not None
    both = await bot.digests.preview("2026-W10", None, bot.clock.now())
    assert {d.figures.leader: d.figures for d in both} == {"lara": lara, "kim": kim}


async def test_each_leader_gets_last_weeks_digest_once_at_their_monday_nine(
    digest_bot: tuple[Evangelist, FrozenClock],
) -> None:
    bot, clock = digest_bot
    assert bot.digests is not None and bot.console is not None
    await lara_week(bot)
    # Sunday 23:59 in London, Monday 08:59 in Tokyo: Lara's week-9 digest was due last
    # Monday and the service catches up (within the week); Kim's week 10 is not due yet.
    clock.set(datetime(2026, 3, 8, 23, 59, tzinfo=UTC))
    assert await bot.digests.run_due() == 1
    assert await bot.digests.run_due() == 0
    clock.set(datetime(2026, 3, 9, 0, 0, tzinfo=UTC))  # 09:00 in Tokyo, midnight in London
    assert await bot.digests.run_due() == 1
    clock.set(datetime(2026, 3, 9, 9, 0, tzinfo=UTC))  # 09:00 in London
    assert await bot.digests.run_due() == 1
    assert await bot.digests.run_due() == 0  # once: the job runs every few minutes
    # Nothing more is read until the next leader's moment: Kim's, Monday 16 March 09:00 JST.
    assert bot.digests.quiet_until == datetime(2026, 3, 16, 0, 0, tzinfo=UTC)
    await bot.dispatcher.drain()

    async with bot.db.transaction() as session:
        snapshots = (await session.scalars(select(DigestRow).order_by(DigestRow.id))).all()
        rows = await session.scalar(select(func.count()).select_from(OutboxRow))
    assert [(s.week, s.scope, s.narrative_source) for s in snapshots] == [
        ("2026-W09", "Alpha", "template"),
        ("2026-W10", "Beta", "template"),
        ("2026-W10", "Alpha", "template"),
    ]
    assert rows == 6  # a message and a chart each
    stored = DigestFigures.from_dict(snapshots[2].figures)
    assert stored.desk.routed == 5 and stored.oldest == Oldest(111.0, None, stored.oldest.url)
    lara = [e for e in bot.console.entries.values() if e.conversation == "dm:lara"]
    assert [bool(e.image_path) for e in lara] == [False, True] * 2  # words, then the chart
    assert lara[2].message.text.startswith("Participation digest: Alpha, week 10")
    assert "44% of 9 people" in "\n".join(lara[2].message.sections)
    assert lara[3].image_path is not None
    png = await asyncio.to_thread(Path(lara[3].image_path).read_bytes)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


async def test_this_week_so_far_on_request(digest_bot: tuple[Evangelist, FrozenClock]) -> None:
    bot, clock = digest_bot
    await lara_week(bot)
    clock.set(at(3, 12))  # Thursday noon: Monday's and Tuesday's answers so far
    [reply] = await say(bot, "lara", "digest")
    assert "this week so far" in reply
    assert bot.digest_commands is not None
    await bot.digest_commands.drain()
    await bot.dispatcher.drain()
    assert bot.console is not None
    [words, chart] = [e for e in bot.console.entries.values() if e.conversation == "dm:lara"][-2:]
    text = "\n".join(words.message.sections)
    assert "this week so far" in words.message.text and "2 answered" in text
    assert chart.image_path is not None
    # Not a leader: told so, and nothing is computed.
    [refused] = await say(bot, "a1", "digest")
    assert "team leaders" in refused
    async with bot.db.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(DigestRow)) == 0


async def test_the_models_narrative_only_when_its_numbers_are_ours(database_url: str) -> None:
    async with FakeOpenAI() as fake:
        settings = make_settings(
            database_url, openai_api_key="sk-test", openai_base_url=fake.base_url
        )
        clock = FrozenClock(AFTER_W10)
        bot = build(settings, clock=clock, organisation=org_with(), console=True)
        await bot.prepare()
        try:
            await lara_week(bot)
            assert bot.digests is not None
            good = (
                "44% of your 9 people took part last week, up from 11%. They answered 2 of the "
                "5 public questions routed to them, with a median first answer of 1 h 30 min. "
                "Every answer is one the public sees."
            )
            fake.script({"text": good}, {"text": "Participation rose to 60% this week."})
            [digest] = await bot.digests.preview("2026-W10", "lara@example.org", clock.now())
            assert (digest.narrative, digest.source) == (good, "model")
            assert digest.message().sections[1] == good
            [again] = await bot.digests.preview("2026-W10", "lara@example.org", clock.now())
            assert again.source == "template" and "60%" not in again.narrative
            # The model was given figures and labels, never a name or a question's words.
            sent = json.dumps([c.body for c in fake.calls_to(CHAT)])
            assert "Ann One" not in sent and "A question from the public" not in sent
            assert '\\"active_percent\\": 44' in sent
        finally:
            await bot.stop()
