"""ptero.bot: the bot's lifecycle in process (restarts, the heartbeat), against the Discord stand-in and
the fake panel over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

from ptero.runtime import healthcheck
from ptero.store import EmbedLocation
from ptero.ui import make_custom_id
from tests.harness import answer, post_status, world


async def test_restart_keeps_buttons_working_and_messages_updating(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(name="Survival", state="offline")
        message_id = await post_status(w, srv.identifier)
        await w.restart_bot()
        assert w.bot.board.store.get(srv.identifier) == EmbedLocation(w.channel_id, message_id)
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
