"""The bot's handlers and update task, in process, against the Discord stand-in and the fake panel.

Real discord.py objects all the way: interactions arrive over the stand-in's gateway, the bot answers
over HTTP, and the panel is the fake one over HTTP. The update task is driven cycle by cycle with an
injected clock.
"""

from __future__ import annotations

import asyncio
import json
import struct
from pathlib import Path

from pterodisbot import EmbedLocation, healthcheck, make_custom_id
from tests.harness import answer, components, custom_ids, post_status, stored, world

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# -- /server_status ---------------------------------------------------------------------------------


async def test_server_status_pages_through_200_servers(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        w.panel.add_servers(200, state="running", cpu=5)
        command = await w.slash("server_status")
        response = await command.wait_response()
        assert response["type"] == 5 and command.ephemeral  # deferred privately at once
        assert command.latency is not None and command.latency < 3
        await command.wait_followups(1)
        menu = command.followup_messages[0]
        assert "**200** servers" in menu.content and "Page 1 of 8" in menu.content
        seen: set[str] = set()
        for page in range(8):
            select = next(c for c in components(menu) if c["type"] == 3)
            assert len(select["options"]) <= 25
            seen |= {o["value"] for o in select["options"]}
            assert all(o["description"].startswith("🟢 Running") for o in select["options"])
            if page < 7:
                next_id = next(c["custom_id"] for c in components(menu) if c.get("label") == "Next")
                turn = await w.discord.component_click(
                    menu.id, next_id, guild_id=w.guild_id, member_id=w.member_id, channel_id=w.channel_id
                )
                await turn.wait_response()
                menu = await w.discord.wait_for_message(
                    lambda m, p=page, mid=menu.id: m.id == mid and f"Page {p + 2} of 8" in m.content,
                    include_ephemeral=True,
                )
        assert seen == set(w.panel.servers)  # every server is reachable


async def test_choosing_a_server_posts_and_persists_and_replaces(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(name="Survival", state="running", cpu=42.5, memory_bytes=300 * 1024**2)
        first = await post_status(w, srv.identifier)
        message = w.discord.messages[first]
        embed = message.embeds[0]
        assert embed["title"] == "Survival"
        assert any(f["name"] == "CPU" and f["value"] == "42.5% of 200%" for f in embed["fields"])
        assert [c["label"] for c in components(message)] == ["Start", "Stop", "Restart", "Show Address"]
        assert custom_ids(message)[0] == make_custom_id("start", srv.identifier)
        assert stored(w) == {srv.identifier: {"channel_id": str(w.channel_id), "message_id": str(first)}}

        second = await post_status(w, srv.identifier, channel=w.other_channel_id)
        assert w.discord.messages[first].deleted  # the older message is gone
        assert stored(w)[srv.identifier] == {"channel_id": str(w.other_channel_id), "message_id": str(second)}


async def test_missing_permission_is_explained(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server()
        w.discord.set_permissions(w.channel_id, send_messages=False)
        await asyncio.sleep(0)  # let the CHANNEL_UPDATE reach the bot's cache before the click
        command = await w.slash("server_status")
        await command.wait_followups(1)
        menu = command.followup_messages[0]
        select = next(c for c in components(menu) if c["type"] == 3)
        choice = await w.discord.select_choice(
            menu.id,
            select["custom_id"],
            values=[srv.identifier],
            guild_id=w.guild_id,
            channel_id=w.channel_id,
            member_id=w.member_id,
        )
        text = await answer(choice)
        assert "can't post here" in text and "Send Messages" in text
        assert not w.store_path.exists() or stored(w) == {}


# -- buttons ----------------------------------------------------------------------------------------


async def test_power_needs_the_control_role(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="offline")
        message_id = await post_status(w, srv.identifier)
        start = make_custom_id("start", srv.identifier)

        refused = await w.click(message_id, start, member=w.member_id)
        assert "only members with the **Game Server User** role" in await answer(refused)
        assert refused.ephemeral and w.panel.power_requests == []

        elsewhere = await w.click(message_id, start, elsewhere=True)
        assert "only work in the Discord server" in await answer(elsewhere)
        assert w.panel.power_requests == []

        allowed = await w.click(message_id, start, member=w.operator_id)
        assert "Start sent to **Survival**" in await answer(allowed)
        assert allowed.ephemeral
        assert w.panel.power_requests == [(srv.identifier, "start")]


async def test_administrator_may_and_stop_when_offline_is_answered_without_a_request(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="offline")
        message_id = await post_status(w, srv.identifier)
        stop = await w.click(message_id, make_custom_id("stop", srv.identifier), member=w.admin_id)
        assert "already offline" in await answer(stop)
        assert w.panel.power_requests == []
        restart = await w.click(message_id, make_custom_id("restart", srv.identifier), member=w.admin_id)
        assert "Restart sent" in await answer(restart)
        assert w.panel.power_requests == [(srv.identifier, "restart")]


async def test_two_restarts_at_once_send_one_request(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="running")
        message_id = await post_status(w, srv.identifier)
        restart = make_custom_id("restart", srv.identifier)
        w.panel.set_latency(0.3)  # the first request is still in flight when the second click lands
        first, second = await asyncio.gather(
            w.click(message_id, restart, member=w.operator_id),
            w.click(message_id, restart, member=w.admin_id),
        )
        texts = sorted([await answer(first), await answer(second)])
        assert any("already in progress" in t for t in texts)
        assert any("Restart sent" in t for t in texts)
        assert w.panel.power_requests == [(srv.identifier, "restart")]


async def test_conflict_and_permission_errors_are_explained(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="offline")
        message_id = await post_status(w, srv.identifier)
        srv.status = "suspended"
        start = await w.click(message_id, make_custom_id("start", srv.identifier), member=w.operator_id)
        assert "currently suspended" in await answer(start)
        srv.status = None
        w.panel.fail_next(403, path_contains="/power")
        again = await w.click(message_id, make_custom_id("start", srv.identifier), member=w.operator_id)
        assert "lacks the permission" in await answer(again)
        assert w.panel.power_requests == []


async def test_show_address_for_any_member(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(ip="10.0.0.9", port=27015, ip_alias="play.example.com")
        message_id = await post_status(w, srv.identifier)
        address = await w.click(message_id, make_custom_id("address", srv.identifier), member=w.member_id)
        assert "`play.example.com:27015`" in await answer(address)
        assert address.ephemeral


# -- the update task ------------------------------------------------------------------------------


async def test_edits_happen_exactly_when_the_rules_say(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="running", cpu=10, memory_bytes=100 * 1024**2, uptime_ms=1000)
        message_id = await post_status(w, srv.identifier)
        message = w.discord.messages[message_id]
        await w.restart_bot()  # a fresh process: nothing known, so the first check edits
        steps: list[tuple[float, dict[str, object], int]] = [
            (0, {}, 1),  # first check since start-up
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
        assert w.bot.server_states[srv.identifier].state == "stopping"


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
        assert image is not None and image.data.startswith(PNG_SIGNATURE)
        width, height = struct.unpack(">II", image.data[16:24])
        assert (width, height) == (800, 500)
        assert message.embeds[0]["image"]["url"].endswith(f"/{image.filename}")  # resolved like Discord does

        w.clock.advance(10)
        srv.state, srv.cpu = "offline", 0
        await w.bot.run_update_cycle()
        assert message.attachments == [] and "image" not in message.embeds[0]
        assert w.bot.metrics.get(srv.identifier) is None  # samples cleared


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
        assert srv.identifier in w.bot.store
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


async def test_refresh_embeds_reports_refreshed_and_missing(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        a, b = w.panel.add_server(name="A"), w.panel.add_server(name="B")
        ids = [await post_status(w, s.identifier) for s in (a, b)]
        await w.stop_bot()
        w.discord.delete_message(w.channel_id, ids[1])  # while the bot is away: nobody hears it
        await w.start_bot()
        refused = await w.slash("refresh_embeds", member=w.member_id)
        assert "Only members with a control role" in await answer(refused)
        command = await w.slash("refresh_embeds", member=w.operator_id)
        assert "Refreshed 1 status message(s). 1 were missing" in await answer(command)
        assert stored(w) == {a.identifier: {"channel_id": str(w.channel_id), "message_id": str(ids[0])}}


async def test_restart_keeps_buttons_working_and_messages_updating(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(name="Survival", state="offline")
        message_id = await post_status(w, srv.identifier)
        await w.restart_bot()
        assert w.bot.store.get(srv.identifier) == EmbedLocation(w.channel_id, message_id)
        click = await w.click(message_id, make_custom_id("start", srv.identifier), member=w.operator_id)
        assert "Start sent to" in await answer(click)
        assert w.panel.power_requests == [(srv.identifier, "start")]
        await w.bot.run_update_cycle()  # the fake panel now reports "starting"
        message = w.discord.messages[message_id]
        assert message.embeds[0]["fields"][0]["value"] == "🟡 Starting"
        assert len(w.discord.channel_messages(w.channel_id)) == 1  # edited in place, no duplicate


async def test_heartbeat_tells_the_healthcheck_whether_cycles_run_while_connected(tmp_path: Path) -> None:
    heartbeat = tmp_path / "heartbeat.json"
    assert healthcheck(heartbeat) == 1  # nothing yet: unhealthy
    async with world(tmp_path) as w:
        w.panel.add_server()
        await w.bot.run_update_cycle()
        assert healthcheck(heartbeat) == 0
        written = json.loads(heartbeat.read_text())
        assert healthcheck(heartbeat, now=written["at"] + 3 * written["interval"] + 61) == 1  # stale
        await w.stop_bot()  # Discord connection gone: cycles alone no longer count as alive
        heartbeat.unlink()
        await w.bot.run_update_cycle()
        assert not heartbeat.exists()
