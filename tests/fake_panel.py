"""A local fake Pterodactyl (or Pelican) panel, client + application API, served over real HTTP on aiohttp.

Used by the API client's unit tests, by end-to-end tests (the bot runs as a separate process and
reaches this panel over HTTP) and by benchmarks. Every behaviour follows
/work/shared/reference/pterodactyl-api.md: envelopes, pagination (and its quirks), error bodies,
check order, rate limits, the 20 s resource cache and a simplified wings power state machine.
``FakePanel(flavour="pelican")`` follows the differences in /work/shared/reference/pelican.md, and
the websocket token endpoint follows /work/shared/reference/wings-websocket.md section 1; the fake
Wings daemon serving the sockets is tests/fake_wings.py (``FakePanel(wings=True)``).

Who the client key's user is: ``client_user_admin`` (root admin), ``client_username``, and per server
``FakeServer.access`` ("owner", "subuser" or None) and ``websocket_permission`` (subusers only).
What the application key may read: ``app_key_permissions``. Nodes are ``FakeNode`` objects in
``nodes``; ``set_node_down(node_id, True)`` makes the node's wings unreachable.

Standalone: ``python -m tests.fake_panel --servers 30 --port 0 --latency 0.05
[--flavour pelican] [--wings] [--transition-delay 2]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import enum
import hashlib
import http
import json
import math
import random
import re
import secrets
import signal
import socket
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from aiohttp import web

from tests.fake_wings import FakeWings, WingsConfig, sign_token

DEFAULT_CLIENT_KEY = "ptlc_" + "a" * 11 + "b" * 32
DEFAULT_APP_KEY = "ptla_" + "c" * 11 + "d" * 32
PELICAN_CLIENT_KEY = "pacc_" + "e" * 11 + "f" * 32
PELICAN_APP_KEY = "papp_" + "g" * 11 + "h" * 32
FLAVOURS = ("pterodactyl", "pelican")
IDENTIFIER_FORMATS = ("short", "prfx")
PRFX_PREFIX = "serv_"  # Pterodactyl 1.12 frontend types: Identifier<'serv'>
DEFAULT_LIMITS = {"pterodactyl": (720, 240), "pelican": (256, 256)}  # (client, application) per minute
STATES = ("offline", "starting", "running", "stopping")
STATUSES = (None, "installing", "install_failed", "reinstall_failed", "suspended", "restoring_backup")
SIGNALS = ("start", "stop", "restart", "kill")
ACCESS = ("owner", "subuser", None)
TIMESTAMP = "2024-01-01T00:00:00+00:00"
WINDOW_SECONDS = 60.0
STARTUP = "java -Xms128M -XX:MaxRAMPercentage=95.0 -jar {{SERVER_JARFILE}}"
DOCKER_IMAGE = "ghcr.io/pterodactyl/yolks:java_17"
DAEMON_DOWN = "Could not establish a connection to the machine running this server. Please try again."
UNEXPECTED = "An unexpected error was encountered while processing this request, please try again."
NO_ACCESS = "The requested resource does not exist on this server."
NO_WEBSOCKET = "You do not have permission to connect to this server's websocket."
KEY_TYPE_DETAIL = {
    "client": "You are attempting to use an application API key on an endpoint that requires a client "
    "API key.",
    "application": "This account does not have permission to access the API.",
}
# Default (code, detail) of the panel's error body per HTTP status.
ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequestHttpException", "Bad Request"),
    401: ("AuthenticationException", "Unauthenticated."),
    403: ("AccessDeniedHttpException", "This action is unauthorized."),
    404: ("NotFoundHttpException", "The requested resource could not be found on the server."),
    409: (
        "ServerStateConflictException",
        "This server is currently in an unsupported state, please try again later.",
    ),
    422: ("ValidationException", "The given data was invalid."),
    429: ("ThrottleRequestsException", "Too Many Attempts."),
    500: ("ErrorException", UNEXPECTED),
    502: ("DaemonConnectionException", DAEMON_DOWN),
    503: ("HttpException", "Service Unavailable"),
    504: ("DaemonConnectionException", DAEMON_DOWN),
}
# Application server listing filters (spatie/laravel-query-builder allowedFilters, partial matches).
APP_SERVER_FILTERS = {
    "pterodactyl": ("uuid", "uuidShort", "name", "description", "image", "external_id"),
    "pelican": ("uuid", "uuid_short", "name", "description", "image", "external_id"),
}
# Permissions of a subuser (a typical grant); "websocket.connect" is added when websocket_permission.
SUBUSER_PERMISSIONS = (
    "control.console",
    "control.start",
    "control.stop",
    "control.restart",
    "allocation.read",
    "startup.read",
)
ADMIN_PERMISSIONS = ("admin.websocket.errors", "admin.websocket.install", "admin.websocket.transfer")
LOGIN_PAGE = (
    b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Pterodactyl</title>'
    b'</head><body><div id="app"><form method="post" action="/auth/login">'
    b'<input name="user"><input name="password" type="password"></form></div></body></html>'
)
PELICAN_LOGIN_PAGE = (
    b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Login - Pelican</title>'
    b'</head><body class="fi-body"><form wire:submit="authenticate">'
    b'<input id="data.login"><input id="data.password" type="password"></form></body></html>'
)
HEALTH_PAGE = (  # Laravel's /up health page
    b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Pelican</title></head>'
    b"<body><div>Application up</div></body></html>"
)
HTML_TYPE = "text/html; charset=UTF-8"
_HANG = object()  # sentinel returned by the fault check: never answer this request


class _FlavourDefault(enum.Enum):
    VALUE = "the flavour's default"


FLAVOUR_DEFAULT = _FlavourDefault.VALUE


def _closed_port() -> int:
    """A loopback port nobody listens on (bound, read, closed): connecting to it is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@dataclass
class FakeNode:
    id: int
    name: str
    fqdn: str = "127.0.0.1"  # always loopback: no test may make anyone resolve another host
    scheme: str = "http"  # so socket URLs are ws://
    daemon_listen: int = 0  # 0: a closed loopback port (the fake Wings' port once it runs)
    daemon_connect: int = 0  # Pelican: the port clients use; 0: same as daemon_listen
    daemon_sftp: int = 2022
    daemon_sftp_alias: str | None = None
    maintenance_mode: bool = False
    down: bool = False  # wings unreachable (set with FakePanel.set_node_down)
    daemon_token: str = field(default_factory=lambda: secrets.token_urlsafe(48), repr=False)

    def __post_init__(self) -> None:
        if not self.daemon_listen:
            self.daemon_listen = _closed_port()
        if not self.daemon_connect:
            self.daemon_connect = self.daemon_listen

    @property
    def uuid(self) -> str:
        return f"00000000-0000-4000-8000-{self.id:012d}"


# A listener of FakeServer changes: (server, attribute, old value, new value).
ChangeListener = Callable[["FakeServer", str, Any, Any], None]


