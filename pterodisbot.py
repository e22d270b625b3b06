"""Pterodisbot: live Pterodactyl game-server status and power buttons in Discord.

Run ``python pterodisbot.py`` to start the bot, ``--check`` to check the setup read-only and print
what to fix, ``--healthcheck`` for Docker's HEALTHCHECK (``--help`` lists them). This file is the entry
point; the work lives in the ``ptero`` package, one room per concern. Data flows one way:

    panel --HTTP--> ptero.panel --> ptero.board ------> ptero.cards --> ptero.ui --> Discord
                    (client)        (one record per     (renders the    (DiscordCards,
                                     server; decides     embed; graphs   buttons, picker)
                                     what to edit)       from server_metrics_graphs.py)

    ptero.config   environment over config.ini, one table, validated into a frozen Settings
    ptero.panel    the panel client: typed results, one error tree, retries, rate-limit budget
    ptero.store    embed/embed_locations.json, written atomically
    ptero.rules    the pure update decision, display state, polling stretch
    ptero.cards    formatting and embed building
    ptero.board    StatusBoard: records, the update cycle, posting and editing cards
    ptero.ui       buttons (their checks and actions), the server picker, the Discord sink
    ptero.bot      PterodactylBot: lifecycle, commands, events, the update task
    ptero.runtime  logging, heartbeat and healthcheck, running until a signal
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import discord

from ptero.board import StatusBoard
from ptero.bot import PterodactylBot
from ptero.cards import (
    GRAPH_FILENAME,
    STATE_STYLES,
    Card,
    StateStyle,
    StatusSnapshot,
    build_card,
    build_status_embed,
    describe_panel_error,
    embed_fingerprint,
    format_bytes,
    format_cpu,
    format_limit_mb,
    format_uptime,
    state_style,
    truncate,
)
from ptero.config import (
    CONFIG_KEYS,
    ConfigKey,
    ConfigValidationError,
    Settings,
    config_warnings,
    load_settings,
    mask_secret,
)
from ptero.panel import (
    BLOCKING_STATUSES,
    POWER_SIGNALS,
    Allocation,
    MalformedResponseError,
    PanelServer,
    PanelServerError,
    PowerSignal,
    PterodactylAPI,
    PterodactylAPIError,
    PterodactylAuthError,
    PterodactylConnectionError,
    PterodactylError,
    RateLimitedError,
    RequestBudget,
    ServerConflictError,
    ServerLimits,
    ServerNotFoundError,
    ServerResources,
)
from ptero.records import CardState, CycleReport, PowerClaim, ServerRecord
from ptero.rules import (
    UNREACHABLE_AFTER_FAILURES,
    TrackedState,
    UpdateReason,
    display_state,
    stretched_interval,
    update_reason,
)
from ptero.runtime import RedactingFormatter, check_store, check_writable, healthcheck, run_bot, setup_logging
from ptero.store import EmbedLocation, EmbedStore
from ptero.ui import (
    CUSTOM_ID_PATTERN,
    CUSTOM_ID_TEMPLATE,
    ButtonAction,
    DiscordCards,
    ServerButton,
    ServerPickerView,
    ServerStatusView,
    make_custom_id,
    may_control,
)
from server_metrics_graphs import ServerMetricsGraphs, ServerMetricsManager

__all__ = [
    "BLOCKING_STATUSES",
    "CONFIG_KEYS",
    "CUSTOM_ID_PATTERN",
    "CUSTOM_ID_TEMPLATE",
    "GRAPH_FILENAME",
    "POWER_SIGNALS",
    "STATE_STYLES",
    "UNREACHABLE_AFTER_FAILURES",
    "Allocation",
    "ButtonAction",
    "Card",
    "CardState",
    "ConfigKey",
    "ConfigValidationError",
    "CycleReport",
    "DiscordCards",
    "EmbedLocation",
    "EmbedStore",
    "MalformedResponseError",
    "PanelServer",
    "PanelServerError",
    "PowerClaim",
    "PowerSignal",
    "PterodactylAPI",
    "PterodactylAPIError",
    "PterodactylAuthError",
    "PterodactylBot",
    "PterodactylConnectionError",
    "PterodactylError",
    "RateLimitedError",
    "RedactingFormatter",
    "RequestBudget",
    "ServerButton",
    "ServerConflictError",
    "ServerLimits",
    "ServerMetricsGraphs",
    "ServerMetricsManager",
    "ServerNotFoundError",
    "ServerPickerView",
    "ServerRecord",
    "ServerResources",
    "ServerStatusView",
    "Settings",
    "StateStyle",
    "StatusBoard",
    "StatusSnapshot",
    "TrackedState",
    "UpdateReason",
    "build_card",
    "build_status_embed",
    "check_writable",
    "describe_panel_error",
    "display_state",
    "embed_fingerprint",
    "format_bytes",
    "format_cpu",
    "format_limit_mb",
    "format_uptime",
    "healthcheck",
    "load_settings",
    "main",
    "make_custom_id",
    "mask_secret",
    "may_control",
    "run_bot",
    "setup_logging",
    "state_style",
    "stretched_interval",
    "truncate",
    "update_reason",
]

log = logging.getLogger("pterodisbot")


async def _serve(settings: Settings) -> None:
    await run_bot(PterodactylBot(settings), settings.discord_token)  # built inside the event loop


USAGE = """usage: python pterodisbot.py [--check | --healthcheck | --help]

  (nothing)      run the bot (configuration: environment variables over config.ini)
  --check        check the setup read-only (panel, keys, Discord, channels, files) and say
                 what to fix; exit 0: nothing failed, 1: a check failed, 2: invalid configuration
  --healthcheck  exit 0 while update cycles run (Docker's HEALTHCHECK)
  --help         show this help"""


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args in (["--help"], ["-h"]):
        print(USAGE)
        return 0
    if args == ["--healthcheck"]:
        return healthcheck()
    if args not in ([], ["--check"]):
        # An argument that is not an option could be a pasted token: never echo it.
        shown = " ".join(a if a.startswith("-") and len(a) <= 40 else mask_secret(a) for a in args)
        print(f"pterodisbot: unknown argument(s): {shown}\n{USAGE}", file=sys.stderr)
        return 2
    warnings = config_warnings(os.environ)  # a typo in a variable's name would otherwise go unnoticed
    try:
        settings = load_settings(os.environ)
    except ConfigValidationError as exc:
        for warning in warnings:
            print(f"Warning: {warning}", file=sys.stderr)
        print(exc.render(), file=sys.stderr)
        return 2
    if args == ["--check"]:
        from ptero.doctor import check_setup  # only this mode needs it

        return check_setup(settings, warnings)
    unwritable = check_writable(Path("embed"))
    if unwritable:
        print(ConfigValidationError(unwritable).render(), file=sys.stderr)
        return 2
    setup_logging(settings)
    unreadable = check_store(Path("embed") / "embed_locations.json")
    if unreadable:
        print(ConfigValidationError(unreadable).render(), file=sys.stderr)
        return 2
    for warning in warnings:
        log.warning("%s", warning)
    log.info("Starting Pterodisbot for panel %s", settings.panel_url)
    try:
        asyncio.run(_serve(settings))
    except (aiohttp.ClientError, OSError) as exc:
        log.error("Cannot reach Discord (%s: %s); check the network and try again", type(exc).__name__, exc)
        return 1
    except discord.LoginFailure:
        log.error("Discord rejected the bot token (DISCORD_TOKEN); reset it in the Developer Portal")
        return 1
    except discord.PrivilegedIntentsRequired:
        log.error("Discord refused the gateway intents; check the bot's settings in the Developer Portal")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
