"""The weekly leader digest chart: a PNG drawn headless, readable on a phone.

Two panels, stacked (a phone shows an image full width, so a tall image keeps its text large
where side-by-side panels would halve it): the last 8 weeks plus this one (questions answered as
bars, the share of people active as a line), then this week's mix of participation.

matplotlib is imported inside the functions: the bot must start without paying for it, and only
the digest job draws. Only the object-oriented API is used (`Figure` + `FigureCanvasAgg`, never
pyplot), so there is no global figure registry and no display; every style is passed explicitly
rather than through `rcParams`, so nothing here changes other code's matplotlib.
"""

from __future__ import annotations

import atexit
import io
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.digests.figures import MIX, DigestFigures, WeekPoint

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties
    from matplotlib.text import Text
    from PIL import Image

TEAMS_MAX_BYTES = 18_000
"""A Teams message (card JSON plus the image as a base64 data URI) must stay under ~28 KB."""

ALT_TEXT_MAX = 1_000

# Okabe–Ito colours (safe for the common colour-vision deficiencies; no red/green pair), with
# darker shades of the same hues for text so it keeps a contrast of at least 4.5:1 on white.
BLUE = "#0072B2"
PAST_BLUE = "#8CBBDD"
VERMILLION = "#D55E00"
BLUE_TEXT = "#005B8F"
VERMILLION_TEXT = "#A84300"
MIX_COLOUR = "#009E73"
INK = "#1F2933"
MUTED = "#52606D"
GRID = "#E4E7EB"
BACKGROUND = "#FFFFFF"

# The drawing is laid out in inches on one page size and rasterised at two resolutions, so the
# Teams image is the Slack image scaled down, with the same proportions and text.
PAGE = (6.4, 8.0)
SLACK_SIZE = (1200, 1500)
TEAMS_SIZE = (640, 800)
# Smaller tries for Teams when the first is over TEAMS_MAX_BYTES: (width px, palette colours).
TEAMS_TRIES = ((TEAMS_SIZE[0], 16), (TEAMS_SIZE[0], 12), (560, 12), (480, 8))

# Slack shows an image ~360 px wide on a phone: 360 px over 6.4 in is 56 px per inch, so 11 px
# of text there needs 11 / 56.25 * 72 = 14.1 pt. The smallest text here is 15 pt (11.7 px).
SMALL = 15.0
HEADING = 18.0
TITLE = 22.0


@dataclass(frozen=True, slots=True)
class _Fonts:
    regular: str
    bold: str

    def get(self, size: float, bold: bool = False) -> FontProperties:
        from matplotlib.font_manager import FontProperties

        return FontProperties(fname=self.bold if bold else self.regular, size=size)


def render(figures: DigestFigures, *, compact: bool = False) -> bytes:
    """The chart as PNG bytes: SLACK_SIZE, or TEAMS_SIZE-ish and ≤ TEAMS_MAX_BYTES if it can."""
    fig = build(figures)
    try:
        return _compact(fig) if compact else _encode(_raster(fig, SLACK_SIZE[0]))
    finally:
        _release(fig)


def _compact(fig: Figure) -> bytes:
    """The first of TEAMS_TRIES that fits TEAMS_MAX_BYTES, else the smallest of them."""
    made: list[bytes] = []
    rasters: dict[int, Image.Image] = {}
    for width, colours in TEAMS_TRIES:
        if width not in rasters:
            rasters[width] = _raster(fig, width)
        made.append(_encode(_quantised(rasters[width], colours)))
        if len(made[-1]) <= TEAMS_MAX_BYTES:
            return made[-1]
    return min(made, key=len)  # over the budget even so: the caller decides


def build(figures: DigestFigures) -> Figure:
    """The chart as a matplotlib Figure (PAGE inches), not yet rasterised."""
    _prepare_config_dir()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=PAGE, dpi=SLACK_SIZE[0] / PAGE[0], facecolor=BACKGROUND)
    FigureCanvasAgg(fig)  # attaches itself to the figure: no pyplot, no GUI backend
    fonts = _fonts()
    _header(fig, figures, fonts)
    _trend(fig, figures, fonts)
    _mix(fig, figures, fonts)
    return fig


