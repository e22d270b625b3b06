"""Self-tests of the fake Wings websocket (tests/fake_wings.py) and its panel side, through aiohttp's own
websocket client over real sockets. Waits are on frames and conditions with timeouts, never sleeps;
intervals and lifetimes are short so the protocol's rules play out in well under a second."""

from __future__ import annotations

import errno
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from tests.fake_panel import FLAVOURS, FakePanel, FakeServer
from tests.fake_wings import CONSOLE_SECRET, WingsConfig, sign_token

ERROR_EVENT = re.compile(r"Error Event \[[0-9a-f-]{36}\]: (.*)")
GENERIC = "an unexpected error was encountered while handling this request"
CLOSED = (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
STATS_KEYS = [
    "memory_bytes",
    "memory_limit_bytes",
    "cpu_absolute",
    "network",
    "uptime",
    "state",
    "disk_bytes",
]


class Socket:
    """A client websocket with frame helpers; every frame is checked to end in a newline."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.raw: list[str] = []

    async def recv(self, timeout: float = 3.0) -> dict[str, Any]:
        msg = await self.ws.receive(timeout=timeout)
        assert msg.type == aiohttp.WSMsgType.TEXT, (msg.type, msg.data, msg.extra)
        assert msg.data.endswith("\n")
        self.raw.append(msg.data)
        frame: dict[str, Any] = json.loads(msg.data)
        return frame

    async def until(self, event: str, timeout: float = 3.0) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Read up to the first `event` frame; returns it and the frames skipped before it."""
        skipped = []
        while (frame := await self.recv(timeout))["event"] != event:
            skipped.append(frame)
        return frame, skipped

    async def send(self, event: str, *args: str) -> None:
        await self.ws.send_json({"event": event, "args": list(args)})

    async def closed(self, timeout: float = 3.0) -> aiohttp.WSMessage:
        """Read until the connection ends (frames before that are discarded)."""
        while (msg := await self.ws.receive(timeout=timeout)).type not in CLOSED:
            pass
        return msg


@asynccontextmanager
async def wings_panel(
    flavour: str = "pterodactyl", panel_kw: dict[str, Any] | None = None, **config: Any
) -> AsyncIterator[FakePanel]:
    """A panel with fake Wings on every node; stats are off (every 60 s) unless a test asks."""
    config.setdefault("stats_interval", 60.0)
    async with FakePanel(
        flavour=flavour, wings=True, wings_config=WingsConfig(**config), **(panel_kw or {})
    ) as p:
        yield p


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    # limit=0: aiohttp's default TCPConnector(limit=100) counts open websockets.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
        yield s


async def token_via_api(session: aiohttp.ClientSession, panel: FakePanel, srv: FakeServer) -> tuple[str, str]:
    headers = {"Authorization": f"Bearer {panel.client_key}", "Accept": "application/json"}
    async with session.get(
        f"{panel.url}/api/client/servers/{srv.identifier}/websocket", headers=headers
    ) as r:
        assert r.status == 200, await r.text()
        data = (await r.json())["data"]
    return data["token"], data["socket"]


async def connect(
    session: aiohttp.ClientSession, panel: FakePanel, srv: FakeServer, origin: str | None = "", url: str = ""
) -> Socket:
    """Open a socket for `srv` (Origin: the panel URL unless given; None sends no Origin)."""
    ws = await session.ws_connect(url or panel.socket_url(srv), origin=panel.url if origin == "" else origin)
    return Socket(ws)


async def authed(session: aiohttp.ClientSession, panel: FakePanel, srv: FakeServer) -> Socket:
    """A socket past its first auth: auth success, status (and the offline stats) consumed."""
    sock = await connect(session, panel, srv)
    await sock.send("auth", panel.websocket_token(srv))
    assert (await sock.recv())["event"] == "auth success"
    assert await sock.recv() == {"event": "status", "args": [srv.state]}
    if srv.state == "offline":
        assert (await sock.recv())["event"] == "stats"
    return sock


async def refused(session: aiohttp.ClientSession, url: str) -> int:
    """Connect and expect a refusal; the errno."""
    with pytest.raises(aiohttp.ClientConnectorError) as info:
        await session.ws_connect(url)
    return info.value.os_error.errno


# --------------------------------------------------------------------- upgrade checks
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_origin_must_match_the_panel_url_exactly(flavour: str, session) -> None:
    async with wings_panel(flavour) as p:
        srv = p.add_server()
        wings = p.wings[1]
        for bad in (p.url + "/", p.url.replace("127.0.0.1", "localhost"), "https" + p.url[4:], None):
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await connect(session, p, srv, origin=bad)
            assert info.value.status == 403
        assert wings.upgrades_refused == {"origin": 4} and wings.upgrades == 0
        sock = await connect(session, p, srv)
        await sock.ws.close()
        p.wings_config.allowed_origins.append("https://panel.example.com")
        await (await connect(session, p, srv, origin="https://panel.example.com")).ws.close()
        p.wings_config.allowed_origins.append("*")
        await (await connect(session, p, srv, origin=None)).ws.close()  # "*" allows a missing Origin
        assert wings.upgrades == 3


async def test_server_not_on_this_node_404(session) -> None:
    async with wings_panel() as p:
        here, there = p.add_server(), p.add_server(node_id=2, node_name="Node 2")
        await p.wings[2].start()
        wrong = p.wings[1].url + f"/api/servers/{there.uuid}/ws"
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await session.ws_connect(wrong, origin=p.url)
        assert info.value.status == 404
        async with session.get(wrong.replace("ws://", "http://")) as r:  # ServerExists runs first
            assert r.status == 404
            assert await r.json() == {"error": "The requested resource does not exist on this instance."}
        assert p.wings[1].upgrades_refused["not_found"] == 2
        assert p.socket_url(there).startswith(p.wings[2].url) and p.wings[1].port != p.wings[2].port
        await (await connect(session, p, there)).ws.close()
        await (await connect(session, p, here)).ws.close()


@pytest.mark.parametrize(("flavour", "limit"), [("pelican", 30), ("pterodactyl", None)])
async def test_socket_limit_per_server(flavour: str, limit: int | None, session) -> None:
    async with wings_panel(flavour) as p:
        srv, other = p.add_server(), p.add_server()
        wings = p.wings[1]
        socks = [await connect(session, p, srv) for _ in range(30)]
        await wings.wait_until(lambda: wings.open_sockets(srv) == 30)
        if limit is None:  # Wings 1.11: unlimited
            socks.append(await connect(session, p, srv))
            await wings.wait_until(lambda: wings.open_sockets(srv) == 31)
        else:
            with pytest.raises(aiohttp.WSServerHandshakeError) as info:
                await connect(session, p, srv)
            assert info.value.status == 400
            async with session.get(p.socket_url(srv).replace("ws://", "http://")) as r:  # before the upgrade
                assert r.status == 400 and await r.json() == {"error": "Too many open websocket connections."}
            assert wings.upgrades_refused["too_many"] == 2
            await (await connect(session, p, other)).ws.close()  # per server
            await socks.pop().ws.close()
            await wings.wait_until(lambda: wings.open_sockets(srv) == 29)
            socks.append(await connect(session, p, srv))  # a slot is free again
        for sock in socks:
            await sock.ws.close()
        await wings.wait_until(lambda: wings.open_sockets() == 0)


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_suspended_server_4409_on_newer_wings(flavour: str, session) -> None:
    async with wings_panel(flavour) as p:
        srv = p.add_server(status="suspended")
        sock = await connect(session, p, srv)
        if flavour == "pelican":
            msg = await sock.ws.receive(timeout=3)
            assert (msg.type, msg.data, msg.extra) == (aiohttp.WSMsgType.CLOSE, 4409, "server is suspended")
            assert p.wings[1].upgrades_refused["suspended"] == 1
        else:  # Wings 1.11 keeps serving sockets of a suspended server
            await sock.send("auth", p.websocket_token(srv))
            assert (await sock.recv())["event"] == "auth success"
        # Newer wings also cuts the open sockets of a server being suspended.
        live = p.add_server(state="running")
        open_sock = await authed(session, p, live)
        live.status = "suspended"
        if flavour == "pelican":
            await open_sock.closed()
            assert open_sock.ws.close_code == 1006
        else:
            await open_sock.send("send stats")
            assert (await open_sock.recv())["event"] == "stats"


# --------------------------------------------------------------------- auth and events
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_auth_flow_status_once_and_offline_stats(flavour: str, session) -> None:
    async with wings_panel(flavour) as p:
        srv = p.add_server(disk_bytes=7 * 1024**2, cpu=30.0, memory_bytes=999)
        token, url = await token_via_api(session, p, srv)
        sock = await connect(session, p, srv, url=url)
        await sock.send("send stats")  # before auth: a bare jwt error
        assert await sock.recv() == {"event": "jwt error", "args": ["jwt: no jwt present"]}
        await sock.send("auth", token)
        assert await sock.recv() == {"event": "auth success"}
        assert sock.raw[-1] == '{"event":"auth success"}\n'  # args omitted when empty
        assert await sock.recv() == {"event": "status", "args": ["offline"]}
        stats = await sock.recv()
        assert stats["event"] == "stats" and list(json.loads(stats["args"][0])) == STATS_KEYS
        assert json.loads(stats["args"][0]) == {
            "memory_bytes": 0,
            "memory_limit_bytes": 2048 * 1024**2,
            "cpu_absolute": 0,
            "network": {"rx_bytes": 0, "tx_bytes": 0},
            "uptime": 0,
            "state": "offline",
            "disk_bytes": 7 * 1024**2,
        }
        assert sock.raw[-1].startswith('{"event":"stats","args":["{\\"memory_bytes\\":0,')  # event first
        # Re-auth on the same socket: auth success only (no second status, no stats).
        await sock.send("auth", p.websocket_token(srv))
        assert await sock.recv() == {"event": "auth success"}
        await sock.send("send stats")
        assert (await sock.recv())["event"] == "stats"
        wings = p.wings[1]
        assert [a.error for a in wings.auth_attempts] == [None, None] and wings.tokens_used[0] == token
        # A running server: status, and no stats at auth (they come with docker's samples).
        running = p.add_server(state="running")
        other = await connect(session, p, running)
        await other.send("auth", p.websocket_token(running))
        assert [await other.recv() for _ in range(2)] == [
            {"event": "auth success"},
            {"event": "status", "args": ["running"]},
        ]
        await other.send("send logs")  # nothing logged yet
        await other.send("send stats")
        assert json.loads((await other.recv())["args"][0])["state"] == "running"
        assert wings.authenticated_sockets() == 2


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_status_pushed_on_every_state_change(flavour: str, session) -> None:
    async with wings_panel(flavour) as p:
        srv = p.add_server(cpu=40.0, memory_bytes=10**8)
        socks = [await authed(session, p, srv) for _ in range(2)]
        headers = {"Authorization": f"Bearer {p.client_key}", "Accept": "application/json"}
        base = f"{p.url}/api/client/servers/{srv.identifier}"
        async with session.post(base + "/power", json={"signal": "start"}, headers=headers) as r:
            assert r.status == 204
        for sock in socks:
            assert await sock.recv() == {"event": "status", "args": ["starting"]}
        async with session.get(base + "/resources", headers=headers) as r:  # the polled state machine
            assert r.status == 200
        for sock in socks:
            assert await sock.recv() == {"event": "status", "args": ["running"]}
        srv.cpu = 40.0
        srv.state = "offline"  # a direct assignment too; then one zeroed stats
        for sock in socks:
            assert await sock.recv() == {"event": "status", "args": ["offline"]}
            stats = json.loads((await sock.recv())["args"][0])
            assert stats["state"] == "offline" and stats["cpu_absolute"] == stats["memory_bytes"] == 0
        srv.state = "offline"  # not a change: nothing
        srv.state = "starting"
        for sock in socks:
            assert await sock.recv() == {"event": "status", "args": ["starting"]}


async def test_stats_cadence_and_idle_offline_silence(session) -> None:
    async with wings_panel(stats_interval=0.05) as p:
        running = p.add_server(state="running", cpu=12.5, memory_bytes=10**9, uptime_ms=4000)
        running.network_rx_bytes, running.network_tx_bytes = 100, 200
        idle = p.add_server()
        busy, quiet = await authed(session, p, running), await authed(session, p, idle)
        frames = [await busy.recv() for _ in range(3)]
        assert [f["event"] for f in frames] == ["stats"] * 3
        assert json.loads(frames[0]["args"][0]) == {
            "memory_bytes": 10**9,
            "memory_limit_bytes": 2048 * 1024**2,
            "cpu_absolute": 12.5,
            "network": {"rx_bytes": 100, "tx_bytes": 200},
            "uptime": 4000,
            "state": "running",
            "disk_bytes": 0,
        }
        # Three stats ticks have passed: the idle offline server got nothing since its auth. A bad auth
        # is the marker: its daemon error must be the very next frame.
        await quiet.send("auth", "marker")
        assert (await quiet.recv())["event"] == "daemon error"
        running.cpu = 99.0
        while json.loads((await busy.recv())["args"][0])["cpu_absolute"] != 99:
            pass  # live values, no cache
        assert p.wings[1].events_sent["stats"] >= 5


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_token_expiring_then_jwt_error_then_reauth(flavour: str, session) -> None:
    # Stats are off (60 s), so every frame after the auth comes from the expiry checks.
    async with wings_panel(flavour, expiry_check_interval=0.1) as p:
        srv = p.add_server(state="running")
        sock = await connect(session, p, srv)
        await sock.send("auth", p.websocket_token(srv, lifetime=1.0))
        assert [(await sock.recv())["event"] for _ in range(2)] == ["auth success", "status"]
        error, before = await sock.until("jwt error")
        assert before and {f["event"] for f in before} == {"token expiring"}  # ≤ 60 s left, every check
        assert error["args"] == ["jwt: exp claim is invalid"]  # not "token expired": SendJson fails first
        assert await sock.recv() == error  # the next check again
        await sock.send("send stats")  # and every other would-be event
        _, skipped = await sock.until("jwt error")
        assert skipped == []
        await sock.send("auth", p.websocket_token(srv))  # a fresh 10-minute token recovers
        _, skipped = await sock.until("auth success")
        assert {f["event"] for f in skipped} <= {"jwt error"}
        await sock.send("send stats")
        assert (await sock.recv())["event"] == "stats"  # no second status, no more errors
        assert "token expired" not in p.wings[1].events_sent


async def test_expired_token_turns_every_stats_sample_into_jwt_error(session) -> None:
    async with wings_panel(stats_interval=0.05, expiry_check_interval=60) as p:
        srv = p.add_server(state="running")
        sock = await connect(session, p, srv)
        await sock.send("auth", p.websocket_token(srv, lifetime=0.3))
        assert [(await sock.recv())["event"] for _ in range(2)] == ["auth success", "status"]
        error, before = await sock.until("jwt error")
        assert {f["event"] for f in before} <= {"stats"} and error["args"] == ["jwt: exp claim is invalid"]
        for _ in range(3):  # ~1 per sample, with no expiry check involved
            assert await sock.recv() == error


async def test_server_uuid_mismatch(session) -> None:
    async with wings_panel() as p:
        mine, theirs = p.add_server(state="running"), p.add_server()
        sock = await connect(session, p, theirs)
        await sock.send("auth", p.websocket_token(mine))  # a valid token, for another server
        assert await sock.recv() == {"event": "auth success"}
        mismatch = {"event": "jwt error", "args": ["jwt: server uuid mismatch"]}
        assert await sock.recv() == mismatch  # the status, and the offline stats
        assert await sock.recv() == mismatch
        await sock.send("send stats")
        assert await sock.recv() == mismatch


@pytest.mark.parametrize(
    ("flavour", "config", "make", "event", "detail"),
    [
        ("pterodactyl", {}, "garbage", "daemon error", GENERIC),
        ("pelican", {}, "other node", "daemon error", GENERIC),
        ("pterodactyl", {}, "expired", "jwt error", "jwt: exp claim is invalid"),
        ("pelican", {}, "no scope", "jwt error", "jwt: missing connect permission"),
        ("pterodactyl", {"require_scope": True}, "no scope", "jwt error", "jwt: missing connect permission"),
        ("pterodactyl", {}, "no connect", "jwt error", "jwt: missing connect permission"),
        ("pelican", {}, "no user", "jwt error", "jwt: created too far in past (denylist)"),
        (
            "pterodactyl",
            {"deny_before_boot": True},
            "old",
            "jwt error",
            "jwt: created too far in past (denylist)",
        ),
    ],
)
async def test_refused_tokens(
    flavour: str, config: dict[str, Any], make: str, event: str, detail: str, session
) -> None:
    async with wings_panel(flavour, **config) as p:
        srv = p.add_server()
        p.add_server(node_id=2, node_name="Node 2")
        token = {
            "garbage": lambda: "not.a.jwt",
            "other node": lambda: sign_token({"server_uuid": srv.uuid}, p.nodes[2].daemon_token),
            "expired": lambda: p.websocket_token(srv, lifetime=-5),
            "no scope": lambda: p.websocket_token(srv, scope=None),
            "no connect": lambda: p.websocket_token(srv, permissions=["control.console"]),
            "no user": lambda: p.websocket_token(srv, user_uuid=None),
            "old": lambda: p.websocket_token(srv, iat=int(p.wings[1].boot_time) - 100),
        }[make]()
        sock = await connect(session, p, srv)
        await sock.send("auth", token)
        frame = await sock.recv()
        assert frame["event"] == event
        match = ERROR_EVENT.fullmatch(frame["args"][0])  # auth errors carry an error id
        assert match is not None and match.group(1) == detail
        assert p.wings[1].auth_attempts[-1].error == (GENERIC if event == "daemon error" else detail)
        await sock.send("send stats")  # the socket is still unauthenticated
        assert await sock.recv() == {"event": "jwt error", "args": ["jwt: no jwt present"]}
        assert p.wings[1].tokens_used == []


async def test_pterodactyl_1_11_wings_accepts_tokens_without_scope_and_admins_see_errors(session) -> None:
    async with wings_panel() as p:
        p.client_user_admin = True
        srv = p.add_server()
        sock = await authed(session, p, srv)  # no scope claim on Pterodactyl
        await sock.send("auth", "not.a.jwt")  # admin.websocket.errors: the real reason
        frame = await sock.recv()
        match = ERROR_EVENT.fullmatch(frame["args"][0])
        assert (
            frame["event"] == "daemon error" and match and match.group(1) == "jwt: HMAC verification failed"
        )
        await sock.send("send stats")  # the previous token stays in force
        assert (await sock.recv())["event"] == "stats"


async def test_inbound_frames_dropped_silently(session) -> None:
    async with wings_panel() as p:
        srv = p.add_server(state="running")
        sock = await authed(session, p, srv)
        for junk in (
            "not json",
            '{"event":"send stats","args":[1]}',
            '{"event":"send stats","args":"x"}',
            '{"event":5}',
            '["send stats"]',
            '{"event":"explode"}',
        ):
            await sock.ws.send_str(junk)
        await sock.ws.send_str('{"EVENT":"send stats"}')  # Go matches field names case-insensitively
        assert (await sock.recv())["event"] == "stats"
        await sock.send("send command", "say hi")
        await p.wings[1].wait_until(lambda: p.wings[1].commands)
        received = [(f.data, f.event) for f in p.wings[1].frames_received]
        assert [e for _, e in received[1:]] == [
            None,
            None,
            None,
            None,
            None,
            "explode",
            "send stats",
            "send command",
        ]
        assert p.wings[1].commands == [(srv.uuid, "say hi")]


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_read_limit_on_newer_wings(flavour: str, session) -> None:
    async with wings_panel(flavour) as p:
        srv = p.add_server(state="running")
        sock = await authed(session, p, srv)
        await sock.ws.send_str(json.dumps({"event": "send command", "args": ["x" * 5000]}))
        if flavour == "pelican":  # 4096-byte read limit: 1009
            msg = await sock.closed()
            assert (msg.type, msg.data) == (aiohttp.WSMsgType.CLOSE, 1009)
        else:
            await sock.send("send stats")
            assert (await sock.recv())["event"] == "stats"


async def test_console_spam_and_logs(session) -> None:
    async with wings_panel() as p:
        srv = p.add_server(state="running")
        wings = p.wings[1]
        sock = await authed(session, p, srv)
        wings.console_rate(srv, 400)
        lines = []
        while not any(CONSOLE_SECRET in line for line in lines):
            frame = await sock.recv()
            assert frame["event"] == "console output" and len(frame["args"]) == 1
            lines.append(frame["args"][0])
        assert any("\\u003cSteve\\u003e" in raw and "\\u0026" in raw for raw in sock.raw)  # Go escaping
        assert re.match(r"\[\d\d:\d\d:\d\d\] \[", lines[0])
        wings.console_rate(srv, 0)
        sent = wings.events_sent["console output"]
        while len(lines) < sent:  # the lines already queued
            lines.append((await sock.recv())["args"][0])
        wings.console(srv, 'Done (3.2s)! For help, type "help"')
        assert (await sock.recv())["args"] == ['Done (3.2s)! For help, type "help"']
        await sock.send("send logs")
        await sock.send("send stats")
        _, logged = await sock.until("stats")
        assert [f["args"][0] for f in logged] == [*lines, 'Done (3.2s)! For help, type "help"'][-150:]


async def test_server_removed_closes_sockets(session) -> None:
    async with wings_panel() as p:  # Wings 1.11: GoingAway
        srv = p.add_server()
        sock = await authed(session, p, srv)
        p.remove_server(srv.identifier)
        msg = await sock.closed()
        assert (msg.type, msg.data, msg.extra) == (aiohttp.WSMsgType.CLOSE, 1001, "server deleted")


# --------------------------------------------------------------------- refusal modes
async def test_refusal_modes_switch_at_run_time(session) -> None:
    async with wings_panel() as p:
        srv = p.add_server()
        wings, url = p.wings[1], p.socket_url(srv)
        open_sock = await authed(session, p, srv)

        wings.set_mode("refuse")  # the port closes and open sockets die without a close frame
        await open_sock.closed()
        assert open_sock.ws.close_code == 1006
        assert await refused(session, url) == errno.ECONNREFUSED
        wings.set_mode("ok")  # same port again
        open_sock = await authed(session, p, srv)

        wings.set_mode("origin")
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            await connect(session, p, srv)
        assert info.value.status == 403 and wings.upgrades_refused["origin"] == 1

        wings.set_mode("drop")  # cuts the open socket at once...
        await open_sock.closed()
        assert open_sock.ws.close_code == 1006
        sock = await connect(session, p, srv)  # ...and new ones right after auth
        await sock.send("auth", p.websocket_token(srv))
        assert (await sock.recv())["event"] == "auth success"
        await sock.closed()
        assert sock.ws.close_code == 1006

        wings.set_mode("ok")
        open_sock = await authed(session, p, srv)
        p.set_node_down(1, True)  # wings unreachable
        await open_sock.closed()
        assert await refused(session, url) == errno.ECONNREFUSED
        p.set_node_down(1, False)
        await (await authed(session, p, srv)).ws.close()
        with pytest.raises(ValueError):
            wings.set_mode("sideways")


async def test_start_wings_on_demand(session) -> None:
    async with FakePanel(flavour="pelican") as p:
        srv = p.add_server()
        port = p.nodes[1].daemon_listen
        assert await refused(session, p.socket_url(srv)) == errno.ECONNREFUSED  # nothing listens yet
        wings = await p.start_wings(1)
        assert wings.port == port == p.nodes[1].daemon_connect and p.wings == {1: wings}
        await (await authed(session, p, srv)).ws.close()


# --------------------------------------------------------------------- live-mode power
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_time_based_transitions_push_status(flavour: str, session) -> None:
    async with wings_panel(flavour, panel_kw={"transition_delay": 0.05}) as p:
        srv = p.add_server()
        sock = await authed(session, p, srv)
        headers = {"Authorization": f"Bearer {p.client_key}", "Accept": "application/json"}
        power = f"{p.url}/api/client/servers/{srv.identifier}/power"

        async def signal(name: str) -> None:
            async with session.post(power, json={"signal": name}, headers=headers) as r:
                assert r.status == 204

        async def statuses(n: int) -> list[str]:
            return [(await sock.until("status"))[0]["args"][0] for _ in range(n)]

        await signal("start")
        assert await statuses(2) == ["starting", "running"]
        await signal("restart")
        assert await statuses(3) == ["stopping", "starting", "running"]
        await signal("stop")
        assert await statuses(2) == ["stopping", "offline"]
        assert json.loads((await sock.recv())["args"][0])["state"] == "offline"  # the zeroed stats
        assert p.count("GET", "/resources") == 0 and srv.state == "offline"
