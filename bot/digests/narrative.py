"""Three sentences on what changed: from the language model when every number checks out.

The model sees only figures our code computed (no names, no question text) and must not add
any. Every number in its answer, written in digits or in words, has to be one of the figures it
was given; one that is not, and the whole narrative is dropped for the template's.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from bot.core.ports import LanguageModel
from bot.digests.figures import TREND_WEEKS, DigestFigures
from bot.digests.render import duration, template_narrative

log = logging.getLogger(__name__)

PURPOSE = (
    "a leader's weekly digest of their people's participation in the organisation's social "
    "media: in exactly three sentences, say what changed since last week and why it matters "
    "for the unit; use only the numbers given, as they are given"
)
NUMBER = re.compile(r"\d+(?:[.,]\d+)?")
WORDS = {
    "zero": 0, "none": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13,
    "fourteen": 14, "fifteen": 15, "sixteen": 16, "seventeen": 17, "eighteen": 18,
    "nineteen": 19, "twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "hundred": 100,
    "half": 50, "halved": 50, "double": 200, "doubled": 200, "twice": 200, "triple": 300,
    "tripled": 300, "threefold": 300,
}  # fmt: skip
"""Numbers written as words; 'halved' and 'doubled' as the percentages they claim."""
MAX_SENTENCES = 4


def facts(f: DigestFigures) -> dict[str, Any]:
    """What the model may talk about: figures and our own labels, nothing personal."""
    out: dict[str, Any] = {
        "period": "this week so far" if f.so_far else "last week",
        "group": f.scope,
        "people": f.people,
        "public_questions_routed": f.desk.routed,
        "public_questions_claimed": f.desk.claimed,
        "public_questions_answered": f.desk.answered,
        "public_questions_answered_week_before": f.desk_before.answered,
        "first_answer_median": duration(f.desk.median_minutes)
        if f.desk.median_minutes is not None
        else None,
        "missed_first_response_target": f.desk.sla_breaches,
        "top_topics_asked": [name for name, _ in f.topics],
        "weeks_in_trend": TREND_WEEKS,
    }
    if f.this is not None:
        out["active_percent"] = round(f.this.rate * 100)
        out["nudges_sent"] = f.this.nudges_sent
        out["nudges_acted_on"] = f.this.nudges_done
        out["ladder_steps_up"] = f.this.ladder_up
        out["learning_links_opened"] = f.this.links_opened
        out["experiments_tried"] = f.this.experiments
    if f.previous is not None:
        out["active_percent_week_before"] = round(f.previous.rate * 100)
        out["active_change_points"] = abs(
            round(f.this.rate * 100) - round(f.previous.rate * 100) if f.this else 0
        )
    if f.average_rate is not None:
        out["active_percent_average_of_weeks_before"] = round(f.average_rate * 100)
        out["weeks_averaged"] = f.average_weeks
    return {k: v for k, v in out.items() if v is not None}


def allowed_numbers(values: dict[str, Any]) -> set[float]:
    found: set[float] = set()
    for value in values.values():
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, bool):
                continue
            if isinstance(text, int | float):
                found.add(float(text))
            else:
                found.update(float(n.replace(",", ".")) for n in NUMBER.findall(str(text)))
    return found


def numbers_in(text: str) -> list[float]:
    found = [float(n.replace(",", "")) if "," in n and len(n.split(",")[1]) == 3 else
             float(n.replace(",", ".")) for n in NUMBER.findall(text)]  # fmt: skip
    found += [float(WORDS[w]) for w in re.findall(r"[a-z]+", text.lower()) if w in WORDS]
    return found


def checked(text: str, values: dict[str, Any]) -> str | None:
    """The narrative if every number in it is one of `values`' numbers, else None."""
    allowed = allowed_numbers(values)
    wrong = [n for n in numbers_in(text) if n not in allowed]
    if wrong:
        log.warning("digest narrative dropped: %s not among the figures", wrong[:5])
        return None
    if len(re.findall(r"[.!?](?:\s|$)", text.strip() + " ")) > MAX_SENTENCES:
        log.warning("digest narrative dropped: more than %s sentences", MAX_SENTENCES)
        return None
    return text.strip()


async def narrate(f: DigestFigures, model: LanguageModel | None) -> tuple[str, str]:
    """(narrative, 'model' or 'template')."""
    if model is not None:
        values = facts(f)
        text = await model.narrate(values, PURPOSE)
        if text:
            good = checked(text, values)
            if good is not None:
                return good, "model"
    return template_narrative(f), "template"
