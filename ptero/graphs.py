"""PNG rendering of a server's CPU / memory history (no Discord, no HTTP, no pyplot).

:func:`render_graph` draws a :class:`GraphData` snapshot as one of three graphs: ``"cpu"``
or ``"memory"`` (800x300 px) or ``"combined"`` (800x500 px, CPU above memory). The axis
helpers (:func:`cpu_axis_max`, :func:`memory_axis_max`, :func:`nice_ticks`) and label
formatters live here too; ``server_metrics_graphs`` keeps the history and re-exports them.

Rendering uses matplotlib's object API only (``Figure`` + ``FigureCanvasAgg``, never
``pyplot``): no global figure registry is touched and every render owns its ``Figure``,
so renders may run concurrently in worker threads. Identical data gives identical bytes.
matplotlib is imported on the first render, not when this module is imported.

Speed notes (bench/graph_bench.py medians on the 2-core development VM: 800x500 combined
graph, fresh numbers every render; timings there drift by ~20 % with load, the ratios less):

* No Axes: Tick objects, locators and title/label placement dominated a first Axes-based
  version (~65 ms even without tight_layout). The layout is fixed in pixels and every
  element is a plain artist in figure pixels (``IdentityTransform``): a Rectangle per plot
  area, one LineCollection for the grid, a Polygon for the fill, Line2Ds for the series,
  limit and spines. Building the Figure takes ~6 ms, drawing the non-text artists ~3 ms.
* Text is 24 ``matplotlib.text.Text`` artists (``Figure.text``, ``parse_math=False``) and
  is now most of the render (~40 ms): matplotlib lays each string out twice and hints and
  renders it glyph by glyph from Python, with no cache across renders. A former version
  drew the glyphs itself with FT2Font internals into cached bitmaps (~17 ms per graph in
  all); it was dropped for the public API.
* PNG: ``savefig`` without the Software tag and with zlib level 1 (~9 ms instead of ~13 ms
  at Pillow's default level 6, for ~17 % more bytes).

Result: ~50-60 ms per combined graph against ~135-150 ms for the naive pyplot +
tight_layout version (ratio ~0.39; the bench's target is 0.5).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover - typing only
    from matplotlib.artist import Artist
    from matplotlib.backend_bases import RendererBase
    from matplotlib.figure import Figure
    from matplotlib.font_manager import FontProperties

GraphKind = Literal["cpu", "memory", "combined"]
#: One sample: (unix timestamp, CPU percent where 100 = one thread, memory in MiB).
Sample = tuple[float, float, float]

#: Render resolution. 100 dpi keeps the pixel maths obvious (inches * 100 = pixels).
GRAPH_DPI = 100
#: CPU-only / memory-only graph size in inches -> 800x300 px at :data:`GRAPH_DPI`.
SINGLE_FIGSIZE = (8.0, 3.0)
#: Combined CPU + memory graph size in inches -> 800x500 px at :data:`GRAPH_DPI`.
COMBINED_FIGSIZE = (8.0, 5.0)
#: zlib level of the PNG encoder: the flat-coloured charts compress well even at 1.
PNG_COMPRESS_LEVEL = 1

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

_FONT_SIZE_TITLE = 13
_FONT_SIZE_AXES_TITLE = 10.5
_FONT_SIZE_LABEL = 9
_FONT_SIZE_TICKS = 8.5
_MAX_NAME_LENGTH = 48


@dataclass(frozen=True, slots=True)
class GraphData:
    """Immutable snapshot of one server, taken by the caller under its own lock."""

    server_name: str
    cpu_limit: float
    """Panel ``limits.cpu`` in percent (100 = one thread); 0 = unlimited."""
    memory_limit_mb: float
    """Memory limit in MiB; 0 = unlimited."""
    samples: tuple[Sample, ...]
    """Oldest first."""


# ---------------------------------------------------------------------- pure helpers


def as_finite(value: Any) -> float:
    """``float(value)``, or 0.0 for anything non-numeric or non-finite."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def cpu_axis_max(cpu_limit: float, peak: float) -> float:
    """Top of the CPU axis in percent (100 = one thread).

    * ``cpu_limit > 0``: the limit itself; if the server bursts above its limit the axis
      grows to the next multiple of 100 above the peak so no point is clipped.
    * ``cpu_limit <= 0`` (unlimited): the peak rounded up to the next multiple of 100,
      at least 100.
    """
    peak = max(as_finite(peak), 0.0)
    rounded_peak = max(100.0, math.ceil(peak / 100.0) * 100.0)
    limit = as_finite(cpu_limit)
    return limit if limit > 0 and peak <= limit else rounded_peak


