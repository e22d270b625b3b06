"""End to end: ``python pterodisbot.py`` as a separate process, configured only by environment variables
(as ``docker run -e`` would), against the fake panel and the Discord stand-in on 127.0.0.1.

Each test starts its own bot process in a temporary working directory (so ``embed/`` and ``logs/``
land there) and stops it with SIGTERM, expecting exit status 0. Nothing waits a fixed time: the tests
wait on recorded Discord calls and messages, panel requests and the bot's "Update cycle" log lines.
"""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

from tests.e2e_support import (
    DELETE_MESSAGE,
    PATCH_MESSAGE,
    POST_MESSAGE,
    TOKEN,
    answer,
    components,
    e2e_world,
    everything_sent_to_discord,
    files_written,
    find_secrets,
    footer_identifier,
    page_count,
    png_size,
    select_values,
    state_shown,
    states_shown,
    wait_for_new_call,
)
from tests.harness import locations

ROLE_REFUSAL = "only members with the **Game Server User** role (or Administrator) may"
ELSEWHERE_REFUSAL = "these buttons only work in the Discord server this bot serves"
MiB = 1024 * 1024


def custom_id(action: str, identifier: str) -> str:
    return f"pterodisbot:{action}:{identifier}"


# -- 1. start-up ------------------------------------------------------------------------------------


async def test_startup_logs_in_syncs_commands_to_the_guild_and_gets_ready(
    tmp_path: Path, flavour: str
) -> None:
    async with e2e_world(tmp_path, flavour=flavour) as w:
        bot = await w.start_bot("DEBUG")
        d = w.discord
        assert d.calls_to("GET /users/@me"), "the bot logged in with its token"
        assert d.identify_count == 1 and d.ready_count == 1
        assert d.identify_payloads[0]["intents"] == (1 << 0) | (1 << 9)  # guilds + guild messages only
        commands = await d.wait_for_commands(w.guild_id)
        assert sorted(c["name"] for c in commands) == ["refresh_embeds", "server_status"]
        assert None not in d.command_puts and w.other_guild_id not in d.command_puts  # nowhere else
        assert any(f"Synced 2 command(s) to guild {w.guild_id}" in line for line in bot.lines)
        assert any("Connected to Discord as Pterodisbot" in line for line in bot.lines)
        await bot.wait_cycles(2)  # the update task keeps running with nothing to track
        assert bot.cycles()[-1] == (0, 0, 0, 0)
        assert (w.cwd / "logs" / "pterodisbot.log").is_file()
        assert (w.cwd / "logs" / "heartbeat.json").is_file()

        await w.stop_bot(bot)
        assert any("Received SIGTERM; shutting down" in line for line in bot.lines)
        assert d.unknown_calls == []
        assert "Traceback" not in bot.output
        assert w.problems() == []


# -- 2. /server_status with 30 servers ----------------------------------------------------------------


async def test_server_status_answers_privately_at_once_and_pages_through_30_servers(
    tmp_path: Path, flavour: str
) -> None:
    async with e2e_world(tmp_path, flavour=flavour) as w:
        w.panel.add_servers(30, state="running", cpu=5, memory_bytes=200 * MiB)
        bot = await w.start_bot()

        command = await w.slash("server_status")
        response = await command.wait_response()
        assert response["type"] == 5 and command.ephemeral  # deferred, privately
        assert command.latency is not None and command.latency < 1.5, command.latency
        await command.wait_followups(1)
        menu = command.followup_messages[0]
        assert menu.ephemeral
        assert "**30** servers" in menu.content and "Page 1 of 2 (servers 1 to 25)" in menu.content
        selects = [c for c in components(menu) if c["type"] == 3]
        buttons = {c["label"]: c for c in components(menu) if c["type"] == 2}
        assert len(selects) == 1 and len(selects[0]["options"]) == 25
        assert set(buttons) == {"Previous", "Next"}
        assert buttons["Previous"].get("disabled") and not buttons["Next"].get("disabled")
        # The states were fetched from the panel for the page shown.
        assert all(o["description"] == "🟢 Running" for o in selects[0]["options"])

        seen = set(select_values(menu))
        menu = await w.next_page(menu, 2, page_count(menu))
        assert "Page 2 of 2 (servers 26 to 30)" in menu.content
        assert len(select_values(menu)) == 5
        select = next(c for c in components(menu) if c["type"] == 3)
        assert all(o["description"] == "🟢 Running" for o in select["options"])
        seen |= set(select_values(menu))
        assert seen == set(w.panel.servers)  # every server is reachable

        elsewhere = await w.slash("server_status", elsewhere=True)
        assert "serves one Discord server only" in await answer(elsewhere)

        await w.stop_bot(bot)
        assert w.problems() == []