def _prepare_config_dir() -> None:
    """Give matplotlib writable config and cache directories before its first import.

    Our Docker image runs as a user without a home directory. matplotlib would then make a
    temporary directory itself, but log a warning about it in every process; choosing it here
    keeps the logs clean. The font cache is then rebuilt once per process (~0.3 s).
    """
    if "matplotlib" in sys.modules or os.environ.get("MPLCONFIGDIR"):
        return
    try:
        home = Path.home()
        config = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config", "matplotlib")
        cache = Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache", "matplotlib")
        for wanted in (config, cache):
            wanted.mkdir(parents=True, exist_ok=True)  # as matplotlib itself would
        if os.access(config, os.W_OK) and os.access(cache, os.W_OK):
            return
    except (OSError, RuntimeError):  # RuntimeError: no home directory at all
        pass
    folder = tempfile.mkdtemp(prefix="evangelist-matplotlib-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["MPLCONFIGDIR"] = folder


def _fonts() -> _Fonts:
    # The DejaVu Sans files bundled with matplotlib, by path: the same glyphs (and bytes) on
    # every machine, whatever fonts the system has or the font cache prefers.
    import matplotlib

    ttf = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    return _Fonts(str(ttf / "DejaVuSans.ttf"), str(ttf / "DejaVuSans-Bold.ttf"))


def _canvas(fig: Figure) -> FigureCanvasAgg:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg)  # set by build()
    return canvas


def _at(fig: Figure, left: float, bottom: float, width: float, height: float) -> Axes:
    """Axes placed in inches from the bottom left, so the layout is the same at any size."""
    w, h = PAGE
    return fig.add_axes((left / w, bottom / h, width / w, height / h))


def _say(fig: Figure, x: float, y: float, text: str, font: FontProperties, **style: Any) -> Text:
    """Figure text at (x, y) inches; mathtext off, so a '$' in a name prints as itself."""
    style.setdefault("color", INK)
    return fig.text(x / PAGE[0], y / PAGE[1], text, fontproperties=font, parse_math=False, **style)


# -- the header ----------------------------------------------------------------------------

MARGIN = 0.35


def _header(fig: Figure, figures: DigestFigures, fonts: _Fonts) -> None:
    eyebrow = fonts.get(SMALL, bold=True)
    _say(fig, MARGIN, 7.72, "Weekly participation", eyebrow, va="top", color=BLUE_TEXT)
    title = _say(fig, MARGIN, 7.42, "", fonts.get(TITLE, bold=True), va="top")
    _fit(fig, title, figures.scope or "Everyone", fonts)
    when = [_week_words(figures.week), figures.days] + (["so far"] if figures.so_far else [])
    line = "  ·  ".join(w for w in when if w)
    _say(fig, MARGIN, 6.92, line, fonts.get(SMALL), va="top", color=MUTED)


def _fit(fig: Figure, text: Text, wanted: str, fonts: _Fonts) -> None:
    """Set `wanted` in the largest title size that fits the width, down to HEADING; past that,
    shorten it with an ellipsis (a long scope name; the message text carries it in full)."""
    renderer = _canvas(fig).get_renderer()  # type: ignore[no-untyped-call]
    limit = (PAGE[0] - 2 * MARGIN) * fig.dpi
    text.set_text(wanted)
    for size in (TITLE, TITLE - 2, HEADING):
        text.set_fontproperties(fonts.get(size, bold=True))
        if text.get_window_extent(renderer).width <= limit:
            return
    shown = wanted
    while text.get_window_extent(renderer).width > limit and len(shown) > 1:
        shown = shown[:-1]
        text.set_text(shown.rstrip(" ,—-") + "…")


# -- panel 1: the trend ----------------------------------------------------------------------


def _trend(fig: Figure, figures: DigestFigures, fonts: _Fonts) -> None:
    weeks = max(len(figures.trend) - 1, 0)
    heading = f"Last {weeks} weeks and this week" if weeks else "This week"
    _say(fig, MARGIN, 6.3, heading, fonts.get(HEADING, bold=True), va="top")
    shown = bool(_rates(figures.trend))
    _legend(fig, fonts, shown=shown)
    top = 5.4
    if not shown:  # say why there is no line, where the line's legend would be
        note = f"Participation not shown: group under {figures.min_group} people"
        _say(fig, MARGIN, 5.55, note, fonts.get(SMALL), color=MUTED, va="top")
        top = 5.05
    ax = _at(fig, 0.75, 3.55, PAGE[0] - 1.65, top - 3.55)
    _answered_bars(ax, figures, fonts)
    if shown:
        _rate_line(ax, figures, fonts)


