"""Live updates (Wings websockets) against polling, the bot as its own process: `python bench/live_bench.py`.

Both modes run at the same time, each against its own fake panel (with the real panel's 20 s
resource cache and 720/min client limit), its own fake Wings and its own Discord stand-in, with the
same 100 running servers (10 channels of 10 cards), the same CPU noise (one step a second, as Docker
samples) and the same state changes:

1. Freshness: 25 state changes, one every 12 s, from the panel's change to the PATCH that shows it
   on the card (p50 / p95 / max). Target: live p95 <= 1 s.
2. Panel cost: client-API requests per minute over 5 minutes, after a minute of warm-up (the sockets'
   start-up tokens are reported apart, and each socket's renewal every ~8.5 min is counted in).
   Target: live <= 5 % of polling.
3. Graph honesty: the share of a running server's consecutive graph samples taken from the same
   reading as the one before (the bot logs each sample's reading at DEBUG: the server's uptime, which
   a cached panel answer repeats). Target: 0 % live. The share of samples with equal CPU and memory
   is printed beside it (those may be real).

Then, alone:

4. Load: 200 servers live, stats once a second each, one console at 50 lines/s, after a minute of
   warm-up: the bot's CPU (utime + stime from /proc) and RSS over a minute of steady CPU (the cost of
   the sockets), then over a minute of the CPU noise above (cards edited and graphs drawn, as in
   polling mode; informational). Targets: <= 10 % of one core steady, < 150 MB in both.

About 11 minutes. Exit status 1 when a target is missed.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import statistics
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.bot_bench import (  # noqa: E402
    BotRun,
    CpuNoise,
    Row,
    bot_run,
    edit_showing,
    print_table,
    ticking,
    vm_rss_mb,
)
from tests.fake_wings import WingsConfig  # noqa: E402

SAMPLE = re.compile(r"metrics (\w+): cpu=([\d.]+)% mem=([\d.]+)MiB")
READING = re.compile(r"Graph sample of (\w+): the reading at uptime (\d+) ms")
WARM_UP = 60.0
MEASURE = 300.0
CHANGES = 25


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])
    return ticks / 100.0  # USER_HZ


def client_requests(run: BotRun, start: float, end: float) -> list[str]:
    return [r.path for r in run.panel.requests if start <= r.at < end and r.path.startswith("/api/client")]


def percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


async def compare(
    say: object,
) -> tuple[dict[str, list[float]], dict[str, dict[str, float]], dict[str, float]]:
    """Run both modes side by side; (latencies, costs, duplicate shares) per mode."""
    latencies: dict[str, list[float]] = {}
    costs: dict[str, dict[str, float]] = {}
    duplicates: dict[str, float] = {}

    async def one(mode: str) -> None:
        async with bot_run(
            print,
            servers=100,
            latency=0.02,
            interval=None,  # the default 10 s
            seed=11,
            channels=10,
            panel_options={"resource_cache_seconds": 20.0, "wings": True, "wings_config": WingsConfig()},
            env={"LIVE_UPDATES": "auto" if mode == "live" else "off"},
        ) as run:
            noise = CpuNoise(run.servers, seed=77, spike_chance=0.01, step_seconds=1.0)
            started = time.monotonic()
            async with ticking(noise):
                await asyncio.sleep(WARM_UP)
                measure_from = time.monotonic()
                changes = []
                targets = run.servers[::4][:CHANGES]
                for k, srv in enumerate(targets):
                    state = "stopping" if k % 2 == 0 else "starting"
                    noise.set_state(srv, state)
                    changes.append((srv, state, time.monotonic()))
                    await asyncio.sleep(MEASURE / CHANGES)
                measure_to = time.monotonic()
                await asyncio.sleep(25.0)  # let polling catch up on the last change
            edits = run.edits()
            delays = []
            for srv, state, when in changes:
                patch = edit_showing(run, edits, srv, state, when)
                delays.append(float("inf") if patch is None else patch.finished_at - when)
            latencies[mode] = delays
            requests = client_requests(run, measure_from, measure_to)
            minutes = (measure_to - measure_from) / 60.0
            tokens_at_start = len(
                [p for p in client_requests(run, started, measure_from) if p.endswith("/websocket")]
            )
            costs[mode] = {
                "per_minute": len(requests) / minutes,
                "tokens": float(sum(1 for p in requests if p.endswith("/websocket"))),
                "resources": float(sum(1 for p in requests if p.endswith("/resources"))),
                "start_tokens": float(tokens_at_start),
                "token_lifetime": run.panel.token_lifetime,  # 600 s, as the real panel's
            }
            # A copy is a sample taken from the same reading as the one before it (the panel's cached
            # answer repeats the server's uptime to the millisecond); equal values alone may be real.
            readings: dict[str, list[str]] = {}
            values: dict[str, list[tuple[str, str]]] = {}
            for line in run.log.lines:
                if match := READING.search(line):
                    readings.setdefault(match[1], []).append(match[2])
                elif match := SAMPLE.search(line):
                    values.setdefault(match[1], []).append((match[2], match[3]))
            for name, series in (("copies", readings), ("equal", values)):
                # Past the first minute of each series (the graph's window).
                pairs = [a == b for one in series.values() for a, b in itertools.pairwise(one[6:])]
                duplicates[f"{mode} {name}"] = 100.0 * sum(pairs) / len(pairs) if pairs else float("nan")

    await asyncio.gather(one("live"), one("polling"))
    return latencies, costs, duplicates


async def load(say: object) -> dict[str, float]:
    """200 live servers, stats every second, one busy console. Two minutes are measured on one bot:
    first with steady CPU (the cost of the sockets themselves), then with the CPU noise of 1-3 (cards
    edited and graphs drawn, as the cycle's rules decide). CPU % of one core, VmRSS MB, edits each."""
    async with bot_run(
        print,
        servers=200,
        latency=0.0,
        interval=None,
        seed=12,
        channels=20,
        client_limit=720,
        panel_options={"wings": True, "wings_config": WingsConfig(stats_interval=1.0)},
        env={"LIVE_UPDATES": "auto"},
    ) as run:
        wings = run.panel.wings[1]
        found: dict[str, float] = {}

        async def minute(name: str) -> None:
            before, at, edits = cpu_seconds(run.pid), time.monotonic(), len(run.edits())
            await asyncio.sleep(60.0)
            used, elapsed = cpu_seconds(run.pid) - before, time.monotonic() - at
            found[f"{name} cpu"] = 100.0 * used / elapsed
            found[f"{name} rss"] = vm_rss_mb(run.pid)
            found[f"{name} edits"] = float(len(run.edits()) - edits)

        await asyncio.sleep(WARM_UP)
        wings.console_rate(run.servers[0], 50)
        await asyncio.sleep(5.0)
        await minute("steady")
        noise = CpuNoise(run.servers, seed=78, spike_chance=0.01, step_seconds=1.0)
        async with ticking(noise):
            await asyncio.sleep(20.0)  # the cycles after the first moves
            await minute("moving")
        wings.console_rate(run.servers[0], 0)
        found["sockets"] = float(wings.authenticated_sockets())
        return found


async def main() -> int:
    print("$ python bench/live_bench.py")
    started = time.monotonic()
    print(
        "1-3. live and polling side by side: 100 servers, 20 s resource cache, 720/min, UPDATE_INTERVAL 10 s"
    )
    latencies, costs, duplicates = await compare(print)
    rows: list[Row] = []
    for mode in ("live", "polling"):
        values = latencies[mode]
        finite = [v for v in values if v != float("inf")]
        missing = len(values) - len(finite)
        print(
            f"   {mode}: changes to the card, s: p50 {statistics.median(finite):.3f}, "
            f"p95 {percentile(finite, 0.95):.3f}, max {max(finite):.3f}; never shown: {missing}"
        )
        cost = costs[mode]
        print(
            f"   {mode}: {cost['per_minute']:.1f} client-API requests/min over {MEASURE / 60:.0f} min "
            f"({cost['resources']:.0f} resources, {cost['tokens']:.0f} websocket tokens; "
            f"{cost['start_tokens']:.0f} tokens during the warm-up minute)"
        )
        print(
            f"   {mode}: {duplicates[mode + ' copies']:.2f} % of consecutive graph samples are copies of the "
            f"reading before; {duplicates[mode + ' equal']:.2f} % show the same CPU and memory"
        )
    live, poll = latencies["live"], latencies["polling"]
    p95_live, p95_poll = percentile(live, 0.95), percentile(poll, 0.95)
    # The window holds no token renewal (a token lives 10 min); count each socket's renewals in, at the
    # earliest Wings asks for them: "token expiring" comes with 60 s left, checked every 30 s.
    wings = WingsConfig()
    lifetime = costs["live"]["token_lifetime"]
    renew_every = (lifetime - wings.expiring_threshold - wings.expiry_check_interval) / 60
    live_cost = costs["live"]["per_minute"] + costs["live"]["start_tokens"] / renew_every
    share = 100.0 * live_cost / costs["polling"]["per_minute"]
    live_share = f"{live_cost:.1f} ({share:.1f} %)"
    print(
        f"   live, with each socket's token renewal every {renew_every:.1f} min counted in: "
        f"{live_cost:.1f} requests/min"
    )
    rows += [
        Row(
            f"1. freshness p95 ({CHANGES} changes), live",
            f"{p95_live:.3f} s",
            "<= 1 s",
            f"{p95_poll:.1f} s polling",
            p95_live <= 1.0,
        ),
        Row(
            "1. freshness p50 / max, live",
            f"{statistics.median(live):.3f} / {max(live):.3f} s",
            "info",
            f"{statistics.median(poll):.1f} / {max(poll):.1f} s polling",
            None,
        ),
        Row(
            "2. client-API requests/min, 100 servers, renewals in",
            live_share,
            "<= 5 % of polling",
            f"{costs['polling']['per_minute']:.1f} polling",
            share <= 5.0,
        ),
        Row(
            "3. graph samples copied from the reading before, live",
            f"{duplicates['live copies']:.1f} %",
            "0 %",
            f"{duplicates['polling copies']:.1f} % polling",
            duplicates["live copies"] == 0.0,
        ),
    ]
    print("4. load: 200 servers live, stats every second, one console at 50 lines/s, 60 s")
    found = await load(print)
    for name, what in (("steady", "steady CPU"), ("moving", "CPU noise as in 1-3")):
        print(
            f"   {what}: bot CPU {found[name + ' cpu']:.1f} % of one core, "
            f"VmRSS {found[name + ' rss']:.0f} MB, {found[name + ' edits']:.0f} card edits in the minute"
        )
    print(f"   {found['sockets']:.0f} sockets authenticated at the end")
    rows += [
        Row(
            "4. bot CPU, 200 live sockets + a busy console",
            f"{found['steady cpu']:.1f} %",
            "<= 10 % of a core",
            "-",
            found["steady cpu"] <= 10.0,
        ),
        Row(
            "4. the same with CPU noise (edits + graphs)",
            f"{found['moving cpu']:.1f} %",
            "info",
            f"{found['moving edits']:.0f} edits/min",
            None,
        ),
        Row(
            "4. VmRSS, 200 live sockets (the larger)",
            f"{max(found['steady rss'], found['moving rss']):.0f} MB",
            "< 150 MB",
            "-",
            max(found["steady rss"], found["moving rss"]) < 150.0,
        ),
    ]
    print(f"Summary ({time.monotonic() - started:.0f} s in all)")
    print_table(rows)
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
