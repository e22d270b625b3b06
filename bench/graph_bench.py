"""Benchmark: combined metrics graph render time, ours vs a naive pyplot version.

Run ``python bench/graph_bench.py [renders]``. The naive baseline draws the same content
(same data, titles, axis labels, tick labels, colours, fill and limit line) the way a
typical pyplot script would: ``plt.subplots`` + ``tight_layout()`` +
``savefig(BytesIO, format="png")`` + ``plt.close(fig)``. The target is
``ours <= 1/2 of naive`` (median over ``renders`` renders, after one warm-up render).
A new sample is added before every render so each render draws new numbers.

``run_graph_bench`` is importable by other bench scripts and returns a plain dict.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))

import server_metrics_graphs as smg  # noqa: E402

TARGET_RATIO = 0.5
SERVER_NAME = "Survival SMP (Paper 1.21)"
CPU_LIMIT = 200.0
MEMORY_LIMIT_MB = 4096.0
BASE_TIMESTAMP = 1_700_000_000.0
SAMPLES: tuple[tuple[float, float], ...] = (
    (45.2, 1800.0),
    (88.7, 2100.0),
    (130.4, 2500.0),
    (95.1, 2600.0),
    (60.0, 2550.0),
    (72.3, 2700.0),
)


def _make_graphs() -> smg.ServerMetricsGraphs:
    graphs = smg.ServerMetricsGraphs("bench", SERVER_NAME, CPU_LIMIT, MEMORY_LIMIT_MB)
    for index, (cpu, memory) in enumerate(SAMPLES):
        graphs.add_data_point(cpu, memory, timestamp=BASE_TIMESTAMP + 10 * index)
    return graphs


def naive_combined_png(graphs: smg.ServerMetricsGraphs) -> bytes:
    """The straightforward pyplot rendering of the same combined graph."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = graphs.samples()
    stamp = time.strftime("%H:%M:%S", time.gmtime(samples[-1].timestamp))
    newest = samples[-1].timestamp
    xs = [s.timestamp - newest for s in samples]
    cpus = [s.cpu_percent for s in samples]
    mems = [s.memory_mb / 1024.0 for s in samples]
    cpu_top = smg.cpu_axis_max(graphs.cpu_limit, max(cpus))
    mem_top = smg.memory_axis_max(graphs.memory_limit_mb, max(s.memory_mb for s in samples)) / 1024.0

    fig, (ax_cpu, ax_mem) = plt.subplots(2, 1, figsize=smg.COMBINED_FIGSIZE, dpi=smg.GRAPH_DPI, sharex=True)
    fig.patch.set_facecolor(smg.BACKGROUND_COLOR)
    fig.suptitle(
        f"{SERVER_NAME} \u2014 resource usage", color=smg.TEXT_COLOR, fontweight="bold", x=0.1, ha="left"
    )
    panels = (
        (ax_cpu, cpus, cpu_top, smg.CPU_COLOR, "CPU (100% = 1 thread)", "CPU", "limit: 2 vCPU (200%)"),
        (ax_mem, mems, mem_top, smg.MEMORY_COLOR, "Memory (GiB)", "Memory", "limit: 4 GiB"),
    )
    for ax, values, top, color, ylabel, title, limit_text in panels:
        ax.set_facecolor(smg.AXES_COLOR)
        ax.fill_between(xs, values, 0, color=color, alpha=smg.FILL_ALPHA)
        ax.plot(xs, values, color=color, linewidth=2, marker="o")
        ax.set_ylim(0, top)
        ticks = smg.nice_ticks(top)
        ax.set_yticks(ticks)
        ax.set_ylabel(ylabel, color=smg.TEXT_COLOR)
        ax.set_title(
            f"{title}  {values[-1]:.1f}  avg {statistics.fmean(values):.1f}  peak {max(values):.1f}",
            loc="left",
            color=color,
            fontweight="bold",
        )
        ax.set_title(limit_text, loc="right", color=smg.MUTED_TEXT_COLOR)
        ax.grid(True, color=smg.GRID_COLOR)
        ax.tick_params(colors=smg.MUTED_TEXT_COLOR)
        for spine in ax.spines.values():
            spine.set_color(smg.SPINE_COLOR)
    ax_cpu.axhline(CPU_LIMIT * 0.999, color=smg.LIMIT_COLOR, linestyle="--")
    ax_mem.set_xticks(xs, ["now" if x == 0 else f"{x:.0f}s" for x in xs])
    ax_mem.set_xlabel(f"seconds before latest sample ({stamp} UTC)", color=smg.MUTED_TEXT_COLOR)
    fig.tight_layout()
    buffer = BytesIO()
    fig.savefig(buffer, format="png", facecolor=fig.get_facecolor())
    plt.close(fig)
    return buffer.getvalue()


