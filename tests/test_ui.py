"""ptero.ui: button ids, the status view and the role rule (pure), then buttons and the picker in
process: the real bot against the Discord stand-in and the fake panel over HTTP."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from ptero import ui
from ptero.ui import CUSTOM_ID_TEMPLATE, ServerStatusView, make_custom_id, may_control
from tests.fake_panel import FakePanel
from tests.harness import World, answer, components, custom_ids, post_status, stored, world


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
        command = await w.slash("server_status", member=w.operator_id)
        await command.wait_followups(1)
        menu = command.followup_messages[0]
        select = next(c for c in components(menu) if c["type"] == 3)
        choice = await w.discord.select_choice(
            menu.id,
            select["custom_id"],
            values=[srv.identifier],
            guild_id=w.guild_id,
            channel_id=w.channel_id,
            member_id=w.operator_id,
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


# -- hardening (issue 10) ---------------------------------------------------------------------------


async def pick(w: World, identifier: str, member: int, channel: int | None = None) -> Any:
    """/server_status and a choice by ``member``; returns the choice interaction."""
    command = await w.slash("server_status", member=member, channel=channel)
    await command.wait_followups(1)
    menu = command.followup_messages[0]
    select = next(c for c in components(menu) if c["type"] == 3)
    return await w.discord.select_choice(
        menu.id,
        select["custom_id"],
        values=[identifier],
        guild_id=w.guild_id,
        channel_id=channel or w.channel_id,
        member_id=member,
    )


async def test_a_member_who_may_only_look_gets_the_card_privately_and_moves_nothing(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(name="Survival", state="running", cpu=30)
        card = await post_status(w, srv.identifier)  # an operator's card in #server-status
        before = {m.id for m in w.discord.messages.values()}
        for _ in range(5):  # the five picks that used to move the card back and forth
            choice = await pick(w, srv.identifier, w.member_id, channel=w.other_channel_id)
            assert "just for you" in await answer(choice)
            private = choice.followup_messages[0]
            assert choice.ephemeral and private.ephemeral
            assert (
                private.embeds[0]["title"] == "Survival"
                and private.embeds[0]["fields"][0]["value"] == "🟢 Running"
            )
        assert {m.id for m in w.discord.messages.values()} == before  # nothing posted, nothing deleted
        assert not w.discord.messages[card].deleted
        assert stored(w) == {srv.identifier: {"channel_id": str(w.channel_id), "message_id": str(card)}}


async def test_manage_messages_in_the_channel_is_enough_to_post_a_card(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(name="Survival")
        looking = await pick(w, srv.identifier, w.member_id, channel=w.other_channel_id)
        assert "just for you" in await answer(looking) and not w.store_path.exists()  # not without it
        w.discord.set_permissions(w.other_channel_id, target_id=w.member_id, manage_messages=True)
        await asyncio.sleep(0)  # the CHANNEL_UPDATE reaches the bot's cache
        choice = await pick(w, srv.identifier, w.member_id, channel=w.other_channel_id)
        assert "Posted the live status of **Survival**" in await answer(choice)
        assert set(stored(w)) == {srv.identifier}


async def test_the_picker_and_the_buttons_cover_only_the_bot_users_servers(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        mine = w.panel.add_server(name="Ours", ip="10.0.0.8", port=25570)
        private = w.panel.add_server(name="Customer X private", ip="10.9.9.9", port=25599)
        private.access = None  # neither owner nor subuser: the client API answers 404 for it
        command = await w.slash("server_status", member=w.operator_id)
        await command.wait_followups(1)
        menu = command.followup_messages[0]
        assert [o["label"] for o in next(c for c in components(menu) if c["type"] == 3)["options"]] == [
            "Ours"
        ]
        assert "**1** servers" in menu.content
        # A card posted while the bot's user could see the server; then it was taken off that user.
        message_id = await post_status(w, mine.identifier)
        mine.access = None
        await w.bot.run_update_cycle()
        card = w.discord.messages[message_id]
        assert card.embeds[0]["fields"][0]["value"] == "🔒 Not accessible to the bot's panel user"
        assert stored(w) == {
            mine.identifier: {"channel_id": str(w.channel_id), "message_id": str(message_id)}
        }
        for action in ("address", "start"):
            click = await w.click(message_id, make_custom_id(action, mine.identifier), member=w.operator_id)  # type: ignore[arg-type]
            text = await answer(click)
            assert "not one this bot can show" in text and "10.0.0.8" not in text
        assert w.panel.power_requests == []
        mine.access = "subuser"  # access given back: the card resumes
        await w.bot.run_update_cycle()
        assert card.embeds[0]["fields"][0]["value"] == "🔴 Offline"


async def test_names_and_aliases_are_escaped_and_a_bind_all_address_shows_the_node(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        odd = w.panel.add_server(
            name="**Bold** `tick` @everyone", ip="10.0.0.5", ip_alias="play`x.example.com"
        )
        open_ = w.panel.add_server(name="Open", ip="0.0.0.0", port=25577)
        message_id = await post_status(w, odd.identifier)
        click = await w.click(message_id, make_custom_id("address", odd.identifier))
        text = await answer(click)
        assert "\\*\\*Bold\\*\\*" in text and "\\`tick\\`" in text and "@everyone" not in text
        assert "`` play`x.example.com:25565 ``" in text  # a code span the backtick cannot end early
        other = await post_status(w, open_.identifier)
        text = await answer(await w.click(other, make_custom_id("address", open_.identifier)))
        assert "0.0.0.0" not in text and "`127.0.0.1:25577`" in text  # the node's public name (its FQDN)


async def test_a_shutdown_during_a_power_action_says_the_panel_may_have_it(tmp_path: Path) -> None:
    async with world(tmp_path) as w:
        srv = w.panel.add_server(name="Survival", state="running")
        message_id = await post_status(w, srv.identifier)
        w.panel.hang_next(path_contains="/power")
        click = await w.click(message_id, make_custom_id("restart", srv.identifier), member=w.operator_id)
        await w.panel.wait_for(lambda r: r.method == "POST" and r.hung)
        await w.bot.close()
        text = await answer(click)
        assert "shutting down; the panel may have received the request" in text
        assert "unreachable" not in text and "try again" not in text


async def test_an_answer_discord_does_not_take_gives_up_without_blocking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ui, "REPLY_TIMEOUT", 0.5)
    gave_up = asyncio.Event()

    class GiveUp(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "Could not answer an interaction: Discord did not answer in time" in record.getMessage():
                gave_up.set()

    ui_log = logging.getLogger("ptero.ui")
    monkeypatch.setattr(ui_log, "handlers", [*ui_log.handlers, GiveUp()])  # undone after the test
    async with world(tmp_path) as w:
        srv = w.panel.add_server(name="Survival", state="running")
        message_id = await post_status(w, srv.identifier)
        w.discord.delay_next("POST /webhooks/{webhook_id}/{webhook_token}", 30)  # the followup hangs
        click = await w.click(message_id, make_custom_id("restart", srv.identifier), member=w.operator_id)
        await w.panel.wait_for(lambda r: r.method == "POST" and r.status == 204)
        address = await w.click(message_id, make_custom_id("address", srv.identifier))  # still served
        assert "is at" in await answer(address)
        assert click.response["type"] == 5  # deferred at once; the followup is the one that hangs

        await asyncio.wait_for(gave_up.wait(), 5)  # well before discord.py would have given up


@pytest.mark.parametrize(
    "identifier", ["1a2b3c4d", "serv_" + "a" * 26, "8f5c2b3e-1d4a-4c6b-9e7f-0a1b2c3d4e5f", "x" * 64]
)
def test_button_ids_fit_discords_100_characters_for_the_longest_identifiers(identifier: str) -> None:
    for action in ("start", "stop", "restart", "address"):
        custom_id = make_custom_id(action, identifier)  # type: ignore[arg-type]
        assert len(custom_id) <= 100
        match = CUSTOM_ID_TEMPLATE.fullmatch(custom_id)
        assert match is not None and match["server"] == identifier


async def test_a_server_with_a_long_identifier_gets_a_card_and_working_buttons(tmp_path: Path) -> None:
    async with world(tmp_path, panel=FakePanel(identifier_format="prfx")) as w:
        srv = w.panel.add_server(name="Long", state="offline")
        message_id = await post_status(w, srv.identifier)
        assert custom_ids(w.discord.messages[message_id])[0] == f"pterodisbot:start:{srv.identifier}"
        click = await w.click(message_id, make_custom_id("start", srv.identifier), member=w.operator_id)
        assert "Start sent to **Long**" in await answer(click)
        assert w.panel.power_requests == [(srv.identifier, "start")]