# -- 3. choosing a server -----------------------------------------------------------------------------


async def test_choosing_a_server_posts_buttons_graph_and_persists_the_location(
    tmp_path: Path, flavour: str
) -> None:
    async with e2e_world(tmp_path, flavour=flavour) as w:
        srv = w.panel.add_server(name="Survival", state="running", cpu=20, memory_bytes=512 * MiB)
        w.panel.vary_cpu(srv)  # CPU swings by 80 points every read: every cycle edits
        bot = await w.start_bot()

        message, text = await w.post_status(srv.identifier)
        assert text == "Posted the live status of **Survival** here."
        embed = message.embeds[0]
        assert embed["title"] == "Survival"
        assert state_shown(message) == "🟢 Running"
        assert [c["label"] for c in components(message)] == ["Start", "Stop", "Restart", "Show Address"]
        assert [c["custom_id"] for c in components(message)] == [
            custom_id(action, srv.identifier) for action in ("start", "stop", "restart", "address")
        ]
        assert w.stored() == {srv.identifier: w.location(message)}
        assert all(isinstance(v, str) for v in w.stored()[srv.identifier].values())

        # A few cycles later the message carries the CPU/memory graph (it needs two samples).
        image = await w.discord.wait_until(message.embed_image_attachment, timeout=15, what="a graph")
        assert png_size(image.data) == (800, 500)
        assert message.embeds[0]["image"]["url"] == image.url
        edits = message.edits
        await bot.wait_cycles(2)
        assert message.edits > edits  # still being kept up to date
        assert len(w.discord.channel_messages(w.channel_id)) == 1

        await w.stop_bot(bot)
        assert w.problems() == []


# -- 4. Show Address ------------------------------------------------------------------------------------


async def test_show_address_answers_any_member_privately(tmp_path: Path, flavour: str) -> None:
    async with e2e_world(tmp_path, flavour=flavour) as w:
        aliased = w.panel.add_server(name="Creative", ip="10.0.0.9", ip_alias="play.example.com", port=27015)
        plain = w.panel.add_server(name="Modded", ip="10.0.0.7", port=25570)
        bot = await w.start_bot()
        for srv, expected in ((aliased, "play.example.com:27015"), (plain, "10.0.0.7:25570")):
            message, _ = await w.post_status(srv.identifier)
            click = await w.click(message.id, custom_id("address", srv.identifier), member=w.member_id)
            assert await answer(click) == f"**{srv.name}** is at `{expected}`"
            assert click.ephemeral
            assert click.latency is not None and click.latency < 3
        assert w.panel.power_requests == []

        await w.stop_bot(bot)
        assert w.problems() == []


# -- 5. power buttons -------------------------------------------------------------------------------


