"""Pterodisbot: live Pterodactyl game-server status and power buttons in Discord.

Data flow, one section each below:

    panel --HTTP--> PterodactylAPI --> update decision --> metrics/graphs --> embed --> Discord
                    (2. API client)    (4. pure logic)    (server_metrics_   (5.)      (6. bot)
                                                           graphs.py)
1. Configuration   environment over config.ini, validated into a frozen Settings.
2. API client      aiohttp client for the Client and Application APIs: typed results, one error
                   tree, retries for GETs only, bounded concurrency and a rate-limit budget.
3. Embed store     embed/embed_locations.json, written atomically.
4. Update logic    the pure "does this message need an edit?" decision and small helpers.
5. Presentation    embed building, formatting, button custom ids, authorization.
6. Discord layer   buttons, the server picker, PterodactylBot and main().

Sections 1-4 never import discord; the API client can be lifted into its own module unchanged.
"""

from __future__ import annotations

import asyncio
import configparser
import contextlib
import hashlib
import io
import json
import logging
import logging.handlers
import os
import random
import re
import signal
import sys
import tempfile
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Self

import aiohttp
import discord
from discord import app_commands
from discord.ext import tasks

from server_metrics_graphs import ServerMetricsManager

log = logging.getLogger(__name__)

# ----------------------------------------------------------------------------------------------
# 1. Configuration
# ----------------------------------------------------------------------------------------------

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigValidationError(Exception):
    """Every configuration problem found at start-up, reported together."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(self.render())

    def render(self) -> str:
        lines = [f"Pterodisbot cannot start: {len(self.problems)} configuration problem(s):"]
        lines += [f"  - {problem}" for problem in self.problems]
        lines.append("Set them as environment variables or in config.ini (see config.ini.example).")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Settings:
    """The validated configuration. Secrets are kept out of repr()."""

    discord_token: str = field(repr=False)
    allowed_guild_id: int
    control_roles: tuple[str, ...]
    panel_url: str
    client_api_key: str = field(repr=False)
    application_api_key: str = field(repr=False)
    update_interval: float = 10.0
    force_update_interval: float = 600.0
    cpu_change_threshold: float = 50.0
    log_level: str = "INFO"

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.discord_token, self.client_api_key, self.application_api_key)


@dataclass(frozen=True, slots=True)
class ConfigKey:
    env: str
    section: str
    option: str
    attribute: str
    default: str | None  # None means required
    secret: bool = False


CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("DISCORD_TOKEN", "Discord", "Token", "discord_token", None, secret=True),
    ConfigKey("ALLOWED_GUILD_ID", "Discord", "AllowedGuildID", "allowed_guild_id", None),
    ConfigKey("CONTROL_ROLES", "Discord", "ControlRoles", "control_roles", "Game Server User"),
    ConfigKey("PTERODACTYL_URL", "Pterodactyl", "PanelURL", "panel_url", None),
    ConfigKey("PTERODACTYL_CLIENT_API_KEY", "Pterodactyl", "ClientAPIKey", "client_api_key", None, True),
    ConfigKey(
        "PTERODACTYL_APPLICATION_API_KEY",
        "Pterodactyl",
        "ApplicationAPIKey",
        "application_api_key",
        None,
        True,
    ),
    ConfigKey("UPDATE_INTERVAL", "Bot", "UpdateInterval", "update_interval", "10"),
    ConfigKey("FORCE_UPDATE_INTERVAL", "Bot", "ForceUpdateInterval", "force_update_interval", "600"),
    ConfigKey("CPU_CHANGE_THRESHOLD", "Bot", "CPUChangeThreshold", "cpu_change_threshold", "50"),
    ConfigKey("LOG_LEVEL", "Bot", "LogLevel", "log_level", "INFO"),
)


def mask_secret(value: str) -> str:
    """Show at most a key's 5-character type prefix and its last 4 characters."""
    if len(value) <= 12:
        return f"<{len(value)} characters>"
    return f"{value[:5]}…{value[-4:]}"


def _read_config_file(path: Path, problems: list[str]) -> dict[tuple[str, str], str]:
    """Read config.ini into {(section, option): value}; unknown sections or keys are problems."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep the documented case
    try:
        with path.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, UnicodeDecodeError, configparser.Error) as exc:
        problems.append(f"{path}: cannot be read: {type(exc).__name__}: {str(exc).splitlines()[0]}")
        return {}
    known = {(k.section.lower(), k.option.lower()): k for k in CONFIG_KEYS}
    known_sections = {k.section.lower() for k in CONFIG_KEYS}
    values: dict[tuple[str, str], str] = {}
    for option in parser.defaults():
        problems.append(f"{path}: [DEFAULT] {option} is not a known key (put it in its own section)")
    for section in parser.sections():
        if section.lower() not in known_sections:
            problems.append(f"{path}: unknown section [{section}] (known: Discord, Pterodactyl, Bot)")
            continue
        for option, value in parser.items(section, raw=True):
            if option in parser.defaults():
                continue
            key = known.get((section.lower(), option.lower()))
            if key is None:
                names = ", ".join(k.option for k in CONFIG_KEYS if k.section.lower() == section.lower())
                problems.append(f"{path}: unknown key {option} in [{section}] (known: {names})")
                continue
            values[(key.section, key.option)] = value.strip()
    return values


def load_settings(environ: Mapping[str, str], config_path: Path | None = None) -> Settings:
    """Build Settings from the environment over config.ini; raise ConfigValidationError listing all problems.

    The file is CONFIG_FILE from the environment, else ``config_path``, else ./config.ini; it is optional.
    """
    problems: list[str] = []
    explicit = environ.get("CONFIG_FILE")
    path = Path(explicit) if explicit else (config_path or Path("config.ini"))
    file_values: dict[tuple[str, str], str] = {}
    if path.is_file():
        file_values = _read_config_file(path, problems)
    elif explicit:
        problems.append(f"CONFIG_FILE points to {path}, which does not exist")

    raw: dict[str, tuple[str, str]] = {}  # attribute -> (value, where it came from)
    for key in CONFIG_KEYS:
        env_value = environ.get(key.env, "").strip()
        if env_value:
            raw[key.attribute] = (env_value, f"{key.env} (env)")
        elif file_values.get((key.section, key.option)):
            raw[key.attribute] = (
                file_values[(key.section, key.option)],
                f"[{key.section}] {key.option} ({path})",
            )
        elif key.default is not None:
            raw[key.attribute] = (key.default, f"{key.env} (default)")
        else:
            problems.append(f"{key.env} / [{key.section}] {key.option} is required but not set")

    parsed: dict[str, Any] = {}

    def check(attribute: str, convert: Callable[[str, str], Any]) -> None:
        if attribute not in raw:
            return
        value, where = raw[attribute]
        try:
            parsed[attribute] = convert(value, where)
        except ValueError as exc:
            problems.append(f"{where}: {exc}")

    def key_with_prefix(prefix: str) -> Callable[[str, str], str]:
        def convert(value: str, _where: str) -> str:
            if not value.startswith(prefix):
                raise ValueError(f"must start with {prefix!r} (got {mask_secret(value)})")
            if len(value) < 20:
                raise ValueError(f"is too short to be a panel API key (got {mask_secret(value)})")
            return value

        return convert

    def guild_id(value: str, _where: str) -> int:
        if not value.isdigit() or int(value) <= 0:
            raise ValueError(f"must be a positive integer guild id (got {value!r})")
        return int(value)

    def panel_url(value: str, _where: str) -> str:
        from urllib.parse import urlsplit

        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"must be an http(s) URL with a host, like https://panel.example.com (got {value!r})"
            )
        return value.rstrip("/")

    def positive_number(value: str, _where: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"must be a number of seconds (got {value!r})") from None
        if not number > 0 or number == float("inf"):
            raise ValueError(f"must be greater than 0 (got {value!r})")
        return number

    def non_negative_number(value: str, _where: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise ValueError(f"must be a number of percentage points (got {value!r})") from None
        if not number >= 0 or number == float("inf"):
            raise ValueError(f"must be 0 or more (got {value!r})")
        return number

    def roles(value: str, _where: str) -> tuple[str, ...]:
        names = tuple(part.strip() for part in value.split(",") if part.strip())
        if not names:
            raise ValueError("must name at least one role")
        return names

    def log_level(value: str, _where: str) -> str:
        if value.upper() not in LOG_LEVELS:
            raise ValueError(f"must be one of {', '.join(LOG_LEVELS)} (got {value!r})")
        return value.upper()

    def token(value: str, _where: str) -> str:
        if any(ch.isspace() for ch in value):
            raise ValueError(f"must not contain spaces (got {mask_secret(value)})")
        return value

    check("discord_token", token)
    check("allowed_guild_id", guild_id)
    check("control_roles", roles)
    check("panel_url", panel_url)
    check("client_api_key", key_with_prefix("ptlc_"))
    check("application_api_key", key_with_prefix("ptla_"))
    check("update_interval", positive_number)
    check("force_update_interval", positive_number)
    check("cpu_change_threshold", non_negative_number)
    check("log_level", log_level)

    if problems:
        raise ConfigValidationError(problems)
    return Settings(**parsed)


# ----------------------------------------------------------------------------------------------
# 2. Pterodactyl API client (no discord imports here)
# ----------------------------------------------------------------------------------------------

PowerSignal = Literal["start", "stop", "restart", "kill"]
POWER_SIGNALS: tuple[PowerSignal, ...] = ("start", "stop", "restart", "kill")
ApiKind = Literal["client", "application"]


class PterodactylError(Exception):
    """Root of everything the API client raises."""


class PterodactylConnectionError(PterodactylError):
    """The panel could not be reached, or did not answer in time."""


class MalformedResponseError(PterodactylError):
    """The panel answered something that is not the JSON we expect (HTML, a redirect, bad JSON)."""


class PterodactylAPIError(PterodactylError):
    """The panel answered with an HTTP error status."""

    def __init__(self, status: int, detail: str, code: str | None = None) -> None:
        self.status = status
        self.detail = detail
        self.code = code
        super().__init__(f"panel answered {status}: {detail}")


class PterodactylAuthError(PterodactylAPIError):
    """401 or 403: the key is wrong, of the wrong type, or lacks a permission."""


class ServerNotFoundError(PterodactylAPIError):
    """404."""


class ServerConflictError(PterodactylAPIError):
    """409: the server is suspended, installing, transferring, restoring a backup or its node is down."""


class RateLimitedError(PterodactylAPIError):
    """429, with the number of seconds the panel asked us to wait."""

    def __init__(self, status: int, detail: str, code: str | None = None, retry_after: float = 1.0) -> None:
        super().__init__(status, detail, code)
        self.retry_after = retry_after


class PanelServerError(PterodactylAPIError):
    """5xx: the panel or the node's daemon (wings) failed."""


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


