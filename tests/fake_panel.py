"""A local fake Pterodactyl panel (client + application API) served over real HTTP on aiohttp.

Used by the API client's unit tests, by end-to-end tests (the bot runs as a separate process and
reaches this panel over HTTP) and by benchmarks. Every behaviour follows
/work/shared/reference/pterodactyl-api.md: envelopes, pagination (and its quirks), error bodies,
check order, rate limits, the 20 s resource cache and a simplified wings power state machine.

Standalone: ``python -m tests.fake_panel --servers 30 --port 0 --latency 0.05``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import http
import json
import math
import random
import re
import signal
import socket
import time
import uuid as uuidlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlencode

from aiohttp import web

DEFAULT_CLIENT_KEY = "ptlc_" + "a" * 11 + "b" * 32
DEFAULT_APP_KEY = "ptla_" + "c" * 11 + "d" * 32
STATES = ("offline", "starting", "running", "stopping")
STATUSES = (None, "installing", "install_failed", "reinstall_failed", "suspended", "restoring_backup")
SIGNALS = ("start", "stop", "restart", "kill")
TIMESTAMP = "2024-01-01T00:00:00+00:00"
WINDOW_SECONDS = 60.0
STARTUP = "java -Xms128M -XX:MaxRAMPercentage=95.0 -jar {{SERVER_JARFILE}}"
DAEMON_DOWN = "Could not establish a connection to the machine running this server. Please try again."
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
    500: (
        "ErrorException",
        "An unexpected error was encountered while processing this request, please try again.",
    ),
    502: ("DaemonConnectionException", DAEMON_DOWN),
    503: ("HttpException", "Service Unavailable"),
    504: ("DaemonConnectionException", DAEMON_DOWN),
}
LOGIN_PAGE = (
    b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Pterodactyl</title>'
    b'</head><body><div id="app"><form method="post" action="/auth/login">'
    b'<input name="user"><input name="password" type="password"></form></div></body></html>'
)
HTML_TYPE = "text/html; charset=UTF-8"
_HANG = object()  # sentinel returned by the fault check: never answer this request


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
    node_name: str = "Node 1"
    allocation_id: int = 0
    ip: str = "10.0.0.5"
    ip_alias: str | None = None
    port: int = 25565
    # States wings will report next, one per uncached /resources read. Only valid while `state` is
    # still `_pending_base`: a test that assigns `state` directly discards the queued transitions.
    _pending: list[str] = field(default_factory=list, init=False, repr=False, compare=False)
    _pending_base: str | None = field(default=None, init=False, repr=False, compare=False)

    def _queue(self, now: str, *then: str) -> None:
        self.state, self._pending, self._pending_base = now, list(then), now

    def _set_state(self, state: str) -> None:
        self.state = state
        if state == "offline":  # wings ResourceUsage.Reset (disk is kept)
            self.cpu, self.memory_bytes, self.uptime_ms = 0.0, 0, 0
            self.network_rx_bytes = self.network_tx_bytes = 0


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


@dataclass
class _Route:
    method: str
    pattern: re.Pattern[str]
    api: str | None  # "client" | "application" | None (web page: no auth, no throttle)
    bind: str | None  # "server" | "app_server" | "node" | "never"
    state_checked: bool  # 409 while suspended/installing/... (every client server route but the GET)
    handler: Callable[..., web.Response]


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


def _conflict_detail(srv: FakeServer) -> str | None:
    """ServerStateConflictException message per cause, in the panel's order."""
    if srv.status == "suspended":
        return "This server is currently suspended and the functionality requested is unavailable."
    if srv.status in ("installing", "install_failed"):
        return "This server has not yet completed its installation process, please try again later."
    if srv.status == "restoring_backup":
        return "This server is currently restoring from a backup, please try again later."
    if srv.is_transferring:
        return "This server is currently being transferred to a new machine, please try again later."
    return None


