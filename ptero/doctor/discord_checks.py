"""The Discord checks (8-11), through discord.py's own HTTP client (its routes, its rate limits, and
the tests' stand-in): the token, the server, the commands scope, and every channel the bot posts in."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import discord

from ptero.doctor.model import (
    ADMINISTRATOR,
    NEEDED,
    STORE_PATH,
    Doctor,
    Line,
    fail,
    ok,
    skip,
    warn,
    within,
)


async def check_token(doc: Doctor) -> Line:
    try:
        user = await within(doc.discord.static_login(doc.settings.discord_token), "Discord (GET /users/@me)")
    except discord.LoginFailure:
        return fail(
            "Discord rejected DISCORD_TOKEN (401 Unauthorized)",
            "reset it in the Developer Portal (your application → Bot → Reset Token) and set DISCORD_TOKEN",
        )
    app = await within(doc.discord.application_info(), "Discord (GET /oauth2/applications/@me)")
    doc.bot_id, doc.application_id = int(user["id"]), int(app["id"])
    return ok(f"valid: the bot is {user['username']} (id {user['id']}), application {app['id']}")


async def check_guild(doc: Doctor) -> Line:
    guild_id = doc.settings.allowed_guild_id
    try:
        guild = await within(doc.discord.get_guild(guild_id, with_counts=False), "Discord (GET /guilds)")
        member = await within(doc.discord.get_member(guild_id, doc.bot_id), "Discord (GET /guilds/members)")
    except discord.NotFound as exc:
        if exc.code == 10004:  # Unknown Guild: no server has this id
            return fail(
                f"Discord knows no server with the id {guild_id} (ALLOWED_GUILD_ID; 404 Unknown Guild)",
                "copy the id again (Developer Mode on, right-click the server → Copy Server ID); then "
                f"invite the bot with {doc.invite}",
            )
        return fail(f"the bot is not a member of the server {guild_id} (404 {exc.text})", doc.invite)
    except discord.Forbidden as exc:  # 50001 Missing Access: a server the bot is not in
        return fail(
            f"the bot is not a member of the server {guild_id} (ALLOWED_GUILD_ID; 403 {exc.text})",
            f"invite it with {doc.invite} (or fix ALLOWED_GUILD_ID)",
        )
    doc.guild_name = guild["name"]
    doc.role_permissions = {int(role["id"]): int(role["permissions"]) for role in guild["roles"]}
    doc.bot_roles = [int(role) for role in member["roles"]]
    return ok(f"the bot is a member of {doc.guild_name} ({guild_id})")


async def check_commands(doc: Doctor) -> Line:
    guild_id = doc.settings.allowed_guild_id
    try:  # read only: the bot registers its commands itself when it starts
        commands = await within(
            doc.discord.get_guild_commands(doc.application_id, guild_id), "Discord (GET guild commands)"
        )
    except discord.Forbidden as exc:
        return fail(
            f"Discord refused to list the bot's commands in {doc.guild_name} (403 {exc.text}): the bot "
            "was invited without the applications.commands scope",
            f"re-invite it with {doc.invite} (it stays in the server; nothing is lost)",
        )
    names = ", ".join(sorted("/" + command["name"] for command in commands)) or "none registered yet"
    return ok(f"the bot may manage its commands in {doc.guild_name} ({names})")


def channel_permissions(doc: Doctor, channel: Mapping[str, Any]) -> int:
    """The bot's permissions in a channel as Discord computes them: @everyone (its id is the
    server's) and the bot's roles, the administrator shortcut, then the channel's overwrites for
    @everyone, for the bot's roles together, for the bot itself. Discord's implicit rules (without
    View Channel nothing, without Send Messages no embeds or files) are left out on purpose: the admin
    must fix what is missing, not what follows from it."""
    guild_id = doc.settings.allowed_guild_id
    perms = doc.role_permissions.get(guild_id, 0)
    for role in doc.bot_roles:
        perms |= doc.role_permissions.get(role, 0)
    if perms & ADMINISTRATOR:
        return discord.Permissions.all().value
    overwrites = {
        int(o["id"]): (int(o["type"]), int(o["allow"]), int(o["deny"]))
        for o in channel.get("permission_overwrites") or []
    }
    _, allow, deny = overwrites.get(guild_id, (0, 0, 0))
    perms = (perms & ~deny) | allow
    allow = deny = 0
    for role in doc.bot_roles:  # together: one role's allow beats another's deny
        kind, role_allow, role_deny = overwrites.get(role, (0, 0, 0))
        if kind == 0:
            allow, deny = allow | role_allow, deny | role_deny
    perms = (perms & ~deny) | allow
    kind, allow, deny = overwrites.get(doc.bot_id, (1, 0, 0))
    return (perms & ~deny) | allow if kind == 1 else perms


def posting_channels(doc: Doctor) -> dict[int, list[str]]:
    """Every channel the bot posts in, with why: its cards, the alert and the audit channels."""
    cards = Counter(location.channel_id for location in doc.cards.values())
    uses = {channel_id: [f"{count} card(s)"] for channel_id, count in cards.items()}
    configured = {
        "ALERT_CHANNEL_ID": doc.settings.alert_channel_id,
        "AUDIT_CHANNEL_ID": doc.settings.audit_channel_id,
    }
    for name, channel_id in configured.items():
        if channel_id is not None:
            uses.setdefault(channel_id, []).append(name)
    return uses


async def check_channels(doc: Doctor) -> Sequence[Line]:
    if not (uses := posting_channels(doc)):
        return [
            skip(f"nothing to check yet: no card in {STORE_PATH}, no ALERT_CHANNEL_ID or AUDIT_CHANNEL_ID")
        ]
    listed = await within(doc.discord.get_all_guild_channels(doc.settings.allowed_guild_id), "Discord")
    channels: dict[int, Mapping[str, Any]] = {int(channel["id"]): channel for channel in listed}
    lines = []
    for channel_id, why in uses.items():
        channel = channels.get(channel_id)
        if channel is None:
            lines.append(await unlisted_channel(doc, channel_id, why))
            continue
        title = f"Channel #{channel.get('name', channel_id)} ({', '.join(why)})"
        perms = channel_permissions(doc, channel)
        if missing := ", ".join(name for name, bit in NEEDED.items() if not perms & bit):
            fix = f"in that channel's settings → Permissions, allow {missing} for the bot (or its role)"
            lines.append(fail(f"the bot lacks {missing}", fix, title=title))
        else:
            lines.append(ok(f"the bot has {', '.join(NEEDED)}", title=title))
    return lines


async def unlisted_channel(doc: Doctor, channel_id: int, why: list[str]) -> Line:
    """A channel the bot posts in that is not among the server's channels: gone, elsewhere, a thread."""
    title, configured = f"Channel {channel_id} ({', '.join(why)})", [w for w in why if w.endswith("_ID")]
    try:
        channel: Mapping[str, Any] = await within(doc.discord.get_channel(channel_id), "Discord")
    except (discord.NotFound, discord.Forbidden) as exc:
        found = f"no channel of {doc.guild_name} ({exc.status} {exc.text})"
        if configured:
            return fail(
                found, f"set {' and '.join(configured)} to a channel of {doc.guild_name}", title=title
            )
        return warn(f"{found}: its cards are gone", "post them again with /server_status", title=title)
    text = f"#{channel.get('name')} is a thread or another server's channel: not checked"
    return warn(text, f"make sure the bot may post there, or use a channel of {doc.guild_name}", title=title)
