"""``python pterodisbot.py --check``: a read-only setup doctor that says what to fix before going live.

``CHECKS`` lists the checks in the order their lines print. Each is a small async function of the
``Doctor`` (the settings, an open panel client, Discord's HTTP client, and what earlier checks
learned) returning one ``Line`` or several. Checks run concurrently: one waits only for the checks it
``needs`` and is skipped when one of those did not pass. Every request has REQUEST_TIMEOUT, every check
its ``timeout``, the whole run OVERALL_TIMEOUT. Nothing is posted, synced or powered: the panel and
Discord are only read, and nothing is written but the log, as on a normal start.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sys
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import aiohttp
import discord
from discord.http import HTTPClient

from ptero import wings
from ptero.bot import PANEL_NAMES
from ptero.config import Settings, mask_secret
from ptero.panel import Account, PanelServer, PterodactylAPI, RequestBudget
from ptero.panel.errors import (
    MalformedResponseError,
    PterodactylAuthError,
    PterodactylConnectionError,
    PterodactylError,
    ServerNotFoundError,
)
from ptero.rules import stretched_interval
from ptero.runtime import check_writable, setup_logging
from ptero.store import EmbedLocation, EmbedStore

log = logging.getLogger(__name__)
T = TypeVar("T")

REQUEST_TIMEOUT = 5.0  # one request to the panel or to Discord
STEP_TIMEOUT = 2 * REQUEST_TIMEOUT + 1  # one check: at most two requests one after the other
OVERALL_TIMEOUT = 25.0  # all checks; with start-up and shutdown the command stays under 30 s
NOT_LEARNED = 10**9  # a budget's limit until the panel's X-RateLimit-Limit header replaces it
STORE_PATH = Path("embed") / "embed_locations.json"
NEEDED = {  # what the bot needs in every channel it posts in, named as Discord's settings name them
    "View Channel": discord.Permissions(view_channel=True).value,
    "Send Messages": discord.Permissions(send_messages=True).value,
    "Embed Links": discord.Permissions(embed_links=True).value,
    "Attach Files": discord.Permissions(attach_files=True).value,
    "Read Message History": discord.Permissions(read_message_history=True).value,
}
ADMINISTRATOR = discord.Permissions(administrator=True).value
INVITE = "https://discord.com/oauth2/authorize?client_id={}&scope=bot+applications.commands&permissions={}"
APP_KEY_FIX = (
    "create an application key (Admin → Application API) with Read on Servers, Nodes and Allocations "
    "and set PTERODACTYL_APPLICATION_API_KEY"
)
CLIENT_KEY_FIX = (
    "log in to the panel as the user the bot acts as, create a key (Account → API Credentials) "
    "and set PTERODACTYL_CLIENT_API_KEY"
)

Mark = Literal["ok", "warn", "fail", "skip"]
MARKS: dict[Mark, str] = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}


@dataclass(frozen=True, slots=True)
class Line:
    """One printed line: what was checked and found, and for a warning or a failure what to do."""

    mark: Mark
    text: str
    fix: str = ""
    title: str = ""  # empty: the check's title

    def render(self, title: str) -> str:
        line = f"{MARKS[self.mark]} {self.title or title}: {self.text}"
        return f"{line} → {self.fix}" if self.fix else line


def ok(text: str, *, title: str = "") -> Line:
    return Line("ok", text, title=title)


def warn(text: str, fix: str, *, title: str = "") -> Line:
    return Line("warn", text, fix, title)


def fail(text: str, fix: str, *, title: str = "") -> Line:
    return Line("fail", text, fix, title)


def skip(text: str, *, title: str = "") -> Line:
    return Line("skip", text, title=title)


class Unanswered(Exception):
    """A request got no answer in time (the message names it)."""


async def within(step: Awaitable[T], what: str, seconds: float = REQUEST_TIMEOUT) -> T:
    """Await one network step with its own timeout (Discord's HTTP client has none)."""
    try:
        async with asyncio.timeout(seconds):
            return await step
    except TimeoutError:
        raise Unanswered(f"{what} did not answer within {seconds:g} s") from None


@dataclass
class Doctor:
    """What every check may use, and what earlier checks learned for later ones."""

    settings: Settings
    api: PterodactylAPI  # open; short timeout, no retries
    discord: HTTPClient  # logged in by the token check
    config_warnings: Sequence[str]
    cards: dict[str, EmbedLocation]  # from embed_locations.json, read without changing it
    store_problem: str | None
    dropped_cards: int
    client_servers: list[PanelServer] | None = None  # what the bot lists (SERVER_SCOPE)
    client_refusal: PterodactylAuthError | None = None
    account: Account | None = None
    app_servers: int | None = None
    nodes: list[Mapping[str, Any]] = field(default_factory=list)  # Application API, the first page
    bot_id: int = 0
    application_id: int = 0
    guild_name: str = ""
    role_permissions: dict[int, int] = field(default_factory=dict)  # role id -> permission bits
    bot_roles: list[int] = field(default_factory=list)

    @property
    def invite(self) -> str:
        return INVITE.format(self.application_id, sum(NEEDED.values()))


CheckFn = Callable[[Doctor], Awaitable[Line | Sequence[Line]]]


@dataclass(frozen=True, slots=True)
class Check:
    key: str  # what later checks name in ``needs``
    title: str
    run: CheckFn
    needs: tuple[str, ...] = ()  # run only after these passed (warnings count as passed)
    after: tuple[str, ...] = ()  # run only after these finished, whatever they found
    waits_on: str = "the panel"  # named when the check runs out of time
    timeout: float = STEP_TIMEOUT


# -- the panel ------------------------------------------------------------------------------------


def network_problem(exc: BaseException | None, url: str) -> tuple[str, str]:
    """What a failed connection to ``url`` means, and the likely fix."""
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'https' else 80)}"
    if isinstance(exc, TimeoutError):
        return (
            f"{where} did not answer within {REQUEST_TIMEOUT:g} s",
            "check that it runs and is not firewalled",
        )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return f"its TLS certificate was refused ({exc.certificate_error})", "renew or fix the certificate"
    if isinstance(exc, aiohttp.ClientSSLError):
        return "the TLS handshake failed", "use http:// if that port does not speak https, or fix its TLS"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"{parts.hostname} does not resolve (DNS)", "check the spelling and this machine's DNS"
    if isinstance(exc, aiohttp.ClientConnectorError) and isinstance(exc.os_error, ConnectionRefusedError):
        return f"nothing listens on {where} (connection refused)", (
            "check the port and that the web server runs; inside Docker, 127.0.0.1 is the container "
            "itself: use the host's address"
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {where} ({exc.os_error.strerror})", "check the address and the network"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{where} closed the connection without answering", "check http:// against https://"
    return f"cannot reach {where} ({type(exc).__name__})", "check the address and the network"


async def check_panel_url(doc: Doctor) -> Line:
    url = doc.settings.panel_url
    try:
        doc.client_servers = await doc.api.list_servers(
            scope="all" if doc.settings.server_scope == "all" else "mine"
        )
    except PterodactylAuthError as exc:  # JSON and a refusal: the address is right, the key is not
        doc.client_refusal = exc
        return ok(f"{url} answers as a panel API (JSON from /api/client; it refused the client key)")
    except MalformedResponseError as exc:
        fix = (
            "use the address the browser ends on (https://, no path)"
            if "redirected" in str(exc)
            else "PTERODACTYL_URL must be the panel's own address (like https://panel.example.com, no /api "
            "or other path), with no login page or proxy page in front of /api"
        )
        return fail(f"{url} answers, but not as the panel's API: {exc}", fix)
    except ServerNotFoundError:
        return fail(f"{url} has no panel API (GET /api/client: 404)", "remove any path from PTERODACTYL_URL")
    except PterodactylConnectionError as exc:
        problem, fix = network_problem(exc.__cause__, url)
        return fail(f"cannot reach {url}: {problem}", fix)
    return ok(f"{url} answers as a panel API (JSON from /api/client)")


async def check_client_key(doc: Doctor) -> Line:
    key = mask_secret(doc.settings.client_api_key)
    try:
        if doc.client_refusal is not None:  # the address check already heard the refusal
            raise doc.client_refusal
        doc.account = account = await doc.api.account()
    except PterodactylAuthError as exc:
        why = (
            "it was revoked or mistyped, or it belongs to another panel"
            if exc.status == 401
            else "an application key in the client slot, or a user who may not use the API"
        )
        return fail(f"the panel refused {key} ({exc.status}: {exc.detail}): {why}", CLIENT_KEY_FIX)
    admin = "a root admin" if account.admin else "not an admin"
    return ok(f"{key} belongs to the panel user {account.username} ({admin})")


async def check_app_key(doc: Doctor) -> Line:
    key = mask_secret(doc.settings.application_api_key)
    reads = {"Servers": "/api/application/servers", "Nodes": "/api/application/nodes"}
    answers = await asyncio.gather(*map(doc.api.application_count, reads.values()), return_exceptions=True)
    refused: dict[str, PterodactylAuthError] = {}
    for name, answer in zip(reads, answers, strict=True):
        if isinstance(answer, PterodactylAuthError):
            refused[name] = answer
        elif isinstance(answer, BaseException):
            raise answer  # run_checks explains a connection problem
    servers, nodes = answers
    allocations = "no node yet to read allocations of"
    if not isinstance(nodes, BaseException):
        doc.nodes = nodes[1]
        node_id = nodes[1][0].get("id") if nodes[1] else None
        if isinstance(node_id, int):
            try:
                await doc.api.application_count(f"/api/application/nodes/{node_id}/allocations")
                allocations = "their allocations"
            except PterodactylAuthError as exc:
                refused["Allocations"] = exc
    if refused and all(exc.status == 401 for exc in refused.values()):
        return fail(f"the panel refused {key} (401): it was revoked or mistyped", APP_KEY_FIX)
    if refused:
        names = " and ".join(refused)
        return fail(
            f"{key} may not read {names} (the panel answered 403)", f"{APP_KEY_FIX} (missing: {names})"
        )
    assert not isinstance(servers, BaseException) and not isinstance(nodes, BaseException)
    doc.app_servers = servers[0]
    return ok(f"{key} reads {servers[0]} server(s), {nodes[0]} node(s) and {allocations}")


async def check_servers(doc: Doctor) -> Sequence[Line]:
    assert doc.client_servers is not None and doc.account is not None and doc.app_servers is not None
    user, seen, total = doc.account.username, len(doc.client_servers), doc.app_servers
    if doc.settings.server_scope == "all" and not doc.account.admin:
        return [
            fail(
                f"SERVER_SCOPE=all lists every server only for a root admin's client key; {user} is "
                f"not an admin, so the bot sees none of the {total} server(s)",
                f"use a root admin's client key, or SERVER_SCOPE=mine for the servers {user} owns or shares",
            )
        ]
    if total == 0:
        lines = [warn("the panel has no servers yet", "create one; /server_status offers it then")]
    elif seen < total:
        text = (
            f"{user} sees {seen} of the {total} server(s) the application key lists: the other "
            f"{total - seen} will not be offered in /server_status (their cards and power buttons would fail)"
        )
        fix = (
            "fine if the bot should show only those. Only if it should show every server: a root admin's "
            "client key with SERVER_SCOPE=all"
        )
        lines = [warn(text, fix)]
    else:
        lines = [ok(f"{user} sees all {total} server(s) the application key lists")]
    visible = {server.identifier for server in doc.client_servers}
    if lost := sorted(server_id for server_id in doc.cards if server_id not in visible):
        text = (
            f"{len(lost)} card(s) in {STORE_PATH} are for servers {user} cannot see ({', '.join(lost[:5])}): "
            "they will show as inaccessible (or go, if the server was deleted)"
        )
        fix = "give the user access to those servers, or delete those cards"
        lines.append(warn(text, fix, title="Existing cards"))
    return lines


def cards_on_time(per_window: int, interval: float) -> int:
    """How many cards are polled every ``interval`` s before the budget makes polling stretch."""
    cards = 0
    while cards < per_window and stretched_interval(cards + 1, interval, per_window) <= interval:
        cards += 1
    return cards


async def check_limits(doc: Doctor) -> Line:
    client, application = doc.api.budgets["client"], doc.api.budgets["application"]
    if client.limit == NOT_LEARNED:
        learned = "the panel sent no X-RateLimit-Limit header; the bot assumes 720 client requests a minute"
        client = RequestBudget(720)
    else:
        also = f" and {application.limit} application" if application.limit != NOT_LEARNED else ""
        learned = f"the panel allows {client.limit} client{also} requests a minute (X-RateLimit-Limit)"
    interval, cards = doc.settings.update_interval, len(doc.cards)
    fit = cards_on_time(client.polling_per_minute, interval)
    text = (
        f"{learned}; at UPDATE_INTERVAL={interval:g} s up to {fit} cards are polled on time ({cards} today)"
    )
    if cards > fit:
        every = stretched_interval(cards, interval, client.polling_per_minute, client.WINDOW)
        fix = "fine as is; to poll on time, raise the panel's APP_API_CLIENT_RATELIMIT"
        return warn(f"{text}: polling stretches to every {every:.1f} s", fix)
    return ok(text)


async def check_panel_type(doc: Doctor) -> Line:
    flavour, why = await doc.api.detect_panel()
    return ok(f"{PANEL_NAMES[flavour]} ({why}); the API does not show its version")


# -- Discord, through discord.py's own HTTP client (its routes, rate limits, and the tests' stand-in) ---


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


# -- local files ----------------------------------------------------------------------------------


async def check_local(doc: Doctor) -> Sequence[Line]:
    title, cards = "Card locations", len(doc.cards)
    if problems := check_writable(Path("embed"), Path("logs")):  # as a normal start does
        uid = os.getuid()
        fix = (
            f"let uid {uid} write there (e.g. chown -R {uid} embed logs); a file in a folder's place must go"
        )
        folders = fail("; ".join(problems), fix, title="Folders")
    else:
        folders = ok("embed/ and logs/ are writable", title="Folders")
    if not STORE_PATH.parent.is_dir():
        store = skip("skipped: embed/ is not a folder", title=title)
    elif doc.store_problem:
        fix = "fix its owner or mode, or restore it from a backup (or delete it)"
        store = fail(f"{doc.store_problem}; the file was left as it is", fix, title=title)
    elif doc.dropped_cards:
        text = f"{STORE_PATH} holds {cards} card(s); {doc.dropped_cards} entry(ies) cannot be read"
        store = warn(
            text, "a normal start drops them: post those cards again with /server_status", title=title
        )
    elif not STORE_PATH.exists():
        store = ok(f"no cards yet ({STORE_PATH} does not exist)", title=title)
    else:
        store = ok(f"{STORE_PATH} holds {cards} card(s)", title=title)
    return [folders, store]


async def check_configuration(doc: Doctor) -> Sequence[Line]:
    if doc.config_warnings:
        return [warn(warning, "rename or remove that variable") for warning in doc.config_warnings]
    s = doc.settings
    return [ok(f"valid (SERVER_SCOPE={s.server_scope}, UPDATE_INTERVAL={s.update_interval:g} s)")]


async def check_live_updates(doc: Doctor) -> Sequence[Line]:
    """7. For one server per node: can the Wings websocket be opened and authenticated from here?"""
    if doc.settings.live_updates == "off":
        return [skip("LIVE_UPDATES=off: every card is polled")]
    assert doc.client_servers is not None  # guaranteed by needs=("client_key",)
    one_per_node: dict[str, PanelServer] = {}
    for server in doc.client_servers:  # the first listed server of each node, nodes by name
        if not server.blocking_status:
            one_per_node.setdefault(server.node, server)
    one_per_node = dict(sorted(one_per_node.items()))
    if not one_per_node:
        return [skip("no server to try a socket on")]
    answers = await asyncio.gather(
        *(
            wings.probe(doc.api, s, doc.settings.panel_url, within=REQUEST_TIMEOUT)
            for s in one_per_node.values()
        )
    )
    lines = []
    for (node, server), (works, why) in zip(one_per_node.items(), answers, strict=True):
        title = f"Live updates, node {node}"
        if works:
            lines.append(ok(f"{why} ({server.name})", title=title))
        else:
            lines.append(warn(f"{why} ({server.name})", "until then its servers are polled", title=title))
    return lines


CHECKS: list[Check] = [
    Check("configuration", "Configuration", check_configuration, waits_on="nothing"),
    Check("panel_url", "Panel address", check_panel_url),  # 1
    Check("client_key", "Client API key", check_client_key, needs=("panel_url",)),  # 2
    Check("app_key", "Application API key", check_app_key, needs=("panel_url",)),  # 3
    Check("servers", "Servers", check_servers, needs=("client_key", "app_key")),  # 4
    Check("limits", "Request limits", check_limits, needs=("client_key",), after=("app_key",)),  # 5
    Check("panel_type", "Panel type", check_panel_type, needs=("client_key",)),  # 6
    Check(
        "live_updates",
        "Live updates",
        check_live_updates,
        needs=("client_key",),
        waits_on="Wings",
        timeout=REQUEST_TIMEOUT + 1,
    ),  # 7
    Check("token", "Discord token", check_token, waits_on="Discord"),  # 8
    Check("guild", "Discord server", check_guild, needs=("token",), waits_on="Discord"),  # 9
    Check("commands", "Slash commands", check_commands, needs=("guild",), waits_on="Discord"),  # 10
    Check("channels", "Channels", check_channels, needs=("guild",), waits_on="Discord"),  # 11
    Check("local", "Local files", check_local, waits_on="the disk"),  # 12
]


# -- running them ---------------------------------------------------------------------------------


def unexpected(doc: Doctor, check: Check, exc: Exception) -> Line:
    """A failure the check did not explain itself: the network, an odd answer, a bug."""
    if isinstance(exc, Unanswered):
        return fail(str(exc), f"check that {check.waits_on} runs and is reachable from here")
    if isinstance(exc, PterodactylConnectionError):
        problem, fix = network_problem(exc.__cause__, doc.settings.panel_url)
        return fail(f"cannot reach the panel: {problem}", fix)
    if isinstance(exc, PterodactylError):  # 429, 5xx, an answer the client cannot read
        return fail(str(exc), "check the panel's own log; if it is rate limiting, try again in a minute")
    if isinstance(exc, discord.HTTPException):
        return fail(f"Discord answered {exc.status} {exc.text}", "see discordstatus.com, then try again")
    if isinstance(exc, aiohttp.ClientError | OSError):
        problem, fix = network_problem(exc, discord.http.Route.BASE)
        return fail(f"cannot reach Discord: {problem}", fix)
    log.exception("The %s check failed", check.key)
    return fail(f"the check itself failed ({type(exc).__name__}: {exc})", "please report this as a bug")


def passed(lines: Sequence[Line]) -> bool:
    return all(line.mark in ("ok", "warn") for line in lines)


async def run_checks(
    doc: Doctor,
    checks: Sequence[Check] = CHECKS,
    overall: float = OVERALL_TIMEOUT,
    emit: Callable[[Check, list[Line]], None] = lambda check, lines: None,
) -> list[Line]:
    """Start every check at once (each waits for what it needs); ``emit`` their lines in list order."""
    titles = {check.key: check.title for check in checks}
    tasks: dict[str, asyncio.Task[list[Line]]] = {}

    async def run(check: Check) -> list[Line]:
        if needed := [tasks[key] for key in (*check.needs, *check.after)]:
            await asyncio.wait(needed)  # not `await task`: being cancelled must not cancel them
        if failed := [titles[key] for key in check.needs if not passed(tasks[key].result())]:
            return [skip(f"skipped: {failed[0]} did not pass")]
        try:
            async with asyncio.timeout(check.timeout):
                found = await check.run(doc)
        except TimeoutError:
            fix = "check that it is reachable from here"
            return [fail(f"no answer from {check.waits_on} within {check.timeout:g} s", fix)]
        except Exception as exc:
            return [unexpected(doc, check, exc)]
        return [found] if isinstance(found, Line) else list(found)

    for check in checks:
        tasks[check.key] = asyncio.create_task(run(check), name=f"check-{check.key}")
    deadline = asyncio.get_running_loop().time() + overall
    report: list[Line] = []
    for check in checks:
        task = tasks[check.key]
        await asyncio.wait([task], timeout=max(0.0, deadline - asyncio.get_running_loop().time()))
        if task.done():
            lines = task.result()
        elif any(not tasks[key].done() for key in (*check.needs, *check.after)):
            lines = [skip("skipped: what it needs did not finish in time")]
        else:
            lines = [
                fail(f"still waiting for {check.waits_on} after {overall:g} s", "check that it is reachable")
            ]
        emit(check, lines)
        report += lines
    if pending := [task for task in tasks.values() if not task.done()]:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=2)
    return report


