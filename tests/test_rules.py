"""ptero.rules: the pure update decision, the display state and the polling stretch."""

from __future__ import annotations

import pytest

from ptero.rules import (
    UNREACHABLE_AFTER_FAILURES,
    TrackedState,
    display_state,
    stretched_interval,
    update_reason,
)
from tests.factories import make_resources, make_server

RULES = {"cpu_threshold": 50.0, "force_interval": 600.0}


def test_first_check_always_edits() -> None:
    assert update_reason(None, "offline", 0.0, 0.0, **RULES) == "first check"


def test_state_change_edits() -> None:
    prev = TrackedState("offline", 0.0, 100.0)
    assert update_reason(prev, "starting", 0.0, 101.0, **RULES) == "state changed"
    assert update_reason(prev, "offline", 0.0, 101.0, **RULES) is None


@pytest.mark.parametrize(
    ("cpu", "expected"),
    [
        (60.0, None),
        (110.0, None),
        (110.001, "cpu changed"),
        (9.999, "cpu changed"),
        (10.0, None),
        (160.0, "cpu changed"),
    ],
)
def test_cpu_threshold_is_strictly_more_than_50_points(cpu: float, expected: str | None) -> None:
    prev = TrackedState("running", 60.0, 100.0)
    assert update_reason(prev, "running", cpu, 150.0, **RULES) == expected


@pytest.mark.parametrize(
    ("elapsed", "expected"), [(599.999, None), (600.0, "forced refresh"), (900.0, "forced refresh")]
)
def test_forced_refresh_after_force_interval(elapsed: float, expected: str | None) -> None:
    prev = TrackedState("running", 10.0, 1000.0)
    assert update_reason(prev, "running", 10.0, 1000.0 + elapsed, **RULES) == expected


def test_state_change_takes_precedence_over_other_reasons() -> None:
    prev = TrackedState("running", 10.0, 0.0)
    assert update_reason(prev, "stopping", 99.0, 10_000.0, **RULES) == "state changed"


def test_stretched_interval_fits_whole_cycles_in_the_budget_window() -> None:
    assert stretched_interval(100, 10.0, 706) == 10.0  # 7 cycles of 100 fit 706 per 61 s
    assert stretched_interval(150, 10.0, 706) == pytest.approx(61 / 4 + 0.5)  # 4 cycles of 150 fit
    assert stretched_interval(1000, 10.0, 706) == pytest.approx(1000 * 61 / 706)  # not even one
    assert stretched_interval(0, 10.0, 706) == 10.0
    assert stretched_interval(200, 0.05, 980_000) == 0.05  # a raised panel limit: no stretching at all


@pytest.mark.parametrize("servers", [1, 50, 100, 101, 150, 353, 354, 700, 2000])
def test_stretched_cycles_never_exceed_the_budget_in_any_window(servers: int) -> None:
    budget, window = 706, 61.0
    interval = stretched_interval(servers, 10.0, budget, window)
    cycles_in_a_window = int(window // interval) + 1  # most cycle starts in any window-long span
    if servers <= budget:
        assert cycles_in_a_window * servers <= budget
    else:  # one cycle is more than the budget: its requests at least spread over the interval
        assert interval >= servers * window / budget


def test_display_state_prefers_blocking_status_and_marks_unreachable() -> None:
    server = make_server()
    assert display_state(server, make_resources("running"), 0) == "running"
    assert display_state(server, make_resources("stopped"), 0) == "offline"
    assert display_state(server, make_resources("running"), UNREACHABLE_AFTER_FAILURES - 1) == "running"
    assert display_state(server, make_resources("running"), UNREACHABLE_AFTER_FAILURES) == "unreachable"
    assert display_state(server, None, 0) == "unreachable"
    assert display_state(make_server(is_suspended=True), None, 5) == "suspended"
    assert display_state(make_server(status="installing"), None, 0) == "installing"
    assert display_state(make_server(is_transferring=True), make_resources(), 0) == "transferring"