# Server statuses (not power states) under which the panel refuses /resources and /power with 409.
BLOCKING_STATUSES = frozenset({"suspended", "installing", "install_failed", "restoring_backup"})


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

    async def acquire(self, priority: bool = False) -> None:
        while True:
            now = self._clock()
            wait = self.delay(now, priority)
            if wait <= 0:
                self._sent.append(now)
                return
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
        """The panel answered 429: send nothing more until it said we may."""
        self._paused_until = max(self._paused_until, self._clock() + seconds)


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class PterodactylAPI:
    """Async client for the panel's Client API (ptlc_ key) and Application API (ptla_ key).

    The owner opens it once (``await api.open()`` or ``async with``) and closes it at shutdown;
    all requests share one aiohttp session. Requests run concurrently, at most ``max_concurrency``
    at a time: one request at a time (the original design) cannot poll 100 servers at 100 ms
    latency within a 10 s cycle. Each key's RequestBudget keeps the total under the panel's limit.
    """

    def __init__(
        self,
        base_url: str,
        client_key: str,
        application_key: str,
        *,
        session: aiohttp.ClientSession | None = None,
        timeout: float = 10.0,
        max_concurrency: int = 16,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        max_retry_after: float = 30.0,
        client_limit: int = 720,
        application_limit: int = 240,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,  # for retry backoff
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._keys: dict[ApiKind, str] = {"client": client_key, "application": application_key}
        self._session = session
        self._owns_session = session is None
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(timeout, 5.0))
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self.budgets: dict[ApiKind, RequestBudget] = {
            "client": RequestBudget(client_limit, clock=clock),
            "application": RequestBudget(application_limit, clock=clock),
        }
        self.rate_limited_count = 0  # 429s received, for logs and the benchmark

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
            self._owns_session = True

    async def close(self) -> None:
        if self._session is not None and self._owns_session and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # -- public calls ---------------------------------------------------------------------------
    async def list_servers(self) -> list[PanelServer]:
        """Every server on the panel (Application API), following every page.

        The panel's ``links.next`` drops the query string (so include= and per_page= would be
        lost); we ask for each page number ourselves instead.
        """
        servers: list[PanelServer] = []
        page = 1
        while True:
            body = await self._get(
                "application",
                "/api/application/servers",
                {"page": str(page), "per_page": "100", "include": "allocations,node"},
            )
            for item in self._list_data(body):
                servers.append(self._parse(PanelServer.from_application, item))
            pagination = ((body.get("meta") or {}).get("pagination")) or {}
            total_pages = int(pagination.get("total_pages") or 1)
            if page >= total_pages:
                return servers
            page += 1

    async def get_server(self, identifier: str) -> PanelServer:
        body = await self._get("client", f"/api/client/servers/{_segment(identifier)}")
        return self._parse(PanelServer.from_client, self._item(body, "server"))

    async def get_primary_allocation(self, identifier: str) -> Allocation:
        body = await self._get("client", f"/api/client/servers/{_segment(identifier)}/network/allocations")
        for item in self._list_data(body):
            if item.get("is_default"):
                return self._parse(Allocation.from_api, item)
        raise MalformedResponseError(f"server {identifier} has no primary allocation")

    async def get_resources(self, identifier: str) -> ServerResources:
        body = await self._get("client", f"/api/client/servers/{_segment(identifier)}/resources")
        return self._parse(ServerResources.from_api, self._item(body, "stats"))

    async def get_many_resources(
        self, identifiers: Iterable[str]
    ) -> dict[str, ServerResources | PterodactylError]:
        """Resources of many servers at once; a failure is returned in place of that server's result."""

        async def one(identifier: str) -> ServerResources | PterodactylError:
            try:
                return await self.get_resources(identifier)
            except PterodactylError as exc:
                return exc

        ids = list(dict.fromkeys(identifiers))
        results = await asyncio.gather(*(one(i) for i in ids))
        return dict(zip(ids, results, strict=True))

    async def send_power_action(self, identifier: str, signal: PowerSignal) -> None:
        """Send a power signal. Never retried: a doubled restart is worse than a reported error."""
        if signal not in POWER_SIGNALS:
            raise ValueError(f"unknown power signal {signal!r}")
        await self._request(
            "client",
            "POST",
            f"/api/client/servers/{_segment(identifier)}/power",
            json_body={"signal": signal},
        )

    # -- plumbing -------------------------------------------------------------------------------
    @staticmethod
    def _parse(parser: Callable[[Mapping[str, Any]], Any], attributes: Mapping[str, Any]) -> Any:
        try:
            return parser(attributes)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedResponseError(f"unexpected panel data: {type(exc).__name__}: {exc}") from exc

    @staticmethod
    def _item(body: Any, expected: str) -> Mapping[str, Any]:
        if (
            not isinstance(body, dict)
            or body.get("object") != expected
            or not isinstance(body.get("attributes"), dict)
        ):
            raise MalformedResponseError(f"expected a {expected!r} object from the panel")
        return body["attributes"]

    @staticmethod
    def _list_data(body: Any) -> list[Mapping[str, Any]]:
        if (
            not isinstance(body, dict)
            or body.get("object") != "list"
            or not isinstance(body.get("data"), list)
        ):
            raise MalformedResponseError("expected a list object from the panel")
        items = []
        for item in body["data"]:
            if not isinstance(item, dict) or not isinstance(item.get("attributes"), dict):
                raise MalformedResponseError("malformed list item from the panel")
            items.append(item["attributes"])
        return items

    async def _get(self, api: ApiKind, path: str, params: Mapping[str, str] | None = None) -> Any:
        """GET with bounded retries (exponential backoff with jitter) on connection errors, 429, 5xx."""
        attempt = 0
        while True:
            try:
                return await self._request(api, "GET", path, params=params)
            except (PterodactylConnectionError, RateLimitedError, PanelServerError) as exc:
                if attempt >= self.max_retries:
                    raise
                delay = self.backoff_base * (2**attempt) * random.uniform(0.5, 1.5)
                if isinstance(exc, RateLimitedError):
                    if exc.retry_after > self.max_retry_after:
                        raise
                    delay = max(delay, exc.retry_after)
                attempt += 1
                log.debug("GET %s failed (%s); retry %d in %.2fs", path, exc, attempt, delay)
                await self._sleep(delay)

    async def _request(
        self,
        api: ApiKind,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
    ) -> Any:
        if self._session is None or self._session.closed:
            raise PterodactylError("the API client is not open (call open() first)")
        budget = self.budgets[api]
        priority = method != "GET"  # power actions: a member is waiting on them
        headers = {
            "Authorization": f"Bearer {self._keys[api]}",
            "Accept": "application/json",  # without it a bad key gets a 302 to an HTML login page
        }
        url = self.base_url + path
        # Power actions skip the concurrency queue (they are rare and someone is waiting); polling
        # takes its budget slot only once it may really go, so the slot's time is the send time.
        async with contextlib.nullcontext() if priority else self._semaphore:
            await budget.acquire(priority=priority)
            try:
                async with self._session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    headers=headers,
                    timeout=self._timeout,
                    allow_redirects=False,
                ) as response:
                    budget.observe(
                        _int_header(response.headers, "X-RateLimit-Limit"),
                        _int_header(response.headers, "X-RateLimit-Remaining"),
                    )
                    text = await response.text(errors="replace")
                    status = response.status
                    content_type = response.content_type
                    retry_after = response.headers.get("Retry-After")
            except TimeoutError as exc:
                raise PterodactylConnectionError(
                    f"{method} {path}: the panel did not answer in time"
                ) from exc
            except aiohttp.ClientError as exc:
                raise PterodactylConnectionError(
                    f"{method} {path}: cannot reach the panel ({type(exc).__name__})"
                ) from exc
        return self._interpret(api, method, path, status, content_type, text, retry_after)

    def _interpret(
        self,
        api: ApiKind,
        method: str,
        path: str,
        status: int,
        content_type: str,
        text: str,
        retry_after: str | None,
    ) -> Any:
        if 300 <= status < 400:
            raise MalformedResponseError(
                f"{method} {path}: the panel redirected ({status}), probably to its login page; "
                "check PTERODACTYL_URL"
            )
        is_json = content_type == "application/json" or content_type.endswith("+json")
        body: Any = None
        if text and is_json:
            try:
                body = json.loads(text)
            except ValueError as exc:
                if status < 400:
                    raise MalformedResponseError(f"{method} {path}: the panel sent malformed JSON") from exc
        elif text and status < 400:
            raise MalformedResponseError(
                f"{method} {path}: the panel answered {content_type or 'no content type'} instead of JSON"
            )
        if status < 300:
            return body
        detail, code = _error_detail(body, status)
        if status == 429:
            self.rate_limited_count += 1
            try:
                wait = float(retry_after) if retry_after else 1.0
            except ValueError:
                wait = 1.0
            self.budgets[api].pause(wait)
            raise RateLimitedError(status, detail, code, retry_after=wait)
        error_type: type[PterodactylAPIError] = PterodactylAPIError
        if status in (401, 403):
            error_type = PterodactylAuthError
        elif status == 404:
            error_type = ServerNotFoundError
        elif status == 409:
            error_type = ServerConflictError
        elif status >= 500:
            error_type = PanelServerError
        raise error_type(status, detail, code)


