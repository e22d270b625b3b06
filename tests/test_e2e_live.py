"""End to end in live mode: ``python pterodisbot.py`` with LIVE_UPDATES=auto as its own process, against
the fake panel (with its real 20 s resource cache) and fake Wings nodes, and the Discord stand-in."""

from __future__ import annotations

from pathlib import Path

from tests.e2e_support import e2e_world, state_shown
from tests.fake_wings import WingsConfig

CACHE = 20.0  # the panel's resources cache, as the real panel: polling would see changes up to 20 s late


async def test_a_state_change_on_the_panel_reaches_the_card_within_2_seconds(
    tmp_path: Path, flavour: str
) -> None:
    async with e2e_world(
        tmp_path, flavour=flavour, wings=True, resource_cache_seconds=CACHE, wings_config=WingsConfig()
    ) as w:
        srv = w.panel.add_server(name="Survival", state="running", cpu=20)
        bot = await w.start_bot(LIVE_UPDATES="auto", UPDATE_INTERVAL="2")
        message, _ = await w.post_status(srv.identifier)
        wings = w.panel.wings[srv.node_id]
        await wings.wait_until(lambda: wings.authenticated_sockets(srv) == 1, timeout=20)
        await bot.wait_cycles(1, timeout=20)  # a cycle with the socket live: it polls no more
        polled = w.panel.count("GET", "/resources")
        for state, shown in (
            ("stopping", "🟠 Stopping"),
            ("offline", "🔴 Offline"),
            ("starting", "🟡 Starting"),
        ):
            srv.state = state
            await w.discord.wait_until(lambda s=shown: state_shown(message) == s, timeout=2, what=shown)
        assert w.panel.count("GET", "/resources") == polled  # the socket said it all
        await w.stop_bot(bot)
        assert wings.open_sockets() == 0  # closed on shutdown
        assert w.problems() == []


async def test_a_node_refusing_sockets_leaves_its_servers_polled_and_correct(tmp_path: Path) -> None:
    async with e2e_world(tmp_path, wings=True, wings_config=WingsConfig()) as w:
        live = w.panel.add_server(name="Live", state="running", cpu=5)
        polled = w.panel.add_server(name="Polled", state="running", cpu=5, node_id=2, node_name="Node 2")
        await w.panel.start_wings(2)
        w.panel.wings[2].set_mode("origin")
        bot = await w.start_bot(LIVE_UPDATES="auto")
        live_card, _ = await w.post_status(live.identifier)
        polled_card, _ = await w.post_status(polled.identifier)
        await bot.wait_for_line("Live updates on node Node 2: Wings refused the Origin", timeout=20)
        polled.state = "stopping"
        await w.discord.wait_until(
            lambda: state_shown(polled_card) == "🟠 Stopping", timeout=10, what="polled edit"
        )
        live.state = "stopping"
        await w.discord.wait_until(
            lambda: state_shown(live_card) == "🟠 Stopping", timeout=5, what="live edit"
        )
        assert sum("Live updates on node Node 2" in line for line in bot.lines) == 1  # once, not per cycle
        await w.stop_bot(bot)
        assert w.problems() == []


async def test_a_short_token_lifetime_is_survived_without_losing_updates(tmp_path: Path) -> None:
    # 17 s tokens: Wings warns 6 s before the end; the bot may fetch one every 15 s for a server.
    config = WingsConfig(expiry_check_interval=1.0, expiring_threshold=6.0)
    async with e2e_world(tmp_path, wings=True, wings_config=config) as w:
        w.panel.token_lifetime = 17.0
        srv = w.panel.add_server(name="Survival", state="running", cpu=5)
        bot = await w.start_bot(LIVE_UPDATES="auto", UPDATE_INTERVAL="5")
        message, _ = await w.post_status(srv.identifier)
        wings = w.panel.wings[srv.node_id]
        await wings.wait_until(
            lambda: len(wings.auth_attempts) >= 3, timeout=45
        )  # two renewals on one socket
        assert all(a.error is None for a in wings.auth_attempts) and wings.open_sockets() == 1
        assert wings.events_sent["jwt error"] == 0  # renewed before it expired
        srv.state = "stopping"
        await w.discord.wait_until(
            lambda: state_shown(message) == "🟠 Stopping", timeout=2, what="a live edit"
        )
        await w.stop_bot(bot)
        assert w.problems() == []


async def test_the_panel_or_the_node_going_down_and_coming_back_are_recovered(tmp_path: Path) -> None:
    async with e2e_world(tmp_path, wings=True, wings_config=WingsConfig()) as w:
        srv = w.panel.add_server(name="Survival", state="running", cpu=5)
        bot = await w.start_bot(LIVE_UPDATES="auto")
        message, _ = await w.post_status(srv.identifier)
        wings = w.panel.wings[srv.node_id]
        await wings.wait_until(lambda: wings.authenticated_sockets(srv) == 1, timeout=20)
        await w.panel.set_down(True)  # the panel only: Wings still talks to the bot
        await bot.wait_for_line("Could not list the panel's servers", timeout=10)
        srv.state = "stopping"
        await w.discord.wait_until(
            lambda: state_shown(message) == "🟠 Stopping", timeout=2, what="live, panel down"
        )
        await w.panel.set_down(False)
        w.panel.set_node_down(
            srv.node_id, True
        )  # now Wings is gone: the bot polls; the panel cannot reach it
        await bot.wait_for_line("Live updates on node Node 1: Wings cannot be reached", timeout=10)
        await w.discord.wait_until(
            lambda: state_shown(message) == "❔ Node unreachable", timeout=30, what="node"
        )
        srv.state = "offline"
        w.panel.set_node_down(srv.node_id, False)
        await bot.wait_for_line("Live updates work again on node Node 1", timeout=30)
        await w.discord.wait_until(
            lambda: state_shown(message) == "🔴 Offline", timeout=2, what="the socket's status"
        )
        srv.state = "starting"
        await w.discord.wait_until(
            lambda: state_shown(message) == "🟡 Starting", timeout=2, what="live again"
        )
        await w.stop_bot(bot)
        assert w.problems() == []
