"""Rolling CPU / memory history and PNG graphs for Pterodactyl game servers.

This module is deliberately independent of Discord and HTTP: it only keeps a short
history of resource samples per server and renders them to PNG bytes with matplotlib.

Data model
----------
* :class:`ServerMetricsGraphs` keeps the last :data:`MAX_DATA_POINTS` samples of one
  server in a FIFO ``deque`` (the oldest sample falls off when a new one is added).
  A sample is ``(timestamp, cpu_percent, memory_mb)``; ``cpu_percent`` uses the panel's
  convention where 100 % is one full vCPU/thread, ``memory_mb`` is in MiB.
* :class:`ServerMetricsManager` owns one history per server id and drops the histories
  of servers that disappear.

Graphs
------
``generate_cpu_graph`` / ``generate_memory_graph`` / ``generate_combined_graph`` return
PNG bytes, or ``None`` when there is no sample at all. A single sample is still drawn
(as a lone marker), which gives a valid but not very informative image: the bot is
expected to attach graphs only when :attr:`ServerMetricsGraphs.has_sufficient_data`
is true (two samples or more).

Image sizes are fixed (see :data:`SINGLE_FIGSIZE`, :data:`COMBINED_FIGSIZE` and
:data:`GRAPH_DPI`): single graphs are 800x300 px and the combined graph is 800x500 px.

The CPU axis is scaled to the server's allocation: ``cpu_limit`` is the panel's
``limits.cpu`` (100 = one thread); the axis top is the limit, or when the limit is 0
(unlimited) the observed peak rounded up to the next multiple of 100 (at least 100).
A server bursting above its limit gets the unlimited scaling, with the limit drawn as a
dashed red line, so no point is ever clipped.
The memory axis top is the memory limit in MiB when known (but never below the peak),
otherwise a round value above the peak. Values switch from MiB to GiB labels once the
axis reaches 1 GiB. The x axis shows seconds before the newest sample ("now", "-10s",
...) so that it reads the same in every Discord user's time zone; the newest sample's
UTC time is shown in the axis label.

Rendering performance and thread safety
---------------------------------------
Rendering uses only matplotlib's object API (``Figure`` + ``FigureCanvasAgg``), never
``pyplot``: no global figure registry is touched, nothing leaks, and every render owns
its own ``Figure``, so renders may run concurrently in worker threads (for example via
``asyncio.to_thread``). To stay fast the layout is fixed in pixels (no Axes, no
``tight_layout``), labels are pre-rendered text bitmaps kept in a small LRU cache, and
the PNG is written with minimal metadata and a low zlib compression level; see the
"Speed notes" comment below. ``bench/graph_bench.py`` compares the combined render with a
naive pyplot implementation (about 10x slower).

Importing this module has no side effects; matplotlib is imported lazily on the first
render.
"""

from __future__ import annotations

import functools
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from io import BytesIO
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.figure import Figure

log = logging.getLogger(__name__)

__all__ = [
    "BACKGROUND_COLOR",
    "COMBINED_FIGSIZE",
    "CPU_COLOR",
    "GRAPH_DPI",
    "MAX_DATA_POINTS",
    "MEMORY_COLOR",
    "MIN_POINTS_FOR_GRAPH",
    "SINGLE_FIGSIZE",
    "ManagerSummary",
    "MetricsSample",
    "MetricsSummary",
    "ServerMetricsGraphs",
    "ServerMetricsManager",
    "Trend",
    "cpu_axis_max",
    "format_cpu_limit",
    "format_memory",
    "memory_axis_max",
    "nice_ticks",
]

# --------------------------------------------------------------------------- constants

#: Number of samples kept per server (with a 10 s refresh: one minute of history).
MAX_DATA_POINTS = 6
#: Minimum number of samples before a graph is worth attaching.
MIN_POINTS_FOR_GRAPH = 2

#: Render resolution. 100 dpi keeps the pixel maths obvious (inches * 100 = pixels).
GRAPH_DPI = 100
#: CPU-only / memory-only graph size in inches -> 800x300 px at :data:`GRAPH_DPI`.
SINGLE_FIGSIZE = (8.0, 3.0)
#: Combined CPU + memory graph size in inches -> 800x500 px at :data:`GRAPH_DPI`.
COMBINED_FIGSIZE = (8.0, 5.0)

#: zlib level for the PNG encoder: 1 saves ~4 ms per graph over Pillow's default 6 and
#: the flat-coloured charts still compress well (~45 KiB for the combined graph).
PNG_COMPRESS_LEVEL = 1

#: Trend tolerance for CPU, in percentage points (of one thread).
CPU_TREND_TOLERANCE = 1.0
#: Trend tolerance for memory: the larger of this many MiB ...
MEMORY_TREND_TOLERANCE_MB = 1.0
#: ... and this fraction of the first sample.
MEMORY_TREND_TOLERANCE_RATIO = 0.01

