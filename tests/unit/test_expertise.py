"""The expertise learning rule, with time as an argument: decay, evidence, bounds, overrides."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.questions.expertise import RULE, Evidence, Rule, weigh
from bot.storage.models import ExpertiseRow

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HALF_LIFE = RULE.half_life


def evidence(*events: Evidence, every: timedelta = timedelta(0), rule: Rule = RULE) -> float:
    """The score after `events`, one every `every`, read at the last one."""
    score, at = 0.0, T0
    for event in events:
        score = rule.add(score, at, at + every, event)
        at += every
    return score


def test_the_score_halves_after_one_half_life_and_quarters_after_two() -> None:
    assert RULE.decayed(4.0, T0, T0 + HALF_LIFE) == pytest.approx(2.0)
    assert RULE.decayed(4.0, T0, T0 + 2 * HALF_LIFE) == pytest.approx(1.0)
    assert RULE.decayed(-2.0, T0, T0 + HALF_LIFE) == pytest.approx(-1.0)


def test_the_half_life_is_about_three_months_and_configurable() -> None:
    assert RULE.half_life == timedelta(days=90)
    fast = Rule(half_life=timedelta(days=7))
    assert fast.decayed(1.0, T0, T0 + timedelta(days=7)) == pytest.approx(0.5)


def test_a_clock_going_back_never_grows_the_score() -> None:
    assert RULE.decayed(3.0, T0, T0 - timedelta(days=30)) == 3.0


def test_decay_accepts_naive_utc_times_as_sqlite_returns_them() -> None:
    naive = T0.replace(tzinfo=None)
    assert RULE.decayed(2.0, naive, T0 + HALF_LIFE) == pytest.approx(1.0)


def test_answers_and_claims_raise_the_score_wrong_topic_lowers_it_busy_does_nothing() -> None:
    assert evidence(Evidence.ANSWERED) == 1.0
    assert evidence(Evidence.CLAIMED) == pytest.approx(0.3)
    assert evidence(Evidence.DECLINED_TOPIC) == -1.0
    assert evidence(Evidence.BUSY) == 0.0
    assert evidence(Evidence.CLAIMED, Evidence.RELEASED) == pytest.approx(0.0)


def test_answers_raise_the_effective_weight_and_declines_lower_it() -> None:
    plain = RULE.weight(2.0, 0.0)
    assert plain == 2.0
    assert RULE.weight(2.0, evidence(Evidence.ANSWERED)) > plain
    assert RULE.weight(2.0, evidence(Evidence.ANSWERED, Evidence.ANSWERED)) > RULE.weight(
        2.0, evidence(Evidence.ANSWERED)
    )
    assert RULE.weight(2.0, evidence(Evidence.DECLINED_TOPIC)) < plain


def test_the_learned_bonus_is_bounded_so_nobody_runs_away_with_a_topic() -> None:
    hundred = evidence(*[Evidence.ANSWERED] * 100)
    assert hundred == 100
    assert RULE.weight(1.0, hundred) <= 1.0 + RULE.bonus_cap
    assert RULE.weight(1.0, hundred) == pytest.approx(1.0 + RULE.bonus_cap, abs=1e-6)


def test_wrong_topic_declines_take_a_share_of_the_configured_weight_then_all_of_it() -> None:
    two = evidence(Evidence.DECLINED_TOPIC, Evidence.DECLINED_TOPIC)
    assert RULE.weight(3.0, two) == pytest.approx(1.0)  # two thirds gone, whatever the weight
    assert RULE.weight(1.0, two) == pytest.approx(1 / 3)
    three = evidence(*[Evidence.DECLINED_TOPIC] * 3)
    assert RULE.weight(1.0, three) == 0.0
    assert RULE.weight(3.0, evidence(*[Evidence.DECLINED_TOPIC] * 10)) == 0.0, "the floor"


def test_answers_outweigh_a_few_declines() -> None:
    mixed = evidence(*[Evidence.ANSWERED] * 5, Evidence.DECLINED_TOPIC, Evidence.DECLINED_TOPIC)
    assert RULE.weight(1.0, mixed) > 1.0


def test_exclusion_fades_back_as_the_declines_decay() -> None:
    three = evidence(*[Evidence.DECLINED_TOPIC] * 3)
    assert RULE.weight(1.0, three) == 0.0
    later = RULE.decayed(three, T0, T0 + HALF_LIFE)
    assert RULE.weight(1.0, later) == pytest.approx(0.5)


def test_the_override_wins_over_configured_and_learned() -> None:
    strong = evidence(*[Evidence.ANSWERED] * 10)
    assert RULE.weight(2.0, strong, override=0.5) == 0.5
    assert RULE.weight(2.0, strong, override=0.0) == 0.0
    assert RULE.weight(0.0, 0.0, override=1.5) == 1.5, "an override names a new expert"


def test_an_emerging_expert_needs_about_three_recent_answers() -> None:
    two = evidence(Evidence.ANSWERED, Evidence.ANSWERED)
    three = evidence(*[Evidence.ANSWERED] * 3, every=timedelta(days=7))
    assert RULE.weight(0.0, two) == 0.0
    assert 0 < RULE.weight(0.0, three) < 1.0, "below a default configured expert"
    assert RULE.weight(0.0, three, can_emerge=False) == 0.0
    a_month_later = RULE.decayed(three, T0, T0 + timedelta(days=30))
    assert RULE.weight(0.0, a_month_later) == 0.0, "and only while the evidence is recent"
    spread = evidence(*[Evidence.ANSWERED] * 3, every=HALF_LIFE)
    assert spread < RULE.emerging_at, "three answers a quarter apart are not recent evidence"
    assert RULE.weight(0.0, spread) == 0.0


def test_claims_alone_make_nobody_an_expert_fast() -> None:
    claims = evidence(*[Evidence.CLAIMED] * 5)
    assert claims < RULE.emerging_at


def test_weigh_reads_a_row_decayed_to_now_and_names_its_basis() -> None:
    row = ExpertiseRow(learned=2.0, learned_at=T0, override=None)
    configured = weigh(1.0, row, T0 + HALF_LIFE)
    assert configured.score == pytest.approx(1.0)
    assert configured.value == pytest.approx(RULE.weight(1.0, 1.0))
    assert configured.basis == "configured"
    assert weigh(0.0, row, T0).basis == "none"
    row.learned = 4.0
    assert weigh(0.0, row, T0).basis == "emerging"
    assert weigh(0.0, row, T0, evangelist=True).value == 0.0
    row.override = 0.0
    assert (weigh(2.0, row, T0).value, weigh(2.0, row, T0).basis) == (0.0, "override")
    assert weigh(1.5, None, T0).value == 1.5
