"""An in-process world for handler and update-task tests: the real bot, logged in to the Discord
stand-in over HTTP and its gateway, polling the fake panel over HTTP, with an injected clock.

Pointing discord.py at 127.0.0.1 happens here, on the test side (the same three class attributes
the stand-in's sitecustomize patches for bot processes).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import discord.asset
import discord.gateway
import discord.http
import yarl

from ptero.bot import PterodactylBot
from ptero.config import Settings
from ptero.pacing import ChannelPacer
from ptero.panel import PterodactylAPI
from ptero.store import EmbedStore
from ptero.wings import LiveTimings
from tests.conftest import ManualClock
from tests.discord_standin import DiscordStandin
from tests.fake_panel import FakePanel

TOKEN = "MTAwMDAwMDAwMDAwMDAwMDAw.Gtest.harness-token-never-logged"
WALL_EPOCH = 1_764_000_000.0


class GuildMembers:
    """What members do, shared by the in-process World and the end-to-end E2E: the attributes below
    come from the dataclass that mixes this in."""

    discord: DiscordStandin
    guild_id: int
    channel_id: int
    member_id: int
    other_guild_id: int
    other_guild_channel_id: int
    stranger_id: int

    async def slash(
        self, name: str, *, member: int | None = None, channel: int | None = None, elsewhere: bool = False
    ) -> Any:
        """A slash command from the allowed guild, or (elsewhere) from another guild the bot is in."""
        if elsewhere:
            return await self.discord.slash_command(
                self.other_guild_id, self.other_guild_channel_id, self.stranger_id, name
            )
        return await self.discord.slash_command(
            self.guild_id, channel or self.channel_id, member or self.member_id, name
        )

    async def click(
        self, message_id: int, custom_id: str, *, member: int | None = None, elsewhere: bool = False
    ) -> Any:
        """A button click on a status message, or (elsewhere) one forged to come from another guild."""
        if elsewhere:
            return await self.discord.component_click(
                message_id,
                custom_id,
                guild_id=self.other_guild_id,
                channel_id=self.other_guild_channel_id,
                member_id=self.stranger_id,
                check=False,
            )
        return await self.discord.component_click(
            message_id, custom_id, guild_id=self.guild_id, member_id=member or self.member_id
        )


@dataclass
class World(GuildMembers):
    panel: FakePanel
    discord: DiscordStandin
    bot: PterodactylBot
    clock: ManualClock
    store_path: Path
    guild_id: int
    channel_id: int
    other_channel_id: int
    operator_id: int  # has the control role
    member_id: int  # plain member
    admin_id: int  # Administrator, no control role
    other_guild_id: int
    other_guild_channel_id: int
    stranger_id: int  # a member of the other guild only
    settings: Settings | None = None
    api_timeout: float = 2.0
    runner: asyncio.Task[None] | None = None
    pacer: ChannelPacer | None = None
    live_timings: LiveTimings | None = None
    alerts_channel_id: int = 0
    audit_channel_id: int = 0
    on_call_role_id: int = 0

    def wall_clock(self) -> float:
        """Unix time that moves with the test's clock (what the store keeps across restarts)."""
        return WALL_EPOCH + self.clock.now

    async def start_bot(self) -> None:
        """Start a fresh bot (as a new process would: new caches, the same store file) and connect it."""
        assert self.settings is not None
        api = PterodactylAPI(
            self.panel.url,
            self.panel.client_key,
            self.panel.app_key,
            timeout=self.api_timeout,
            max_retries=1,
            backoff_base=0.01,
        )
        self.bot = PterodactylBot(
            self.settings,
            api=api,
            store=EmbedStore(self.store_path),
            clock=self.clock,
            wall_clock=self.wall_clock,
            heartbeat_path=self.store_path.parent.parent / "heartbeat.json",
            pacer=self.pacer,
            run_updates=False,  # the test drives update cycles itself
            live_timings=self.live_timings,
        )
        ready_before = self.discord.ready_count
        await self.bot.login(TOKEN)
        self.runner = asyncio.create_task(self.bot.connect(reconnect=False))
        # READY and GUILD_CREATE are on the wire: every later event reaches the bot after them. (Waiting
        # for on_ready would add discord.py's 2 s guild_ready_timeout to every test.)
        await self.discord.wait_ready(timeout=10, count=ready_before + 1)

    async def stop_bot(self) -> None:
        if self.bot is not None:
            await self.bot.close()
        if self.runner is not None:
            await asyncio.wait({self.runner}, timeout=5)

    async def after_event(self, event: str, action: Callable[[], object]) -> None:
        """Do ``action`` and wait until the bot has received the gateway event it causes."""
        waiter = asyncio.ensure_future(self.bot.wait_for(event, timeout=5))
        await asyncio.sleep(0)  # let wait_for register its listener
        action()
        await waiter
        await asyncio.sleep(0)  # the bot's own on_<event> handler task runs next

    async def restart_bot(self) -> None:
        await self.stop_bot()
        await self.start_bot()


def point_discord_py_at(url: str) -> dict[str, Any]:
    """Redirect discord.py's REST base, gateway and CDN to the stand-in; returns what to restore."""
    saved = {
        "route": discord.http.Route.BASE,
        "gateway": discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY,
        "asset": discord.asset.Asset.BASE,
    }
    discord.http.Route.BASE = f"{url}/api/v10"
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url.replace("http://", "ws://") + "/gateway")
    discord.asset.Asset.BASE = f"{url}/cdn"
    return saved


