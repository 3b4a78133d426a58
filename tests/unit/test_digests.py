"""Digest pieces without a database: weeks across clock changes, the privacy rules, the number
check on the model's narrative, and the words a leader reads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pytest

from bot.core.errors import ConfigurationError
from bot.digests import narrative, render
from bot.digests.figures import (
    DeskWeek,
    DigestFigures,
    Group,
    Oldest,
    PeopleWeek,
    Recognised,
    WeekPoint,
)
from bot.digests.privacy import shown_groups
from bot.digests.questions import nearest_rank
from bot.digests.weeks import parse_week, week_of


def test_a_week_is_monday_to_monday_in_the_leaders_zone() -> None:
    week = parse_week("2026-W10", "Asia/Tokyo")
    assert week.start == datetime(2026, 3, 1, 15, tzinfo=UTC)  # Monday 00:00 JST
    assert week.end == datetime(2026, 3, 8, 15, tzinfo=UTC)
    assert week_of(datetime(2026, 3, 8, 15, tzinfo=UTC), "Asia/Tokyo").label == "2026-W11"
    assert week_of(datetime(2026, 3, 8, 14, 59, tzinfo=UTC), "Asia/Tokyo").label == "2026-W10"


def test_weeks_with_a_clock_change_are_an_hour_short_or_long() -> None:
    spring = parse_week("2026-W13", "Europe/London")  # clocks go forward on Sunday 29 March
    assert spring.start == datetime(2026, 3, 23, 0, tzinfo=UTC)
    assert spring.end == datetime(2026, 3, 29, 23, tzinfo=UTC)  # Monday 00:00 BST
    assert (spring.end - spring.start).total_seconds() == 167 * 3600
    autumn = parse_week("2026-W43", "Europe/London")  # back on Sunday 25 October
    assert (autumn.end - autumn.start).total_seconds() == 169 * 3600
    assert spring.shifted(1).start == spring.end
    assert [w.label for w in spring.previous(2)] == ["2026-W11", "2026-W12"]


def test_week_53_and_bad_weeks() -> None:
    assert parse_week("2026-W53", "UTC").days() == "28 Dec 2026 – 3 Jan 2027"
    with pytest.raises(ConfigurationError, match="2025 has no week 53"):
        parse_week("2025-W53", "UTC")
    with pytest.raises(ConfigurationError, match="ISO week like 2026-W12"):
        parse_week("2026-12", "UTC")


def group(name: str, *ids: int) -> tuple[str, frozenset[int]]:
    return name, frozenset(ids)


def test_groups_under_k_are_never_shown_nor_left_to_subtraction() -> None:
    people = frozenset(range(14))
    big, other, small = group("A", *range(5)), group("B", *range(5, 10)), group("C", 10, 11, 12, 13)
    # C (4) is hidden; A and B shown would leave C's four to subtraction: A (the first by name
    # among the smallest) is folded in too, so what is left (9) is at least k.
    shown, hidden = shown_groups(people, [big, other, small], 5)
    assert [name for name, _ in shown] == ["B"] and hidden == 2
    # With five in C, all three are shown.
    shown, hidden = shown_groups(people | {14}, [big, other, group("C", 10, 11, 12, 13, 14)], 5)
    assert [name for name, _ in shown] == ["A", "B", "C"] and hidden == 0
    # A scope under k: no rows at all.
    assert shown_groups(frozenset(range(4)), [group("A", 0, 1, 2, 3)], 5) == ([], 1)
    # One row that is the whole scope says nothing.
    assert shown_groups(frozenset(range(6)), [group("A", *range(6))], 5) == ([], 0)


def test_nearest_rank_percentile_is_a_real_wait() -> None:
    waits = np.array([10.0, 20, 30, 40, 50, 60, 70, 80, 90, 100])
    assert nearest_rank(waits, 0.9) == 90
    assert nearest_rank(np.array([5.0]), 0.9) == 5
    assert nearest_rank(np.array([]), 0.9) is None


def figures(**changes: Any) -> DigestFigures:
    values: dict[str, Any] = {
        "leader": "lara",
        "leader_name": "Lara Lead",
        "scope": "Alpha",
        "week": "2026-W10",
        "days": "2–8 Mar 2026",
        "zone": "Europe/London",
        "so_far": False,
        "min_group": 5,
        "people": 20,
        "this": PeopleWeek(20, 9, 12, 5, 2, 7, 3, {"Answered questions": 4}),
        "previous": PeopleWeek(20, 6),
        "average_rate": 0.25,
        "desk": DeskWeek(10, 8, 7, 130.0, 410.0, 1),
        "desk_before": DeskWeek(6, 5, 5, 90.0, 200.0, 0),
        "trend": [WeekPoint(f"2026-W{n:02d}", 0.3, 2) for n in range(2, 11)],
        "groups": [Group("Alpha (direct)", 10, 5), Group("Alpha Small", 10, 4)],
        "hidden_groups": 1,
        "recognised": [Recognised("Ann One", "answered 3 public questions")],
        "others": 2,
        "topics": [("Fees", 6), ("PhD positions", 4)],
        "oldest": Oldest(30.5, "Fees", "https://example.org/p/1"),
    }
    values.update(changes)
    return DigestFigures(**values)


def test_the_digest_reads_as_a_leader_expects() -> None:
    f = figures()
    text = "\n".join(render.message(f, render.template_narrative(f)).sections)
    assert "**Participation digest: Alpha, week 10 (2–8 Mar 2026)**" in text
    assert "45% of 20 people (▲ 15 pts on last week; 8-week average 25%)" in text
    assert "10 routed, 8 claimed, 7 answered (last week 5)" in text
    assert "first answer in 2 h 10 min (median), 6 h 50 min (p90)" in text
    assert "1 question missed the first-response target" in text
    assert "Oldest unanswered:** a question about Fees, waiting 30 h 30 min" in text
    assert "**Nudges:** 12 sent, 5 acted on; 2 moves up the ladder" in text
    assert "Ann One answered 3 public questions. 2 others stepped up too." in text
    assert "- Alpha Small: 40% of 10 people" in text
    assert "1 team not shown separately" in text
    assert render.template_narrative(f) == (
        "45% of your 20 people took part this week, up 15 points on last week. The desk saw 10 "
        "public questions routed to your people and 7 answered, with a median first answer of "
        "2 h 10 min. Ann One answered 3 public questions."
    )
    assert render.duration(2 * 24 * 60 + 1) == "2 days" and render.duration(59.6) == "1 h"
    # In an organisation's first weeks the average covers only the weeks with any data.
    young = render.message(figures(average_weeks=3), "").sections[2]
    assert "(▲ 15 pts on last week; 3-week average 25%)" in young


def test_a_narrative_with_a_number_we_did_not_compute_is_dropped() -> None:
    values = narrative.facts(figures())
    assert "Ann One" not in str(values)  # names never go to the model
    good = (
        "Participation rose to 45% from 30%, up 15 points. Your people answered 7 of the 10 "
        "public questions routed to them. That matters: every answer is seen by the public."
    )
    assert narrative.checked(good, values) == good
    assert narrative.checked("Participation doubled to 45%.", values) is None  # 200%? no
    assert narrative.checked("Participation rose to 46%.", values) is None
    assert narrative.checked("Eleven people answered questions.", values) is None
    assert narrative.checked("One. Two. Three. Four. Five.", values) is None  # five sentences


class Model:
    def __init__(self, answer: str | None) -> None:
        self.answer = answer
        self.asked: list[dict[str, Any]] = []

    async def narrate(self, facts: dict[str, Any], purpose: str) -> str | None:
        self.asked.append(facts)
        return self.answer


async def test_the_template_stands_in_when_the_model_is_wrong_or_away() -> None:
    f = figures()
    right = Model("45% took part, up 15 points. 7 questions answered. Keep going.")
    assert await narrative.narrate(f, right) == (right.answer, "model")  # type: ignore[arg-type]
    wrong = Model("52% took part.")
    assert await narrative.narrate(f, wrong) == (render.template_narrative(f), "template")  # type: ignore[arg-type]
    assert await narrative.narrate(f, None) == (render.template_narrative(f), "template")


def test_figures_survive_the_snapshot() -> None:
    f = figures()
    assert DigestFigures.from_dict(f.to_dict()) == f
    withheld = figures(this=None, previous=None, average_rate=None, groups=[], others=0)
    assert DigestFigures.from_dict(withheld.to_dict()) == withheld


def test_a_quiet_week_says_so_plainly() -> None:
    quiet = figures(
        this=PeopleWeek(20, 0),
        previous=PeopleWeek(20, 0),
        desk=DeskWeek(),
        desk_before=DeskWeek(),
        recognised=[],
        others=0,
    )
    assert render.template_narrative(quiet).startswith(
        "Nothing was recorded for your 20 people this week or the week before"
    )
    # Any question routed, or anyone taking part, and the usual three sentences come back.
    assert render.template_narrative(figures(desk_before=DeskWeek())).startswith("45% of your")


def test_who_stepped_up_names_five_who_agreed_and_counts_the_rest() -> None:
    from bot.digests.compute import Calculator, Period
    from bot.digests.ledger import COLUMN, COLUMNS, Ledger
    from bot.digests.questions import QuestionBook
    from bot.digests.scope import Member, Scope

    period = Period.complete(parse_week("2026-W10", "UTC"))
    #               id: (name, agreed, answered, commented)
    deeds = {
        1: ("Zoe", True, 3, 0),
        2: ("Yan", True, 1, 0),
        3: ("Xia", True, 1, 0),
        4: ("Abe", True, 2, 0),
        5: ("Bea", True, 0, 2),
        6: ("Cal", True, 1, 0),
        7: ("Dee", True, 1, 1),
        8: ("Eve", False, 5, 0),
        9: ("Fay", False, 0, 1),
        10: ("Gus", True, 0, 0),
    }
    people = {
        i: Member(i, f"p{i}", name, "UTC", agreed) for i, (name, agreed, _, _) in deeds.items()
    }
    table = np.zeros((10, 9, len(COLUMNS)), dtype=np.int32)
    for i, (_, _, answered, commented) in deeds.items():
        table[i - 1, 8, COLUMN["question_answered"]] = answered
        table[i - 1, 8, COLUMN["page_comment"]] = commented
    ledger = Ledger(period.bounds, np.arange(1, 11), table)
    empty = np.zeros(0)
    book = QuestionBook(empty, empty, empty, empty, empty, [], [], empty, empty.astype(int),
                        empty.astype(int), empty)  # fmt: skip
    calculator = Calculator(period, ledger, book, people=people, min_group=5, topic_names={})
    f = calculator.figures(Scope(None, "All", frozenset(people), ()))
    assert [(r.name, r.did) for r in f.recognised] == [
        ("Zoe", "answered 3 public questions"),
        ("Abe", "answered 2 public questions"),
        ("Dee", "answered 1 public question and commented on our pages once"),
        ("Cal", "answered 1 public question"),
        ("Xia", "answered 1 public question"),
    ]
    # Yan and Bea agreed but did not make the five; Eve and Fay did not agree; Gus did nothing.
    assert f.others == 4
