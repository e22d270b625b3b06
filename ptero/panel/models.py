"""Typed, frozen results of the panel API. The panel's field names appear only in the ``from_*`` parsers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

PowerSignal = Literal["start", "stop", "restart", "kill"]
POWER_SIGNALS: tuple[PowerSignal, ...] = ("start", "stop", "restart", "kill")

# Server statuses (not power states) under which the panel refuses /resources and /power with 409.
BLOCKING_STATUSES = frozenset({"suspended", "installing", "install_failed", "restoring_backup"})


@dataclass(frozen=True, slots=True)
class Allocation:
    ip: str
    port: int
    alias: str | None = None

    @property
    def address(self) -> str:
        host = self.alias or self.ip
        return f"{host}:{self.port}"

    @classmethod
    def from_api(cls, attributes: Mapping[str, Any]) -> Self:
        # The Client API calls it ip_alias, the Application API alias.
        alias = attributes.get("alias", attributes.get("ip_alias")) or None
        return cls(ip=str(attributes["ip"]), port=int(attributes["port"]), alias=alias)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    cpu: float  # percent of one thread; 0 means unlimited
    memory_mb: int  # MiB; 0 means unlimited
    disk_mb: int  # MiB; 0 means unlimited

    @classmethod
    def from_api(cls, limits: Mapping[str, Any]) -> Self:
        return cls(
            cpu=float(limits.get("cpu") or 0),
            memory_mb=int(limits.get("memory") or 0),
            disk_mb=int(limits.get("disk") or 0),
        )


@dataclass(frozen=True, slots=True)
class PanelServer:
    id: int
    identifier: str
    uuid: str
    name: str
    description: str
    status: str | None  # None, installing, install_failed, reinstall_failed, suspended, restoring_backup
    is_suspended: bool
    is_transferring: bool
    limits: ServerLimits
    node: str  # node name when known, else its id
    allocation: Allocation | None

    @property
    def blocking_status(self) -> str | None:
        """The panel status that makes it refuse resource and power calls, if any."""
        if self.is_suspended:
            return "suspended"
        if self.status in BLOCKING_STATUSES:
            return self.status
        if self.is_transferring:
            return "transferring"
        return None

    @classmethod
    def from_application(cls, attributes: Mapping[str, Any]) -> Self:
        """Parse an Application API server (with include=allocations,node when present)."""
        relationships = attributes.get("relationships") or {}
        node = str(attributes.get("node", ""))
        node_rel = relationships.get("node") or {}
        if node_rel.get("object") == "node" and node_rel.get("attributes"):
            node = str(node_rel["attributes"].get("name") or node)
        allocation = None
        primary_id = attributes.get("allocation")
        for item in (relationships.get("allocations") or {}).get("data") or []:
            if item.get("attributes", {}).get("id") == primary_id:
                allocation = Allocation.from_api(item["attributes"])
        return cls(
            id=int(attributes["id"]),
            **cls._common_fields(attributes),
            is_suspended=bool(attributes.get("suspended")) or attributes.get("status") == "suspended",
            is_transferring=False,  # not in the Application API's server item
            node=node,
            allocation=allocation,
        )

    @classmethod
    def from_client(cls, attributes: Mapping[str, Any]) -> Self:
        """Parse a Client API server (allocations always included, is_default marks the primary)."""
        relationships = attributes.get("relationships") or {}
        allocation = None
        for item in (relationships.get("allocations") or {}).get("data") or []:
            if item.get("attributes", {}).get("is_default"):
                allocation = Allocation.from_api(item["attributes"])
        return cls(
            id=int(attributes.get("internal_id") or 0),
            **cls._common_fields(attributes),
            is_suspended=bool(attributes.get("is_suspended")) or attributes.get("status") == "suspended",
            is_transferring=bool(attributes.get("is_transferring")),
            node=str(attributes.get("node", "")),
            allocation=allocation,
        )

    @staticmethod
    def _common_fields(attributes: Mapping[str, Any]) -> dict[str, Any]:
        """The fields both APIs name and shape alike."""
        return {
            "identifier": str(attributes["identifier"]),
            "uuid": str(attributes.get("uuid", "")),
            "name": str(attributes.get("name") or attributes["identifier"]),
            "description": str(attributes.get("description") or ""),
            "status": attributes.get("status"),
            "limits": ServerLimits.from_api(attributes.get("limits") or {}),
        }


@dataclass(frozen=True, slots=True)
class ServerResources:
    current_state: str  # offline, starting, running, stopping (or "stopped" when wings omits it)
    is_suspended: bool
    cpu_absolute: float  # 100 = one thread
    memory_bytes: int
    disk_bytes: int
    network_rx_bytes: int
    network_tx_bytes: int
    uptime_ms: int

    @classmethod
    def from_api(cls, attributes: Mapping[str, Any]) -> Self:
        usage = attributes["resources"]
        return cls(
            current_state=str(attributes.get("current_state") or "offline"),
            is_suspended=bool(attributes.get("is_suspended")),
            cpu_absolute=float(usage.get("cpu_absolute") or 0.0),
            memory_bytes=int(usage.get("memory_bytes") or 0),
            disk_bytes=int(usage.get("disk_bytes") or 0),
            network_rx_bytes=int(usage.get("network_rx_bytes") or 0),
            network_tx_bytes=int(usage.get("network_tx_bytes") or 0),
            uptime_ms=int(usage.get("uptime") or 0),
        )
