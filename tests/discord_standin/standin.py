"""A local stand-in for Discord (REST + gateway) that the real discord.py client talks to.

See ``tests/discord_standin/README.md`` for the interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import hashlib
import json
import math
import mimetypes
import os
import re
import secrets
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from . import errors as E
from . import permissions as P
from .errors import DiscordError, FormErrors
from .gateway import (
    INTENT_DIRECT_MESSAGES,
    INTENT_GUILD_MEMBERS,
    INTENT_GUILD_MESSAGES,
    INTENT_GUILDS,
    INTENT_MESSAGE_CONTENT,
    OP_INVALID_SESSION,
    OP_RECONNECT,
    PRIVILEGED_INTENTS,
    Gateway,
    GatewaySession,
)
from .models import (
    Attachment,
    Call,
    Channel,
    Guild,
    InteractionRecord,
    Member,
    Message,
    Role,
    SnowflakeGenerator,
    UploadedFile,
    User,
    iso,
    snowflake_time,
    utcnow,
)
from .validation import (
    FLAG_COMPONENTS_V2,
    FLAG_EPHEMERAL,
    FLAG_LOADING,
    FLAG_SUPPRESS_EMBEDS,
    FLAG_SUPPRESS_NOTIFICATIONS,
    MAX_FILES,
    validate_autocomplete,
    validate_commands,
    validate_message,
    validate_modal,
)

SITECUSTOMIZE_DIR = str(Path(__file__).resolve().parent / "sitecustomize")
JSON_CONTENT_TYPE = "application/json"

INTERACTION_PING = 1
INTERACTION_COMMAND = 2
INTERACTION_COMPONENT = 3
INTERACTION_AUTOCOMPLETE = 4
INTERACTION_MODAL_SUBMIT = 5

# callback types accepted per interaction type
VALID_CALLBACKS: dict[int, set[int]] = {
    INTERACTION_PING: {1},
    INTERACTION_COMMAND: {4, 5, 9, 12},
    INTERACTION_COMPONENT: {4, 5, 6, 7, 9, 12},
    INTERACTION_AUTOCOMPLETE: {8},
    INTERACTION_MODAL_SUBMIT: {4, 5, 6, 7},
}

# Application flags for the privileged intents switched on in the developer portal.
_APP_FLAG_PRESENCE = 1 << 12
_APP_FLAG_MEMBERS = 1 << 14
_APP_FLAG_CONTENT = 1 << 18

# Per-route limits in the spirit of Discord's (opt-in: DiscordStandin(rate_limits=DISCORD_LIKE_RATE_LIMITS)).
DISCORD_LIKE_RATE_LIMITS: dict[str, tuple[int, float]] = {
    "POST /channels/{channel_id}/messages": (5, 5.0),
    "PATCH /channels/{channel_id}/messages/{message_id}": (5, 5.0),
    "DELETE /channels/{channel_id}/messages/{message_id}": (5, 5.0),
    "POST /webhooks/{webhook_id}/{webhook_token}": (5, 2.0),
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/@original": (5, 2.0),
    "PATCH /webhooks/{webhook_id}/{webhook_token}/messages/{message_id}": (5, 2.0),
}

_MAJOR_PARAMS = ("channel_id", "guild_id", "webhook_id", "webhook_token")


@dataclass
class _Route:
    method: str
    template: str
    parts: tuple[str, ...]
    handler: str
    auth: bool

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


@dataclass
class _FailRule:
    route: str
    status: int
    count: int
    retry_after: float
    body: Any
    headers: dict[str, str]
    is_global: bool


@dataclass
class _Bucket:
    limit: int
    period: float
    remaining: int
    reset_at: float  # monotonic
    name: str


class _Reply:
    def __init__(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers or {}


def _json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    raw = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    out = {"Content-Type": JSON_CONTENT_TYPE}
    if headers:
        out.update(headers)
    return web.Response(status=status, body=raw, headers=out)


def _normalize_route(key: str) -> str:
    return re.sub(r"\{[^}]*\}", "{}", " ".join(key.split()))


def _png_size(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    return None


def _walk_components(components: Iterable[dict[str, Any]]) -> Iterable[dict[str, Any]]:
    for comp in components:
        if not isinstance(comp, dict):
            continue
        yield comp
        children = comp.get("components")
        if isinstance(children, list):
            yield from _walk_components(children)
        for key in ("accessory", "component"):
            inner = comp.get(key)
            if isinstance(inner, dict):
                yield from _walk_components([inner])


class DiscordStandin:
    """Discord REST API + gateway on 127.0.0.1 for end-to-end tests of a discord.py bot."""

    def __init__(
        self,
        token: str = "test-token",
        *,
        application_id: int | None = None,
        bot_user_id: int | None = None,
        bot_username: str = "Pterodisbot",
        interaction_deadline: float = 3.0,
        heartbeat_interval_ms: int = 20000,
        host: str = "127.0.0.1",
        port: int = 0,
        privileged_intents: int = PRIVILEGED_INTENTS,
        rate_limits: dict[str, tuple[int, float] | tuple[int, float, str]] | None = None,
        global_rate_limit: tuple[int, float] | None = None,
        webhook_token_lifetime: float = 15 * 60.0,
        max_file_size: int = 10 * 1024 * 1024,
    ) -> None:
        if heartbeat_interval_ms >= 60000:
            raise ValueError("heartbeat_interval_ms must be < 60000 (discord.py reads with a 60 s timeout)")
        self.token = token
        self.interaction_deadline = interaction_deadline
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.host = host
        self.port = port
        self.privileged_intents = privileged_intents
        self.rate_limits = {_normalize_route(k): v for k, v in (rate_limits or {}).items()}
        self.global_rate_limit = global_rate_limit
        self.webhook_token_lifetime = webhook_token_lifetime
        self.max_file_size = max_file_size

        self.snowflake = SnowflakeGenerator()
        bot_id = bot_user_id or application_id or self.snowflake()
        self.application_id: int = application_id or bot_id
        self.bot_user = User(id=bot_id, username=bot_username, bot=True)
        self.owner_user = User(id=self.snowflake(), username="app-owner")
        self.users: dict[int, User] = {self.bot_user.id: self.bot_user, self.owner_user.id: self.owner_user}

        self.guilds: dict[int, Guild] = {}
        self.channels: dict[int, Channel] = {}
        self.messages: dict[int, Message] = {}  # channel messages (not ephemeral)
        self.ephemeral_messages: dict[int, Message] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self._interactions_by_token: dict[str, InteractionRecord] = {}
        self.commands: dict[int | None, list[dict[str, Any]]] = {}  # guild id (None = global) -> commands
        self.command_puts: dict[int | None, int] = {}
        self._command_ids: dict[tuple[int | None, int, str], int] = {}

        self.calls: list[Call] = []
        self.internal_errors: list[BaseException] = []  # exceptions in the stand-in's own handlers
        self.unknown_calls: list[Call] = []
        self._fail_rules: list[_FailRule] = []
        self._delays: list[list[Any]] = []  # [route, seconds, remaining count]
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._global_bucket: _Bucket | None = None

        # gateway bookkeeping
        self.gateway = Gateway(self)
        self.gateway_connections = 0
        self.gateway_disconnects = 0
        self.identify_count = 0
        self.resume_count = 0
        self.ready_count = 0
        self.heartbeats = 0
        self.invalid_sessions_sent = 0
        self.identify_payloads: list[dict[str, Any]] = []
        self.gateway_queries: list[dict[str, str]] = []
        self.gateway_received: list[dict[str, Any]] = []
        self.dispatched: list[dict[str, Any]] = []
        self.presence_updates: list[Any] = []
        self.voice_state_updates: list[Any] = []

        self._routes = self._build_routes()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None
        self._cond: asyncio.Condition | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._notify_scheduled = False
        self._tasks: set[asyncio.Task[Any]] = set()

    # ------------------------------------------------------------------ lifecycle
    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the stand-in is not started")
        return self._url

    @property
    def gateway_url(self) -> str:
        return "ws" + self.url[len("http") :] + "/gateway"

    @property
    def sitecustomize_dir(self) -> str:
        return SITECUSTOMIZE_DIR

    def bot_env(self, *, guild_ready_timeout: float | None = None) -> dict[str, str]:
        """Environment variables to add to the bot process so discord.py talks to this stand-in.

        ``guild_ready_timeout`` (optional) shortens discord.py's default 2 s wait between the last
        GUILD_CREATE and ``on_ready`` (only when the bot does not pass its own value).
        """
        existing = os.environ.get("PYTHONPATH")
        path = SITECUSTOMIZE_DIR if not existing else SITECUSTOMIZE_DIR + os.pathsep + existing
        env = {"PYTHONPATH": path, "DISCORD_STANDIN_URL": self.url}
        if guild_ready_timeout is not None:
            env["DISCORD_STANDIN_GUILD_READY_TIMEOUT"] = str(guild_ready_timeout)
        return env

    async def start(self) -> str:
        if self._runner is not None:
            return self.url
        self._loop = asyncio.get_running_loop()
        self._cond = asyncio.Condition()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.port = port
        self._url = f"http://{host}:{port}"
        return self._url

    async def stop(self) -> None:
        if self._runner is None:
            return
        self.gateway.close_all(1001, "Discord stand-in stopping")
        for conn in list(self.gateway.connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(conn.writer), 2)
        for task in list(self._tasks):
            task.cancel()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> DiscordStandin:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------ waiting
    def _changed(self) -> None:
        """State changed: wake every waiter (they re-check their predicates)."""
        if self._loop is None or self._cond is None or self._notify_scheduled:
            return
        self._notify_scheduled = True
        self._spawn(self._notify_all())

    async def _notify_all(self) -> None:
        self._notify_scheduled = False
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def wait_until(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,
        what: str = "condition",
    ) -> Any:
        """Wait until ``predicate()`` is truthy (re-checked on every recorded change); returns its value."""
        if self._cond is None:
            raise RuntimeError("start() the stand-in first")
        cond = self._cond

        async def _inner() -> Any:
            async with cond:
                return await cond.wait_for(predicate)

        try:
            return await asyncio.wait_for(_inner(), timeout)
        except TimeoutError:
            recent = ", ".join(repr(c) for c in self.calls[-8:]) or "none"
            raise TimeoutError(
                f"timed out after {timeout}s waiting for {what}; last REST calls: {recent}"
            ) from None

    async def wait_ready(self, timeout: float = 20.0, count: int = 1) -> None:
        """The bot identified and got READY (+ GUILD_CREATE for its guilds) ``count`` times."""
        await self.wait_until(lambda: self.ready_count >= count, timeout, f"READY #{count}")

    async def wait_for_commands(
        self,
        guild_id: int | None = None,
        timeout: float = 20.0,
        count: int = 1,
    ) -> list[dict[str, Any]]:
        """Wait until the bot has PUT its commands ``count`` times (guild commands, or global with
        ``guild_id=None``); returns the registered commands."""
        await self.wait_until(
            lambda: self.command_puts.get(guild_id, 0) >= count,
            timeout,
            f"command sync #{count} for guild {guild_id}",
        )
        return copy.deepcopy(self.commands.get(guild_id, []))

    async def wait_for_call(self, predicate: Callable[[Call], Any], timeout: float = 10.0) -> Call:
        """First recorded REST call (existing ones included) for which ``predicate(call)`` is true."""

        def find() -> Call | None:
            for call in self.calls:
                if predicate(call):
                    return call
            return None

        return await self.wait_until(find, timeout, "a matching REST call")

    async def wait_for_message(
        self,
        predicate: Callable[[Message], Any],
        timeout: float = 10.0,
        *,
        include_ephemeral: bool = False,
    ) -> Message:
        def find() -> Message | None:
            pools = [self.messages] + ([self.ephemeral_messages] if include_ephemeral else [])
            for pool in pools:
                for msg in pool.values():
                    if predicate(msg):
                        return msg
            return None

        return await self.wait_until(find, timeout, "a matching message")

    # ------------------------------------------------------------------ model setup
    def add_guild(
        self,
        guild_id: int | None = None,
        name: str = "Test Guild",
        *,
        owner_id: int | None = None,
        everyone_permissions: int = P.DEFAULT_EVERYONE_PERMISSIONS,
        bot_permissions: int = P.DEFAULT_BOT_PERMISSIONS,
        bot_member: bool = True,
        commands_scope: bool = True,
    ) -> Guild:
        """``bot_member=False``: a guild the bot was never invited to (no bot member or role; its
        guild, member and channel routes answer 403 50001, the gateway never mentions it).
        ``commands_scope=False``: invited without ``applications.commands`` (the guild command routes
        answer 403 50001). As on Discord, the two are independent."""
        gid = guild_id or self.snowflake()
        if gid in self.guilds:
            raise ValueError(f"guild {gid} exists")
        if owner_id is None:
            owner = User(id=self.snowflake(), username=f"owner-{len(self.guilds) + 1}")
            self.users[owner.id] = owner
            owner_id = owner.id
        guild = Guild(id=gid, name=name, owner_id=owner_id, commands_scope=commands_scope)
        guild.roles[gid] = Role(id=gid, guild_id=gid, name="@everyone", permissions=everyone_permissions)
        if bot_member:
            self._add_bot_member(guild, bot_permissions)
        if owner_id in self.users and owner_id != self.bot_user.id:
            guild.members[owner_id] = Member(guild_id=gid, user=self.users[owner_id])
        self.guilds[gid] = guild
        if self._loop is not None and bot_member:
            for sess in self.gateway.live_sessions():
                if sess.intents & INTENT_GUILDS and sess.owns_guild(gid):
                    self.gateway.dispatch(
                        "GUILD_CREATE", self._guild_create_payload(guild, sess), session=sess
                    )
        return guild

    def _add_bot_member(self, guild: Guild, bot_permissions: int) -> None:
        gid = guild.id
        bot_role = Role(
            id=self.snowflake(),
            guild_id=gid,
            name=self.bot_user.username,
            permissions=bot_permissions,
            position=1,
            managed=True,
            bot_id=self.bot_user.id,
        )
        guild.roles[bot_role.id] = bot_role
        guild.members[self.bot_user.id] = Member(guild_id=gid, user=self.bot_user, roles=[bot_role.id])

    def bot_in_guild(self, guild_id: int | None) -> bool:
        """Whether the bot is a member of that guild (False for an unknown one)."""
        guild = self.guilds.get(guild_id) if guild_id is not None else None
        return guild is not None and guild.has_member(self.bot_user.id)

    def bot_role(self, guild_id: int) -> Role:
        guild = self.guilds[guild_id]
        for role in guild.roles.values():
            if role.bot_id == self.bot_user.id:
                return role
        raise KeyError(guild_id)

    def add_channel(
        self,
        guild_id: int,
        name: str = "general",
        *,
        channel_id: int | None = None,
        type: int = 0,
        topic: str | None = None,
        parent_id: int | None = None,
    ) -> Channel:
        guild = self.guilds[guild_id]
        cid = channel_id or self.snowflake()
        channel = Channel(
            id=cid,
            guild_id=guild_id,
            name=name,
            type=type,
            position=len(guild.channels),
            topic=topic,
            parent_id=parent_id,
        )
        self.channels[cid] = channel
        guild.channels.append(cid)
        if self._loop is not None:
            self.gateway.dispatch(
                "CHANNEL_CREATE", channel.payload(), guild_id=guild_id, intent=INTENT_GUILDS
            )
        return channel

    def add_role(
        self,
        guild_id: int,
        name: str = "role",
        *,
        role_id: int | None = None,
        permissions: int = 0,
        color: int = 0,
    ) -> Role:
        guild = self.guilds[guild_id]
        role = Role(
            id=role_id or self.snowflake(),
            guild_id=guild_id,
            name=name,
            permissions=permissions,
            position=len(guild.roles),
            color=color,
        )
        guild.roles[role.id] = role
        if self._loop is not None:
            self.gateway.dispatch(
                "GUILD_ROLE_CREATE",
                {"guild_id": str(guild_id), "role": role.payload()},
                guild_id=guild_id,
                intent=INTENT_GUILDS,
            )
        return role

    def add_member(
        self,
        guild_id: int,
        username: str = "member",
        *,
        user_id: int | None = None,
        roles: Iterable[int] = (),
        administrator: bool = False,
        nick: str | None = None,
        global_name: str | None = None,
    ) -> Member:
        guild = self.guilds[guild_id]
        uid = user_id or self.snowflake()
        user = self.users.get(uid)
        if user is None:
            user = User(id=uid, username=username, global_name=global_name)
            self.users[uid] = user
        role_ids = [int(r) for r in roles]
        for rid in role_ids:
            if rid not in guild.roles:
                raise KeyError(f"role {rid} is not in guild {guild_id}")
        if administrator:
            admin = next((r for r in guild.roles.values() if r.name == "Administrator"), None)
            if admin is None:
                admin = self.add_role(guild_id, "Administrator", permissions=P.ADMINISTRATOR)
            role_ids.append(admin.id)
        member = Member(guild_id=guild_id, user=user, roles=role_ids, nick=nick)
        guild.members[uid] = member
        if self._loop is not None:
            data = member.payload()
            data["guild_id"] = str(guild_id)
            self.gateway.dispatch("GUILD_MEMBER_ADD", data, guild_id=guild_id, intent=INTENT_GUILD_MEMBERS)
        return member

    def set_member_roles(self, guild_id: int, member_id: int, roles: Iterable[int]) -> Member:
        member = self.guilds[guild_id].members[member_id]
        member.roles = [int(r) for r in roles]
        if self._loop is not None:
            data = member.payload()
            data["guild_id"] = str(guild_id)
            self.gateway.dispatch("GUILD_MEMBER_UPDATE", data, guild_id=guild_id, intent=INTENT_GUILD_MEMBERS)
        return member

    def set_permissions(self, channel_id: int, target_id: int | None = None, **perms: bool | None) -> Channel:
        """Channel overwrite for ``target_id`` (default: the bot member).

        True allows, False denies, None clears the permission in the overwrite.
        """
        channel = self.channels[channel_id]
        target = target_id or self.bot_user.id
        guild = self.guilds[channel.guild_id] if channel.guild_id else None
        kind = 0 if guild is not None and target in guild.roles else 1
        allow, deny, touched = P.overwrite_from_kwargs(perms)
        _, old_allow, old_deny = channel.overwrites.get(target, (kind, 0, 0))
        new_allow = (old_allow & ~touched) | allow
        new_deny = (old_deny & ~touched) | deny
        if new_allow or new_deny:
            channel.overwrites[target] = (kind, new_allow, new_deny)
        else:
            channel.overwrites.pop(target, None)
        if self._loop is not None and guild is not None:
            self.gateway.dispatch(
                "CHANNEL_UPDATE", channel.payload(), guild_id=guild.id, intent=INTENT_GUILDS
            )
        return channel

    def set_role_permissions(self, role_id: int, guild_id: int | None = None, **perms: bool) -> Role:
        guild = (
            self.guilds[guild_id] if guild_id else next(g for g in self.guilds.values() if role_id in g.roles)
        )
        role = guild.roles[role_id]
        allow, deny, _ = P.overwrite_from_kwargs(perms)
        role.permissions = (role.permissions | allow) & ~deny
        if self._loop is not None:
            self.gateway.dispatch(
                "GUILD_ROLE_UPDATE",
                {"guild_id": str(guild.id), "role": role.payload()},
                guild_id=guild.id,
                intent=INTENT_GUILDS,
            )
        return role

    def set_bot_permissions(self, guild_id: int, **perms: bool) -> Role:
        """Change the bot's managed role in a guild (guild-wide permissions)."""
        return self.set_role_permissions(self.bot_role(guild_id).id, guild_id, **perms)

    def delete_message(self, channel_id: int, message_id: int) -> Message:
        """Delete as a moderator would; later calls on it get 404 10008; MESSAGE_DELETE is dispatched."""
        msg = self.messages.get(message_id)
        if msg is None or msg.channel_id != channel_id:
            raise KeyError(f"no message {message_id} in channel {channel_id}")
        self._mark_deleted(msg)
        return msg

    def delete_messages(self, channel_id: int, message_ids: Iterable[int]) -> list[Message]:
        """A moderator bulk-deletes messages: MESSAGE_DELETE_BULK is dispatched."""
        msgs = []
        for message_id in message_ids:
            msg = self.messages.get(message_id)
            if msg is None or msg.channel_id != channel_id:
                raise KeyError(f"no message {message_id} in channel {channel_id}")
            msgs.append(msg)
        for msg in msgs:
            msg.deleted = True
        channel = self.channels[channel_id]
        if self._loop is not None and channel.guild_id is not None:
            data = {
                "ids": [str(m.id) for m in msgs],
                "channel_id": str(channel_id),
                "guild_id": str(channel.guild_id),
            }
            self.gateway.dispatch(
                "MESSAGE_DELETE_BULK", data, guild_id=channel.guild_id, intent=INTENT_GUILD_MESSAGES
            )
        self._changed()
        return msgs

    def delete_channel(self, channel_id: int) -> Channel:
        """Delete a channel; later calls get 404 10003; CHANNEL_DELETE is dispatched."""
        channel = self.channels[channel_id]
        channel.deleted = True
        if channel.guild_id in self.guilds:
            guild = self.guilds[channel.guild_id]
            if channel_id in guild.channels:
                guild.channels.remove(channel_id)
            if self._loop is not None:
                self.gateway.dispatch(
                    "CHANNEL_DELETE", channel.payload(), guild_id=guild.id, intent=INTENT_GUILDS
                )
        self._changed()
        return channel

    def post_user_message(self, channel_id: int, member_id: int, content: str) -> Message:
        """A human posts in a channel (MESSAGE_CREATE; content only with the MESSAGE_CONTENT intent)."""
        channel = self._channel(channel_id)
        msg = Message(
            id=self.snowflake(),
            channel_id=channel_id,
            guild_id=channel.guild_id,
            author_id=member_id,
            content=content,
        )
        self.messages[msg.id] = msg
        channel.last_message_id = msg.id
        self._dispatch_message("MESSAGE_CREATE", msg)
        self._changed()
        return msg

    def fail_next(
        self,
        route: str,
        status: int,
        count: int = 1,
        *,
        retry_after: float = 0.05,
        body: Any = None,
        headers: dict[str, str] | None = None,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``count`` calls of ``route`` with ``status`` instead of handling them.

        ``route`` is discord.py's ``Route.key``, e.g. "PATCH /channels/{channel_id}/messages/{message_id}".
        429 comes in Discord's real shape (Via header, X-RateLimit-*, ``retry_after``) so discord.py
        sleeps and retries; 500/502/504 are retried by discord.py too (after 1 + 2n s); others raise.
        """
        route = self.route_key(route)
        self._fail_rules.append(
            _FailRule(route, status, count, retry_after, body, dict(headers or {}), is_global)
        )

    def delay_next(self, route: str, seconds: float, count: int = 1) -> None:
        """Answer the next ``count`` calls of ``route`` only after ``seconds`` (a slow Discord)."""
        self._delays.append([self.route_key(route), seconds, count])

    def channel_messages(self, channel_id: int, *, include_deleted: bool = False) -> list[Message]:
        return sorted(
            (
                m
                for m in self.messages.values()
                if m.channel_id == channel_id and (include_deleted or not m.deleted) and not m.ephemeral
            ),
            key=lambda m: m.id,
        )

    def get_message(self, message_id: int) -> Message | None:
        return self.messages.get(message_id) or self.ephemeral_messages.get(message_id)

    def route_key(self, route: str) -> str:
        """The stand-in's template for ``route`` (as discord.py's ``Route.key``); parameter names may
        differ: "POST /interactions/{id}/{token}/callback" gives
        "POST /interactions/{webhook_id}/{webhook_token}/callback"."""
        wanted = _normalize_route(route)
        for known in self._routes:
            if _normalize_route(known.key) == wanted:
                return known.key
        raise ValueError(f"unknown route template {route!r}; known: {sorted(r.key for r in self._routes)}")

    def calls_to(self, route: str) -> list[Call]:
        """Recorded calls of a route template (parameter names may differ, see :meth:`route_key`)."""
        key = self.route_key(route)
        return [c for c in self.calls if c.route == key]

    # gateway control
    def gateway_reconnect(self) -> int:
        """Send op 7 RECONNECT: the client reconnects and RESUMEs."""
        return self.gateway.send_op(OP_RECONNECT)

    def gateway_invalidate_session(self, resumable: bool = False) -> int:
        """Send op 9 INVALID_SESSION; with ``resumable=False`` the client identifies again."""
        sent = self.gateway.send_op(OP_INVALID_SESSION, resumable)
        if not resumable:
            for sess in self.gateway.connected_sessions():
                sess.invalidated = True
        return sent

    def gateway_close(self, code: int = 4000, message: str = "") -> None:
        """Close every gateway socket with ``code`` (4000: client may resume; 4004 etc.: fatal)."""
        self.gateway.close_all(code, message)

    # ------------------------------------------------------------------ interactions (injection)
    def _session_for(self, guild_id: int | None) -> GatewaySession:
        for sess in self.gateway.connected_sessions():
            if sess.owns_guild(guild_id) or guild_id not in self.guilds:
                return sess
        raise RuntimeError("the bot is not connected to the gateway (no identified session)")

    def _find_command(self, guild_id: int | None, name: str, kind: int = 1) -> dict[str, Any] | None:
        """The guild's command, else the global one, else (a spoofed interaction from a guild the
        command is not registered in) the same-named command of any other guild."""
        scopes: list[int | None] = [guild_id, None] if guild_id is not None else [None]
        scopes += [g for g in self.commands if g not in scopes]
        for scope in scopes:
            for cmd in self.commands.get(scope, []):
                if cmd["name"] == name and cmd.get("type", 1) == kind:
                    return cmd
        return None

    def _member_permissions(self, guild: Guild, member: Member, channel: Channel | None) -> int:
        base = P.compute_base(
            guild.everyone.permissions,
            (guild.roles[r].permissions for r in member.roles if r in guild.roles),
            owner=member.id == guild.owner_id,
        )
        if channel is None:
            return base
        return P.apply_overwrites(
            base,
            guild_id=guild.id,
            member_id=member.id,
            member_roles=member.roles,
            overwrites=channel.overwrites,
        )

    def bot_permissions(self, channel_id: int) -> int:
        channel = self.channels[channel_id]
        if channel.guild_id is None:
            return P.ALL_PERMISSIONS & ~P.ADMINISTRATOR
        guild = self.guilds[channel.guild_id]
        if not guild.has_member(self.bot_user.id):
            return 0  # not a member: it sees nothing there
        return self._member_permissions(guild, guild.members[self.bot_user.id], channel)

    def _user(self, user_id: int) -> User:
        user = self.users.get(user_id)
        if user is None:
            user = User(id=user_id, username=f"user{user_id}")
            self.users[user_id] = user
        return user

    def _default_member(self, guild_id: int | None) -> int:
        guild = self.guilds.get(guild_id) if guild_id else None
        if guild is not None:
            for member in guild.members.values():
                if not member.user.bot and member.id != guild.owner_id:
                    return member.id
            for member in guild.members.values():
                if not member.user.bot:
                    return member.id
        raise ValueError("member_id is required")

    def _interaction_base(
        self, kind: int, guild_id: int | None, channel_id: int | None, user_id: int, locale: str
    ) -> tuple[dict[str, Any], InteractionRecord]:
        iid = self.snowflake()
        token = "aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48)
        guild = self.guilds.get(guild_id) if guild_id is not None else None
        channel = self.channels.get(channel_id) if channel_id is not None else None
        user = self._user(user_id)
        payload: dict[str, Any] = {
            "id": str(iid),
            "application_id": str(self.application_id),
            "type": kind,
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": self.max_file_size,
        }
        member_perms = 0
        if guild_id is not None:
            payload["guild_id"] = str(guild_id)
            payload["guild_locale"] = guild.preferred_locale if guild else "en-US"
            payload["guild"] = {"id": str(guild_id), "locale": payload["guild_locale"], "features": []}
            payload["context"] = 0
            if guild is not None:
                member = guild.members.get(user_id)
                if member is None:
                    raise ValueError(
                        f"user {user_id} is not a member of guild {guild_id}; add_member() first"
                    )
                member_perms = self._member_permissions(guild, member, channel)
                bot = guild.members.get(self.bot_user.id)
                app_perms = (
                    self._member_permissions(guild, bot, channel)
                    if bot is not None
                    else P.perms("embed_links", "attach_files", "mention_everyone", "use_external_emojis")
                )
                mdata = member.payload()
                payload["authorizing_integration_owners"] = {"0": str(guild_id)}
            else:
                # A guild the bot is not in (user-installed app): minimal member data.
                member_perms = P.DEFAULT_EVERYONE_PERMISSIONS
                app_perms = P.perms("embed_links", "attach_files", "mention_everyone", "use_external_emojis")
                mdata = Member(guild_id=guild_id, user=user).payload()
                payload["authorizing_integration_owners"] = {"1": str(user_id)}
            mdata["permissions"] = str(member_perms)
            payload["member"] = mdata
            payload["app_permissions"] = str(app_perms)
        else:
            payload["user"] = user.payload()
            payload["context"] = 1
            payload["authorizing_integration_owners"] = {"1": str(user_id)}
            payload["app_permissions"] = str(
                P.perms("embed_links", "attach_files", "view_channel", "send_messages")
            )
        if channel_id is not None:
            if channel is not None:
                cdata = channel.payload(self.users)
            else:
                cdata = {
                    "id": str(channel_id),
                    "type": 0 if guild_id is not None else 1,
                    "name": "unknown-channel",
                    "position": 0,
                    "permission_overwrites": [],
                    "nsfw": False,
                    "flags": 0,
                }
                if guild_id is not None:
                    cdata["guild_id"] = str(guild_id)
            if guild_id is not None:
                cdata["permissions"] = str(member_perms)
            payload["channel"] = cdata
            payload["channel_id"] = str(channel_id)
        record = InteractionRecord(
            id=iid,
            token=token,
            type=kind,
            guild_id=guild_id,
            channel_id=channel_id,
            user_id=user_id,
            data={},
            payload=payload,
            _wait=self.wait_until,
        )
        return payload, record

    async def _inject(self, payload: dict[str, Any], record: InteractionRecord) -> InteractionRecord:
        session = self._session_for(record.guild_id)
        self.interactions[record.id] = record
        self._interactions_by_token[record.token] = record
        record.created_at = time.monotonic()
        record.webhook_token_expires_at = record.created_at + self.webhook_token_lifetime
        futures = self.gateway.dispatch("INTERACTION_CREATE", payload, session=session)
        if futures:
            sent_at = await asyncio.wait_for(futures[0], 5)
            if sent_at > 0:  # else the socket just closed: the event waits in the session for a RESUME
                record.created_at = sent_at
        self._changed()
        return record

    def _build_options(self, defs: list[dict[str, Any]], values: dict[str, Any]) -> tuple[list[dict], dict]:
        resolved: dict[str, dict[str, Any]] = {}
        out = []
        by_name = {d["name"]: d for d in defs}
        for name, value in values.items():
            odef = by_name.get(name)
            if odef is None:
                raise ValueError(f"command has no option {name!r} (options: {sorted(by_name)})")
            kind = odef["type"]
            option: dict[str, Any] = {"name": name, "type": kind}
            if kind in (6, 7, 8, 9):
                target = int(getattr(value, "id", value))
                option["value"] = str(target)
                self._resolve_into(resolved, kind, target)
            elif kind == 4:
                option["value"] = int(value)
            elif kind == 10:
                option["value"] = float(value)
            elif kind == 5:
                option["value"] = bool(value)
            else:
                option["value"] = value if isinstance(value, str) else str(value)
            out.append(option)
        return out, resolved

    def _resolve_into(self, resolved: dict[str, dict[str, Any]], kind: int, target: int) -> None:
        if target in self.channels and kind in (7, 9):
            ch = self.channels[target]
            data = ch.payload(self.users)
            data["permissions"] = str(self.bot_permissions(target)) if ch.guild_id else "0"
            resolved.setdefault("channels", {})[str(target)] = data
            return
        for guild in self.guilds.values():
            if target in guild.roles and kind in (8, 9):
                resolved.setdefault("roles", {})[str(target)] = guild.roles[target].payload()
                return
        if target in self.users and kind in (6, 9):
            resolved.setdefault("users", {})[str(target)] = self.users[target].payload()
            for guild in self.guilds.values():
                if target in guild.members:
                    mdata = guild.members[target].payload(with_user=False)
                    mdata["permissions"] = str(self._member_permissions(guild, guild.members[target], None))
                    resolved.setdefault("members", {})[str(target)] = mdata
                    break
            return
        raise ValueError(f"cannot resolve option target {target}")

    def _command_data(
        self, guild_id: int | None, name: str, options: Any, kind: int = 1, focused: str | None = None
    ) -> dict[str, Any]:
        parts = name.split()
        cmd = self._find_command(guild_id, parts[0], kind)
        if cmd is None:
            raise LookupError(f"command {parts[0]!r} is not registered for guild {guild_id} nor globally")
        data: dict[str, Any] = {"id": cmd["id"], "name": parts[0], "type": kind}
        if cmd.get("guild_id"):
            data["guild_id"] = cmd["guild_id"]
        if isinstance(options, list):
            data["options"] = options
            return data
        defs = cmd.get("options") or []
        chain: list[dict[str, Any]] = []
        for sub in parts[1:]:
            sdef = next((d for d in defs if d["name"] == sub and d["type"] in (1, 2)), None)
            if sdef is None:
                raise LookupError(f"{name!r}: no subcommand {sub!r}")
            chain.append({"name": sub, "type": sdef["type"], "options": []})
            defs = sdef.get("options") or []
        built, resolved = self._build_options(defs, dict(options or {}))
        if focused is not None:
            for opt in built:
                if opt["name"] == focused:
                    opt["focused"] = True
                    opt["type"] = 3 if not isinstance(opt["value"], (int, float)) else opt["type"]
                    opt["value"] = str(opt["value"])
        leaf = built
        for node in reversed(chain):
            node["options"] = leaf
            leaf = [node]
        if leaf:
            data["options"] = leaf
        if resolved:
            data["resolved"] = resolved
        return data

    async def slash_command(
        self,
        guild_id: int | None,
        channel_id: int | None,
        member_id: int,
        name: str,
        options: dict[str, Any] | list[dict[str, Any]] | None = None,
        *,
        locale: str = "en-US",
    ) -> InteractionRecord:
        """Inject a chat-input command; ``name`` may be "group sub".

        ``options`` is ``{name: value}`` (typed from the registered command) or a raw option list.
        """
        payload, record = self._interaction_base(INTERACTION_COMMAND, guild_id, channel_id, member_id, locale)
        payload["data"] = record.data = self._command_data(guild_id, name, options)
        return await self._inject(payload, record)

    async def autocomplete(
        self,
        guild_id: int | None,
        channel_id: int | None,
        member_id: int,
        name: str,
        options: dict[str, Any],
        focused: str,
        *,
        locale: str = "en-US",
    ) -> InteractionRecord:
        payload, record = self._interaction_base(
            INTERACTION_AUTOCOMPLETE, guild_id, channel_id, member_id, locale
        )
        payload["data"] = record.data = self._command_data(guild_id, name, options, focused=focused)
        return await self._inject(payload, record)

    async def context_menu(
        self,
        guild_id: int | None,
        channel_id: int | None,
        member_id: int,
        name: str,
        target_id: int,
        *,
        kind: int = 2,
    ) -> InteractionRecord:
        """User (kind 2) or message (kind 3) context-menu command."""
        payload, record = self._interaction_base(
            INTERACTION_COMMAND, guild_id, channel_id, member_id, "en-US"
        )
        data = self._command_data(guild_id, name, [], kind=kind)
        data["target_id"] = str(target_id)
        resolved: dict[str, dict[str, Any]] = {}
        if kind == 2:
            self._resolve_into(resolved, 6, target_id)
        else:
            msg = self.get_message(target_id)
            if msg is None:
                raise KeyError(target_id)
            resolved["messages"] = {str(target_id): self.message_payload(msg)}
        data["resolved"] = resolved
        payload["data"] = record.data = data
        return await self._inject(payload, record)

    def find_component(
        self,
        message_id: int,
        *,
        custom_id: str | None = None,
        label: str | None = None,
        type: int | None = None,
    ) -> dict[str, Any]:
        """The component of a stored message with this custom_id / label / type (exactly one must match)."""
        msg = self.get_message(message_id)
        if msg is None or msg.deleted:
            raise KeyError(f"message {message_id} does not exist (or was deleted)")
        found = [
            comp
            for comp in _walk_components(msg.components)
            if comp.get("type") not in (1, 9, 17, 18)
            and (custom_id is None or comp.get("custom_id") == custom_id)
            and (label is None or comp.get("label") == label)
            and (type is None or comp.get("type") == type)
        ]
        if len(found) != 1:
            have = [
                (c.get("type"), c.get("custom_id"), c.get("label"))
                for c in _walk_components(msg.components)
                if c.get("type") not in (1, 9, 17, 18)
            ]
            wanted = {"custom_id": custom_id, "label": label, "type": type}
            raise ValueError(f"{len(found)} components of message {message_id} match {wanted}; it has {have}")
        return found[0]

    def _component_target(
        self, message_id: int, custom_id: str | None, label: str | None, kinds: tuple[int, ...]
    ) -> tuple[Message, dict[str, Any]]:
        kind = kinds[0] if custom_id is None and label is None else None
        comp = self.find_component(message_id, custom_id=custom_id, label=label, type=kind)
        if comp.get("type") not in kinds:
            raise ValueError(
                f"component {comp.get('custom_id')!r} has type {comp.get('type')}, expected {kinds}"
            )
        if comp.get("disabled"):
            raise ValueError(f"component {comp.get('custom_id')!r} is disabled: a user cannot use it")
        if not comp.get("custom_id"):
            raise ValueError("link/premium buttons do not send interactions")
        msg = self.get_message(message_id)
        assert msg is not None
        return msg, comp

    async def _component_interaction(
        self,
        msg: Message,
        custom_id: str,
        component_type: int,
        values: list[str] | None,
        guild_id: int | None,
        channel_id: int | None,
        member_id: int | None,
    ) -> InteractionRecord:
        guild_id = guild_id if guild_id is not None else msg.guild_id
        channel_id = channel_id if channel_id is not None else msg.channel_id
        if member_id is None:
            member_id = self._default_member(guild_id)
        payload, record = self._interaction_base(
            INTERACTION_COMPONENT, guild_id, channel_id, member_id, "en-US"
        )
        data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = list(values)
        payload["data"] = record.data = data
        payload["message"] = self.message_payload(msg)
        record.source_message_id = msg.id
        return await self._inject(payload, record)

    def _message_for_click(self, message_id: int) -> Message:
        msg = self.get_message(message_id)
        if msg is None:
            raise KeyError(f"message {message_id} is not in the stand-in's store")
        return msg

    async def component_click(
        self,
        message_id: int,
        custom_id: str | None = None,
        *,
        label: str | None = None,
        guild_id: int | None = None,
        channel_id: int | None = None,
        member_id: int | None = None,
        check: bool = True,
    ) -> InteractionRecord:
        """A user clicks a button (component_type 2) on a stored message (channel or ephemeral).

        Give the button's ``custom_id``, or ``label=`` for buttons with generated custom ids.
        ``check`` refuses what a user could not do (no such button, disabled, deleted message).
        ``guild_id``/``channel_id`` default to the message's; ``member_id`` to the guild's first member.
        """
        if check:
            msg, comp = self._component_target(message_id, custom_id, label, (2,))
            custom_id = comp["custom_id"]
        else:
            msg = self._message_for_click(message_id)
        if custom_id is None:
            raise ValueError("custom_id is required with check=False")
        return await self._component_interaction(msg, custom_id, 2, None, guild_id, channel_id, member_id)

    async def select_choice(
        self,
        message_id: int,
        custom_id: str | None,
        values: list[str],
        *,
        guild_id: int | None = None,
        channel_id: int | None = None,
        member_id: int | None = None,
        check: bool = True,
    ) -> InteractionRecord:
        """A user picks ``values`` in a string select (component_type 3); ``custom_id=None``: the only one."""
        if check:
            msg, comp = self._component_target(message_id, custom_id, None, (3,))
            custom_id = comp["custom_id"]
            allowed = {o.get("value") for o in comp.get("options", [])}
            unknown = [v for v in values if v not in allowed]
            if unknown:
                raise ValueError(f"values {unknown} are not options of {custom_id!r}: {sorted(allowed)}")
            low, high = comp.get("min_values", 1), comp.get("max_values", 1)
            if not low <= len(values) <= high:
                raise ValueError(f"{custom_id!r} takes {low}..{high} values, got {len(values)}")
        else:
            msg = self._message_for_click(message_id)
        if custom_id is None:
            raise ValueError("custom_id is required with check=False")
        return await self._component_interaction(msg, custom_id, 3, values, guild_id, channel_id, member_id)

    async def submit_modal(
        self,
        interaction: InteractionRecord,
        values: dict[str, str | list[str]],
        *,
        member_id: int | None = None,
    ) -> InteractionRecord:
        """Submit the modal the bot opened (callback type 9) on ``interaction`` with text/select values."""
        modal = interaction.modal
        if modal is None:
            raise ValueError(f"interaction {interaction.id} did not open a modal")

        def fill(comp: dict[str, Any]) -> dict[str, Any]:
            out: dict[str, Any] = {"type": comp.get("type")}
            if "id" in comp:
                out["id"] = comp["id"]
            if comp.get("type") == 1:
                out["components"] = [fill(c) for c in comp.get("components", [])]
            elif comp.get("type") == 18:
                out["component"] = fill(comp["component"])
            elif comp.get("custom_id") is not None:
                out["custom_id"] = comp["custom_id"]
                value = values.get(comp["custom_id"], comp.get("value", ""))
                if isinstance(value, list):
                    out["values"] = value
                else:
                    out["value"] = value
            return out

        payload, record = self._interaction_base(
            INTERACTION_MODAL_SUBMIT,
            interaction.guild_id,
            interaction.channel_id,
            member_id or interaction.user_id,
            "en-US",
        )
        data = {"custom_id": modal["custom_id"], "components": [fill(c) for c in modal.get("components", [])]}
        payload["data"] = record.data = data
        if interaction.source_message_id is not None:
            src = self.get_message(interaction.source_message_id)
            if src is not None:
                payload["message"] = self.message_payload(src)
                record.source_message_id = src.id
        return await self._inject(payload, record)

    # ------------------------------------------------------------------ payload builders
    def _user_payload_me(self) -> dict[str, Any]:
        data = self.bot_user.payload()
        data.update(verified=True, mfa_enabled=False, email=None, locale="en-US", bio="")
        return data

    def _application_flags(self) -> int:
        flags = 0
        if self.privileged_intents & 1 << 8:
            flags |= _APP_FLAG_PRESENCE
        if self.privileged_intents & 1 << 1:
            flags |= _APP_FLAG_MEMBERS
        if self.privileged_intents & 1 << 15:
            flags |= _APP_FLAG_CONTENT
        return flags

    def _ready_payload(self, session: GatewaySession) -> dict[str, Any]:
        data: dict[str, Any] = {
            "v": 10,
            "user": self._user_payload_me(),
            "guilds": [
                {"id": str(g), "unavailable": True}
                for g in self.guilds
                if session.owns_guild(g) and self.bot_in_guild(g)
            ],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": str(self.application_id), "flags": self._application_flags()},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["local"],
            "user_settings": {},
            "auth": {},
            "_trace": ["discord-standin"],
        }
        if session.identify.get("shard") is not None:
            data["shard"] = list(session.shard)
        return data

    def _guild_payload(self, guild: Guild) -> dict[str, Any]:
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "icon_hash": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "region": None,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "widget_enabled": False,
            "widget_channel_id": None,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": [r.payload() for r in guild.roles.values()],
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_presences": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "preferred_locale": guild.preferred_locale,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "nsfw_level": 0,
            "nsfw": False,
            "premium_progress_bar_enabled": False,
            "incidents_data": None,
        }

    def _guild_create_payload(self, guild: Guild, session: GatewaySession) -> dict[str, Any]:
        data = self._guild_payload(guild)
        members = list(guild.members.values())
        if not session.intents & INTENT_GUILD_MEMBERS:
            members = [m for m in members if m.id == self.bot_user.id]
        data.update(
            joined_at=iso(guild.members[self.bot_user.id].joined_at),
            large=len(guild.members) >= 250,
            unavailable=False,
            member_count=len(guild.members),
            voice_states=[],
            members=[m.payload() for m in members],
            channels=[self.channels[c].payload() for c in guild.channels if not self.channels[c].deleted],
            threads=[],
            presences=[],
            stage_instances=[],
            guild_scheduled_events=[],
            soundboard_sounds=[],
            embedded_activities=[],
            lazy=True,
        )
        return data

    def _member_chunk(
        self, guild_id: int, query: Any, limit: int, user_ids: list[Any] | None
    ) -> tuple[list[dict[str, Any]], list[str]]:
        guild = self.guilds.get(guild_id)
        if guild is None:
            return [], []
        members = list(guild.members.values())
        not_found: list[str] = []
        if user_ids:
            wanted = {int(u) for u in user_ids}
            not_found = [str(u) for u in wanted if u not in guild.members]
            members = [m for m in members if m.id in wanted]
        elif query:
            q = str(query).lower()
            members = [m for m in members if m.user.username.lower().startswith(q)]
        if limit:
            members = members[:limit]
        return [m.payload() for m in members], not_found

    def message_payload(self, msg: Message, *, gateway: bool = False) -> dict[str, Any]:
        author = self.users.get(msg.author_id) or self._user(msg.author_id)
        data: dict[str, Any] = {
            "id": str(msg.id),
            "channel_id": str(msg.channel_id),
            "type": msg.type,
            "content": msg.content,
            "author": author.payload(),
            "timestamp": iso(msg.created_at),
            "edited_timestamp": iso(msg.edited_at),
            "tts": msg.tts,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [a.payload() for a in msg.attachments],
            "embeds": copy.deepcopy(msg.embeds),
            "components": copy.deepcopy(msg.components),
            "pinned": False,
            "flags": msg.flags,
        }
        if msg.webhook_id is not None:
            data["webhook_id"] = str(msg.webhook_id)
        if msg.application_id is not None:
            data["application_id"] = str(msg.application_id)
        if msg.interaction_metadata is not None:
            data["interaction_metadata"] = copy.deepcopy(msg.interaction_metadata)
        if msg.message_reference is not None:
            data["message_reference"] = copy.deepcopy(msg.message_reference)
        if msg.nonce is not None:
            data["nonce"] = msg.nonce
        if msg.poll is not None:
            data["poll"] = copy.deepcopy(msg.poll)
        if gateway and msg.guild_id is not None:
            data["guild_id"] = str(msg.guild_id)
            guild = self.guilds.get(msg.guild_id)
            if guild is not None and msg.author_id in guild.members and msg.webhook_id is None:
                data["member"] = guild.members[msg.author_id].payload(with_user=False)
        return data

    def _dispatch_message(self, event: str, msg: Message) -> None:
        if msg.ephemeral or self._loop is None:
            return
        intent = INTENT_GUILD_MESSAGES if msg.guild_id is not None else INTENT_DIRECT_MESSAGES
        if event == "MESSAGE_DELETE":
            data: dict[str, Any] = {"id": str(msg.id), "channel_id": str(msg.channel_id)}
            if msg.guild_id is not None:
                data["guild_id"] = str(msg.guild_id)
            self.gateway.dispatch(event, data, guild_id=msg.guild_id, intent=intent)
            return
        payload = self.message_payload(msg, gateway=True)
        for sess in self.gateway.live_sessions():
            if not sess.intents & intent or (msg.guild_id is not None and not sess.owns_guild(msg.guild_id)):
                continue
            data = payload
            own = msg.author_id == self.bot_user.id
            if not own and not sess.intents & INTENT_MESSAGE_CONTENT:
                data = dict(payload, content="", embeds=[], attachments=[], components=[])
            self.gateway.dispatch(event, data, session=sess)

    def _mark_deleted(self, msg: Message) -> None:
        msg.deleted = True
        self._dispatch_message("MESSAGE_DELETE", msg)
        self._changed()

    # ------------------------------------------------------------------ HTTP plumbing
    def _build_routes(self) -> list[_Route]:
        table = [
            ("GET", "/users/@me", "get_me", True),
            ("GET", "/users/@me/guilds", "get_my_guilds", True),
            ("POST", "/users/@me/channels", "create_dm", True),
            ("GET", "/users/{user_id}", "get_user", True),
            ("GET", "/oauth2/applications/@me", "get_application", True),
            ("GET", "/applications/@me", "get_application", True),
            ("GET", "/gateway", "get_gateway", False),
            ("GET", "/gateway/bot", "get_gateway_bot", True),
            ("GET", "/applications/{application_id}/commands", "get_commands", True),
            ("PUT", "/applications/{application_id}/commands", "put_commands", True),
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", "get_commands", True),
            ("PUT", "/applications/{application_id}/guilds/{guild_id}/commands", "put_commands", True),
            ("POST", "/interactions/{webhook_id}/{webhook_token}/callback", "interaction_callback", False),
            ("POST", "/webhooks/{webhook_id}/{webhook_token}", "execute_webhook", False),
            ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", "webhook_message", False),
            ("PATCH", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", "webhook_message", False),
            ("DELETE", "/webhooks/{webhook_id}/{webhook_token}/messages/@original", "webhook_message", False),
            ("GET", "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}", "webhook_message", False),
            (
                "PATCH",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                "webhook_message",
                False,
            ),
            (
                "DELETE",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                "webhook_message",
                False,
            ),
            ("GET", "/channels/{channel_id}", "get_channel", True),
            ("POST", "/channels/{channel_id}/typing", "typing", True),
            ("GET", "/channels/{channel_id}/messages", "list_messages", True),
            ("POST", "/channels/{channel_id}/messages", "create_message", True),
            ("POST", "/channels/{channel_id}/messages/bulk-delete", "bulk_delete", True),
            ("GET", "/channels/{channel_id}/messages/{message_id}", "get_message_route", True),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", "edit_message", True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", "delete_message_route", True),
            ("GET", "/guilds/{guild_id}", "get_guild", True),
            ("GET", "/guilds/{guild_id}/channels", "get_guild_channels", True),
            ("GET", "/guilds/{guild_id}/roles", "get_guild_roles", True),
            ("GET", "/guilds/{guild_id}/members", "list_members", True),
            ("GET", "/guilds/{guild_id}/members/{user_id}", "get_member", True),
        ]
        return [_Route(m, t, tuple(t.strip("/").split("/")), h, a) for m, t, h, a in table]

    def _match(self, method: str, path: str) -> tuple[_Route | None, dict[str, str], bool]:
        segments = tuple(path.strip("/").split("/"))
        path_matched = False
        best: tuple[_Route | None, dict[str, str]] = (None, {})
        best_score = -1
        for route in self._routes:
            if len(route.parts) != len(segments):
                continue
            params: dict[str, str] = {}
            score = 0
            for tpl, seg in zip(route.parts, segments, strict=True):
                if tpl.startswith("{") and tpl.endswith("}"):
                    if not seg or seg.startswith("@"):
                        break
                    params[tpl[1:-1]] = seg
                elif tpl == seg:
                    score += 1
                else:
                    break
            else:
                path_matched = True
                if route.method == method and score > best_score:
                    best, best_score = (route, params), score
        return best[0], best[1], path_matched

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if path.rstrip("/") in ("/gateway", "") and request.headers.get("Upgrade", "").lower() == "websocket":
            return await self.gateway.handle(request)
        if path.startswith("/cdn/"):
            return await self._handle_cdn(request)
        match = re.match(r"^/api(?:/v(\d+))?(/.*)$", path)
        now = time.monotonic()
        sub = match.group(2) if match else path
        call = Call(
            method=request.method,
            path=sub,
            route=f"{request.method} {sub}",
            params={},
            query=dict(request.query),
            headers=dict(request.headers),
            at=now,
            api_version=int(match.group(1)) if match and match.group(1) else None,
        )
        extra_headers: dict[str, str] = {}
        try:
            if match is None or call.api_version not in (9, 10):
                raise E.not_found_route()
            route, params, path_matched = self._match(request.method, sub)
            if route is None:
                if path_matched:
                    raise DiscordError(405, 0, "405: Method Not Allowed")
                raise E.not_found_route()
            call.route = route.key
            call.params = params
            await self._read_body(request, call)
            delay = self._take_delay(call.route)
            if delay:
                await asyncio.sleep(delay)
            injected = self._take_fail_rule(call)
            if injected is not None:
                call.injected = True
                reply = injected
            else:
                if route.auth and request.headers.get("Authorization") != f"Bot {self.token}":
                    raise E.unauthorized()
                extra_headers, limited = self._rate_limit(call, route)
                reply = limited or self._dispatch_handler(route, call, params)
        except DiscordError as err:
            reply = _Reply(err.status, err.body(), err.headers)
        except Exception as exc:  # a bug in the stand-in: answer 500 but make it visible
            reply = _Reply(500, {"message": f"stand-in error: {exc!r}", "code": 0})
            self.internal_errors.append(exc)
        reply.headers = {**extra_headers, **reply.headers}
        return self._finish(call, reply)

    def _finish(self, call: Call, reply: _Reply) -> web.StreamResponse:
        call.status = reply.status
        call.response = reply.body
        call.finished_at = time.monotonic()
        self.calls.append(call)
        if reply.status in (404, 405) and isinstance(reply.body, dict) and reply.body.get("code") == 0:
            self.unknown_calls.append(call)
        self._changed()
        if reply.status == 204 or reply.body is None:
            return web.Response(status=reply.status, headers=reply.headers)
        if isinstance(reply.body, bytes | str):
            raw = reply.body.encode() if isinstance(reply.body, str) else reply.body
            headers = {"Content-Type": "text/html", **reply.headers}
            return web.Response(status=reply.status, body=raw, headers=headers)
        return _json_response(reply.status, reply.body, reply.headers)

    async def _read_body(self, request: web.Request, call: Call) -> None:
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/"):
            reader = await request.multipart()
            index = 0
            while True:
                part = await reader.next()
                if part is None:
                    break
                if part.name == "payload_json" and part.filename is None:
                    text = await part.text()
                    try:
                        call.json = json.loads(text)
                    except ValueError:
                        raise E.invalid_json() from None
                    continue
                data = await part.read(decode=False)
                if (
                    part.filename is None
                    and part.name != "file"
                    and not (part.name or "").startswith("files")
                ):
                    continue
                name = part.name or f"files[{index}]"
                call.files.append(
                    UploadedFile(
                        field=name,
                        filename=part.filename or name,
                        data=bytes(data),
                        content_type=part.headers.get("Content-Type"),
                    )
                )
                index += 1
            return
        raw = await request.read()
        if raw:
            try:
                call.json = json.loads(raw)
            except ValueError:
                raise E.invalid_json() from None

    def _take_delay(self, route: str) -> float:
        for rule in self._delays:
            if rule[0] == route and rule[2] > 0:
                rule[2] -= 1
                if rule[2] == 0:
                    self._delays.remove(rule)
                return float(rule[1])
        return 0.0

    def _take_fail_rule(self, call: Call) -> _Reply | None:
        for rule in self._fail_rules:
            if rule.route == call.route and rule.count > 0:
                rule.count -= 1
                if rule.count == 0:
                    self._fail_rules.remove(rule)
                return self._fail_reply(rule, call)
        return None

    def _fail_reply(self, rule: _FailRule, call: Call) -> _Reply:
        status = rule.status
        headers = dict(rule.headers)
        if status == 429:
            body = rule.body or {
                "message": "You are being rate limited.",
                "retry_after": rule.retry_after,
                "global": rule.is_global,
            }
            headers = {
                "Retry-After": str(max(1, math.ceil(rule.retry_after))),
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + rule.retry_after:.3f}",
                "X-RateLimit-Reset-After": f"{rule.retry_after:.3f}",
                "X-RateLimit-Bucket": self._bucket_hash(call.route),
                "X-RateLimit-Scope": "global" if rule.is_global else "user",
                "Via": "1.1 google",
                **headers,
            }
            if rule.is_global:
                headers["X-RateLimit-Global"] = "true"
                for key in ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Bucket"):
                    headers.pop(key, None)
            return _Reply(429, body, headers)
        if rule.body is not None:
            return _Reply(status, rule.body, headers)
        if status == 502:
            return _Reply(502, "<html><body><h1>502 Bad Gateway</h1></body></html>", headers)
        reasons = {500: "Internal Server Error", 503: "Service Unavailable", 504: "Gateway Timeout"}
        return _Reply(status, {"message": f"{status}: {reasons.get(status, 'Error')}", "code": 0}, headers)

    @staticmethod
    def _bucket_hash(name: str) -> str:
        return hashlib.sha1(name.encode()).hexdigest()[:32]

    def _rate_limit(self, call: Call, route: _Route) -> tuple[dict[str, str], _Reply | None]:
        now = time.monotonic()
        if self.global_rate_limit is not None and route.auth:
            limit, period = self.global_rate_limit
            bucket = self._global_bucket
            if bucket is None or now >= bucket.reset_at:
                bucket = self._global_bucket = _Bucket(limit, period, limit, now + period, "global")
            if bucket.remaining <= 0:
                retry = bucket.reset_at - now
                headers = {
                    "Retry-After": str(max(1, math.ceil(retry))),
                    "X-RateLimit-Global": "true",
                    "X-RateLimit-Scope": "global",
                    "Via": "1.1 google",
                }
                body = {
                    "message": "You are being rate limited.",
                    "retry_after": round(retry, 3),
                    "global": True,
                }
                return {}, _Reply(429, body, headers)
            bucket.remaining -= 1
        spec = self.rate_limits.get(_normalize_route(route.key))
        if spec is None:
            return {}, None
        limit, period = spec[0], spec[1]
        name = str(spec[2]) if len(spec) > 2 else route.key  # type: ignore[misc]
        major = "+".join(call.params[k] for k in _MAJOR_PARAMS if k in call.params)
        key = (name, major)
        bucket = self._buckets.get(key)
        if bucket is None or now >= bucket.reset_at:
            bucket = self._buckets[key] = _Bucket(limit, period, limit, now + period, name)
        reset_after = max(0.0, bucket.reset_at - now)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Reset": f"{time.time() + reset_after:.3f}",
            "X-RateLimit-Reset-After": f"{reset_after:.3f}",
            "X-RateLimit-Bucket": self._bucket_hash(name),
        }
        if bucket.remaining <= 0:
            headers.update(
                {
                    "X-RateLimit-Remaining": "0",
                    "Retry-After": str(max(1, math.ceil(reset_after))),
                    "X-RateLimit-Scope": "user",
                    "Via": "1.1 google",
                }
            )
            body = {
                "message": "You are being rate limited.",
                "retry_after": round(reset_after, 3),
                "global": False,
            }
            return {}, _Reply(429, body, headers)
        bucket.remaining -= 1
        headers["X-RateLimit-Remaining"] = str(bucket.remaining)
        return headers, None

    def _dispatch_handler(self, route: _Route, call: Call, params: dict[str, str]) -> _Reply:
        handler = getattr(self, "_h_" + route.handler)
        result = handler(call, **params)
        if isinstance(result, _Reply):
            return result
        if result is None:
            return _Reply(204)
        return _Reply(200, result)

    async def _handle_cdn(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        call = Call(
            method=request.method,
            path=path,
            route=f"{request.method} {path}",
            params={},
            query=dict(request.query),
            headers=dict(request.headers),
            at=time.monotonic(),
        )
        match = re.match(r"^/cdn/attachments/(\d+)/(\d+)/([^/]+)$", path)
        if match and request.method == "GET":
            call.route = "GET /cdn/attachments/{channel_id}/{attachment_id}/{filename}"
            att_id = int(match.group(2))
            for msg in list(self.messages.values()) + list(self.ephemeral_messages.values()):
                for att in msg.attachments:
                    if att.id == att_id:
                        call.status = 200
                        call.finished_at = time.monotonic()
                        self.calls.append(call)
                        self._changed()
                        return web.Response(
                            body=att.data,
                            headers={"Content-Type": att.content_type or "application/octet-stream"},
                        )
        call.status = 404
        call.finished_at = time.monotonic()
        self.calls.append(call)
        self.unknown_calls.append(call)
        self._changed()
        return web.Response(status=404, body=b"Not Found", headers={"Content-Type": "text/plain"})

    # ------------------------------------------------------------------ lookups & checks
    def _channel(self, channel_id: Any) -> Channel:
        try:
            channel = self.channels.get(int(channel_id))
        except (TypeError, ValueError):
            channel = None
        if channel is None or channel.deleted:
            raise E.unknown("channel")
        return channel

    def _guild(self, guild_id: Any) -> Guild:
        try:
            guild = self.guilds.get(int(guild_id))
        except (TypeError, ValueError):
            guild = None
        if guild is None:
            raise E.unknown("guild")
        if not guild.has_member(self.bot_user.id):
            raise E.missing_access()  # Discord's answer for a guild the bot is not in
        return guild

    def _channel_message(self, channel: Channel, message_id: Any) -> Message:
        try:
            msg = self.messages.get(int(message_id))
        except (TypeError, ValueError):
            msg = None
        if msg is None or msg.deleted or msg.channel_id != channel.id or msg.ephemeral:
            raise E.unknown("message")
        return msg

    def _require(self, channel: Channel, *bits: int, access: bool = True) -> int:
        perms = self.bot_permissions(channel.id)
        if access and not perms & P.VIEW_CHANNEL:
            raise E.missing_access()
        for bit in bits:
            if not perms & bit:
                raise E.missing_permissions()
        return perms

    # ------------------------------------------------------------------ message building
    def _new_attachment(
        self, upload: UploadedFile, channel_id: int, filename: str | None, description: Any
    ) -> Attachment:
        if len(upload.data) > self.max_file_size:
            raise E.too_large()
        name = filename or upload.filename
        ctype = upload.content_type
        if not ctype or ctype == "application/octet-stream":
            guessed = mimetypes.guess_type(name)[0]
            ctype = guessed or ctype
        aid = self.snowflake()
        url = f"{self.url}/cdn/attachments/{channel_id}/{aid}/{name}"
        att = Attachment(
            id=aid,
            filename=name,
            data=upload.data,
            content_type=ctype,
            url=url,
            proxy_url=url + "?proxy=1",
            description=description if isinstance(description, str) else None,
        )
        size = _png_size(upload.data)
        if size:
            att.width, att.height = size
        return att

    def _build_attachments(
        self, payload: dict[str, Any], files: list[UploadedFile], existing: list[Attachment], channel_id: int
    ) -> list[Attachment] | None:
        """New attachment list, or None when the payload leaves attachments untouched."""
        by_index: dict[int, UploadedFile] = {}
        for order, upload in enumerate(files):
            m = re.match(r"^files?\[?(\d+)\]?$", upload.field)
            by_index[int(m.group(1)) if m else order] = upload
        listed = payload.get("attachments")
        if listed is None:
            if not files:
                return None
            result = list(existing)
            result += [self._new_attachment(f, channel_id, None, None) for f in files]
            return result
        result = []
        used: set[int] = set()
        existing_by_id = {a.id: a for a in existing}
        for entry in listed:
            try:
                ident = int(entry.get("id"))
            except (TypeError, ValueError):
                continue
            if ident in by_index and ident not in used and ident not in existing_by_id:
                used.add(ident)
                result.append(
                    self._new_attachment(
                        by_index[ident], channel_id, entry.get("filename"), entry.get("description")
                    )
                )
            elif ident in existing_by_id:
                att = existing_by_id[ident]
                if isinstance(entry.get("description"), str):
                    att.description = entry["description"]
                result.append(att)
        for ident, upload in by_index.items():
            if ident not in used:
                result.append(self._new_attachment(upload, channel_id, None, None))
        return result

    def _resolve_embeds(
        self, embeds: list[dict[str, Any]], attachments: list[Attachment]
    ) -> list[dict[str, Any]]:
        by_name = {a.filename: a for a in attachments}
        out = []
        for embed in embeds:
            embed = copy.deepcopy(embed)
            embed.setdefault("type", "rich")
            for key in ("image", "thumbnail"):
                media = embed.get(key)
                if isinstance(media, dict) and str(media.get("url", "")).startswith("attachment://"):
                    att = by_name.get(media["url"][len("attachment://") :])
                    if att is not None:
                        media.update(url=att.url, proxy_url=att.proxy_url)
                        if att.width is not None:
                            media.update(width=att.width, height=att.height)
            for key in ("footer", "author"):
                part = embed.get(key)
                if isinstance(part, dict) and str(part.get("icon_url", "")).startswith("attachment://"):
                    att = by_name.get(part["icon_url"][len("attachment://") :])
                    if att is not None:
                        part.update(icon_url=att.url, proxy_icon_url=att.proxy_url)
            out.append(embed)
        return out

    def _validate_body(
        self, payload: Any, files: list[UploadedFile], path: tuple[str, ...] = (), flags: int | None = None
    ) -> dict[str, Any]:
        if payload is None:
            payload = {}
        if not isinstance(payload, dict):
            errors = FormErrors()
            errors.add(path, "MODEL_TYPE_CONVERT", "Only dictionaries may be used in a ModelType")
            errors.raise_if_any()
        errors = FormErrors()
        validate_message(errors, payload, path, flags=flags)
        if len(files) > MAX_FILES:
            errors.max_length((*path, "files"), MAX_FILES)
        errors.raise_if_any()
        return payload

    @staticmethod
    def _is_empty(content: str, embeds: list, attachments: list, components: list, payload: dict) -> bool:
        return not (
            content
            or embeds
            or attachments
            or components
            or payload.get("sticker_ids")
            or payload.get("poll")
        )

    def _create_message(
        self,
        *,
        channel_id: int,
        guild_id: int | None,
        payload: dict[str, Any],
        files: list[UploadedFile],
        allowed_flags: int,
        ephemeral: bool = False,
        extra_flags: int = 0,
        webhook: bool = False,
        interaction: InteractionRecord | None = None,
        msg_type: int = 0,
        allow_empty: bool = False,
    ) -> Message:
        attachments = self._build_attachments(payload, files, [], channel_id) or []
        content = payload.get("content") or ""
        embeds = self._resolve_embeds(payload.get("embeds") or [], attachments)
        components = copy.deepcopy(payload.get("components") or [])
        if not allow_empty and self._is_empty(content, embeds, attachments, components, payload):
            raise E.empty_message()
        flags = ((payload.get("flags") or 0) & allowed_flags) | extra_flags
        if ephemeral:
            flags |= FLAG_EPHEMERAL
        msg = Message(
            id=self.snowflake(),
            channel_id=channel_id,
            guild_id=guild_id,
            author_id=self.bot_user.id,
            content=content,
            embeds=embeds,
            components=components,
            attachments=attachments,
            flags=flags,
            type=msg_type,
            tts=bool(payload.get("tts")),
            ephemeral=bool(flags & FLAG_EPHEMERAL),
            nonce=payload.get("nonce") if isinstance(payload.get("nonce"), str) else None,
            sticker_ids=[str(s) for s in payload.get("sticker_ids") or []],
            poll=payload.get("poll"),
        )
        if webhook:
            msg.webhook_id = self.application_id
            msg.application_id = self.application_id
        if interaction is not None:
            msg.interaction_id = interaction.id
            meta: dict[str, Any] = {
                "id": str(interaction.id),
                "type": interaction.type,
                "user": self._user(interaction.user_id).payload(),
                "authorizing_integration_owners": interaction.payload.get(
                    "authorizing_integration_owners", {}
                ),
            }
            if interaction.original_message_id is not None:
                meta["original_response_message_id"] = str(interaction.original_message_id)
            if interaction.source_message_id is not None:
                meta["interacted_message_id"] = str(interaction.source_message_id)
            msg.interaction_metadata = meta
        ref = payload.get("message_reference")
        if isinstance(ref, dict) and ref.get("message_id"):
            target = self.messages.get(int(ref["message_id"]))
            if (target is None or target.deleted) and ref.get("fail_if_not_exists", True):
                errors = FormErrors()
                errors.add(("message_reference",), "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message")
                errors.raise_if_any()
            msg.message_reference = {
                "type": ref.get("type", 0),
                "message_id": str(ref["message_id"]),
                "channel_id": str(ref.get("channel_id") or channel_id),
            }
            if guild_id is not None:
                msg.message_reference["guild_id"] = str(guild_id)
            if msg.type == 0:
                msg.type = 19
        if msg.ephemeral:
            self.ephemeral_messages[msg.id] = msg
        else:
            self.messages[msg.id] = msg
            channel = self.channels.get(channel_id)
            if channel is not None:
                channel.last_message_id = msg.id
            self._dispatch_message("MESSAGE_CREATE", msg)
        if interaction is not None:
            interaction.messages.append(msg)
        self._changed()
        return msg

    def _edit_message(
        self, msg: Message, payload: dict[str, Any], files: list[UploadedFile], *, path: tuple[str, ...] = ()
    ) -> Message:
        flags_in = payload.get("flags")
        v2 = bool(msg.flags & FLAG_COMPONENTS_V2) or bool((flags_in or 0) & FLAG_COMPONENTS_V2)
        self._validate_body(payload, files, path, flags=FLAG_COMPONENTS_V2 if v2 else 0)
        attachments = self._build_attachments(payload, files, msg.attachments, msg.channel_id)
        new_attachments = msg.attachments if attachments is None else attachments
        if len(new_attachments) > MAX_FILES:
            errors = FormErrors()
            errors.max_length((*path, "attachments"), MAX_FILES)
            errors.raise_if_any()
        content = msg.content if "content" not in payload else (payload.get("content") or "")
        if "embeds" in payload:
            embeds = self._resolve_embeds(payload.get("embeds") or [], new_attachments)
        else:
            embeds = msg.embeds
        components = (
            msg.components if "components" not in payload else copy.deepcopy(payload["components"] or [])
        )
        if (
            self._is_empty(content, embeds, new_attachments, components, {"poll": msg.poll})
            and not msg.sticker_ids
        ):
            raise E.empty_message()
        msg.history.append(self.message_payload(msg))
        msg.content = content
        msg.embeds = embeds
        msg.components = components
        msg.attachments = new_attachments
        if flags_in is not None:
            msg.flags = (msg.flags & ~FLAG_SUPPRESS_EMBEDS) | (flags_in & FLAG_SUPPRESS_EMBEDS)
        if v2:
            msg.flags |= FLAG_COMPONENTS_V2
        msg.flags &= ~FLAG_LOADING
        msg.edits += 1
        msg.edited_at = utcnow()
        self._dispatch_message("MESSAGE_UPDATE", msg)
        self._changed()
        return msg

    # ------------------------------------------------------------------ REST handlers: users / app
    def _h_get_me(self, call: Call) -> Any:
        return self._user_payload_me()

    def _h_get_my_guilds(self, call: Call) -> Any:
        out = []
        for guild in self.guilds.values():
            if not guild.has_member(self.bot_user.id):
                continue
            perms = self._member_permissions(guild, guild.members[self.bot_user.id], None)
            out.append(
                {
                    "id": str(guild.id),
                    "name": guild.name,
                    "icon": None,
                    "banner": None,
                    "owner": False,
                    "permissions": str(perms),
                    "features": [],
                }
            )
        return out

    def _h_get_user(self, call: Call, user_id: str) -> Any:
        try:
            user = self.users.get(int(user_id))
        except ValueError:
            user = None
        if user is None:
            raise E.unknown("user")
        return user.payload()

    def _h_create_dm(self, call: Call) -> Any:
        body = call.json or {}
        try:
            recipient = int(body.get("recipient_id"))
        except (TypeError, ValueError):
            errors = FormErrors()
            errors.required(("recipient_id",))
            errors.raise_if_any()
        if recipient not in self.users:
            raise E.unknown("user")
        for channel in self.channels.values():
            if channel.type == 1 and channel.recipient_id == recipient:
                return channel.payload(self.users)
        channel = Channel(id=self.snowflake(), guild_id=None, name="", type=1, recipient_id=recipient)
        self.channels[channel.id] = channel
        return channel.payload(self.users)

    def _h_get_application(self, call: Call) -> Any:
        return {
            "id": str(self.application_id),
            "name": self.bot_user.username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": hashlib.sha256(str(self.application_id).encode()).hexdigest(),
            "owner": self.owner_user.payload(),
            "team": None,
            "flags": self._application_flags(),
            "bot": self.bot_user.payload(),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "tags": [],
            "approximate_guild_count": len(self.guilds),
            "integration_types_config": {"0": {}},
        }

    def _h_get_gateway(self, call: Call) -> Any:
        return {"url": self.gateway_url}

    def _h_get_gateway_bot(self, call: Call) -> Any:
        return {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 999,
                "reset_after": 14400000,
                "max_concurrency": 1,
            },
        }

    # ------------------------------------------------------------------ REST handlers: commands
    def _command_scope(self, application_id: str, guild_id: str | None) -> int | None:
        if application_id != str(self.application_id):
            raise E.missing_access()
        if guild_id is None:
            return None
        try:
            gid = int(guild_id)
        except ValueError:
            raise E.unknown("guild") from None
        if gid not in self.guilds or not self.guilds[gid].commands_scope:
            raise E.missing_access()
        return gid

    def _h_get_commands(self, call: Call, application_id: str, guild_id: str | None = None) -> Any:
        scope = self._command_scope(application_id, guild_id)
        return copy.deepcopy(self.commands.get(scope, []))

    def _h_put_commands(self, call: Call, application_id: str, guild_id: str | None = None) -> Any:
        scope = self._command_scope(application_id, guild_id)
        body = call.json
        errors = FormErrors()
        validate_commands(errors, body)
        errors.raise_if_any()
        old = {(c.get("type", 1), c["name"]): c for c in self.commands.get(scope, [])}
        stored = []
        for raw in body:
            kind = raw.get("type", 1)
            key = (scope, kind, raw["name"])
            cid = self._command_ids.get(key)
            if cid is None:
                cid = self._command_ids[key] = self.snowflake()
            cmd: dict[str, Any] = {
                "id": str(cid),
                "application_id": str(self.application_id),
                "type": kind,
                "name": raw["name"],
                "name_localizations": raw.get("name_localizations"),
                "description": raw.get("description", ""),
                "description_localizations": raw.get("description_localizations"),
                "default_member_permissions": raw.get("default_member_permissions"),
                "dm_permission": raw.get("dm_permission", True),
                "contexts": raw.get("contexts"),
                "integration_types": raw.get("integration_types") or [0],
                "nsfw": bool(raw.get("nsfw", False)),
            }
            if raw.get("options"):
                cmd["options"] = copy.deepcopy(raw["options"])
            if scope is not None:
                cmd["guild_id"] = str(scope)
            previous = old.get((kind, raw["name"]))
            unchanged = previous is not None and {k: v for k, v in previous.items() if k != "version"} == cmd
            cmd["version"] = previous["version"] if unchanged and previous else str(self.snowflake())
            stored.append(cmd)
        self.commands[scope] = stored
        self.command_puts[scope] = self.command_puts.get(scope, 0) + 1
        return copy.deepcopy(stored)

    # ------------------------------------------------------------------ REST handlers: interactions
    def _interaction_by_token(self, ident: str, token: str) -> InteractionRecord | None:
        it = self._interactions_by_token.get(token)
        if it is None or str(it.id) != ident:
            return None
        return it

    def _h_interaction_callback(self, call: Call, webhook_id: str, webhook_token: str) -> Any:
        it = self._interaction_by_token(webhook_id, webhook_token)
        if it is None:
            raise E.unknown("interaction")
        try:
            return self._interaction_callback(call, it)
        finally:
            call_ref = call
            it.callback_calls.append(call_ref)

    def _interaction_callback(self, call: Call, it: InteractionRecord) -> Any:
        body = call.json
        if it.response is not None:
            raise E.already_acknowledged()
        if time.monotonic() - it.created_at > self.interaction_deadline:
            raise E.unknown("interaction")
        if not isinstance(body, dict):
            errors = FormErrors()
            errors.required(("type",))
            errors.raise_if_any()
        kind = body.get("type")
        if kind not in VALID_CALLBACKS.get(it.type, set()):
            errors = FormErrors()
            allowed = ", ".join(str(k) for k in sorted(VALID_CALLBACKS.get(it.type, set())))
            errors.add(("type",), "BASE_TYPE_CHOICES", f"Value must be one of {{{allowed}}}.")
            errors.raise_if_any()
        data = body.get("data")
        if data is not None and not isinstance(data, dict):
            errors = FormErrors()
            errors.wrong_type(("data",), "dict")
            errors.raise_if_any()
        data = data or {}
        channel_id = it.channel_id or 0
        message: Message | None = None
        if kind == 4:
            self._validate_body(data, call.files, ("data",))
            it.original_message_id = None
            message = self._create_message(
                channel_id=channel_id,
                guild_id=it.guild_id,
                payload=data,
                files=call.files,
                allowed_flags=FLAG_EPHEMERAL
                | FLAG_SUPPRESS_EMBEDS
                | FLAG_SUPPRESS_NOTIFICATIONS
                | FLAG_COMPONENTS_V2,
                webhook=True,
                interaction=it,
                msg_type=20 if it.type == INTERACTION_COMMAND else 0,
            )
            it.original_message_id = message.id
        elif kind == 5:
            ephemeral = bool((data.get("flags") or 0) & FLAG_EPHEMERAL)
            message = self._create_message(
                channel_id=channel_id,
                guild_id=it.guild_id,
                payload={},
                files=[],
                allowed_flags=0,
                ephemeral=ephemeral,
                extra_flags=FLAG_LOADING,
                webhook=True,
                interaction=it,
                msg_type=20 if it.type == INTERACTION_COMMAND else 0,
                allow_empty=True,
            )
            it.deferred_ephemeral = ephemeral
            it.original_message_id = message.id
        elif kind in (6, 7):
            source = self.get_message(it.source_message_id) if it.source_message_id else None
            if source is None or source.deleted:
                raise E.unknown("message")
            if kind == 7:
                self._edit_message(source, data, call.files, path=("data",))
            if source not in it.messages:
                it.messages.append(source)
            it.original_message_id = source.id
            message = source if kind == 7 else None
        elif kind == 8:
            errors = FormErrors()
            validate_autocomplete(errors, data, ("data",))
            errors.raise_if_any()
            it.choices = copy.deepcopy(data.get("choices"))
        elif kind == 9:
            errors = FormErrors()
            validate_modal(errors, data, ("data",))
            errors.raise_if_any()
            it.modal = copy.deepcopy(data)
        it.response = copy.deepcopy(body)
        it.response_type = kind
        it.responded_at = time.monotonic()
        self._changed()
        if call.query.get("with_response") not in ("1", "true", "True"):
            return None
        original = self.get_message(it.original_message_id) if it.original_message_id else None
        info: dict[str, Any] = {"id": str(it.id), "type": it.type}
        if original is not None and kind in (4, 5, 6, 7):
            info.update(
                response_message_id=str(original.id),
                response_message_loading=bool(original.flags & FLAG_LOADING),
                response_message_ephemeral=original.ephemeral,
            )
        out: dict[str, Any] = {"interaction": info}
        if message is not None:
            out["resource"] = {"type": kind, "message": self.message_payload(message)}
        elif kind in (6, 8, 9):
            out["resource"] = {"type": kind}
        return out

    def _webhook_interaction(self, webhook_id: str, token: str) -> InteractionRecord:
        it = self._interactions_by_token.get(token)
        if it is None or webhook_id != str(self.application_id):
            raise E.unknown("webhook")
        if time.monotonic() > it.webhook_token_expires_at:
            raise E.invalid_webhook_token()
        if it.response is None:
            raise E.unknown("webhook")
        return it

    def _h_execute_webhook(self, call: Call, webhook_id: str, webhook_token: str) -> Any:
        it = self._webhook_interaction(webhook_id, webhook_token)
        payload = self._validate_body(call.json, call.files)
        original = self.get_message(it.original_message_id) if it.original_message_id else None
        if it.response_type == 5 and original is not None and original.loading and not original.deleted:
            # The first followup after a deferred (type 5) response replaces the "thinking" message;
            # its ephemeral state is the defer's.
            msg = self._edit_message(original, {k: v for k, v in payload.items() if k != "flags"}, call.files)
        else:
            msg = self._create_message(
                channel_id=it.channel_id or 0,
                guild_id=it.guild_id,
                payload=payload,
                files=call.files,
                allowed_flags=FLAG_EPHEMERAL
                | FLAG_SUPPRESS_EMBEDS
                | FLAG_SUPPRESS_NOTIFICATIONS
                | FLAG_COMPONENTS_V2,
                webhook=True,
                interaction=it,
                msg_type=20 if it.type == INTERACTION_COMMAND else 0,
            )
        it.followups.append(copy.deepcopy(payload))
        it.followup_messages.append(msg)
        self._changed()
        if call.query.get("wait") in ("1", "true", "True"):
            return self.message_payload(msg)
        return None

    def _h_webhook_message(
        self, call: Call, webhook_id: str, webhook_token: str, message_id: str = "@original"
    ) -> Any:
        it = self._webhook_interaction(webhook_id, webhook_token)
        if message_id == "@original":
            target_id = it.original_message_id
        else:
            try:
                target_id = int(message_id)
            except ValueError:
                raise E.unknown("message") from None
            if target_id not in {m.id for m in it.messages}:
                raise E.unknown("message")
        msg = self.get_message(target_id) if target_id else None
        if msg is None or msg.deleted:
            raise E.unknown("message")
        if call.method == "GET":
            return self.message_payload(msg)
        if call.method == "DELETE":
            self._mark_deleted(msg)
            return None
        payload = call.json or {}
        self._edit_message(msg, payload, call.files)
        if msg not in it.messages:
            it.messages.append(msg)
        return self.message_payload(msg)

    # ------------------------------------------------------------------ REST handlers: channels
    def _h_get_channel(self, call: Call, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        if channel.guild_id is not None:
            self._require(channel)
        return channel.payload(self.users)

    def _h_typing(self, call: Call, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        self._require(channel, P.SEND_MESSAGES)
        return None

    def _h_list_messages(self, call: Call, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        perms = self._require(channel)
        if not perms & P.READ_MESSAGE_HISTORY:
            return []
        try:
            limit = int(call.query.get("limit", 50))
        except ValueError:
            limit = -1
        if not 1 <= limit <= 100:
            errors = FormErrors()
            errors.add(("limit",), "NUMBER_TYPE_MAX", "int value should be less than or equal to 100.")
            errors.raise_if_any()
        msgs = self.channel_messages(channel.id)
        if "before" in call.query:
            before = int(call.query["before"])
            msgs = [m for m in msgs if m.id < before][-limit:]
        elif "after" in call.query:
            after = int(call.query["after"])
            msgs = [m for m in msgs if m.id > after][:limit]
        elif "around" in call.query:
            around = int(call.query["around"])
            older = [m for m in msgs if m.id <= around][-((limit + 1) // 2) :]
            newer = [m for m in msgs if m.id > around][: limit - len(older)]
            msgs = older + newer
        else:
            msgs = msgs[-limit:]
        return [self.message_payload(m) for m in reversed(msgs)]

    def _h_create_message(self, call: Call, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        required = [P.SEND_MESSAGES]
        if call.files:
            required.append(P.ATTACH_FILES)
        self._require(channel, *required)
        payload = self._validate_body(call.json, call.files)
        msg = self._create_message(
            channel_id=channel.id,
            guild_id=channel.guild_id,
            payload=payload,
            files=call.files,
            allowed_flags=FLAG_SUPPRESS_EMBEDS | FLAG_SUPPRESS_NOTIFICATIONS | FLAG_COMPONENTS_V2,
        )
        return self.message_payload(msg)

    def _h_get_message_route(self, call: Call, channel_id: str, message_id: str) -> Any:
        channel = self._channel(channel_id)
        perms = self._require(channel)
        if not perms & P.READ_MESSAGE_HISTORY:
            raise E.missing_access()
        return self.message_payload(self._channel_message(channel, message_id))

    def _h_edit_message(self, call: Call, channel_id: str, message_id: str) -> Any:
        channel = self._channel(channel_id)
        msg = self._channel_message(channel, message_id)
        self._require(channel, *([P.ATTACH_FILES] if call.files else []))
        payload = call.json or {}
        if msg.author_id != self.bot_user.id and set(payload) - {"flags"}:
            raise E.cannot_edit_others()
        self._edit_message(msg, payload, call.files)
        return self.message_payload(msg)

    def _h_delete_message_route(self, call: Call, channel_id: str, message_id: str) -> Any:
        channel = self._channel(channel_id)
        msg = self._channel_message(channel, message_id)
        if msg.author_id != self.bot_user.id:
            self._require(channel, P.MANAGE_MESSAGES)
        else:
            self._require(channel)
        self._mark_deleted(msg)
        return None

    def _h_bulk_delete(self, call: Call, channel_id: str) -> Any:
        channel = self._channel(channel_id)
        self._require(channel, P.MANAGE_MESSAGES)
        ids = (call.json or {}).get("messages")
        if not isinstance(ids, list) or not 2 <= len(ids) <= 100:
            errors = FormErrors()
            errors.bad_length(("messages",), 2, 100)
            errors.raise_if_any()
        cutoff = utcnow() - datetime.timedelta(days=14)
        for raw in ids:
            if snowflake_time(int(raw)) < cutoff:
                raise DiscordError(
                    400, 50034, "You can only bulk delete messages that are under 14 days old."
                )
        deleted = []
        for raw in ids:
            msg = self.messages.get(int(raw))
            if msg is not None and msg.channel_id == channel.id and not msg.deleted:
                msg.deleted = True
                deleted.append(str(msg.id))
        if deleted and channel.guild_id is not None:
            self.gateway.dispatch(
                "MESSAGE_DELETE_BULK",
                {"ids": deleted, "channel_id": str(channel.id), "guild_id": str(channel.guild_id)},
                guild_id=channel.guild_id,
                intent=INTENT_GUILD_MESSAGES,
            )
        self._changed()
        return None

    # ------------------------------------------------------------------ REST handlers: guilds
    def _h_get_guild(self, call: Call, guild_id: str) -> Any:
        guild = self._guild(guild_id)
        data = self._guild_payload(guild)
        if call.query.get("with_counts") in ("1", "true", "True"):
            data["approximate_member_count"] = len(guild.members)
            data["approximate_presence_count"] = 0
        return data

    def _h_get_guild_channels(self, call: Call, guild_id: str) -> Any:
        guild = self._guild(guild_id)
        return [self.channels[c].payload() for c in guild.channels if not self.channels[c].deleted]

    def _h_get_guild_roles(self, call: Call, guild_id: str) -> Any:
        guild = self._guild(guild_id)
        return [r.payload() for r in guild.roles.values()]

    def _h_list_members(self, call: Call, guild_id: str) -> Any:
        guild = self._guild(guild_id)
        limit = int(call.query.get("limit", 1))
        after = int(call.query.get("after", 0))
        members = sorted((m for m in guild.members.values() if m.id > after), key=lambda m: m.id)
        return [m.payload() for m in members[:limit]]

    def _h_get_member(self, call: Call, guild_id: str, user_id: str) -> Any:
        guild = self._guild(guild_id)
        try:
            member = guild.members.get(int(user_id))
        except ValueError:
            member = None
        if member is None:
            raise E.unknown("member")
        return member.payload()