def memory_axis_max(limit_mb: float, peak_mb: float) -> float:
    """Top of the memory axis in MiB.

    * ``limit_mb > 0``: the limit, but never below the peak.
    * otherwise the peak plus 20 % headroom rounded up to a power of two below 1 GiB
      (at least 64 MiB) or to a whole number of GiB above it.
    """
    peak = max(as_finite(peak_mb), 0.0)
    limit = as_finite(limit_mb)
    if limit > 0:
        return max(limit, peak)
    target = peak * 1.2
    if target > 1024.0:
        return math.ceil(target / 1024.0) * 1024.0
    top = 64.0
    while top < target:
        top *= 2.0
    return top


def nice_ticks(top: float, max_ticks: int = 6, *, binary: bool = False) -> list[float]:
    """Evenly spaced "round" tick values from 0 up to ``top`` (inclusive when it lands).

    At most ``max_ticks`` values are returned. The step is 1, 2, 2.5 or 5 times a power
    of ten, or with ``binary=True`` (MiB axes) a power of two such as 64, 128 or 256.
    """
    if not top > 0 or not math.isfinite(top):
        return [0.0]
    raw_step = top / max(max_ticks - 1, 1)
    if binary:
        step = 2.0 ** math.ceil(math.log2(raw_step))
    else:
        magnitude = 10.0 ** math.floor(math.log10(raw_step))
        factor = next(f for f in (1.0, 2.0, 2.5, 5.0, 10.0) if f * magnitude >= raw_step * (1 - 1e-9))
        step = factor * magnitude
    count = math.floor(top / step + 1e-9)
    return [round(i * step, 10) for i in range(count + 1)]


def format_cpu_limit(cpu_limit: float) -> str:
    """Human description of a panel CPU limit, e.g. ``"2 vCPU (200%)"``."""
    limit = as_finite(cpu_limit)
    if limit <= 0:
        return "unlimited"
    vcpus = limit / 100.0
    vcpu_text = f"{vcpus:g}" if vcpus == round(vcpus, 2) else f"{vcpus:.2f}"
    return f"{vcpu_text} vCPU ({limit:g}%)"


def format_memory(mb: float) -> str:
    """``512 MiB`` / ``1.5 GiB`` / ``4 GiB`` style formatting of a MiB value."""
    value = as_finite(mb)
    if value >= 1024.0:
        return f"{value / 1024.0:.2f}".rstrip("0").rstrip(".") + " GiB"
    return f"{value:.0f} MiB"


def _format_tick(value: float) -> str:
    """``50`` / ``0.5`` / ``0.25``: no trailing zeros."""
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _x_tick_label(offset: float) -> str:
    return "now" if abs(offset) < 0.5 else f"{offset:.0f}s"


# ---------------------------------------------------------------------- panel specs


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


def _cpu_spec(data: GraphData) -> _SeriesSpec:
    cpus = tuple(cpu for _, cpu, _ in data.samples)
    peak = max(cpus)
    top = cpu_axis_max(data.cpu_limit, peak)
    ticks = tuple(nice_ticks(top))
    limit = data.cpu_limit
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