def _segment(identifier: str) -> str:
    """A server identifier as one safe path segment."""
    if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", identifier):
        raise ValueError(f"not a server identifier: {identifier!r}")
    return identifier


def _error_detail(body: Any, status: int) -> tuple[str, str | None]:
    """The panel's error detail from {"errors": [{"code", "status", "detail"}]} when present."""
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        if isinstance(first, dict):
            return str(first.get("detail") or f"HTTP {status}"), first.get("code")
    return f"HTTP {status}", None


# ----------------------------------------------------------------------------------------------
# 3. Embed store: embed/embed_locations.json
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EmbedLocation:
    channel_id: int
    message_id: int


class EmbedStore:
    """Where each server's status message lives, persisted as
    ``{"<server identifier>": {"channel_id": "<id>", "message_id": "<id>"}}``.

    Every save writes a temporary file in the same folder, fsyncs it and renames it over the old
    one, so a crash (even SIGKILL) mid-write leaves the previous or the new file, never a torn one.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._locations: dict[str, EmbedLocation] = {}

    def load(self) -> None:
        """Load the file; a corrupt or unreadable one is moved aside and the store starts empty."""
        self._locations = {}
        for leftover in self.path.parent.glob(".embed_locations-*.tmp"):  # from a crash mid-write
            with contextlib.suppress(OSError):
                leftover.unlink()
        if not self.path.exists():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("top level is not an object")
            locations = {}
            for server_id, entry in data.items():
                if not re.fullmatch(r"[A-Za-z0-9-]{1,64}", str(server_id)) or not isinstance(entry, dict):
                    raise ValueError(f"bad entry for {server_id!r}")
                locations[str(server_id)] = EmbedLocation(int(entry["channel_id"]), int(entry["message_id"]))
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
            aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            log.warning(
                "%s could not be read (%s); moved it to %s and starting with no status messages",
                self.path,
                exc,
                aside.name,
            )
            return
        self._locations = locations
        log.info("Loaded %d status message location(s) from %s", len(locations), self.path)

    def save(self) -> bool:
        """Write the file; on failure log it, keep the old file and the locations in memory, return False."""
        try:
            self._write()
        except OSError as exc:
            log.error(
                "Could not save %s (%s); status message locations are kept in memory only", self.path, exc
            )
            return False
        return True

    def _write(self) -> None:
        data = {
            server_id: {"channel_id": str(loc.channel_id), "message_id": str(loc.message_id)}
            for server_id, loc in sorted(self._locations.items())
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".embed_locations-", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(data, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp_name, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
            raise
        with contextlib.suppress(OSError):  # make the rename itself durable
            dir_fd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    def get(self, server_id: str) -> EmbedLocation | None:
        return self._locations.get(server_id)

    def set(self, server_id: str, location: EmbedLocation) -> bool:
        """Remember a server's message and save; False when the file could not be written."""
        self._locations[server_id] = location
        return self.save()

    def remove(self, server_id: str, expected: EmbedLocation | None = None) -> bool:
        """Forget a server's message (only if it is still ``expected``, when given) and save."""
        current = self._locations.get(server_id)
        if current is None or (expected is not None and current != expected):
            return False
        del self._locations[server_id]
        self.save()
        return True

    def items(self) -> list[tuple[str, EmbedLocation]]:
        return list(self._locations.items())

    def __len__(self) -> int:
        return len(self._locations)

    def __contains__(self, server_id: object) -> bool:
        return server_id in self._locations


# ----------------------------------------------------------------------------------------------
# 4. Update logic (pure)
# ----------------------------------------------------------------------------------------------

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


def display_state(server: PanelServer | None, resources: ServerResources | None, failures: int) -> str:
    """The state a status message shows: the panel's blocking status wins over the power state."""
    if server is not None and server.blocking_status:
        return server.blocking_status
    if failures >= UNREACHABLE_AFTER_FAILURES or resources is None:
        return "unreachable"
    return "offline" if resources.current_state == "stopped" else resources.current_state


# ----------------------------------------------------------------------------------------------
# 5. Presentation: formatting, embeds, custom ids, authorization
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateStyle:
    label: str
    colour: int


