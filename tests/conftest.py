"""Shared fixtures: a fake panel on 127.0.0.1 and an API client pointed at it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

from pterodisbot import PterodactylAPI
from tests.fake_panel import DEFAULT_APP_KEY, DEFAULT_CLIENT_KEY, FakePanel


class RecordingSleep:
    """Stands in for asyncio.sleep in retry/backoff paths: records the delay, returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
async def panel() -> AsyncIterator[FakePanel]:
    async with FakePanel() as fake:
        yield fake


@pytest.fixture
def sleeps() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture
async def api(panel: FakePanel, sleeps: RecordingSleep) -> AsyncIterator[PterodactylAPI]:
    client = PterodactylAPI(panel.url, DEFAULT_CLIENT_KEY, DEFAULT_APP_KEY, timeout=2.0, sleep=sleeps)
    async with client:
        yield client