@dataclass
class FakeServer:
    identifier: str
    uuid: str
    id: int
    name: str
    description: str = ""
    state: str = "offline"
    cpu: float = 0.0
    memory_bytes: int = 0
    disk_bytes: int = 0
    network_rx_bytes: int = 0
    network_tx_bytes: int = 0
    uptime_ms: int = 0
    cpu_limit: int = 200
    memory_limit_mb: int = 2048
    disk_limit_mb: int = 10240
    status: str | None = None
    is_transferring: bool = False
    node_id: int = 1
    node_name: str = "Node 1"  # the name given to add_server; the node's own name is authoritative
    allocation_id: int | None = 0  # None: no primary allocation (Pelican only)
    ip: str = "10.0.0.5"
    ip_alias: str | None = None
    port: int = 25565
    access: str | None = "owner"  # the client user: "owner", "subuser" or None (neither)
    websocket_permission: bool = True  # a subuser's websocket.connect (owners and admins always have it)
    feature_databases: int | None = 0
    feature_allocations: int | None = 1
    feature_backups: int = 0
    uuid_short: str = ""  # the 8-character short uuid; "" = uuid[:8]
    # Called on every change of `state` or `status` (the panel routes them to the node's fake Wings).
    on_change: list[ChangeListener] = field(default_factory=list, repr=False, compare=False)
    # States wings will report next, one per uncached /resources read. Only valid while `state` is
    # still `_pending_base`: a test that assigns `state` directly discards the queued transitions.
    _pending: list[str] = field(default_factory=list, init=False, repr=False, compare=False)
    _pending_base: str | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not self.uuid_short:
            self.uuid_short = self.uuid[:8]

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in ("state", "status") or name not in self.__dict__:
            object.__setattr__(self, name, value)
            return
        old = self.__dict__[name]
        object.__setattr__(self, name, value)
        if old != value:
            for listener in list(self.__dict__.get("on_change", ())):
                listener(self, name, old, value)

    def _queue(self, now: str, *then: str) -> None:
        self._pending, self._pending_base = list(then), now
        self.state = now

    def _set_state(self, state: str) -> None:
        if state == "offline":  # wings ResourceUsage.Reset (disk is kept)
            self.cpu, self.memory_bytes, self.uptime_ms = 0.0, 0, 0
            self.network_rx_bytes = self.network_tx_bytes = 0
        self.state = state


class _Headers(dict[str, str]):
    """Plain dict of request headers (lower-cased keys) with case-insensitive lookups."""

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        return super().get(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    json: Any
    status: int | None = None  # None while in flight, and forever for hung requests
    at: float = 0.0
    hung: bool = False


@dataclass
class _Limiter:
    """Laravel fixed-window limiter: 60 s starting at the first counted request."""

    limit: int | None
    start: float | None = None
    count: int = 0

    def hit(self, now: float) -> tuple[bool, dict[str, str]]:
        if self.limit is None:
            return True, {}
        if self.start is None or now >= self.start + WINDOW_SECONDS:
            self.start, self.count = now, 0
        if self.count >= self.limit:  # a refused request is not a hit
            retry = max(1, math.ceil(self.start + WINDOW_SECONDS - now))
            return False, {
                "X-RateLimit-Limit": str(self.limit),
                "X-RateLimit-Remaining": "0",
                "Retry-After": str(retry),
                "X-RateLimit-Reset": str(int(time.time()) + retry),
            }
        self.count += 1
        return True, {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.limit - self.count),
        }


@dataclass
class _Fault:
    kind: str  # fail | hang | malformed | html
    remaining: int
    path_contains: str | None
    status: int = 500
    body: Any = None
    path: str | None = None  # the exact path, when only that one is meant (e.g. "/api/client", the listing)


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    api: str | None  # "client" | "application" | None (web page: no auth, no throttle)
    bind: str | None  # "server" | "app_server" | "node" | "never"
    # 409 policy: "all" (every client server route but the GET), "websocket" (its own rules), None
    state_check: str | None
    handler: Callable[..., web.Response]
    acl: str | None = None  # application key permission needed: "servers" | "nodes" | "allocations"


class _WingsUnreachable(Exception):
    """Raised by _stats on Pterodactyl when the server's node is down (the panel answers 504)."""


def laravel_json(payload: Any) -> bytes:
    # Laravel's json_encode escapes "/" as "\/"; "/" can only occur inside strings, so replace is safe.
    return json.dumps(payload, separators=(",", ":")).replace("/", "\\/").encode()


def _json(status: int, payload: Any) -> web.Response:
    return web.Response(status=status, body=laravel_json(payload), content_type="application/json")


def _html(status: int, body: bytes) -> web.Response:
    return web.Response(status=status, body=body, headers={"Content-Type": HTML_TYPE})


def _php_int(value: str | None, default: int) -> int:
    """PHP's (int) cast of a query value: leading digits, else 0."""
    if value is None:
        return default
    m = re.match(r"\s*[+-]?\d+", value)
    return int(m.group()) if m else 0


def _page_number(value: str | None) -> int:
    """Laravel resolveCurrentPage: a valid integer >= 1, else 1."""
    if value is None or not re.fullmatch(r"\s*[+-]?(0|[1-9]\d*)\s*", value):
        return 1
    return max(1, int(value))


def _includes(request: web.Request) -> list[str]:
    return [i.strip() for i in request.query.get("include", "").split(",") if i.strip()]


def _expects_json(headers: Any) -> bool:
    """Laravel Request::expectsJson: the best-ranked Accept type is JSON, or an XHR that accepts anything."""
    ranked = []
    for i, part in enumerate(headers.get("Accept", "").split(",")):
        media, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for p in params:
            if p.startswith("q="):
                with contextlib.suppress(ValueError):
                    q = float(p[2:])
        if media:
            ranked.append((-q, i, media.lower()))
    first = min(ranked)[2] if ranked else ""
    if "/json" in first or "+json" in first:
        return True
    return headers.get("X-Requested-With") == "XMLHttpRequest" and first in ("", "*/*", "*")


def _conflict_detail(srv: FakeServer, node: FakeNode) -> str | None:
    """ServerStateConflictException message per cause, in the panel's order."""
    if srv.status == "suspended":
        return "This server is currently suspended and the functionality requested is unavailable."
    if node.maintenance_mode:
        return (
            "The node of this server is currently under maintenance and the functionality requested is "
            "unavailable."
        )
    if srv.status in ("installing", "install_failed"):
        return "This server has not yet completed its installation process, please try again later."
    if srv.status == "restoring_backup":
        return "This server is currently restoring from a backup, please try again later."
    if srv.is_transferring:
        return "This server is currently being transferred to a new machine, please try again later."
    return None


def _partial_match(value: str | None, wanted: str) -> bool:
    """spatie's partial filter: case-insensitive LIKE %v%; a comma-separated value matches any part."""
    parts = [p.lower() for p in wanted.split(",") if p]
    return value is not None and any(p in value.lower() for p in parts)


