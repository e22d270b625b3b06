"""Typed, frozen results of the panel API. The panel's field names appear only in the ``from_*`` parsers."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Self

PowerSignal = Literal["start", "stop", "restart", "kill"]
POWER_SIGNALS: tuple[PowerSignal, ...] = ("start", "stop", "restart", "kill")

# Identifiers are opaque: the 8-character uuidShort, a full uuid, or Pterodactyl 1.12's prfx_ ids.
IDENTIFIER = re.compile(r"[A-Za-z0-9_-]{1,64}")
BIND_ALL = frozenset({"0.0.0.0", "::", "[::]", ""})  # an allocation that means "every address of the node"
LARGEST = 2**63  # no byte count, id or port of the panel's comes near; beyond it a value is nonsense


def number(value: Any) -> float:
    """A finite number from the panel (or a numeric string); null means 0. 1e400, NaN, "lots" are refused."""
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"not a number: {str(value)[:40]!r}")
    result = float(value)
    if not math.isfinite(result) or abs(result) >= LARGEST:
        raise ValueError(f"not a usable number: {value!r}")
    return result


def whole(value: Any) -> int:
    return int(number(value))


def identifier(value: Any) -> str:
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        raise ValueError(f"not a server identifier: {str(value)[:80]!r}")
    return value


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

    def public_address(self, node_host: str | None) -> str:
        """Where players connect: the alias, else the IP, else (bound to every address) the node's
        public name, as the panel's own UI shows it."""
        host = self.alias or (node_host if self.ip in BIND_ALL and node_host else self.ip)
        return f"[{host}]:{self.port}" if ":" in host and not host.startswith("[") else f"{host}:{self.port}"

    @classmethod
    def from_api(cls, attributes: Mapping[str, Any]) -> Self:
        # The Client API calls it ip_alias, the Application API alias.
        alias = attributes.get("alias", attributes.get("ip_alias")) or None
        port = whole(attributes["port"])
        if not 0 < port < 65536:
            raise ValueError(f"not a port: {port}")
        return cls(ip=str(attributes["ip"]), port=port, alias=str(alias) if alias else None)


@dataclass(frozen=True, slots=True)
class ServerLimits:
    cpu: float  # percent of one thread; 0 means unlimited
    memory_mb: int  # MiB; 0 means unlimited
    disk_mb: int  # MiB; 0 means unlimited

    @classmethod
    def from_api(cls, limits: Mapping[str, Any]) -> Self:
        return cls(
            cpu=number(limits.get("cpu")),
            memory_mb=whole(limits.get("memory")),
            disk_mb=whole(limits.get("disk")),
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
    node_host: str | None = None  # the node's public name (its FQDN), for bind-all allocations

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
            id=whole(attributes["id"]),
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
        sftp = attributes.get("sftp_details") or {}
        return cls(
            id=whole(attributes.get("internal_id")),
            node_host=str(sftp["ip"]) if isinstance(sftp, dict) and sftp.get("ip") else None,
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
            "identifier": identifier(attributes["identifier"]),
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
        if not isinstance(usage, dict):
            raise TypeError("resources is not an object")
        return cls(
            current_state=str(attributes.get("current_state") or "offline"),
            is_suspended=bool(attributes.get("is_suspended")),
            cpu_absolute=number(usage.get("cpu_absolute")),
            memory_bytes=whole(usage.get("memory_bytes")),
            disk_bytes=whole(usage.get("disk_bytes")),
            network_rx_bytes=whole(usage.get("network_rx_bytes")),
            network_tx_bytes=whole(usage.get("network_tx_bytes")),
            uptime_ms=whole(usage.get("uptime")),
        )


@dataclass(frozen=True, slots=True)
class Account:
    """The user a client key belongs to (GET /api/client/account)."""

    id: int
    username: str
    admin: bool

    @classmethod
    def from_api(cls, attributes: Mapping[str, Any]) -> Self:
        return cls(
            whole(attributes.get("id")), str(attributes.get("username") or "?"), bool(attributes.get("admin"))
        )
