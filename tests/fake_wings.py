"""A fake Wings daemon: the server websocket ``GET /api/servers/{uuid}/ws``, one aiohttp server per
node on 127.0.0.1. Behaviour follows /work/shared/reference/wings-websocket.md sections 2-6 (and the
Pelican notes of /work/shared/reference/pelican.md); the panel side (token endpoint) is in
tests/fake_panel.py.

Starting it:
- ``FakePanel(wings=True)`` starts one FakeWings per node when the panel starts, and one for every
  node created later by ``add_server(node_id=...)``.
- ``await panel.start_wings(node_id)`` starts one on demand (all nodes when ``node_id`` is None).
- ``panel.wings[node_id]`` is the node's FakeWings. Its port is the node's ``daemon_listen`` (and
  ``daemon_connect`` on Pelican), so ``GET /api/client/servers/{id}/websocket`` answers the right
  ``socket`` URL; ``panel.socket_url(srv)`` gives the same URL without a request.

Settings live in a WingsConfig, ``FakePanel(wings_config=WingsConfig(...))`` / ``panel.wings_config``,
shared by every node unless a FakeWings gets its own ``config``: ``newer`` (None: Pelican -> newer
wings, Pterodactyl -> Wings 1.11), ``require_scope`` (None: Pelican yes), ``socket_limit`` (30, newer
wings only), ``stats_interval`` (1.0 s), ``expiry_check_interval`` (30 s, per socket from its first
auth), ``expiring_threshold`` (60 s), ``allowed_origins``, ``log_count``, ``deny_before_boot``.
They are read on every use; a changed interval takes effect after the wait in progress, so set
intervals before starting. Token lifetimes are the panel's ``token_lifetime`` (600 s), or
``panel.websocket_token(srv, lifetime=..., **claims)`` for a crafted token.

Refusal modes, switchable at run time with ``wings.set_mode(mode)``:
- ``"ok"``: normal.
- ``"refuse"``: the port is closed (connection refused); open sockets are cut.
- ``"origin"``: every upgrade gets HTTP 403, as when wings' ``remote`` differs from the panel URL.
- ``"drop"``: upgrades and ``auth`` work, then the TCP connection is cut without a close frame
  (the client sees 1006); switching to it cuts every open socket at once.
``panel.set_node_down(node_id, True)`` also closes the port (wings unreachable).

Recording: ``open_sockets(srv)``, ``authenticated_sockets(srv)``, ``auth_attempts``, ``tokens_used``,
``upgrades_refused`` (Counter by reason: not_found, too_many, bad_request, origin, suspended),
``frames_received``, ``events_sent`` (Counter by event), ``commands``; ``await wait_until(pred)``
re-checks ``pred`` after each of those changes.

Console: ``wings.console(srv, *lines)`` pushes lines; ``wings.console_rate(srv, lines_per_second)``
streams game-like output (0 stops), including ``CONSOLE_SECRET`` so tests can check a bot never logs
console output.

Not modelled: power and commands over the socket (``set state`` is ignored, ``send command`` is only
recorded), inbound message throttles, revocation (deny lists) other than ``deny_before_boot``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hashlib
import hmac
import itertools
import json
import socket
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from tests.fake_panel import FakeNode, FakePanel, FakeServer

MODES = ("ok", "refuse", "origin", "drop")
NOT_FOUND = {"error": "The requested resource does not exist on this instance."}
TOO_MANY = {"error": "Too many open websocket connections."}
GENERIC_ERROR = "an unexpected error was encountered while handling this request"
ERR_EXPIRED = "jwt: exp claim is invalid"
ERR_DENYLIST = "jwt: created too far in past (denylist)"
ERR_NO_CONNECT = "jwt: missing connect permission"
ERR_MISMATCH = "jwt: server uuid mismatch"
ERR_NO_JWT = "jwt: no jwt present"
INBOUND_EVENTS = ("auth", "send stats", "send logs", "send command", "set state")
CONSOLE_SECRET = "password=hunter2"
GAME_OUTPUT = (
    "[Server thread/INFO]: Preparing spawn area: 83%",
    "[Server thread/INFO]: Steve[/10.0.0.23:51544] logged in with entity id 412 at (12.5, 64.0, -3.5)",
    "[Server thread/INFO]: Steve joined the game",
    "[Async Chat Thread - #0/INFO]: <Steve> anyone got iron & coal?",
    "[Server thread/WARN]: Can't keep up! Is the server overloaded? Running 2043ms or 40 ticks behind",
    f"[Server thread/INFO]: [AuthMe] Loaded database settings: user=minecraft {CONSOLE_SECRET}",
    "[Server thread/INFO]: Saving chunks for level 'ServerLevel[world]'/minecraft:overworld",
    "[Server thread/INFO]: Alex left the game",
)


# --------------------------------------------------------------------- tokens (HS256 JWT)
def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_token(claims: dict[str, Any], secret: str) -> str:
    """An HS256 JWT signed with the node's daemon token; the header carries ``jti`` like the panel's."""
    header = {"typ": "JWT", "alg": "HS256", "jti": claims.get("jti")}
    signing_input = ".".join(_b64(json.dumps(p, separators=(",", ":")).encode()) for p in (header, claims))
    mac = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(mac)}"


def parse_token(token: str, secret: str) -> dict[str, Any] | None:
    """The claims of a well-formed token with a good signature; None for anything else."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    mac = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_unb64(parts[2]), mac):
            return None
        claims = json.loads(_unb64(parts[1]))
    except ValueError:  # binascii.Error and JSON errors are ValueErrors
        return None
    return claims if isinstance(claims, dict) else None