class FakePanel:
    """The fake panel. One client key (by default a non-admin user owning every server) and one
    application key.

    Tests mutate `servers[...]` and `nodes[...]` directly, inject faults (fail_next, fail_ratio,
    hang_next, malformed_next, html_next, set_down, set_latency, set_node_down) and inspect `requests`,
    `power_requests`, `too_many_requests`, `tokens_issued`, `count()` and `wait_for()`. Faults apply
    after route match, authentication and throttling (so they are counted and carry rate-limit
    headers), before the server lookup.

    Rate limits default to the flavour's (Pterodactyl 720/240 per minute, Pelican 256/256); None is
    unlimited. `transition_delay` (seconds) makes queued power transitions also advance in real time,
    one state per delay, for bots that do not poll.
    """

    def __init__(
        self,
        client_key: str | None = None,
        app_key: str | None = None,
        latency: float = 0.0,
        client_rate_limit: int | _FlavourDefault | None = FLAVOUR_DEFAULT,
        app_rate_limit: int | _FlavourDefault | None = FLAVOUR_DEFAULT,
        clock: Callable[[], float] = time.monotonic,
        resource_cache_seconds: float = 0.0,
        seed: int = 0,
        *,
        flavour: str = "pterodactyl",
        identifier_format: str = "short",
        wings: bool = False,
        wings_config: WingsConfig | None = None,
        transition_delay: float | None = None,
    ) -> None:
        if flavour not in FLAVOURS or identifier_format not in IDENTIFIER_FORMATS:
            raise ValueError(f"bad flavour {flavour!r} or identifier_format {identifier_format!r}")
        if flavour == "pelican" and identifier_format == "prfx":
            raise ValueError("prfx identifiers are a Pterodactyl 1.12 feature")
        pelican = flavour == "pelican"
        self.flavour, self.identifier_format = flavour, identifier_format
        self.client_key = client_key or (PELICAN_CLIENT_KEY if pelican else DEFAULT_CLIENT_KEY)
        self.app_key = app_key or (PELICAN_APP_KEY if pelican else DEFAULT_APP_KEY)
        default_client, default_app = DEFAULT_LIMITS[flavour]
        if isinstance(client_rate_limit, _FlavourDefault):
            client_rate_limit = default_client
        if isinstance(app_rate_limit, _FlavourDefault):
            app_rate_limit = default_app
        self.latency = latency
        self.clock = clock
        self.resource_cache_seconds = resource_cache_seconds
        self.url = ""
        # Who the client key belongs to.
        self.client_user_admin = False
        self.client_username = "pterodisbot"
        self.client_user_id = 1
        self.client_user_uuid = "00000000-0000-4000-8000-00000000beef"
        self.app_key_permissions: dict[str, bool] = {"servers": True, "nodes": True, "allocations": True}
        self.editable_descriptions = True  # Pelican PANEL_EDITABLE_SERVER_DESCRIPTIONS
        # Websocket tokens (wings-websocket.md section 1).
        self.token_lifetime = 600.0
        self.token_clock: Callable[[], float] = time.time  # JWT dates are unix time, also read by Wings
        self.token_scope: str | None = "websocket" if pelican else None
        self.websocket_token_rate_limit: int | None = 5 if pelican else None  # per server uuid
        self.tokens_issued = 0
        self.tokens_issued_per_server: collections.Counter[str] = collections.Counter()  # by identifier
        # Fake Wings.
        self.wings_enabled = wings
        self.wings_config = wings_config if wings_config is not None else WingsConfig()
        self.wings: dict[int, FakeWings] = {}
        self.transition_delay = transition_delay
        self.servers: dict[str, FakeServer] = {}
        self.nodes: dict[int, FakeNode] = {1: FakeNode(1, "Node 1")}
        self.requests: list[RecordedRequest] = []
        self.power_requests: list[tuple[str, str]] = []
        self.too_many_requests = 0
        self._limiters = {"client": _Limiter(client_rate_limit), "application": _Limiter(app_rate_limit)}
        self._websocket_limiters: dict[str, _Limiter] = {}
        self._ids = random.Random(seed)  # deterministic identifiers/uuids
        self._next_id = self._next_alloc = self._bulk = 1
        self._faults: list[_Fault] = []
        self._fail_ratio, self._fail_statuses, self._fail_rng = 0.0, (500,), random.Random(0)
        self._cache: dict[str, tuple[float, dict[str, Any]]] = {}
        self._finished: list[RecordedRequest] = []  # completion order, for wait_for
        self._cond = asyncio.Condition()
        self.request_event = asyncio.Event()  # set whenever a request is answered (or hangs); clear() it
        self._release = asyncio.Event()  # set by stop(): hung handlers return
        self._runner: web.AppRunner | None = None
        self._server: asyncio.AbstractServer | None = None
        self._up_task: asyncio.Task[None] | None = None
        self._transitions: dict[str, asyncio.Task[None]] = {}
        self._host, self._port, self._down = "127.0.0.1", 0, False
        self._routes = self._build_routes()

    @property
    def pelican(self) -> bool:
        return self.flavour == "pelican"

    @property
    def _login_path(self) -> str:
        return "/login" if self.pelican else "/auth/login"

    @property
    def _login_page(self) -> bytes:
        return PELICAN_LOGIN_PAGE if self.pelican else LOGIN_PAGE

    def _build_routes(self) -> list[_Route]:
        srv, st = r"/api/client/servers/(?P<server>[^/]+)", "all"
        app, node = "/api/application/servers", r"/api/application/nodes/(?P<id>[^/]+)"
        routes = [
            _Route("GET", re.compile(r"/"), None, None, None, self._web_root),
            _Route("GET", re.compile(re.escape(self._login_path)), None, None, None, self._web_login),
            _Route("GET", re.compile(r"/api/client"), "client", None, None, self._client_list),
            _Route("GET", re.compile(r"/api/client/account"), "client", None, None, self._client_account),
            _Route("GET", re.compile(srv), "client", "server", None, self._client_server),
            _Route("GET", re.compile(srv + "/resources"), "client", "server", st, self._client_resources),
            _Route("POST", re.compile(srv + "/power"), "client", "server", st, self._client_power),
            _Route(
                "GET",
                re.compile(srv + "/network/allocations"),
                "client",
                "server",
                st,
                self._client_allocations,
            ),
            _Route(
                "GET", re.compile(srv + "/websocket"), "client", "server", "websocket", self._client_websocket
            ),
            _Route("GET", re.compile(app), "application", None, None, self._app_servers, "servers"),
            _Route(
                "GET",
                re.compile(app + "/(?P<id>[^/]+)"),
                "application",
                "app_server",
                None,
                self._app_server,
                "servers",
            ),
            _Route(  # no fake server has an external_id
                "GET",
                re.compile(app + "/external/[^/]+"),
                "application",
                "never",
                None,
                self._app_server,
                "servers",
            ),
            _Route(
                "GET",
                re.compile(r"/api/application/nodes"),
                "application",
                None,
                None,
                self._app_nodes,
                "nodes",
            ),
            _Route("GET", re.compile(node), "application", "node", None, self._app_node, "nodes"),
            _Route(
                "GET",
                re.compile(node + "/allocations"),
                "application",
                "node",
                None,
                self._app_node_allocations,
                "allocations",
            ),
        ]
        if self.pelican:  # Laravel's health route (bootstrap/app.php withRouting(health: '/up'))
            routes.append(_Route("GET", re.compile(r"/up"), None, None, None, self._web_up))
        return routes

    # ----------------------------------------------------------------- lifecycle
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        self._host, self._port, self._down = host, port, False
        self._release.clear()
        await self._serve(self._bind())
        self.url = f"http://{host}:{self._port}"
        if self.wings_enabled:
            for node_id in sorted(self.nodes):
                await self.start_wings(node_id)
        return self.url

    async def stop(self) -> None:
        self._release.set()
        for task in self._transitions.values():
            task.cancel()
        self._transitions.clear()
        for wings in list(self.wings.values()):
            await wings.stop()
        self.wings.clear()
        if self._up_task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await self._up_task
        if self._server is not None:
            self._server.close()
        if self._runner is not None:
            await self._runner.cleanup()
        self._server = self._runner = self._up_task = None

    async def __aenter__(self) -> FakePanel:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _bind(self) -> socket.socket:
        # Binding and listening synchronously means that once set_down(False) returns, the kernel
        # already queues new connections (no "refused" window) while the accept loop starts.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        sock.listen(128)
        self._port = sock.getsockname()[1]
        return sock

    async def _serve(self, sock: socket.socket) -> None:
        assert self._runner is not None and self._runner.server is not None
        server = await asyncio.get_running_loop().create_server(self._runner.server, sock=sock)
        if self._down:  # went down again before the accept loop was running
            server.close()
        else:
            self._server = server

    def set_down(self, down: bool) -> asyncio.Future[None]:
        """Refuse connections (listening socket closed, open connections cut) or come back on the
        same port. Takes effect synchronously; the returned future may be awaited but need not be."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        done.set_result(None)
        if down == self._down or self._runner is None:
            return done
        self._down = down
        if down:
            if self._server is not None:
                self._server.close()
                self._server = None
            assert self._runner.server is not None
            for conn in self._runner.server.connections:
                conn.force_close()
            return done
        self._up_task = loop.create_task(self._serve(self._bind()))
        return self._up_task

    def set_latency(self, seconds: float) -> None:
        self.latency = seconds

    # ----------------------------------------------------------------- nodes and wings
    def _ensure_node(self, node_id: int, name: str) -> FakeNode:
        node = self.nodes.get(node_id)
        if node is None:
            node = self.nodes[node_id] = FakeNode(node_id, name)
            if self.wings_enabled and self._runner is not None:
                self._spawn_wings(node)
        return node

    def _node_of(self, s: FakeServer) -> FakeNode:
        return self._ensure_node(s.node_id, s.node_name)

    def set_node_down(self, node_id: int, down: bool) -> None:
        """Wings of that node unreachable (or back): the panel's answers change per flavour and the
        fake Wings' port closes (open sockets cut) or listens again on the same port, synchronously."""
        self.nodes[node_id].down = down
        wings = self.wings.get(node_id)
        if wings is not None:
            wings.sync_listening()

    def _spawn_wings(self, node: FakeNode) -> FakeWings:
        wings = self.wings.get(node.id)
        if wings is None:
            wings = self.wings[node.id] = FakeWings(self, node)
        wings.start_soon()
        return wings

    async def start_wings(self, node_id: int = 1) -> FakeWings:
        """Start (if needed) the fake Wings of a node and wait until it accepts connections."""
        wings = self._spawn_wings(self.nodes[node_id])
        await wings.start()
        return wings

    def _connection_port(self, node: FakeNode) -> int:
        return node.daemon_connect if self.pelican else node.daemon_listen

    def socket_url(self, s: FakeServer) -> str:
        """The `socket` the token endpoint answers for this server."""
        node = self._node_of(s)
        scheme = "wss" if node.scheme == "https" else "ws"
        return f"{scheme}://{node.fqdn}:{self._connection_port(node)}/api/servers/{s.uuid}/ws"

    def _server_changed(self, srv: FakeServer, attribute: str, old: Any, new: Any) -> None:
        wings = self.wings.get(srv.node_id)
        if wings is not None:
            wings.server_changed(srv, attribute, old, new)

    # ----------------------------------------------------------------- servers
    def add_server(
        self,
        name: str = "Survival",
        identifier: str | None = None,
        description: str = "",
        state: str = "offline",
        cpu: float = 0.0,
        memory_bytes: int = 0,
        disk_bytes: int = 0,
        network_rx_bytes: int = 0,
        network_tx_bytes: int = 0,
        uptime_ms: int = 0,
        cpu_limit: int = 200,
        memory_limit_mb: int = 2048,
        disk_limit_mb: int = 10240,
        status: str | None = None,
        is_transferring: bool = False,
        node_id: int = 1,
        node_name: str = "Node 1",
        ip: str = "10.0.0.5",
        ip_alias: str | None = None,
        port: int = 25565,
        *,
        allocation: bool = True,
        access: str | None = "owner",
        websocket_permission: bool = True,
    ) -> FakeServer:
        """Identifiers: 8 characters (the uuid's first 8, as uuidShort) by default, `serv_<base-32
        uuid>` with identifier_format="prfx"; an explicit identifier may have any length.
        `allocation=False` (Pelican only): no primary allocation."""
        if state not in STATES or status not in STATUSES or access not in ACCESS:
            raise ValueError(f"bad state {state!r}, status {status!r} or access {access!r}")
        if not allocation and not self.pelican:
            raise ValueError("only Pelican servers may lack a primary allocation")
        uid = str(uuidlib.UUID(int=self._ids.getrandbits(128), version=4))
        prfx = identifier is None and self.identifier_format == "prfx"
        if identifier is None:
            while uid[:8] in self.servers or (
                prfx and any(s.uuid_short == uid[:8] for s in self.servers.values())
            ):
                uid = str(uuidlib.UUID(int=self._ids.getrandbits(128), version=4))
            identifier = uid[:8]
            if prfx:
                encoded = base64.b32encode(uuidlib.UUID(uid).bytes).decode().rstrip("=").lower()
                identifier = PRFX_PREFIX + encoded
        elif not identifier or identifier in self.servers:
            raise ValueError(f"identifier {identifier!r} must be non-empty and unique")
        if len(identifier) == 8:
            uid = identifier + uid[8:]  # the identifier is the uuid's first 8 characters (uuidShort)
        # On Pelican the identifier IS the uuid_short column, whatever its length.
        uuid_short = identifier if (len(identifier) == 8 or self.pelican) else uid[:8]
        node = self._ensure_node(node_id, node_name)
        srv = FakeServer(
            identifier=identifier,
            uuid=uid,
            id=self._next_id,
            name=name,
            description=description,
            state=state,
            cpu=cpu,
            memory_bytes=memory_bytes,
            disk_bytes=disk_bytes,
            network_rx_bytes=network_rx_bytes,
            network_tx_bytes=network_tx_bytes,
            uptime_ms=uptime_ms,
            cpu_limit=cpu_limit,
            memory_limit_mb=memory_limit_mb,
            disk_limit_mb=disk_limit_mb,
            status=status,
            is_transferring=is_transferring,
            node_id=node.id,
            node_name=node_name,
            allocation_id=self._next_alloc if allocation else None,
            ip=ip,
            ip_alias=ip_alias,
            port=port,
            access=access,
            websocket_permission=websocket_permission,
            uuid_short=uuid_short,
        )
        srv.on_change.append(self._server_changed)
        self._next_id += 1
        if allocation:
            self._next_alloc += 1
        self.servers[identifier] = srv
        return srv

    def add_servers(self, n: int, **common: Any) -> list[FakeServer]:
        """Add "Server 001".. (numbering continues across calls); ports count up from `port`."""
        base_port = common.pop("port", 25565)
        out = []
        for i in range(n):
            out.append(self.add_server(name=f"Server {self._bulk:03d}", port=base_port + i, **common))
            self._bulk += 1
        return out

    def remove_server(self, identifier: str) -> None:
        srv = self.servers.pop(identifier)
        self._cache.pop(srv.uuid, None)
        task = self._transitions.pop(srv.uuid, None)
        if task is not None:
            task.cancel()
        wings = self.wings.get(srv.node_id)
        if wings is not None:
            wings.server_removed(srv)

    # ----------------------------------------------------------------- websocket tokens
    def _permissions(self, s: FakeServer) -> list[str]:
        """GetUserPermissionsService: owners and root admins "*", root admins also admin.websocket.*."""
        if self.client_user_admin:
            return ["*", *ADMIN_PERMISSIONS]
        if s.access == "owner":
            return ["*"]
        return [*SUBUSER_PERMISSIONS, *(("websocket.connect",) if s.websocket_permission else ())]

    def websocket_token(self, s: FakeServer, lifetime: float | None = None, **overrides: Any) -> str:
        """A token as the endpoint issues it (not counted, no limits). `overrides` replace claims; an
        override of None removes the claim."""
        node = self._node_of(s)
        now = self.token_clock()
        life = self.token_lifetime if lifetime is None else lifetime
        # Dates are whole seconds (so a token may live up to a second less). A lifetime under a minute
        # (tests) is kept exact to the millisecond, so short test tokens behave predictably.
        iat = int(now)
        exp = iat + int(life) if float(life).is_integer() and life >= 60 else round(now + life, 3)
        claims: dict[str, Any] = {
            "iss": self.url,
            "aud": [f"{node.scheme}://{node.fqdn}:{self._connection_port(node)}"],
            "jti": hashlib.md5(f"{self.client_user_id}{s.uuid}".encode()).hexdigest(),
            "iat": iat,
            "nbf": iat - 300,
            "exp": exp,
            "server_uuid": s.uuid,
            "user_uuid": self.client_user_uuid,
        }
        if not self.pelican:
            claims["user_id"] = self.client_user_id  # deprecated, Pterodactyl only
        claims["unique_id"] = secrets.token_hex(8)
        claims["permissions"] = self._permissions(s)
        if self.token_scope is not None:
            claims["scope"] = self.token_scope
        for key, value in overrides.items():
            if value is None:
                claims.pop(key, None)
            else:
                claims[key] = value
        return sign_token(claims, node.daemon_token)

    def _websocket_conflict(self, s: FakeServer) -> str | None:
        """The token route's 409 rules (AuthenticateServerAccess `$except`)."""
        node = self._node_of(s)
        detail = _conflict_detail(s, node)
        if detail is None or not self.client_user_admin:
            return detail
        if self.pelican:  # admins pass every state, suspended included (wings then closes 4409)
            return None
        return detail if s.status == "suspended" or node.maintenance_mode else None

    # ----------------------------------------------------------------- recording
    def count(self, method: str | None = None, path_contains: str | None = None) -> int:
        return sum(
            1
            for r in self.requests
            if (method is None or r.method == method) and (path_contains is None or path_contains in r.path)
        )

    async def wait_for(
        self, predicate: Callable[[RecordedRequest], bool], timeout: float = 5.0
    ) -> RecordedRequest:
        """Wait until an answered (or hung) request satisfies `predicate`; raises TimeoutError."""
        pos, found = 0, None

        def scan() -> bool:
            nonlocal pos, found
            while pos < len(self._finished):
                pos += 1
                if predicate(self._finished[pos - 1]):
                    found = self._finished[pos - 1]
                    return True
            return False

        async with asyncio.timeout(timeout), self._cond:
            await self._cond.wait_for(scan)
        assert found is not None
        return found

    async def _finish(self, rec: RecordedRequest) -> None:
        self._finished.append(rec)
        self.request_event.set()
        async with self._cond:
            self._cond.notify_all()

    # ----------------------------------------------------------------- faults
    def _add_fault(self, kind: str, count: int, path_contains: str | None, **kw: Any) -> None:
        self._faults.append(_Fault(kind, count, path_contains, **kw))

    def fail_next(
        self,
        status: int,
        count: int = 1,
        path_contains: str | None = None,
        body: Any = None,
        *,
        path: str | None = None,
    ) -> None:
        self._add_fault("fail", count, path_contains, status=status, body=body, path=path)

    def fail_ratio(self, ratio: float, statuses: tuple[int, ...] = (500, 502, 503), seed: int = 0) -> None:
        self._fail_ratio, self._fail_statuses, self._fail_rng = ratio, statuses, random.Random(seed)

    def hang_next(self, count: int = 1, path_contains: str | None = None) -> None:
        self._add_fault("hang", count, path_contains)

    def malformed_next(self, count: int = 1, path_contains: str | None = None) -> None:
        self._add_fault("malformed", count, path_contains)

    def html_next(self, count: int = 1, path_contains: str | None = None, *, path: str | None = None) -> None:
        self._add_fault("html", count, path_contains, path=path)

    def _fault(self, path: str, wants_json: bool) -> web.Response | object | None:
        fault = next(
            (
                f
                for f in self._faults
                if f.remaining > 0
                and (f.path_contains is None or f.path_contains in path)
                and (f.path is None or f.path == path)
            ),
            None,
        )
        if fault is not None:
            fault.remaining -= 1
            self._faults = [f for f in self._faults if f.remaining > 0]
            if fault.kind == "hang":
                return _HANG
            if fault.kind == "malformed":  # e.g. a proxy cutting the body short
                return web.Response(
                    status=200,
                    body=b'{"object":"list","data":[{"object":"server","attr',
                    content_type="application/json",
                )
            if fault.kind == "html":
                return _html(200, self._login_page)
            return self._injected(fault.status, fault.body, wants_json)
        if self._fail_ratio > 0 and self._fail_rng.random() < self._fail_ratio:
            return self._injected(self._fail_rng.choice(self._fail_statuses), None, wants_json)
        return None

    def _injected(self, status: int, body: Any, wants_json: bool) -> web.Response:
        if body is None:
            resp = self._error(status, wants_json)
        elif isinstance(body, str | bytes):
            raw = body.encode() if isinstance(body, str) else body
            resp = web.Response(status=status, body=raw, content_type="application/json")
        else:
            resp = _json(status, body)
        if status == 429:
            resp.headers["Retry-After"] = "1"
        return resp

    # ----------------------------------------------------------------- request pipeline
    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            parsed = json.loads(raw) if raw.strip() else None
        except ValueError:
            parsed = None
        rec = RecordedRequest(
            request.method,
            request.path,
            dict(request.query),
            _Headers((k.lower(), v) for k, v in request.headers.items()),
            parsed,
            at=self.clock(),
        )
        self.requests.append(rec)
        if self.latency > 0:
            await asyncio.sleep(self.latency)  # simulated panel latency
        if self._down:  # the connection was cut by set_down(True) meanwhile: nobody will read this
            return web.Response(status=503)
        resp = self._dispatch(request, raw)
        if resp is _HANG:
            rec.hung = True
            await self._finish(rec)
            await self._release.wait()
            if request.transport is not None:
                request.transport.close()  # the client sees a dropped connection, never an answer
            return web.Response(status=503)
        assert isinstance(resp, web.Response)
        rec.status = resp.status
        if resp.status == 429:
            self.too_many_requests += 1
        await self._finish(rec)
        return resp

    def _dispatch(self, request: web.Request, raw: bytes) -> web.Response | object:
        """Synchronous, so state changes never interleave. Check order per the reference:
        route, auth, JSON body, throttle, (faults), binding, key type, access, state, permission,
        validation."""
        path, method = request.path, "GET" if request.method == "HEAD" else request.method
        wants_json = _expects_json(request.headers)
        route, params, allowed = None, {}, []
        for r in self._routes:
            m = r.pattern.fullmatch(path)
            if m:
                allowed.append(r.method)
                if r.method == method:
                    route, params = r, m.groupdict()
        if route is None:
            if allowed:
                supported = ", ".join(m2 for m in allowed for m2 in ((m, "HEAD") if m == "GET" else (m,)))
                return self._error(
                    405,
                    wants_json,
                    "MethodNotAllowedHttpException",
                    f"The {request.method} method is not supported for route "
                    f"{path.lstrip('/')}. Supported methods: {supported}.",
                )
            return self._error(404, wants_json, detail=f"The route {path.lstrip('/')} could not be found.")
        if route.api is None:
            return route.handler(request)
        key_type = self._key_type(request.headers.get("Authorization", ""))
        if key_type is None:  # not counted by the limiter, no rate-limit headers
            if wants_json:
                return self._error(401, True)
            return self._redirect(request, self._login_path)
        if raw.strip() and ("/json" in request.content_type or "+json" in request.content_type):
            try:
                json.loads(raw)
            except ValueError:
                return self._error(
                    400,
                    wants_json,
                    detail="The JSON data passed in the request appears to be malformed: Syntax error",
                )
        ok, limit_headers = self._limiters[route.api].hit(self.clock())
        if not ok:
            resp = self._error(429, wants_json)
        else:
            fault = self._fault(path, wants_json)
            if fault is _HANG:
                return _HANG
            resp = (
                fault
                if isinstance(fault, web.Response)
                else self._route(route, params, key_type, request, raw, wants_json)
            )
        for name, value in limit_headers.items():  # a 429 of an inner limiter keeps its own headers
            resp.headers.setdefault(name, value)
        return resp

    def _find_client_server(self, value: str) -> FakeServer | None:
        """SubstituteClientBindings / Server::resolveRouteBinding."""
        direct = self.servers.get(value)
        if self.pelican:  # uuid_short or uuid, whatever the length
            if direct is not None and direct.uuid_short == value:
                return direct
            return next((s for s in self.servers.values() if value in (s.uuid_short, s.uuid)), None)
        if len(value) == 8:  # 8 characters: uuidShort
            if direct is not None and direct.uuid_short == value:
                return direct
            return next((s for s in self.servers.values() if s.uuid_short == value), None)
        if direct is not None:  # a Pterodactyl 1.12 prfx identifier
            return direct
        return next((s for s in self.servers.values() if s.uuid == value), None)

    def _route(
        self,
        route: _Route,
        params: dict[str, str],
        key_type: str,
        request: web.Request,
        raw: bytes,
        wants_json: bool,
    ) -> web.Response:
        target: Any = None
        if route.bind == "server":
            target = self._find_client_server(params["server"])
        elif route.bind == "app_server" and params["id"].isdigit():
            target = next((s for s in self.servers.values() if s.id == int(params["id"])), None)
        elif route.bind == "node" and params["id"].isdigit() and int(params["id"]) in self.nodes:
            target = int(params["id"])
        if route.bind is not None and target is None:
            return self._error(404, wants_json)
        # A root admin's client key is accepted on the application API (ApplicationApiRequest::authorize).
        admin_on_app = key_type == "client" and route.api == "application" and self.client_user_admin
        if key_type != route.api and not admin_on_app:
            return self._error(403, wants_json, detail=KEY_TYPE_DETAIL[route.api])
        if route.bind == "server" and target.access is None and not self.client_user_admin:
            return self._error(404, wants_json, detail=NO_ACCESS)  # AuthenticateServerAccess
        if route.acl and key_type == "application" and not self.app_key_permissions.get(route.acl, False):
            return self._error(403, wants_json)  # AdminAcl
        if route.state_check == "all":
            detail = _conflict_detail(target, self._node_of(target))
        elif route.state_check == "websocket":
            detail = self._websocket_conflict(target)
        else:
            detail = None
        if detail:
            return self._error(409, wants_json, detail=detail)
        if route.method == "POST":
            return route.handler(request, target, raw, wants_json)
        return route.handler(request, target) if route.bind else route.handler(request)

    def _key_type(self, authorization: str) -> str | None:
        # Laravel bearerToken(): case-sensitive "Bearer " (last occurrence), token ends at a comma.
        pos = authorization.rfind("Bearer ")
        token = authorization[pos + 7 :].split(",", 1)[0] if pos >= 0 else None
        return {self.client_key: "client", self.app_key: "application"}.get(token or "")

    def _may_read(self, key_type: str, resource: str) -> bool:
        return key_type != "application" or self.app_key_permissions.get(resource, False)

    def _request_key_type(self, request: web.Request) -> str:
        return self._key_type(request.headers.get("Authorization", "")) or ""

    def _error(
        self,
        status: int,
        wants_json: bool,
        code: str | None = None,
        detail: str | None = None,
        meta: dict[str, str] | None = None,
    ) -> web.Response:
        try:
            phrase = http.HTTPStatus(status).phrase
        except ValueError:  # e.g. a proxy's 520
            phrase = "Error"
        default_code, default_detail = ERRORS.get(status, ("HttpException", phrase))
        if not wants_json:  # Laravel renders its HTML error page
            title = f"{status} {phrase}"
            return _html(
                status,
                f"<!DOCTYPE html><html><head><title>{title}</title></head>"
                f"<body><h1>{title}</h1></body></html>".encode(),
            )
        err: dict[str, Any] = {
            "code": code or default_code,
            "status": str(status),
            "detail": detail or default_detail,
        }
        if meta:
            err["meta"] = meta
        return _json(status, {"errors": [err]})

    @staticmethod
    def _redirect(request: web.Request, path: str) -> web.Response:
        target = f"{request.scheme}://{request.host}{path}"
        body = (
            f'<!DOCTYPE html><html><head><meta http-equiv="refresh" content="0;url=\'{target}\'" />'
            f"<title>Redirecting to {target}</title></head><body>Redirecting to "
            f'<a href="{target}">{target}</a>.</body></html>'
        )
        return web.Response(
            status=302, body=body.encode(), headers={"Location": target, "Content-Type": HTML_TYPE}
        )

    # ----------------------------------------------------------------- payloads
    def _paginate(
        self, request: web.Request, items: list[dict[str, Any]], per_page: int, keep_query: bool
    ) -> dict[str, Any]:
        per_page = per_page if per_page > 0 else 15  # Laravel's model default for 0/invalid
        page = _page_number(request.query.get("page"))
        total_pages = max(1, math.ceil(len(items) / per_page))
        data = items[(page - 1) * per_page : page * per_page]
        base = f"{request.scheme}://{request.host}{request.path}"

        def url(n: int) -> str:
            if not keep_query:  # application API quirk: the paginator has no appends()
                return f"{base}?page={n}"
            query = dict(request.query)
            query["page"] = str(n)  # keeps its position when present, else appended
            return f"{base}?{urlencode(query)}"

        links = {}
        if page > 1:
            links["previous"] = url(page - 1)
        if page < total_pages:
            links["next"] = url(page + 1)
        return {
            "object": "list",
            "data": data,
            "meta": {
                "pagination": {
                    "total": len(items),
                    "count": len(data),
                    "per_page": per_page,
                    "current_page": page,
                    "total_pages": total_pages,
                    "links": links,
                }
            },
        }

    def _client_allocation_items(self, s: FakeServer) -> list[dict[str, Any]]:
        if s.allocation_id is None:
            return []
        return [
            {
                "object": "allocation",
                "attributes": {
                    "id": s.allocation_id,
                    "ip": s.ip,
                    "ip_alias": s.ip_alias,
                    "port": s.port,
                    "notes": None,
                    "is_default": True,
                },
            }
        ]

    def _client_item(self, s: FakeServer) -> dict[str, Any]:
        node = self._node_of(s)
        variable = {
            "object": "egg_variable",
            "attributes": {
                "name": "Server Jar File",
                "description": "The name of the server jarfile to run.",
                "env_variable": "SERVER_JARFILE",
                "default_value": "server.jar",
                "server_value": "server.jar",
                "is_editable": True,
                "rules": "required|regex:/^([\\w\\d._-]+)(\\.jar)$/",
            },
        }
        sftp: dict[str, Any] = {"ip": node.fqdn, "port": node.daemon_sftp}
        if self.pelican:
            sftp = {"ip": node.fqdn, "alias": node.daemon_sftp_alias, "port": node.daemon_sftp}
        attrs: dict[str, Any] = {
            "server_owner": s.access == "owner",
            "identifier": s.identifier,
            "internal_id": s.id,
            "uuid": s.uuid,
            "name": s.name,
            "node": node.name,
            "is_node_under_maintenance": node.maintenance_mode,
            "sftp_details": sftp,
            "description": s.description,
            "limits": self._limits(s),
            "invocation": STARTUP.replace("{{SERVER_JARFILE}}", "server.jar"),
            "docker_image": DOCKER_IMAGE,
            "egg_features": ["eula", "java_version", "pid_limit"],
            "feature_limits": self._feature_limits(s),
            "status": s.status,
            "is_suspended": s.status == "suspended",
            "is_installing": s.status in ("installing", "install_failed"),
            "is_transferring": s.is_transferring,
            "relationships": {
                "allocations": {"object": "list", "data": self._client_allocation_items(s)},
                "variables": {"object": "list", "data": [variable]},
            },
        }
        if self.pelican and not self.editable_descriptions:
            del attrs["description"]  # PANEL_EDITABLE_SERVER_DESCRIPTIONS=false
        return {"object": "server", "attributes": attrs}

    def _limits(self, s: FakeServer) -> dict[str, Any]:
        limits: dict[str, Any] = {
            "memory": s.memory_limit_mb,
            "swap": 0,
            "disk": s.disk_limit_mb,
            "io": 500,
            "cpu": s.cpu_limit,
            "threads": None,
            "oom_disabled": True,
        }
        if self.pelican:
            limits["oom_killer"] = not limits["oom_disabled"]
        return limits

    @staticmethod
    def _feature_limits(s: FakeServer) -> dict[str, Any]:
        return {
            "databases": s.feature_databases,
            "allocations": s.feature_allocations,
            "backups": s.feature_backups,
        }

    @staticmethod
    def _app_allocation(s: FakeServer) -> dict[str, Any]:
        return {
            "object": "allocation",
            "attributes": {
                "id": s.allocation_id,
                "ip": s.ip,
                "alias": s.ip_alias,
                "port": s.port,
                "notes": None,
                "assigned": True,
            },
        }

    def _app_item(self, s: FakeServer, includes: list[str], key_type: str) -> dict[str, Any]:
        installed = s.status not in ("installing", "install_failed")
        attrs: dict[str, Any] = {
            "id": s.id,
            "external_id": None,
            "uuid": s.uuid,
            "identifier": s.identifier,
            "name": s.name,
            "description": s.description,
            "status": s.status,
            "suspended": s.status == "suspended",
            "limits": self._limits(s),
            "feature_limits": self._feature_limits(s),
            "user": 1,
            "node": s.node_id,
            "allocation": s.allocation_id,
            "nest": 1,
            "egg": 1,
            "container": {
                "startup_command": STARTUP,
                "image": DOCKER_IMAGE,
                "installed": 1 if installed else 0,
                "environment": {
                    "SERVER_JARFILE": "server.jar",
                    "STARTUP": STARTUP,
                    "P_SERVER_LOCATION": "Local",
                    "P_SERVER_UUID": s.uuid,
                    "P_SERVER_ALLOCATION_LIMIT": s.feature_allocations,
                },
            },
            "updated_at": TIMESTAMP,
            "created_at": TIMESTAMP,
        }
        if self.pelican:
            del attrs["nest"]  # Pelican has no nests
        null = {"object": "null_resource", "attributes": None}
        rel: dict[str, Any] = {}
        for name in includes:  # relationships live INSIDE attributes (PterodactylSerializer)
            if name == "allocations":
                allocations = [self._app_allocation(s)] if s.allocation_id is not None else []
                readable = self._may_read(key_type, "allocations")
                rel["allocations"] = {"object": "list", "data": allocations} if readable else null
            elif name == "node":
                rel["node"] = self._node_item(s.node_id) if self._may_read(key_type, "nodes") else null
            # Pelican: "location" and "nest" are silently ignored (and the fake knows no other include)
        if rel:
            attrs["relationships"] = rel
        return {"object": "server", "attributes": attrs}

    def _node_item(self, node_id: int) -> dict[str, Any]:
        node = self.nodes[node_id]
        on_node = [s for s in self.servers.values() if s.node_id == node_id]
        attrs: dict[str, Any] = {
            "id": node_id,
            "uuid": node.uuid,
            "public": True,
            "name": node.name,
            "description": None,
            "location_id": 1,
            "fqdn": node.fqdn,
            "scheme": node.scheme,
            "behind_proxy": False,
            "maintenance_mode": node.maintenance_mode,
            "memory": 65536,
            "memory_overallocate": 0,
            "disk": 512000,
            "disk_overallocate": 0,
            "upload_size": 100,
            "daemon_listen": node.daemon_listen,
            "daemon_sftp": node.daemon_sftp,
            "daemon_base": "/var/lib/pterodactyl/volumes",
            "created_at": TIMESTAMP,
            "updated_at": TIMESTAMP,
            "allocated_resources": {
                "memory": sum(s.memory_limit_mb for s in on_node),
                "disk": sum(s.disk_limit_mb for s in on_node),
            },
        }
        if self.pelican:  # no locations; a separate public port; CPU accounting; tags
            del attrs["location_id"]
            attrs.update(
                daemon_connect=node.daemon_connect,
                daemon_sftp_alias=node.daemon_sftp_alias,
                daemon_base="/var/lib/pelican/volumes",
                tags=[],
                cpu=800,
                cpu_overallocate=0,
            )
            attrs["allocated_resources"]["cpu"] = sum(s.cpu_limit for s in on_node)
        return {"object": "node", "attributes": attrs}

    def _missing_stats(self) -> dict[str, Any]:
        """Pelican's answer when wings cannot be reached: {"state": "missing"} rendered as stats."""
        resources = dict.fromkeys(
            ("memory_bytes", "cpu_absolute", "disk_bytes", "network_rx_bytes", "network_tx_bytes", "uptime"),
            0,
        )
        return {
            "object": "stats",
            "attributes": {"current_state": "missing", "is_suspended": False, "resources": resources},
        }

    @staticmethod
    def _advance(s: FakeServer) -> None:
        """Wings moves on after each observed state (or time step); a state changed meanwhile by a test
        discards the queue."""
        if s._pending and s.state == s._pending_base:
            nxt = s._pending.pop(0)
            s._pending_base = nxt
            s._set_state(nxt)
        else:
            s._pending = []

    def _stats(self, s: FakeServer) -> dict[str, Any]:
        now = self.clock()
        cached = self._cache.get(s.uuid)
        if self.resource_cache_seconds > 0 and cached and now < cached[0]:
            return cached[1]  # the panel's per-server cache, shared by all users
        if self._node_of(s).down:
            if not self.pelican:
                raise _WingsUnreachable  # 504, never cached
            payload = self._missing_stats()  # Pelican: 200, cached like a good answer
        else:
            on = s.state != "offline"
            cpu = round(s.cpu, 3) if on else 0.0
            payload = {
                "object": "stats",
                "attributes": {
                    "current_state": s.state,
                    "is_suspended": s.status == "suspended",
                    "resources": {
                        "memory_bytes": s.memory_bytes if on else 0,
                        # PHP re-encodes a whole float like 0.0 as 0, so integral values arrive as JSON ints.
                        "cpu_absolute": int(cpu) if float(cpu).is_integer() else cpu,
                        "disk_bytes": s.disk_bytes,
                        "network_rx_bytes": s.network_rx_bytes if on else 0,
                        "network_tx_bytes": s.network_tx_bytes if on else 0,
                        "uptime": s.uptime_ms if on else 0,
                    },
                },
            }
            self._advance(s)
        if self.resource_cache_seconds > 0:
            self._cache[s.uuid] = (now + self.resource_cache_seconds, payload)
        return payload

    # ----------------------------------------------------------------- time-based transitions
    def _schedule_transitions(self, s: FakeServer) -> None:
        if self.transition_delay is None:
            return
        old = self._transitions.pop(s.uuid, None)
        if old is not None:
            old.cancel()
        if s._pending:
            self._transitions[s.uuid] = asyncio.get_running_loop().create_task(self._run_transitions(s))

    async def _run_transitions(self, s: FakeServer) -> None:
        while self.transition_delay is not None and s._pending and s.state == s._pending_base:
            await asyncio.sleep(self.transition_delay)
            if s._pending and s.state == s._pending_base:
                self._advance(s)
        if self._transitions.get(s.uuid) is asyncio.current_task():
            del self._transitions[s.uuid]

    # ----------------------------------------------------------------- route handlers
    def _web_root(self, request: web.Request) -> web.Response:
        return self._redirect(request, self._login_path)

    def _web_login(self, request: web.Request) -> web.Response:
        return _html(200, self._login_page)

    def _web_up(self, request: web.Request) -> web.Response:
        return _html(200, HEALTH_PAGE)

    def _client_list(self, request: web.Request) -> web.Response:
        per_page = min(_php_int(request.query.get("per_page"), 50), 100)
        kind = request.query.get("type")
        servers = list(self.servers.values())
        if kind in ("admin", "admin-all"):
            if not self.client_user_admin:
                servers = []
            elif kind == "admin":  # servers the admin neither owns nor shares
                servers = [s for s in servers if s.access is None]
        elif kind == "owner":
            servers = [s for s in servers if s.access == "owner"]
        else:  # owned or shared
            servers = [s for s in servers if s.access is not None]
        items = [self._client_item(s) for s in servers]
        return _json(200, self._paginate(request, items, per_page, keep_query=True))

    def _client_account(self, request: web.Request) -> web.Response:
        return _json(
            200,
            {
                "object": "user",
                "attributes": {
                    "id": self.client_user_id,
                    "admin": self.client_user_admin,
                    "username": self.client_username,
                    "email": "bot@example.com",
                    "first_name": "Ptero",
                    "last_name": "Disbot",
                    "language": "en",
                },
            },
        )

    def _client_server(self, request: web.Request, s: FakeServer) -> web.Response:
        meta = {"is_server_owner": s.access == "owner", "user_permissions": self._permissions(s)}
        return _json(200, {**self._client_item(s), "meta": meta})

    def _client_resources(self, request: web.Request, s: FakeServer) -> web.Response:
        try:
            return _json(200, self._stats(s))
        except _WingsUnreachable:  # getDetails passes useStatusCode=false: always 504
            return self._error(504, _expects_json(request.headers))

    def _client_allocations(self, request: web.Request, s: FakeServer) -> web.Response:
        return _json(200, {"object": "list", "data": self._client_allocation_items(s)})

    def _client_websocket(self, request: web.Request, s: FakeServer) -> web.Response:
        wants_json = _expects_json(request.headers)
        if self.websocket_token_rate_limit is not None:  # Pelican: per server uuid, all users together
            limiter = self._websocket_limiters.setdefault(s.uuid, _Limiter(self.websocket_token_rate_limit))
            limiter.limit = self.websocket_token_rate_limit
            ok, headers = limiter.hit(self.clock())
            if not ok:
                resp = self._error(429, wants_json)
                resp.headers.update(headers)
                return resp
        can_connect = self.client_user_admin or s.access == "owner" or s.websocket_permission
        if not can_connect:
            return self._error(403, wants_json, "HttpForbiddenException", NO_WEBSOCKET)
        token = self.websocket_token(s)
        self.tokens_issued += 1
        self.tokens_issued_per_server[s.identifier] += 1
        # A plain JsonResponse: no object/attributes envelope.
        return _json(200, {"data": {"token": token, "socket": self.socket_url(s)}})

    def _client_power(
        self, request: web.Request, s: FakeServer, raw: bytes, wants_json: bool
    ) -> web.Response:
        data: Any = {}
        if "json" in request.content_type:
            with contextlib.suppress(ValueError):
                data = json.loads(raw) if raw.strip() else {}
        else:  # form encoding works too
            form = parse_qs(raw.decode(errors="replace"), keep_blank_values=True)
            data = {k: v[-1] for k, v in form.items()}
        if not isinstance(data, dict):
            data = {}
        sig = data.get("signal", request.query.get("signal"))
        if isinstance(sig, str):
            sig = sig.strip() or None  # TrimStrings + ConvertEmptyStringsToNull
        if sig is None or sig not in SIGNALS:
            if not wants_json:  # Laravel redirects back with the errors in the session
                return self._redirect(request, "/")
            rule, detail = (
                ("required", "The signal field is required.")
                if sig is None
                else ("in", "The selected signal is invalid.")
            )
            return self._error(422, True, detail=detail, meta={"source_field": "signal", "rule": rule})
        if self._node_of(s).down:  # wings unreachable: nothing happens
            if self.pelican:  # Laravel ConnectionException, not an HTTP exception: a plain 500
                return self._error(500, wants_json, "ConnectionException", UNEXPECTED)
            return self._error(504, wants_json)
        # Simplified wings: 204 only means "accepted"; effects show up on the following /resources reads.
        locked = s.state == "stopping" and bool(s._pending) and s._pending_base == "stopping"
        if sig == "kill":
            s._pending = []
            s._set_state("offline")
        elif locked:
            pass  # a stop/restart holds the power lock: wings drops the action silently
        elif sig == "start" and s.state == "offline":
            s._queue("starting", "running")
        elif sig == "stop" and s.state in ("starting", "running"):
            s._queue("stopping", "offline")
        elif sig == "restart":
            if s.state == "offline":
                s._queue("starting", "running")
            else:
                s._queue("stopping", "starting", "running")
        self._schedule_transitions(s)
        self.power_requests.append((s.identifier, sig))
        return web.Response(status=204)

    def _filtered_servers(self, request: web.Request) -> list[FakeServer] | web.Response:
        filters = {
            m.group(1): value
            for key, value in request.query.items()
            if (m := re.fullmatch(r"filter\[(.+)\]", key))
        }
        allowed = APP_SERVER_FILTERS[self.flavour]
        unknown = [name for name in filters if name not in allowed]
        if unknown:  # spatie InvalidFilterQuery
            detail = (
                f"Requested filter(s) `{', '.join(unknown)}` are not allowed. "
                f"Allowed filter(s) are `{', '.join(allowed)}`."
            )
            return self._error(400, _expects_json(request.headers), "InvalidFilterQuery", detail)
        servers = sorted(self.servers.values(), key=lambda s: s.id)
        for name, wanted in filters.items():
            if not wanted:
                continue  # an empty filter value is ignored

            def column(s: FakeServer, name: str = name) -> str | None:
                return {
                    "uuid": s.uuid,
                    "uuidShort": s.uuid_short,
                    "uuid_short": s.uuid_short,
                    "name": s.name,
                    "description": s.description,
                    "image": DOCKER_IMAGE,
                    "external_id": None,
                }[name]

            servers = [s for s in servers if _partial_match(column(s), wanted)]
        return servers

    def _app_servers(self, request: web.Request) -> web.Response:
        servers = self._filtered_servers(request)
        if isinstance(servers, web.Response):
            return servers
        includes, key_type = _includes(request), self._request_key_type(request)
        items = [self._app_item(s, includes, key_type) for s in servers]
        per_page = _php_int(request.query.get("per_page"), 50)  # no upper cap here
        return _json(200, self._paginate(request, items, per_page, keep_query=False))

    def _app_server(self, request: web.Request, s: FakeServer) -> web.Response:
        return _json(200, self._app_item(s, _includes(request), self._request_key_type(request)))

    def _app_nodes(self, request: web.Request) -> web.Response:
        items = [self._node_item(n) for n in sorted(self.nodes)]
        per_page = _php_int(request.query.get("per_page"), 50)
        return _json(200, self._paginate(request, items, per_page, keep_query=False))

    def _app_node(self, request: web.Request, node_id: int) -> web.Response:
        return _json(200, self._node_item(node_id))

    def _app_node_allocations(self, request: web.Request, node_id: int) -> web.Response:
        items = [
            self._app_allocation(s)
            for s in self.servers.values()
            if s.node_id == node_id and s.allocation_id is not None
        ]
        per_page = _php_int(request.query.get("per_page"), 50)
        return _json(200, self._paginate(request, items, per_page, keep_query=False))