def _rates(trend: list[WeekPoint]) -> list[float]:
    return [p.rate for p in trend if p.rate is not None]


# The share line, in the chart and in its legend.
LINE: dict[str, Any] = {
    "color": VERMILLION,
    "linewidth": 3,
    "marker": "o",
    "markersize": 9,
    "markeredgecolor": BACKGROUND,
    "markeredgewidth": 1.5,
}


def _legend(fig: Figure, fonts: _Fonts, *, shown: bool) -> None:
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    handles: list[Any] = [Patch(color=BLUE, label="Questions answered")]
    if shown:
        handles.append(Line2D([], [], label="% of people active", **LINE))
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(MARGIN / PAGE[0] - 0.012, 5.88 / PAGE[1]),
        ncols=2,
        frameon=False,
        prop=fonts.get(SMALL),
        labelcolor=INK,
        handlelength=1.6,
        handletextpad=0.5,
        columnspacing=1.4,
        borderaxespad=0,
    )


def _answered_bars(ax: Axes, figures: DigestFigures, fonts: _Fonts) -> None:
    weeks = range(len(figures.trend))
    answered = [p.answered for p in figures.trend]
    colours = [PAST_BLUE] * (len(answered) - 1) + [BLUE]
    ax.bar(weeks, answered, width=0.62, color=colours, zorder=2)
    step = _nice_step(max(answered, default=0) / 4)
    ticks = [step * n for n in range(5)]
    ax.set_ylim(0, ticks[-1])
    ax.set_yticks(ticks, [str(t) for t in ticks], fontproperties=fonts.get(SMALL), color=BLUE_TEXT)
    labels = [_short(p.label) for p in figures.trend]
    if figures.so_far and labels:
        labels[-1] += "\nso far"
    ax.set_xticks(list(weeks), labels, fontproperties=fonts.get(SMALL), color=INK)
    if labels:  # this week's label in its bar's colour (bold would touch last week's)
        ax.get_xticklabels()[-1].set_color(BLUE_TEXT)
    ax.set_xlim(-0.55, len(answered) - 0.45)
    _plain(ax)
    ax.grid(axis="y", color=GRID, linewidth=1.2, zorder=0)


def _rate_line(ax: Axes, figures: DigestFigures, fonts: _Fonts) -> None:
    share = ax.twinx()
    # NaN leaves a gap for a week that was under the threshold; unclipped so 0 % and 100 %
    # markers are drawn whole.
    values = [float("nan") if p.rate is None else p.rate * 100 for p in figures.trend]
    share.plot(range(len(values)), values, zorder=3, clip_on=False, **LINE)
    share.set_ylim(0, 100)
    ticks = [0, 25, 50, 75, 100]
    share.set_yticks(
        ticks, [f"{t}%" for t in ticks], fontproperties=fonts.get(SMALL), color=VERMILLION_TEXT
    )
    _plain(share)
    if values and values[-1] == values[-1]:  # not NaN
        before = values[-2] if len(values) > 1 else values[-1]
        _label_this_week(share, len(values) - 1, values[-1], before, fonts)


def _label_this_week(share: Axes, x: int, value: float, before: float, fonts: _Fonts) -> None:
    """This week's share written at its point, on the side away from the line coming in (and
    away from the legend near 100 %, the week labels near 0 %), on white in case they cross."""
    below = value > 80 or (before > value and value > 20)
    share.annotate(
        f"{value:.0f}%",
        (x, value),
        xytext=(0, -14 if below else 14),
        textcoords="offset points",
        ha="center",
        va="top" if below else "bottom",
        fontproperties=fonts.get(SMALL, bold=True),
        color=VERMILLION_TEXT,
        bbox={"boxstyle": "round,pad=0.1", "facecolor": BACKGROUND, "edgecolor": "none"},
    )


def _plain(ax: Axes) -> None:
    """No frame or tick marks: the grid and the labels carry the scale."""
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.tick_params(length=0, pad=6)


