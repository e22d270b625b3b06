"""ptero.alerts: the outage rules (pure, on a passed-in clock), then alerts, the audit trail, the last
action on the card and the presence line in process, against the Discord stand-in and the fake panel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ptero.alerts import Outage, OutageTracker, PresenceLine, Recovery, format_duration
from ptero.ui import make_custom_id
from tests.harness import World, answer, post_status, world

# -- the outage rules -------------------------------------------------------------------------------


def run(tracker: OutageTracker, steps: list[tuple[float, str]]) -> list[Outage | Recovery]:
    """Feed (time, state) steps of one server, ticking at each; what was announced."""
    said: list[Outage | Recovery] = []
    for now, state in steps:
        event = tracker.observe("s1", "Survival", state, now)
        said += [event] if event is not None else []
        said += tracker.tick(now)
    return said


def test_a_blip_shorter_than_alert_after_gives_nothing() -> None:
    steps = [(0, "running"), (10, "offline"), (50, "running"), (100, "unreachable"), (130, "running")]
    assert run(OutageTracker(60), steps) == []


def test_one_alert_per_outage_and_one_recovery_with_its_duration() -> None:
    steps = [
        (0, "running"),
        (10, "offline"),
        (40, "offline"),
        (70, "offline"),
        (80, "offline"),
        (400, "starting"),
        (410, "running"),
    ]
    said = run(OutageTracker(60), steps)
    assert said == [Outage("s1", "Survival", "offline", 10), Recovery("s1", "Survival", 400)]
    assert format_duration(400) == "6 min 40 s"


def test_a_restart_made_on_the_panel_is_no_outage() -> None:
    both = [
        (0, "running"),
        (5, "stopping"),
        (15, "offline"),
        (20, "starting"),
        (45, "running"),
        (200, "running"),
    ]
    assert run(OutageTracker(60), both) == []
    no_offline = [(0, "running"), (5, "stopping"), (20, "starting"), (45, "running")]
    assert run(OutageTracker(0), no_offline) == []


def test_a_stop_pressed_on_the_card_is_intended_a_stop_made_on_the_panel_is_not() -> None:
    tracker = OutageTracker(60)
    tracker.observe("s1", "Survival", "running", 0)
    tracker.intend("s1", 5)
    assert run(tracker, [(10, "stopping"), (20, "offline"), (500, "offline")]) == []
    assert run(tracker, [(600, "starting"), (620, "running"), (700, "offline"), (800, "offline")]) == [
        Outage("s1", "Survival", "offline", 700)
    ]


def test_a_node_or_the_panel_unreachable_is_an_outage_of_its_own_kind() -> None:
    said = run(OutageTracker(60), [(0, "running"), (10, "node_unreachable"), (80, "node_unreachable")])
    assert said == [Outage("s1", "Survival", "node", 10)]
    said = run(OutageTracker(60), [(0, "starting"), (10, "unreachable"), (75, "offline")])
    assert said == [Outage("s1", "Survival", "unreachable", 10)]


def test_a_server_down_at_start_up_is_the_baseline() -> None:
    assert run(OutageTracker(0), [(0, "offline"), (100, "offline"), (200, "unreachable")]) == []
    assert run(OutageTracker(0), [(0, "offline"), (100, "running"), (110, "offline")]) == [
        Outage("s1", "Survival", "offline", 110)
    ]


def test_alert_after_0_alerts_at_once() -> None:
    assert run(OutageTracker(0), [(0, "running"), (10, "offline")]) == [
        Outage("s1", "Survival", "offline", 10)
    ]


def test_the_presence_text() -> None:
    assert PresenceLine.text(3, 5) == "3/5 servers running"


# -- in process: the stand-in and the fake panel ------------------------------------------------------


def posted(w: World, channel_id: int) -> list[Any]:
    return w.discord.channel_messages(channel_id)


async def test_a_crash_gives_exactly_one_down_alert_that_pings_the_role_and_one_recovery(
    tmp_path: Path,
) -> None:
    async with world(tmp_path, alerts=True, alert_after=30) as w:
        srv = w.panel.add_server(name="**Survival**", state="running", cpu=20)
        await post_status(w, srv.identifier)
        await w.bot.run_update_cycle()  # the baseline: running
        srv.state = "offline"  # it crashed, on the panel
        for _ in range(6):  # a minute of cycles
            w.clock.advance(10)
            await w.bot.run_update_cycle()
        await w.bot.alerts.notifier.idle()
        [alert] = posted(w, w.alerts_channel_id)
        assert alert.content.startswith(
            f"<@&{w.on_call_role_id}> 🔴 **\\*\\*Survival\\*\\*** is down (offline) since <t:"
        )
        call = next(
            c
            for c in w.discord.calls_to("POST /channels/{channel_id}/messages")
            if c.json and "<@&" in str(c.json)
        )
        assert call.json["allowed_mentions"] == {
            "parse": [],
            "roles": [w.on_call_role_id],
        }  # that role only
        srv.state = "running"
        for _ in range(3):
            w.clock.advance(10)
            await w.bot.run_update_cycle()
        await w.bot.alerts.notifier.idle()
        alert, recovery = posted(w, w.alerts_channel_id)
        assert recovery.content == "🟢 **\\*\\*Survival\\*\\*** is running again, after 1 min down."
        assert "<@" not in recovery.content


async def test_a_stop_pressed_by_an_operator_is_audited_and_raises_no_alert(tmp_path: Path) -> None:
    async with world(tmp_path, alerts=True, audit=True, alert_after=0) as w:
        srv = w.panel.add_server(name="Survival", state="running", cpu=20)
        message_id = await post_status(w, srv.identifier)
        await w.bot.run_update_cycle()
        click = await w.click(message_id, make_custom_id("stop", srv.identifier), member=w.operator_id)
        assert "Stop sent" in await answer(click)
        for _ in range(4):  # the fake panel goes stopping, then offline
            w.clock.advance(10)
            await w.bot.run_update_cycle()
        await w.bot.alerts.notifier.idle()
        assert posted(w, w.alerts_channel_id) == []  # intended: no alert
        [audit] = posted(w, w.audit_channel_id)
        assert audit.content == f"⏹️ <@{w.operator_id}> pressed **Stop** on **Survival**: sent."
        call = next(
            c for c in w.discord.calls_to("POST /channels/{channel_id}/messages") if "pressed" in str(c.json)
        )
        assert call.json["allowed_mentions"] == {"parse": []}  # names the member, pings nobody
        card = w.discord.messages[message_id].embeds[0]
        last = next(f["value"] for f in card["fields"] if f["name"] == "Last action")
        assert last.startswith(f"Stop by <@{w.operator_id}>, <t:") and last.endswith(":R>")
        await w.restart_bot()  # the last action survives a restart (it lives in the store entry)
        srv.cpu = 99
        srv.state = "starting"
        w.clock.advance(10)
        await w.bot.run_update_cycle()
        card = w.discord.messages[message_id].embeds[0]
        assert any(f["name"] == "Last action" and f["value"] == last for f in card["fields"])


async def test_refused_presses_are_audited_as_refused(tmp_path: Path) -> None:
    async with world(tmp_path, audit=True) as w:
        srv = w.panel.add_server(name="Survival", state="offline")
        message_id = await post_status(w, srv.identifier)
        refused = await w.click(message_id, make_custom_id("start", srv.identifier), member=w.member_id)
        assert "only members with" in await answer(refused)
        srv.status = "suspended"
        w.clock.advance(10)
        by_panel = await w.click(message_id, make_custom_id("start", srv.identifier), member=w.operator_id)
        assert "suspended" in await answer(by_panel)
        address = await w.click(message_id, make_custom_id("address", srv.identifier), member=w.member_id)
        await answer(address)
        await w.bot.alerts.notifier.idle()
        lines = [m.content for m in posted(w, w.audit_channel_id)]
        assert lines == [
            f"▶️ <@{w.member_id}> pressed **Start** on **Survival**: refused (no control role).",
            f"▶️ <@{w.operator_id}> pressed **Start** on **Survival**: refused by the panel "
            "(This server is currently suspended and the functionality requested is unavailable.).",
        ]  # Show Address is not audited


async def test_without_alert_or_audit_keys_nothing_is_posted(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(name="Survival", state="running")
        message_id = await post_status(w, srv.identifier)
        await w.bot.run_update_cycle()
        click = await w.click(message_id, make_custom_id("stop", srv.identifier), member=w.operator_id)
        await answer(click)
        srv.state = "offline"
        for _ in range(8):
            w.clock.advance(10)
            await w.bot.run_update_cycle()
        await w.bot.alerts.notifier.idle()
        assert posted(w, w.alerts_channel_id) == [] and posted(w, w.audit_channel_id) == []


async def test_the_presence_counts_the_running_servers_with_a_card(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        a, b = w.panel.add_server(name="A", state="running"), w.panel.add_server(name="B", state="offline")
        w.panel.add_server(name="No card", state="running")
        await post_status(w, a.identifier)
        await post_status(w, b.identifier)
        await w.bot.run_update_cycle()

        def presence() -> str | None:
            for update in reversed(w.discord.presence_updates):
                activities = update.get("activities") or []
                if activities:
                    return str(activities[0]["name"])
            return None

        await w.discord.wait_until(lambda: presence() == "1/2 servers running", timeout=5, what="presence")
        b.state = "starting"
        w.clock.advance(20)  # past the 15 s between two changes
        await w.bot.run_update_cycle()
        b.state = "running"
        w.clock.advance(20)
        await w.bot.run_update_cycle()
        await w.discord.wait_until(lambda: presence() == "2/2 servers running", timeout=5, what="presence")
