"""Benchmark for the core (issue 2): run `python bench/core_bench.py`.

1. One update cycle's resource fetches for 200 servers against the fake panel with 50 ms injected
   latency: the concurrent PterodactylAPI vs one request at a time (the seed's global lock).
   Target: at least 8x faster, with zero 429s (the panel keeps its real 720/min client limit).
2. Combined-graph render time, median over 30 renders: ours vs a naive pyplot + tight_layout
   render of the same figure (bench/graph_bench.py). Target: at most half of the naive time.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.graph_bench import run_graph_bench  # noqa: E402
from pterodisbot import PterodactylAPI, ServerResources  # noqa: E402
from tests.fake_panel import DEFAULT_APP_KEY, DEFAULT_CLIENT_KEY, FakePanel  # noqa: E402

SERVERS = 200
LATENCY = 0.05


async def fetch_cycle(max_concurrency: int) -> tuple[float, int, int]:
    """Seconds for one cycle of SERVERS resource fetches; (seconds, ok results, 429s)."""
    async with FakePanel(latency=LATENCY) as panel:
        ids = [s.identifier for s in panel.add_servers(SERVERS, state="running", cpu=12.5)]
        api = PterodactylAPI(panel.url, DEFAULT_CLIENT_KEY, DEFAULT_APP_KEY, max_concurrency=max_concurrency)
        async with api:
            started = time.perf_counter()
            results = await api.get_many_resources(ids)
            seconds = time.perf_counter() - started
        ok = sum(isinstance(r, ServerResources) for r in results.values())
        return seconds, ok, panel.too_many_requests


async def main() -> None:
    print(f"1. Resource fetches for {SERVERS} servers, {LATENCY * 1000:.0f} ms panel latency, 720/min limit")
    sequential, seq_ok, seq_429 = await fetch_cycle(max_concurrency=1)
    concurrent, con_ok, con_429 = await fetch_cycle(max_concurrency=16)
    speedup = sequential / concurrent
    print(f"   {'':28}{'one at a time':>16}{'concurrent (16)':>18}")
    print(f"   {'cycle seconds':28}{sequential:>16.2f}{concurrent:>18.2f}")
    print(f"   {'servers answered':28}{seq_ok:>16}{con_ok:>18}")
    print(f"   {'429s':28}{seq_429:>16}{con_429:>18}")
    verdict = "PASS" if speedup >= 8 and con_429 == 0 and con_ok == SERVERS else "FAIL"
    print(f"   speed-up {speedup:.1f}x (target >= 8x, zero 429s): {verdict}")

    print("2. Combined graph render, median of 30 renders")
    graph = run_graph_bench(30)
    print(f"   {'':28}{'naive pyplot':>16}{'ours':>18}")
    print(f"   {'milliseconds':28}{graph['naive_ms']:>16.1f}{graph['ours_ms']:>18.1f}")
    verdict = "PASS" if graph["ratio"] <= 0.5 else "FAIL"
    print(f"   ours / naive = {graph['ratio']:.3f} (target <= 0.5): {verdict}")


if __name__ == "__main__":
    asyncio.run(main())