STATE_STYLES: dict[str, StateStyle] = {
    "running": StateStyle("🟢 Running", 0x57F287),
    "starting": StateStyle("🟡 Starting", 0xFEE75C),
    "stopping": StateStyle("🟠 Stopping", 0xE67E22),
    "offline": StateStyle("🔴 Offline", 0xED4245),
    "suspended": StateStyle("⛔ Suspended", 0x992D22),
    "installing": StateStyle("🛠️ Installing", 0x5865F2),
    "install_failed": StateStyle("⚠️ Install failed", 0xED4245),
    "restoring_backup": StateStyle("♻️ Restoring backup", 0x5865F2),
    "transferring": StateStyle("🚚 Transferring", 0x5865F2),
    "unreachable": StateStyle("❔ Panel unreachable", 0x95A5A6),
    "removed": StateStyle("🗑️ Removed from the panel", 0x4F545C),
}


def state_style(state: str) -> StateStyle:
    return STATE_STYLES.get(state, StateStyle(f"❔ {state.replace('_', ' ').capitalize()}", 0x95A5A6))


def format_bytes(value: float) -> str:
    """Binary units, as the panel shows them: 1.5 GiB."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    amount = float(value)
    for unit in units:
        if abs(amount) < 1024 or unit == units[-1]:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def format_limit_mb(limit_mb: int) -> str:
    return "∞" if limit_mb <= 0 else format_bytes(limit_mb * 1024 * 1024)


def format_uptime(ms: int) -> str:
    seconds = max(0, int(ms // 1000))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def format_cpu(cpu: float, limit: float) -> str:
    """``45.5% of 200%`` (100% = one thread), ``of ∞`` when the server has no CPU limit."""
    return f"{cpu:.1f}% of {'∞' if limit <= 0 else f'{limit:g}%'}"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """Everything a status message shows, independent of Discord."""

    server: PanelServer
    resources: ServerResources | None
    state: str
    stale: bool = False
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


GRAPH_FILENAME = "metrics.png"
EMBED_DESCRIPTION_LIMIT = 1000  # well under Discord's 4096: a status card, not an essay


def build_status_embed(snapshot: StatusSnapshot, *, graph_filename: str | None = None) -> discord.Embed:
    """The status card of one server. Pure: the same snapshot always gives the same embed."""
    server, res = snapshot.server, snapshot.resources
    style = state_style(snapshot.state)
    description = truncate(server.description.strip(), EMBED_DESCRIPTION_LIMIT) if server.description else ""
    if snapshot.stale and snapshot.state != "unreachable":
        note = "⚠️ The panel did not answer the last check; showing the last known data."
        description = f"{description}\n\n{note}" if description else note
    embed = discord.Embed(
        title=truncate(server.name, 256),
        description=description or None,
        colour=style.colour,
        timestamp=snapshot.updated_at,
    )
    embed.add_field(name="State", value=style.label, inline=True)
    embed.add_field(name="Node", value=truncate(server.node or "?", 1024), inline=True)
    live = res is not None and snapshot.state in ("running", "starting", "stopping", "unreachable")
    if res is not None:
        embed.add_field(name="CPU", value=format_cpu(res.cpu_absolute, server.limits.cpu), inline=True)
        embed.add_field(
            name="Memory",
            value=f"{format_bytes(res.memory_bytes)} / {format_limit_mb(server.limits.memory_mb)}",
            inline=True,
        )
        embed.add_field(
            name="Disk",
            value=f"{format_bytes(res.disk_bytes)} / {format_limit_mb(server.limits.disk_mb)}",
            inline=True,
        )
        if live:
            embed.add_field(
                name="Network",
                value=f"⬇ {format_bytes(res.network_rx_bytes)} · ⬆ {format_bytes(res.network_tx_bytes)}",
                inline=True,
            )
            embed.add_field(name="Uptime", value=format_uptime(res.uptime_ms), inline=True)
    embed.set_footer(text=truncate(f"{server.identifier} · last updated", 2048))
    if graph_filename:
        embed.set_image(url=f"attachment://{graph_filename}")
    return embed


def embed_fingerprint(embed: discord.Embed, graph: bytes | None) -> str:
    """What a message shows, minus its timestamp: equal fingerprints need no edit."""
    data = embed.to_dict()
    data.pop("timestamp", None)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode())
    digest.update(hashlib.sha256(graph).digest() if graph else b"-")
    return digest.hexdigest()


ButtonAction = Literal["start", "stop", "restart", "address"]
CUSTOM_ID_PREFIX = "pterodisbot"
CUSTOM_ID_PATTERN = r"pterodisbot:(?P<action>start|stop|restart|address):(?P<server>[A-Za-z0-9-]{1,64})"


def make_custom_id(action: ButtonAction, server_id: str) -> str:
    custom_id = f"{CUSTOM_ID_PREFIX}:{action}:{server_id}"
    if not re.fullmatch(CUSTOM_ID_PATTERN, custom_id) or len(custom_id) > 100:
        raise ValueError(f"cannot build a button id for server {server_id!r}")
    return custom_id


def parse_custom_id(custom_id: str) -> tuple[ButtonAction, str] | None:
    match = re.fullmatch(CUSTOM_ID_PATTERN, custom_id)
    if match is None:
        return None
    return match["action"], match["server"]  # type: ignore[return-value]


def may_control(
    role_ids: Iterable[int], role_names: Iterable[str], is_administrator: bool, control_roles: Iterable[str]
) -> bool:
    """Administrators always may; otherwise a role matching a control role by id or (case-blind) name."""
    if is_administrator:
        return True
    ids = {str(i) for i in role_ids}
    names = {n.casefold() for n in role_names}
    return any(entry in ids if entry.isdigit() else entry.casefold() in names for entry in control_roles)


def describe_panel_error(exc: PterodactylError, server_name: str) -> str:
    """A sentence a Discord member can act on. Never contains a key."""
    if isinstance(exc, ServerConflictError):
        return f"The panel refused: **{server_name}** is busy or blocked. The panel says: {exc.detail}"
    if isinstance(exc, PterodactylAuthError):
        return (
            "The panel refused the bot's API key (it lacks the permission for this action, or it was "
            "revoked). Ask the bot's admin to check the client API key."
        )
    if isinstance(exc, ServerNotFoundError):
        return f"The panel no longer knows **{server_name}**."
    if isinstance(exc, RateLimitedError):
        return f"The panel is rate limiting the bot; try again in {exc.retry_after:.0f} s."
    if isinstance(exc, PterodactylConnectionError | PanelServerError | MalformedResponseError):
        return "The panel is unreachable or not answering properly right now; try again in a minute."
    return f"The panel answered with an error: {exc}"


# ----------------------------------------------------------------------------------------------
# 6. Discord layer: buttons, server picker, the bot, main()
# ----------------------------------------------------------------------------------------------

BUTTON_LOOKS: dict[str, tuple[str, discord.ButtonStyle, str]] = {
    "start": ("Start", discord.ButtonStyle.success, "▶️"),
    "stop": ("Stop", discord.ButtonStyle.danger, "⏹️"),
    "restart": ("Restart", discord.ButtonStyle.primary, "🔄"),
    "address": ("Show Address", discord.ButtonStyle.secondary, "🌐"),
}


class ServerButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=CUSTOM_ID_PATTERN):
    """One of a status message's four buttons. The custom id carries the action and the server, so a
    click on a message posted before a restart of the bot still finds its handler."""

    def __init__(self, action: ButtonAction, server_id: str) -> None:
        label, style, emoji = BUTTON_LOOKS[action]
        super().__init__(
            discord.ui.Button(
                label=label, style=style, emoji=emoji, custom_id=make_custom_id(action, server_id)
            )
        )
        self.action: ButtonAction = action
        self.server_id = server_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> Self:
        return cls(match["action"], match["server"])  # type: ignore[arg-type]

    async def callback(self, interaction: discord.Interaction[PterodactylBot]) -> None:  # type: ignore[override]
        await interaction.client.handle_button(interaction, self.action, self.server_id)


class ServerStatusView(discord.ui.View):
    """Start, Stop, Restart and Show Address for one server; persistent (no timeout)."""

    def __init__(self, server_id: str) -> None:
        super().__init__(timeout=None)
        for action in ("start", "stop", "restart", "address"):
            self.add_item(ServerButton(action, server_id))  # type: ignore[arg-type]


PICKER_PAGE_SIZE = 25  # Discord's limit of options in one select menu


class ServerPickerView(discord.ui.View):
    """The private /server_status answer: a select menu of one page of servers, with paging."""

    def __init__(self, bot: PterodactylBot, servers: Sequence[PanelServer], user_id: int) -> None:
        super().__init__(timeout=600)
        self.bot = bot
        self.servers = sorted(servers, key=lambda s: (s.name.casefold(), s.identifier))
        self.user_id = user_id
        self.page = 0
        self.select: discord.ui.Select[ServerPickerView] = discord.ui.Select(
            placeholder="Choose a server to post its status here", row=0
        )
        self.select.callback = self._chosen  # type: ignore[method-assign]
        self.previous_button: discord.ui.Button[ServerPickerView] = discord.ui.Button(
            label="Previous", emoji="◀️", style=discord.ButtonStyle.secondary, row=1
        )
        self.next_button: discord.ui.Button[ServerPickerView] = discord.ui.Button(
            label="Next", emoji="▶️", style=discord.ButtonStyle.secondary, row=1
        )
        self.previous_button.callback = self._previous  # type: ignore[method-assign]
        self.next_button.callback = self._next  # type: ignore[method-assign]
        self.add_item(self.select)
        if self.page_count > 1:
            self.add_item(self.previous_button)
            self.add_item(self.next_button)

    @property
    def page_count(self) -> int:
        return max(1, -(-len(self.servers) // PICKER_PAGE_SIZE))

    def page_servers(self) -> list[PanelServer]:
        start = self.page * PICKER_PAGE_SIZE
        return self.servers[start : start + PICKER_PAGE_SIZE]

    def render(self) -> str:
        """Fill the select for the current page; return the message text (summary and page)."""
        self.select.options = []
        for server in self.page_servers():
            state = self.bot.known_state(server.identifier)
            state_text = state_style(state).label if state else "State not checked yet"
            description = f"{state_text} · {server.description}" if server.description else state_text
            self.select.options.append(
                discord.SelectOption(
                    label=truncate(server.name, 100),
                    value=server.identifier,
                    description=truncate(description, 100),
                )
            )
        self.previous_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.page_count - 1
        counts = {"running": 0, "offline": 0, "other": 0, "unknown": 0}
        for server in self.servers:
            state = self.bot.known_state(server.identifier)
            key = state if state in ("running", "offline") else ("unknown" if state is None else "other")
            counts[key] += 1
        parts = [
            f"**{len(self.servers)}** servers",
            f"🟢 {counts['running']} running",
            f"🔴 {counts['offline']} offline",
        ]
        if counts["other"]:
            parts.append(f"{counts['other']} starting, stopping or blocked")
        if counts["unknown"]:
            parts.append(f"{counts['unknown']} not checked yet")
        text = " · ".join(parts)
        if self.page_count > 1:
            shown = self.page_servers()
            first = self.page * PICKER_PAGE_SIZE + 1
            text += (
                f"\nPage {self.page + 1} of {self.page_count} (servers {first} to {first + len(shown) - 1})"
            )
        if not self.servers:
            text += "\nThe panel lists no servers that this bot's keys can see."
        return text

    async def _turn(self, interaction: discord.Interaction[Any], step: int) -> None:
        await interaction.response.defer()  # the page's states may need a slow panel
        self.page = min(max(0, self.page + step), self.page_count - 1)
        await self.bot.check_states([s.identifier for s in self.page_servers()])
        await interaction.edit_original_response(content=self.render(), view=self)

    async def _previous(self, interaction: discord.Interaction[Any]) -> None:
        await self._turn(interaction, -1)

    async def _next(self, interaction: discord.Interaction[Any]) -> None:
        await self._turn(interaction, +1)

    async def _chosen(self, interaction: discord.Interaction[Any]) -> None:
        await self.bot.post_status_message(interaction, self.select.values[0])


@dataclass(slots=True)
class LiveStatus:
    """The latest panel data for one server, kept between cycles."""

    resources: ServerResources | None = None
    fetched_at: float = float("-inf")
    failures: int = 0


@dataclass(frozen=True, slots=True)
class PendingPower:
    action: str
    user: str
    until: float


@dataclass(frozen=True, slots=True)
class CycleReport:
    checked: int
    edited: int
    failed: int
    dropped: int
    seconds: float


EditOutcome = Literal["edited", "unchanged", "failed", "dropped"]
REQUIRED_CHANNEL_PERMISSIONS = ("view_channel", "send_messages", "embed_links", "attach_files")


class PterodactylBot(discord.Client):
    """The orchestrator: slash commands, buttons, and the update task that keeps status messages fresh."""

    def __init__(
        self,
        settings: Settings,
        *,
        api: PterodactylAPI | None = None,
        store: EmbedStore | None = None,
        metrics: ServerMetricsManager | None = None,
        clock: Callable[[], float] = time.monotonic,
        heartbeat_path: Path | None = Path("logs") / "heartbeat.json",
        edit_timeout: float = 15.0,
    ) -> None:
        # This bot never joins voice: skip discord.py's start-up warnings about voice libraries.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        intents = discord.Intents.none()
        intents.guilds = True  # roles and channels of the allowed guild, for role checks
        intents.guild_messages = True  # to hear that a status message was deleted (not message content)
        super().__init__(intents=intents, allowed_mentions=discord.AllowedMentions.none())
        self.settings = settings
        self.tree = app_commands.CommandTree(self)
        # "is None", not "or": an empty store or metrics manager is falsy (they define __len__).
        if api is None:
            api = PterodactylAPI(settings.panel_url, settings.client_api_key, settings.application_api_key)
        self.api = api
        self.store = EmbedStore(Path("embed") / "embed_locations.json") if store is None else store
        self.metrics = ServerMetricsManager() if metrics is None else metrics
        self.clock = clock
        self.heartbeat_path = heartbeat_path
        self.edit_timeout = edit_timeout
        self.servers: dict[str, PanelServer] = {}
        self.servers_fetched_at = float("-inf")
        self.live: dict[str, LiveStatus] = {}
        self.server_states: dict[str, TrackedState] = {}
        self._fingerprints: dict[str, str] = {}
        self._edit_locks: dict[str, asyncio.Lock] = {}
        self._power_pending: dict[str, PendingPower] = {}
        self._cycle_lock = asyncio.Lock()
        self._graph_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphs")
        self._stretched = False
        self._register_commands()

    # -- lifecycle ------------------------------------------------------------------------------
    async def setup_hook(self) -> None:
        if self.heartbeat_path is not None:  # a previous run's heartbeat must not look like ours
            with contextlib.suppress(OSError):
                self.heartbeat_path.unlink()
        await self.api.open()
        self.store.load()
        self.add_dynamic_items(ServerButton)
        guild = discord.Object(id=self.settings.allowed_guild_id)
        try:
            synced = await self.tree.sync(guild=guild)
            log.info("Synced %d command(s) to guild %s", len(synced), guild.id)
        except discord.HTTPException as exc:
            log.error(
                "Could not register the slash commands in guild %s (%s). Was the bot invited with the "
                "applications.commands scope?",
                guild.id,
                exc,
            )
        self.status_updater.change_interval(seconds=self.settings.update_interval)
        self.status_updater.start()

    async def on_ready(self) -> None:
        log.info("Connected to Discord as %s; serving guild %s", self.user, self.settings.allowed_guild_id)

    # -- status messages deleted by someone else ----------------------------------------------------
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        self._drop_locations(lambda loc: loc.message_id == payload.message_id, "was deleted")

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        self._drop_locations(lambda loc: loc.message_id in payload.message_ids, "was deleted")

    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        self._drop_locations(lambda loc: loc.channel_id == channel.id, "was in a deleted channel")

    def _drop_locations(self, matches: Callable[[EmbedLocation], bool], why: str) -> None:
        for server_id, location in self.store.items():
            if matches(location) and self.store.remove(server_id, location):
                self._forget(server_id)
                log.info("The status message of %s %s; no longer tracked", server_id, why)

    async def close(self) -> None:
        self.status_updater.cancel()
        await self.api.close()
        self._graph_executor.shutdown(wait=False, cancel_futures=True)
        await super().close()

    def _register_commands(self) -> None:
        guild = discord.Object(id=self.settings.allowed_guild_id)

        @app_commands.command(name="server_status", description="Post a game server's live status here")
        async def server_status(interaction: discord.Interaction[PterodactylBot]) -> None:
            await self.cmd_server_status(interaction)

        @app_commands.command(name="refresh_embeds", description="Re-render every status message now")
        async def refresh_embeds(interaction: discord.Interaction[PterodactylBot]) -> None:
            await self.cmd_refresh_embeds(interaction)

        self.tree.add_command(server_status, guild=guild)
        self.tree.add_command(refresh_embeds, guild=guild)
        self.tree.on_error = self._on_command_error  # type: ignore[method-assign]

    async def _on_command_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        log.error("Command %s failed", interaction.command and interaction.command.name, exc_info=error)
        await self._reply(
            interaction, "Something went wrong on the bot's side; the admin can see it in the logs."
        )

    # -- helpers --------------------------------------------------------------------------------
    async def _reply(self, interaction: discord.Interaction[Any], text: str) -> None:
        """An ephemeral answer, as a response or, once answered or deferred, as a followup."""
        try:
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True)
            else:
                await interaction.response.send_message(text, ephemeral=True)
        except discord.HTTPException as exc:
            log.warning("Could not answer an interaction: %s", exc)

    def _in_allowed_guild(self, interaction: discord.Interaction[Any]) -> bool:
        return interaction.guild_id == self.settings.allowed_guild_id

    def _may_control(self, interaction: discord.Interaction[Any]) -> bool:
        roles = getattr(interaction.user, "roles", [])
        return may_control(
            (r.id for r in roles),
            (r.name for r in roles),
            interaction.permissions.administrator,
            self.settings.control_roles,
        )

    def _server_name(self, server_id: str) -> str:
        server = self.servers.get(server_id)
        return server.name if server else server_id

    def known_state(self, server_id: str) -> str | None:
        """The server's state if the panel told us recently, else None."""
        server = self.servers.get(server_id)
        if server is not None and server.blocking_status:
            return server.blocking_status
        live = self.live.get(server_id)
        if live is None or live.resources is None:
            return None
        if self.clock() - live.fetched_at > max(60.0, 3 * self.settings.update_interval):
            return None
        return display_state(server, live.resources, live.failures)

    def _record(self, server_id: str, result: ServerResources | PterodactylError | None) -> LiveStatus:
        live = self.live.setdefault(server_id, LiveStatus())
        if isinstance(result, ServerResources):
            live.resources, live.fetched_at, live.failures = result, self.clock(), 0
        elif isinstance(result, PterodactylError):
            live.failures += 1
        return live

    async def refresh_listing(self) -> bool:
        """Refresh the cached server list; False (and the old cache kept) when the panel fails."""
        try:
            servers = await self.api.list_servers()
        except PterodactylError as exc:
            log.warning("Could not list the panel's servers: %s", exc)
            return False
        self.servers = {s.identifier: s for s in servers}
        self.servers_fetched_at = self.clock()
        return True

    async def _refresh_listing_briefly(self, wait: float = 5.0) -> bool:
        """Refresh the server list for someone waiting in Discord: a slow panel falls back to the cache."""
        try:
            return await asyncio.wait_for(self.refresh_listing(), wait)
        except TimeoutError:
            log.warning("The panel took more than %.0f s to list servers; using the cached list", wait)
            return False

    async def check_states(self, server_ids: Sequence[str], wait: float = 2.0) -> None:
        """Fetch states not known recently, giving up after ``wait`` s (the menu shows what it has)."""
        wanted = [sid for sid in server_ids if self.known_state(sid) is None]
        if not wanted:
            return
        try:
            results = await asyncio.wait_for(self.api.get_many_resources(wanted), wait)
        except TimeoutError:
            return
        for sid, result in results.items():
            self._record(sid, result)

    def _partial(self, location: EmbedLocation) -> discord.PartialMessage:
        channel = self.get_partial_messageable(location.channel_id, guild_id=self.settings.allowed_guild_id)
        return channel.get_partial_message(location.message_id)

    def _current_state(self, server_id: str) -> tuple[str, float, bool]:
        """(state to show, cpu, stale) from what we know now."""
        live = self.live.get(server_id) or LiveStatus()
        state = display_state(self.servers.get(server_id), live.resources, live.failures)
        cpu = live.resources.cpu_absolute if live.resources else 0.0
        return state, cpu, live.failures > 0

    async def _render(self, server_id: str, state: str, stale: bool) -> tuple[discord.Embed, bytes | None]:
        server = self.servers[server_id]
        live = self.live.get(server_id) or LiveStatus()
        graph = None
        graphs = self.metrics.get(server_id)
        if state == "running" and graphs is not None and graphs.has_sufficient_data:
            # matplotlib off the event loop, in one dedicated thread: every extra rendering thread
            # keeps its own font caches and memory arenas (measured: 9 pool threads cost ~30 MB).
            graph = await asyncio.get_running_loop().run_in_executor(
                self._graph_executor, graphs.generate_combined_graph
            )
        snapshot = StatusSnapshot(server, live.resources, state, stale=stale)
        return build_status_embed(snapshot, graph_filename=GRAPH_FILENAME if graph else None), graph

    def _forget(self, server_id: str) -> None:
        for mapping in (self.server_states, self._fingerprints, self.live):
            mapping.pop(server_id, None)
        self.metrics.remove_server(server_id)

    def _note_metrics(self, server_id: str, state: str, stale: bool) -> None:
        """Running servers add a sample every cycle; a stopped one loses its graph."""
        server, live = self.servers.get(server_id), self.live.get(server_id)
        if server is None or live is None or live.resources is None:
            return
        if state == "running" and not stale:
            self.metrics.add_sample(
                server_id,
                server.name,
                live.resources.cpu_absolute,
                live.resources.memory_bytes / (1024 * 1024),
                cpu_limit=server.limits.cpu,
                memory_limit_mb=server.limits.memory_mb,
            )
        elif state not in ("running", "starting", "stopping", "unreachable"):
            self.metrics.remove_server(server_id)

    # -- editing status messages ----------------------------------------------------------------
    async def edit_status_message(self, server_id: str, *, reason: str, force: bool = False) -> EditOutcome:
        """Re-render one status message and edit it, unless what it shows did not change."""
        location = self.store.get(server_id)
        if location is None or server_id not in self.servers:
            return "failed"
        lock = self._edit_locks.setdefault(server_id, asyncio.Lock())
        async with lock:  # at most one edit in flight per message
            state, cpu, stale = self._current_state(server_id)
            embed, graph = await self._render(server_id, state, stale)
            fingerprint = embed_fingerprint(embed, graph)
            now = self.clock()
            if not force and self._fingerprints.get(server_id) == fingerprint:
                self.server_states[server_id] = TrackedState(state, cpu, now)
                return "unchanged"
            files = [discord.File(io.BytesIO(graph), filename=GRAPH_FILENAME)] if graph else []
            try:
                await asyncio.wait_for(
                    self._partial(location).edit(embed=embed, attachments=files), self.edit_timeout
                )
            except discord.NotFound:
                log.info("Status message of %s was deleted; forgetting it", server_id)
                if self.store.remove(server_id, location):
                    self._forget(server_id)
                return "dropped"
            except discord.Forbidden as exc:
                # The message exists but we may not touch it: retry when the rules next say so.
                log.warning("No permission to edit the status message of %s: %s", server_id, exc.text)
                self.server_states[server_id] = TrackedState(state, cpu, now)
                return "failed"
            except (discord.HTTPException, TimeoutError) as exc:
                log.warning("Editing the status message of %s failed (%s); will retry", server_id, exc)
                return "failed"
            log.debug("Edited %s (%s)", server_id, reason)
            self.server_states[server_id] = TrackedState(state, cpu, now)
            self._fingerprints[server_id] = fingerprint
            return "edited"

    async def _mark_removed(self, server_id: str, name: str) -> None:
        """The server is gone from the panel: say so on its message, drop its buttons, forget it."""
        location = self.store.get(server_id)
        if location is None:
            return
        embed = discord.Embed(
            title=truncate(f"{name} was removed from the panel", 256),
            description="This server no longer exists on the panel; this message is not updated any more.",
            colour=STATE_STYLES["removed"].colour,
            timestamp=datetime.now(UTC),
        )
        with contextlib.suppress(discord.HTTPException, TimeoutError):
            await asyncio.wait_for(
                self._partial(location).edit(embed=embed, view=None, attachments=[]), self.edit_timeout
            )
        self.store.remove(server_id, location)
        self._forget(server_id)
        log.info("Server %s disappeared from the panel; its status message is marked removed", server_id)

    # -- the update task ------------------------------------------------------------------------
    @tasks.loop(seconds=10)
    async def status_updater(self) -> None:
        try:
            await self.run_update_cycle()
        except Exception:
            log.exception("Update cycle failed; the next one runs as planned")

    @status_updater.before_loop
    async def _before_status_updater(self) -> None:
        await self.wait_until_ready()

    async def run_update_cycle(self) -> CycleReport:
        """One poll of the panel: list servers, fetch every tracked server, edit what needs it."""
        async with self._cycle_lock:
            started = time.perf_counter()
            previous = self.servers
            listed = await self.refresh_listing()
            tracked = [sid for sid, _ in self.store.items()]
            if listed:
                for sid in [s for s in tracked if s not in self.servers]:
                    gone = previous.get(sid)
                    await self._mark_removed(sid, gone.name if gone else sid)
                for sid in [s for s in self.live if s not in self.servers]:
                    del self.live[sid]  # states seen by the picker for servers since deleted
            tracked = [sid for sid in tracked if sid in self.servers]
            polled = [sid for sid in tracked if not self.servers[sid].blocking_status]
            results = await self.api.get_many_resources(polled)
            self._adjust_interval(len(polled))  # after the requests: their headers carry the panel's limit
            outcomes = await asyncio.gather(*(self._update_one(sid, results.get(sid)) for sid in tracked))
            self.metrics.cleanup_old_servers(tracked)
            report = CycleReport(
                checked=len(tracked),
                edited=outcomes.count("edited"),
                failed=outcomes.count("failed")
                + sum(isinstance(r, PterodactylError) for r in results.values()),
                dropped=outcomes.count("dropped"),
                seconds=time.perf_counter() - started,
            )
            log.info(
                "Update cycle: %d server(s) checked, %d edited, %d failure(s), %d dropped, %.2f s",
                report.checked,
                report.edited,
                report.failed,
                report.dropped,
                report.seconds,
            )
            self._write_heartbeat()
            return report

    async def _update_one(
        self, server_id: str, result: ServerResources | PterodactylError | None
    ) -> EditOutcome:
        try:
            live = self._record(server_id, result)
            if isinstance(result, PterodactylError):
                log.warning(
                    "Server %s: panel error (%s); keeping its last known data (%d failed check(s))",
                    server_id,
                    result,
                    live.failures,
                )
            state, cpu, stale = self._current_state(server_id)
            self._note_metrics(server_id, state, stale)
            previous = self.server_states.get(server_id)
            if previous is not None and previous.state != state:
                self._power_pending.pop(server_id, None)  # the panel shows the effect: allow new clicks
            if stale and previous is not None:
                cpu = previous.cpu  # stale data must not look like a CPU change
            reason = update_reason(
                previous,
                state,
                cpu,
                self.clock(),
                cpu_threshold=self.settings.cpu_change_threshold,
                force_interval=self.settings.force_update_interval,
            )
            if reason is None:
                return "unchanged"
            return await self.edit_status_message(server_id, reason=reason)
        except Exception:
            log.exception("Updating server %s failed", server_id)
            return "failed"

    def _adjust_interval(self, servers: int) -> None:
        """Stretch polling when the tracked servers need more requests than the panel allows."""
        budget = self.api.budgets["client"]
        interval = stretched_interval(
            servers, self.settings.update_interval, budget.polling_per_minute, budget.WINDOW
        )
        stretched = interval > self.settings.update_interval
        if stretched != self._stretched or (stretched and abs(interval - self.status_updater.seconds) > 0.5):
            if stretched and not self._stretched:
                log.warning(
                    "%d servers every %g s would exceed the panel's limit of %d requests/min; "
                    "polling every %.1f s instead",
                    servers,
                    self.settings.update_interval,
                    budget.limit,
                    interval,
                )
            elif not stretched:
                log.info("Polling every %g s again", interval)
            self._stretched = stretched
            self.status_updater.change_interval(seconds=interval)

    def _write_heartbeat(self) -> None:
        """The Docker HEALTHCHECK reads this: a fresh file means cycles run and Discord is connected."""
        if self.heartbeat_path is None or self.ws is None or not self.ws.open:
            return
        data = {"at": time.time(), "interval": self.status_updater.seconds or self.settings.update_interval}
        try:
            self.heartbeat_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.heartbeat_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(data), encoding="utf-8")
            os.replace(tmp, self.heartbeat_path)
        except OSError as exc:
            log.warning("Could not write the heartbeat file %s: %s", self.heartbeat_path, exc)

    async def refresh_all_embeds(self) -> tuple[int, int]:
        """Re-render and edit every tracked status message now; returns (refreshed, missing)."""
        await self._refresh_listing_briefly()
        tracked = [sid for sid, _ in self.store.items() if sid in self.servers]
        polled = [sid for sid in tracked if not self.servers[sid].blocking_status]
        for sid, result in (await self.api.get_many_resources(polled)).items():
            self._record(sid, result)
        outcomes = await asyncio.gather(
            *(self.edit_status_message(sid, reason="refresh", force=True) for sid in tracked)
        )
        return outcomes.count("edited"), outcomes.count("dropped")

    # -- slash commands -------------------------------------------------------------------------
    async def cmd_server_status(self, interaction: discord.Interaction[Any]) -> None:
        if not self._in_allowed_guild(interaction):
            await self._reply(interaction, "Sorry, this bot serves one Discord server only.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        listing_old = self.clock() - self.servers_fetched_at > max(30.0, 2 * self.settings.update_interval)
        if listing_old and not await self._refresh_listing_briefly() and not self.servers:
            await self._reply(interaction, "The panel is unreachable right now; try again in a minute.")
            return
        view = ServerPickerView(self, list(self.servers.values()), interaction.user.id)
        await self.check_states([s.identifier for s in view.page_servers()])
        await interaction.followup.send(view.render(), view=view, ephemeral=True)

    async def cmd_refresh_embeds(self, interaction: discord.Interaction[Any]) -> None:
        if not self._in_allowed_guild(interaction):
            await self._reply(interaction, "Sorry, this bot serves one Discord server only.")
            return
        if not (self._may_control(interaction) or interaction.permissions.manage_guild):
            await self._reply(interaction, "Only members with a control role or Manage Server may refresh.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        refreshed, missing = await self.refresh_all_embeds()
        await self._reply(
            interaction,
            f"Refreshed {refreshed} status message(s). {missing} were missing and are no longer tracked.",
        )

    async def post_status_message(self, interaction: discord.Interaction[Any], server_id: str) -> None:
        """Post a server's status message where the command was used, replacing its older one."""
        if not self._in_allowed_guild(interaction):
            await self._reply(interaction, "Sorry, this bot serves one Discord server only.")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        if server_id not in self.servers:
            await self._refresh_listing_briefly()
        server = self.servers.get(server_id)
        if server is None:
            await self._reply(interaction, "That server is no longer on the panel.")
            return
        if not server.blocking_status:
            try:
                self._record(server_id, await self.api.get_resources(server_id))
            except PterodactylError as exc:
                self._record(server_id, exc)
        channel = interaction.channel
        if not isinstance(channel, discord.abc.Messageable):
            await self._reply(interaction, "I cannot post in this kind of channel.")
            return
        lock = self._edit_locks.setdefault(server_id, asyncio.Lock())
        async with lock:
            state, cpu, stale = self._current_state(server_id)
            embed, graph = await self._render(server_id, state, stale)
            files = [discord.File(io.BytesIO(graph), filename=GRAPH_FILENAME)] if graph else []
            try:
                message = await channel.send(embed=embed, view=ServerStatusView(server_id), files=files)
            except discord.Forbidden as exc:
                perms = interaction.app_permissions
                missing = [
                    p.replace("_", " ").title() for p in REQUIRED_CHANNEL_PERMISSIONS if not getattr(perms, p)
                ]
                need = (
                    ", ".join(missing)
                    if missing
                    else "View Channel, Send Messages, Embed Links, Attach Files"
                )
                log.warning("No permission to post in channel %s: %s", interaction.channel_id, exc.text)
                await self._reply(
                    interaction, f"I can't post here: I need the **{need}** permission(s) in this channel."
                )
                return
            old = self.store.get(server_id)
            saved = self.store.set(server_id, EmbedLocation(message.channel.id, message.id))
            self.server_states[server_id] = TrackedState(state, cpu, self.clock())
            self._fingerprints[server_id] = embed_fingerprint(embed, graph)
        note = ""
        if old is not None and old.message_id != message.id:
            try:
                await self._partial(old).delete()
                note = f" Its previous status message in <#{old.channel_id}> was removed."
            except discord.NotFound:
                pass
            except discord.HTTPException as exc:
                note = f" I could not delete its previous status message in <#{old.channel_id}>."
                log.warning("Could not delete the old status message of %s: %s", server_id, exc)
        if not saved:
            note += " I could not save where it is, so it will not be updated after I restart (see my logs)."
        await self._reply(interaction, f"Posted the live status of **{server.name}** here.{note}")

    # -- buttons --------------------------------------------------------------------------------
    async def handle_button(
        self, interaction: discord.Interaction[Any], action: ButtonAction, server_id: str
    ) -> None:
        try:
            await self._handle_button(interaction, action, server_id)
        except Exception:
            log.exception("Button %s on %s failed", action, server_id)
            await self._reply(
                interaction, "Something went wrong on the bot's side; the admin can see it in the logs."
            )

    async def _handle_button(
        self, interaction: discord.Interaction[Any], action: ButtonAction, server_id: str
    ) -> None:
        if not self._in_allowed_guild(interaction):
            await self._reply(
                interaction, "Sorry, these buttons only work in the Discord server this bot serves."
            )
            return
        name = self._server_name(server_id)
        if action == "address":
            await self._show_address(interaction, server_id, name)
            return
        if not self._may_control(interaction):
            roles = ", ".join(self.settings.control_roles)
            await self._reply(
                interaction,
                f"Sorry, only members with the **{roles}** role (or Administrator) may {action} servers.",
            )
            return
        now = self.clock()
        pending = self._power_pending.get(server_id)
        if pending is not None and pending.until > now:
            await self._reply(
                interaction,
                f"A **{pending.action}** of **{name}** is already in progress (asked by {pending.user}).",
            )
            return
        state = self.known_state(server_id)
        if action == "stop" and state == "offline":
            await self._reply(interaction, f"**{name}** is already offline.")
            return
        if action == "start" and state in ("running", "starting"):
            await self._reply(interaction, f"**{name}** is already {state}.")
            return
        # Claim the server before the first await, so a simultaneous click sees the claim.
        settle = max(15.0, 3 * self.settings.update_interval)
        self._power_pending[server_id] = PendingPower(action, interaction.user.display_name, now + settle)
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            await self.api.send_power_action(server_id, action)
        except PterodactylError as exc:
            self._power_pending.pop(server_id, None)
            log.warning("%s of %s failed: %s", action, server_id, exc)
            await self._reply(interaction, describe_panel_error(exc, name))
            return
        log.info("%s sent to %s by %s", action, server_id, interaction.user.id)
        await self._reply(
            interaction,
            f"{action.capitalize()} sent to **{name}**. The status message shows the new state shortly.",
        )

    async def _show_address(self, interaction: discord.Interaction[Any], server_id: str, name: str) -> None:
        server = self.servers.get(server_id)
        if server is not None and server.allocation is not None:
            await self._reply(interaction, f"**{name}** is at `{server.allocation.address}`")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            allocation = await self.api.get_primary_allocation(server_id)
        except PterodactylError as exc:
            await self._reply(interaction, describe_panel_error(exc, name))
            return
        await self._reply(interaction, f"**{name}** is at `{allocation.address}`")


# -- process entry point -------------------------------------------------------------------------


class RedactingFormatter(logging.Formatter):
    """Last line of defence: no log line, traceback included, may carry a token or API key."""

    def __init__(self, fmt: str, secrets: Iterable[str]) -> None:
        super().__init__(fmt)
        self._secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, "[redacted]")
        return text


def setup_logging(settings: Settings, log_dir: Path = Path("logs")) -> None:
    formatter = RedactingFormatter("%(asctime)s %(levelname)-8s %(name)s: %(message)s", settings.secrets)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    try:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / "pterodisbot.log", maxBytes=5 * 1024 * 1024, backupCount=3, encoding="utf-8"
            )
        )
    except OSError as exc:
        print(f"Logging to stderr only: cannot write to {log_dir}: {exc}", file=sys.stderr)
    root = logging.getLogger()
    root.handlers.clear()
    for handler in handlers:
        handler.setFormatter(formatter)
        root.addHandler(handler)
    root.setLevel(settings.log_level)
    logging.getLogger("discord").setLevel(max(logging.INFO, logging.getLevelName(settings.log_level)))
    logging.getLogger("discord.http").setLevel(logging.WARNING)