async def test_power_buttons_need_the_role_and_the_embed_follows_the_panel(
    tmp_path: Path, flavour: str
) -> None:
    async with e2e_world(tmp_path, flavour=flavour) as w:
        srv = w.panel.add_server(name="Survival", state="offline", memory_bytes=0)
        bot = await w.start_bot()
        message, _ = await w.post_status(srv.identifier)
        assert state_shown(message) == "🔴 Offline"

        refused = await w.click(message.id, custom_id("start", srv.identifier), member=w.member_id)
        assert ROLE_REFUSAL + " start servers" in await answer(refused)
        assert refused.ephemeral
        forged = await w.click(message.id, custom_id("start", srv.identifier), elsewhere=True)
        assert ELSEWHERE_REFUSAL in await answer(forged)
        assert w.panel.power_requests == []

        start = await w.click(message.id, custom_id("start", srv.identifier), member=w.operator_id)
        assert await answer(start) == (
            "Start sent to **Survival**. The status message shows the new state shortly."
        )
        assert start.ephemeral and start.latency is not None and start.latency < 3
        assert w.panel.power_requests == [(srv.identifier, "start")]
        await w.discord.wait_until(lambda: state_shown(message) == "🟢 Running", timeout=10, what="Running")
        assert states_shown(message)[-3:] == ["🔴 Offline", "🟡 Starting", "🟢 Running"]

        refused = await w.click(message.id, custom_id("stop", srv.identifier), member=w.member_id)
        assert ROLE_REFUSAL + " stop servers" in await answer(refused)
        assert w.panel.power_requests == [(srv.identifier, "start")]

        stop = await w.click(message.id, custom_id("stop", srv.identifier), member=w.operator_id)
        assert "Stop sent to **Survival**" in await answer(stop)
        assert w.panel.power_requests == [(srv.identifier, "start"), (srv.identifier, "stop")]
        await w.discord.wait_until(lambda: state_shown(message) == "🔴 Offline", timeout=10, what="Offline")
        assert states_shown(message)[-3:] == ["🟢 Running", "🟠 Stopping", "🔴 Offline"]

        forged = await w.click(message.id, custom_id("stop", srv.identifier), elsewhere=True)
        assert ELSEWHERE_REFUSAL in await answer(forged)
        assert len(w.panel.power_requests) == 2
        assert len(w.discord.channel_messages(w.channel_id)) == 1

        await w.stop_bot(bot)
        assert w.problems() == []


# -- 6. restart of the bot --------------------------------------------------------------------------


async def test_a_restarted_bot_keeps_old_buttons_working_and_messages_updating(
    tmp_path: Path, flavour: str
) -> None:
    async with e2e_world(tmp_path, flavour=flavour) as w:
        srv = w.panel.add_server(name="Survival", state="offline")
        gone = w.panel.add_server(name="Skyblock", state="offline")
        first = await w.start_bot()
        message, _ = await w.post_status(srv.identifier)
        deleted_while_away, _ = await w.post_status(gone.identifier)
        posts = len(w.discord.calls_to(POST_MESSAGE))
        await w.stop_bot(first)

        w.discord.delete_message(w.channel_id, deleted_while_away.id)  # nobody is listening
        edits = message.edits
        second = await w.start_bot()  # same working directory, so the same embed/embed_locations.json
        await second.wait_for_line("Loaded 2 status message location(s)")
        # The first cycle drops the deleted one and leaves the other alone: the store says what it shows.
        assert second.cycles()[0] == (2, 0, 0, 1)
        assert w.stored() == {srv.identifier: w.location(message)}
        assert message.edits == edits

        click = await w.click(message.id, custom_id("start", srv.identifier), member=w.operator_id)
        assert "Start sent to **Survival**" in await answer(click)
        assert w.panel.power_requests == [(srv.identifier, "start")]
        await w.discord.wait_until(lambda: state_shown(message) == "🟢 Running", timeout=10, what="Running")
        assert "🟡 Starting" in states_shown(message)
        assert len(w.discord.calls_to(POST_MESSAGE)) == posts  # edited in place: no duplicate message
        assert [m.id for m in w.discord.channel_messages(w.channel_id)] == [message.id]

        await w.stop_bot(second)
        assert w.problems() == []


# -- 7. replacing, deleting and refreshing status messages ------------------------------------------


