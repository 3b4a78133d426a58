"""`evangelist routing evaluate` and `evangelist routing explain`, run in-process."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pytest

from bot.cli import main
from tests.conftest import DEMO_ORG

TRAIN = {
    "fees": [
        "How much are the tuition fees for international students?",
        "Can I pay my tuition in instalments?",
        "Are there scholarships to reduce the fees?",
        "When is the tuition payment due each term?",
        "Will I get a refund of my fees if I withdraw?",
    ],
    "housing": [
        "Is student accommodation guaranteed in the first year?",
        "How much does a room in the halls of residence cost?",
        "Can I choose a flatmate in student housing?",
        "When can I move into my dorm room?",
        "Are the residence halls open during the summer?",
    ],
    "research": [
        "Are there open PhD positions in marine biology?",
        "Who supervises research on renewable energy?",
        "How do I find a supervisor for my doctorate?",
        "Which research groups work on machine learning?",
        "Is there funding for PhD students in chemistry?",
    ],
    "oos": [
        "What is the weather forecast for the weekend?",
        "Who won the football match last night?",
        "Tell me a good joke about cats",
        "Recommend a good pizza restaurant near the station",
    ],
}
TEST = [
    ("What are the tuition fees for students from abroad?", "fees"),
    ("Can the tuition fees be paid in instalments?", "fees"),
    ("Is a room in student accommodation guaranteed?", "housing"),
    ("When can I move into the halls of residence?", "housing"),
    ("Are there PhD positions in biology with funding?", "research"),
    ("How do I find a PhD supervisor?", "research"),
    ("Tell me a joke about the football match", "oos"),
    ("What is the weather like this weekend?", "oos"),
]
KEYS = {
    "accuracy",
    "in_scope_accuracy",
    "oos_recall",
    "oos_precision",
    "macro_f1",
    "fit_seconds",
    "latency_ms_p50",
    "latency_ms_p95",
    "n_train",
    "n_test",
}


def _write(
    path: Path, rows: list[tuple[str, str]], columns: tuple[str, str] = ("text", "label")
) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
    return path


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    train = [(text, label) for label, texts in TRAIN.items() for text in texts]
    return _write(tmp_path / "train.csv", train), _write(tmp_path / "test.csv", TEST)


def _evaluate(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], *options: str
) -> dict[str, Any]:
    train, test = files
    capsys.readouterr()
    code = main(
        [
            "routing",
            "evaluate",
            "--train",
            str(train),
            "--test",
            str(test),
            "--label-column",
            "label",
            "--oos-label",
            "oos",
            "--json",
            *options,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    figures: dict[str, Any] = json.loads(captured.out)
    return figures


def test_evaluate_prints_the_figures_as_json(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    figures = _evaluate(files, capsys)
    assert set(figures) >= KEYS
    assert figures["router"] == "semantic"
    assert figures["n_train"] == sum(len(texts) for texts in TRAIN.values())
    assert figures["n_test"] == len(TEST)
    assert figures["n_topics"] == 3
    for key in ("accuracy", "in_scope_accuracy", "oos_recall", "oos_precision", "macro_f1"):
        assert 0 <= figures[key] <= 1, key
    # The test questions are close paraphrases of the training ones.
    assert figures["in_scope_accuracy"] >= 5 / 6
    assert figures["accuracy"] >= 0.75
    assert figures["fit_seconds"] > 0
    assert 0 < figures["latency_ms_p50"] <= figures["latency_ms_p95"]
    assert figures["unknown_test_labels"] == []


def test_shots_sample_per_label_and_are_reproducible(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    first = _evaluate(files, capsys, "--shots", "2", "--seed", "3", "--router", "lexical")
    second = _evaluate(files, capsys, "--shots", "2", "--seed", "3", "--router", "lexical")
    assert first["n_train"] == 2 * len(TRAIN)  # out of scope counts as a label
    assert first["n_test"] == len(TEST)
    assert first["accuracy"] == second["accuracy"]
    assert first["confused"] == second["confused"]
    semantic = _evaluate(files, capsys, "--shots", "2", "--seed", "3", "--router", "semantic")
    assert semantic["n_train"] == 2 * len(TRAIN)
    assert (
        semantic["accuracy"] == _evaluate(files, capsys, "--shots", "2", "--seed", "3")["accuracy"]
    )


@pytest.mark.parametrize("router", ["lexical", "keyword"])
def test_the_other_routers_evaluate_too(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str], router: str
) -> None:
    figures = _evaluate(files, capsys, "--router", router)
    assert figures["router"] == router
    assert set(figures) >= KEYS
    assert 0 <= figures["accuracy"] <= 1
    assert figures["in_scope_accuracy"] >= 0.5


def test_evaluate_prints_a_readable_report(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    train, test = files
    code = main(
        [
            "routing",
            "evaluate",
            "--train",
            str(train),
            "--test",
            str(test),
            "--label-column",
            "label",
            "--oos-label",
            "oos",
            "--router",
            "lexical",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "in-scope accuracy" in out
    assert "out-of-scope recall" in out
    assert f"train / test rows    {sum(len(t) for t in TRAIN.values())} / {len(TEST)}" in out


def test_without_an_oos_label_oos_is_a_topic(
    files: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    train, test = files
    code = main(
        [
            "routing",
            "evaluate",
            "--train",
            str(train),
            "--test",
            str(test),
            "--label-column",
            "label",
            "--router",
            "lexical",
            "--json",
        ]
    )
    figures = json.loads(capsys.readouterr().out)
    assert code == 0
    assert figures["n_topics"] == 4
    assert figures["oos_recall"] is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing-file", "no such file"),
        ("missing-column", "no column 'topic'"),
        ("zero-shots", "--shots must be at least 1"),
        ("bad-confidence", "--min-confidence must be in [0, 1)"),
        ("only-oos", "all out of scope"),
        ("empty", "no rows with both a text and a label"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    files: tuple[Path, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    change: str,
    message: str,
) -> None:
    train, test = files
    options = ["--label-column", "label", "--oos-label", "oos", "--router", "lexical"]
    if change == "missing-file":
        train = tmp_path / "absent.csv"
    elif change == "missing-column":
        options[1] = "topic"
    elif change == "zero-shots":
        options += ["--shots", "0"]
    elif change == "bad-confidence":
        options += ["--min-confidence", "1"]
    elif change == "only-oos":
        train = _write(tmp_path / "oos.csv", [("what is the weather", "oos")])
    elif change == "empty":
        train = _write(tmp_path / "empty.csv", [("", "fees"), ("no label", "")])
    capsys.readouterr()
    code = main(
        ["routing", "evaluate", "--train", str(train), "--test", str(test), *options, "--json"]
    )
    captured = capsys.readouterr()
    assert code == 2
    assert message in captured.err
    assert captured.out == ""


def test_routing_without_an_action_shows_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routing"]) == 2
    assert "usage" in capsys.readouterr().err


# -- explain -----------------------------------------------------------------------------------


@pytest.fixture
def demo_env(database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVANGELIST_DATABASE_URL", database_url)
    monkeypatch.delenv("EVANGELIST_CONFIG", raising=False)


QUESTION = "When is the deadline to apply for the master's programme?"


@pytest.mark.usefixtures("demo_env")
def test_explain_names_the_top_topic_of_the_demo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routing", "explain", QUESTION, "--config", str(DEMO_ORG)]) == 0
    out = capsys.readouterr().out
    first = out.splitlines()[0]
    assert first.startswith("router semantic: admissions,"), out
    assert "% sure" in first
    assert "admissions (Admissions and applications)" in out
    assert "When is the application deadline for the autumn intake?" in out


@pytest.mark.usefixtures("demo_env")
def test_explain_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["routing", "explain", QUESTION, "--config", str(DEMO_ORG), "--json"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert {"topic", "confidence", "topics"} <= set(outcome)
    assert outcome["topic"] == "admissions"
    assert 0.25 <= outcome["confidence"] <= 1
    assert [t["topic"] for t in outcome["topics"]] == ["admissions", "research"]
    top = outcome["topics"][0]
    assert top["name"] == "Admissions and applications"
    assert top["probability"] == pytest.approx(outcome["confidence"], abs=1e-3)
    similarities = [e["similarity"] for e in top["examples"]]
    assert similarities == sorted(similarities, reverse=True)


@pytest.mark.usefixtures("demo_env")
def test_explain_with_another_router(capsys: pytest.CaptureFixture[str]) -> None:
    question = "Are there PhD positions with a supervisor in marine biology?"
    code = main(
        ["routing", "explain", question, "--config", str(DEMO_ORG), "--router", "lexical", "--json"]
    )
    assert code == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["router"] == "lexical"
    assert outcome["topic"] == "research"


@pytest.mark.usefixtures("demo_env")
def test_explain_without_an_organisation_file_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["routing", "explain", QUESTION]) == 2
    assert "organisation file" in capsys.readouterr().err


def test_the_shipped_off_topic_questions_can_be_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Training data with no out-of-scope rows: only the shipped list knows the weather."""
    train = _write(
        tmp_path / "train.csv",
        [(text, label) for label, texts in TRAIN.items() if label != "oos" for text in texts],
    )
    test = _write(tmp_path / "test.csv", [("Will it rain this weekend?", "oos")])
    base = ["--train", str(train), "--test", str(test), "--label-column", "label"]
    recall = {}
    for flag in ([], ["--no-generic-oos"]):
        capsys.readouterr()
        code = main(["routing", "evaluate", *base, "--oos-label", "oos", "--router", "lexical",
                     *flag, "--json"])  # fmt: skip
        assert code == 0
        recall[bool(flag)] = json.loads(capsys.readouterr().out)["oos_recall"]
    assert recall == {False: 1.0, True: 0.0}
