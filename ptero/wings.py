"""Live status from Wings: one websocket per server with a card, polling only as the fallback.

Wings pushes a server's state the moment it changes and its stats about once a second; the panel's
REST answer is cached for 20 s. For each tracked server a ``ServerSocket`` fetches a token, connects
with the ``Origin`` Wings requires (the panel URL), authenticates, and hands every ``status`` and
``stats`` to the board. While a socket is healthy the board does not poll that server. When the
socket cannot be had (no permission, Origin refused, node down, suspended, keeps dropping), the
server is polled as before and live is tried again later, with backoff; the reason is logged once
per node. Console output is dropped unread: it arrives on every socket and may hold secrets.

Facts: /work/shared/reference/wings-websocket.md (and pelican.md for the 5 tokens/min limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from ptero.panel import (
    PanelServer,
    PterodactylAPI,
    PterodactylAuthError,
    PterodactylError,
    RateLimitedError,
    ServerConflictError,
    ServerNotFoundError,
    ServerResources,
)
from ptero.panel.models import number, whole

log = logging.getLogger(__name__)

# Frames that are dropped before any parsing: Go's encoding/json writes "event" first.
DISCARDED_PREFIXES = ('{"event":"console output"', '{"event":"install output"', '{"event":"transfer logs"')
CLOSE_SUSPENDED = 4409


@dataclass(frozen=True, slots=True)
class LiveTimings:
    """How patient the live source is. The defaults suit a real panel; tests shorten them."""

    connect: float = 10.0  # token request plus websocket upgrade
    heartbeat: float = 30.0  # websocket ping; no pong in time closes the socket
    silence: float = 15.0  # no stats for this long while running: ask once, then reconnect
    reconnect_first: float = 2.0  # the first reconnect after a drop (then doubling, jittered)
    reconnect_longest: float = 60.0
    drops_before_fallback: int = 4  # drops in a row without a healthy minute: poll instead
    retry_live_first: float = 300.0  # after a fallback, try live again after this (then doubling)
    retry_live_longest: float = 1800.0
    tokens_per_minute: int = 4  # per server; Pelican allows 5 a minute, shared with its users' browsers
    token_rate: float = 4.0  # tokens a second over all servers: 200 sockets open over 50 s, never a burst


@dataclass(slots=True)
class NodeHealth:
    """Whether a node's Wings can be reached. While it cannot, one socket (the prober) retries with
    backoff and the node's other sockets wait for it, so a down node costs one probe, not one per
    server."""

    up: asyncio.Event = field(default_factory=asyncio.Event)
    prober: ServerSocket | None = None
    backoff: float = 0.0
    probes: int = 0  # tries since it went down
    address: tuple[str, int] | None = None  # Wings' host and port, knocked on without spending a token

    def __post_init__(self) -> None:
        self.up.set()


@dataclass(slots=True)
class LiveState:
    """What the board may know about one server's socket."""

    authenticated: bool = False
    state: str | None = None  # from the latest status (or stats)
    stats_at: float = float("-inf")
    reason: str | None = None  # why it is not live, when it is not


