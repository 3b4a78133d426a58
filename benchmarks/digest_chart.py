"""Digest chart benchmark: render time, PNG size and memory for the weekly leader chart.

    .venv/bin/python benchmarks/digest_chart.py [--count 50] [--seed 1] [--json]

Renders `--count` seeded, realistic digests (9 weeks of trend, scope names of varied length,
about 10 % withheld for privacy, about 30 % of them "so far") with `bot.digests.chart.render`,
once at the Slack size and once compact for Teams. It prints:

- the first render in this process, which includes importing matplotlib and Pillow and loading
  the font cache (the bot imports them lazily, so its first digest pays this);
- the same in a fresh process with an empty MPLCONFIGDIR, as in a container without a home
  (matplotlib builds its font cache first);
- the median and max milliseconds per chart and bytes per PNG, for Slack and for Teams, and
  how many Teams PNGs came out smaller than `TEAMS_SIZE` (a later try) or stayed over
  `TEAMS_MAX_BYTES`;
- peak RSS before matplotlib was imported and at the end.

The issue's target is a render of at most 1 s per chart. No assertions: the exit status is 0
when it could measure. The report (or `--json`) goes to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import io
import json
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bot.digests import chart  # noqa: E402
from bot.digests.figures import MIX, DeskWeek, DigestFigures, PeopleWeek, WeekPoint  # noqa: E402

TARGET_MS = 1_000
SCOPES = [
    "Everyone",
    "Admissions",
    "Admissions and Research Office",
    "School of Engineering",
    "Marketing and Communications",
    "Faculty of Humanities, Arts, Social Sciences and Education",
    "Alumni Relations",
    "Library",
]
COLD_SCRIPT = """
import time
started = time.perf_counter()
from bot.digests import chart
from benchmarks.digest_chart import digest
import random
chart.render(digest(random.Random(1)))
print((time.perf_counter() - started) * 1000)
"""


def progress(message: str) -> None:
    print(f"[digest_chart {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def peak_rss_mib() -> float:
    """The process's peak resident memory so far (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def digest(rng: random.Random) -> DigestFigures:
    """One realistic digest: a random walk of participation, a plausible week's mix."""
    people = rng.choice([3, 12, 25, 40, 80, 150, 400, 1200])
    withheld = people < 5
    rate, trend = rng.uniform(0.15, 0.6), []
    for n in range(9):
        rate = min(1.0, max(0.0, rate + rng.uniform(-0.08, 0.08)))
        answered = max(0, round(rng.gauss(people / 10, people / 30 + 2)))
        trend.append(WeekPoint(f"2026-W{4 + n:02d}", None if withheld else rate, answered))
    active = round(rate * people)
    mix = {kind: max(0, round(rng.expovariate(1 / max(active, 1)))) for kind in MIX}
    this = None if withheld else PeopleWeek(people=people, active=active, mix=mix)
    return DigestFigures(
        leader="U1",
        leader_name="A Leader",
        scope=rng.choice(SCOPES),
        week="2026-W12",
        days="16–22 Mar 2026",
        zone="Europe/London",
        so_far=rng.random() < 0.3,
        min_group=5,
        people=people,
        this=this,
        previous=this,
        average_rate=None if withheld else rate,
        desk=DeskWeek(answered=trend[-1].answered),
        desk_before=DeskWeek(answered=trend[-2].answered),
        trend=trend,
    )


def timed(figures: DigestFigures, compact: bool) -> tuple[float, bytes]:
    started = time.perf_counter()
    png = chart.render(figures, compact=compact)
    return (time.perf_counter() - started) * 1000, png


def cold_first_render_ms() -> float | None:
    """Import + font cache build + one render, in a fresh process with an empty config dir."""
    with tempfile.TemporaryDirectory(prefix="digest-chart-bench-") as folder:
        env = {"MPLCONFIGDIR": folder, "PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
        done = subprocess.run(
            [sys.executable, "-c", COLD_SCRIPT],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    if done.returncode != 0:
        progress(f"cold run failed: {done.stderr.strip()[-300:]}")
        return None
    return float(done.stdout.strip().splitlines()[-1])


def measure(count: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    digests = [digest(rng) for _ in range(count)]
    rss_before = peak_rss_mib()
    progress("first render (imports matplotlib and Pillow)")
    first_ms, _ = timed(digests[0], compact=False)
    report: dict[str, Any] = {"count": count, "first_render_ms": round(first_ms)}
    for name, compact in (("slack", False), ("teams", True)):
        progress(f"{count} {name} charts")
        runs = [timed(figures, compact) for figures in digests]
        report[name] = summary(runs, compact)
    progress("first render in a fresh process with an empty font cache")
    cold = cold_first_render_ms()
    report["cold_first_render_ms"] = None if cold is None else round(cold)
    report["peak_rss_before_mib"] = round(rss_before, 1)
    report["peak_rss_mib"] = round(peak_rss_mib(), 1)
    return report


def summary(runs: list[tuple[float, bytes]], compact: bool) -> dict[str, Any]:
    from PIL import Image

    times = [ms for ms, _ in runs]
    sizes = [len(png) for _, png in runs]
    figures: dict[str, Any] = {
        "median_ms": round(statistics.median(times), 1),
        "max_ms": round(max(times), 1),
        "median_bytes": round(statistics.median(sizes)),
        "max_bytes": max(sizes),
    }
    if compact:
        widths = [Image.open(io.BytesIO(png)).width for _, png in runs]
        figures["smaller_size"] = sum(w != chart.TEAMS_SIZE[0] for w in widths)
        figures["over_budget"] = sum(size > chart.TEAMS_MAX_BYTES for size in sizes)
    return figures


def print_report(report: dict[str, Any]) -> None:
    print(f"digest chart: {report['count']} digests per size, target ≤ {TARGET_MS} ms a chart")
    print(f"  first render in process (import + fonts): {report['first_render_ms']} ms")
    print(f"  first render, fresh process, empty font cache: {report['cold_first_render_ms']} ms")
    sizes = {"slack": chart.SLACK_SIZE, "teams": chart.TEAMS_SIZE}
    for name in ("slack", "teams"):
        row = report[name]
        width, height = sizes[name]
        print(
            f"  {name} {width}×{height}: median {row['median_ms']} ms, max {row['max_ms']} ms; "
            f"PNG median {row['median_bytes']:,} B, max {row['max_bytes']:,} B"
        )
    teams = report["teams"]
    print(
        f"  teams: {teams['smaller_size']} came out smaller than {chart.TEAMS_SIZE[0]} px wide, "
        f"{teams['over_budget']} over "
        f"{chart.TEAMS_MAX_BYTES:,} B"
    )
    print(
        f"  peak RSS: {report['peak_rss_before_mib']} MiB before matplotlib, "
        f"{report['peak_rss_mib']} MiB after"
    )
    worst = max(report["slack"]["max_ms"], report["teams"]["max_ms"])
    verdict = "PASS" if worst <= TARGET_MS else "FAIL"
    print(f"  {verdict}: slowest chart {worst} ms (target ≤ {TARGET_MS} ms, first render aside)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    args = parser.parse_args()
    report = measure(args.count, args.seed)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
