"""Faults the bot must survive (issue 6), in process against the fake panel and the Discord stand-in."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from pterodisbot import make_custom_id
from tests.fake_panel import FakePanel
from tests.harness import answer, post_status, stored, world

EDIT_ROUTE = "PATCH /channels/{channel_id}/messages/{message_id}"


def state_field(w, message_id: int) -> str:  # type: ignore[no-untyped-def]
    return w.discord.messages[message_id].embeds[0]["fields"][0]["value"]


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
        assert all(w.bot.live[i].failures == 0 for i in ids)


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
        assert report.failed == 1 and w.bot.live[srv.identifier].failures == 1
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
        caplog.set_level(logging.INFO, logger="pterodisbot")
        for _ in range(3):
            w.clock.advance(10)
            await w.bot.run_update_cycle()
        stretch = [r for r in caplog.records if "would exceed the panel's limit" in r.getMessage()]
        assert len(stretch) == 1
        budget = w.bot.api.budgets["client"]
        assert budget.limit == 120  # learned from X-RateLimit-Limit
        assert budget.polling_per_minute == 118  # 120 minus the reserve for clicks
        assert w.bot.status_updater.seconds == pytest.approx(61 / 5 + 0.5)  # 5 whole cycles of 20 per window
        assert w.panel.too_many_requests == 0