class FakePanel:
    """The fake panel. One client key (a non-admin user owning every server) and one application key.

    Tests mutate `servers[...]` directly, inject faults (fail_next, fail_ratio, hang_next, malformed_next,
    html_next, set_down, set_latency) and inspect `requests`, `power_requests`, `too_many_requests`,
    `count()` and `wait_for()`. Faults apply after route match, authentication and throttling (so they
    are counted and carry rate-limit headers), before the server lookup.
    """

    def __init__(
        self,
        client_key: str = DEFAULT_CLIENT_KEY,
        app_key: str = DEFAULT_APP_KEY,
        latency: float = 0.0,
        client_rate_limit: int | None = 720,
        app_rate_limit: int | None = 240,
        clock: Callable[[], float] = time.monotonic,
        resource_cache_seconds: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.client_key, self.app_key = client_key, app_key
        self.latency = latency
        self.clock = clock
        self.resource_cache_seconds = resource_cache_seconds
        self.url = ""
        self.servers: dict[str, FakeServer] = {}
        self.nodes: dict[int, str] = {1: "Node 1"}
        self.requests: list[RecordedRequest] = []
        self.power_requests: list[tuple[str, str]] = []
        self.too_many_requests = 0
        self._limiters = {"client": _Limiter(client_rate_limit), "application": _Limiter(app_rate_limit)}
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
        self._host, self._port, self._down = "127.0.0.1", 0, False
        srv, st = r"/api/client/servers/(?P<server>[^/]+)", True
        self._routes = [
            _Route("GET", re.compile(r"/"), None, None, False, self._web_root),
            _Route("GET", re.compile(r"/auth/login"), None, None, False, self._web_login),
            _Route("GET", re.compile(r"/api/client"), "client", None, False, self._client_list),
            _Route("GET", re.compile(r"/api/client/account"), "client", None, False, self._client_account),
            _Route("GET", re.compile(srv), "client", "server", False, self._client_server),
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
                "GET", re.compile(r"/api/application/servers"), "application", None, False, self._app_servers
            ),
            _Route(
                "GET",
                re.compile(r"/api/application/servers/(?P<id>[^/]+)"),
                "application",
                "app_server",
                False,
                self._app_server,
            ),
            _Route(
                "GET",
                re.compile(r"/api/application/servers/external/[^/]+"),
                "application",
                "never",
                False,
                self._app_server,
            ),  # no fake server has an external_id
            _Route("GET", re.compile(r"/api/application/nodes"), "application", None, False, self._app_nodes),
            _Route(
                "GET",
                re.compile(r"/api/application/nodes/(?P<id>[^/]+)"),
                "application",
                "node",
                False,
                self._app_node,
            ),
            _Route(
                "GET",
                re.compile(r"/api/application/nodes/(?P<id>[^/]+)/allocations"),
                "application",
                "node",
                False,
                self._app_node_allocations,
            ),
        ]

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
        return self.url

    async def stop(self) -> None:
        self._release.set()
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
    ) -> FakeServer:
        if state not in STATES or status not in STATUSES:
            raise ValueError(f"bad state {state!r} or status {status!r}")
        uid = str(uuidlib.UUID(int=self._ids.getrandbits(128), version=4))
        if identifier is None:
            while uid[:8] in self.servers:
                uid = str(uuidlib.UUID(int=self._ids.getrandbits(128), version=4))
            identifier = uid[:8]
        elif len(identifier) != 8 or identifier in self.servers:
            raise ValueError(f"identifier {identifier!r} must be 8 characters and unique")
        uid = identifier + uid[8:]  # the identifier is the uuid's first 8 characters (uuidShort)
        srv = FakeServer(
            identifier,
            uid,
            self._next_id,
            name,
            description,
            state,
            cpu,
            memory_bytes,
            disk_bytes,
            network_rx_bytes,
            network_tx_bytes,
            uptime_ms,
            cpu_limit,
            memory_limit_mb,
            disk_limit_mb,
            status,
            is_transferring,
            node_id,
            node_name,
            self._next_alloc,
            ip,
            ip_alias,
            port,
        )
        self._next_id += 1
        self._next_alloc += 1
        self.nodes.setdefault(node_id, node_name)
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
        self, status: int, count: int = 1, path_contains: str | None = None, body: Any = None
    ) -> None:
        self._add_fault("fail", count, path_contains, status=status, body=body)

    def fail_ratio(self, ratio: float, statuses: tuple[int, ...] = (500, 502, 503), seed: int = 0) -> None:
        self._fail_ratio, self._fail_statuses, self._fail_rng = ratio, statuses, random.Random(seed)

    def hang_next(self, count: int = 1, path_contains: str | None = None) -> None:
        self._add_fault("hang", count, path_contains)

    def malformed_next(self, count: int = 1, path_contains: str | None = None) -> None:
        self._add_fault("malformed", count, path_contains)

    def html_next(self, count: int = 1, path_contains: str | None = None) -> None:
        self._add_fault("html", count, path_contains)

    def _fault(self, path: str, wants_json: bool) -> web.Response | object | None:
        fault = next(
            (
                f
                for f in self._faults
                if f.remaining > 0 and (f.path_contains is None or f.path_contains in path)
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
                return _html(200, LOGIN_PAGE)
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
        route, auth, JSON body, throttle, (faults), binding, key type, state, validation."""
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
            return self._redirect(request, "/auth/login")
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
        resp.headers.update(limit_headers)
        return resp

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
            value = params["server"]  # 8 characters: uuidShort, otherwise the full uuid
            target = (
                self.servers.get(value)
                if len(value) == 8
                else next((s for s in self.servers.values() if s.uuid == value), None)
            )
        elif route.bind == "app_server" and params["id"].isdigit():
            target = next((s for s in self.servers.values() if s.id == int(params["id"])), None)
        elif route.bind == "node" and params["id"].isdigit() and int(params["id"]) in self.nodes:
            target = int(params["id"])
        if route.bind is not None and target is None:
            return self._error(404, wants_json)
        if key_type != route.api:
            return self._error(403, wants_json, detail=KEY_TYPE_DETAIL[route.api])
        if route.state_checked and (detail := _conflict_detail(target)):
            return self._error(409, wants_json, detail=detail)
        if route.method == "POST":
            return route.handler(request, target, raw, wants_json)
        return route.handler(request, target) if route.bind else route.handler(request)

    def _key_type(self, authorization: str) -> str | None:
        # Laravel bearerToken(): case-sensitive "Bearer " (last occurrence), token ends at a comma.
        pos = authorization.rfind("Bearer ")
        token = authorization[pos + 7 :].split(",", 1)[0] if pos >= 0 else None
        return {self.client_key: "client", self.app_key: "application"}.get(token or "")

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

    def _fqdn(self, node_id: int) -> str:
        return f"node{node_id}.panel.test"

    def _client_item(self, s: FakeServer) -> dict[str, Any]:
        alloc = {
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
        return {
            "object": "server",
            "attributes": {
                "server_owner": True,
                "identifier": s.identifier,
                "internal_id": s.id,
                "uuid": s.uuid,
                "name": s.name,
                "node": s.node_name,
                "is_node_under_maintenance": False,
                "sftp_details": {"ip": self._fqdn(s.node_id), "port": 2022},
                "description": s.description,
                "limits": self._limits(s),
                "invocation": STARTUP.replace("{{SERVER_JARFILE}}", "server.jar"),
                "docker_image": "ghcr.io/pterodactyl/yolks:java_17",
                "egg_features": ["eula", "java_version", "pid_limit"],
                "feature_limits": {"databases": 0, "allocations": 1, "backups": 0},
                "status": s.status,
                "is_suspended": s.status == "suspended",
                "is_installing": s.status in ("installing", "install_failed"),
                "is_transferring": s.is_transferring,
                "relationships": {
                    "allocations": {"object": "list", "data": [alloc]},
                    "variables": {"object": "list", "data": [variable]},
                },
            },
        }

    @staticmethod
    def _limits(s: FakeServer) -> dict[str, Any]:
        return {
            "memory": s.memory_limit_mb,
            "swap": 0,
            "disk": s.disk_limit_mb,
            "io": 500,
            "cpu": s.cpu_limit,
            "threads": None,
            "oom_disabled": True,
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

    def _app_item(self, s: FakeServer, includes: list[str]) -> dict[str, Any]:
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
            "feature_limits": {"databases": 0, "allocations": 1, "backups": 0},
            "user": 1,
            "node": s.node_id,
            "allocation": s.allocation_id,
            "nest": 1,
            "egg": 1,
            "container": {
                "startup_command": STARTUP,
                "image": "ghcr.io/pterodactyl/yolks:java_17",
                "installed": 1 if installed else 0,
                "environment": {
                    "SERVER_JARFILE": "server.jar",
                    "STARTUP": STARTUP,
                    "P_SERVER_LOCATION": "Local",
                    "P_SERVER_UUID": s.uuid,
                    "P_SERVER_ALLOCATION_LIMIT": 1,
                },
            },
            "updated_at": TIMESTAMP,
            "created_at": TIMESTAMP,
        }
        rel: dict[str, Any] = {}
        for name in includes:  # relationships live INSIDE attributes (PterodactylSerializer)
            if name == "allocations":
                rel["allocations"] = {"object": "list", "data": [self._app_allocation(s)]}
            elif name == "node":
                rel["node"] = self._node_item(s.node_id)
        if rel:
            attrs["relationships"] = rel
        return {"object": "server", "attributes": attrs}

    def _node_item(self, node_id: int) -> dict[str, Any]:
        on_node = [s for s in self.servers.values() if s.node_id == node_id]
        return {
            "object": "node",
            "attributes": {
                "id": node_id,
                "uuid": f"00000000-0000-4000-8000-{node_id:012d}",
                "public": True,
                "name": self.nodes[node_id],
                "description": None,
                "location_id": 1,
                "fqdn": self._fqdn(node_id),
                "scheme": "https",
                "behind_proxy": False,
                "maintenance_mode": False,
                "memory": 65536,
                "memory_overallocate": 0,
                "disk": 512000,
                "disk_overallocate": 0,
                "upload_size": 100,
                "daemon_listen": 8080,
                "daemon_sftp": 2022,
                "daemon_base": "/var/lib/pterodactyl/volumes",
                "created_at": TIMESTAMP,
                "updated_at": TIMESTAMP,
                "allocated_resources": {
                    "memory": sum(s.memory_limit_mb for s in on_node),
                    "disk": sum(s.disk_limit_mb for s in on_node),
                },
            },
        }

    def _stats(self, s: FakeServer) -> dict[str, Any]:
        now = self.clock()
        cached = self._cache.get(s.uuid)
        if self.resource_cache_seconds > 0 and cached and now < cached[0]:
            return cached[1]  # the panel's per-server cache, shared by all users
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
        if s._pending and s.state == s._pending_base:  # wings moves on after each observed state
            nxt = s._pending.pop(0)
            s._set_state(nxt)
            s._pending_base = nxt
        else:
            s._pending = []
        if self.resource_cache_seconds > 0:
            self._cache[s.uuid] = (now + self.resource_cache_seconds, payload)
        return payload

    # ----------------------------------------------------------------- route handlers
    def _web_root(self, request: web.Request) -> web.Response:
        return self._redirect(request, "/auth/login")

    def _web_login(self, request: web.Request) -> web.Response:
        return _html(200, LOGIN_PAGE)

    def _client_list(self, request: web.Request) -> web.Response:
        per_page = min(_php_int(request.query.get("per_page"), 50), 100)
        # The client key's user owns every server and is not a root admin.
        mine = request.query.get("type") not in ("admin", "admin-all")
        items = [self._client_item(s) for s in self.servers.values()] if mine else []
        return _json(200, self._paginate(request, items, per_page, keep_query=True))

    def _client_account(self, request: web.Request) -> web.Response:
        return _json(
            200,
            {
                "object": "user",
                "attributes": {
                    "id": 1,
                    "admin": False,
                    "username": "pterodisbot",
                    "email": "bot@example.com",
                    "first_name": "Ptero",
                    "last_name": "Disbot",
                    "language": "en",
                },
            },
        )

    def _client_server(self, request: web.Request, s: FakeServer) -> web.Response:
        return _json(
            200, {**self._client_item(s), "meta": {"is_server_owner": True, "user_permissions": ["*"]}}
        )

    def _client_resources(self, request: web.Request, s: FakeServer) -> web.Response:
        return _json(200, self._stats(s))

    def _client_allocations(self, request: web.Request, s: FakeServer) -> web.Response:
        return _json(
            200,
            {
                "object": "list",
                "data": self._client_item(s)["attributes"]["relationships"]["allocations"]["data"],
            },
        )

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
        self.power_requests.append((s.identifier, sig))
        return web.Response(status=204)

    def _app_servers(self, request: web.Request) -> web.Response:
        includes = [i.strip() for i in request.query.get("include", "").split(",") if i.strip()]
        items = [self._app_item(s, includes) for s in sorted(self.servers.values(), key=lambda s: s.id)]
        per_page = _php_int(request.query.get("per_page"), 50)  # no upper cap here
        return _json(200, self._paginate(request, items, per_page, keep_query=False))

    def _app_server(self, request: web.Request, s: FakeServer) -> web.Response:
        includes = [i.strip() for i in request.query.get("include", "").split(",") if i.strip()]
        return _json(200, self._app_item(s, includes))

    def _app_nodes(self, request: web.Request) -> web.Response:
        items = [self._node_item(n) for n in sorted(self.nodes)]
        per_page = _php_int(request.query.get("per_page"), 50)
        return _json(200, self._paginate(request, items, per_page, keep_query=False))

    def _app_node(self, request: web.Request, node_id: int) -> web.Response:
        return _json(200, self._node_item(node_id))

    def _app_node_allocations(self, request: web.Request, node_id: int) -> web.Response:
        items = [self._app_allocation(s) for s in self.servers.values() if s.node_id == node_id]
        per_page = _php_int(request.query.get("per_page"), 50)
        return _json(200, self._paginate(request, items, per_page, keep_query=False))


# --------------------------------------------------------------------- standalone
async def _run(args: argparse.Namespace) -> None:
    panel = FakePanel(
        args.client_key,
        args.app_key,
        latency=args.latency,
        client_rate_limit=args.client_rate_limit or None,
        app_rate_limit=args.app_rate_limit or None,
        resource_cache_seconds=args.resource_cache,
    )
    for i, srv in enumerate(panel.add_servers(args.servers, state=args.state)):
        srv.disk_bytes = (1 + i % 7) * 512 * 1024**2
        if srv.state != "offline":  # deterministic, varied usage for manual runs and benchmarks
            srv.cpu, srv.memory_bytes = float(5 + (i * 37) % 150), (256 + (i * 97) % 1536) * 1024**2
            srv.network_rx_bytes, srv.network_tx_bytes = (i + 1) * 10**6, (i + 1) * 4 * 10**5
            srv.uptime_ms = (i + 1) * 60_000
    url = await panel.start(args.host, args.port)
    print(
        f"FAKE_PANEL_URL={url}\nFAKE_PANEL_CLIENT_KEY={panel.client_key}\nFAKE_PANEL_APP_KEY={panel.app_key}",
        flush=True,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await panel.stop()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the fake Pterodactyl panel until SIGINT/SIGTERM.")
    parser.add_argument("--servers", type=int, default=30)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every request")
    parser.add_argument("--state", choices=STATES, default="running")
    parser.add_argument("--client-key", default=DEFAULT_CLIENT_KEY)
    parser.add_argument("--app-key", default=DEFAULT_APP_KEY)
    parser.add_argument("--client-rate-limit", type=int, default=720, help="per minute, 0 = unlimited")
    parser.add_argument("--app-rate-limit", type=int, default=240, help="per minute, 0 = unlimited")
    parser.add_argument("--resource-cache", type=float, default=0.0, help="seconds (the real panel: 20)")
    asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
