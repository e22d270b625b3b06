"""Cards: formatting and the status embed of one server. Pure: the same snapshot gives the same embed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import discord

from ptero.panel import (
    MalformedResponseError,
    NodeUnreachableError,
    PanelServer,
    PanelServerError,
    PterodactylAuthError,
    PterodactylConnectionError,
    PterodactylError,
    RateLimitedError,
    ServerConflictError,
    ServerNotFoundError,
    ServerResources,
)
from ptero.store import LastAction


@dataclass(frozen=True, slots=True)
class StateStyle:
    label: str
    colour: int


STATE_STYLES: dict[str, StateStyle] = {
    "running": StateStyle("🟢 Running", 0x57F287),
    "starting": StateStyle("🟡 Starting", 0xFEE75C),
    "stopping": StateStyle("🟠 Stopping", 0xE67E22),
    "offline": StateStyle("🔴 Offline", 0xED4245),
    "suspended": StateStyle("⛔ Suspended", 0x992D22),
    "installing": StateStyle("🛠️ Installing", 0x5865F2),
    "install_failed": StateStyle("⚠️ Install failed", 0xED4245),
    "restoring_backup": StateStyle("♻️ Restoring backup", 0x5865F2),
    "transferring": StateStyle("🚚 Transferring", 0x5865F2),
    "unreachable": StateStyle("❔ Panel unreachable", 0x95A5A6),
    "node_unreachable": StateStyle("❔ Node unreachable", 0x95A5A6),
    "removed": StateStyle("🗑️ Removed from the panel", 0x4F545C),
    "inaccessible": StateStyle("🔒 Not accessible to the bot's panel user", 0x4F545C),
}
NEUTRAL_COLOUR = 0x95A5A6
UNREACHABLE = ("unreachable", "node_unreachable")  # the last known data stays up under these


def state_style(state: str) -> StateStyle:
    """The label and colour of a state; one the bot does not know shows as it is, neutrally."""
    known = STATE_STYLES.get(state)
    if known is not None:
        return known
    shown = " ".join(state.replace("_", " ").split()) or "unknown"
    return StateStyle(truncate(f"❔ {shown[:1].upper()}{shown[1:]}", STATE_LABEL_LIMIT), NEUTRAL_COLOUR)


def md(text: str) -> str:
    """A name or alias as plain text inside Discord markdown (a backtick or ** cannot break a reply)."""
    return discord.utils.escape_markdown(text, as_needed=False).replace("@", "@\u200b")


def code(text: str) -> str:
    """``text`` as an inline code span that a backtick inside cannot end early."""
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def format_bytes(value: float) -> str:
    """Binary units, as the panel shows them: 1.5 GiB."""
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    amount = float(value)
    for unit in units:
        if abs(amount) < 1024 or unit == units[-1]:
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    raise AssertionError("unreachable")


def format_limit_mb(limit_mb: int) -> str:
    return "∞" if limit_mb <= 0 else format_bytes(limit_mb * 1024 * 1024)


def format_uptime(ms: int) -> str:
    seconds = max(0, int(ms // 1000))
    days, seconds = divmod(seconds, 86400)
    hours, seconds = divmod(seconds, 3600)
    minutes, seconds = divmod(seconds, 60)
    if days:
        return f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    if minutes:
        return f"{minutes}m {seconds}s"
    return f"{seconds}s"


def format_cpu(cpu: float, limit: float) -> str:
    """``45.5% of 200%`` (100% = one thread), ``of ∞`` when the server has no CPU limit."""
    return f"{cpu:.1f}% of {'∞' if limit <= 0 else f'{limit:g}%'}"


def truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# Discord's embed limits (title 256, description 4096, field name 256 / value 1024, footer 2048,
# 6000 in all) are kept here and only here: every piece of a card goes through these.
TITLE_LIMIT, FIELD_NAME_LIMIT, FIELD_VALUE_LIMIT, FOOTER_LIMIT = 256, 256, 1024, 2048
STATE_LABEL_LIMIT = 200  # a state the panel invents is shown, but not as an essay
NODE_LIMIT = 200


def add_field(embed: discord.Embed, name: str, value: str, *, limit: int = FIELD_VALUE_LIMIT) -> None:
    embed.add_field(
        name=truncate(name, FIELD_NAME_LIMIT),
        value=truncate(value or "?", min(limit, FIELD_VALUE_LIMIT)),
        inline=True,
    )


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """Everything a status message shows, independent of Discord."""

    server: PanelServer
    resources: ServerResources | None
    state: str
    stale: bool = False
    failure: str = "panel"  # what the last failed check could not reach: the panel or the node
    last_action: LastAction | None = None  # the last power action pressed on the card
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


GRAPH_FILENAME = "metrics.png"
EMBED_DESCRIPTION_LIMIT = 1000  # well under Discord's 4096: a status card, not an essay


def build_status_embed(snapshot: StatusSnapshot, *, graph_filename: str | None = None) -> discord.Embed:
    """The status card of one server. Pure: the same snapshot always gives the same embed."""
    server, res = snapshot.server, snapshot.resources
    style = state_style(snapshot.state)
    description = truncate(server.description.strip(), EMBED_DESCRIPTION_LIMIT) if server.description else ""
    if snapshot.stale and snapshot.state not in UNREACHABLE:
        what = "could not reach this server's node" if snapshot.failure == "node" else "did not answer"
        note = f"⚠️ The panel {what} at the last check; showing the last known data."
        description = f"{description}\n\n{note}" if description else note
    embed = discord.Embed(
        title=truncate(server.name, TITLE_LIMIT),
        description=description or None,
        colour=style.colour,
        timestamp=snapshot.updated_at,
    )
    add_field(embed, "State", style.label, limit=STATE_LABEL_LIMIT)
    add_field(embed, "Node", server.node, limit=NODE_LIMIT)
    live = res is not None and snapshot.state in ("running", "starting", "stopping", *UNREACHABLE)
    if res is not None:
        add_field(embed, "CPU", format_cpu(res.cpu_absolute, server.limits.cpu))
        add_field(
            embed, "Memory", f"{format_bytes(res.memory_bytes)} / {format_limit_mb(server.limits.memory_mb)}"
        )
        add_field(embed, "Disk", f"{format_bytes(res.disk_bytes)} / {format_limit_mb(server.limits.disk_mb)}")
        if live:
            rx, tx = format_bytes(res.network_rx_bytes), format_bytes(res.network_tx_bytes)
            add_field(embed, "Network", f"⬇ {rx} · ⬆ {tx}")
            add_field(embed, "Uptime", format_uptime(res.uptime_ms))
    if snapshot.last_action is not None:
        action = snapshot.last_action
        add_field(
            embed,
            "Last action",
            f"{action.action.capitalize()} by <@{action.user_id}>, <t:{int(action.at)}:R>",
        )
    embed.set_footer(text=truncate(f"{server.identifier} · last updated", FOOTER_LIMIT))
    if graph_filename:
        embed.set_image(url=f"attachment://{graph_filename}")
    return embed


def embed_fingerprint(embed: discord.Embed, graph: bytes | None) -> str:
    """What a message shows, minus its timestamp: equal fingerprints need no edit."""
    data = embed.to_dict()
    data.pop("timestamp", None)
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode())
    digest.update(hashlib.sha256(graph).digest() if graph else b"-")
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Card:
    """A rendered status card: what to send to Discord, and what the update rules remember of it."""

    embed: discord.Embed
    graph: bytes | None
    fingerprint: str
    state: str
    cpu: float


def build_card(snapshot: StatusSnapshot, graph: bytes | None) -> Card:
    embed = build_status_embed(snapshot, graph_filename=GRAPH_FILENAME if graph else None)
    cpu = snapshot.resources.cpu_absolute if snapshot.resources else 0.0
    return Card(embed, graph, embed_fingerprint(embed, graph), snapshot.state, cpu)


def inaccessible_card(name: str, server_id: str) -> Card:
    """A card whose server the client key's user can no longer see: not "unreachable", and not gone."""
    style = STATE_STYLES["inaccessible"]
    embed = discord.Embed(
        title=truncate(name, TITLE_LIMIT),
        description=(
            "The bot's panel user can no longer see this server (it was removed as owner or subuser), so "
            "this card is not updated. It resumes by itself once access is given back."
        ),
        colour=style.colour,
        timestamp=datetime.now(UTC),
    )
    add_field(embed, "State", style.label)
    embed.set_footer(text=truncate(f"{server_id} · last updated", FOOTER_LIMIT))
    return Card(embed, None, embed_fingerprint(embed, None), "inaccessible", 0.0)


