"""The weekly digest chart: headless, readable at phone size, small for Teams, deterministic."""

from __future__ import annotations

import dataclasses
import gc
import io
import logging
import os
import subprocess
import sys
import warnings
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from bot.digests import chart
from bot.digests.figures import DeskWeek, DigestFigures, PeopleWeek, WeekPoint

ROOT = Path(__file__).resolve().parents[2]
RATES = [0.31, 0.28, 0.35, 0.33, 0.41, 0.45, 0.38, 0.40, 0.42]
ANSWERED = [12, 9, 15, 11, 18, 22, 14, 19, 16]
MIX = {
    "Answered questions": 16,
    "Claimed questions": 21,
    "Comments on our pages": 9,
    "Nudges done": 27,
    "Links opened": 48,
    "Experiments tried": 4,
    "Reactions": 63,
}


def realistic(**changes: object) -> DigestFigures:
    """A complete week for a group of 120 people, 9 weeks of trend (W04…W12)."""
    trend = [
        WeekPoint(f"2026-W{4 + n:02d}", rate, answered)
        for n, (rate, answered) in enumerate(zip(RATES, ANSWERED, strict=True))
    ]
    this = PeopleWeek(people=120, active=50, mix=dict(MIX))
    figures = DigestFigures(
        leader="U1",
        leader_name="Dana Reyes",
        scope="Admissions and Research Office",
        week="2026-W12",
        days="16–22 Mar 2026",
        zone="Europe/London",
        so_far=False,
        min_group=5,
        people=120,
        this=this,
        previous=PeopleWeek(people=120, active=48),
        average_rate=0.36,
        desk=DeskWeek(routed=20, claimed=18, answered=16),
        desk_before=DeskWeek(routed=22, claimed=20, answered=19),
        trend=trend,
    )
    return dataclasses.replace(figures, **changes)  # type: ignore[arg-type]


def withheld() -> DigestFigures:
    """A group under the privacy threshold: no figures about people at all."""
    figures = realistic(people=3, this=None, previous=None, average_rate=None)
    trend = [WeekPoint(p.label, None, p.answered) for p in figures.trend]
    return dataclasses.replace(figures, trend=trend)


def all_zero() -> DigestFigures:
    """Nobody did anything and nothing was answered, for 9 weeks."""
    figures = realistic()
    trend = [WeekPoint(p.label, 0.0, 0) for p in figures.trend]
    this = PeopleWeek(people=12, active=0, mix={kind: 0 for kind in MIX})
    return dataclasses.replace(figures, trend=trend, this=this, people=12)


def so_far() -> DigestFigures:
    """Wednesday: this week is incomplete, and one week reached 100 %."""
    figures = realistic(so_far=True)
    trend = list(figures.trend)
    trend[5] = WeekPoint(trend[5].label, 1.0, 30)
    trend[-1] = WeekPoint(trend[-1].label, 0.0, 0)
    this = PeopleWeek(people=120, active=0, mix={"Reactions": 0})
    return dataclasses.replace(figures, trend=trend, this=this)


CASES = {"realistic": realistic, "withheld": withheld, "all_zero": all_zero, "so_far": so_far}


def rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def opened(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    image.load()
    return image


def count(image: Image.Image, colour: str) -> int:
    pixels = image.convert("RGB").getcolors(maxcolors=1 << 24) or []
    return sum(n for n, c in pixels if c == rgb(colour))


@pytest.fixture(autouse=True)
def headless(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND"):
        monkeypatch.delenv(name, raising=False)


# -- rendering -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("compact", [False, True])
def test_renders_headless_without_warnings(
    case: str, compact: bool, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING), warnings.catch_warnings():
        warnings.simplefilter("error")
        png = chart.render(CASES[case](), compact=compact)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    image = opened(png)
    assert image.size == (chart.TEAMS_SIZE if compact else chart.SLACK_SIZE)
    # Not blank: text and bars cover a fair share of the page, in several colours.
    inked = sum(image.convert("L").histogram()[:245])
    assert inked / (image.width * image.height) > 0.04
    assert len(image.convert("RGB").getcolors(maxcolors=1 << 24) or []) >= 5
    if compact:  # fits a Teams card, as a small palette image
        assert len(png) <= chart.TEAMS_MAX_BYTES
        assert image.mode == "P"
        assert len(image.getcolors() or []) <= 16
    else:
        assert image.mode == "RGB"


def test_slack_chart_draws_the_bars_and_the_line() -> None:
    figures = realistic()
    image = opened(chart.render(figures))
    assert image.mode == "RGB"
    # Sample the middle of this week's bar and of an earlier one, where build() put them.
    fig = chart.build(figures)
    bars = fig.axes[0]
    height = image.height
    for week, colour in ((8, chart.BLUE), (5, chart.PAST_BLUE)):
        x, y = bars.transData.transform((week, ANSWERED[week] / 2))
        assert image.getpixel((round(x), round(height - y))) == rgb(colour)
    assert count(image, chart.BLUE) > 5_000
    assert count(image, chart.VERMILLION) > 1_000
    assert count(image, chart.MIX_COLOUR) > 20_000


def test_withheld_chart_draws_no_line_and_no_mix_and_says_why() -> None:
    figures = withheld()
    image = opened(chart.render(figures))
    assert count(image, chart.BLUE) > 5_000  # the public's questions are still shown
    assert count(image, chart.VERMILLION) == 0
    assert count(image, chart.MIX_COLOUR) == 0
    texts = shown_texts(chart.build(figures))
    assert "Participation not shown: group under 5 people" in texts
    assert "Not shown: this group has fewer than 5 people." in texts


def test_so_far_labels_this_week_and_empty_mix_says_so() -> None:
    fig = chart.build(so_far())
    assert fig.axes[0].get_xticklabels()[-1].get_text() == "W12\nso far"
    texts = shown_texts(fig)
    assert "This week's mix so far" in texts
    assert "Nothing yet this week." in texts
    assert "Week 12  ·  16–22 Mar 2026  ·  so far" in texts


def test_mix_skips_zero_kinds_and_sorts_descending() -> None:
    mix = dict(MIX, **{"Nudges done": 0})
    figures = realistic(this=PeopleWeek(people=120, active=50, mix=mix))
    mix_axes = chart.build(figures).axes[-1]
    labels = [t.get_text() for t in mix_axes.get_yticklabels()]
    assert labels == [k for k, n in sorted(mix.items(), key=lambda kv: -kv[1]) if n > 0]
    written = [t.get_text() for t in mix_axes.texts]
    assert written == ["63", "48", "21", "16", "9", "4"]


def test_text_is_readable_on_a_phone() -> None:
    """Scaled to 360 px wide (Slack on a phone), no text is under 11 px."""
    from matplotlib.text import Text

    for make in CASES.values():
        fig = chart.build(make())
        chart._canvas(fig).draw()  # type: ignore[no-untyped-call]
        texts = [t for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
        assert len(texts) > 10  # tick labels included
        for text in texts:
            pixels = float(text.get_fontsize()) / 72 * 360 / chart.PAGE[0]
            assert pixels >= 11, (text.get_text(), pixels)


def test_long_scope_is_shortened_to_fit() -> None:
    scope = "Faculty of Humanities, Arts, Social Sciences and Education — Student Recruitment"
    fig = chart.build(realistic(scope=scope))
    title = next(t for t in fig.texts if t.get_text().startswith("Faculty"))
    assert title.get_text().endswith("…")
    renderer = chart._canvas(fig).get_renderer()  # type: ignore[no-untyped-call]
    assert title.get_window_extent(renderer).x1 <= fig.bbox.width


def test_dollar_signs_are_not_mathtext() -> None:
    png = chart.render(realistic(scope="The $5 Fund and $10 Club"))
    assert opened(png).size == chart.SLACK_SIZE


def shown_texts(fig: object) -> set[str]:
    from matplotlib.figure import Figure
    from matplotlib.text import Text

    assert isinstance(fig, Figure)
    return {t.get_text() for t in fig.findobj(Text) if t.get_visible()}


# -- Teams -----------------------------------------------------------------------------------


def test_compact_keeps_the_chart_colours() -> None:
    image = opened(chart.render(realistic(), compact=True))
    for colour in (chart.BLUE, chart.PAST_BLUE, chart.VERMILLION, chart.MIX_COLOUR):
        assert count(image, colour) > 500, colour


def test_compact_returns_the_smallest_try_when_nothing_fits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    usual = chart.render(realistic(), compact=True)
    monkeypatch.setattr(chart, "TEAMS_MAX_BYTES", 1_000)
    smallest = chart.render(realistic(), compact=True)
    assert len(smallest) < len(usual)
    image = opened(smallest)
    assert image.width == min(width for width, _ in chart.TEAMS_TRIES)
    assert len(image.getcolors() or []) <= min(colours for _, colours in chart.TEAMS_TRIES)


# -- determinism -----------------------------------------------------------------------------


@pytest.mark.parametrize("compact", [False, True])
def test_same_figures_same_bytes(compact: bool) -> None:
    first = chart.render(realistic(), compact=compact)
    again = chart.render(DigestFigures.from_dict(realistic().to_dict()), compact=compact)
    assert first == again
    assert b"tEXt" not in first and b"tIME" not in first  # no Software chunk, no timestamp


def test_threads_draw_the_same_bytes() -> None:
    """No pyplot, no shared figure: charts drawn at once in threads match drawn one by one."""
    jobs = [(realistic, False), (withheld, True), (so_far, False), (realistic, True)]
    alone = [chart.render(make(), compact=compact) for make, compact in jobs]
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda job: chart.render(job[0](), compact=job[1]), jobs))
    assert together == alone


# -- alt text --------------------------------------------------------------------------------


def test_alt_text_states_the_trend() -> None:
    text = chart.alt_text(realistic())
    assert len(text) <= 1_000
    assert "Admissions and Research Office" in text
    assert "31% in W04" in text and "42% this week (W12)" in text
    assert "highest 45% in W09" in text and "lowest 28% in W05" in text
    assert "Questions answered: 16 this week, 19 the week before." in text
    assert "Reactions 63, Links opened 48, Nudges done 27." in text
    assert "Claimed questions" not in text  # only the top 3


def test_alt_text_is_honest_when_withheld() -> None:
    text = chart.alt_text(withheld())
    assert "Participation is not shown for groups under 5 people." in text
    assert "%" not in text
    assert "Questions answered: 16 this week, 19 the week before." in text


def test_alt_text_for_an_empty_and_an_incomplete_week() -> None:
    empty = chart.alt_text(all_zero())
    assert "0% in W04, 0% this week (W12); the same every week shown." in empty
    assert "No participation recorded this week." in empty
    partial = chart.alt_text(so_far())
    assert "highest 100% in W09" in partial and "lowest 0% in W12" in partial
    assert "Questions answered: 0 this week so far, 19 the week before." in partial
    assert "No participation recorded yet this week." in partial


def test_alt_text_is_capped() -> None:
    text = chart.alt_text(realistic(scope="Office " * 300))
    assert len(text) == chart.ALT_TEXT_MAX and text.endswith("…")


def test_render_frees_its_pixels_without_waiting_for_the_garbage_collector() -> None:
    fig = chart.build(realistic())
    chart._raster(fig, chart.SLACK_SIZE[0])
    renderer = weakref.ref(chart._canvas(fig).get_renderer())  # type: ignore[no-untyped-call]
    gc.disable()
    try:
        chart._release(fig)
        assert renderer() is None
    finally:
        gc.enable()


# -- the process around it -------------------------------------------------------------------


def test_no_home_no_display_no_pyplot(tmp_path: Path) -> None:
    """As the Docker image runs it: no writable home, no display. matplotlib is not imported
    until the first chart, pyplot never is, and nothing is logged or warned about."""
    not_a_directory = tmp_path / "home"
    not_a_directory.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MPL", "XDG_", "DISPLAY"))}
    env.update(HOME=str(not_a_directory), PYTHONPATH=str(ROOT))
    script = (
        "import sys, warnings\n"
        "warnings.simplefilter('error')\n"
        "from bot.digests import chart\n"
        "from tests.unit.test_digest_chart import realistic\n"
        "assert 'matplotlib' not in sys.modules\n"
        "png = chart.render(realistic(), compact=True)\n"
        "assert len(png) <= chart.TEAMS_MAX_BYTES\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "import os; print(os.environ['MPLCONFIGDIR'])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "evangelist-matplotlib-" in done.stdout