def _nice_step(raw: float) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50… that is at least `raw` (1 when there is no data)."""
    decade = 1
    while True:
        for step in (decade, 2 * decade, 5 * decade):
            if step >= raw:
                return step
        decade *= 10


def _short(label: str) -> str:
    """'2026-W05' → 'W05'."""
    return label.rsplit("-", 1)[-1]


def _week_words(label: str) -> str:
    """'2026-W05' → 'Week 5' (anything else as it is)."""
    short = _short(label)
    return f"Week {int(short[1:])}" if short[:1] == "W" and short[1:].isdigit() else label


# -- panel 2: this week's mix -----------------------------------------------------------------


def _mix(fig: Figure, figures: DigestFigures, fonts: _Fonts) -> None:
    heading = "This week's mix" + (" so far" if figures.so_far else "")
    _say(fig, MARGIN, 2.75, heading, fonts.get(HEADING, bold=True), va="top")
    if figures.this is None:
        note = f"Not shown: this group has fewer than {figures.min_group} people."
        _say(fig, MARGIN, 2.3, note, fonts.get(SMALL), color=MUTED, va="top")
        return
    rows = sorted(
        ((n, k) for k, n in figures.this.mix.items() if n > 0), key=lambda r: (-r[0], r[1])
    )
    if not rows:
        note = "Nothing yet this week." if figures.so_far else "No participation this week."
        _say(fig, MARGIN, 2.3, note, fonts.get(SMALL), color=MUTED, va="top")
        return
    _mix_bars(fig, rows, fonts)


def _mix_bars(fig: Figure, rows: list[tuple[int, str]], fonts: _Fonts) -> None:
    slots = max(len(rows), len(MIX))
    ax = _at(fig, MARGIN, 0.25, PAGE[0] - 2 * MARGIN, 2.05)
    values = [n for n, _ in rows]
    ax.barh(range(len(rows)), values, height=0.66, color=MIX_COLOUR, zorder=2)
    ax.set_yticks(
        range(len(rows)), [k for _, k in rows], fontproperties=fonts.get(SMALL), color=INK
    )
    ax.set_ylim(slots - 0.5, -0.5)
    _plain(ax)
    ax.set_xticks([])
    _shift_right_of_labels(fig, ax)
    room = 1.18  # headroom on the right for the value written at the longest bar's end
    ax.set_xlim(0, max(values) * room)
    for y, n in enumerate(values):
        ax.annotate(
            str(n),
            (n, y),
            xytext=(6, 0),
            textcoords="offset points",
            va="center",
            fontproperties=fonts.get(SMALL, bold=True),
            color=INK,
        )


def _shift_right_of_labels(fig: Figure, ax: Axes) -> None:
    """Start the bars just right of the longest kind name, so long names never clip."""
    renderer = _canvas(fig).get_renderer()  # type: ignore[no-untyped-call]
    widest = max(t.get_window_extent(renderer).width for t in ax.get_yticklabels())
    inches = widest / fig.dpi + 0.15
    box = ax.get_position()
    ax.set_position((box.x0 + inches / PAGE[0], box.y0, box.width - inches / PAGE[0], box.height))


# -- PNG ------------------------------------------------------------------------------------


def _release(fig: Figure) -> None:
    """Free the pixel buffer now rather than at the next full garbage collection.

    A drawn figure is a web of reference cycles, so only the cyclic collector frees it, and
    every Text keeps the renderer it was drawn with (7 MB of pixels at the Slack size). Over 50
    charts about 10 figures waited at once: peak RSS 160 MiB instead of 100. A gc.collect()
    would fix it too but takes 150-250 ms in the bot's process. `_renderer` is private; were it
    renamed, this would only stop helping (None is its initial value).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        setattr(text, "_renderer", None)  # noqa: B010 (a private attribute, on purpose)
    FigureCanvasAgg(fig)  # a fresh canvas: the old one and its renderer go


def _raster(fig: Figure, width: int) -> Image.Image:
    """Draw at `width` px wide (the layout is in inches, so only the resolution changes)."""
    from PIL import Image

    fig.set_dpi(width / PAGE[0])
    canvas = _canvas(fig)
    canvas.draw()  # type: ignore[no-untyped-call]
    size = canvas.get_width_height(physical=True)
    pixels = canvas.buffer_rgba()  # type: ignore[no-untyped-call]
    rgba = Image.frombuffer("RGBA", size, pixels, "raw", "RGBA", 0, 1)
    return rgba.convert("RGB")  # opaque white background: an alpha channel is dead weight


