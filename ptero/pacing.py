"""Pacing of Discord edits: per channel within Discord's edit limit, and per card after a refusal."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


class ChannelPacer:
    """Keeps message edits in one channel under Discord's limit (about 5 per 5 s per channel).

    A slot is reserved at once (no lock), at the earliest time the last ``burst`` edits allow; an
    edit that would have to wait longer than its caller allows gets no slot and is simply done in a
    later cycle. So 100 cards in one channel are worked through at Discord's pace, without queueing
    behind discord.py's own rate-limit sleeps and timing out.
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

    async def slot(self, channel_id: int, max_wait: float) -> bool:
        """Wait for an edit slot in the channel; False (no slot taken) when it is further than max_wait."""
        now = self._clock()
        slots = self._slots.setdefault(channel_id, deque())
        while slots and slots[0] <= now - self.per:
            slots.popleft()
        at = now if len(slots) < self.burst else slots[-self.burst] + self.per
        if at - now > max_wait:
            return False
        slots.append(at)
        if at > now:
            await self._sleep(at - now)
        return True


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
