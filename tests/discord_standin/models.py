"""State kept by the stand-in: users, guilds, channels, messages, recorded calls, interactions."""

from __future__ import annotations

import datetime
import itertools
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

DISCORD_EPOCH_MS = 1420070400000


class SnowflakeGenerator:
    """Monotonic snowflakes whose timestamp part is the current time (as Discord's)."""

    def __init__(self, worker: int = 1) -> None:
        self._worker = worker & 0x1F
        self._last = 0
        self._increment = itertools.count()
        self._lock = threading.Lock()

    def __call__(self) -> int:
        with self._lock:
            ms = int(time.time() * 1000) - DISCORD_EPOCH_MS
            value = (ms << 22) | (self._worker << 17) | (next(self._increment) & 0xFFF)
            if value <= self._last:
                value = self._last + 1
            self._last = value
            return value


def snowflake_time(snowflake: int) -> datetime.datetime:
    ms = (snowflake >> 22) + DISCORD_EPOCH_MS
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


def iso(dt: datetime.datetime | None) -> str | None:
    return None if dt is None else dt.isoformat()


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@dataclass
class User:
    id: int
    username: str
    global_name: str | None = None
    bot: bool = False
    avatar: str | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": self.global_name,
            "avatar": self.avatar,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "collectibles": None,
            "primary_guild": None,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class Role:
    id: int
    guild_id: int
    name: str
    permissions: int = 0
    position: int = 0
    color: int = 0
    hoist: bool = False
    mentionable: bool = False
    managed: bool = False
    bot_id: int | None = None

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "name": self.name,
            "description": None,
            "color": self.color,
            "colors": {"primary_color": self.color, "secondary_color": None, "tertiary_color": None},
            "hoist": self.hoist,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.managed,
            "mentionable": self.mentionable,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass
class Channel:
    id: int
    guild_id: int | None
    name: str
    type: int = 0  # 0 text, 2 voice, 4 category, 5 announcement, 1 DM
    position: int = 0
    topic: str | None = None
    parent_id: int | None = None
    nsfw: bool = False
    # target id -> (type 0 role / 1 member, allow, deny)
    overwrites: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    deleted: bool = False
    last_message_id: int | None = None
    recipient_id: int | None = None

    def payload(self, users: dict[int, User] | None = None) -> dict[str, Any]:
        if self.type == 1:
            recipients = []
            if users is not None and self.recipient_id in users:
                recipients = [users[self.recipient_id].payload()]
            return {
                "id": str(self.id),
                "type": 1,
                "last_message_id": str(self.last_message_id) if self.last_message_id else None,
                "recipients": recipients,
                "flags": 0,
            }
        data: dict[str, Any] = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild_id),
            "name": self.name,
            "position": self.position,
            "permission_overwrites": [
                {"id": str(target), "type": kind, "allow": str(allow), "deny": str(deny)}
                for target, (kind, allow, deny) in self.overwrites.items()
            ],
            "parent_id": str(self.parent_id) if self.parent_id else None,
            "flags": 0,
        }
        if self.type in (0, 5):
            data.update(
                topic=self.topic,
                nsfw=self.nsfw,
                last_message_id=str(self.last_message_id) if self.last_message_id else None,
                rate_limit_per_user=0,
                default_auto_archive_duration=1440,
                default_thread_rate_limit_per_user=0,
            )
        elif self.type in (2, 13):
            data.update(
                bitrate=64000,
                user_limit=0,
                rtc_region=None,
                nsfw=False,
                rate_limit_per_user=0,
                video_quality_mode=1,
            )
        return data


@dataclass
class Member:
    guild_id: int
    user: User
    roles: list[int] = field(default_factory=list)
    nick: str | None = None
    joined_at: datetime.datetime = field(default_factory=utcnow)

    @property
    def id(self) -> int:
        return self.user.id

    def payload(self, *, with_user: bool = True) -> dict[str, Any]:
        data: dict[str, Any] = {
            "nick": self.nick,
            "avatar": None,
            "banner": None,
            "roles": [str(r) for r in self.roles],
            "joined_at": iso(self.joined_at),
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass
class Guild:
    id: int
    name: str
    owner_id: int
    channels: list[int] = field(default_factory=list)
    roles: dict[int, Role] = field(default_factory=dict)
    members: dict[int, Member] = field(default_factory=dict)
    joined_at: datetime.datetime = field(default_factory=utcnow)
    preferred_locale: str = "en-US"
    commands_scope: bool = True  # applications.commands granted here (else the command routes: 403 50001)

    def has_member(self, user_id: int) -> bool:
        return user_id in self.members

    @property
    def everyone(self) -> Role:
        return self.roles[self.id]


@dataclass
class Attachment:
    id: int
    filename: str
    data: bytes = field(repr=False)
    content_type: str | None
    url: str
    proxy_url: str
    description: str | None = None
    width: int | None = None
    height: int | None = None
    ephemeral: bool = False

    @property
    def size(self) -> int:
        return len(self.data)

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": str(self.id),
            "filename": self.filename,
            "size": self.size,
            "url": self.url,
            "proxy_url": self.proxy_url,
        }
        if self.content_type:
            data["content_type"] = self.content_type
        if self.width is not None:
            data["width"] = self.width
            data["height"] = self.height
        if self.description is not None:
            data["description"] = self.description
        if self.ephemeral:
            data["ephemeral"] = True
        return data


