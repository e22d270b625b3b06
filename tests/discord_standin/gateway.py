"""The websocket gateway: HELLO / IDENTIFY / READY / RESUME / heartbeats / dispatches, zlib-stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import WSMsgType, web

if TYPE_CHECKING:
    from .standin import DiscordStandin

# Gateway intents
INTENT_GUILDS = 1 << 0
INTENT_GUILD_MEMBERS = 1 << 1
INTENT_GUILD_PRESENCES = 1 << 8
INTENT_GUILD_MESSAGES = 1 << 9
INTENT_DIRECT_MESSAGES = 1 << 12
INTENT_MESSAGE_CONTENT = 1 << 15
PRIVILEGED_INTENTS = INTENT_GUILD_MEMBERS | INTENT_GUILD_PRESENCES | INTENT_MESSAGE_CONTENT
VALID_INTENTS = (1 << 26) - 1  # bits 0..25 (auto moderation, polls ...)

OP_DISPATCH = 0
OP_HEARTBEAT = 1
OP_IDENTIFY = 2
OP_PRESENCE = 3
OP_VOICE_STATE = 4
OP_RESUME = 6
OP_RECONNECT = 7
OP_REQUEST_MEMBERS = 8
OP_INVALID_SESSION = 9
OP_HELLO = 10
OP_HEARTBEAT_ACK = 11

_CLOSE = object()


@dataclass
class GatewaySession:
    id: str
    intents: int
    shard: tuple[int, int]
    identify: dict[str, Any]
    seq: int = 0
    buffer: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=5000))
    conn: GatewayConnection | None = None
    invalidated: bool = False

    def owns_guild(self, guild_id: int | None) -> bool:
        if guild_id is None:
            return self.shard[0] == 0
        shard_id, count = self.shard
        return (guild_id >> 22) % count == shard_id


class GatewayConnection:
    """One websocket; frames go through a queue so dispatch order == sequence order."""

    def __init__(self, ws: web.WebSocketResponse, *, zlib_stream: bool) -> None:
        self.ws = ws
        self.zlib_stream = zlib_stream
        self._compressor = zlib.compressobj() if zlib_stream else None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self.session: GatewaySession | None = None
        self.last_heartbeat = time.monotonic()
        self.received: deque[float] = deque()
        self.close_code: int | None = None
        self.closed_by_server = False
        self.writer = asyncio.get_running_loop().create_task(self._write_loop())

    def send(self, payload: dict[str, Any]) -> asyncio.Future[float]:
        """Queue a frame; the future resolves to the monotonic time it was written (-1.0: socket closed)."""
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((payload, fut))
        return fut

    def close(self, code: int, message: str = "") -> None:
        self.closed_by_server = True
        self._queue.put_nowait((_CLOSE, (code, message)))

    async def _write_loop(self) -> None:
        while True:
            payload, extra = await self._queue.get()
            if payload is _CLOSE:
                code, message = extra
                self.close_code = code
                with contextlib.suppress(Exception):
                    await self.ws.close(code=code, message=message.encode())
                return
            text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
            try:
                if self.ws.closed:
                    raise ConnectionResetError("websocket closed")
                if self._compressor is not None:
                    data = self._compressor.compress(text.encode("utf-8"))
                    data += self._compressor.flush(zlib.Z_SYNC_FLUSH)
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(text)
            except Exception:
                if not extra.done():
                    extra.set_result(-1.0)  # not delivered (kept in the session buffer for RESUME)
                continue
            if not extra.done():
                extra.set_result(time.monotonic())


class Gateway:
    def __init__(self, standin: DiscordStandin) -> None:
        self.standin = standin
        self.sessions: dict[str, GatewaySession] = {}
        self.connections: list[GatewayConnection] = []

    # -- helpers ----------------------------------------------------------
    @property
    def interval_s(self) -> float:
        return self.standin.heartbeat_interval_ms / 1000.0

    def live_sessions(self) -> list[GatewaySession]:
        return [s for s in self.sessions.values() if not s.invalidated]

    def connected_sessions(self) -> list[GatewaySession]:
        return [s for s in self.live_sessions() if s.conn is not None]

    def dispatch(
        self,
        event: str,
        data: dict[str, Any],
        *,
        guild_id: int | None = None,
        intent: int | None = None,
        session: GatewaySession | None = None,
    ) -> list[asyncio.Future[float]]:
        """Send a DISPATCH to every live session it concerns; buffered for RESUME while disconnected."""
        targets = [session] if session is not None else self.live_sessions()
        if session is None and guild_id in self.standin.guilds and not self.standin.bot_in_guild(guild_id):
            targets = []  # events of a guild the bot is not in never reach it
        futures = []
        for sess in targets:
            if intent is not None and not sess.intents & intent:
                continue
            if guild_id is not None and not sess.owns_guild(guild_id):
                continue
            fut = self._send_dispatch(sess, event, data)
            if fut is not None:
                futures.append(fut)
        return futures

    def _send_dispatch(
        self, sess: GatewaySession, event: str, data: dict[str, Any]
    ) -> asyncio.Future[float] | None:
        sess.seq += 1
        payload = {"op": OP_DISPATCH, "t": event, "s": sess.seq, "d": data}
        sess.buffer.append(payload)
        self.standin.dispatched.append(payload)
        if sess.conn is not None:
            return sess.conn.send(payload)
        return None

    def send_op(self, op: int, data: Any = None) -> int:
        """Send a raw op (e.g. 7 RECONNECT, 9 INVALID_SESSION) to every connected session."""
        count = 0
        for sess in self.connected_sessions():
            assert sess.conn is not None
            sess.conn.send({"op": op, "d": data})
            count += 1
        return count

    def close_all(self, code: int = 1001, message: str = "") -> None:
        for conn in list(self.connections):
            conn.close(code, message)

    # -- websocket handler -------------------------------------------------
    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        st = self.standin
        ws = web.WebSocketResponse(compress=False, max_msg_size=0, autoping=True)
        await ws.prepare(request)
        compress = request.query.get("compress")
        conn = GatewayConnection(ws, zlib_stream=compress == "zlib-stream")
        self.connections.append(conn)
        st.gateway_connections += 1
        st.gateway_queries.append(dict(request.query))
        st._changed()
        try:
            version = request.query.get("v")
            if version is not None and version not in ("9", "10"):
                conn.close(4012, "Invalid API version")
            elif request.query.get("encoding", "json") != "json":
                conn.close(4002, "Error while decoding payload.")
            else:
                conn.send(
                    {
                        "op": OP_HELLO,
                        "d": {"heartbeat_interval": st.heartbeat_interval_ms, "_trace": ["discord-standin"]},
                        "s": None,
                        "t": None,
                    }
                )
                await self._read_loop(conn)
        finally:
            closed_by_client = not conn.closed_by_server
            client_code = ws.close_code if closed_by_client else None
            if closed_by_client:
                conn.close(1000)
            with contextlib.suppress(asyncio.TimeoutError, Exception):
                await asyncio.wait_for(asyncio.shield(conn.writer), 2)
            if not conn.writer.done():
                conn.writer.cancel()
            self.connections.remove(conn)
            sess = conn.session
            if sess is not None and sess.conn is conn:
                sess.conn = None
                if client_code in (1000, 1001):
                    # A clean close by the client ends the session (Discord's behaviour).
                    sess.invalidated = True
            st.gateway_disconnects += 1
            st._changed()
        return ws

    async def _read_loop(self, conn: GatewayConnection) -> None:
        limit = 2 * self.interval_s + 5
        ws = conn.ws
        while not ws.closed and not conn.closed_by_server:
            remaining = conn.last_heartbeat + limit - time.monotonic()
            if remaining <= 0:
                conn.close(4009, "Session timed out.")
                return
            try:
                msg = await ws.receive(timeout=remaining)
            except TimeoutError:
                continue
            if msg.type == WSMsgType.TEXT:
                await self._on_text(conn, msg.data)
            elif msg.type == WSMsgType.BINARY:
                conn.close(4002, "Error while decoding payload.")
                return
            else:  # CLOSE / CLOSING / CLOSED / ERROR
                return

    async def _on_text(self, conn: GatewayConnection, text: str) -> None:
        st = self.standin
        now = time.monotonic()
        conn.received.append(now)
        while conn.received and now - conn.received[0] > 60:
            conn.received.popleft()
        if len(conn.received) > 120:
            conn.close(4008, "Rate limited.")
            return
        try:
            payload = json.loads(text)
            op = payload["op"]
        except (ValueError, KeyError, TypeError):
            conn.close(4002, "Error while decoding payload.")
            return
        st.gateway_received.append(payload)
        data = payload.get("d")
        if op == OP_HEARTBEAT:
            conn.last_heartbeat = now
            st.heartbeats += 1
            conn.send({"op": OP_HEARTBEAT_ACK, "d": None, "s": None, "t": None})
            st._changed()
            return
        if op == OP_IDENTIFY:
            self._identify(conn, data if isinstance(data, dict) else {})
            return
        if op == OP_RESUME:
            self._resume(conn, data if isinstance(data, dict) else {})
            return
        if conn.session is None:
            conn.close(4003, "Not authenticated.")
            return
        if op == OP_PRESENCE:
            st.presence_updates.append(data)
            st._changed()
        elif op == OP_VOICE_STATE:
            st.voice_state_updates.append(data)
        elif op == OP_REQUEST_MEMBERS:
            self._request_members(conn, data if isinstance(data, dict) else {})
        else:
            conn.close(4001, "Unknown opcode.")
        st._changed()

    def _token_ok(self, token: Any) -> bool:
        if not isinstance(token, str):
            return False
        if token.startswith("Bot "):
            token = token[4:]
        return secrets.compare_digest(token, self.standin.token)

    def _identify(self, conn: GatewayConnection, data: dict[str, Any]) -> None:
        st = self.standin
        if conn.session is not None:
            conn.close(4005, "Already authenticated.")
            return
        if not self._token_ok(data.get("token")):
            conn.close(4004, "Authentication failed.")
            return
        intents = data.get("intents")
        if (
            not isinstance(intents, int)
            or isinstance(intents, bool)
            or intents < 0
            or intents & ~VALID_INTENTS
        ):
            conn.close(4013, "Invalid intent(s).")
            return
        if intents & PRIVILEGED_INTENTS & ~st.privileged_intents:
            conn.close(4014, "Disallowed intent(s).")
            return
        shard = data.get("shard")
        if shard is not None:
            valid = (
                isinstance(shard, list)
                and len(shard) == 2
                and all(isinstance(x, int) for x in shard)
                and 0 <= shard[0] < shard[1]
            )
            if not valid:
                conn.close(4010, "Invalid shard.")
                return
            shard_tuple = (shard[0], shard[1])
        else:
            shard_tuple = (0, 1)
        session = GatewaySession(id=secrets.token_hex(16), intents=intents, shard=shard_tuple, identify=data)
        self.sessions[session.id] = session
        session.conn = conn
        conn.session = session
        st.identify_count += 1
        st.identify_payloads.append(data)
        self._send_dispatch(session, "READY", st._ready_payload(session))
        if intents & INTENT_GUILDS:
            for guild in list(st.guilds.values()):
                if session.owns_guild(guild.id) and st.bot_in_guild(guild.id):
                    self._send_dispatch(session, "GUILD_CREATE", st._guild_create_payload(guild, session))
        st.ready_count += 1
        st._changed()

    def _resume(self, conn: GatewayConnection, data: dict[str, Any]) -> None:
        st = self.standin
        if conn.session is not None:
            conn.close(4005, "Already authenticated.")
            return
        if not self._token_ok(data.get("token")):
            conn.close(4004, "Authentication failed.")
            return
        session = self.sessions.get(str(data.get("session_id")))
        seq = data.get("seq")
        if session is None or session.invalidated:
            conn.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            st.invalid_sessions_sent += 1
            st._changed()
            return
        if not isinstance(seq, int) or seq > session.seq:
            conn.close(4007, "Invalid seq.")
            return
        missed = [p for p in session.buffer if p["s"] > seq]
        if missed and missed[0]["s"] != seq + 1:
            # Events were dropped from the buffer: cannot resume.
            session.invalidated = True
            conn.send({"op": OP_INVALID_SESSION, "d": False, "s": None, "t": None})
            st.invalid_sessions_sent += 1
            st._changed()
            return
        old = session.conn
        if old is not None and old is not conn:
            old.close(4000, "Session resumed elsewhere.")
        session.conn = conn
        conn.session = session
        for payload in missed:
            conn.send(payload)
        self._send_dispatch(session, "RESUMED", {"_trace": ["discord-standin"]})
        st.resume_count += 1
        st._changed()

    def _request_members(self, conn: GatewayConnection, data: dict[str, Any]) -> None:
        st = self.standin
        session = conn.session
        assert session is not None
        guild_ids = data.get("guild_id")
        if not isinstance(guild_ids, list):
            guild_ids = [guild_ids]
        user_ids = data.get("user_ids")
        if user_ids is not None and not isinstance(user_ids, list):
            user_ids = [user_ids]
        for raw_guild_id in guild_ids:
            try:
                guild_id = int(raw_guild_id)
            except (TypeError, ValueError):
                conn.close(4002, "Error while decoding payload.")
                return
            members, not_found = st._member_chunk(
                guild_id, data.get("query"), data.get("limit") or 0, user_ids
            )
            chunk: dict[str, Any] = {
                "guild_id": str(guild_id),
                "members": members,
                "chunk_index": 0,
                "chunk_count": 1,
                "not_found": not_found,
            }
            if data.get("presences"):
                chunk["presences"] = []
            if data.get("nonce") is not None:
                chunk["nonce"] = data["nonce"]
            self._send_dispatch(session, "GUILD_MEMBERS_CHUNK", chunk)
