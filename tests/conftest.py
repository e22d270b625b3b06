"""Shared fixtures and helpers: a fake panel on 127.0.0.1, an API client pointed at it, the one fake
clock and the one PNG reader every test uses."""

from __future__ import annotations

import asyncio
import logging
import os
import struct
from collections.abc import AsyncIterator, Iterator

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

from pterodisbot import PterodactylAPI
from tests.fake_panel import FakePanel

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ManualClock:
    """A clock (monotonic or wall, as the code under test needs) that only the test moves."""

    def __init__(self, start: float = 10_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def png_size(data: bytes | None) -> tuple[int, int]:
    """Check a PNG's framing (signature, IHDR first, IEND last); return (width, height)."""
    assert isinstance(data, bytes), type(data)
    assert data[:8] == PNG_SIGNATURE, data[:16]
    length, chunk_type = struct.unpack(">I4s", data[8:16])
    assert (length, chunk_type) == (13, b"IHDR")
    width, height = struct.unpack(">II", data[16:24])
    assert data[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"
    return width, height


class RecordingSleep:
    """Stands in for asyncio.sleep in retry/backoff paths: records the delay, returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture(params=["pterodactyl", "pelican"])
def flavour(request: pytest.FixtureRequest) -> str:
    """Which panel a test runs against: every test that asks for it runs against both."""
    param: str = request.param
    return param


@pytest.fixture
async def panel(flavour: str) -> AsyncIterator[FakePanel]:
    async with FakePanel(flavour=flavour) as fake:
        yield fake


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def api(panel: FakePanel, sleeps: RecordingSleep) -> AsyncIterator[PterodactylAPI]:
    client = PterodactylAPI(panel.url, panel.client_key, panel.app_key, timeout=2.0, sleep=sleeps)
    async with client:
        yield client


class LogWaiter(logging.Handler):
    """Wakes a test when a log line containing some text is written (no polling, no sleeps)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        self._changed.set()

    def text(self) -> str:
        return "\n".join(self.lines)

    async def wait_for(self, fragment: str, timeout: float = 5.0) -> str:
        async with asyncio.timeout(timeout):
            while True:
                found = next((line for line in self.lines if fragment in line), None)
                if found is not None:
                    return found
                self._changed.clear()
                await self._changed.wait()


@pytest.fixture
def log_waiter() -> Iterator[LogWaiter]:
    waiter = LogWaiter()
    root = logging.getLogger("ptero")
    previous = root.level
    root.addHandler(waiter)
    root.setLevel(logging.DEBUG)
    try:
        yield waiter
    finally:
        root.removeHandler(waiter)
        root.setLevel(previous)