async def test_replace_moderator_delete_and_refresh_embeds(tmp_path: Path, flavour: str) -> None:
    async with e2e_world(tmp_path, flavour=flavour) as w:
        a = w.panel.add_server(name="Alpha", state="running", cpu=10)
        b = w.panel.add_server(name="Beta", state="running", cpu=10)
        c = w.panel.add_server(name="Gamma", state="offline")
        bot = await w.start_bot()

        first, _ = await w.post_status(a.identifier)
        moved, text = await w.post_status(a.identifier, channel=w.other_channel_id)
        assert f"Its previous status message in <#{w.channel_id}> was removed." in text
        assert w.discord.messages[first.id].deleted
        assert w.stored() == {a.identifier: w.location(moved)}

        doomed, _ = await w.post_status(b.identifier)
        kept, _ = await w.post_status(c.identifier)
        assert set(w.stored()) == {a.identifier, b.identifier, c.identifier}
        w.discord.delete_message(w.channel_id, doomed.id)  # a moderator deletes it
        await bot.wait_for_line(f"The status message of {b.identifier} was deleted; no longer tracked")
        await bot.wait_cycles(1)
        assert w.stored() == {a.identifier: w.location(moved), c.identifier: w.location(kept)}
        assert bot.cycles()[-1][0] == 2  # only the two left are checked

        refused = await w.slash("refresh_embeds", member=w.member_id)
        assert "Only members with a control role or Manage Server may refresh." in await answer(refused)
        edits = {m.id: m.edits for m in (moved, kept)}
        command = await w.slash("refresh_embeds", member=w.operator_id)
        assert (
            await answer(command)
            == "Refreshed 2 status message(s). 0 were missing and are no longer tracked."
        )
        assert command.ephemeral
        assert all(m.edits > edits[m.id] for m in (moved, kept))  # every tracked message was edited
        assert not w.discord.messages[doomed.id].edits

        await w.stop_bot(bot)
        assert w.problems() == []


# -- 8. a slow panel ----------------------------------------------------------------------------------


async def test_a_slow_panel_never_makes_an_interaction_miss_its_deadline(
    tmp_path: Path, flavour: str
) -> None:
    async with e2e_world(tmp_path, flavour=flavour) as w:
        servers = w.panel.add_servers(30, state="offline")
        srv, far = servers[0], servers[-1]  # "Server 030" is on the menu's second page
        bot = await w.start_bot()
        message, _ = await w.post_status(srv.identifier)
        w.panel.set_latency(2.0)  # every panel request now takes 2 s

        command, click, address, picked = await asyncio.gather(
            w.slash("server_status"),
            w.click(message.id, custom_id("start", srv.identifier), member=w.operator_id),
            w.click(message.id, custom_id("address", srv.identifier), member=w.member_id),
            w.slash("server_status", channel=w.other_channel_id),
        )
        await picked.wait_followups(1, timeout=10)
        menu = picked.followup_messages[0]
        turn = await w.click_next(menu)
        await w.discord.wait_for_message(
            lambda m: m.id == menu.id and "Page 2 of 2" in m.content, 10, include_ephemeral=True
        )
        choice = await w.choose(menu, far.identifier, channel=w.other_channel_id)

        await command.wait_followups(1, timeout=10)
        assert "**30** servers" in command.followups[0]["content"]
        assert "Start sent to" in await answer(click, timeout=10)
        assert click.response["type"] == 5  # deferred; the answer came as a followup
        assert f"is at `{srv.ip}:{srv.port}`" in await answer(address)
        assert "Posted the live status of **Server 030**" in await answer(choice, timeout=10)
        assert choice.response["type"] == 5
        assert turn.response["type"] == 6
        for interaction in (command, click, address, picked, turn, choice):
            assert len(interaction.callback_calls) == 1
            assert interaction.callback_calls[0].status < 400, interaction.callback_calls
            assert all(call.error_code != 10062 for call in interaction.callback_calls)
            # Answered before even one panel round trip (2 s) could have finished.
            assert interaction.latency is not None and interaction.latency < 1.5, interaction.latency
        assert w.panel.power_requests == [(srv.identifier, "start")]
        assert w.stored()[far.identifier]["channel_id"] == str(w.other_channel_id)

        await w.stop_bot(bot)
        assert w.problems() == []