def healthcheck(path: Path = Path("logs") / "heartbeat.json", now: float | None = None) -> int:
    """Exit status for Docker's HEALTHCHECK: 0 when an update cycle finished recently."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        age = (time.time() if now is None else now) - float(data["at"])
        allowed = 3 * float(data["interval"]) + 60
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"unhealthy: no readable heartbeat at {path} ({exc})")
        return 1
    if age > allowed:
        print(f"unhealthy: last update cycle {age:.0f} s ago (allowed {allowed:.0f} s)")
        return 1
    print(f"healthy: last update cycle {age:.0f} s ago")
    return 0


async def run_bot(settings: Settings) -> None:
    bot = PterodactylBot(settings)
    loop = asyncio.get_running_loop()
    async with bot:
        runner = asyncio.ensure_future(bot.start(settings.discord_token))

        async def shutdown(signum: int) -> None:
            log.info("Received %s; shutting down", signal.Signals(signum).name)
            await bot.close()
            runner.cancel()  # also ends a reconnect back-off sleep during a Discord outage

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, lambda s=signum: _keep(loop.create_task(shutdown(s))))
        with contextlib.suppress(asyncio.CancelledError):
            await runner


_background: set[asyncio.Task[None]] = set()


def _keep(task: asyncio.Task[None]) -> None:
    """Hold a reference to a fire-and-forget task until it finishes."""
    _background.add(task)
    task.add_done_callback(_background.discard)


def check_writable(*folders: Path) -> list[str]:
    """Problems with the folders the bot writes to (created when missing)."""
    problems = []
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
                pass
        except OSError as exc:
            problems.append(
                f"{folder.resolve()} is not writable by this user (uid {os.getuid()}): {exc.strerror}"
            )
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--healthcheck"]:
        return healthcheck()
    try:
        settings = load_settings(os.environ)
    except ConfigValidationError as exc:
        print(exc.render(), file=sys.stderr)
        return 2
    unwritable = check_writable(Path("embed"))
    if unwritable:
        print(ConfigValidationError(unwritable).render(), file=sys.stderr)
        return 2
    setup_logging(settings)
    log.info("Starting Pterodisbot for panel %s", settings.panel_url)
    try:
        asyncio.run(run_bot(settings))
    except (aiohttp.ClientError, OSError) as exc:
        log.error("Cannot reach Discord (%s: %s); check the network and try again", type(exc).__name__, exc)
        return 1
    except discord.LoginFailure:
        log.error("Discord rejected the bot token (DISCORD_TOKEN); reset it in the Developer Portal")
        return 1
    except discord.PrivilegedIntentsRequired:
        log.error("Discord refused the gateway intents; check the bot's settings in the Developer Portal")
        return 1
    return 0


if __name__ == "__main__":
    # Run from the imported module, not from __main__: log lines then name "pterodisbot" (its
    # getLogger(__name__)) and there is one copy of every class, whoever imports this file.
    import pterodisbot

    sys.exit(pterodisbot.main())
