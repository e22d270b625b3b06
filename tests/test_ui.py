"""ptero.ui: button ids, the status view and the role rule (pure), then buttons and the picker in
process: the real bot against the Discord stand-in and the fake panel over HTTP."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ptero.ui import CUSTOM_ID_TEMPLATE, ServerStatusView, make_custom_id, may_control
from tests.harness import answer, components, custom_ids, post_status, stored, world


@pytest.mark.parametrize("action", ["start", "stop", "restart", "address"])
def test_custom_id_round_trip(action: str) -> None:
    custom_id = make_custom_id(action, "1a2b3c4d")  # type: ignore[arg-type]
    assert custom_id == f"pterodisbot:{action}:1a2b3c4d"
    match = CUSTOM_ID_TEMPLATE.fullmatch(custom_id)  # the template discord.py dispatches clicks with
    assert match is not None and (match["action"], match["server"]) == (action, "1a2b3c4d")


@pytest.mark.parametrize(
    "custom_id",
    ["pterodisbot:kill:1a2b3c4d", "pterodisbot:start:", "other:start:abc", "pterodisbot:start:a/b"],
)
def test_foreign_or_bad_custom_ids_do_not_parse(custom_id: str) -> None:
    assert CUSTOM_ID_TEMPLATE.fullmatch(custom_id) is None


def test_bad_server_id_cannot_build_a_custom_id() -> None:
    with pytest.raises(ValueError):
        make_custom_id("start", "x" * 200)


async def test_status_view_has_four_persistent_buttons() -> None:
    view = ServerStatusView("1a2b3c4d")
    assert view.timeout is None and view.is_persistent()
    rows = view.to_components()
    buttons = [c for row in rows for c in row["components"]]
    assert [b["label"] for b in buttons] == ["Start", "Stop", "Restart", "Show Address"]
    assert [b["style"] for b in buttons] == [3, 4, 1, 2]  # green, red, blue, grey
    assert all(len(b["custom_id"]) <= 100 for b in buttons)


@pytest.mark.parametrize(
    ("role_ids", "role_names", "admin", "allowed"),
    [
        ([1], ["Game Server User"], False, True),  # by name
        ([1], ["game server user"], False, True),  # names compare case-blind
        ([555], ["Other"], False, True),  # by id
        ([2], ["Other"], True, True),  # Administrator always
        ([2], ["Other"], False, False),  # refused
        ([], [], False, False),
    ],
)
def test_may_control(role_ids: list[int], role_names: list[str], admin: bool, allowed: bool) -> None:
    assert may_control(role_ids, role_names, admin, ("Game Server User", "555")) is allowed


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
