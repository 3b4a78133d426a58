"""`evangelist demo simulate` and `evangelist digest preview`: the real command (`bot.cli.main`)
in a worker thread, as a newcomer runs it on the demo organisation, against the test database.

Both commands read the wall clock (the simulation ends now; the week asked for is last week),
so the week is worked out here the same way.
"""

from __future__ import annotations

import asyncio
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from PIL import Image

from bot.cli import main
from bot.digests.weeks import week_of
from tests.conftest import DEMO_ORG


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("EVANGELIST_DATABASE_URL", database_url)
    monkeypatch.setenv("EVANGELIST_CONFIG", str(DEMO_ORG))


async def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = await asyncio.to_thread(main, list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def last_week() -> str:
    # Grace, the demo's leader, lives in Stockholm.
    return week_of(datetime.now(UTC), "Europe/Stockholm").shifted(-1).label


async def test_a_newcomer_simulates_weeks_and_previews_a_populated_digest(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = await run(capsys, "demo", "simulate", "--weeks", "8", "--seed", "1")
    assert code == 0 and out.startswith("Simulated 8 weeks for 19 people")

    week = last_week()
    code, out, _ = await run(
        capsys, "digest", "preview", "--all", "--week", week, "--out", str(tmp_path), "--json"
    )
    assert code == 0
    report = json.loads(out)
    [digest] = report["digests"]
    assert report["week"] == week and digest["leader"] == "grace"
    figures = digest["figures"]
    assert figures["scope"] == "Admissions and Research Office" and figures["people"] == 17
    assert figures["this"]["active"] > 0 and figures["desk"]["answered"] > 0
    assert [g["name"] for g in figures["groups"]] == [
        "Admissions (direct)",
        "International Admissions",
        "Research Office",
    ]
    markdown = await asyncio.to_thread(Path(digest["markdown"]).read_text, encoding="utf-8")
    assert markdown.startswith("# Participation digest: Admissions and Research Office, week")
    assert f"![Admissions and Research Office, participation trend]({week}-grace.png)" in markdown
    png = await asyncio.to_thread(Path(digest["chart"]).read_bytes)
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (1200, 1500)

    # Preview stores nothing and sends nothing: the weekly job would still send it.
    code, out, _ = await run(
        capsys, "digest", "preview", "--leader", "GRACE.lindqvist@northfield.example",
        "--week", week, "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0 and out.strip().endswith("(Admissions and Research Office)")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--leader", "nobody@example.org"], "nobody in the organisation file has this email"),
        (["--leader", "tom.becker@northfield.example"], "Tom Becker leads no team"),
        (["--all", "--week", "2026-13"], "write an ISO week like 2026-W12"),
        (["--all", "--week", "2025-W53"], "2025 has no week 53"),
    ],
)
async def test_bad_requests_are_usage_errors(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, args: list[str], message: str
) -> None:
    week = ["--week", "2026-W10"] if "--week" not in args else []
    code, _, err = await run(capsys, "digest", "preview", *args, *week, "--out", str(tmp_path))
    assert code == 2 and message in err
    code, _, err = await run(capsys, "demo", "simulate", "--weeks", "53")
    assert code == 2 and "--weeks 53: give 1 to 52" in err