def removed_embed(name: str) -> discord.Embed:
    """The last word on a card whose server left the panel."""
    return discord.Embed(
        title=truncate(f"{name} was removed from the panel", TITLE_LIMIT),
        description="This server no longer exists on the panel; this message is not updated any more.",
        colour=STATE_STYLES["removed"].colour,
        timestamp=datetime.now(UTC),
    )


def describe_panel_error(exc: PterodactylError, server_name: str) -> str:
    """A sentence a Discord member can act on. Never contains a key."""
    if isinstance(exc, ServerConflictError):
        return f"The panel refused: **{server_name}** is busy or blocked. The panel says: {exc.detail}"
    if isinstance(exc, PterodactylAuthError):
        return (
            "The panel refused the bot's API key (it lacks the permission for this action, or it was "
            "revoked). Ask the bot's admin to check the client API key."
        )
    if isinstance(exc, ServerNotFoundError):
        return f"The panel no longer knows **{server_name}**."
    if isinstance(exc, RateLimitedError):
        return f"The panel is rate-limiting the bot, try again in {exc.retry_after:.0f} s."
    if isinstance(exc, NodeUnreachableError):
        return (
            f"The panel could not reach the machine (node) that **{server_name}** runs on, so the action "
            "may not have been applied. Check its card in a minute; if the node stays down, tell the admin."
        )
    if isinstance(exc, PterodactylConnectionError | PanelServerError | MalformedResponseError):
        return "The panel is unreachable or not answering properly right now; try again in a minute."
    return f"The panel answered with an error: {exc}"