# Discord dark-mode palette.
BACKGROUND_COLOR = "#2B2D31"  # figure background (Discord embed / sidebar grey)
AXES_COLOR = "#313338"  # plot area (Discord chat background)
TEXT_COLOR = "#DBDEE1"  # primary text
MUTED_TEXT_COLOR = "#B5BAC1"  # tick labels and secondary text
GRID_COLOR = "#3F4147"  # subtle grid
SPINE_COLOR = "#4E5058"
CPU_COLOR = "#5865F2"  # blurple
MEMORY_COLOR = "#57F287"  # green
LIMIT_COLOR = "#ED4245"  # red dashed limit line
FILL_ALPHA = 0.22

CPU_TEXT_COLOR = "#8F98F8"  # lighter blurple: readable as text on the dark background

# Pixel layout shared by all graphs (origin bottom-left, at GRAPH_DPI).
_MARGIN_LEFT_PX = 72  # y tick labels + rotated y label
_MARGIN_RIGHT_PX = 20
_MARGIN_TOP_PX = 64  # figure title + first panel title
_MARGIN_BOTTOM_PX = 46  # x tick labels + x label
_PANEL_GAP_PX = 38  # room for the lower panel's title in the combined graph
_YLABEL_X_PX = 16
_X_INSET_PX = 12  # keeps the first/last markers off the panel edges
_MIN_X_SPAN_S = 10.0  # x range used when there is a single sample
_MIN_X_LABEL_GAP_PX = 40

_HAIRLINE_PT = 72 / GRAPH_DPI  # exactly one pixel
_TEXT_SPRITE_CACHE_SIZE = 512  # repeating label bitmaps kept (0.5-30 KiB each)

_FONT_SIZE_TITLE = 13
_FONT_SIZE_AXES_TITLE = 10.5
_FONT_SIZE_LABEL = 9
_FONT_SIZE_TICKS = 8.5
_MAX_NAME_LENGTH = 48

Trend = Literal["increasing", "decreasing", "stable"]
GraphKind = Literal["cpu", "memory", "combined"]

# ------------------------------------------------------------------------ data classes


class MetricsSample(NamedTuple):
    """One resource sample of a server."""

    timestamp: float
    """Unix time in seconds."""
    cpu_percent: float
    """CPU usage where 100 is one full thread (the panel's ``cpu_absolute``)."""
    memory_mb: float
    """Memory usage in MiB."""


@dataclass(frozen=True, slots=True)
class MetricsSummary:
    """Statistics over the samples currently held for a server (zeros when empty)."""

    points: int
    cpu_min: float
    cpu_avg: float
    cpu_max: float
    memory_min_mb: float
    memory_avg_mb: float
    memory_max_mb: float
    cpu_trend: Trend
    memory_trend: Trend


@dataclass(frozen=True, slots=True)
class ManagerSummary:
    """Overview of everything a :class:`ServerMetricsManager` tracks."""

    servers_tracked: int
    total_points: int
    servers_with_sufficient_data: int


# ---------------------------------------------------------------------- pure helpers


def cpu_axis_max(cpu_limit: float, peak: float) -> float:
    """Top of the CPU axis in percent (100 = one thread).

    * ``cpu_limit > 0``: the limit itself; if the server bursts above its limit the axis
      grows to the next multiple of 100 above the peak so no point is clipped.
    * ``cpu_limit <= 0`` (unlimited): the peak rounded up to the next multiple of 100,
      at least 100.
    """
    peak = max(_finite(peak), 0.0)
    rounded_peak = max(100.0, math.ceil(peak / 100.0) * 100.0)
    limit = _finite(cpu_limit)
    if limit > 0:
        return limit if peak <= limit else rounded_peak
    return rounded_peak


def memory_axis_max(limit_mb: float, peak_mb: float) -> float:
    """Top of the memory axis in MiB.

    * ``limit_mb > 0``: the limit, but never below the peak.
    * otherwise the peak plus 20 % headroom rounded up to a power of two below 1 GiB
      (at least 64 MiB) or to a whole number of GiB above it.
    """
    peak = max(_finite(peak_mb), 0.0)
    limit = _finite(limit_mb)
    if limit > 0:
        return max(limit, peak)
    target = peak * 1.2
    if target <= 1024.0:
        top = 64.0
        while top < target:
            top *= 2.0
        return top
    return math.ceil(target / 1024.0) * 1024.0


