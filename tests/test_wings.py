"""ptero.wings: the live source against the fake panel's token endpoint and fake Wings sockets over real
HTTP and websockets on 127.0.0.1; then the board and the bot in live mode, in process."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ptero.panel import PanelServer, PterodactylAPI, ServerResources
from ptero.wings import LiveSource, LiveTimings, parse_stats, probe
from tests.conftest import LogWaiter
from tests.fake_panel import FakePanel
from tests.fake_wings import CONSOLE_SECRET, WingsConfig
from tests.harness import World, post_status, world

# Fast but faithful: every rule of the protocol holds, only the clocks are short.
FAST = LiveTimings(
    connect=3.0,
    heartbeat=5.0,
    silence=2.0,
    reconnect_first=0.05,
    reconnect_longest=0.2,
    drops_before_fallback=3,
    retry_live_first=0.5,
    retry_live_longest=2.0,
    tokens_per_minute=1000,
    token_rate=200.0,
)
WINGS = WingsConfig(stats_interval=0.05)


@dataclass
class Heard:
    """What the live source handed on."""

    states: list[tuple[str, str]] = field(default_factory=list)
    stats: list[tuple[str, ServerResources]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_state(self, server_id: str, state: str) -> None:
        self.states.append((server_id, state))
        self.changed.set()

    def on_stats(self, server_id: str, resources: ServerResources) -> None:
        self.stats.append((server_id, resources))
        self.changed.set()

    async def until(self, predicate: Callable[[], Any], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()


@asynccontextmanager
async def live_source(
    panel: FakePanel, timings: LiveTimings = FAST
) -> AsyncIterator[tuple[LiveSource, Heard, PterodactylAPI]]:
    heard = Heard()
    api = PterodactylAPI(panel.url, panel.client_key, panel.app_key, timeout=3.0, max_retries=0)
    async with api:
        source = LiveSource(api, panel.url, on_state=heard.on_state, on_stats=heard.on_stats, timings=timings)
        try:
            yield source, heard, api
        finally:
            await source.close()


async def listed(api: PterodactylAPI) -> list[PanelServer]:
    return await api.list_servers()


async def test_a_socket_authenticates_with_the_panel_origin_and_reports_state_and_stats(flavour: str) -> None:
    async with FakePanel(flavour=flavour, wings=True, wings_config=WINGS) as panel:
        srv = panel.add_server(name="Survival", state="running", cpu=33.5, memory_bytes=5 * 1024**2)
        async with live_source(panel) as (source, heard, api):
            source.track(await listed(api))
            await heard.until(lambda: source.is_live(srv.identifier) and heard.stats)
            assert heard.states[0] == (srv.identifier, "running")
            resources = heard.stats[-1][1]
            assert (resources.current_state, resources.cpu_absolute, resources.memory_bytes) == (
                "running",
                33.5,
                5 * 1024**2,
            )
            wings = panel.wings[srv.node_id]
            assert [a.error for a in wings.auth_attempts] == [None]
            srv.state = "stopping"  # pushed by Wings at once
            await heard.until(lambda: heard.states[-1] == (srv.identifier, "stopping"))
        assert wings.open_sockets() == 0  # closed cleanly


async def test_console_output_is_never_parsed_stored_or_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with FakePanel(wings=True, wings_config=WINGS) as panel:
        srv = panel.add_server(state="running")
        async with live_source(panel) as (source, heard, api):
            source.track(await listed(api))
            await heard.until(lambda: source.is_live(srv.identifier))
            wings = panel.wings[srv.node_id]
            wings.console_rate(srv, 200)
            await wings.wait_until(lambda: wings.events_sent["console output"] >= 100)
            wings.console_rate(srv, 0)
            assert source.is_live(srv.identifier)
    assert CONSOLE_SECRET not in caplog.text and "hunter2" not in caplog.text
    assert all(isinstance(r, ServerResources) for _, r in heard.stats)


async def test_an_expiring_token_is_renewed_once_on_the_same_socket() -> None:
    config = WingsConfig(stats_interval=0.05, expiry_check_interval=0.1, expiring_threshold=1.2)
    async with FakePanel(wings=True, wings_config=config) as panel:
        panel.token_lifetime = 1.5
        srv = panel.add_server(state="running")
        async with live_source(panel) as (source, heard, api):
            source.track(await listed(api))
            wings = panel.wings[srv.node_id]
            await wings.wait_until(lambda: source.is_live(srv.identifier))
            panel.set_latency(0.35)  # a slow token endpoint: Wings warns again while a renewal runs
            await wings.wait_until(lambda: len(wings.auth_attempts) >= 4, timeout=10)  # three renewals
            renewals = len(wings.auth_attempts) - 1
            assert wings.events_sent["token expiring"] > renewals  # warned more than once per token...
            assert panel.tokens_issued == len(wings.auth_attempts)  # ...one token fetched for each
            assert len({a.token for a in wings.auth_attempts}) == len(wings.auth_attempts)
            assert all(a.error is None for a in wings.auth_attempts)
            assert wings.open_sockets() == 1 and source.is_live(srv.identifier)  # the same socket
            assert [s for _, s in heard.states] == ["running"]  # no second status after a re-auth


async def test_an_expired_token_is_renewed_after_the_jwt_error() -> None:
    config = WingsConfig(stats_interval=0.05, expiry_check_interval=0.2, expiring_threshold=0.0)
    async with FakePanel(wings=True, wings_config=config) as panel:
        panel.token_lifetime = 1.0  # never warned: the first sign is "jwt: exp claim is invalid"
        srv = panel.add_server(state="running")
        async with live_source(panel) as (source, heard, api):
            source.track(await listed(api))
            wings = panel.wings[srv.node_id]
            await wings.wait_until(lambda: len(wings.auth_attempts) >= 3, timeout=10)
            assert wings.events_sent["jwt error"] >= 1 and wings.open_sockets() == 1
            count = len(heard.stats)
            await heard.until(lambda: len(heard.stats) > count + 5)  # stats flow again after each renewal


async def test_a_dropping_socket_reconnects_then_falls_back_to_polling_then_returns(
    log_waiter: LogWaiter,
) -> None:
    async with FakePanel(wings=True, wings_config=WINGS) as panel:
        servers = panel.add_servers(3, state="running")
        async with live_source(panel) as (source, _heard, api):
            source.track(await listed(api))
            wings = panel.wings[1]
            await wings.wait_until(lambda: all(source.is_live(s.identifier) for s in servers))
            wings.set_mode("drop")
            await log_waiter.wait_for("keeps dropping", timeout=10)
            assert not any(source.is_live(s.identifier) for s in servers)
            assert (
                log_waiter.text().count("Live updates on node Node 1") == 1
            )  # once per node, not per server
            assert len(wings.auth_attempts) >= 2 * len(servers)  # each reconnected before giving up
            wings.set_mode("ok")
            await log_waiter.wait_for("Live updates work again on node Node 1", timeout=10)
            await wings.wait_until(lambda: all(source.is_live(s.identifier) for s in servers), timeout=10)


async def test_a_node_whose_wings_is_down_costs_one_probe_not_one_per_server(log_waiter: LogWaiter) -> None:
    timings = dataclasses.replace(FAST, retry_live_longest=0.2)
    async with FakePanel(wings=True, wings_config=WINGS) as panel:
        servers = panel.add_servers(5, state="running")
        panel.set_node_down(1, True)
        async with live_source(panel, timings) as (source, _heard, api):
            source.track(await listed(api))
            await log_waiter.wait_for("Live updates on node Node 1: Wings cannot be reached")
            for probes in range(1, 5):  # the prober knocks on Wings' port: no token spent
                await log_waiter.wait_for(f"probe {probes} of node Node 1", timeout=5)
            assert sum(panel.tokens_issued_per_server[s.identifier] for s in servers) <= len(servers)
            assert log_waiter.text().count("Live updates: probe 4 of") == 1  # one prober, not five
            panel.set_node_down(1, False)
            await panel.wings[1].wait_until(
                lambda: all(source.is_live(s.identifier) for s in servers), timeout=10
            )


async def test_missing_permission_or_a_refused_origin_fall_back_and_say_why(log_waiter: LogWaiter) -> None:
    async with FakePanel(wings=True, wings_config=WINGS) as panel:
        no_permission = panel.add_server(name="Sub", state="running")
        no_permission.access, no_permission.websocket_permission = "subuser", False  # owners always have it
        other = panel.add_server(name="Other", state="running", node_id=2, node_name="Node 2")
        await panel.start_wings(2)
        panel.wings[2].set_mode("origin")
        async with live_source(panel) as (source, _heard, api):
            source.track(await listed(api))
            await log_waiter.wait_for("Live updates on node Node 2: Wings refused the Origin")
            await log_waiter.wait_for(
                f"Live updates for {no_permission.identifier}: the client key's user lacks"
            )
            assert not source.is_live(no_permission.identifier) and not source.is_live(other.identifier)


async def test_a_suspended_servers_socket_is_closed_4409_and_not_retried_in_a_loop() -> None:
    # Pelican lets admins fetch a token for a suspended server; newer Wings then closes with 4409.
    async with FakePanel(flavour="pelican", wings=True, wings_config=WINGS) as panel:
        panel.client_user_admin = True
        srv = panel.add_server(state="running")
        async with live_source(panel) as (source, _heard, api):
            [server] = await listed(api)
            srv.status = "suspended"  # the listing the bot has still says otherwise
            source.track([server])
            wings = panel.wings[srv.node_id]
            await wings.wait_until(lambda: wings.upgrades_refused["suspended"] >= 1)
            await source.sockets[srv.identifier].stopped()  # it stops: no retry loop
            assert wings.upgrades_refused["suspended"] == 1 and not source.is_live(srv.identifier)


def test_stats_payloads_parse_and_bad_ones_are_ignored() -> None:
    raw = (
        '{"memory_bytes":10,"memory_limit_bytes":0,"cpu_absolute":12.25,'
        '"network":{"rx_bytes":3,"tx_bytes":4},"uptime":99,"state":"running","disk_bytes":7}'
    )
    assert parse_stats(raw, False) == ServerResources("running", False, 12.25, 10, 7, 3, 4, 99)
    for bad in ("{", "[]", '{"cpu_absolute": 1e400}', 5, '{"memory_bytes": "lots"}'):
        assert parse_stats(bad, False) is None


async def test_the_setup_checks_probe_says_what_works_and_what_does_not() -> None:
    async with FakePanel(wings=True, wings_config=WINGS) as panel:
        srv = panel.add_server(state="running")
        async with PterodactylAPI(panel.url, panel.client_key, panel.app_key, timeout=3.0) as api:
            [server] = await api.list_servers()
            assert await probe(api, server, panel.url, within=5) == (
                True,
                "the websocket opened and authenticated",
            )
            panel.wings[srv.node_id].set_mode("origin")
            ok, why = await probe(api, server, panel.url, within=5)
            assert not ok and "Origin" in why
            panel.wings[srv.node_id].set_mode("ok")
            panel.set_node_down(srv.node_id, True)
            ok, why = await probe(api, server, panel.url, within=5)
            assert not ok and "cannot be reached" in why
            panel.set_node_down(srv.node_id, False)
            srv.access, srv.websocket_permission = "subuser", False
            ok, why = await probe(api, server, panel.url, within=5)
            assert not ok and "websocket permission" in why


# -- the board and the bot in live mode -------------------------------------------------------------


def state_of(w: World, message_id: int) -> str:
    value: str = w.discord.messages[message_id].embeds[0]["fields"][0]["value"]
    return value


async def test_a_state_change_reaches_the_card_without_waiting_for_a_cycle(tmp_path: Path) -> None:
    panel = FakePanel(wings=True, wings_config=WINGS, resource_cache_seconds=20)
    async with world(tmp_path, panel=panel, live=True, live_timings=FAST) as w:
        srv = w.panel.add_server(name="Survival", state="running", cpu=20)
        message_id = await post_status(w, srv.identifier)
        await w.bot.run_update_cycle()  # the cycle that starts the socket
        assert w.bot.board.live is not None
        live = w.bot.board.live
        await w.panel.wings[srv.node_id].wait_until(lambda: live.is_live(srv.identifier))
        resources_before = w.panel.count("GET", "/resources")
        srv.state = "stopping"
        message = w.discord.messages[message_id]
        await w.discord.wait_until(lambda: state_of(w, message_id) == "🟠 Stopping", 5, "the live edit")
        assert message.edits >= 1
        w.clock.advance(10)
        await w.bot.run_update_cycle()
        assert w.panel.count("GET", "/resources") == resources_before  # a live server is not polled


async def test_the_graph_takes_one_sample_per_cycle_from_the_live_stats(tmp_path: Path) -> None:
    panel = FakePanel(wings=True, wings_config=WINGS)
    async with world(tmp_path, panel=panel, live=True, live_timings=FAST) as w:
        srv = w.panel.add_server(name="Survival", state="running", cpu=20)
        await post_status(w, srv.identifier)
        await w.bot.run_update_cycle()
        live = w.bot.board.live
        assert live is not None
        wings = w.panel.wings[srv.node_id]
        await wings.wait_until(lambda: live.is_live(srv.identifier))
        for cycle in range(4):
            srv.cpu = 10.0 + 30 * cycle  # what Docker would measure during this interval
            before = wings.events_sent["stats"]
            await wings.wait_until(lambda b=before: wings.events_sent["stats"] >= b + 3)
            w.clock.advance(10)
            await w.bot.run_update_cycle()
        samples = w.bot.board.metrics.get(srv.identifier)
        assert samples is not None
        cpus = [s.cpu_percent for s in samples.samples()]
        assert cpus[-4:] == [10.0, 40.0, 70.0, 100.0]  # one per cycle, each a distinct reading


async def test_one_node_refusing_sockets_is_polled_and_correct_while_the_other_is_live(
    tmp_path: Path,
) -> None:
    panel = FakePanel(wings=True, wings_config=WINGS)
    async with world(tmp_path, panel=panel, live=True, live_timings=FAST) as w:
        a = w.panel.add_server(name="A", state="running", cpu=5)
        b = w.panel.add_server(name="B", state="running", cpu=5, node_id=2, node_name="Node 2")
        await w.panel.start_wings(2)
        w.panel.wings[2].set_mode("origin")
        ids = {s.identifier: await post_status(w, s.identifier) for s in (a, b)}
        await w.bot.run_update_cycle()
        live = w.bot.board.live
        assert live is not None
        await w.panel.wings[a.node_id].wait_until(lambda: live.is_live(a.identifier))
        b.state = "stopping"
        w.clock.advance(10)
        await w.bot.run_update_cycle()  # B is polled: the cycle sees it
        assert state_of(w, ids[b.identifier]) == "🟠 Stopping" and not live.is_live(b.identifier)
        assert state_of(w, ids[a.identifier]) == "🟢 Running"