def _quantised(image: Image.Image, colours: int) -> Image.Image:
    """Map to a fixed palette of the chart's own colours plus anti-aliasing blends.

    A fixed palette keeps every brand colour exact (an adaptive one merged the line's vermillion
    into the greys) and is deterministic. Flat palette images compress far better than RGB.
    """
    from PIL import Image

    palette = Image.new("P", (1, 1))
    palette.putpalette([channel for colour in _palette(colours) for channel in colour])
    return image.quantize(palette=palette, dither=Image.Dither.NONE)


def _palette(colours: int) -> list[tuple[int, int, int]]:
    solid = [BACKGROUND, INK, BLUE, VERMILLION, MIX_COLOUR, PAST_BLUE, GRID, MUTED]
    if colours > len(solid):  # text shades, then half-tones for the edges of text and lines
        solid += [BLUE_TEXT, VERMILLION_TEXT]
        solid += [_blend(c, 0.5) for c in (INK, BLUE, VERMILLION, MIX_COLOUR)]
        solid += [_blend(INK, 0.25), _blend(INK, 0.75)]
    return [_rgb(c) for c in solid[:colours]]


def _blend(colour: str, share: float) -> str:
    """`colour` at `share` opacity over white, as '#rrggbb'."""
    r, g, b = _rgb(colour)
    return "#" + "".join(f"{round(255 - (255 - c) * share):02x}" for c in (r, g, b))


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _encode(image: Image.Image) -> bytes:
    """PNG bytes. Pillow writes no date and no 'Software' chunk: same figures, same bytes."""
    if image.mode != "P":  # Slack: zlib's default level; level 9 costs 4× the time for 3 %
        return _saved(image)
    # With ≤ 16 palette entries Pillow packs two pixels a byte, which zlib compresses ~15 %
    # worse than a byte a pixel; one unused 17th entry keeps a byte a pixel.
    entries = image.getpalette() or []
    image.putpalette(entries + [255, 255, 255] * max(0, 17 - len(entries) // 3))
    return _saved(image, optimize=True)


def _saved(image: Image.Image, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", **options)
    return buffer.getvalue()


# -- alt text -------------------------------------------------------------------------------


def alt_text(figures: DigestFigures) -> str:
    """What the chart shows, in words, for screen readers (at most ALT_TEXT_MAX characters)."""
    when = f"{figures.week}, {figures.days}" + (", so far" if figures.so_far else "")
    parts = [f"Participation chart for {figures.scope} ({when})."]
    parts.append(_trend_words(figures))
    parts.append(_answered_words(figures))
    parts.append(_mix_words(figures))
    text = " ".join(p for p in parts if p)
    return text if len(text) <= ALT_TEXT_MAX else text[: ALT_TEXT_MAX - 1] + "…"


def _trend_words(figures: DigestFigures) -> str:
    shown = [p for p in figures.trend if p.rate is not None]
    if not shown:
        return f"Participation is not shown for groups under {figures.min_group} people."
    first, last = shown[0], shown[-1]
    high = max(shown, key=lambda p: p.rate or 0.0)
    low = min(shown, key=lambda p: p.rate or 0.0)
    when = _short(last.label)
    when = f"this week ({when})" if last is figures.trend[-1] else f"in {when}"
    words = f"People active: {_pct(first.rate)} in {_short(first.label)}, "
    words += f"{_pct(last.rate)} {when}; "
    if high.rate == low.rate:
        words += "the same every week shown."
    else:
        words += f"highest {_pct(high.rate)} in {_short(high.label)}, "
        words += f"lowest {_pct(low.rate)} in {_short(low.label)}."
    if len(shown) < len(figures.trend):
        words += f" Weeks when the group was under {figures.min_group} people are not shown."
    return words


def _answered_words(figures: DigestFigures) -> str:
    if not figures.trend:
        return ""
    this = figures.trend[-1].answered
    words = f"Questions answered: {this} this week" + (" so far" if figures.so_far else "")
    if len(figures.trend) > 1:
        words += f", {figures.trend[-2].answered} the week before"
    return words + "."


def _mix_words(figures: DigestFigures) -> str:
    if figures.this is None:
        return ""
    rows = sorted(((-n, k) for k, n in figures.this.mix.items() if n > 0))[:3]
    if not rows:
        return f"No participation recorded{' yet' if figures.so_far else ''} this week."
    return "This week's top activities: " + ", ".join(f"{k} {-n}" for n, k in rows) + "."


def _pct(rate: float | None) -> str:
    return f"{(rate or 0.0) * 100:.0f}%"
