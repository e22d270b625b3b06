"""ptero.bot: the bot's lifecycle in process (restarts, the heartbeat), against the Discord stand-in and
the fake panel over HTTP."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import json
import logging
import time
from pathlib import Path

import pytest

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


# -- hardening (issue 10) ---------------------------------------------------------------------------


class SteppedWallClock(datetime.datetime):
    """datetime.datetime whose now() is off by ``offset`` (what stepping the machine's clock does)."""

    offset = datetime.timedelta(0)

    @classmethod
    def now(cls, tz: datetime.tzinfo | None = None) -> SteppedWallClock:  # type: ignore[override]
        return super().now(tz) + cls.offset


async def test_stepping_the_wall_clock_neither_stalls_nor_bursts_the_update_task(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with world(tmp_path) as w:
        w.panel.add_server()
        cycles = 0
        starts: list[float] = []  # on the event loop's (monotonic) clock
        ran = asyncio.Event()
        real_cycle = w.bot.updates.cycle

        async def counted() -> object:
            nonlocal cycles
            cycles += 1
            starts.append(asyncio.get_running_loop().time())
            ran.set()
            return await real_cycle()

        w.bot.updates.cycle, w.bot.updates.interval = counted, 0.05
        w.bot.updates.start()

        async def cycles_go_on(n: int) -> None:
            for _ in range(n):
                ran.clear()
                await asyncio.wait_for(ran.wait(), 5)

        await cycles_go_on(2)
        real_time = time.time
        for step in (-3600, +600):  # an hour back, then ten minutes forward
            SteppedWallClock.offset = datetime.timedelta(seconds=step)
            monkeypatch.setattr(datetime, "datetime", SteppedWallClock)
            monkeypatch.setattr(time, "time", lambda s=step: real_time() + s)
            before = cycles
            await cycles_go_on(3)  # no stall
            gaps = [b - a for a, b in itertools.pairwise(starts[before - 1 :])]
            assert len(gaps) >= 3 and min(gaps) >= 0.025, gaps  # and no burst of "missed" cycles
        await w.bot.updates.stop()


async def test_quiet_cycles_log_at_debug_and_an_hourly_summary_at_info(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(state="offline")
        await post_status(w, srv.identifier)
        caplog.set_level(logging.DEBUG, logger="ptero")

        def cycle_lines(level: int) -> int:
            return sum(1 for r in caplog.records if r.levelno == level and "Update cycle:" in r.getMessage())

        await w.bot.run_update_cycle()  # the first one after start-up says that cycles run
        for _ in range(5):
            w.clock.advance(10)
            await w.bot.run_update_cycle()
        assert (cycle_lines(logging.INFO), cycle_lines(logging.DEBUG)) == (1, 5)
        srv.state = "starting"
        w.clock.advance(10)
        await w.bot.run_update_cycle()  # an edit: worth an INFO line
        assert cycle_lines(logging.INFO) == 2
        w.clock.advance(3600)
        await w.bot.run_update_cycle()
        summary = [r.getMessage() for r in caplog.records if "In the last hour" in r.getMessage()]
        assert summary == [
            "In the last hour: 8 update cycle(s), 1 edit(s), 0 failure(s), 0 dropped; "
            "1 card(s), checked every 10 s"
        ]


async def test_a_malformed_reply_to_the_command_sync_is_logged_and_the_bot_runs_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(name="Survival")
        await w.stop_bot()
        route = "PUT /applications/{application_id}/guilds/{guild_id}/commands"
        w.discord.fail_next(route, 200, body=[{"name": "server_status"}])  # a 200 without an id
        await w.start_bot()
        assert "Could not register the slash commands" in caplog.text and "KeyError" in caplog.text
        message_id = await post_status(w, srv.identifier)  # the commands synced before still work
        click = await w.click(message_id, make_custom_id("address", srv.identifier))
        assert "is at" in await answer(click)


async def test_a_gateway_event_discord_py_cannot_parse_is_dropped_and_the_bot_serves_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(name="Survival")
        message_id = await post_status(w, srv.identifier)
        garbled = {
            "type": 3,
            "application_id": str(w.discord.application_id),
            "thread": None,
        }  # no id, token...
        await asyncio.wait_for(asyncio.gather(*w.discord.gateway.dispatch("INTERACTION_CREATE", garbled)), 5)
        click = await w.click(message_id, make_custom_id("address", srv.identifier))
        assert "is at" in await answer(click)
        assert w.runner is not None and not w.runner.done()  # the gateway connection is still up
        assert "Dropped a INTERACTION_CREATE event from Discord" in caplog.text
