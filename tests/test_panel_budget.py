"""ptero.panel.budget: the sliding-window request budget, on an injected clock."""

from __future__ import annotations

import pytest

from ptero.panel import RequestBudget


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def test_budget_lets_a_burst_through_then_waits_for_the_window() -> None:
    clock = FakeClock()
    budget = RequestBudget(500, clock=clock, sleep=clock.sleep)
    assert budget.reserve == 10 and budget.polling_per_minute == 490
    for _ in range(490):
        await budget.acquire()
    assert clock.slept == []  # a whole cycle goes out at once
    await budget.acquire()  # the 491st polling request waits for the first to leave the window
    assert clock.now == pytest.approx(1000.0 + RequestBudget.WINDOW)


async def test_power_actions_may_use_the_reserve() -> None:
    clock = FakeClock()
    budget = RequestBudget(500, clock=clock, sleep=clock.sleep)
    for _ in range(490):
        await budget.acquire()
    for _ in range(10):
        await budget.acquire(priority=True)
    assert clock.slept == []
    assert budget.delay(clock.now, priority=True) > 0


async def test_budget_learns_limit_and_outside_usage_from_headers() -> None:
    clock = FakeClock()
    budget = RequestBudget(720, clock=clock, sleep=clock.sleep)
    await budget.acquire()
    budget.observe(limit=60, remaining=10)  # someone else used 49 of 60
    assert budget.limit == 60
    assert budget.used(clock.now) == 50
    for _ in range(budget.polling_per_minute - 50):  # 58 - 50: the rest of the window is ours
        await budget.acquire()
    assert clock.slept == []
    await budget.acquire()
    assert clock.slept and clock.now >= 1000.0 + 60.0  # waited for the outside usage to age out
