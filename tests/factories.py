"""Builders of panel data for pure tests (no server needed)."""

from __future__ import annotations

from ptero.panel import Allocation, PanelServer, ServerLimits, ServerResources


def make_server(**overrides: object) -> PanelServer:
    values: dict[str, object] = {
        "id": 1,
        "identifier": "1a2b3c4d",
        "uuid": "1a2b3c4d-0000-0000-0000-000000000000",
        "name": "Survival",
        "description": "Vanilla survival world",
        "status": None,
        "is_suspended": False,
        "is_transferring": False,
        "limits": ServerLimits(cpu=200, memory_mb=2048, disk_mb=10240),
        "node": "Node 1",
        "allocation": Allocation("10.0.0.5", 25565, "play.example.com"),
    }
    values.update(overrides)
    return PanelServer(**values)  # type: ignore[arg-type]


def make_resources(state: str = "running", cpu: float = 45.5, **overrides: object) -> ServerResources:
    values: dict[str, object] = {
        "current_state": state,
        "is_suspended": False,
        "cpu_absolute": cpu,
        "memory_bytes": 512 * 1024 * 1024,
        "disk_bytes": 3 * 1024**3,
        "network_rx_bytes": 1536,
        "network_tx_bytes": 10 * 1024 * 1024,
        "uptime_ms": 3_723_000,
    }
    values.update(overrides)
    return ServerResources(**values)  # type: ignore[arg-type]