async def diagnose(
    settings: Settings, config_warnings: Sequence[str], emit: Callable[[Check, list[Line]], None]
) -> list[Line]:
    cards, problem, dropped = EmbedStore.inspect(STORE_PATH)  # never load(): it moves a damaged file
    api = PterodactylAPI(
        settings.panel_url,
        settings.client_api_key,
        settings.application_api_key,
        timeout=REQUEST_TIMEOUT,
        max_retries=0,
        client_limit=NOT_LEARNED,
        application_limit=NOT_LEARNED,
    )
    http = HTTPClient(asyncio.get_running_loop())
    try:
        await api.open()
        doc = Doctor(settings, api, http, config_warnings, cards, problem, dropped)
        return await run_checks(doc, CHECKS, OVERALL_TIMEOUT, emit)
    finally:
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2):
                await api.close()
                await http.close()


def check_setup(settings: Settings, config_warnings: Sequence[str]) -> int:
    """``--check``: print one line per check on stdout; 0 when none failed, else 1."""
    setup_logging(settings)  # the log (stderr and logs/) gets library warnings, redacted
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(errors="replace")  # a terminal without UTF-8 still gets every line

    def say(text: str) -> None:
        for secret in settings.secrets:  # the last line of defence, as in the log
            text = text.replace(secret, "[redacted]")
        print(text, flush=True)

    def emit(check: Check, lines: list[Line]) -> None:
        for line in lines:
            say(line.render(check.title))

    say(
        f"Checking the setup (read-only) for the panel {settings.panel_url} and the Discord server "
        f"{settings.allowed_guild_id}:"
    )
    counts = Counter(line.mark for line in asyncio.run(diagnose(settings, config_warnings, emit)))
    if counts["fail"]:
        say(f"{counts['fail']} check(s) failed: fix the ✗ lines above, then run --check again.")
    elif counts["warn"]:
        say(f"No check failed; {counts['warn']} warning(s): see the ! lines above.")
    else:
        say("Every check passed.")
    log.info("Setup check: %d passed, %d warned, %d failed", counts["ok"], counts["warn"], counts["fail"])
    return 1 if counts["fail"] else 0