def nice_ticks(top: float, max_ticks: int = 6, *, binary: bool = False) -> list[float]:
    """Evenly spaced "round" tick values from 0 up to ``top`` (inclusive when it lands).

    At most ``max_ticks`` values are returned. The step is 1, 2, 2.5 or 5 times a power
    of ten, or with ``binary=True`` (MiB axes) a power of two such as 64, 128 or 256.
    """
    if not top > 0 or not math.isfinite(top):
        return [0.0]
    intervals = max(max_ticks - 1, 1)
    raw_step = top / intervals
    if binary:
        step = 2.0 ** math.ceil(math.log2(raw_step))
    else:
        magnitude = 10.0 ** math.floor(math.log10(raw_step))
        step = magnitude * 10.0
        for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
            if factor * magnitude >= raw_step * (1 - 1e-9):
                step = factor * magnitude
                break
    count = math.floor(top / step + 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def format_cpu_limit(cpu_limit: float) -> str:
    """Human description of a panel CPU limit, e.g. ``"2 vCPU (200%)"``."""
    limit = _finite(cpu_limit)
    if limit <= 0:
        return "unlimited"
    vcpus = limit / 100.0
    vcpu_text = f"{vcpus:g}" if vcpus == round(vcpus, 2) else f"{vcpus:.2f}"
    return f"{vcpu_text} vCPU ({limit:g}%)"


def format_memory(mb: float) -> str:
    """``512 MiB`` / ``1.5 GiB`` / ``4 GiB`` style formatting of a MiB value."""
    value = _finite(mb)
    if value >= 1024.0:
        return f"{value / 1024.0:.2f}".rstrip("0").rstrip(".") + " GiB"
    return f"{value:.0f} MiB"


def _finite(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def _trend(first: float, last: float, tolerance: float) -> Trend:
    delta = last - first
    if delta > tolerance:
        return "increasing"
    if delta < -tolerance:
        return "decreasing"
    return "stable"


def _cpu_trend(samples: Sequence[MetricsSample]) -> Trend:
    if len(samples) < 2:
        return "stable"
    return _trend(samples[0].cpu_percent, samples[-1].cpu_percent, CPU_TREND_TOLERANCE)


def _memory_trend(samples: Sequence[MetricsSample]) -> Trend:
    if len(samples) < 2:
        return "stable"
    first = samples[0].memory_mb
    tolerance = max(MEMORY_TREND_TOLERANCE_MB, first * MEMORY_TREND_TOLERANCE_RATIO)
    return _trend(first, samples[-1].memory_mb, tolerance)


def _format_tick(value: float) -> str:
    """``50`` / ``0.5`` / ``0.25``: no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


# ---------------------------------------------------------------------- rendering core
#
# Speed notes (medians measured on the 800x500 combined graph with fresh data for every
# render; see bench/graph_bench.py, where the naive pyplot + tight_layout version takes
# ~150-200 ms on the development VM):
#
# * Axes/Axis machinery (Tick objects, auto locators, title/label placement measuring
#   tick-label boxes) dominated a first Axes-based version (~65 ms even without
#   tight_layout). The charts are tiny (<= 6 points) with a fixed pixel layout, so every
#   element is placed directly in figure pixels as plain artists: a Rectangle per plot
#   area, one LineCollection for the grid, a Polygon for the fill, a Line2D for the
#   series. Drawing all of them takes ~3 ms.
# * Text then dominated (~35 ms): matplotlib >= 3.10 lays text out twice per draw and
#   renders glyph by glyph from Python, and FreeType hinting costs ~20 us per glyph.
#   Each label is therefore rendered once into an RGBA bitmap with matplotlib's own
#   FT2Font (same font, hinting and antialiasing as Text); a tiny Artist blits it with
#   renderer.draw_image (~15 us). Repeating labels are cached (LRU); the three labels
#   holding new numbers (panel titles, time) are rendered every time (~1 ms each).
# * PNG: print_png without the Software tag and with zlib level 1: ~9 ms instead of
#   ~13 ms at Pillow's default level 6, for ~45 KiB instead of ~38 KiB. Most of the rest
#   is Pillow's per-row adaptive filter selection, which print_png cannot switch off.
# Result: ~17-25 ms per combined graph, about a tenth of the naive version.


@functools.cache
def _mpl() -> SimpleNamespace:
    """Import the object-oriented matplotlib pieces once, lazily (never pyplot).

    Also defines :class:`TextSprite`, the artist that blits a pre-rendered text bitmap.
    """
    import numpy as np
    from matplotlib.artist import Artist
    from matplotlib.backends.backend_agg import FigureCanvasAgg, get_hinting_flag
    from matplotlib.collections import LineCollection
    from matplotlib.colors import to_rgba
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties, findfont, get_font
    from matplotlib.lines import Line2D
    from matplotlib.patches import Polygon, Rectangle
    from matplotlib.transforms import IdentityTransform

    class TextSprite(Artist):
        """A cached RGBA text bitmap drawn with its lower-left corner at pixel (x, y)."""

        def __init__(self, rgba: Any, x: int, y: int, zorder: float) -> None:
            super().__init__()
            self._rgba = rgba
            self._x = x
            self._y = y
            self.set_zorder(zorder)

        def draw(self, renderer: Any) -> None:
            if not self.get_visible():
                return
            gc = renderer.new_gc()
            try:
                renderer.draw_image(gc, self._x, self._y, self._rgba)
            finally:
                gc.restore()
            self.stale = False

    return SimpleNamespace(
        np=np,
        Figure=Figure,
        FigureCanvasAgg=FigureCanvasAgg,
        FontProperties=FontProperties,
        IdentityTransform=IdentityTransform,
        Line2D=Line2D,
        LineCollection=LineCollection,
        Polygon=Polygon,
        Rectangle=Rectangle,
        TextSprite=TextSprite,
        findfont=findfont,
        get_font=get_font,
        get_hinting_flag=get_hinting_flag,
        to_rgba=to_rgba,
    )


@dataclass(frozen=True, slots=True)
class _Sprite:
    """Rendered text and the px it extends below the baseline.

    ``rgba`` is ``(h, w, 4)`` uint8 stored bottom row first (as Agg wants it) and is
    never mutated.
    """

    rgba: Any
    descent: float

    @property
    def width(self) -> int:
        return int(self.rgba.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgba.shape[0])


def _render_text(text: str, size: float, bold: bool, color: str, rotated: bool = False) -> _Sprite:
    """Render ``text`` to an RGBA bitmap with FreeType (matplotlib's own font stack).

    ``get_font`` hands out one FT2Font per thread, so concurrent calls are safe; the
    returned arrays are never written to and may be shared freely between threads.
    """
    mpl = _mpl()
    np = mpl.np
    prop = mpl.FontProperties(size=size, weight="bold" if bold else "normal")
    font = mpl.get_font(mpl.findfont(prop))
    font.clear()
    font.set_size(size, GRAPH_DPI)
    font.set_text(text, 0.0, flags=mpl.get_hinting_flag())
    font.draw_glyphs_to_bitmap(antialiased=True)
    mask = np.asarray(font.get_image())
    red, green, blue, alpha = mpl.to_rgba(color)
    rgba = np.empty((*mask.shape, 4), dtype=np.uint8)
    rgba[..., 0] = round(red * 255)
    rgba[..., 1] = round(green * 255)
    rgba[..., 2] = round(blue * 255)
    rgba[..., 3] = mask if alpha >= 1 else (mask * alpha).astype(np.uint8)
    if rotated:  # 90 degrees counter-clockwise: reads bottom to top
        rgba = np.rot90(rgba)
    # Agg's draw_image takes rows bottom-up (row 0 is the bottom of the image).
    rgba = np.ascontiguousarray(rgba[::-1])
    # Not flagged read-only because Agg's draw_image insists on a writeable buffer, but
    # the array is never modified after this point.
    return _Sprite(rgba, font.get_descent() / 64.0)


#: Cached variant for labels that repeat from render to render (ticks, axis labels,
#: titles). Labels holding fresh numbers bypass it so they cannot crowd it out.
_text_sprite = functools.lru_cache(maxsize=_TEXT_SPRITE_CACHE_SIZE)(_render_text)


def _digit_height(size: float, bold: bool) -> int:
    """Height of a digit at this size: the reference for "top"/"center" alignment."""
    return _text_sprite("0", size, bold, TEXT_COLOR).height


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """Immutable copy of one server's state taken under its lock for rendering."""

    server_name: str
    cpu_limit: float
    memory_limit_mb: float
    samples: tuple[MetricsSample, ...]


@dataclass(frozen=True, slots=True)
class _SeriesSpec:
    """Everything needed to draw one panel, in display units (percent, MiB or GiB)."""

    title: str
    title_color: str
    limit_text: str
    ylabel: str
    color: str
    values: tuple[float, ...]
    top: float
    ticks: tuple[float, ...]
    tick_labels: tuple[str, ...]
    limit_line: float | None


@dataclass(frozen=True, slots=True)
class _Box:
    """Plot area in figure pixels, origin bottom-left."""

    x0: float
    y0: float
    width: float
    height: float


def _cpu_spec(snap: _Snapshot) -> _SeriesSpec:
    cpus = tuple(s.cpu_percent for s in snap.samples)
    peak = max(cpus)
    top = cpu_axis_max(snap.cpu_limit, peak)
    ticks = tuple(nice_ticks(top))
    limit = snap.cpu_limit
    return _SeriesSpec(
        title=f"CPU  {cpus[-1]:.1f}%   avg {sum(cpus) / len(cpus):.1f}%  peak {peak:.1f}%",
        title_color=CPU_TEXT_COLOR,
        limit_text=f"limit: {format_cpu_limit(limit)}",
        ylabel="CPU (100% = 1 thread)",
        color=CPU_COLOR,
        values=cpus,
        top=top,
        ticks=ticks,
        tick_labels=tuple(f"{_format_tick(t)}%" for t in ticks),
        limit_line=limit if 0 < limit < top else None,
    )


def _memory_spec(snap: _Snapshot) -> _SeriesSpec:
    mems = tuple(s.memory_mb for s in snap.samples)
    peak = max(mems)
    top_mb = memory_axis_max(snap.memory_limit_mb, peak)
    scale, unit = (1024.0, "GiB") if top_mb >= 1024.0 else (1.0, "MiB")
    top = top_mb / scale
    ticks = tuple(nice_ticks(top, binary=unit == "MiB"))
    limit = snap.memory_limit_mb
    return _SeriesSpec(
        title=(
            f"Memory  {format_memory(mems[-1])}   avg {format_memory(sum(mems) / len(mems))}"
            f"  peak {format_memory(peak)}"
        ),
        title_color=MEMORY_COLOR,
        limit_text=f"limit: {format_memory(limit) if limit > 0 else 'unlimited'}",
        ylabel=f"Memory ({unit})",
        color=MEMORY_COLOR,
        values=tuple(m / scale for m in mems),
        top=top,
        ticks=ticks,
        tick_labels=tuple(_format_tick(t) for t in ticks),
        limit_line=limit / scale if 0 < limit / scale < top else None,
    )


def _x_offsets(samples: Sequence[MetricsSample]) -> tuple[float, ...]:
    """Seconds relative to the newest sample (<= 0)."""
    newest = samples[-1].timestamp
    return tuple(sample.timestamp - newest for sample in samples)


def _x_tick_label(offset: float) -> str:
    return "now" if abs(offset) < 0.5 else f"{offset:.0f}s"


class _PixelPainter:
    """Adds artists to a Figure using figure pixel coordinates (origin bottom-left)."""

    def __init__(self, fig: Figure) -> None:
        self.fig = fig
        self._mpl = _mpl()
        # One transform per render: transforms keep parent links, so never share them
        # between threads.
        self._transform = self._mpl.IdentityTransform()

    def rect(self, box: _Box, color: str, zorder: float) -> None:
        patch = self._mpl.Rectangle(
            (box.x0, box.y0),
            box.width,
            box.height,
            facecolor=color,
            linewidth=0,
            antialiased=False,
            transform=self._transform,
            zorder=zorder,
        )
        self.fig.add_artist(patch)

    def segments(self, segments: list[list[tuple[float, float]]], color: str, zorder: float) -> None:
        if not segments:
            return
        collection = self._mpl.LineCollection(
            segments,
            colors=color,
            linewidths=_HAIRLINE_PT,
            antialiaseds=False,
            transform=self._transform,
            zorder=zorder,
        )
        self.fig.add_artist(collection)

    def polygon(self, points: list[tuple[float, float]], color: str, alpha: float, zorder: float) -> None:
        patch = self._mpl.Polygon(
            points,
            closed=True,
            facecolor=color,
            alpha=alpha,
            linewidth=0,
            transform=self._transform,
            zorder=zorder,
        )
        self.fig.add_artist(patch)

    def line(self, xs: Sequence[float], ys: Sequence[float], zorder: float, **style: Any) -> None:
        self.fig.add_artist(self._mpl.Line2D(xs, ys, transform=self._transform, zorder=zorder, **style))

    def text(
        self,
        x: float,
        y: float,
        text: str,
        *,
        size: float,
        color: str,
        bold: bool = False,
        ha: Literal["left", "center", "right"] = "left",
        va: Literal["baseline", "top", "center"] = "baseline",
        rotated: bool = False,
        cache: bool = True,
    ) -> float:
        """Draw ``text`` anchored at (x, y); returns its width in pixels.

        Horizontal text is aligned on its baseline, with "top"/"center" measured from
        the height of a digit so labels with and without ascenders line up. Rotated text
        (the y labels) is always centred on (x, y). ``cache=False`` is for one-off
        strings (current values, timestamps).
        """
        if not text:
            return 0.0
        sprite = (_text_sprite if cache else _render_text)(text, size, bold, color, rotated)
        if rotated:
            left = x - sprite.width / 2
            bottom = y - sprite.height / 2
        else:
            left = x - {"left": 0.0, "center": sprite.width / 2, "right": sprite.width}[ha]
            digit = _digit_height(size, bold)
            baseline = y - {"baseline": 0.0, "top": digit, "center": digit / 2}[va]
            bottom = baseline - sprite.descent
        self.fig.add_artist(self._mpl.TextSprite(sprite.rgba, round(left), round(bottom), zorder=6))
        return float(sprite.width)


def _draw_panel(
    painter: _PixelPainter,
    spec: _SeriesSpec,
    box: _Box,
    xs: Sequence[float],
    x_labels: bool,
    newest: float,
) -> None:
    """Draw one chart (background, grid, fill, line, labels) inside ``box``."""
    span = max(-min(xs), _MIN_X_SPAN_S)
    usable = box.width - 2 * _X_INSET_PX
    right = box.x0 + box.width

    def px(offset: float) -> float:
        # min(): a sample stamped after the newest one (clock jump) stays in the box.
        return box.x0 + _X_INSET_PX + (min(offset, 0.0) + span) / span * usable

    def py(value: float) -> float:
        return box.y0 + min(max(value, 0.0), spec.top) / spec.top * box.height

    painter.rect(box, AXES_COLOR, zorder=0)

    grid: list[list[tuple[float, float]]] = [[(box.x0, py(t)), (right, py(t))] for t in spec.ticks if t > 0]
    tick_offsets = xs if len(xs) > 1 else (0.0,)
    grid += [[(px(x), box.y0), (px(x), box.y0 + box.height)] for x in tick_offsets]
    painter.segments(grid, GRID_COLOR, zorder=1)

    xpix = [px(x) for x in xs]
    ypix = [py(v) for v in spec.values]
    if len(xs) > 1:
        outline = [(xpix[0], box.y0), *zip(xpix, ypix, strict=True), (xpix[-1], box.y0)]
        painter.polygon(outline, spec.color, FILL_ALPHA, zorder=2)
    if spec.limit_line is not None:
        y = py(spec.limit_line)
        painter.line(
            [box.x0, right], [y, y], zorder=3, color=LIMIT_COLOR, linewidth=1.0, linestyle=(0, (4, 3))
        )
    painter.line(
        xpix,
        ypix,
        zorder=4,
        color=spec.color,
        linewidth=2.0,
        marker="o",
        markersize=5 if len(xs) > 1 else 8,  # a lone sample gets a bigger dot
        markerfacecolor=spec.color,
        markeredgecolor=AXES_COLOR,
        markeredgewidth=1.0,
        solid_joinstyle="round",
        solid_capstyle="round",
    )
    painter.line(
        [box.x0, box.x0, right],
        [box.y0 + box.height, box.y0, box.y0],
        zorder=5,
        color=SPINE_COLOR,
        linewidth=_HAIRLINE_PT,
        antialiased=False,
    )

    # Labels.
    for value, label in zip(spec.ticks, spec.tick_labels, strict=True):
        painter.text(
            box.x0 - 6,
            py(value),
            label,
            size=_FONT_SIZE_TICKS,
            color=MUTED_TEXT_COLOR,
            ha="right",
            va="center",
        )
    painter.text(
        _YLABEL_X_PX,
        box.y0 + box.height / 2,
        spec.ylabel,
        size=_FONT_SIZE_LABEL,
        color=TEXT_COLOR,
        rotated=True,
    )
    title_y = box.y0 + box.height + 9
    painter.text(
        box.x0,
        title_y,
        spec.title,
        size=_FONT_SIZE_AXES_TITLE,
        color=spec.title_color,
        bold=True,
        cache=False,
    )
    painter.text(right, title_y, spec.limit_text, size=_FONT_SIZE_LABEL, color=MUTED_TEXT_COLOR, ha="right")
    if not x_labels:
        return
    last_label_px = math.inf
    for offset in reversed(tick_offsets):  # newest first; skip labels that would collide
        x = px(offset)
        if last_label_px - x < _MIN_X_LABEL_GAP_PX:
            continue
        last_label_px = x
        painter.text(
            x,
            box.y0 - 6,
            _x_tick_label(offset),
            size=_FONT_SIZE_TICKS,
            color=MUTED_TEXT_COLOR,
            ha="center",
            va="top",
        )
    stamp = time.strftime("%H:%M:%S", time.gmtime(newest))
    painter.text(
        box.x0 + box.width / 2,
        box.y0 - 24,
        f"seconds before latest sample ({stamp} UTC)",
        size=_FONT_SIZE_LABEL,
        color=MUTED_TEXT_COLOR,
        ha="center",
        va="top",
        cache=False,
    )


def _display_name(name: str) -> str:
    """Server name on one line, cut to :data:`_MAX_NAME_LENGTH` characters."""
    name = " ".join(str(name).split()) or "Unnamed server"
    if len(name) > _MAX_NAME_LENGTH:
        name = name[: _MAX_NAME_LENGTH - 1].rstrip() + "\u2026"
    return name


def _drop_missing_glyphs(text: str, size: float, bold: bool) -> str:
    """``text`` without the characters the font used for it cannot draw."""
    if text.isascii():
        return text
    mpl = _mpl()
    font = mpl.get_font(mpl.findfont(mpl.FontProperties(size=size, weight="bold" if bold else "normal")))
    return "".join(ch for ch in text if ch.isspace() or font.get_char_index(ord(ch)) != 0)


def _fit_title(server_name: str, subtitle: str, max_width_px: float) -> str:
    """``"<name> - <subtitle>"``, shortening the name until the title fits the width.

    Characters the title font has no glyph for (emoji and the like, common in server
    names) are dropped rather than drawn as empty boxes with a warning per name.
    """
    name = _display_name(_drop_missing_glyphs(str(server_name), _FONT_SIZE_TITLE, bold=True))
    while True:
        title = f"{name} \u2014 {subtitle}"
        width = _text_sprite(title, _FONT_SIZE_TITLE, True, TEXT_COLOR).width
        if width <= max_width_px or len(name) <= 4:
            return title
        keep = max(min(int(len(name) * max_width_px / width) - 2, len(name) - 2), 3)
        name = name[:keep].rstrip() + "\u2026"


def _layout(kind: GraphKind) -> tuple[tuple[float, float], list[_Box]]:
    """Figure size in inches and the plot boxes (pixels) for one graph kind."""
    figsize = COMBINED_FIGSIZE if kind == "combined" else SINGLE_FIGSIZE
    width_px, height_px = figsize[0] * GRAPH_DPI, figsize[1] * GRAPH_DPI
    plot_width = width_px - _MARGIN_LEFT_PX - _MARGIN_RIGHT_PX
    available = height_px - _MARGIN_TOP_PX - _MARGIN_BOTTOM_PX
    if kind != "combined":
        return figsize, [_Box(_MARGIN_LEFT_PX, _MARGIN_BOTTOM_PX, plot_width, available)]
    panel_height = (available - _PANEL_GAP_PX) / 2
    upper = _Box(_MARGIN_LEFT_PX, _MARGIN_BOTTOM_PX + panel_height + _PANEL_GAP_PX, plot_width, panel_height)
    lower = _Box(_MARGIN_LEFT_PX, _MARGIN_BOTTOM_PX, plot_width, panel_height)
    return figsize, [upper, lower]


def _render(snap: _Snapshot, kind: GraphKind) -> bytes:
    """Draw one graph from a snapshot and return PNG bytes (samples must be non-empty)."""
    mpl = _mpl()
    figsize, boxes = _layout(kind)
    fig = mpl.Figure(figsize=figsize, dpi=GRAPH_DPI, facecolor=BACKGROUND_COLOR)
    canvas = mpl.FigureCanvasAgg(fig)
    painter = _PixelPainter(fig)
    xs = _x_offsets(snap.samples)
    newest = snap.samples[-1].timestamp

    if kind == "combined":
        specs = [_cpu_spec(snap), _memory_spec(snap)]
        subtitle = "resource usage"
    elif kind == "cpu":
        specs = [_cpu_spec(snap)]
        subtitle = "CPU usage"
    else:
        specs = [_memory_spec(snap)]
        subtitle = "memory usage"
    for index, (spec, box) in enumerate(zip(specs, boxes, strict=True)):
        _draw_panel(painter, spec, box, xs, x_labels=index == len(specs) - 1, newest=newest)

    painter.text(
        _MARGIN_LEFT_PX,
        figsize[1] * GRAPH_DPI - 10,
        _fit_title(snap.server_name, subtitle, figsize[0] * GRAPH_DPI - _MARGIN_LEFT_PX - _MARGIN_RIGHT_PX),
        size=_FONT_SIZE_TITLE,
        color=TEXT_COLOR,
        bold=True,
        va="top",
    )

    buffer = BytesIO()
    canvas.print_png(
        buffer,
        metadata={"Software": None},
        pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL},
    )
    return buffer.getvalue()


# ------------------------------------------------------------------- per-server history


class ServerMetricsGraphs:
    """Rolling resource history of one server plus graph rendering.

    All public methods are safe to call from several threads: the samples are guarded
    by a lock and renders work on an immutable snapshot.
    """

    def __init__(
        self,
        server_id: str,
        server_name: str,
        cpu_limit: float = 0,
        memory_limit_mb: float = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.server_id = server_id
        self.server_name = server_name
        self.cpu_limit = max(_finite(cpu_limit), 0.0)
        self.memory_limit_mb = max(_finite(memory_limit_mb), 0.0)
        self._clock = clock
        self._lock = threading.Lock()
        self.data_points: deque[MetricsSample] = deque(maxlen=MAX_DATA_POINTS)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(server_id={self.server_id!r}, server_name={self.server_name!r}, "
            f"points={len(self)})"
        )

    def __len__(self) -> int:
        return len(self.data_points)

    def __iter__(self) -> Iterator[MetricsSample]:
        return iter(self.samples())

    # ------------------------------------------------------------------ data handling

    def add_data_point(self, cpu_percent: float, memory_mb: float, timestamp: float | None = None) -> None:
        """Append a sample (oldest dropped beyond :data:`MAX_DATA_POINTS`).

        Non-numeric, non-finite or negative values are stored as 0 so one bad reading
        never breaks rendering.
        """
        when = self._clock() if timestamp is None else float(timestamp)
        sample = MetricsSample(when, max(_finite(cpu_percent), 0.0), max(_finite(memory_mb), 0.0))
        with self._lock:
            self.data_points.append(sample)
        log.debug(
            "metrics %s: cpu=%.1f%% mem=%.1fMiB (%d points)",
            self.server_id,
            sample.cpu_percent,
            sample.memory_mb,
            len(self.data_points),
        )

    def samples(self) -> tuple[MetricsSample, ...]:
        """Copy of the current samples, oldest first."""
        with self._lock:
            return tuple(self.data_points)

    @property
    def has_sufficient_data(self) -> bool:
        """True once at least :data:`MIN_POINTS_FOR_GRAPH` (2) samples are held."""
        return len(self.data_points) >= MIN_POINTS_FOR_GRAPH

    def clear(self) -> None:
        """Forget every sample (limits and name are kept)."""
        with self._lock:
            self.data_points.clear()

    def set_limits(self, cpu_limit: float, memory_limit_mb: float) -> None:
        """Update the panel limits (``limits.cpu`` in percent, memory in MiB; 0 = unlimited)."""
        with self._lock:
            self.cpu_limit = max(_finite(cpu_limit), 0.0)
            self.memory_limit_mb = max(_finite(memory_limit_mb), 0.0)

    # --------------------------------------------------------------------- statistics

    @property
    def cpu_trend(self) -> Trend:
        """``"increasing"``/``"decreasing"``/``"stable"``: last vs first CPU sample.

        Differences within :data:`CPU_TREND_TOLERANCE` percentage points are "stable",
        as is any history of fewer than two samples.
        """
        return _cpu_trend(self.samples())

    @property
    def memory_trend(self) -> Trend:
        """``"increasing"``/``"decreasing"``/``"stable"``: last vs first memory sample.

        The tolerance is the larger of :data:`MEMORY_TREND_TOLERANCE_MB` and
        :data:`MEMORY_TREND_TOLERANCE_RATIO` of the first sample.
        """
        return _memory_trend(self.samples())

    def summary(self) -> MetricsSummary:
        """Min/avg/max of CPU and memory plus trends, from one consistent snapshot.

        All values are zero (trends "stable") when there is no sample.
        """
        samples = self.samples()
        if not samples:
            return MetricsSummary(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, "stable", "stable")
        cpus = [s.cpu_percent for s in samples]
        mems = [s.memory_mb for s in samples]
        return MetricsSummary(
            points=len(samples),
            cpu_min=min(cpus),
            cpu_avg=sum(cpus) / len(cpus),
            cpu_max=max(cpus),
            memory_min_mb=min(mems),
            memory_avg_mb=sum(mems) / len(mems),
            memory_max_mb=max(mems),
            cpu_trend=_cpu_trend(samples),
            memory_trend=_memory_trend(samples),
        )

    # ---------------------------------------------------------------------- rendering

    def _snapshot(self) -> _Snapshot:
        with self._lock:
            return _Snapshot(
                self.server_name,
                self.cpu_limit,
                self.memory_limit_mb,
                tuple(self.data_points),
            )

    def _generate(self, kind: GraphKind) -> bytes | None:
        snap = self._snapshot()
        if not snap.samples:
            return None
        try:
            return _render(snap, kind)
        except Exception:
            log.exception("Failed to render %s graph for server %s", kind, self.server_id)
            return None

    def generate_cpu_graph(self) -> bytes | None:
        """800x300 PNG of CPU usage, or ``None`` without samples (or on render error)."""
        return self._generate("cpu")

    def generate_memory_graph(self) -> bytes | None:
        """800x300 PNG of memory usage, or ``None`` without samples (or on render error)."""
        return self._generate("memory")

    def generate_combined_graph(self) -> bytes | None:
        """800x500 PNG with CPU above memory, or ``None`` without samples (or on error)."""
        return self._generate("combined")


# --------------------------------------------------------------------------- manager


class ServerMetricsManager:
    """Keeps one :class:`ServerMetricsGraphs` per server id."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._servers: dict[str, ServerMetricsGraphs] = {}

    def __len__(self) -> int:
        return len(self._servers)

    def __contains__(self, server_id: object) -> bool:
        return server_id in self._servers

    def __repr__(self) -> str:
        return f"{type(self).__name__}(servers={len(self)})"

    def get_or_create(
        self,
        server_id: str,
        server_name: str,
        cpu_limit: float = 0,
        memory_limit_mb: float = 0,
    ) -> ServerMetricsGraphs:
        """Return the history of ``server_id``, creating it on first use.

        The name and limits given replace the stored ones when they differ, so pass the
        panel's current values every time (``0`` means unlimited, as on the panel). Use
        :meth:`get` for a read-only lookup.
        """
        with self._lock:
            graphs = self._servers.get(server_id)
            if graphs is None:
                graphs = ServerMetricsGraphs(
                    server_id, server_name, cpu_limit, memory_limit_mb, clock=self._clock
                )
                self._servers[server_id] = graphs
                log.debug("Tracking metrics for server %s (%s)", server_id, server_name)
                return graphs
        if graphs.server_name != server_name:
            graphs.server_name = server_name
        new_limits = (max(_finite(cpu_limit), 0.0), max(_finite(memory_limit_mb), 0.0))
        if (graphs.cpu_limit, graphs.memory_limit_mb) != new_limits:
            graphs.set_limits(*new_limits)
        return graphs

    def get(self, server_id: str) -> ServerMetricsGraphs | None:
        """The history of ``server_id`` or ``None`` if it is not tracked."""
        return self._servers.get(server_id)

    def add_sample(
        self,
        server_id: str,
        server_name: str,
        cpu: float,
        memory_mb: float,
        cpu_limit: float = 0,
        memory_limit_mb: float = 0,
    ) -> ServerMetricsGraphs:
        """``get_or_create`` followed by ``add_data_point``; returns the history."""
        graphs = self.get_or_create(server_id, server_name, cpu_limit, memory_limit_mb)
        graphs.add_data_point(cpu, memory_mb)
        return graphs

    def remove_server(self, server_id: str) -> bool:
        """Stop tracking ``server_id``; True if it was tracked."""
        with self._lock:
            removed = self._servers.pop(server_id, None) is not None
        if removed:
            log.debug("Stopped tracking metrics for server %s", server_id)
        return removed

    def cleanup_old_servers(self, active_ids: Iterable[str]) -> int:
        """Drop every server whose id is not in ``active_ids``; returns how many were dropped."""
        keep = set(active_ids)
        with self._lock:
            stale = [server_id for server_id in self._servers if server_id not in keep]
            for server_id in stale:
                del self._servers[server_id]
        if stale:
            log.info("Removed metrics history of %d inactive server(s)", len(stale))
        return len(stale)

    def summary(self) -> ManagerSummary:
        """Number of servers, total samples and servers ready for graphs."""
        with self._lock:
            servers = list(self._servers.values())
        return ManagerSummary(
            servers_tracked=len(servers),
            total_points=sum(len(g) for g in servers),
            servers_with_sufficient_data=sum(1 for g in servers if g.has_sufficient_data),
        )
