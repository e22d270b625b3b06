"""ptero.runtime: the redacting log formatter, the healthcheck, the writable-folder check."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from ptero.runtime import RedactingFormatter, UpdateLoop, check_writable, healthcheck, write_heartbeat

SECRET = "ptlc_" + "s" * 43


def test_formatter_redacts_secrets_in_messages_and_tracebacks() -> None:
    formatter = RedactingFormatter("%(levelname)s %(message)s", [SECRET, ""])
    try:
        raise RuntimeError(f"key {SECRET} refused")
    except RuntimeError as exc:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "sent %s", (SECRET,), (type(exc), exc, None)
        )
    text = formatter.format(record)
    assert SECRET not in text
    assert text.count("[redacted]") == 2  # the message and the exception line


def test_healthcheck_reads_the_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat.json"
    assert healthcheck(path) == 1  # no heartbeat yet
    write_heartbeat(path, 10.0)
    data = json.loads(path.read_text())
    assert healthcheck(path, now=data["at"] + 5) == 0
    assert healthcheck(path, now=data["at"] + 3 * 10 + 61) == 1  # three intervals and a minute: stale
    path.write_text("{not json")
    assert healthcheck(path) == 1


def test_check_writable_creates_folders_and_names_the_bad_ones(tmp_path: Path) -> None:
    assert check_writable(tmp_path / "embed", tmp_path / "logs") == []
    assert (tmp_path / "embed").is_dir() and (tmp_path / "logs").is_dir()
    (tmp_path / "file").write_text("not a folder")
    problems = check_writable(tmp_path / "file")
    assert len(problems) == 1 and "file is not writable" in problems[0]


class SteppingClock:
    """A monotonic clock and its sleep: sleeping moves the clock; a cycle may take time too."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds
        await asyncio.sleep(0)


async def test_the_update_loop_keeps_its_rhythm_and_never_makes_up_missed_cycles() -> None:
    clock = SteppingClock()
    durations = iter([1.0, 1.0, 25.0, 1.0, 1.0])  # the third cycle overruns two and a half intervals
    started: list[float] = []
    done = asyncio.Event()

    async def cycle() -> None:
        started.append(clock.now)
        clock.now += next(durations, 1.0)
        if len(started) == 5:
            done.set()

    loop = UpdateLoop(cycle, 10.0, clock=clock, sleep=clock.sleep)
    loop.start()
    await asyncio.wait_for(done.wait(), 5)
    await loop.stop()
    assert started[:5] == [
        100.0,
        110.0,
        120.0,
        145.0,
        155.0,
    ]  # one cycle at once after the overrun, then every 10 s
    assert not loop.running


async def test_a_failing_cycle_is_logged_and_the_loop_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    clock = SteppingClock()
    calls = 0
    done = asyncio.Event()

    async def cycle() -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            done.set()
        if calls == 1:
            raise RuntimeError("the panel answered nonsense")

    loop = UpdateLoop(cycle, 10.0, clock=clock, sleep=clock.sleep)
    loop.start()
    await asyncio.wait_for(done.wait(), 5)
    await loop.stop()
    assert "Update cycle failed; the next one runs as planned" in caplog.text