# -- 9. SIGKILL and embed_locations.json ------------------------------------------------------------

KILL_POINTS = (
    "after the confirmation",
    "as the choice is sent",
    "once the new message is posted",
    "once the old message is deleted",
    "during an edit",
)


async def test_sigkill_never_loses_a_confirmed_status_message_location(tmp_path: Path) -> None:
    rng = random.Random(4)
    async with e2e_world(tmp_path) as w:
        servers = w.panel.add_servers(10, state="running", cpu=20, memory_bytes=300 * MiB)
        for srv in servers:
            w.panel.vary_cpu(srv)  # every cycle edits (with graphs) while status messages are posted
        ids = [s.identifier for s in servers]
        channels = (w.channel_id, w.other_channel_id)
        expected: dict[str, dict[str, str]] = {}  # what embed_locations.json must hold
        seen_in_embed_dir: set[str] = set()

        for round_no, kill_point in enumerate(KILL_POINTS):
            bot = await w.start_bot()
            if w.store_path.exists():
                await bot.wait_for_line(f"Loaded {len(expected)} status message location(s)")
            for _ in range(rng.randint(1, 3)):  # confirmed posts and replacements, while cycles run
                identifier, channel = rng.choice(ids), rng.choice(channels)
                message, _ = await w.post_status(identifier, channel=channel)
                expected[identifier] = w.location(message)

            # The round's last post is cut short by SIGKILL at the round's kill point.
            if kill_point == "once the old message is deleted":  # a replacement from the other channel
                identifier = rng.choice(sorted(expected))
                channel = next(c for c in channels if str(c) != expected[identifier]["channel_id"])
            else:
                identifier, channel = rng.choice(ids), rng.choice(channels)
            _, menu = await w.open_picker(channel=channel)
            messages_before, calls_before = set(w.discord.messages), len(w.discord.calls)
            choice = await w.choose(menu, identifier, channel=channel)
            if kill_point == "after the confirmation":
                assert "Posted the live status" in await answer(choice)
            elif kill_point == "once the new message is posted":
                await wait_for_new_call(w.discord, POST_MESSAGE, calls_before)
            elif kill_point == "once the old message is deleted":
                await wait_for_new_call(w.discord, DELETE_MESSAGE, calls_before)
            elif kill_point == "during an edit":
                await wait_for_new_call(w.discord, PATCH_MESSAGE, calls_before)
            await bot.kill()

            confirmed = any("Posted the live status" in (f.get("content") or "") for f in choice.followups)
            posted = [
                m
                for m in w.discord.channel_messages(channel)
                if m.id not in messages_before and footer_identifier(m) == identifier
            ]
            assert len(posted) <= 1
            data = locations(json.loads(w.store_path.read_text(encoding="utf-8")))  # never torn, never empty
            where = (round_no, kill_point, identifier)
            if confirmed:
                assert data.get(identifier) == w.location(posted[0]), where
            else:
                allowed = [expected.get(identifier), *(w.location(m) for m in posted)]
                assert data.get(identifier) in allowed, (*where, data, allowed)
            if kill_point == "once the old message is deleted":
                # the old message is deleted only once the new location is safely on disk
                assert data[identifier] == w.location(posted[0]), where
            others = {k: v for k, v in data.items() if k != identifier}
            assert others == {k: v for k, v in expected.items() if k != identifier}, where
            if identifier in data:
                expected[identifier] = data[identifier]
            else:
                expected.pop(identifier, None)

            names = {p.name for p in (w.cwd / "embed").iterdir()}
            seen_in_embed_dir |= names
            assert all(
                n == "embed_locations.json" or (n.startswith(".embed_locations-") and n.endswith(".tmp"))
                for n in names
            ), names

        bot = await w.start_bot()  # the file the last SIGKILL left behind loads cleanly
        await bot.wait_for_line(f"Loaded {len(expected)} status message location(s)")
        checked, _, failures, dropped = bot.cycles()[0]
        assert (checked, failures, dropped) == (len(expected), 0, 0)  # every location is live
        await w.stop_bot(bot)
        assert w.stored() == expected
        assert not any(".corrupt-" in n for n in seen_in_embed_dir)
        leftovers = sorted(n for n in seen_in_embed_dir if n.endswith(".tmp"))
        print(f"embed/ held temp files after SIGKILLs: {leftovers or 'none'}")
        assert w.problems() == []