def _memory_spec(data: GraphData) -> _SeriesSpec:
    mems = tuple(mem for _, _, mem in data.samples)
    peak = max(mems)
    top_mb = memory_axis_max(data.memory_limit_mb, peak)
    scale, unit = (1024.0, "GiB") if top_mb >= 1024.0 else (1.0, "MiB")
    ticks = tuple(nice_ticks(top_mb / scale, binary=unit == "MiB"))
    limit = data.memory_limit_mb / scale
    return _SeriesSpec(
        title=(
            f"Memory  {format_memory(mems[-1])}   avg {format_memory(sum(mems) / len(mems))}"
            f"  peak {format_memory(peak)}"
        ),
        title_color=MEMORY_COLOR,
        limit_text=f"limit: {format_memory(data.memory_limit_mb) if limit > 0 else 'unlimited'}",
        ylabel=f"Memory ({unit})",
        color=MEMORY_COLOR,
        values=tuple(m / scale for m in mems),
        top=top_mb / scale,
        ticks=ticks,
        tick_labels=tuple(_format_tick(t) for t in ticks),
        limit_line=limit if 0 < limit < top_mb / scale else None,
    )


# -------------------------------------------------------------------------- drawing


class _PixelPainter:
    """Adds artists to a Figure in figure pixel coordinates (origin bottom-left)."""

    def __init__(self, fig: Figure, renderer: RendererBase) -> None:
        from matplotlib.transforms import IdentityTransform

        self.fig = fig
        self.renderer = renderer
        # One transform per render: transforms keep parent links, so never share them
        # between threads.
        self.transform = IdentityTransform()
        self._digit_heights: dict[tuple[float, bool], float] = {}

    def add(self, artist: Artist, zorder: float) -> None:
        artist.set_transform(self.transform)
        artist.set_zorder(zorder)
        self.fig.add_artist(artist)

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
    ) -> None:
        """Add a ``Text`` anchored at pixel (x, y).

        Horizontal text sits on a whole-pixel baseline (crisp hinted glyphs); "top" and
        "center" are measured from the height of a digit, so labels with and without
        ascenders line up. Rotated text (the y labels) is centred on (x, y).
        """
        # parse_math=False: server names such as "$money$" are plain text, not mathtext.
        style: dict[str, Any] = {"fontsize": size, "fontweight": "bold" if bold else "normal"}
        style |= {"color": color, "zorder": 6, "transform": self.transform, "parse_math": False}
        if rotated:
            self.fig.text(x, y, text, rotation=90, ha="center", va="center", **style)
            return
        if (size, bold) not in self._digit_heights:
            self._digit_heights[size, bold] = self.measure("0", size, bold)[1]
        digit = self._digit_heights[size, bold]
        # A whole pixel, halves rounded down (where the sprite renderer used to put them).
        baseline = math.ceil(y - {"baseline": 0.0, "top": digit, "center": digit / 2}[va] - 0.5)
        self.fig.text(x, baseline, text, ha=ha, va="baseline", **style)

    def measure(self, text: str, size: float, bold: bool) -> tuple[float, float]:
        """Ink width and height of ``text`` in pixels, as this render's renderer draws it."""
        width, height, _ = self.renderer.get_text_width_height_descent(text, _font(size, bold), ismath=False)
        return width, height


def _font(size: float, bold: bool) -> FontProperties:
    from matplotlib.font_manager import FontProperties

    return FontProperties(size=size, weight="bold" if bold else "normal")