class LiveSource:
    """The sockets of the tracked servers, and what they report."""

    def __init__(
        self,
        api: PterodactylAPI,
        panel_url: str,
        *,
        on_state: Callable[[str, str], None],
        on_stats: Callable[[str, ServerResources], None],
        timings: LiveTimings | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.api = api
        self.origin = panel_url.rstrip("/")  # Wings compares it with its `remote`: the panel URL, exactly
        self.on_state, self.on_stats = on_state, on_stats
        self.timings = timings or LiveTimings()
        self.clock = clock
        self.rng = rng or random.Random()
        self.sockets: dict[str, ServerSocket] = {}
        self._token_gate = asyncio.Lock()
        self._last_token = float("-inf")
        self._node_reasons: dict[str, str] = {}
        self.nodes: dict[str, NodeHealth] = {}

    def track(self, servers: Iterable[PanelServer]) -> None:
        """Keep one socket per given server (suspended or installing ones have none: the panel
        refuses their tokens); stop the sockets of servers no longer given."""
        wanted = {s.identifier: s for s in servers if not s.blocking_status}
        for server_id in [sid for sid in self.sockets if sid not in wanted]:
            self.sockets.pop(server_id).stop()
        now = self.clock()
        for server_id, server in wanted.items():
            socket = self.sockets.get(server_id)
            if socket is None:
                socket = self.sockets[server_id] = ServerSocket(self, server)
                socket.start()
                continue
            socket.server = server
            if socket.ended_at is not None and now - socket.ended_at >= self.timings.retry_live_first:
                socket.start()  # it stopped (suspended, by Wings' word): the listing says otherwise now

    def is_live(self, server_id: str) -> bool:
        """Whether the socket reports this server now (then the board need not poll it)."""
        socket = self.sockets.get(server_id)
        return socket is not None and socket.healthy()

    def live_count(self) -> int:
        return sum(1 for socket in self.sockets.values() if socket.healthy())

    async def close(self) -> None:
        sockets, self.sockets = list(self.sockets.values()), {}
        for socket in sockets:
            socket.stop()
        await asyncio.gather(*(socket.stopped() for socket in sockets))

    async def token(self, server_id: str) -> tuple[str, str]:
        """A websocket token, paced over all servers (never a burst of hundreds at start-up)."""
        async with self._token_gate:
            wait = self._last_token + 1.0 / self.timings.token_rate - self.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            self._last_token = self.clock()
        return await self.api.websocket_credentials(server_id)

    def node(self, name: str) -> NodeHealth:
        return self.nodes.setdefault(name, NodeHealth())

    def node_problem(self, node: str, reason: str | None) -> None:
        """Log a node's live problem once (and its recovery), not once per server or cycle."""
        if reason is None:
            if self._node_reasons.pop(node, None) is not None:
                log.info("Live updates work again on node %s", node)
            return
        if self._node_reasons.get(node) != reason:
            self._node_reasons[node] = reason
            log.warning("Live updates on node %s: %s; its servers are polled instead", node, reason)


class Fallback(Exception):
    """Live does not work for this server now; poll it and try again after ``retry`` seconds."""

    def __init__(self, reason: str, retry: float | None = None, node_wide: bool = True) -> None:
        super().__init__(reason)
        self.reason, self.retry, self.node_wide = reason, retry, node_wide


class Dropped(Exception):
    """The socket ended (or went silent); reconnect soon."""


class Unreachable(Exception):
    """The node's Wings cannot be reached (refused, DNS, timeout): the node is down for everyone."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(eq=False, slots=True)
class ServerSocket:
    source: LiveSource
    server: PanelServer
    live: LiveState = field(default_factory=LiveState)
    task: asyncio.Task[None] | None = None
    token: str | None = None
    token_times: list[float] = field(default_factory=list)  # this server's tokens in the last minute
    renewal_for: str | None = None  # the token a renewal was started for (Wings may warn twice)
    renewal: asyncio.Task[None] | None = None
    awaiting_auth: bool = False  # a token was sent and its "auth success" has not come yet
    connected_at: float = float("-inf")
    ended_at: float | None = None  # when the loop stopped for good (a suspended server)

    @property
    def name(self) -> str:
        return self.server.identifier

    def start(self) -> None:
        self.ended_at = None
        self.task = asyncio.get_running_loop().create_task(self._run(), name=f"wings {self.name}")

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()

    async def stopped(self) -> None:
        if self.task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    def healthy(self) -> bool:
        """Authenticated, its state known, and (when running) stats fresh enough to trust."""
        live = self.live
        if not live.authenticated or live.state is None:
            return False
        return live.state != "running" or self.source.clock() - live.stats_at < self.source.timings.silence

    # -- the loop ---------------------------------------------------------------------------------
    async def _run(self) -> None:
        timings = self.source.timings
        drops, retry = 0, timings.retry_live_first
        # Spread the first connections of many servers over a few seconds (start-up, node restarts).
        await asyncio.sleep(self.source.rng.uniform(0, min(5.0, timings.reconnect_first * 2)))
        while True:
            await self._wait_for_node()
            try:
                await self._session()
            except Unreachable as exc:
                self._down(exc.reason)
                self.source.node_problem(self.server.node, exc.reason)
                self._node_down()
            except Fallback as exc:
                self._down(exc.reason)
                if exc.node_wide:
                    self.source.node_problem(self.server.node, exc.reason)
                else:
                    log.info("Live updates for %s: %s; it is polled instead", self.name, exc.reason)
                if exc.retry is None:  # suspended: stop until the listing shows it otherwise
                    self.ended_at = self.source.clock()
                    return
                await asyncio.sleep(exc.retry or retry)
                retry, drops = min(retry * 2, timings.retry_live_longest), 0
            except Dropped as exc:
                self._down(str(exc))
                if self.source.clock() - self.connected_at > 60:
                    drops = 0  # it was fine for a while: a new problem, not the same one again
                drops += 1
                if drops >= timings.drops_before_fallback:
                    self.source.node_problem(self.server.node, f"the socket keeps dropping ({exc})")
                    await asyncio.sleep(retry)
                    retry, drops = min(retry * 2, timings.retry_live_longest), 0
                    continue
                delay = min(timings.reconnect_first * 2 ** (drops - 1), timings.reconnect_longest)
                await asyncio.sleep(delay * self.source.rng.uniform(0.5, 1.5))

    async def _wait_for_node(self) -> None:
        """While the node is down, one socket (the prober) knocks on Wings' port with growing pauses,
        which costs no token; the node's other sockets wait until it answers."""
        node = self.source.node(self.server.node)
        while not node.up.is_set():
            if (
                node.prober is None
                or node.prober is self
                or node.prober.task is None
                or node.prober.task.done()
            ):
                node.prober = self
                await asyncio.sleep(node.backoff * self.source.rng.uniform(0.8, 1.2))
                node.probes += 1
                log.debug(
                    "Live updates: probe %d of node %s (by %s)", node.probes, self.server.node, self.name
                )
                if node.address is None or await self._answers(node.address):
                    return  # try a real socket (the node is back, or its address is not known)
                self._node_down()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(node.up.wait(), self.source.timings.retry_live_longest)
        if node.prober is not self and node.backoff:
            await asyncio.sleep(self.source.rng.uniform(0, self.source.timings.reconnect_first * 4))

    async def _answers(self, address: tuple[str, int]) -> bool:
        try:
            async with asyncio.timeout(self.source.timings.connect):
                _reader, writer = await asyncio.open_connection(*address)
        except (OSError, TimeoutError):
            return False
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return True

    def _node_down(self) -> None:
        timings = self.source.timings
        node = self.source.node(self.server.node)
        node.up.clear()
        node.backoff = min(max(node.backoff * 2, timings.reconnect_first * 4), timings.retry_live_longest)

    def _node_up(self) -> None:
        node = self.source.node(self.server.node)
        node.backoff, node.prober, node.probes = 0.0, None, 0
        node.up.set()

    def _down(self, reason: str) -> None:
        self.live = LiveState(reason=reason)
        self.token = None

    async def _new_token(self) -> tuple[str, str]:
        """A token, never more than tokens_per_minute for this server in any minute."""
        limit, now = self.source.timings.tokens_per_minute, self.source.clock()
        self.token_times = [t for t in self.token_times if t > now - 60.0]
        if len(self.token_times) >= limit:
            await asyncio.sleep(self.token_times[-limit] + 60.0 - now)
        self.token_times.append(self.source.clock())
        try:
            return await self.source.token(self.name)
        except PterodactylAuthError as exc:
            raise Fallback("the client key's user lacks the websocket permission", node_wide=False) from exc
        except ServerNotFoundError as exc:
            raise Fallback("the panel offers no websocket for it (404)", node_wide=False) from exc
        except ServerConflictError as exc:
            raise Fallback(f"the panel refuses a token now ({exc.detail})", 600.0, node_wide=False) from exc
        except RateLimitedError as exc:
            raise Dropped(f"token requests rate-limited for {exc.retry_after:.0f} s") from exc
        except PterodactylError as exc:
            raise Dropped(f"no token ({exc})") from exc

    async def _session(self) -> None:
        """One socket, from token to close. Returns when it drops (as Dropped) or cannot be had."""
        source, timings = self.source, self.source.timings
        token, url = await self._new_token()
        try:
            ws = await source.api.ws_connect(
                url, origin=source.origin, heartbeat=timings.heartbeat, connect_within=timings.connect
            )
        except aiohttp.WSServerHandshakeError as exc:
            if exc.status == 403:
                raise Fallback("Wings refused the Origin (its `remote` is not PTERODACTYL_URL)") from exc
            if exc.status == 400:
                raise Fallback("Wings has no free socket for it (30 in use)", node_wide=False) from exc
            raise Dropped(f"Wings answered {exc.status} to the upgrade") from exc
        except (aiohttp.ClientConnectorCertificateError, aiohttp.ClientSSLError) as exc:
            raise Fallback("TLS to Wings failed (certificate)") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            parts = urllib.parse.urlsplit(url)
            if parts.hostname:
                self.source.node(self.server.node).address = (parts.hostname, parts.port or 443)
            raise Unreachable(f"Wings cannot be reached from here ({type(exc).__name__})") from exc
        self.connected_at = source.clock()
        self._node_up()
        try:
            self.token, self.renewal_for, self.awaiting_auth = token, None, True
            await ws.send_json({"event": "auth", "args": [token]})
            await self._read(ws)
        finally:
            if self.renewal is not None:
                self.renewal.cancel()
            await ws.close()
        raise Dropped(f"closed ({ws.close_code})")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        timings = self.source.timings
        asked_for_stats = False
        while True:
            try:
                message = await ws.receive(timeout=timings.silence if self.live.state == "running" else None)
            except TimeoutError:
                if asked_for_stats:
                    raise Dropped("silent") from None
                asked_for_stats = True
                await ws.send_json({"event": "send stats"})
                continue
            if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
                if ws.close_code == CLOSE_SUSPENDED:
                    raise Fallback("the server is suspended", retry=None, node_wide=False)
                return
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            text: str = message.data
            if text.startswith(DISCARDED_PREFIXES):
                continue  # console output: never parsed, stored or logged
            asked_for_stats = False
            await self._handle(ws, text)

    async def _handle(self, ws: aiohttp.ClientWebSocketResponse, text: str) -> None:
        try:
            frame = json.loads(text)
            event, args = frame["event"], frame.get("args") or []
        except (ValueError, KeyError, TypeError):
            return
        if event == "auth success":
            self.awaiting_auth = False
            if not self.live.authenticated:
                self.live.authenticated = True
                self.source.node_problem(self.server.node, None)
        elif event == "status" and args:
            self._state(str(args[0]))
        elif event == "stats" and args:
            resources = parse_stats(args[0], self.server.is_suspended)
            if resources is not None:
                self.live.stats_at = self.source.clock()
                if resources.current_state != self.live.state:
                    self._state(resources.current_state)
                self.source.on_stats(self.name, resources)
        elif event == "token expiring":
            self._renew_soon(ws)
        elif event in ("token expired", "jwt error"):
            reason = str(args[0]) if args else event
            if "missing connect permission" in reason:
                raise Fallback("Wings refuses the panel's tokens (panel and Wings versions do not match)")
            if not self.live.authenticated:
                raise Dropped(f"auth refused ({reason})")
            if not self.awaiting_auth:  # errors about the old token until the new one is taken
                self._renew_soon(ws)
        elif event == "daemon error" and not self.live.authenticated:
            raise Dropped("Wings did not take the token")

    def _state(self, state: str) -> None:
        self.live.state = state
        self.source.on_state(self.name, state)

    def _renew_soon(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        """A fresh token on the same socket, once per token however often Wings warns, fetched in the
        background so the socket keeps being read meanwhile."""
        if self.token is None or self.renewal_for == self.token:
            return
        self.renewal_for = self.token
        self.renewal = asyncio.get_running_loop().create_task(self._renew(ws))

    async def _renew(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            token, _url = await self._new_token()
        except (Fallback, Dropped) as exc:
            log.debug("Renewing the token of %s failed (%s); reconnecting", self.name, exc)
            await ws.close()
            return
        self.token, self.awaiting_auth = token, True
        with contextlib.suppress(ConnectionError, RuntimeError):
            await ws.send_json({"event": "auth", "args": [token]})


def parse_stats(raw: Any, suspended: bool) -> ServerResources | None:
    """A ``stats`` event's payload (a JSON string of Wings' ResourceUsage) as ServerResources."""
    try:
        usage = json.loads(raw) if isinstance(raw, str) else None
        if not isinstance(usage, dict):
            return None
        network = usage.get("network") or {}
        return ServerResources(
            current_state=str(usage.get("state") or "offline"),
            is_suspended=suspended,
            cpu_absolute=number(usage.get("cpu_absolute")),
            memory_bytes=whole(usage.get("memory_bytes")),
            disk_bytes=whole(usage.get("disk_bytes")),
            network_rx_bytes=whole(network.get("rx_bytes") if isinstance(network, dict) else 0),
            network_tx_bytes=whole(network.get("tx_bytes") if isinstance(network, dict) else 0),
            uptime_ms=whole(usage.get("uptime")),
        )
    except (ValueError, TypeError, OverflowError):
        return None


async def probe(
    api: PterodactylAPI, server: PanelServer, panel_url: str, *, within: float
) -> tuple[bool, str]:
    """Whether this machine can open and authenticate a server's Wings socket (for the setup check):
    (True, what happened) or (False, why not and what to do)."""
    try:
        async with asyncio.timeout(within):
            try:
                token, url = await api.websocket_credentials(server.identifier)
            except PterodactylAuthError:
                return False, "the client key's user lacks the websocket permission (websocket.connect)"
            except ServerConflictError as exc:
                return False, f"the panel refuses a token for this server now ({exc.detail})"
            except PterodactylError as exc:
                return False, f"no websocket token ({exc})"
            try:
                ws = await api.ws_connect(
                    url, origin=panel_url.rstrip("/"), heartbeat=30.0, connect_within=within
                )
            except aiohttp.WSServerHandshakeError as exc:
                if exc.status == 403:
                    return (
                        False,
                        "Wings refused the Origin: its panel URL (`remote`) differs from PTERODACTYL_URL",
                    )
                return False, f"Wings answered {exc.status} to the websocket upgrade"
            except (aiohttp.ClientError, OSError) as exc:
                return (
                    False,
                    f"the node's Wings cannot be reached from here ({type(exc).__name__}): "
                    "is its port open to this machine?",
                )
            try:
                await ws.send_json({"event": "auth", "args": [token]})
                async for message in ws:
                    if message.type != aiohttp.WSMsgType.TEXT or message.data.startswith(DISCARDED_PREFIXES):
                        continue
                    try:
                        event = json.loads(message.data).get("event")
                    except (ValueError, AttributeError):
                        continue
                    if event == "auth success":
                        return True, "the websocket opened and authenticated"
                    if event in ("jwt error", "daemon error"):
                        return False, "Wings refused the token (panel and Wings versions may not match)"
                if ws.close_code == CLOSE_SUSPENDED:
                    return False, "the server is suspended"
                return False, f"Wings closed the socket ({ws.close_code})"
            finally:
                await ws.close()
    except TimeoutError:
        return False, f"no answer within {within:.0f} s"
