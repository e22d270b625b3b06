"""Tests for server_metrics_graphs and ptero.graphs: history, axis scaling, statistics,
manager, PNGs and how the text is laid out.

Pure tests: no panel, no Discord. Rendering goes through matplotlib's Agg canvas.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import logging
import math
import subprocess
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.text import Text
from matplotlib.transforms import IdentityTransform
from PIL import Image

import ptero.graphs as pg
import server_metrics_graphs as smg
from server_metrics_graphs import (
    MAX_DATA_POINTS,
    ServerMetricsGraphs,
    ServerMetricsManager,
    cpu_axis_max,
    format_cpu_limit,
    format_memory,
    memory_axis_max,
    nice_ticks,
)
from tests.conftest import ManualClock, png_size

PROJECT_ROOT = Path(__file__).resolve().parent.parent
T0 = 1_700_000_000.0
SIZES = {"cpu": (800, 300), "memory": (800, 300), "combined": (800, 500)}


def render(graphs: ServerMetricsGraphs, kind: str) -> bytes | None:
    return getattr(graphs, f"generate_{kind}_graph")()


def make_graphs(points: int, cpu_limit: float = 200, memory_limit_mb: float = 4096) -> ServerMetricsGraphs:
    graphs = ServerMetricsGraphs("srv1", "Survival SMP", cpu_limit, memory_limit_mb)
    for i in range(points):
        graphs.add_data_point(40.0 + 15 * i, 1800.0 + 120 * i, timestamp=T0 + 10 * i)
    return graphs


def texts(graphs: ServerMetricsGraphs, kind: pg.GraphKind) -> list[Text]:
    """The Text artists of one graph, in drawing order (the figure is never saved)."""
    fig = pg._draw_figure(graphs._snapshot(), kind)
    return [artist for artist in fig.get_children() if isinstance(artist, Text)]


def by_string(items: list[Text]) -> dict[str, Text]:
    return {text.get_text(): text for text in items}


# ----------------------------------------------------------------------------- history


def test_fifo_keeps_last_six_in_order() -> None:
    graphs = ServerMetricsGraphs("a", "A")
    for i in range(7):
        graphs.add_data_point(float(i), float(100 + i), timestamp=T0 + i)
    samples = graphs.samples()
    assert len(graphs) == MAX_DATA_POINTS == 6
    assert [s.cpu_percent for s in samples] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert [s.memory_mb for s in samples] == [101.0, 102.0, 103.0, 104.0, 105.0, 106.0]
    assert [s.timestamp for s in samples] == [T0 + i for i in range(1, 7)]


@pytest.mark.parametrize(("points", "expected"), [(0, False), (1, False), (2, True), (6, True)])
def test_has_sufficient_data_boundaries(points: int, expected: bool) -> None:
    assert make_graphs(points).has_sufficient_data is expected


def test_clear_forgets_samples_but_keeps_limits() -> None:
    graphs = make_graphs(3, cpu_limit=300, memory_limit_mb=2048)
    graphs.clear()
    assert len(graphs) == 0
    assert graphs.has_sufficient_data is False
    assert (graphs.cpu_limit, graphs.memory_limit_mb) == (300, 2048)


def test_timestamp_defaults_to_injected_clock() -> None:
    clock = ManualClock(T0 + 42)
    graphs = ServerMetricsGraphs("a", "A", clock=clock)
    graphs.add_data_point(10, 100)
    clock.advance(10)
    graphs.add_data_point(20, 200)
    assert [s.timestamp for s in graphs.samples()] == [T0 + 42, T0 + 52]


def test_bad_readings_are_stored_as_zero() -> None:
    graphs = ServerMetricsGraphs("a", "A")
    graphs.add_data_point(math.nan, -5.0, timestamp=T0)
    graphs.add_data_point(math.inf, "junk", timestamp=T0 + 1)  # type: ignore[arg-type]
    assert [(s.cpu_percent, s.memory_mb) for s in graphs.samples()] == [(0.0, 0.0), (0.0, 0.0)]
    assert png_size(graphs.generate_combined_graph()) == (800, 500)


def test_set_limits_updates_and_clamps() -> None:
    graphs = ServerMetricsGraphs("a", "A", cpu_limit=100, memory_limit_mb=1024)
    graphs.set_limits(400, 8192)
    assert (graphs.cpu_limit, graphs.memory_limit_mb) == (400, 8192)
    graphs.set_limits(-1, math.nan)
    assert (graphs.cpu_limit, graphs.memory_limit_mb) == (0, 0)


# ----------------------------------------------------------------------- axis scaling


@pytest.mark.parametrize(
    ("cpu_limit", "peak", "expected"),
    [
        (200, 50, 200),  # 2 vCPUs: axis top is the limit
        (200, 200, 200),
        (150, 20, 150),  # fractional vCPU limits are kept as is
        (0, 130, 200),  # unlimited: peak rounded up to the next 100
        (0, 0, 100),  # unlimited and idle: one thread
        (0, 100, 100),
        (0, 100.1, 200),
        (0, 730, 800),
        (200, 250, 300),  # burst above the limit: never clip the point
        (-5, 30, 100),  # nonsense limit treated as unlimited
    ],
)
def test_cpu_axis_max(cpu_limit: float, peak: float, expected: float) -> None:
    assert cpu_axis_max(cpu_limit, peak) == expected


@pytest.mark.parametrize(
    ("limit_mb", "peak_mb", "expected"),
    [
        (4096, 1000, 4096),  # known limit is the top
        (1024, 1500, 1500),  # but never below the peak
        (0, 0, 64),  # unknown limit: power of two with headroom
        (0, 300, 512),
        (0, 500, 1024),
        (0, 2000, 3072),  # above 1 GiB: whole GiB (2000 * 1.2 -> 3 GiB)
    ],
)
def test_memory_axis_max(limit_mb: float, peak_mb: float, expected: float) -> None:
    assert memory_axis_max(limit_mb, peak_mb) == expected


def test_nice_ticks() -> None:
    assert nice_ticks(200) == [0, 50, 100, 150, 200]
    assert nice_ticks(100) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(1200) == [0, 250, 500, 750, 1000]
    assert nice_ticks(4) == [0, 1, 2, 3, 4]
    assert nice_ticks(512, binary=True) == [0, 128, 256, 384, 512]
    assert nice_ticks(768, binary=True) == [0, 256, 512, 768]
    assert nice_ticks(0) == [0]
    for top in (1, 7, 64, 99.5, 350, 3072):
        ticks = nice_ticks(top)
        assert 2 <= len(ticks) <= 6
        assert ticks[-1] <= top
        steps = {round(b - a, 9) for a, b in itertools.pairwise(ticks)}
        assert len(steps) == 1


def test_limit_and_memory_formatting() -> None:
    assert format_cpu_limit(200) == "2 vCPU (200%)"
    assert format_cpu_limit(150) == "1.5 vCPU (150%)"
    assert format_cpu_limit(0) == "unlimited"
    assert format_memory(512) == "512 MiB"
    assert format_memory(4096) == "4 GiB"
    assert format_memory(2700) == "2.64 GiB"


def test_panel_specs_use_vcpu_scale_and_gib_units() -> None:
    snap = make_graphs(3, cpu_limit=200, memory_limit_mb=4096)._snapshot()
    cpu = pg._cpu_spec(snap)
    memory = pg._memory_spec(snap)
    assert cpu.top == 200
    assert cpu.tick_labels[-1] == "200%"
    assert "2 vCPU (200%)" in cpu.limit_text
    assert memory.ylabel == "Memory (GiB)"
    assert memory.top == 4
    small = ServerMetricsGraphs("b", "B", 0, 768)
    small.add_data_point(5, 300, timestamp=T0)
    assert pg._memory_spec(small._snapshot()).ylabel == "Memory (MiB)"
    assert pg._memory_spec(small._snapshot()).top == 768


# --------------------------------------------------------------- trends and summaries


@pytest.mark.parametrize(
    ("cpus", "mems", "cpu_trend", "memory_trend"),
    [
        ([10, 50], [1000, 1500], "increasing", "increasing"),
        ([50, 10], [1500, 1000], "decreasing", "decreasing"),
        ([50, 50.5], [1000, 1005], "stable", "stable"),  # within tolerance
        ([50, 90, 51.5], [1000, 9000, 1030], "increasing", "increasing"),  # last vs first
        ([50], [1000], "stable", "stable"),
    ],
)
def test_trends(cpus: list[float], mems: list[float], cpu_trend: str, memory_trend: str) -> None:
    graphs = ServerMetricsGraphs("a", "A")
    for i, (cpu, mem) in enumerate(zip(cpus, mems, strict=True)):
        graphs.add_data_point(cpu, mem, timestamp=T0 + i)
    assert graphs.cpu_trend == cpu_trend
    assert graphs.memory_trend == memory_trend


def test_summary_min_avg_max() -> None:
    graphs = ServerMetricsGraphs("a", "A")
    for i, (cpu, mem) in enumerate([(10, 100), (20, 400), (60, 250)]):
        graphs.add_data_point(cpu, mem, timestamp=T0 + i)
    summary = graphs.summary()
    assert summary.points == 3
    assert (summary.cpu_min, summary.cpu_avg, summary.cpu_max) == (10, 30, 60)
    assert (summary.memory_min_mb, summary.memory_avg_mb, summary.memory_max_mb) == (100, 250, 400)
    assert (summary.cpu_trend, summary.memory_trend) == ("increasing", "increasing")
    with pytest.raises(dataclasses.FrozenInstanceError):
        summary.points = 5  # type: ignore[misc]


def test_summary_of_empty_history_is_zero() -> None:
    summary = ServerMetricsGraphs("a", "A").summary()
    assert summary.points == 0
    assert summary.cpu_max == summary.memory_avg_mb == 0
    assert summary.cpu_trend == "stable"


# ----------------------------------------------------------------------------- manager


def test_manager_lazy_creation_and_updates() -> None:
    manager = ServerMetricsManager(clock=ManualClock(T0))
    assert len(manager) == 0
    assert manager.get("s1") is None
    assert "s1" not in manager

    first = manager.get_or_create("s1", "Old name", cpu_limit=100, memory_limit_mb=1024)
    assert "s1" in manager and len(manager) == 1
    assert manager.get("s1") is first

    again = manager.get_or_create("s1", "New name", cpu_limit=300, memory_limit_mb=2048)
    assert again is first
    assert (first.server_name, first.cpu_limit, first.memory_limit_mb) == ("New name", 300, 2048)


def test_manager_add_sample_uses_clock_and_limits() -> None:
    manager = ServerMetricsManager(clock=ManualClock(T0 + 5))
    graphs = manager.add_sample("s1", "One", 55.0, 700.0, cpu_limit=200, memory_limit_mb=1024)
    manager.add_sample("s1", "One", 65.0, 710.0, cpu_limit=200, memory_limit_mb=1024)
    assert manager.get("s1") is graphs
    assert [s.cpu_percent for s in graphs.samples()] == [55.0, 65.0]
    assert graphs.samples()[0].timestamp == T0 + 5
    assert graphs.cpu_limit == 200


def test_manager_remove_cleanup_and_summary() -> None:
    manager = ServerMetricsManager()
    for server_id, points in (("a", 1), ("b", 2), ("c", 6), ("d", 0)):
        graphs = manager.get_or_create(server_id, server_id.upper())
        for i in range(points):
            graphs.add_data_point(10, 100, timestamp=T0 + i)

    summary = manager.summary()
    assert (summary.servers_tracked, summary.total_points, summary.servers_with_sufficient_data) == (4, 9, 2)

    assert manager.remove_server("d") is True
    assert manager.remove_server("d") is False
    assert "d" not in manager

    assert manager.cleanup_old_servers(iter(["b", "zzz"])) == 2
    assert [sid for sid in ("a", "b", "c") if sid in manager] == ["b"]
    assert manager.cleanup_old_servers(["b"]) == 0
    assert manager.summary() == smg.ManagerSummary(1, 2, 1)


# ------------------------------------------------------------------------------ graphs


@pytest.mark.parametrize("kind", ["cpu", "memory", "combined"])
@pytest.mark.parametrize("points", [1, 2, 6])
def test_graph_is_png_of_expected_size(kind: str, points: int) -> None:
    png = render(make_graphs(points), kind)
    assert png_size(png) == SIZES[kind]
    assert png is not None and len(png) < 200_000


@pytest.mark.parametrize("kind", ["cpu", "memory", "combined"])
def test_no_data_gives_none(kind: str) -> None:
    assert render(ServerMetricsGraphs("a", "A"), kind) is None


def test_graph_is_dark_and_draws_the_series() -> None:
    png = make_graphs(6).generate_combined_graph()
    assert png is not None
    image = Image.open(io.BytesIO(png)).convert("RGB")
    assert image.getpixel((2, 2)) == (0x2B, 0x2D, 0x31)  # Discord dark background
    colours = {colour for _, colour in image.getcolors(maxcolors=1 << 20)}
    assert (0x58, 0x65, 0xF2) in colours  # CPU line (blurple)
    assert (0x57, 0xF2, 0x87) in colours  # memory line (green)


def test_rendering_is_deterministic_and_data_dependent() -> None:
    a, b = make_graphs(4), make_graphs(4)
    assert a.generate_combined_graph() == b.generate_combined_graph()
    b.add_data_point(99, 3000, timestamp=T0 + 40)
    assert a.generate_combined_graph() != b.generate_combined_graph()


def test_awkward_names_render_without_warnings() -> None:
    graphs = ServerMetricsGraphs("a", "🎮 $money$ \\n\x07 WWWW" + "W" * 80, 0, 0)
    graphs.add_data_point(12, 300, timestamp=T0)
    graphs.add_data_point(14, 320, timestamp=T0 + 10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a "Glyph missing" warning would make the render return None
        assert png_size(graphs.generate_cpu_graph()) == (800, 300)
        title = texts(graphs, "cpu")[-1]
        extent = title.get_window_extent()  # measured by the renderer the figure is drawn with
    text = title.get_text()
    assert text.startswith("$money$ \\n W") and text.endswith("\u2026 \u2014 CPU usage")
    assert "🎮" not in text and "\x07" not in text
    assert title.get_parse_math() is False  # "$money$" is shown as typed, not as mathtext
    assert extent.x0 == 72 and extent.x1 <= 800 - 20  # fits between the plot's edges


def test_fit_title_shortens_the_name_until_the_width_fits() -> None:
    def width_of(text: str) -> float:
        return 10.0 * len(text)

    title = pg._fit_title("Survival SMP " * 5, "CPU usage", 300, width_of)
    assert title == "Survival SMP Surv\u2026 \u2014 CPU usage"
    assert width_of(title) <= 300
    assert pg._fit_title(" Lobby\n 1 ", "CPU usage", 300, width_of) == "Lobby 1 \u2014 CPU usage"
    assert pg._fit_title("🎮🎮 \t", "memory usage", 300, width_of) == "Unnamed server \u2014 memory usage"


def test_labels_are_plain_text_artists_in_figure_pixels() -> None:
    fig = pg._draw_figure(make_graphs(6)._snapshot(), "combined")
    # Only stock matplotlib artists: no custom text blitting.
    assert all(type(artist).__module__.startswith("matplotlib.") for artist in fig.get_children())
    items = [artist for artist in fig.get_children() if isinstance(artist, Text)]
    assert all(isinstance(text.get_transform(), IdentityTransform) for text in items)
    labels = by_string(items)
    # Title; per panel 5 y ticks, y label, title, limit; 6 x ticks and the x label.
    assert len(labels) == len(items) == 1 + 2 * (5 + 1 + 2) + 6 + 1
    title = labels["Survival SMP \u2014 resource usage"]
    assert (title.get_position()[0], title.get_fontweight(), title.get_fontsize()) == (72, "bold", 13)
    for tick in ("0%", "50%", "100%", "150%", "200%", "0", "1", "2", "3", "4"):
        assert (labels[tick].get_position()[0], labels[tick].get_horizontalalignment()) == (66, "right")
    ylabel = labels["CPU (100% = 1 thread)"]
    assert (ylabel.get_rotation(), ylabel.get_position()) == (90, (16, 260 + 176 / 2))
    assert labels["limit: 2 vCPU (200%)"].get_position() == (780, 260 + 176 + 10)
    x_ticks = ["now", "-10s", "-20s", "-30s", "-40s", "-50s"]  # newest first
    assert [text.get_text() for text in items if text.get_text() in x_ticks] == x_ticks
    assert labels["seconds before latest sample (22:14:10 UTC)"].get_horizontalalignment() == "center"


def test_label_ink_sits_on_its_anchor() -> None:
    png = make_graphs(6).generate_combined_graph()
    assert png is not None
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    ink = np.abs(pixels - (0x2B, 0x2D, 0x31)).sum(axis=2) > 40  # anything not background

    # "100%" on the CPU axis: centred on its grid line (image row 500 - 348 = 152), right
    # edge 6 px left of the plot (x = 72).
    rows = np.nonzero(ink[140:165, 25:70].any(axis=1))[0] + 140
    columns = np.nonzero(ink[140:165, 25:70].any(axis=0))[0] + 25
    assert abs((rows[0] + rows[-1]) / 2 - 152) <= 0.5
    assert 64 <= columns[-1] <= 66
    # "now" under the plot: digit-height letters top-aligned 7 px below it (image row 461).
    rows = np.nonzero(ink[455:475, 740:790].any(axis=1))[0] + 455
    assert rows[0] == 463  # "now" has no ascender: its x-height top is 2 px below the digit top
    # The title's cap tops are near its "top" anchor 11 px from the top edge.
    rows = np.nonzero(ink[0:36, 72:400].any(axis=1))[0]
    assert 10 <= rows[0] <= 12 and rows[-1] <= 30


def test_x_labels_that_would_collide_are_skipped() -> None:
    graphs = ServerMetricsGraphs("a", "A", 100, 1024)
    for offset in (-60, -59, -58, -57, -56, 0):
        graphs.add_data_point(10, 100, timestamp=T0 + offset)
    labels = [text.get_text() for text in texts(graphs, "cpu")]
    assert [label for label in labels if label == "now" or label.endswith("s")] == ["now", "-56s", "-60s"]


def test_render_graph_needs_samples_and_snapshots_are_frozen() -> None:
    empty = pg.GraphData("x", 0, 0, ())
    with pytest.raises(ValueError, match="without samples"):
        pg.render_graph(empty, "cpu")
    with pytest.raises(dataclasses.FrozenInstanceError):
        empty.server_name = "y"  # type: ignore[misc]
    data = pg.GraphData("x", 200, 4096, ((T0, 50.0, 1024.0), (T0 + 10, 60.0, 1100.0)))
    assert png_size(pg.render_graph(data, "memory")) == (800, 300)


def test_render_error_returns_none_and_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(data: pg.GraphData, kind: pg.GraphKind) -> bytes:
        raise RuntimeError("boom")

    monkeypatch.setattr(smg, "render_graph", broken)
    with caplog.at_level(logging.ERROR, logger="server_metrics_graphs"):
        assert make_graphs(3).generate_combined_graph() is None
    assert "Failed to render combined graph for server srv1" in caplog.text


def test_no_pyplot_figures_left_open() -> None:
    plt.close("all")
    graphs = make_graphs(6)
    for kind in SIZES:
        assert render(graphs, kind) is not None
    assert plt.get_fignums() == []


def test_concurrent_renders_from_threads() -> None:
    graphs = make_graphs(6)
    kinds = list(SIZES)

    def worker(worker_id: int) -> list[tuple[str, tuple[int, int]]]:
        results = []
        for i in range(5):
            kind = kinds[(worker_id + i) % 3]
            # Mutate the history while other threads render from snapshots.
            graphs.add_data_point(
                10.0 * worker_id + i, 1000.0 + i, timestamp=T0 + 100 + 10 * (worker_id * 5 + i)
            )
            results.append((kind, png_size(render(graphs, kind))))
        return results

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = [item for batch in pool.map(worker, range(4)) for item in batch]
    assert len(results) == 20
    assert all(size == SIZES[kind] for kind, size in results)
    assert len(graphs) == MAX_DATA_POINTS


def test_concurrent_renders_give_the_same_bytes_as_sequential_ones() -> None:
    graphs = make_graphs(6)
    expected = {kind: render(graphs, kind) for kind in SIZES}
    jobs = [kind for kind in SIZES for _ in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda kind: render(graphs, kind), jobs))
    assert results == [expected[kind] for kind in jobs]


def test_reprs_name_the_server_and_counts() -> None:
    expected = "ServerMetricsGraphs(server_id='srv1', server_name='Survival SMP', points=2)"
    assert repr(make_graphs(2)) == expected
    manager = ServerMetricsManager()
    manager.get_or_create("a", "A")
    assert repr(manager) == "ServerMetricsManager(servers=1)"


def test_module_imports_neither_discord_nor_pyplot() -> None:
    code = textwrap.dedent(
        """
        import sys
        import ptero.graphs
        assert "server_metrics_graphs" not in sys.modules, "ptero.graphs imports the history module"
        import server_metrics_graphs as m
        assert "matplotlib" not in sys.modules, "matplotlib imported at import time"
        g = m.ServerMetricsGraphs("x", "X")
        g.add_data_point(1, 2, timestamp=0)
        g.add_data_point(3, 4, timestamp=10)
        assert g.generate_combined_graph()[:4] == b"\\x89PNG"
        bad = {"discord", "aiohttp", "matplotlib.pyplot"} & set(sys.modules)
        assert not bad, bad
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