def _has_permission(claims: dict[str, Any], permission: str) -> bool:
    # "*" grants every permission that does not start with "admin" (router/tokens/websocket.go).
    perms = claims.get("permissions") or []
    return permission in perms or ("*" in perms and not permission.startswith("admin"))


def _has_scope(claims: dict[str, Any], scope: str) -> bool:
    value = claims.get("scope")
    scopes = value.split() if isinstance(value, str) else value if isinstance(value, list) else []
    return scope in scopes


# --------------------------------------------------------------------- frames (Go encoding/json)
def go_json(payload: Any) -> str:
    """Compact JSON the way Go's encoding/json writes it: <, > and & (and U+2028/9) escaped."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escaped)  # these only occur inside strings
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def frame(event: str, args: list[str] | tuple[str, ...] = ()) -> str:
    """One outbound frame: event before args, args omitted when empty, ending in a newline
    (gorilla WriteJSON uses json.Encoder, which appends one)."""
    message: dict[str, Any] = {"event": event}
    if args:
        message["args"] = list(args)
    return go_json(message) + "\n"


def parse_inbound(data: str) -> tuple[str, list[str]] | None:
    """Decode an inbound frame like Go's json.Unmarshal into {Event string; Args []string}: None when
    that would fail (args not a list of strings, non-string event, not an object)."""
    try:
        message = json.loads(data)
    except ValueError:
        return None
    if not isinstance(message, dict):
        return None
    event, args = "", []
    for key, value in message.items():
        name = key.lower()  # Go matches struct fields case-insensitively
        if name == "event":
            if value is not None and not isinstance(value, str):
                return None
            event = value or ""
        elif name == "args":
            if value is not None and not (isinstance(value, list) and all(isinstance(a, str) for a in value)):
                return None
            args = value or []
    return event, args


def _go_number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def stats_json(srv: FakeServer) -> str:
    """wings' ResourceUsage as the ``stats`` argument, keys in wings' order; zeroed when offline
    (ResourceUsage.Reset keeps disk)."""
    on = srv.state != "offline"
    usage = {
        "memory_bytes": srv.memory_bytes if on else 0,
        "memory_limit_bytes": srv.memory_limit_mb * 1024 * 1024,
        "cpu_absolute": _go_number(round(srv.cpu, 3)) if on else 0,
        "network": {
            "rx_bytes": srv.network_rx_bytes if on else 0,
            "tx_bytes": srv.network_tx_bytes if on else 0,
        },
        "uptime": srv.uptime_ms if on else 0,
        "state": srv.state,
        "disk_bytes": srv.disk_bytes,
    }
    return go_json(usage)


# --------------------------------------------------------------------- records and settings
@dataclass
class WingsConfig:
    newer: bool | None = None  # None: the panel's flavour decides (Pelican: newer, Pterodactyl: 1.11)
    require_scope: bool | None = None  # tokens need scope "websocket"; None: Pelican yes, Pterodactyl no
    socket_limit: int = 30  # open sockets per server, all users together (newer wings only)
    stats_interval: float = 1.0  # Docker's stats cadence while a server is not offline
    expiry_check_interval: float = 30.0  # listenForExpiration's ticker
    expiring_threshold: float = 60.0  # "token expiring" once this little is left
    allowed_origins: list[str] = field(default_factory=list)  # besides the panel URL; "*" allows any
    log_count: int = 150  # lines answered to "send logs" (websocket_log_count)
    # Real wings refuses tokens whose iat (whole seconds) is before its boot, so a token fetched in
    # wings' first second fails. Off by default: it would make every test wait a second after start.
    deny_before_boot: bool = False


@dataclass
class AuthAttempt:
    server_uuid: str  # the server of the socket (from the URL)
    token: str
    error: str | None  # None when accepted, else the reason (GENERIC_ERROR for a bad token)
    at: float


@dataclass
class ReceivedFrame:
    server_uuid: str
    data: str
    event: str | None  # None: dropped as undecodable


class WingsSocket:
    """One open websocket. Outbound frames go through a queue drained by one writer task, so frames
    queued synchronously (e.g. from a state change) keep their order."""

    def __init__(self, wings: FakeWings, server_uuid: str, ws: web.WebSocketResponse, request: web.Request):
        self.wings, self.server_uuid, self.ws, self.request = wings, server_uuid, ws, request
        self.claims: dict[str, Any] | None = None
        self.listening = False  # set by the first successful auth
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = [asyncio.get_running_loop().create_task(self._writer())]

    @property
    def authenticated(self) -> bool:
        return self.claims is not None

    def send_unsafe(self, event: str, args: list[str] | tuple[str, ...] = ()) -> None:
        """unsafeSendJson: no token check."""
        self.wings.events_sent[event] += 1
        self._queue.put_nowait(frame(event, args))
        self.wings._notify()  # so that wait_until sees events_sent change

    def send(self, event: str, args: list[str] | tuple[str, ...] = ()) -> None:
        """SendJson: re-validates the token first; a failure replaces the event by ``jwt error``."""
        problem = self.wings.token_problem(self.claims, self.server_uuid)
        if problem is not None:
            self.send_unsafe("jwt error", [problem])
        else:
            self.send_unsafe(event, args)

    def send_error(self, error: str, jwt_error: bool) -> None:
        """SendErrorJson: prefixed with a random error id; non-JWT errors are generic unless the
        current token has admin.websocket.errors."""
        if not jwt_error and not (self.claims and _has_permission(self.claims, "admin.websocket.errors")):
            error = GENERIC_ERROR
        event = "jwt error" if jwt_error else "daemon error"
        self.send_unsafe(event, [f"Error Event [{uuidlib.uuid4()}]: {error}"])

    def cut(self) -> None:
        """Drop the TCP connection after the frames already queued: no close frame (1006)."""
        self._queue.put_nowait(None)

    def abort_now(self) -> None:
        if self.request.transport is not None:
            self.request.transport.abort()

    def start_expiry_checks(self) -> None:
        self._tasks.append(asyncio.get_running_loop().create_task(self._expiry_loop()))

    def close_tasks(self) -> None:
        for task in self._tasks:
            task.cancel()

    async def _writer(self) -> None:
        while True:
            text = await self._queue.get()
            if text is None:
                self.abort_now()
                return
            try:
                await self.ws.send_str(text)
            except (ConnectionError, RuntimeError):  # closing: wings drops the connection
                self.abort_now()
                return

    async def _expiry_loop(self) -> None:
        # listenForExpiration: "token expired" goes through SendJson, whose check fails first, so the
        # client gets "jwt error" instead (reference section 4).
        while True:
            await asyncio.sleep(self.wings.config.expiry_check_interval)
            if self.claims is None:
                continue
            left = float(self.claims.get("exp", 0)) - self.wings.clock()
            if left <= 0:
                self.send("token expired")
            elif left <= self.wings.config.expiring_threshold:
                self.send("token expiring")


# --------------------------------------------------------------------- the daemon
class FakeWings:
    """Wings of one node. See the module docstring for the public interface."""

    def __init__(self, panel: FakePanel, node: FakeNode, config: WingsConfig | None = None) -> None:
        self.panel, self.node = panel, node
        self.config = config if config is not None else panel.wings_config
        self.mode = "ok"
        self.boot_time = 0.0
        self.auth_attempts: list[AuthAttempt] = []
        self.tokens_used: list[str] = []
        self.upgrades_refused: collections.Counter[str] = collections.Counter()
        self.frames_received: list[ReceivedFrame] = []
        self.events_sent: collections.Counter[str] = collections.Counter()
        self.commands: list[tuple[str, str]] = []  # (server uuid, command)
        self.upgrades = 0
        self._sockets: dict[str, set[WingsSocket]] = collections.defaultdict(set)
        self._logs: dict[str, collections.deque[str]] = {}
        self._console_tasks: dict[str, asyncio.Task[None]] = {}
        self._game_lines: Iterator[str] = itertools.cycle(GAME_OUTPUT)
        self._runner: web.AppRunner | None = None
        self._pending_sock: socket.socket | None = None  # bound and listening, accept loop not yet up
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = self._stopped = False
        self._changed = asyncio.Event()

    # ----------------------------------------------------------------- settings
    @property
    def newer(self) -> bool:
        return self.config.newer if self.config.newer is not None else self.panel.flavour == "pelican"

    @property
    def require_scope(self) -> bool:
        if self.config.require_scope is not None:
            return self.config.require_scope
        return self.panel.flavour == "pelican"

    def clock(self) -> float:
        return self.panel.token_clock()

    @property
    def port(self) -> int:
        return self.node.daemon_listen

    @property
    def url(self) -> str:
        return f"ws://{self.node.fqdn}:{self.port}"

    # ----------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.start_soon()
        while self._runner is None or self._pending_sock is not None:  # until the accept loop runs
            await self._wait_changed()

    def start_soon(self) -> None:
        """Start without awaiting: the port listens (connections queue) before this returns."""
        if self._started:
            return
        self._started = True
        self.boot_time = self.clock()
        self.sync_listening()
        self._spawn(self._setup())
        self._spawn(self._stats_loop())

    async def stop(self) -> None:
        self._stopped = True
        self.sync_listening()
        for task in list(self._tasks) + list(self._console_tasks.values()):
            task.cancel()
        for task in list(self._tasks) + list(self._console_tasks.values()):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def set_mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        self.mode = mode
        if mode == "drop":  # a network cut: every open socket dies at once
            for sock in self._all_sockets():
                sock.abort_now()
        self.sync_listening()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _setup(self) -> None:
        app = web.Application()
        app.router.add_get("/api/servers/{uuid}/ws", self._handle_ws)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await runner.setup()
        self._runner = runner
        await self._serve()
        self._notify()

    def _listening_wanted(self) -> bool:
        return self._started and not self._stopped and self.mode != "refuse" and not self.node.down

    def sync_listening(self) -> None:
        """Open or close the port to match mode/node state. Binding is synchronous, so once a caller
        returns, connections are refused, or queued by the kernel (never refused) while serving starts."""
        if self._listening_wanted():
            if self._server is None and self._pending_sock is None:
                self._pending_sock = self._bind()
                if self._runner is not None:
                    self._spawn(self._serve())
            return
        if self._server is not None:
            self._server.close()
            self._server = None
        if self._pending_sock is not None:
            self._pending_sock.close()
            self._pending_sock = None
        for sock in self._all_sockets():  # the daemon is gone: its connections die without a close frame
            sock.abort_now()
        if self._runner is not None and self._runner.server is not None:
            for conn in self._runner.server.connections:  # kept-alive HTTP connections die too
                conn.force_close()

    def _bind(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", self.node.daemon_listen))
        except OSError:  # the reserved port was taken meanwhile: take another and tell the node
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            if self.node.daemon_connect == self.node.daemon_listen:
                self.node.daemon_connect = port
            self.node.daemon_listen = port
        sock.listen(128)
        return sock

    async def _serve(self) -> None:
        sock = self._pending_sock
        if sock is None or self._runner is None or self._runner.server is None:
            return
        server = await asyncio.get_running_loop().create_server(self._runner.server, sock=sock)
        if self._pending_sock is sock:
            self._server, self._pending_sock = server, None
        else:  # closed (and maybe re-bound) meanwhile
            server.close()
        self._notify()

    # ----------------------------------------------------------------- recording
    def open_sockets(self, srv: FakeServer | None = None) -> int:
        if srv is None:
            return sum(len(s) for s in self._sockets.values())
        return len(self._sockets.get(srv.uuid, ()))

    def authenticated_sockets(self, srv: FakeServer | None = None) -> int:
        socks = self._all_sockets() if srv is None else list(self._sockets.get(srv.uuid, ()))
        return sum(1 for s in socks if s.authenticated)

    async def wait_until(self, predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy, re-checked after every recorded change."""
        async with asyncio.timeout(timeout):
            while not (value := predicate()):
                await self._wait_changed()
        return value

    async def _wait_changed(self) -> None:
        await self._changed.wait()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _all_sockets(self) -> list[WingsSocket]:
        return [s for socks in self._sockets.values() for s in socks]

    # ----------------------------------------------------------------- panel hooks
    def server_changed(self, srv: FakeServer, attribute: str, old: Any, new: Any) -> None:
        """Called by the panel on every change of a server's ``state`` or ``status``."""
        socks = [s for s in self._sockets.get(srv.uuid, ()) if s.listening]
        if attribute == "state":
            for sock in socks:
                sock.send("status", [new])
                if new == "offline":  # one zeroed stats after stopping
                    sock.send("stats", [stats_json(srv)])
        elif attribute == "status" and new == "suspended" and self.newer:
            for sock in list(self._sockets.get(srv.uuid, ())):  # newer wings cuts them (1006)
                sock.abort_now()

    def server_removed(self, srv: FakeServer) -> None:
        for sock in list(self._sockets.get(srv.uuid, ())):
            if self.newer:
                sock.abort_now()
            else:  # Wings 1.11: a GoingAway close frame
                self._spawn(sock.ws.close(code=1001, message=b"server deleted"))

    # ----------------------------------------------------------------- console
    def console(self, srv: FakeServer, *lines: str) -> None:
        """Push ``console output`` lines (also kept for ``send logs``)."""
        log = self._logs.setdefault(srv.uuid, collections.deque(maxlen=max(1, self.config.log_count)))
        for line in lines:
            log.append(line)
            for sock in self._sockets.get(srv.uuid, ()):
                if sock.listening:
                    sock.send("console output", [line])

    def console_rate(self, srv: FakeServer, lines_per_second: float) -> None:
        """Stream game-like output at this rate until called again with 0."""
        task = self._console_tasks.pop(srv.uuid, None)
        if task is not None:
            task.cancel()
        if lines_per_second > 0:
            loop = asyncio.get_running_loop()
            self._console_tasks[srv.uuid] = loop.create_task(self._console_loop(srv, lines_per_second))

    async def _console_loop(self, srv: FakeServer, rate: float) -> None:
        tick = max(0.01, min(0.1, 1 / rate))
        owed = 0.0
        while True:
            await asyncio.sleep(tick)
            owed += rate * tick
            count, owed = int(owed), owed - int(owed)
            stamp = time.strftime("%H:%M:%S")
            self.console(srv, *(f"[{stamp}] {next(self._game_lines)}" for _ in range(count)))

    # ----------------------------------------------------------------- stats
    async def _stats_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.stats_interval)
            for server_uuid, socks in list(self._sockets.items()):
                srv = self._server_by_uuid(server_uuid)
                if srv is None or srv.state == "offline":
                    continue  # nothing for an idle offline server
                payload = stats_json(srv)
                for sock in list(socks):
                    if sock.listening:
                        sock.send("stats", [payload])

    # ----------------------------------------------------------------- tokens
    def token_problem(
        self, claims: dict[str, Any] | None, server_uuid: str, at_auth: bool = False
    ) -> str | None:
        """TokenValid (and, with at_auth, NewTokenPayload, which does not compare the server)."""
        if claims is None:
            return ERR_NO_JWT
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or self.clock() > exp:
            return ERR_EXPIRED
        iat = claims.get("iat")
        if not isinstance(iat, int | float) or (self.config.deny_before_boot and iat < self.boot_time):
            return ERR_DENYLIST
        if self.newer and not (claims.get("server_uuid") and claims.get("user_uuid")):
            return ERR_DENYLIST  # Pelican refuses tokens without server_uuid/user_uuid
        if not _has_permission(claims, "websocket.connect") or (
            self.require_scope and not _has_scope(claims, "websocket")
        ):
            return ERR_NO_CONNECT
        if not at_auth and claims.get("server_uuid") != server_uuid:
            return ERR_MISMATCH
        return None

    # ----------------------------------------------------------------- HTTP side
    def _server_by_uuid(self, server_uuid: str) -> FakeServer | None:
        srv = next((s for s in self.panel.servers.values() if s.uuid == server_uuid), None)
        return srv if srv is not None and srv.node_id == self.node.id else None

    async def _not_found(self, request: web.Request) -> web.Response:
        return web.json_response(NOT_FOUND, status=404)

    def _origin_ok(self, origin: str) -> bool:
        allowed = self.config.allowed_origins
        return origin == self.panel.url or origin in allowed or "*" in allowed

    def _refuse(self, reason: str, response: web.Response) -> web.Response:
        self.upgrades_refused[reason] += 1
        self._notify()
        return response

    async def _handle_ws(self, request: web.Request) -> web.StreamResponse:
        server_uuid = request.match_info["uuid"]
        srv = self._server_by_uuid(server_uuid)
        if srv is None:  # middleware.ServerExists
            return self._refuse("not_found", web.json_response(NOT_FOUND, status=404))
        if self.newer and len(self._sockets[server_uuid]) >= self.config.socket_limit:
            return self._refuse("too_many", web.json_response(TOO_MANY, status=400))
        ws = web.WebSocketResponse(compress=self.newer, max_msg_size=4096 if self.newer else 0)
        if not ws.can_prepare(request).ok:  # gorilla's handshake checks come before CheckOrigin
            return self._refuse("bad_request", web.Response(status=400, text="Bad Request\n"))
        if self.mode == "origin" or not self._origin_ok(request.headers.get("Origin", "")):
            forbidden = web.Response(status=403, text="Forbidden\n", headers={"Sec-Websocket-Version": "13"})
            return self._refuse("origin", forbidden)
        await ws.prepare(request)
        self.upgrades += 1
        if self.newer and srv.status == "suspended":
            self.upgrades_refused["suspended"] += 1
            self._notify()
            await ws.close(code=4409, message=b"server is suspended")
            return ws
        sock = WingsSocket(self, server_uuid, ws, request)
        self._sockets[server_uuid].add(sock)
        self._notify()
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT or (message.type == WSMsgType.BINARY and not self.newer):
                    data = message.data
                    self._inbound(sock, data if isinstance(data, str) else data.decode(errors="replace"))
                # newer wings drops binary frames; errors (e.g. over the read limit) end the loop
        finally:
            sock.close_tasks()
            self._sockets[server_uuid].discard(sock)
            if not self._sockets[server_uuid]:
                del self._sockets[server_uuid]
            self._notify()
        return ws

    # ----------------------------------------------------------------- inbound events
    def _inbound(self, sock: WingsSocket, data: str) -> None:
        decoded = parse_inbound(data)
        event = decoded[0] if decoded is not None else None
        self.frames_received.append(ReceivedFrame(sock.server_uuid, data, event))
        self._notify()
        if decoded is None or decoded[0] not in INBOUND_EVENTS:
            return  # dropped silently
        event, args = decoded
        srv = self._server_by_uuid(sock.server_uuid)
        if srv is None:
            return
        if event == "auth":
            self._auth(sock, srv, "".join(args))
            return
        problem = self.token_problem(sock.claims, sock.server_uuid)
        if problem is not None:  # pre-check errors go out bare
            sock.send_unsafe("jwt error", [problem])
            return
        if event == "send stats":
            sock.send("stats", [stats_json(srv)])
        elif event == "send logs" and srv.state != "offline":
            for line in self._logs.get(srv.uuid, ()):
                sock.send("console output", [line])
        elif event == "send command" and srv.state != "offline" and self._may_console(sock):
            self.commands.append((srv.uuid, "".join(args)))
            self._notify()
        # "set state" (power over the socket) is not modelled: use REST /power

    @staticmethod
    def _may_console(sock: WingsSocket) -> bool:
        return sock.claims is not None and _has_permission(sock.claims, "control.console")

    def _auth(self, sock: WingsSocket, srv: FakeServer, token: str) -> None:
        claims = parse_token(token, self.node.daemon_token)
        problem = GENERIC_ERROR if claims is None else self.token_problem(claims, srv.uuid, at_auth=True)
        self.auth_attempts.append(AuthAttempt(srv.uuid, token, problem, self.clock()))
        self._notify()
        if problem is not None or claims is None:  # the socket keeps its previous token, if any
            detail = "jwt: HMAC verification failed" if claims is None else problem
            sock.send_error(detail or GENERIC_ERROR, jwt_error=claims is not None)
            return
        sock.claims = claims
        self.tokens_used.append(token)
        sock.send_unsafe("auth success")
        if not sock.listening:  # first auth only: listeners, then the current status (panel issue 2077)
            sock.listening = True
            sock.start_expiry_checks()
            sock.send("status", [srv.state])
            if srv.state == "offline" and srv.status != "installing" and not srv.is_transferring:
                sock.send("stats", [stats_json(srv)])
        if self.mode == "drop":
            sock.cut()
