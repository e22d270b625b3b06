"""Pacing of Discord edits: per channel within Discord's edit limit, and per card after a refusal."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


class ChannelPacer:
    """Keeps message edits in one channel under Discord's limit (about 5 per 5 s per channel).

    A slot is a send time: at most ``burst`` of them in any ``per`` seconds of one channel. Taking
    one is synchronous (no lock), so concurrent edits never overshoot; an edit that gets no slot at
    once is queued by the caller and waits for one, instead of queueing inside discord.py's own
    rate-limit sleeps until it times out.
    """

    def __init__(
        self,
        burst: int = 5,
        per: float = 5.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.burst, self.per = burst, per
        self._clock, self._sleep = clock, sleep
        self._slots: dict[int, deque[float]] = {}

    def _earliest(self, channel_id: int, now: float) -> float:
        slots = self._slots.setdefault(channel_id, deque())
        while slots and slots[0] <= now - self.per:
            slots.popleft()
        return now if len(slots) < self.burst else slots[-self.burst] + self.per

    def try_take(self, channel_id: int) -> float | None:
        """Take a slot now if there is one: its time (to give back with ``give_back``), else None."""
        now = self._clock()
        if self._earliest(channel_id, now) > now:
            return None
        self._slots[channel_id].append(now)
        return now

    async def take(self, channel_id: int) -> float:
        """Take the earliest slot, waiting for it."""
        now = self._clock()
        at = self._earliest(channel_id, now)
        self._slots[channel_id].append(at)
        if at > now:
            await self._sleep(at - now)
        return at

    def give_back(self, channel_id: int, at: float) -> None:
        """An edit that turned out unnecessary returns its slot."""
        slots = self._slots.get(channel_id)
        if slots is not None and at in slots:
            slots.remove(at)


@dataclass(slots=True)
class Backoff:
    """Exponential backoff of one card's edits after Discord refused one for good (400, 403)."""

    first: float = 30.0
    longest: float = 600.0
    step: int = 0
    until: float = float("-inf")

    def waiting(self, now: float) -> bool:
        return now < self.until

    def failed(self, now: float) -> float:
        """Count a refusal; returns how long to wait before the next try."""
        delay: float = min(self.first * 2.0**self.step, self.longest)
        self.step += 1
        self.until = now + delay
        return delay

    def succeeded(self) -> bool:
        """Reset; True when the card had been backing off."""
        was = self.step > 0
        self.step, self.until = 0, float("-inf")
        return was
