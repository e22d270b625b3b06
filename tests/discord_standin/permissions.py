"""Discord permission bits and the channel permission computation Discord performs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# Bit values as documented by Discord (names as discord.py's Permissions flags).
PERMISSIONS: dict[str, int] = {
    "create_instant_invite": 1 << 0,
    "kick_members": 1 << 1,
    "ban_members": 1 << 2,
    "administrator": 1 << 3,
    "manage_channels": 1 << 4,
    "manage_guild": 1 << 5,
    "add_reactions": 1 << 6,
    "view_audit_log": 1 << 7,
    "priority_speaker": 1 << 8,
    "stream": 1 << 9,
    "view_channel": 1 << 10,
    "send_messages": 1 << 11,
    "send_tts_messages": 1 << 12,
    "manage_messages": 1 << 13,
    "embed_links": 1 << 14,
    "attach_files": 1 << 15,
    "read_message_history": 1 << 16,
    "mention_everyone": 1 << 17,
    "use_external_emojis": 1 << 18,
    "view_guild_insights": 1 << 19,
    "connect": 1 << 20,
    "speak": 1 << 21,
    "mute_members": 1 << 22,
    "deafen_members": 1 << 23,
    "move_members": 1 << 24,
    "use_voice_activation": 1 << 25,
    "change_nickname": 1 << 26,
    "manage_nicknames": 1 << 27,
    "manage_roles": 1 << 28,
    "manage_webhooks": 1 << 29,
    "manage_expressions": 1 << 30,
    "use_application_commands": 1 << 31,
    "request_to_speak": 1 << 32,
    "manage_events": 1 << 33,
    "manage_threads": 1 << 34,
    "create_public_threads": 1 << 35,
    "create_private_threads": 1 << 36,
    "use_external_stickers": 1 << 37,
    "send_messages_in_threads": 1 << 38,
    "use_embedded_activities": 1 << 39,
    "moderate_members": 1 << 40,
    "view_creator_monetization_analytics": 1 << 41,
    "use_soundboard": 1 << 42,
    "create_expressions": 1 << 43,
    "create_events": 1 << 44,
    "use_external_sounds": 1 << 45,
    "send_voice_messages": 1 << 46,
    "send_polls": 1 << 49,
    "use_external_apps": 1 << 50,
}
# discord.py aliases
PERMISSIONS["read_messages"] = PERMISSIONS["view_channel"]
PERMISSIONS["manage_permissions"] = PERMISSIONS["manage_roles"]

ALL_PERMISSIONS = 0
for _bit in PERMISSIONS.values():
    ALL_PERMISSIONS |= _bit

ADMINISTRATOR = PERMISSIONS["administrator"]
VIEW_CHANNEL = PERMISSIONS["view_channel"]
SEND_MESSAGES = PERMISSIONS["send_messages"]
ATTACH_FILES = PERMISSIONS["attach_files"]
EMBED_LINKS = PERMISSIONS["embed_links"]
MANAGE_MESSAGES = PERMISSIONS["manage_messages"]
READ_MESSAGE_HISTORY = PERMISSIONS["read_message_history"]
MENTION_EVERYONE = PERMISSIONS["mention_everyone"]


def perms(*names: str) -> int:
    value = 0
    for name in names:
        value |= PERMISSIONS[name]
    return value


# What a new guild's @everyone role gets (close to Discord's default set).
DEFAULT_EVERYONE_PERMISSIONS = perms(
    "create_instant_invite",
    "add_reactions",
    "stream",
    "view_channel",
    "send_messages",
    "embed_links",
    "attach_files",
    "read_message_history",
    "mention_everyone",
    "use_external_emojis",
    "connect",
    "speak",
    "use_voice_activation",
    "change_nickname",
    "use_application_commands",
    "request_to_speak",
    "create_public_threads",
    "create_private_threads",
    "use_external_stickers",
    "send_messages_in_threads",
    "use_embedded_activities",
    "use_soundboard",
    "use_external_sounds",
    "send_voice_messages",
    "send_polls",
    "use_external_apps",
)

# The bot's managed role when it is invited with the usual scopes.
DEFAULT_BOT_PERMISSIONS = perms(
    "view_channel",
    "send_messages",
    "embed_links",
    "attach_files",
    "read_message_history",
    "add_reactions",
    "use_external_emojis",
    "manage_messages",
    "use_application_commands",
    "send_messages_in_threads",
)

# Implicitly removed with SEND_MESSAGES missing (Discord's "implicit permissions").
_NEEDS_SEND = perms("mention_everyone", "attach_files", "embed_links", "send_tts_messages")


def overwrite_from_kwargs(values: Mapping[str, bool | None]) -> tuple[int, int, int]:
    """Return (allow, deny, touched) bit masks from ``name=True/False/None``."""
    allow = deny = touched = 0
    for name, value in values.items():
        try:
            bit = PERMISSIONS[name]
        except KeyError:
            raise ValueError(f"unknown permission {name!r}") from None
        touched |= bit
        if value is True:
            allow |= bit
        elif value is False:
            deny |= bit
    return allow, deny, touched


def compute_base(everyone: int, role_permissions: Iterable[int], *, owner: bool = False) -> int:
    if owner:
        return ALL_PERMISSIONS
    base = everyone
    for value in role_permissions:
        base |= value
    if base & ADMINISTRATOR:
        return ALL_PERMISSIONS
    return base


def apply_overwrites(
    base: int,
    *,
    guild_id: int,
    member_id: int,
    member_roles: Iterable[int],
    overwrites: Mapping[int, tuple[int, int, int]],
) -> int:
    """Discord's overwrite algorithm: @everyone, then roles (combined), then the member.

    ``overwrites`` maps target id -> (type, allow, deny) with type 0 = role, 1 = member.
    """
    if base & ADMINISTRATOR:
        return ALL_PERMISSIONS
    perm = base
    everyone = overwrites.get(guild_id)
    if everyone is not None:
        perm &= ~everyone[2]
        perm |= everyone[1]
    allow = deny = 0
    for role_id in member_roles:
        ow = overwrites.get(role_id)
        if ow is not None and ow[0] == 0:
            allow |= ow[1]
            deny |= ow[2]
    perm &= ~deny
    perm |= allow
    mine = overwrites.get(member_id)
    if mine is not None and mine[0] == 1:
        perm &= ~mine[2]
        perm |= mine[1]
    if not perm & VIEW_CHANNEL:
        return 0
    if not perm & SEND_MESSAGES:
        perm &= ~_NEEDS_SEND
    return perm