# -- 10. no secret in anything the bot writes -------------------------------------------------------


async def test_secrets_never_appear_in_output_logs_or_discord_after_a_fault_heavy_session(
    tmp_path: Path, flavour: str
) -> None:
    async with e2e_world(tmp_path, flavour=flavour) as w:
        a = w.panel.add_server(name="Alpha", state="running", cpu=20, memory_bytes=256 * MiB)
        b = w.panel.add_server(name="Beta", state="offline")
        w.panel.vary_cpu(a)
        bot = await w.start_bot("DEBUG")
        msg_a, _ = await w.post_status(a.identifier)
        msg_b, _ = await w.post_status(b.identifier)

        # Panel 5xx on a share of requests (retried GETs, failed checks).
        w.panel.fail_ratio(0.5, statuses=(500, 502, 503))
        await w.panel.wait_for(
            lambda r: r.status is not None and r.status >= 500 and r.path.endswith("/resources")
        )
        await bot.wait_for_line("panel answered 50")
        w.panel.fail_ratio(0.0)

        # The listing refused (401), then answered with the HTML login page.
        w.panel.fail_next(401, path="/api/client")
        await bot.wait_for_line("Could not list the panel's servers")
        w.panel.html_next(1, path="/api/client")
        await bot.wait_for_line("instead of JSON")

        # A request that never gets an answer, then the panel goes down and comes back.
        w.panel.hang_next(1, path_contains="/resources")
        await w.panel.wait_for(lambda r: r.hung)
        await w.panel.set_down(True)
        await bot.wait_for_line("cannot reach the panel")
        await w.panel.set_down(False)

        # The panel refuses a power action with 403.
        w.panel.fail_next(403, path_contains="/power")
        stop = await w.click(msg_a.id, custom_id("stop", a.identifier), member=w.operator_id)
        assert "lacks the permission" in await answer(stop)

        # Discord answers an edit with 429 (retried by discord.py), then one with 503 (not retried).
        w.discord.fail_next(PATCH_MESSAGE, 429, retry_after=0.2)
        w.discord.fail_next(PATCH_MESSAGE, 503)
        await w.discord.wait_until(
            lambda: sum(c.injected for c in w.discord.calls_to(PATCH_MESSAGE)) == 2, timeout=15, what="faults"
        )
        await bot.wait_for_line("Editing the card of")

        # Refused clicks: no role, and forged from another guild.
        refused = await w.click(msg_b.id, custom_id("start", b.identifier), member=w.member_id)
        assert ROLE_REFUSAL in await answer(refused)
        forged = await w.click(msg_b.id, custom_id("restart", b.identifier), elsewhere=True)
        assert ELSEWHERE_REFUSAL in await answer(forged)
        assert w.panel.power_requests == []

        # Still running, and answering.
        await bot.wait_cycles(1, where=lambda c: c[0] == 2 and c[2] == 0)
        edits = msg_a.edits
        await w.discord.wait_until(lambda: msg_a.edits > edits, timeout=10, what="an edit after the faults")
        command = await w.slash("server_status")
        await command.wait_followups(1)
        assert "**2** servers" in command.followups[0]["content"]
        start = await w.click(msg_b.id, custom_id("start", b.identifier), member=w.operator_id)
        assert "Start sent to **Beta**" in await answer(start)
        # Beta taken off the bot's panel user: the application key checks it still exists.
        b.access = None
        await w.panel.wait_for(lambda r: r.path == "/api/application/servers")
        await w.discord.wait_until(
            lambda: "Not accessible" in (state_shown(msg_b) or ""), timeout=10, what="Beta not accessible"
        )
        assert bot.running

        await w.stop_bot(bot)
        written = files_written(w.cwd)
        assert "logs/pterodisbot.log" in written
        everything = {
            "bot stdout/stderr": bot.output,
            **{f"file {name}": text for name, text in written.items()},
            "Discord messages, followups and REST bodies": everything_sent_to_discord(w.discord),
        }
        for where, text in everything.items():
            assert find_secrets(text) == [], f"a secret appears in {where}"
        assert sum(len(t) for t in everything.values()) > 10_000  # we did look at something
        # The secrets were really in use: the stand-in and the panel received them.
        assert any(c.headers.get("Authorization") == f"Bot {TOKEN}" for c in w.discord.calls)
        assert {r.headers.get("Authorization") for r in w.panel.requests} >= {
            f"Bearer {w.panel.client_key}",
            f"Bearer {w.panel.app_key}",
        }
        assert w.problems() == []