def restore_discord_py(saved: dict[str, Any]) -> None:
    discord.http.Route.BASE = saved["route"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = saved["gateway"]
    discord.asset.Asset.BASE = saved["asset"]


@asynccontextmanager
async def world(
    tmp_path: Path,
    *,
    panel: FakePanel | None = None,
    update_interval: float = 10.0,
    api_timeout: float = 2.0,
    interaction_deadline: float = 3.0,
    pacer: ChannelPacer | None = None,
    rate_limits: dict[str, tuple[int, float]] | None = None,
    flavour: str = "pterodactyl",
    resource_cache: float = 0.0,
    live: bool = False,
    live_timings: LiveTimings | None = None,
    alerts: bool = False,  # down/up alerts in #alerts, mentioning @On Call
    alert_after: int = 60,
    audit: bool = False,  # the audit trail in #audit
) -> AsyncIterator[World]:
    clock = ManualClock()
    # The panel's 20 s resource cache (when asked for) runs on the bot's clock, so tests can step it.
    panel = panel or FakePanel(flavour=flavour, clock=clock, resource_cache_seconds=resource_cache)
    stand_in = DiscordStandin(token=TOKEN, interaction_deadline=interaction_deadline, rate_limits=rate_limits)
    # Discord's real pace (5 edits per 5 s in a channel) would make tests wait; only the pacing test
    # asks for it, with a stand-in that enforces the same limit.
    pacer = pacer or ChannelPacer(burst=1000, per=1.0)
    async with panel, stand_in:
        guild = stand_in.add_guild(name="Game Night")
        channel = stand_in.add_channel(guild.id, name="server-status")
        other_channel = stand_in.add_channel(guild.id, name="lobby")
        alerts_channel = stand_in.add_channel(guild.id, name="alerts")
        audit_channel = stand_in.add_channel(guild.id, name="audit")
        on_call = stand_in.add_role(guild.id, name="On Call")
        control = stand_in.add_role(guild.id, name="Game Server User")
        operator = stand_in.add_member(guild.id, username="olivia", roles=[control.id])
        member = stand_in.add_member(guild.id, username="max")
        admin = stand_in.add_member(guild.id, username="ada", administrator=True)
        other_guild = stand_in.add_guild(name="Elsewhere")
        other_guild_channel = stand_in.add_channel(other_guild.id, name="general")
        stranger = stand_in.add_member(other_guild.id, username="mallory", roles=[])

        settings = Settings(
            discord_token=TOKEN,
            allowed_guild_id=guild.id,
            control_roles=("Game Server User",),
            panel_url=panel.url,
            client_api_key=panel.client_key,
            application_api_key=panel.app_key,
            update_interval=update_interval,
            live_updates="auto" if live else "off",
            alert_channel_id=alerts_channel.id if alerts else None,
            alert_mention="On Call" if alerts else None,
            alert_after=alert_after,
            audit_channel_id=audit_channel.id if audit else None,
        )
        store_path = tmp_path / "embed" / "embed_locations.json"
        saved = point_discord_py_at(stand_in.url)
        w = World(
            panel,
            stand_in,
            None,
            clock,
            store_path,
            guild.id,
            channel.id,
            other_channel.id,  # type: ignore[arg-type]
            operator.id,
            member.id,
            admin.id,
            other_guild.id,
            other_guild_channel.id,
            stranger.id,
            settings=settings,
            api_timeout=api_timeout,
            pacer=pacer,
            live_timings=live_timings,
            alerts_channel_id=alerts_channel.id,
            audit_channel_id=audit_channel.id,
            on_call_role_id=on_call.id,
        )
        try:
            await w.start_bot()
            yield w
        finally:
            await w.stop_bot()
            restore_discord_py(saved)


def custom_ids(message: Any) -> list[str]:
    """The custom ids of every component of a stand-in message, in order."""
    ids: list[str] = []
    for row in message.components:
        for component in row.get("components", []):
            if "custom_id" in component:
                ids.append(component["custom_id"])
    return ids


def components(message: Any) -> list[dict[str, Any]]:
    return [c for row in message.components for c in row.get("components", [])]


async def answer(interaction: Any, timeout: float = 10.0) -> str:
    """The bot's words on an interaction: the response's content, or (deferred) the first followup's."""
    response = await interaction.wait_response(timeout=timeout)
    if response.get("type") == 5:  # deferred: the words come as a followup
        await interaction.wait_followups(1, timeout=timeout)
        return interaction.followups[0].get("content") or ""
    return (response.get("data") or {}).get("content") or ""


async def post_status(
    w: World, identifier: str, *, channel: int | None = None, member: int | None = None
) -> int:
    """Use /server_status and pick a server, as an operator (who may post cards) would; returns the
    posted message id."""
    member = member or w.operator_id
    command = await w.slash("server_status", channel=channel, member=member)
    await command.wait_followups(1)
    menu = command.followup_messages[0]
    select = next(c for c in components(menu) if c["type"] == 3)
    before = {m.id for m in w.discord.channel_messages(channel or w.channel_id)}
    choice = await w.discord.select_choice(
        menu.id,
        select["custom_id"],
        values=[identifier],
        guild_id=w.guild_id,
        channel_id=channel or w.channel_id,
        member_id=member,
    )
    assert "Posted the live status" in await answer(choice)
    posted = [m for m in w.discord.channel_messages(channel or w.channel_id) if m.id not in before]
    assert len(posted) == 1
    return posted[0].id


def stored(w: World) -> dict[str, dict[str, str]]:
    """Where the store file says each card is (its channel and message ids)."""
    return locations(json.loads(w.store_path.read_text()))


def locations(entries: dict[str, dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {sid: {k: entry[k] for k in ("channel_id", "message_id")} for sid, entry in entries.items()}
