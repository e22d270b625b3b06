"""Cards: formatting and the status embed of one server. Pure: the same snapshot gives the same embed."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

import discord

from ptero.panel import (
    MalformedResponseError,
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
    "removed": StateStyle("🗑️ Removed from the panel", 0x4F545C),
}


def state_style(state: str) -> StateStyle:
    return STATE_STYLES.get(state, StateStyle(f"❔ {state.replace('_', ' ').capitalize()}", 0x95A5A6))


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


@dataclass(frozen=True, slots=True)
class StatusSnapshot:
    """Everything a status message shows, independent of Discord."""

    server: PanelServer
    resources: ServerResources | None
    state: str
    stale: bool = False
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))


GRAPH_FILENAME = "metrics.png"
EMBED_DESCRIPTION_LIMIT = 1000  # well under Discord's 4096: a status card, not an essay


def build_status_embed(snapshot: StatusSnapshot, *, graph_filename: str | None = None) -> discord.Embed:
    """The status card of one server. Pure: the same snapshot always gives the same embed."""
    server, res = snapshot.server, snapshot.resources
    style = state_style(snapshot.state)
    description = truncate(server.description.strip(), EMBED_DESCRIPTION_LIMIT) if server.description else ""
    if snapshot.stale and snapshot.state != "unreachable":
        note = "⚠️ The panel did not answer the last check; showing the last known data."
        description = f"{description}\n\n{note}" if description else note
    embed = discord.Embed(
        title=truncate(server.name, 256),
        description=description or None,
        colour=style.colour,
        timestamp=snapshot.updated_at,
    )
    embed.add_field(name="State", value=style.label, inline=True)
    embed.add_field(name="Node", value=truncate(server.node or "?", 1024), inline=True)
    live = res is not None and snapshot.state in ("running", "starting", "stopping", "unreachable")
    if res is not None:
        embed.add_field(name="CPU", value=format_cpu(res.cpu_absolute, server.limits.cpu), inline=True)
        embed.add_field(
            name="Memory",
            value=f"{format_bytes(res.memory_bytes)} / {format_limit_mb(server.limits.memory_mb)}",
            inline=True,
        )
        embed.add_field(
            name="Disk",
            value=f"{format_bytes(res.disk_bytes)} / {format_limit_mb(server.limits.disk_mb)}",
            inline=True,
        )
        if live:
            embed.add_field(
                name="Network",
                value=f"⬇ {format_bytes(res.network_rx_bytes)} · ⬆ {format_bytes(res.network_tx_bytes)}",
                inline=True,
            )
            embed.add_field(name="Uptime", value=format_uptime(res.uptime_ms), inline=True)
    embed.set_footer(text=truncate(f"{server.identifier} · last updated", 2048))
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


def removed_embed(name: str) -> discord.Embed:
    """The last word on a card whose server left the panel."""
    return discord.Embed(
        title=truncate(f"{name} was removed from the panel", 256),
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
        return f"The panel is rate limiting the bot; try again in {exc.retry_after:.0f} s."
    if isinstance(exc, PterodactylConnectionError | PanelServerError | MalformedResponseError):
        return "The panel is unreachable or not answering properly right now; try again in a minute."
    return f"The panel answered with an error: {exc}"
