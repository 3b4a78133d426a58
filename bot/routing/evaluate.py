"""`evangelist routing evaluate`: train a router as production does, then measure it.

Figures (all fractions in [0, 1]):

- accuracy: the router's decision is right: the labelled topic for in-scope rows, the fallback
  owner for out-of-scope rows;
- in_scope_accuracy: in-scope rows routed to their labelled topic (a fallback counts as wrong);
- oos_recall / oos_precision: out-of-scope rows sent to the fallback owner / fallbacks that were
  out of scope (null when there is nothing to divide by);
- macro_f1: the mean F1 over the labels of the test rows (out of scope counts as one label);
- confused: the most frequent (labelled, chosen) pairs among the mistakes;
- fit_seconds (embedding the training rows included), latency per question (one question at a
  time, as the desk asks), peak memory of the process.
"""

from __future__ import annotations

import csv
import random
import resource
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.routing.build import RouterChoice, make_router
from bot.routing.router import Example, RouterSettings
from bot.routing.training import generic_out_of_scope

FALLBACK = "(fallback owner)"


class EvaluationError(Exception):
    """Bad input: a missing file or column, no rows, an unusable option."""


@dataclass(frozen=True)
class Row:
    text: str
    label: str | None
    """None: out of scope."""


def read_rows(path: Path, label_column: str, text_column: str, oos_label: str | None) -> list[Row]:
    if not path.is_file():
        raise EvaluationError(f"{path}: no such file")
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        for column in (text_column, label_column):
            if column not in columns:
                raise EvaluationError(
                    f"{path}: no column {column!r} (columns: {', '.join(columns) or 'none'})"
                )
        rows = []
        for record in reader:
            text = (record.get(text_column) or "").strip()
            label = (record.get(label_column) or "").strip()
            if not text or not label:
                continue
            rows.append(Row(text, None if label == oos_label else label))
    if not rows:
        raise EvaluationError(f"{path}: no rows with both a text and a label")
    return rows


def sample_shots(rows: Sequence[Row], shots: int, seed: int) -> list[Row]:
    """`shots` rows per label (out of scope being one label), drawn with `seed`."""
    grouped: dict[str | None, list[Row]] = defaultdict(list)
    for row in rows:
        grouped[row.label].append(row)
    chooser = random.Random(seed)
    picked: list[Row] = []
    for label in sorted(grouped, key=lambda x: (x is None, x or "")):
        group = grouped[label]
        picked.extend(chooser.sample(group, min(shots, len(group))))
    return picked


def evaluate(
    train: Sequence[Row],
    test: Sequence[Row],
    *,
    router: str = "auto",
    settings: RouterSettings | None = None,
    generic_oos: bool = True,
) -> dict[str, Any]:
    """Train as production does (with the generic off-topic questions, unless told not to)."""
    model = make_router(RouterChoice(router), settings)
    examples = [Example(row.text, row.label) for row in train]
    if generic_oos:
        examples += generic_out_of_scope(examples)
    started = time.perf_counter()
    model.fit(examples)
    fit_seconds = time.perf_counter() - started
    known = set(model.topics)

    model.decide_many([test[0].text])  # warm-up: first-call costs are not a question's latency
    latencies: list[float] = []
    chosen: list[str | None] = []
    for row in test:
        began = time.perf_counter()
        chosen.append(model.decide(row.text).topic)
        latencies.append((time.perf_counter() - began) * 1000)

    truth = [row.label for row in test]
    in_scope = [i for i, label in enumerate(truth) if label is not None]
    out_scope = [i for i, label in enumerate(truth) if label is None]
    fallbacks = [i for i, topic in enumerate(chosen) if topic is None]
    right = [truth[i] == chosen[i] for i in range(len(test))]
    confused = Counter(
        (truth[i] or FALLBACK, chosen[i] or FALLBACK) for i in range(len(test)) if not right[i]
    )
    latencies.sort()
    return {
        "router": model.name,
        "accuracy": _ratio(sum(right), len(test)),
        "in_scope_accuracy": _ratio(sum(right[i] for i in in_scope), len(in_scope)),
        "oos_recall": _ratio(sum(chosen[i] is None for i in out_scope), len(out_scope)),
        "oos_precision": _ratio(sum(truth[i] is None for i in fallbacks), len(fallbacks)),
        "fallback_rate": _ratio(len(fallbacks), len(test)),
        "macro_f1": _macro_f1(truth, chosen),
        "confused": [
            {"label": a, "chosen": b, "count": n} for (a, b), n in confused.most_common(5)
        ],
        "unknown_test_labels": sorted(
            {label for label in truth if label is not None and label not in known}
        ),
        "fit_seconds": round(fit_seconds, 3),
        "latency_ms_p50": round(_percentile(latencies, 50), 3),
        "latency_ms_p95": round(_percentile(latencies, 95), 3),
        "peak_memory_mb": round(_peak_rss_mb(), 1),
        "n_train": len(train),
        "n_test": len(test),
        "n_topics": len([t for t in model.topics if not t.startswith("__")]),
    }


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _macro_f1(truth: Sequence[str | None], chosen: Sequence[str | None]) -> float | None:
    labels = set(truth)
    if not labels:
        return None
    scores = []
    for label in labels:
        tp = sum(1 for t, c in zip(truth, chosen, strict=True) if t == label and c == label)
        fp = sum(1 for t, c in zip(truth, chosen, strict=True) if t != label and c == label)
        fn = sum(1 for t, c in zip(truth, chosen, strict=True) if t == label and c != label)
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return round(sum(scores) / len(scores), 4)


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    position = (len(sorted_values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def report(figures: dict[str, Any]) -> str:
    def pct(key: str) -> str:
        value = figures.get(key)
        return "n/a" if value is None else f"{value * 100:.2f} %"

    lines = [
        f"router               {figures['router']} ({figures['n_topics']} topics)",
        f"train / test rows    {figures['n_train']} / {figures['n_test']}",
        f"accuracy             {pct('accuracy')}",
        f"in-scope accuracy    {pct('in_scope_accuracy')}  (a fallback counts as wrong)",
        f"out-of-scope recall  {pct('oos_recall')}",
        f"out-of-scope prec.   {pct('oos_precision')}",
        f"fallback rate        {pct('fallback_rate')}",
        f"macro-F1             {pct('macro_f1')}",
        f"fit                  {figures['fit_seconds']:.2f} s",
        f"latency per question p50 {figures['latency_ms_p50']:.2f} ms, "
        f"p95 {figures['latency_ms_p95']:.2f} ms",
        f"peak memory          {figures['peak_memory_mb']:.0f} MB",
    ]
    if figures["confused"]:
        lines.append("most confused (labelled → chosen):")
        lines.extend(
            f"  {c['count']:>4} x {c['label']} → {c['chosen']}" for c in figures["confused"]
        )
    if figures["unknown_test_labels"]:
        lines.append(
            "labels in the test file that training never saw: "
            + ", ".join(figures["unknown_test_labels"][:10])
        )
    return "\n".join(lines)