def _fresh_sample(index: int) -> tuple[float, float]:
    """Deterministic, ever-changing (cpu %, memory MiB) values."""
    cpu = round(40.0 + 90.0 * abs(math.sin(index * 0.77)) + index * 0.13, 1)
    memory = round(1700.0 + 900.0 * abs(math.cos(index * 0.41)) + index * 1.7, 1)
    return cpu, memory


def _time_ms(render: Callable[[], bytes | None]) -> float:
    start = time.perf_counter()
    render()
    return (time.perf_counter() - start) * 1000.0


def run_graph_bench(renders: int = 30) -> dict[str, Any]:
    """Median combined-graph render times in ms for ours and the naive baseline.

    The two renderers alternate render by render so changes in machine load affect both
    equally; one warm-up render each is not counted. Returns ``{"renders", "ours_ms",
    "naive_ms", "ratio", "target_ratio", "passed", "png_bytes_ours", "png_bytes_naive"}``
    where ``ratio`` is ours / naive.
    """
    graphs = _make_graphs()

    def naive() -> bytes:
        return naive_combined_png(graphs)

    ours_png = graphs.generate_combined_graph()  # warm-up (imports, font cache)
    naive_png = naive()
    if ours_png is None:
        raise RuntimeError("combined graph rendering returned None")
    ours_times: list[float] = []
    naive_times: list[float] = []
    for index in range(max(renders, 1)):
        # A fresh sample before every pair of renders, like the bot's refresh loop: the
        # titles' numbers and the time label change, so no cache can make the repeated
        # renders look cheaper than real ones.
        cpu, memory = _fresh_sample(index)
        graphs.add_data_point(cpu, memory, timestamp=BASE_TIMESTAMP + 10 * (len(SAMPLES) + index))
        ours_times.append(_time_ms(graphs.generate_combined_graph))
        naive_times.append(_time_ms(naive))
    ours_ms = statistics.median(ours_times)
    naive_ms = statistics.median(naive_times)
    ratio = ours_ms / naive_ms if naive_ms else float("inf")
    return {
        "renders": len(ours_times),
        "ours_ms": round(ours_ms, 2),
        "naive_ms": round(naive_ms, 2),
        "ratio": round(ratio, 3),
        "target_ratio": TARGET_RATIO,
        "passed": ratio <= TARGET_RATIO,
        "png_bytes_ours": len(ours_png),
        "png_bytes_naive": len(naive_png),
    }


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    renders = int(args[0]) if args else 30
    result = run_graph_bench(renders)
    print(f"Combined graph (800x500 px), median of {result['renders']} renders")
    print(f"{'':18}{'ours':>10}{'naive':>10}")
    print(f"{'render time (ms)':18}{result['ours_ms']:>10.1f}{result['naive_ms']:>10.1f}")
    print(f"{'PNG size (bytes)':18}{result['png_bytes_ours']:>10}{result['png_bytes_naive']:>10}")
    print(f"ratio ours/naive: {result['ratio']:.3f} (naive is {1 / result['ratio']:.1f}x slower)")
    verdict = "PASS" if result["passed"] else "FAIL"
    print(f"target: ours <= 1/2 of naive -> {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
