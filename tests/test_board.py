"""ptero.board: the update cycle and its cards, in process: the real bot against the Discord stand-in and
the fake panel over HTTP, cycle by cycle on an injected clock; faults of the panel and of Discord."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import discord
import pytest

from ptero.board import StatusBoard
from ptero.cards import Card
from ptero.config import Settings
from ptero.pacing import ChannelPacer
from ptero.panel import PterodactylAPI
from ptero.records import CardGone
from ptero.store import EmbedLocation, EmbedStore
from ptero.ui import make_custom_id
from server_metrics_graphs import ServerMetricsManager
from tests.conftest import ManualClock, png_size
from tests.fake_panel import DEFAULT_APP_KEY, DEFAULT_CLIENT_KEY, FakePanel
from tests.harness import World, answer, post_status, stored, world

EDIT_ROUTE = "PATCH /channels/{channel_id}/messages/{message_id}"


def state_field(w: World, message_id: int) -> str:
    value: str = w.discord.messages[message_id].embeds[0]["fields"][0]["value"]
    return value


async def test_flaky_panel_never_flaps_the_embed_and_recovers(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        servers = w.panel.add_servers(6, state="running", cpu=20)
        ids = {s.identifier: await post_status(w, s.identifier) for s in servers}
        await w.bot.run_update_cycle()
        w.panel.fail_ratio(1 / 3, statuses=(500, 502, 503), seed=7)
        for _ in range(6):
            w.clock.advance(10)
            report = await w.bot.run_update_cycle()
            assert report.checked == 6
            for message_id in ids.values():
                assert state_field(w, message_id) == "🟢 Running"  # never "offline", never "unreachable"
        w.panel.fail_ratio(0)
        w.clock.advance(10)
        report = await w.bot.run_update_cycle()
        assert report.failed == 0
        assert all(w.bot.board.records[i].failures == 0 for i in ids)


async def test_panel_down_for_a_minute_shows_unreachable_answers_clicks_and_recovers(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(name="Survival", state="running", cpu=20, ip="10.0.0.7", port=25570)
        message_id = await post_status(w, srv.identifier)
        await w.bot.run_update_cycle()
        await w.panel.set_down(True)
        for _ in range(6):  # one minute of 10 s cycles
            w.clock.advance(10)
            await w.bot.run_update_cycle()
        assert state_field(w, message_id) == "❔ Panel unreachable"
        assert "last known" not in (w.discord.messages[message_id].embeds[0].get("description") or "")

        click = await w.click(message_id, make_custom_id("restart", srv.identifier), member=w.operator_id)
        assert "unreachable" in await answer(click)
        assert click.latency is not None and click.latency < 3
        address = await w.click(message_id, make_custom_id("address", srv.identifier))
        assert "`10.0.0.7:25570`" in await answer(address)  # from the cached listing

        await w.panel.set_down(False)
        w.clock.advance(10)
        await w.bot.run_update_cycle()
        assert state_field(w, message_id) == "🟢 Running"


@pytest.mark.parametrize("fault", ["malformed", "html", "hang"])
async def test_bad_answers_are_failures_not_data(tmp_path: Path, fault: str) -> None:
    async with world(tmp_path, api_timeout=0.3) as w:
        srv = w.panel.add_server(state="running", cpu=20)
        message_id = await post_status(w, srv.identifier)
        await w.bot.run_update_cycle()
        arm = {"malformed": w.panel.malformed_next, "html": w.panel.html_next, "hang": w.panel.hang_next}[
            fault
        ]
        arm(count=4, path_contains="/resources")
        w.clock.advance(10)
        report = await w.bot.run_update_cycle()
        assert report.failed == 1 and w.bot.board.records[srv.identifier].failures == 1
        assert state_field(w, message_id) == "🟢 Running"  # last known data stays up


async def test_rate_limited_panel_is_waited_out(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="running", cpu=20)
        await post_status(w, srv.identifier)
        w.panel.fail_next(429, path_contains="/resources")  # Retry-After: 1
        report = await w.bot.run_update_cycle()
        assert report.failed == 0
        assert w.bot.api.rate_limited_count == 1


async def test_discord_429_and_5xx_on_edits_are_retried_or_retried_next_cycle(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="running", cpu=10)
        message_id = await post_status(w, srv.identifier)
        message = w.discord.messages[message_id]
        await w.restart_bot()
        srv.cpu = 90  # +80 points: an edit
        w.discord.fail_next(EDIT_ROUTE, 429)  # discord.py waits retry_after and retries
        assert (await w.bot.run_update_cycle()).edited == 1
        w.clock.advance(10)
        srv.state = "stopping"
        w.discord.fail_next(EDIT_ROUTE, 403)  # not retried by discord.py: the edit fails this cycle
        report = await w.bot.run_update_cycle()
        assert report.edited == 0 and report.failed == 1
        assert message.embeds[0]["fields"][0]["value"] == "🟢 Running"
        assert stored(w)  # a refusal is not a deletion: the location is kept


async def test_polling_stretches_instead_of_earning_429s_and_says_so_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    panel = FakePanel(client_rate_limit=120)
    async with world(tmp_path, panel=panel) as w:
        servers = w.panel.add_servers(20, state="offline")
        for s in servers:
            await post_status(w, s.identifier)
        caplog.set_level(logging.INFO, logger="ptero")
        for _ in range(3):
            w.clock.advance(10)
            await w.bot.run_update_cycle()
        stretch = [r for r in caplog.records if "would exceed the panel's limit" in r.getMessage()]
        assert len(stretch) == 1
        budget = w.bot.api.budgets["client"]
        assert budget.limit == 120  # learned from X-RateLimit-Limit
        assert budget.polling_per_minute == 118  # 120 minus the reserve for clicks
        assert w.bot.updates.interval == pytest.approx(61 / 5 + 0.5)  # 5 whole cycles of 20 per window
        assert w.panel.too_many_requests == 0


async def test_edits_happen_exactly_when_the_rules_say(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="running", cpu=10, memory_bytes=100 * 1024**2, uptime_ms=1000)
        message_id = await post_status(w, srv.identifier)
        message = w.discord.messages[message_id]
        await w.restart_bot()  # a fresh process: the store says what the card shows, so no edit for that
        steps: list[tuple[float, dict[str, object], int]] = [
            (0, {}, 0),  # the first check since start-up edits only when the rules say so
            (10, {"cpu": 55}, 0),  # +45 points: not enough
            (10, {"cpu": 60.001}, 1),  # +50.001 points since the last edit
            (10, {"state": "stopping"}, 1),  # power state changed
            (10, {}, 0),  # nothing changed
            (580, {"uptime_ms": 999_000}, 0),  # content changed, but no rule fires yet
            (10, {}, 1),  # 600 s since the last edit: forced refresh
            (600, {}, 0),  # forced again, but what it shows is identical: no edit
        ]
        for number, (elapsed, changes, expected) in enumerate(steps):
            w.clock.advance(elapsed)
            for name, value in changes.items():
                setattr(srv, name, value)
            before = message.edits
            report = await w.bot.run_update_cycle()
            assert (report.edited, message.edits - before) == (expected, expected), f"step {number}"
        assert w.bot.board.records[srv.identifier].card.shown.state == "stopping"


async def test_graph_appears_after_two_samples_and_goes_when_stopped(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="running", cpu=20, memory_bytes=512 * 1024**2)
        message_id = await post_status(w, srv.identifier)
        message = w.discord.messages[message_id]
        await w.bot.run_update_cycle()  # first sample
        assert message.attachments == []
        w.clock.advance(10)
        srv.cpu = 90  # +70: edit, now with 2 samples
        await w.bot.run_update_cycle()
        image = message.embed_image_attachment()
        assert image is not None and png_size(image.data) == (800, 500)
        assert message.embeds[0]["image"]["url"].endswith(f"/{image.filename}")  # resolved like Discord does

        w.clock.advance(10)
        srv.state, srv.cpu = "offline", 0
        await w.bot.run_update_cycle()
        assert message.attachments == [] and "image" not in message.embeds[0]
        assert w.bot.board.metrics.get(srv.identifier) is None  # samples cleared


async def test_deleted_message_is_dropped_and_one_failure_does_not_stop_others(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        a, b, c = (w.panel.add_server(name=n, state="running", cpu=10) for n in ("A", "B", "C"))
        ids = {s.identifier: await post_status(w, s.identifier) for s in (a, b, c)}
        await w.bot.run_update_cycle()
        # A moderator deletes A's message.
        await w.after_event(
            "raw_message_delete", lambda: w.discord.delete_message(w.channel_id, ids[a.identifier])
        )
        w.panel.fail_next(
            500, count=5, path_contains=f"/servers/{b.identifier}/resources"
        )  # B's panel errors
        c_edits = w.discord.messages[ids[c.identifier]].edits
        w.clock.advance(10)
        c.cpu = 90  # C needs an edit this cycle
        report = await w.bot.run_update_cycle()
        assert set(stored(w)) == {b.identifier, c.identifier}  # A dropped, B kept despite its errors
        assert report.failed >= 1
        assert w.discord.messages[ids[c.identifier]].edits == c_edits + 1  # C was still updated


async def test_message_deleted_while_the_bot_was_away_is_dropped_at_the_next_cycle(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="running")
        message_id = await post_status(w, srv.identifier)
        await w.stop_bot()
        w.discord.delete_message(w.channel_id, message_id)  # nobody is listening
        await w.start_bot()
        assert srv.identifier in w.bot.board.store
        report = await w.bot.run_update_cycle()
        assert report.dropped == 1 and stored(w) == {}


async def test_deleted_channel_drops_its_messages(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        a, b = w.panel.add_server(name="A"), w.panel.add_server(name="B")
        await post_status(w, a.identifier)
        await post_status(w, b.identifier, channel=w.other_channel_id)
        await w.after_event("guild_channel_delete", lambda: w.discord.delete_channel(w.other_channel_id))
        w.clock.advance(700)
        await w.bot.run_update_cycle()
        assert set(stored(w)) == {a.identifier}


async def test_panel_errors_keep_last_data_then_show_unreachable_then_recover(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="running", cpu=30)
        message_id = await post_status(w, srv.identifier)
        message = w.discord.messages[message_id]
        await w.bot.run_update_cycle()
        edits = message.edits
        await w.panel.set_down(True)
        for _ in range(2):  # short outage: no flapping
            w.clock.advance(10)
            await w.bot.run_update_cycle()
        assert message.edits == edits
        w.clock.advance(10)
        await w.bot.run_update_cycle()  # third failed cycle
        assert message.embeds[0]["fields"][0]["value"] == "❔ Panel unreachable"
        await w.panel.set_down(False)
        w.clock.advance(10)
        await w.bot.run_update_cycle()
        assert message.embeds[0]["fields"][0]["value"] == "🟢 Running"


async def test_server_removed_from_panel_is_marked_and_dropped(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(name="Old World")
        message_id = await post_status(w, srv.identifier)
        w.panel.remove_server(srv.identifier)
        await w.bot.run_update_cycle()
        message = w.discord.messages[message_id]
        assert message.embeds[0]["title"] == "Old World was removed from the panel"
        assert message.components == []
        assert stored(w) == {}


# -- the board without a gateway: an in-memory Discord behind the CardSink interface ----------------


class MemoryCards:
    """The smallest Discord the board can talk to: numbered messages that can go missing."""

    def __init__(self) -> None:
        self.messages: dict[int, tuple[int, str]] = {}  # message id -> (channel id, State field shown)
        self.calls: list[str] = []
        self._next = 1000

    async def post(self, channel_id: int, server_id: str, card: Card) -> EmbedLocation:
        self._next += 1
        self.messages[self._next] = (channel_id, str(card.embed.fields[0].value))
        self.calls.append(f"post {server_id} in {channel_id}")
        return EmbedLocation(channel_id, self._next)

    async def edit(self, location: EmbedLocation, server_id: str, card: Card) -> None:
        if location.message_id not in self.messages:
            raise CardGone("Unknown Message")
        self.messages[location.message_id] = (location.channel_id, str(card.embed.fields[0].value))
        self.calls.append(f"edit {server_id}")

    async def retire(self, location: EmbedLocation, embed: discord.Embed) -> None:
        self.messages[location.message_id] = (location.channel_id, str(embed.title))
        self.calls.append(f"retire {location.message_id}")

    async def delete(self, location: EmbedLocation) -> None:
        self.messages.pop(location.message_id, None)
        self.calls.append(f"delete {location.message_id}")

    async def exists(self, location: EmbedLocation) -> bool:
        return location.message_id in self.messages


@asynccontextmanager
async def memory_board(
    tmp_path: Path,
) -> AsyncIterator[tuple[StatusBoard, MemoryCards, FakePanel, ManualClock]]:
    clock, sink = ManualClock(), MemoryCards()
    settings = Settings("token", 1, ("Game Server User",), "http://x", DEFAULT_CLIENT_KEY, DEFAULT_APP_KEY)
    async with FakePanel() as panel:
        api = PterodactylAPI(panel.url, DEFAULT_CLIENT_KEY, DEFAULT_APP_KEY, timeout=2.0, max_retries=0)
        async with api:
            board = StatusBoard(
                settings,
                api,
                EmbedStore(tmp_path / "embed_locations.json"),
                ServerMetricsManager(),
                sink,
                clock=clock,
            )
            board.load()
            try:
                yield board, sink, panel, clock
            finally:
                await board.close()


async def test_board_posts_edits_and_replaces_cards_without_a_gateway(tmp_path: Path) -> None:
    async with memory_board(tmp_path) as (board, sink, panel, clock):
        srv = panel.add_server(name="Survival", state="offline")
        await board.refresh_listing()
        first = await board.post(srv.identifier, channel_id=1)
        assert sink.messages[1001] == (1, "🔴 Offline") and first.replaced is None and first.saved
        srv.state = "running"
        clock.advance(10)
        report = await board.poll()
        assert (report.checked, report.edited) == (1, 1) and sink.messages[1001] == (1, "🟢 Running")
        second = await board.post(srv.identifier, channel_id=2)
        assert second.replaced == EmbedLocation(1, 1001) and second.replaced_deleted
        assert 1001 not in sink.messages and board.store.get(srv.identifier) == EmbedLocation(2, 1002)
        del sink.messages[1002]  # someone deleted it
        srv.state = "stopping"
        report = await board.poll()
        assert report.dropped == 1 and board.store.get(srv.identifier) is None
        assert board.records[srv.identifier].card is None  # still listed, no longer tracked


async def test_forgetting_a_server_is_one_removal(tmp_path: Path) -> None:
    async with memory_board(tmp_path) as (board, sink, panel, _clock):
        shown, idle = panel.add_server(name="Shown", state="running"), panel.add_server(name="Idle")
        await board.refresh_listing()
        await board.post(shown.identifier, channel_id=1)
        board.claim_power(idle.identifier, "start", "olivia")
        assert set(board.records) == {shown.identifier, idle.identifier}
        panel.remove_server(shown.identifier)
        panel.remove_server(idle.identifier)
        await board.poll()
        assert board.records == {}  # listing entry, resources, claim and card went with their record
        assert sink.calls[-1] == "retire 1001" and board.store.get(shown.identifier) is None
        assert board.metrics.get(shown.identifier) is None


async def test_refresh_and_the_update_cycle_never_interleave(tmp_path: Path) -> None:
    async with memory_board(tmp_path) as (board, _sink, panel, _clock):
        srv = panel.add_server(state="running")
        await board.refresh_listing()
        await board.post(srv.identifier, channel_id=1)
        panel.requests.clear()
        panel.set_latency(0.2)
        await asyncio.gather(board.poll(), board.poll(force=True))
        paths = ["list" if r.path == "/api/client" else "resources" for r in panel.requests]
        assert paths == ["list", "resources", "list", "resources"]  # one pass, then the other


# -- hardening (issue 10) ---------------------------------------------------------------------------


async def test_a_restart_edits_no_card_whose_server_did_not_change(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        servers = w.panel.add_servers(20, state="running", cpu=20)
        for srv in servers:
            await post_status(w, srv.identifier)
        edits = len(w.discord.calls_to(EDIT_ROUTE))
        await w.restart_bot()
        report = await w.bot.run_update_cycle()  # "first check since start-up" is no reason on its own
        assert (report.checked, report.edited, report.failed, report.dropped) == (20, 0, 0, 0)
        assert len(w.discord.calls_to(EDIT_ROUTE)) == edits
        servers[3].state = "stopping"
        w.clock.advance(10)
        assert (await w.bot.run_update_cycle()).edited == 1  # the rules still work as before


async def test_many_edits_in_one_channel_go_at_discords_pace_without_holding_up_the_cycle(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limit = {EDIT_ROUTE: (5, 1.0)}  # the stand-in enforces the pace the bot keeps (Discord's is 5 per 5 s)
    async with world(
        tmp_path, update_interval=1, rate_limits=limit, pacer=ChannelPacer(burst=5, per=1.0)
    ) as w:
        servers = w.panel.add_servers(25, state="running", cpu=20)
        messages = [w.discord.messages[await post_status(w, srv.identifier)] for srv in servers]
        caplog.set_level(logging.INFO)
        for srv in servers:
            srv.state = "stopping"  # every card has to change now
        w.clock.advance(1)
        report = await w.bot.run_update_cycle()
        assert 1 <= report.edited <= 5 and report.deferred == 25 - report.edited  # the rest is queued
        assert report.failed == 0

        def all_stopping() -> bool:
            return all(m.embeds[0]["fields"][0]["value"] == "🟠 Stopping" for m in messages)

        await w.discord.wait_until(all_stopping, timeout=15, what="every card edited at Discord's pace")
        per_card = [r for r in caplog.records if r.name == "ptero.editor" and r.levelno >= logging.WARNING]
        assert [r.getMessage() for r in per_card] == []  # no warning per card
        assert not [
            c for c in w.discord.calls_to(EDIT_ROUTE) if c.status == 429
        ]  # never past Discord's limit


async def test_an_edit_discord_refuses_backs_off_logs_once_and_recovers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    invalid = {"message": "Invalid Form Body", "code": 50035, "errors": {}}
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="running", cpu=10)
        message_id = await post_status(w, srv.identifier)
        caplog.set_level(logging.INFO)
        w.discord.fail_next(EDIT_ROUTE, 400, count=2, body=invalid)  # two refusals, then Discord takes it
        srv.state = "stopping"
        attempts = []
        for _ in range(8):  # 80 s: tries at 0, 30 s and 90 s would be the backoff's rhythm
            report = await w.bot.run_update_cycle()
            attempts.append(len(w.discord.calls_to(EDIT_ROUTE)))
            assert report.edited == 0
            w.clock.advance(10)
        assert attempts == [1, 1, 1, 2, 2, 2, 2, 2]  # at 0 s, then once 30 s had passed
        refusals = [r for r in caplog.records if "Discord refused to edit" in r.getMessage()]
        assert (
            len(refusals) == 1
            and refusals[0].levelno == logging.WARNING
            and "50035" in refusals[0].getMessage()
        )
        w.clock.advance(10)  # 90 s: the third try, 60 s after the second
        assert (await w.bot.run_update_cycle()).edited == 1
        assert state_field(w, message_id) == "🟠 Stopping"
        assert "can be edited again" in caplog.text


async def test_a_long_unknown_state_stays_within_discords_limits(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="running", cpu=10)
        message_id = await post_status(w, srv.identifier)
        long_state = "weird_" + "x" * 1500
        body = {
            "object": "stats",
            "attributes": {
                "current_state": long_state,
                "is_suspended": False,
                "resources": {"memory_bytes": 1, "cpu_absolute": 1, "disk_bytes": 1, "network_rx_bytes": 0,
                              "network_tx_bytes": 0, "uptime": 1},
            },
        }  # fmt: skip
        w.panel.fail_next(200, path_contains="/resources", body=body)
        report = await w.bot.run_update_cycle()
        assert (report.edited, report.failed) == (1, 0)  # Discord took the edit (no 50035)
        value = state_field(w, message_id)
        assert value.startswith("❔ Weird xxx") and len(value) <= 1024


# -- Pelican and a node that is down (issue 12) -------------------------------------------------------


async def test_a_node_outage_shows_node_unreachable_never_offline_on_both_panels(
    tmp_path: Path, flavour: str
) -> None:
    async with world(tmp_path, flavour=flavour) as w:
        srv = w.panel.add_server(name="Survival", state="running", cpu=30, memory_bytes=512 * 1024**2)
        message_id = await post_status(w, srv.identifier)
        await w.bot.run_update_cycle()
        w.panel.set_node_down(srv.node_id, True)  # Pterodactyl: 504; Pelican: 200 "missing"
        shown = []
        for _ in range(3):
            w.clock.advance(10)
            await w.bot.run_update_cycle()
            shown.append(state_field(w, message_id))
        assert shown == ["🟢 Running", "🟢 Running", "❔ Node unreachable"]  # a blip changes nothing
        samples = w.bot.board.metrics.get(srv.identifier)
        assert samples is not None and len(samples) == 1  # "missing" never fed the graph
        w.panel.set_node_down(srv.node_id, False)
        w.clock.advance(10)
        await w.bot.run_update_cycle()
        assert state_field(w, message_id) == "🟢 Running"


async def test_pelicans_cached_missing_after_the_node_returns_does_not_flap_the_card(tmp_path: Path) -> None:
    async with world(tmp_path, flavour="pelican", resource_cache=20) as w:
        srv = w.panel.add_server(name="Survival", state="running", cpu=30)
        message_id = await post_status(w, srv.identifier)
        w.clock.advance(20)
        w.panel.set_node_down(srv.node_id, True)
        states = []
        for step in range(8):
            if step == 4:
                w.panel.set_node_down(srv.node_id, False)  # back, but "missing" is cached up to 20 s
            w.clock.advance(10)
            await w.bot.run_update_cycle()
            states.append(state_field(w, message_id))
        assert "🔴 Offline" not in states
        changes = [s for i, s in enumerate(states) if i == 0 or s != states[i - 1]]
        assert changes == ["🟢 Running", "❔ Node unreachable", "🟢 Running"]  # down once, up once


async def test_start_on_a_server_whose_node_is_down_explains_the_node(tmp_path: Path, flavour: str) -> None:
    async with world(tmp_path, flavour=flavour) as w:
        srv = w.panel.add_server(name="Survival", state="offline")
        message_id = await post_status(w, srv.identifier)
        w.panel.set_node_down(srv.node_id, True)
        click = await w.click(message_id, make_custom_id("start", srv.identifier), member=w.operator_id)
        text = await answer(click)
        assert "could not reach the machine (node) that **Survival** runs on" in text
        assert "unexpected" not in text


async def test_a_pelican_server_without_a_description_and_with_nulls_shows_its_card(tmp_path: Path) -> None:
    async with world(tmp_path, flavour="pelican") as w:
        w.panel.editable_descriptions = False  # Pelican then omits "description" altogether
        srv = w.panel.add_server(name="Survival", description="never shown", state="running", cpu=5)
        srv.feature_databases = srv.feature_allocations = None
        message_id = await post_status(w, srv.identifier)
        embed = w.discord.messages[message_id].embeds[0]
        assert embed["title"] == "Survival" and "description" not in embed
        assert state_field(w, message_id) == "🟢 Running"
