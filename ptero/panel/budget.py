"""A sliding-window request budget per API key, kept under the panel's per-minute limit."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class BudgetExhausted(Exception):
    """The request would have to wait longer than its caller allows; it was not sent."""

    def __init__(self, wait: float) -> None:
        self.wait = wait
        super().__init__(f"the request budget allows the next request in {wait:.0f} s")


class RequestBudget:
    """Keeps one API key's requests under the panel's per-minute limit.

    The panel counts requests per user in fixed 60 s windows. We keep a log of our own send times
    and allow a request only while fewer than the limit were sent in the last WINDOW seconds: a
    sliding window is never looser than any fixed one, so a normal cycle cannot earn a 429, and
    unlike a token bucket it still lets a whole cycle go out at once. Requests seen by the panel but
    not sent by us (someone using the panel with the same account) are learned from
    X-RateLimit-Remaining and counted for a minute. Power actions may use the last ``reserve``
    slots; polling may not, so a click is never starved by the update task.
    """

    WINDOW = 61.0  # one second of slack for clock skew and latency between us and the panel
    MAX_PAUSE = 60.0  # the panel's window is a minute: a longer Retry-After is not believed

    def __init__(
        self,
        limit_per_minute: int,
        *,
        reserve_ratio: float = 0.02,  # 14 of 720: clicks are few, polling needs the rest
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.limit = limit_per_minute
        self.reserve_ratio = reserve_ratio
        self._clock = clock
        self._sleep = sleep
        self._sent: deque[float] = deque()
        self._external = 0
        self._external_until = 0.0
        self._paused_until = 0.0

    @property
    def reserve(self) -> int:
        return max(2, int(self.limit * self.reserve_ratio))

    @property
    def polling_per_minute(self) -> int:
        """Requests per minute that routine polling may use."""
        return max(1, self.limit - self.reserve)

    def used(self, now: float) -> int:
        while self._sent and self._sent[0] <= now - self.WINDOW:
            self._sent.popleft()
        external = self._external if now < self._external_until else 0
        return len(self._sent) + external

    def delay(self, now: float, priority: bool = False) -> float:
        """Seconds until a request may be sent (0 when it may go now)."""
        if now < self._paused_until:
            return self._paused_until - now
        allowed = self.limit if priority else self.polling_per_minute
        over = self.used(now) - allowed + 1
        if over <= 0:
            return 0.0
        if over > len(self._sent):  # only external usage blocks us: wait for it to expire
            return max(0.05, self._external_until - now)
        return max(0.01, self._sent[over - 1] + self.WINDOW - now)

    async def acquire(self, priority: bool = False, max_wait: float = math.inf) -> None:
        """Wait for a slot, then take it; BudgetExhausted (and no slot) when it is further than max_wait."""
        waited = 0.0
        while True:
            now = self._clock()
            wait = self.delay(now, priority)
            if wait <= 0:
                self._sent.append(now)
                return
            if waited + wait > max_wait:
                raise BudgetExhausted(wait)
            waited += wait
            await self._sleep(wait)

    def observe(self, limit: int | None, remaining: int | None) -> None:
        """Learn from X-RateLimit-Limit / X-RateLimit-Remaining."""
        now = self._clock()
        if limit and limit > 0:
            self.limit = limit
        if remaining is not None and limit:
            ours = len(self._sent)
            external = max(0, (limit - remaining) - ours)
            if external > 0:
                self._external = external
                self._external_until = now + 60.0

    def pause(self, seconds: float) -> None:
        """The panel answered 429: send nothing more until it said we may (at most MAX_PAUSE)."""
        if not seconds <= self.MAX_PAUSE:  # also a nan or inf Retry-After
            log.warning(
                "The panel asked the bot to wait %.0f s; waiting %.0f s (its rate-limit window is a minute)",
                seconds,
                self.MAX_PAUSE,
            )
            seconds = self.MAX_PAUSE
        self._paused_until = max(self._paused_until, self._clock() + max(0.0, seconds))
