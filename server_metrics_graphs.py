"""Rolling CPU / memory history of Pterodactyl game servers, and their PNG graphs.

This module is deliberately independent of Discord and HTTP: it keeps a short history of
resource samples per server; :mod:`ptero.graphs` turns a snapshot of it into PNG bytes.

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
``generate_cpu_graph`` / ``generate_memory_graph`` (800x300 px) and
``generate_combined_graph`` (800x500 px) return PNG bytes, or ``None`` when there is no
sample at all. A single sample is still drawn (as a lone marker), which gives a valid but
not very informative image: the bot attaches graphs only when
:attr:`ServerMetricsGraphs.has_sufficient_data` is true (two samples or more).

The CPU axis tops at the server's allocation (``limits.cpu``, 100 = one thread), or at the
peak rounded up to a multiple of 100 when unlimited or bursting above the limit (which is
then drawn as a dashed red line); the memory axis tops at the memory limit when known, and
switches from MiB to GiB labels at 1 GiB. The x axis shows seconds before the newest
sample, so it reads the same in every Discord user's time zone. See :mod:`ptero.graphs`
for the axis helpers (re-exported here) and for how rendering is kept fast.

Rendering uses matplotlib's object API only (never ``pyplot``) on an immutable snapshot
taken under the history's lock, so renders may run concurrently in worker threads (for
example via ``asyncio.to_thread``). Importing this module has no side effects; matplotlib
is imported lazily on the first render.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

from ptero.graphs import (
    AXES_COLOR,
    BACKGROUND_COLOR,
    COMBINED_FIGSIZE,
    CPU_COLOR,
    FILL_ALPHA,
    GRAPH_DPI,
    GRID_COLOR,
    LIMIT_COLOR,
    MEMORY_COLOR,
    MUTED_TEXT_COLOR,
    SINGLE_FIGSIZE,
    SPINE_COLOR,
    TEXT_COLOR,
    GraphData,
    GraphKind,
    cpu_axis_max,
    format_cpu_limit,
    format_memory,
    memory_axis_max,
    nice_ticks,
    render_graph,
)
from ptero.graphs import as_finite as _finite

log = logging.getLogger(__name__)

__all__ = [
    "AXES_COLOR",
    "BACKGROUND_COLOR",
    "COMBINED_FIGSIZE",
    "CPU_COLOR",
    "FILL_ALPHA",
    "GRAPH_DPI",
    "GRID_COLOR",
    "LIMIT_COLOR",
    "MAX_DATA_POINTS",
    "MEMORY_COLOR",
    "MIN_POINTS_FOR_GRAPH",
    "MUTED_TEXT_COLOR",
    "SINGLE_FIGSIZE",
    "SPINE_COLOR",
    "TEXT_COLOR",
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

#: Number of samples kept per server (with a 10 s refresh: one minute of history).
MAX_DATA_POINTS = 6
#: Minimum number of samples before a graph is worth attaching.
MIN_POINTS_FOR_GRAPH = 2

#: Trend tolerance for CPU, in percentage points (of one thread).
CPU_TREND_TOLERANCE = 1.0
#: Trend tolerance for memory: the larger of this many MiB ...
MEMORY_TREND_TOLERANCE_MB = 1.0
#: ... and this fraction of the first sample.
MEMORY_TREND_TOLERANCE_RATIO = 0.01

Trend = Literal["increasing", "decreasing", "stable"]


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
        self._points: deque[MetricsSample] = deque(maxlen=MAX_DATA_POINTS)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(server_id={self.server_id!r}, server_name={self.server_name!r}, "
            f"points={len(self)})"
        )

    def __len__(self) -> int:
        return len(self._points)

    def add_data_point(self, cpu_percent: float, memory_mb: float, timestamp: float | None = None) -> None:
        """Append a sample (oldest dropped beyond :data:`MAX_DATA_POINTS`).

        Non-numeric, non-finite or negative values are stored as 0 so one bad reading
        never breaks rendering.
        """
        when = self._clock() if timestamp is None else float(timestamp)
        sample = MetricsSample(when, max(_finite(cpu_percent), 0.0), max(_finite(memory_mb), 0.0))
        with self._lock:
            self._points.append(sample)
        log.debug("metrics %s: cpu=%.1f%% mem=%.1fMiB", self.server_id, sample.cpu_percent, sample.memory_mb)

    def samples(self) -> tuple[MetricsSample, ...]:
        """Copy of the current samples, oldest first."""
        with self._lock:
            return tuple(self._points)

    @property
    def has_sufficient_data(self) -> bool:
        """True once at least :data:`MIN_POINTS_FOR_GRAPH` (2) samples are held."""
        return len(self._points) >= MIN_POINTS_FOR_GRAPH

    def clear(self) -> None:
        """Forget every sample (limits and name are kept)."""
        with self._lock:
            self._points.clear()

    def set_limits(self, cpu_limit: float, memory_limit_mb: float) -> None:
        """Update the panel limits (``limits.cpu`` in percent, memory in MiB; 0 = unlimited)."""
        with self._lock:
            self.cpu_limit = max(_finite(cpu_limit), 0.0)
            self.memory_limit_mb = max(_finite(memory_limit_mb), 0.0)

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

    def _snapshot(self) -> GraphData:
        with self._lock:
            return GraphData(self.server_name, self.cpu_limit, self.memory_limit_mb, tuple(self._points))

    def _generate(self, kind: GraphKind) -> bytes | None:
        snap = self._snapshot()
        if not snap.samples:
            return None
        try:
            return render_graph(snap, kind)
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
        self, server_id: str, server_name: str, cpu_limit: float = 0, memory_limit_mb: float = 0
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