# --------------------------------------------------------------------- standalone
def _limit_arg(value: int | None) -> int | _FlavourDefault | None:
    if value is None:
        return FLAVOUR_DEFAULT
    return value or None  # 0 = unlimited


async def _run(args: argparse.Namespace) -> None:
    panel = FakePanel(
        args.client_key,
        args.app_key,
        latency=args.latency,
        client_rate_limit=_limit_arg(args.client_rate_limit),
        app_rate_limit=_limit_arg(args.app_rate_limit),
        resource_cache_seconds=args.resource_cache,
        flavour=args.flavour,
        wings=args.wings,
        transition_delay=args.transition_delay,
    )
    for i, srv in enumerate(panel.add_servers(args.servers, state=args.state)):
        srv.disk_bytes = (1 + i % 7) * 512 * 1024**2
        if srv.state != "offline":  # deterministic, varied usage for manual runs and benchmarks
            srv.cpu, srv.memory_bytes = float(5 + (i * 37) % 150), (256 + (i * 97) % 1536) * 1024**2
            srv.network_rx_bytes, srv.network_tx_bytes = (i + 1) * 10**6, (i + 1) * 4 * 10**5
            srv.uptime_ms = (i + 1) * 60_000
    url = await panel.start(args.host, args.port)
    lines = [f"FAKE_PANEL_URL={url}", f"FAKE_PANEL_FLAVOUR={panel.flavour}"]
    lines += [f"FAKE_WINGS_NODE_{node_id}={wings.url}" for node_id, wings in sorted(panel.wings.items())]
    lines += [f"FAKE_PANEL_CLIENT_KEY={panel.client_key}", f"FAKE_PANEL_APP_KEY={panel.app_key}"]
    print("\n".join(lines), flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await panel.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake panel until SIGINT/SIGTERM.")
    parser.add_argument("--servers", type=int, default=30)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--state", choices=STATES, default="running")
    parser.add_argument("--flavour", choices=FLAVOURS, default="pterodactyl")
    parser.add_argument("--client-key", default=None, help="default: the flavour's default key")
    parser.add_argument("--app-key", default=None, help="default: the flavour's default key")
    parser.add_argument(
        "--client-rate-limit", type=int, default=None, help="per minute, 0 = unlimited (default 720/256)"
    )
    parser.add_argument(
        "--app-rate-limit", type=int, default=None, help="per minute, 0 = unlimited (default 240/256)"
    )
    parser.add_argument("--resource-cache", type=float, default=0.0, help="seconds (the real panel: 20)")
    parser.add_argument("--wings", action="store_true", help="serve a fake Wings websocket per node")
    parser.add_argument(
        "--transition-delay", type=float, default=None, help="seconds per power state step, in real time"
    )
    asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
