"""The bot: lifecycle, commands, gateway events and the update task. The work happens in the board
(what to show), the UI (what members press) and the panel client; this class wires them together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

from ptero import ui
from ptero.alerts import Alerting, PresenceLine
from ptero.board import StatusBoard
from ptero.config import Settings
from ptero.pacing import ChannelPacer
from ptero.panel import PterodactylAPI, PterodactylError
from ptero.records import CycleReport, ServerRecord
from ptero.rules import stretched_interval
from ptero.runtime import CycleLog, UpdateLoop, release_free_memory, write_heartbeat
from ptero.store import EmbedStore
from ptero.wings import LiveSource, LiveTimings
from server_metrics_graphs import ServerMetricsManager

log = logging.getLogger(__name__)
PANEL_NAMES = {"pelican": "Pelican", "pterodactyl": "Pterodactyl"}


class GuildCommandTree(app_commands.CommandTree["PterodactylBot"]):
    """The slash commands, answered only in the served guild (checked once, for every command)."""

    async def interaction_check(self, interaction: discord.Interaction[PterodactylBot], /) -> bool:
        if interaction.guild_id != interaction.client.settings.allowed_guild_id:
            await ui.reply(interaction, "Sorry, this bot serves one Discord server only.")
            return False
        return True

    async def on_error(
        self, interaction: discord.Interaction[PterodactylBot], error: app_commands.AppCommandError, /
    ) -> None:
        log.error("Command %s failed", interaction.command and interaction.command.name, exc_info=error)
        await ui.reply(interaction, ui.SOMETHING_WENT_WRONG)


def guard_gateway_parsers(parsers: dict[str, Callable[[Any], None]]) -> None:
    """One event discord.py cannot parse (a malformed payload) is logged and dropped; unguarded, its
    exception would end the gateway connection and with it the process."""

    def guarded(event: str, parse: Callable[[Any], None]) -> Callable[[Any], None]:
        def run(data: Any) -> None:
            try:
                parse(data)
            except Exception as exc:
                log.error(
                    "Dropped a %s event from Discord that could not be read (%s: %s)",
                    event,
                    type(exc).__name__,
                    exc,
                )

        return run

    for event, parse in list(parsers.items()):
        parsers[event] = guarded(event, parse)


class PterodactylBot(discord.Client):
    """Slash commands, persistent buttons, and the update task that keeps every card fresh."""

    def __init__(
        self,
        settings: Settings,
        *,
        api: PterodactylAPI | None = None,
        store: EmbedStore | None = None,
        metrics: ServerMetricsManager | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        heartbeat_path: Path | None = Path("logs") / "heartbeat.json",
        edit_timeout: float = 15.0,
        pacer: ChannelPacer | None = None,
        run_updates: bool = True,  # False: the caller (a test) runs the cycles itself
        live_timings: LiveTimings | None = None,
    ) -> None:
        # This bot never joins voice: skip discord.py's start-up warnings about voice libraries.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        intents = discord.Intents.none()
        intents.guilds = True  # roles and channels of the allowed guild, for role checks
        intents.guild_messages = True  # to hear that a card was deleted (not message content)
        super().__init__(intents=intents, allowed_mentions=discord.AllowedMentions.none())
        self.settings = settings
        self.api = api or PterodactylAPI(
            settings.panel_url, settings.client_api_key, settings.application_api_key
        )
        self.board = StatusBoard(
            settings,
            self.api,
            EmbedStore(Path("embed") / "embed_locations.json") if store is None else store,
            ServerMetricsManager() if metrics is None else metrics,  # "is None": an empty one is falsy
            ui.DiscordCards(self, settings.allowed_guild_id),
            clock=clock,
            wall_clock=wall_clock,
            edit_timeout=edit_timeout,
            pacer=pacer,
        )
        self.clock = clock
        self.alerts = Alerting(
            self,
            guild_id=settings.allowed_guild_id,
            alert_channel_id=settings.alert_channel_id,
            alert_mention=settings.alert_mention,
            alert_after=settings.alert_after,
            audit_channel_id=settings.audit_channel_id,
            clock=clock,
            wall_clock=wall_clock,
        )
        self.presence = PresenceLine(self, clock=clock)
        self.board.on_state = self._state_seen
        self.heartbeat_path = heartbeat_path
        self.updates = UpdateLoop(self._cycle, settings.update_interval)
        self.run_updates = run_updates
        self.live_timings = live_timings
        self.stopping = False  # close() has begun
        self.tree = GuildCommandTree(self)
        self._power_tasks: set[asyncio.Task[Any]] = set()
        self._stretched = False
        self.cycle_log = CycleLog(clock)
        guard_gateway_parsers(self._connection.parsers)
        self._register_commands()

    # -- lifecycle ------------------------------------------------------------------------------
    async def setup_hook(self) -> None:
        if self.heartbeat_path is not None:  # a previous run's heartbeat must not look like ours
            with contextlib.suppress(OSError):
                self.heartbeat_path.unlink()
        await self.api.open()
        await self._detect_panel()
        self.board.load()
        if self.settings.live_updates == "auto":
            self.board.live = LiveSource(
                self.api,
                self.settings.panel_url,
                on_state=self.board.on_live_state,
                on_stats=self.board.on_live_stats,
                timings=self.live_timings,
            )
        self.add_dynamic_items(ui.ServerButton)
        guild = discord.Object(id=self.settings.allowed_guild_id)
        try:
            synced = await self.tree.sync(guild=guild)
            log.info("Synced %d command(s) to guild %s", len(synced), guild.id)
        except Exception as exc:  # a refusal, or an answer discord.py cannot read: run on without them
            log.error(
                "Could not register the slash commands in guild %s (%s: %s). Was the bot invited with the "
                "applications.commands scope?",
                guild.id,
                type(exc).__name__,
                exc,
            )
        if self.run_updates:
            self.updates.start(before=self.wait_until_ready)

    async def _detect_panel(self) -> None:
        """Log which panel this is (the rules for its errors differ a little); never stops the start."""
        try:
            flavour, why = await asyncio.wait_for(self.api.detect_panel(), 10)
        except (PterodactylError, TimeoutError) as exc:
            log.warning(
                "Could not tell which panel %s is (%s); assuming Pterodactyl", self.settings.panel_url, exc
            )
            return
        log.info("Connected to %s at %s (%s)", PANEL_NAMES[flavour], self.settings.panel_url, why)

    async def on_ready(self) -> None:
        log.info("Connected to Discord as %s; serving guild %s", self.user, self.settings.allowed_guild_id)
        self.presence.update(*self.board.running_counts())

    def _state_seen(self, record: ServerRecord, state: str) -> None:
        """Every state a card's server shows: for the alerts, and the presence line."""
        self.alerts.seen(record.server_id, record.name, state)
        self.presence.update(*self.board.running_counts())

    async def close(self) -> None:
        self.stopping = True
        await self.updates.stop()
        with contextlib.suppress(TimeoutError):  # the alerts and audit lines already queued
            await asyncio.wait_for(self.alerts.notifier.idle(), 5.0)
        await self.alerts.notifier.close()
        if self.board.live is not None:
            await self.board.live.close()  # before the session the sockets run on
        if self._power_tasks:  # let power actions in flight finish, or answer them, before closing
            await asyncio.wait(self._power_tasks, timeout=2.0)
        await self.api.close()
        if self._power_tasks:
            await asyncio.wait(self._power_tasks, timeout=3.0)
        await self.board.close()
        await super().close()

    @contextlib.asynccontextmanager
    async def power_in_flight(self) -> AsyncIterator[None]:
        """Mark the current task as sending a power action, so that a shutdown waits for its answer."""
        task = asyncio.current_task()
        assert task is not None
        self._power_tasks.add(task)
        try:
            yield
        finally:
            self._power_tasks.discard(task)

    def _register_commands(self) -> None:
        guild = discord.Object(id=self.settings.allowed_guild_id)

        @app_commands.command(name="server_status", description="Post a game server's live status here")
        async def server_status(interaction: discord.Interaction[PterodactylBot]) -> None:
            await ui.open_picker(interaction, self.board)

        @app_commands.command(name="refresh_embeds", description="Re-render every status message now")
        async def refresh_embeds(interaction: discord.Interaction[PterodactylBot]) -> None:
            await ui.refresh_cards(interaction, self.board)

        self.tree.add_command(server_status, guild=guild)
        self.tree.add_command(refresh_embeds, guild=guild)

    # -- cards deleted by someone else ----------------------------------------------------------
    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        self.board.drop_cards(lambda loc: loc.message_id == payload.message_id, "was deleted")

    async def on_raw_bulk_message_delete(self, payload: discord.RawBulkMessageDeleteEvent) -> None:
        self.board.drop_cards(lambda loc: loc.message_id in payload.message_ids, "was deleted")

    async def on_guild_channel_delete(self, channel: discord.abc.GuildChannel) -> None:
        self.board.drop_cards(lambda loc: loc.channel_id == channel.id, "was in a deleted channel")

    # -- the update task ------------------------------------------------------------------------
    async def _cycle(self) -> None:
        await self.run_update_cycle()

    async def run_update_cycle(self) -> CycleReport:
        """One cycle of the board, then the polling interval, the log and the heartbeat."""
        report = await self.board.poll()
        self.alerts.tick()
        self.presence.update(*self.board.running_counts())
        self._adjust_interval(report.polled)  # after the requests: their headers carry the panel's limit
        self.cycle_log.record(report, self.updates.interval)
        release_free_memory()  # freed memory of the cycle back to the system (~0.1 ms)
        if self.ws is not None and self.ws.open:  # healthy means cycles run *and* Discord is connected
            write_heartbeat(self.heartbeat_path, self.updates.interval)
        return report

    def _adjust_interval(self, servers: int) -> None:
        """Stretch polling when the tracked servers need more requests than the panel allows."""
        budget = self.api.budgets["client"]
        interval = stretched_interval(
            servers, self.settings.update_interval, budget.polling_per_minute, budget.WINDOW
        )
        stretched = interval > self.settings.update_interval
        if stretched != self._stretched or (stretched and abs(interval - self.updates.interval) > 0.5):
            if stretched and not self._stretched:
                log.warning(
                    "%d servers every %g s would exceed the panel's limit of %d requests/min; "
                    "polling every %.1f s instead",
                    servers,
                    self.settings.update_interval,
                    budget.limit,
                    interval,
                )
            elif not stretched:
                log.info("Polling every %g s again", interval)
            self._stretched = stretched
            self.updates.interval = interval