def _draw_panel(
    painter: _PixelPainter, spec: _SeriesSpec, box: _Box, xs: Sequence[float], x_labels: bool, newest: float
) -> None:
    """Draw one chart (background, grid, fill, line, labels) inside ``box``."""
    from matplotlib.collections import LineCollection
    from matplotlib.lines import Line2D
    from matplotlib.patches import Polygon, Rectangle

    span = max(-min(xs), _MIN_X_SPAN_S)
    usable = box.width - 2 * _X_INSET_PX
    right, top = box.x0 + box.width, box.y0 + box.height

    def px(offset: float) -> float:
        # min(): a sample stamped after the newest one (clock jump) stays in the box.
        return box.x0 + _X_INSET_PX + (min(offset, 0.0) + span) / span * usable

    def py(value: float) -> float:
        return box.y0 + min(max(value, 0.0), spec.top) / spec.top * box.height

    painter.add(Rectangle((box.x0, box.y0), box.width, box.height, color=AXES_COLOR, lw=0, aa=False), 0)
    grid = [[(box.x0, py(t)), (right, py(t))] for t in spec.ticks if t > 0]
    tick_offsets = xs if len(xs) > 1 else (0.0,)
    grid += [[(px(x), box.y0), (px(x), top)] for x in tick_offsets]
    painter.add(LineCollection(grid, colors=GRID_COLOR, linewidths=_HAIRLINE_PT, antialiaseds=False), 1)

    xpix = [px(x) for x in xs]
    ypix = [py(v) for v in spec.values]
    if len(xs) > 1:
        outline = [(xpix[0], box.y0), *zip(xpix, ypix, strict=True), (xpix[-1], box.y0)]
        painter.add(Polygon(outline, closed=True, facecolor=spec.color, alpha=FILL_ALPHA, linewidth=0), 2)
    if spec.limit_line is not None:
        y = py(spec.limit_line)
        painter.add(
            Line2D([box.x0, right], [y, y], color=LIMIT_COLOR, linewidth=1.0, linestyle=(0, (4, 3))), 3
        )
    series = Line2D(
        xpix,
        ypix,
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
    painter.add(series, 4)
    spines = Line2D(
        [box.x0, box.x0, right], [top, box.y0, box.y0], color=SPINE_COLOR, lw=_HAIRLINE_PT, aa=False
    )
    painter.add(spines, 5)

    ticks, label, muted = _FONT_SIZE_TICKS, _FONT_SIZE_LABEL, MUTED_TEXT_COLOR
    for value, tick_label in zip(spec.ticks, spec.tick_labels, strict=True):
        painter.text(box.x0 - 6, py(value), tick_label, size=ticks, color=muted, ha="right", va="center")
    painter.text(
        _YLABEL_X_PX, box.y0 + box.height / 2, spec.ylabel, size=label, color=TEXT_COLOR, rotated=True
    )
    title_y = box.y0 + box.height + 10
    painter.text(box.x0, title_y, spec.title, size=_FONT_SIZE_AXES_TITLE, color=spec.title_color, bold=True)
    painter.text(right, title_y, spec.limit_text, size=label, color=muted, ha="right")
    if not x_labels:
        return
    last_label_px = math.inf
    for offset in reversed(tick_offsets):  # newest first; skip labels that would collide
        x = px(offset)
        if last_label_px - x >= _MIN_X_LABEL_GAP_PX:
            last_label_px = x
            painter.text(x, box.y0 - 7, _x_tick_label(offset), size=ticks, color=muted, ha="center", va="top")
    stamp = time.strftime("%H:%M:%S", time.gmtime(newest))
    xlabel = f"seconds before latest sample ({stamp} UTC)"
    painter.text(box.x0 + box.width / 2, box.y0 - 25, xlabel, size=label, color=muted, ha="center", va="top")


def _drop_missing_glyphs(text: str, size: float, bold: bool) -> str:
    """``text`` without control characters and those the font has no glyph for (emoji...)."""
    if text.isascii() and text.isprintable():
        return text
    from matplotlib.font_manager import findfont, get_font

    font = get_font(findfont(_font(size, bold)))  # a per-thread FT2Font; only looked up
    return "".join(
        ch for ch in text if ch.isspace() or (ch.isprintable() and font.get_char_index(ord(ch)) != 0)
    )


def _fit_title(server_name: str, subtitle: str, max_width_px: float, width_of: Callable[[str], float]) -> str:
    """``"<name> — <subtitle>"``, shortening the name with "…" until ``width_of`` fits.

    Characters the title font cannot draw (emoji, common in server names) are dropped
    rather than drawn as empty boxes with a "Glyph missing" warning.
    """
    name = " ".join(_drop_missing_glyphs(str(server_name), _FONT_SIZE_TITLE, bold=True).split())
    name = name or "Unnamed server"
    if len(name) > _MAX_NAME_LENGTH:
        name = name[: _MAX_NAME_LENGTH - 1].rstrip() + "\u2026"
    while True:
        title = f"{name} \u2014 {subtitle}"
        width = width_of(title)
        if width <= max_width_px or len(name) <= 4:
            return title
        keep = max(min(int(len(name) * max_width_px / width) - 2, len(name) - 2), 3)
        name = name[:keep].rstrip() + "\u2026"


def _layout(kind: GraphKind) -> tuple[tuple[float, float], list[_Box]]:
    """Figure size in inches and the plot boxes (pixels) for one graph kind."""
    figsize = COMBINED_FIGSIZE if kind == "combined" else SINGLE_FIGSIZE
    plot_width = figsize[0] * GRAPH_DPI - _MARGIN_LEFT_PX - _MARGIN_RIGHT_PX
    available = figsize[1] * GRAPH_DPI - _MARGIN_TOP_PX - _MARGIN_BOTTOM_PX
    if kind != "combined":
        return figsize, [_Box(_MARGIN_LEFT_PX, _MARGIN_BOTTOM_PX, plot_width, available)]
    panel_height = (available - _PANEL_GAP_PX) / 2
    upper = _Box(_MARGIN_LEFT_PX, _MARGIN_BOTTOM_PX + panel_height + _PANEL_GAP_PX, plot_width, panel_height)
    return figsize, [upper, _Box(_MARGIN_LEFT_PX, _MARGIN_BOTTOM_PX, plot_width, panel_height)]


def _draw_figure(data: GraphData, kind: GraphKind) -> Figure:
    """A new Figure (on an Agg canvas) holding one graph; samples must be non-empty."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if not data.samples:
        raise ValueError("cannot draw a graph without samples")
    figsize, boxes = _layout(kind)
    fig = Figure(figsize=figsize, dpi=GRAPH_DPI, facecolor=BACKGROUND_COLOR)
    # The renderer that will draw the figure, used to measure text the way it is drawn.
    renderer = FigureCanvasAgg(fig).get_renderer()  # type: ignore[no-untyped-call]  # backend_agg is unannotated
    painter = _PixelPainter(fig, renderer)
    newest = data.samples[-1][0]
    xs = tuple(timestamp - newest for timestamp, _, _ in data.samples)

    specs = ([_cpu_spec(data)] if kind != "memory" else []) + ([_memory_spec(data)] if kind != "cpu" else [])
    for index, (spec, box) in enumerate(zip(specs, boxes, strict=True)):
        _draw_panel(painter, spec, box, xs, x_labels=index == len(specs) - 1, newest=newest)

    width_px, height_px = figsize[0] * GRAPH_DPI, figsize[1] * GRAPH_DPI
    title = _fit_title(
        data.server_name,
        {"combined": "resource usage", "cpu": "CPU usage", "memory": "memory usage"}[kind],
        width_px - _MARGIN_LEFT_PX - _MARGIN_RIGHT_PX,
        lambda text: painter.measure(text, _FONT_SIZE_TITLE, bold=True)[0],
    )
    painter.text(
        _MARGIN_LEFT_PX, height_px - 11, title, size=_FONT_SIZE_TITLE, color=TEXT_COLOR, bold=True, va="top"
    )
    return fig


def render_graph(data: GraphData, kind: GraphKind) -> bytes:
    """PNG bytes of one graph of ``data`` (which must hold at least one sample)."""
    buffer = BytesIO()
    _draw_figure(data, kind).savefig(
        buffer, format="png", metadata={"Software": None}, pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL}
    )
    return buffer.getvalue()