@dataclass
class Message:
    id: int
    channel_id: int
    guild_id: int | None
    author_id: int
    content: str = ""
    embeds: list[dict[str, Any]] = field(default_factory=list)
    components: list[dict[str, Any]] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    flags: int = 0
    type: int = 0
    tts: bool = False
    ephemeral: bool = False
    deleted: bool = False
    edits: int = 0
    webhook_id: int | None = None
    application_id: int | None = None
    interaction_id: int | None = None
    interaction_metadata: dict[str, Any] | None = None
    message_reference: dict[str, Any] | None = None
    sticker_ids: list[str] = field(default_factory=list)
    poll: dict[str, Any] | None = None
    nonce: str | None = None
    created_at: datetime.datetime = field(default_factory=utcnow)
    edited_at: datetime.datetime | None = None
    # snapshots (payload dicts) of each previous version, oldest first
    history: list[dict[str, Any]] = field(default_factory=list, repr=False)

    def __repr__(self) -> str:
        state = " deleted" if self.deleted else ""
        kind = " ephemeral" if self.ephemeral else ""
        return (
            f"<Message {self.id} channel={self.channel_id}{kind}{state} edits={self.edits} "
            f"content={self.content[:40]!r} embeds={len(self.embeds)} attachments={len(self.attachments)}>"
        )

    @property
    def loading(self) -> bool:
        return bool(self.flags & (1 << 7))

    def attachment(self, filename: str) -> Attachment | None:
        for att in self.attachments:
            if att.filename == filename:
                return att
        return None

    def embed_image_attachment(self, index: int = 0, key: str = "image") -> Attachment | None:
        """The attachment an embed's image/thumbnail (``attachment://name``) points to."""
        try:
            url = self.embeds[index][key]["url"]
        except (IndexError, KeyError, TypeError):
            return None
        for att in self.attachments:
            if url == att.url or url == f"attachment://{att.filename}":
                return att
        return None


@dataclass
class UploadedFile:
    field: str
    filename: str
    data: bytes
    content_type: str | None


@dataclass
class Call:
    """One REST request the stand-in answered."""

    method: str
    path: str  # without the /api/vN prefix
    route: str  # template as discord.py's Route.key, e.g. "POST /channels/{channel_id}/messages"
    params: dict[str, str]
    query: dict[str, str]
    headers: dict[str, str]
    at: float  # time.monotonic() when received
    json: Any = None
    files: list[UploadedFile] = field(default_factory=list)
    status: int = 0
    response: Any = None
    api_version: int | None = None
    injected: bool = False  # answered by fail_next / rate limiting
    finished_at: float = 0.0

    @property
    def error_code(self) -> int | None:
        if isinstance(self.response, dict) and self.status >= 400:
            return self.response.get("code")
        return None

    @property
    def reason(self) -> str | None:
        return self.headers.get("X-Audit-Log-Reason")

    def __repr__(self) -> str:
        code = f" code={self.error_code}" if self.error_code is not None else ""
        return f"<Call {self.method} {self.path} -> {self.status}{code}>"


Waiter = Callable[[Callable[[], Any], float, str], Awaitable[Any]]


@dataclass(eq=False)
class InteractionRecord:
    """An interaction the stand-in injected, and everything the bot did with it."""

    id: int
    token: str
    type: int  # 2 command, 3 component, 4 autocomplete, 5 modal submit
    guild_id: int | None
    channel_id: int | None
    user_id: int
    data: dict[str, Any]
    payload: dict[str, Any]
    _wait: Waiter = field(repr=False)
    created_at: float = 0.0  # monotonic, when sent over the gateway
    responded_at: float | None = None
    response: dict[str, Any] | None = None  # the accepted callback body
    response_type: int | None = None
    original_message_id: int | None = None
    source_message_id: int | None = None  # message holding the clicked component
    messages: list[Message] = field(default_factory=list)
    followups: list[dict[str, Any]] = field(default_factory=list)  # followup bodies as sent
    followup_messages: list[Message] = field(default_factory=list)
    callback_calls: list[Call] = field(default_factory=list)  # every callback attempt, accepted or not
    modal: dict[str, Any] | None = None
    choices: list[dict[str, Any]] | None = None
    deferred_ephemeral: bool = False
    webhook_token_expires_at: float = 0.0

    @property
    def acknowledged(self) -> bool:
        return self.response is not None

    @property
    def latency(self) -> float | None:
        return None if self.responded_at is None else self.responded_at - self.created_at

    @property
    def ephemeral(self) -> bool:
        if self.deferred_ephemeral:
            return True
        if self.response and (self.response.get("data") or {}).get("flags", 0) & 64:
            return True
        return any((body.get("flags") or 0) & 64 for body in self.followups)

    @property
    def original(self) -> Message | None:
        for msg in self.messages:
            if msg.id == self.original_message_id:
                return msg
        return None

    async def wait_response(self, timeout: float = 5.0) -> dict[str, Any]:
        await self._wait(lambda: self.response is not None, timeout, f"a callback for interaction {self.id}")
        assert self.response is not None
        return self.response

    async def wait_callback_attempt(self, timeout: float = 5.0) -> Call:
        """The first callback request (accepted or refused, e.g. 10062 when too late)."""
        await self._wait(lambda: bool(self.callback_calls), timeout, f"a callback attempt for {self.id}")
        return self.callback_calls[0]

    async def wait_followups(self, n: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        await self._wait(
            lambda: len(self.followups) >= n, timeout, f"{n} followup(s) for interaction {self.id}"
        )
        return list(self.followups)

    async def wait_original(
        self,
        predicate: Callable[[Message], bool] | None = None,
        timeout: float = 5.0,
    ) -> Message:
        """Wait until the original response message exists (and matches ``predicate``)."""

        def ready() -> bool:
            msg = self.original
            return msg is not None and (predicate is None or predicate(msg))

        await self._wait(ready, timeout, f"the original response of interaction {self.id}")
        msg = self.original
        assert msg is not None
        return msg
