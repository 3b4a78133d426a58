"""The semantic router on public intent data sets, few-shot: accuracy floors well under what it
measures (BANKING77 ~85 %, CLINC150 in-scope ~91 %), so a real regression fails, noise does not.

The data live outside the repository (/work/shared/datasets); without them these tests skip.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import pytest

from bot.routing.build import semantic_encoder
from bot.routing.encoders import Encoder
from bot.routing.evaluate import Row, read_rows, sample_shots
from bot.routing.router import Example, TopicRouter

DATASETS = Path("/work/shared/datasets")
BANKING77 = DATASETS / "banking77" / "train.csv"
CLINC150 = DATASETS / "clinc150" / "val.csv"


def _rows(path: Path, label_column: str, oos_label: str | None = None) -> list[Row]:
    if not path.is_file():
        pytest.skip(f"{path} is not here (public data set, kept outside the repository)")
    return read_rows(path, label_column, "text", oos_label)


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return semantic_encoder()


def _held_out(rows: Sequence[Row], train: Sequence[Row]) -> list[Row]:
    used = {id(row) for row in train}
    return [row for row in rows if id(row) not in used]


def _train(encoder: Encoder, rows: Sequence[Row]) -> TopicRouter:
    return TopicRouter(encoder).fit([Example(row.text, row.label) for row in rows])


def test_banking77_ten_shot_accuracy(encoder: Encoder) -> None:
    rows = _rows(BANKING77, "category")
    random.Random(0).shuffle(rows)
    cut = int(len(rows) * 0.8)
    train = sample_shots(rows[:cut], 10, 0)
    test = rows[cut:][:300]
    assert len(train) == 770  # 77 topics, 10 each
    router = _train(encoder, train)
    chosen = [d.topic for d in router.decide_many([row.text for row in test])]
    accuracy = sum(c == row.label for c, row in zip(chosen, test, strict=True)) / len(test)
    assert accuracy >= 0.75, f"BANKING77 10-shot accuracy {accuracy:.1%}"


def test_clinc150_five_shot_in_scope_accuracy_and_out_of_scope_recall(encoder: Encoder) -> None:
    rows = _rows(CLINC150, "intent", "oos")
    random.Random(0).shuffle(rows)
    train = sample_shots(rows, 5, 0)
    assert len(train) == 151 * 5  # 150 intents and out of scope, 5 each
    rest = _held_out(rows, train)
    in_scope = [row for row in rest if row.label is not None][:300]
    out_of_scope = [row for row in rest if row.label is None]
    assert len(out_of_scope) == 95
    router = _train(encoder, train)
    chosen = [d.topic for d in router.decide_many([row.text for row in in_scope + out_of_scope])]
    right = sum(c == row.label for c, row in zip(chosen, in_scope, strict=False))
    recall = sum(c is None for c in chosen[len(in_scope) :]) / len(out_of_scope)
    assert right / len(in_scope) >= 0.7, f"CLINC150 5-shot in-scope accuracy {right / 300:.1%}"
    assert recall > 0.2, f"CLINC150 5-shot out-of-scope recall {recall:.1%}"