# -- 11. a corrupt embed_locations.json -------------------------------------------------------------


async def test_a_corrupt_locations_file_is_moved_aside_and_the_bot_works(tmp_path: Path) -> None:
    async with e2e_world(tmp_path) as w:
        srv = w.panel.add_server(name="Survival", state="running", cpu=5)
        garbage = b'{"abc12345": {"channel_id": "1", "message_id": \x00\xff truncated'
        (w.cwd / "embed").mkdir()
        w.store_path.write_bytes(garbage)
        bot = await w.start_bot()
        warning = await bot.wait_for_line("could not be read")
        assert "WARNING" in warning and "starting with no status messages" in warning

        aside = list((w.cwd / "embed").glob("embed_locations.json.corrupt-*"))
        assert len(aside) == 1 and aside[0].read_bytes() == garbage
        assert aside[0].name in warning
        assert not w.store_path.exists()

        message, _ = await w.post_status(srv.identifier)
        assert w.stored() == {srv.identifier: w.location(message)}
        await bot.wait_cycles(1, where=lambda c: c[0] == 1)

        await w.stop_bot(bot)
        assert w.problems() == []


# -- 9. alerts ----------------------------------------------------------------------------------------


async def test_a_crash_is_alerted_once_with_the_role_and_its_recovery_once(tmp_path: Path) -> None:
    async with e2e_world(tmp_path) as w:
        alerts = w.discord.add_channel(w.guild_id, name="alerts")
        on_call = w.discord.add_role(w.guild_id, name="On Call")
        srv = w.panel.add_server(name="Survival", state="running", cpu=10)
        bot = await w.start_bot(ALERT_CHANNEL_ID=str(alerts.id), ALERT_MENTION="on call", ALERT_AFTER="2")
        await w.post_status(srv.identifier)
        await bot.wait_cycles(1)
        srv.state = "offline"  # a crash, on the panel
        down = await w.discord.wait_for_message(lambda m: m.channel_id == alerts.id, timeout=15)
        assert down.content.startswith(f"<@&{on_call.id}> 🔴 **Survival** is down (offline) since <t:")
        await bot.wait_cycles(3)  # still down: no second alert
        srv.state = "running"
        up = await w.discord.wait_for_message(
            lambda m: m.channel_id == alerts.id and m.id != down.id, timeout=15
        )
        assert up.content.startswith("🟢 **Survival** is running again, after ")
        await bot.wait_cycles(2)
        assert len(w.discord.channel_messages(alerts.id)) == 2
        await w.stop_bot(bot)
        assert w.problems() == []
