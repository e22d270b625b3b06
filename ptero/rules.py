"""Status rules, pure: when a card needs an edit, what state it shows, how far polling stretches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ptero.panel import NodeUnreachableError, PanelServer, PterodactylError, ServerResources

UpdateReason = Literal["first check", "state changed", "cpu changed", "forced refresh"]

# After this many failed cycles in a row a server is shown as "panel unreachable"; before that its
# last known data stays up, marked stale, so a short panel hiccup does not flap the embed.
UNREACHABLE_AFTER_FAILURES = 3


@dataclass(frozen=True, slots=True)
class TrackedState:
    """What a status message showed when it was last edited."""

    state: str
    cpu: float
    last_forced_update: float  # clock time of the last edit


def update_reason(
    previous: TrackedState | None,
    state: str,
    cpu: float,
    now: float,
    *,
    cpu_threshold: float,
    force_interval: float,
) -> UpdateReason | None:
    """Why a status message needs editing now, or None when it does not."""
    if previous is None:
        return "first check"
    if state != previous.state:
        return "state changed"
    if abs(cpu - previous.cpu) > cpu_threshold:
        return "cpu changed"
    if now - previous.last_forced_update >= force_interval:
        return "forced refresh"
    return None


def stretched_interval(servers: int, interval: float, budget_per_window: int, window: float = 61.0) -> float:
    """The polling interval at which whole cycles of ``servers`` requests fit the request budget.

    The budget allows ``budget_per_window`` requests in any ``window`` seconds and a cycle sends one
    request per server at once, so only whole cycles count: 150 servers in a 706-request window fit
    4 cycles, one every 15.75 s (13.0 s on average would leave every fifth cycle waiting mid-way).
    """
    if servers <= 0:
        return interval
    cycles_per_window = budget_per_window // servers
    if cycles_per_window == 0:  # not even one cycle fits: requests spread over the window
        return max(interval, servers * window / budget_per_window)
    spacing = window / cycles_per_window
    return interval if interval >= spacing else spacing + 0.5  # 0.5 s of slack for timer jitter


# Pelican's current_state when the panel cannot reach Wings (pelican.md): the node, not the server.
NODE_MISSING = "missing"
FailureKind = Literal["panel", "node"]


def failure_kind(result: ServerResources | PterodactylError) -> FailureKind | None:
    """What a check's result says failed: nothing (None), the panel, or the node behind it."""
    if isinstance(result, ServerResources):
        return "node" if result.current_state == NODE_MISSING else None
    return "node" if isinstance(result, NodeUnreachableError) else "panel"


def display_state(
    server: PanelServer | None,
    resources: ServerResources | None,
    failures: int,
    kind: FailureKind = "panel",
) -> str:
    """The state a card shows: the panel's blocking status wins over the power state; after a few
    failed checks in a row, "unreachable" (the panel) or "node_unreachable" (its node)."""
    if server is not None and server.blocking_status:
        return server.blocking_status
    if failures >= UNREACHABLE_AFTER_FAILURES or resources is None:
        return "node_unreachable" if kind == "node" and failures else "unreachable"
    return "offline" if resources.current_state == "stopped" else resources.current_state
