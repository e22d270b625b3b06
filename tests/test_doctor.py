"""``python pterodisbot.py --check`` as an admin runs it: the real command as a subprocess, against
the fake panel and the Discord stand-in on 127.0.0.1, judged by its exact lines and exit status."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import discord
import pytest

from ptero.config import Settings
from ptero.doctor import NEEDED, Doctor, channel_permissions, check_guild, check_token
from ptero.panel import PterodactylAPI
from ptero.store import EmbedLocation, EmbedStore
from tests.discord_standin import DiscordStandin
from tests.e2e_support import BOT_SCRIPT, CLIENT_KEY, E2E, TOKEN, e2e_world, find_secrets
from tests.harness import point_discord_py_at, restore_discord_py

MESSAGE_ID = "1300000000000000001"
INVITE = (
    "https://discord.com/oauth2/authorize?client_id={}&scope=bot+applications.commands&permissions=117760"
)
ALL_PERMISSIONS = "View Channel, Send Messages, Embed Links, Attach Files, Read Message History"
MARKED = re.compile(r"^([✓!✗-]) ([^:]+): ")


@dataclass
class CheckRun:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def lines(self) -> dict[str, str]:
        """The check lines by title (the words between the mark and the first colon)."""
        found = {}
        for line in self.out.splitlines():
            m = MARKED.match(line)
            if m:
                assert m[2] not in found, f"two lines titled {m[2]!r}:\n{self.out}"
                found[m[2]] = line
        return found

    def marks(self) -> dict[str, str]:
        return {title: line[0] for title, line in self.lines.items()}

    def line(self, title: str) -> str:
        assert title in self.lines, f"no line {title!r} in:\n{self.out}"
        return self.lines[title]


async def run_check(w: E2E, *args: str, timeout: float = 40.0, **env: str) -> CheckRun:
    """``python pterodisbot.py --check`` in the world's working folder, with only the bot's env."""
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(BOT_SCRIPT),
        *(args or ("--check",)),
        cwd=w.cwd,
        env=w.env(log_level="INFO", UPDATE_INTERVAL="10") | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"--check still running after {timeout} s") from None
    run = CheckRun(proc.returncode or 0, out.decode(), err.decode(), time.monotonic() - started)
    for name, secret in env.items():
        if name == "DISCORD_TOKEN" or name.endswith("_API_KEY"):  # never shown, not even its middle
            assert secret[5:-4] not in run.out + run.err
    assert find_secrets(run.out + run.err) == [], run.out + run.err
    assert "Traceback" not in run.err, run.err
    return run


def write_cards(w: E2E, cards: dict[str, int]) -> None:
    """embed/embed_locations.json with a card per server, in the given channel."""
    w.store_path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(
        {sid: {"channel_id": str(channel), "message_id": MESSAGE_ID} for sid, channel in cards.items()}
    )
    w.store_path.write_text(text, encoding="utf-8")


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.fixture
async def world(tmp_path: Path, flavour: str) -> Any:
    async with e2e_world(tmp_path, flavour=flavour, wings=True) as w:
        first, _ = w.panel.add_servers(2)
        write_cards(w, {first.identifier: w.channel_id})
        yield w


# -- the whole run ---------------------------------------------------------------------------------


async def test_a_correct_setup_passes_every_check_and_changes_nothing(world: E2E, flavour: str) -> None:
    w = world
    stored = w.store_path.read_text(encoding="utf-8")
    run = await run_check(
        w, ALERT_CHANNEL_ID=str(w.other_channel_id), AUDIT_CHANNEL_ID=str(w.channel_id), LIVE_UPDATES="auto"
    )
    assert run.code == 0, run.out
    key, app_key = (f"{k[:5]}…{k[-4:]}" for k in (w.panel.client_key, w.panel.app_key))
    limits, fit, panel = {
        "pterodactyl": (
            "720 client and 240 application",
            100,
            "Pterodactyl (GET /up answered 404, and its server listing has no Pelican field)",
        ),
        "pelican": ("256 client and 256 application", 35, "Pelican (GET /up answered 200)"),
    }[flavour]
    bot, app_id = w.discord.bot_user, w.discord.application_id
    assert run.out.splitlines() == [
        f"Checking the setup (read-only) for the panel {w.panel.url} and the Discord server {w.guild_id}:",
        "✓ Configuration: valid (SERVER_SCOPE=mine, UPDATE_INTERVAL=10 s)",
        f"✓ Panel address: {w.panel.url} answers as a panel API (JSON from /api/client)",
        f"✓ Client API key: {key} belongs to the panel user pterodisbot (not an admin)",
        f"✓ Application API key: {app_key} reads 2 server(s), 1 node(s) and their allocations",
        "✓ Servers: pterodisbot sees all 2 server(s) the application key lists",
        f"✓ Request limits: the panel allows {limits} requests a minute (X-RateLimit-Limit); at "
        f"UPDATE_INTERVAL=10 s up to {fit} cards are polled on time (1 today)",
        f"✓ Panel type: {panel}; the API does not show its version",
        "✓ Live updates, node Node 1: the websocket opened and authenticated (tried with Server 001)",
        f"✓ Discord token: valid: the bot is {bot.username} (id {bot.id}), application {app_id}",
        f"✓ Discord server: the bot is a member of Game Night ({w.guild_id})",
        "✓ Slash commands: the bot may manage its commands in Game Night (none registered yet)",
        f"✓ Channel #server-status (1 card(s), AUDIT_CHANNEL_ID): the bot has {ALL_PERMISSIONS}",
        f"✓ Channel #lobby (ALERT_CHANNEL_ID): the bot has {ALL_PERMISSIONS}",
        "✓ Folders: embed/ and logs/ are writable",
        "✓ Card locations: embed/embed_locations.json holds 1 card(s)",
        "Every check passed.",
    ]
    # Read-only: no power action, no Discord write, no command sync, no gateway, only the log written.
    assert w.panel.power_requests == [] and {r.method for r in w.panel.requests} == {"GET"}
    assert {c.method for c in w.discord.calls} == {"GET"} and w.discord.command_puts == {}
    assert w.discord.gateway_connections == 0
    assert sorted(p.relative_to(w.cwd).as_posix() for p in w.cwd.rglob("*") if p.is_file()) == [
        "embed/embed_locations.json",
        "logs/pterodisbot.log",
    ]
    assert w.store_path.read_text(encoding="utf-8") == stored
    assert run.seconds < 10


async def test_help_and_unknown_arguments(tmp_path: Path) -> None:
    def run(*args: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin"}  # no configuration at all: --help needs none
        command = [sys.executable, str(BOT_SCRIPT), *args]
        return subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=30)

    shown = run("--help")
    assert shown.returncode == 0 and shown.stdout.startswith("usage: python pterodisbot.py [--check |")
    assert all(mode in shown.stdout for mode in ("--check", "--healthcheck", "run the bot"))
    wrong = run("--chek")
    assert wrong.returncode == 2 and wrong.stdout == ""
    assert wrong.stderr.startswith("pterodisbot: unknown argument(s): --chek\nusage:")
    pasted = run("--check", CLIENT_KEY)  # a key pasted as an argument is not echoed
    assert pasted.returncode == 2 and CLIENT_KEY[5:-4] not in pasted.stderr
    invalid = run("--check")  # the configuration is read exactly as a normal start does
    assert invalid.returncode == 2 and invalid.stdout == ""
    assert invalid.stderr.startswith("Pterodisbot cannot start: 5 configuration problem(s):")
    assert not (tmp_path / "logs").exists()


# -- the panel -------------------------------------------------------------------------------------


async def test_a_revoked_client_key(world: E2E) -> None:
    revoked = "ptlc_RevokedClientKeyMiddle00Zz"
    if world.panel.pelican:
        revoked = "pacc_" + revoked[5:]
    run = await run_check(world, PTERODACTYL_CLIENT_API_KEY=revoked)
    assert run.code == 1
    assert run.line("Panel address").endswith("(JSON from /api/client; it refused the client key)")
    assert run.line("Client API key") == (
        f"✗ Client API key: the panel refused {revoked[:5]}…00Zz (401: Unauthenticated.): it was revoked "
        "or mistyped, or it belongs to another panel → log in to the panel as the user the bot acts as, "
        "create a key (Account → API Credentials) and set PTERODACTYL_CLIENT_API_KEY"
    )
    for title in ("Servers", "Request limits", "Panel type"):
        assert run.line(title) == f"- {title}: skipped: Client API key did not pass"
    assert run.marks()["Application API key"] == "✓" and run.marks()["Discord server"] == "✓"


@pytest.mark.parametrize("flavour", ["pterodactyl"])
async def test_a_revoked_application_key(world: E2E) -> None:
    run = await run_check(world, PTERODACTYL_APPLICATION_API_KEY="ptla_RevokedApplicationKey00Yy")
    assert run.code == 1
    assert run.line("Application API key") == (
        "✗ Application API key: the panel refused ptla_…00Yy (401): it was revoked or mistyped → create "
        "an application key (Admin → Application API) with Read on Servers, Nodes and Allocations and "
        "set PTERODACTYL_APPLICATION_API_KEY"
    )
    assert run.line("Servers") == "- Servers: skipped: Application API key did not pass"
    assert run.marks()["Client API key"] == run.marks()["Request limits"] == "✓"


@pytest.mark.parametrize(
    ("permission", "named"), [("servers", "Servers"), ("nodes", "Nodes"), ("allocations", "Allocations")]
)
@pytest.mark.parametrize("flavour", ["pterodactyl"])
async def test_an_application_key_without_a_read_permission(world: E2E, permission: str, named: str) -> None:
    world.panel.app_key_permissions[permission] = False
    run = await run_check(world)
    assert run.code == 1
    app_key = f"{world.panel.app_key[:5]}…{world.panel.app_key[-4:]}"
    assert run.line("Application API key") == (
        f"✗ Application API key: {app_key} may not read {named} (the panel answered 403) → create an "
        "application key (Admin → Application API) with Read on Servers, Nodes and Allocations and set "
        f"PTERODACTYL_APPLICATION_API_KEY (missing: {named})"
    )


@pytest.mark.parametrize("flavour", ["pterodactyl"])
async def test_a_panel_url_where_nothing_listens(world: E2E) -> None:
    port = closed_port()
    run = await run_check(world, PTERODACTYL_URL=f"http://127.0.0.1:{port}")
    assert run.code == 1
    assert run.line("Panel address") == (
        f"✗ Panel address: cannot reach http://127.0.0.1:{port}: nothing listens on 127.0.0.1:{port} "
        "(connection refused) → check the port and that the web server runs; inside Docker, 127.0.0.1 "
        "is the container itself: use the host's address"
    )
    for title in ("Client API key", "Application API key"):
        assert run.line(title) == f"- {title}: skipped: Panel address did not pass"
    assert run.marks()["Servers"] == "-" and run.marks()["Discord server"] == "✓"


@pytest.mark.parametrize("flavour", ["pterodactyl"])
async def test_a_url_that_answers_html(world: E2E) -> None:
    world.panel.html_next(count=100, path_contains="/api/")  # a login page, or a proxy's page
    run = await run_check(world)
    assert run.code == 1
    assert run.line("Panel address") == (
        f"✗ Panel address: {world.panel.url} answers, but not as the panel's API: GET /api/client: the "
        "panel answered text/html instead of JSON → PTERODACTYL_URL must be the panel's own address "
        "(like https://panel.example.com, no /api or other path), with no login page or proxy page in "
        "front of /api"
    )


@pytest.mark.parametrize("flavour", ["pterodactyl"])
async def test_a_hanging_panel_and_discord_end_within_the_time_limit(world: E2E) -> None:
    world.panel.hang_next(count=100)
    world.discord.delay_next("GET /guilds/{guild_id}", 60)
    run = await run_check(world, timeout=35)
    assert run.code == 1 and run.seconds < 30
    port = world.panel.url.rsplit(":", 1)[1]
    assert run.line("Panel address") == (
        f"✗ Panel address: cannot reach {world.panel.url}: 127.0.0.1:{port} did not answer within 5 s "
        "→ check that it runs and is not firewalled"
    )
    assert run.line("Discord server") == (
        "✗ Discord server: Discord (GET /guilds) did not answer within 5 s → check that Discord runs and "
        "is reachable from here"
    )
    assert run.marks()["Discord token"] == "✓" and run.marks()["Slash commands"] == "-"


async def test_a_client_user_who_sees_fewer_servers(world: E2E) -> None:
    hidden = world.panel.add_server(name="Someone else's", access=None)
    world.panel.add_server(name="Another one", access=None)
    write_cards(world, {hidden.identifier: world.channel_id})
    run = await run_check(world, PTERODACTYL_ULR="typo")
    assert run.code == 0  # a warning: seeing only some servers is the recommended setup
    assert run.line("Configuration") == (
        "! Configuration: PTERODACTYL_ULR is not a Pterodisbot setting and is ignored; did you mean "
        "PTERODACTYL_URL? → rename or remove that variable"
    )
    assert run.line("Servers") == (
        "! Servers: pterodisbot sees 2 of the 4 server(s) the application key lists: the other 2 will not "
        "be offered in /server_status (their cards and power buttons would fail) → fine if the bot "
        "should show only those. Only if it should show every server: a root admin's client key with "
        "SERVER_SCOPE=all"
    )
    assert run.line("Existing cards") == (
        f"! Existing cards: 1 card(s) in embed/embed_locations.json are for servers pterodisbot cannot see "
        f"({hidden.identifier}): they will show as inaccessible (or go, if the server was deleted) → give "
        "the user access to those servers, or delete those cards"
    )
    assert run.out.splitlines()[-1] == "No check failed; 3 warning(s): see the ! lines above."


@pytest.mark.parametrize("flavour", ["pterodactyl"])
async def test_server_scope_all_needs_a_root_admin(world: E2E) -> None:
    world.panel.add_server(name="Someone else's", access=None)
    refused = await run_check(world, SERVER_SCOPE="all")
    assert refused.code == 1
    assert refused.line("Servers").startswith(
        "✗ Servers: SERVER_SCOPE=all lists every server only for a root admin's client key; pterodisbot "
        "is not an admin, so the bot sees none of the 3 server(s)"
    )
    world.panel.client_user_admin = True
    allowed = await run_check(world, SERVER_SCOPE="all")
    assert allowed.code == 0
    assert allowed.line("Servers") == "✓ Servers: pterodisbot sees all 3 server(s) the application key lists"
    assert allowed.line("Client API key").endswith("belongs to the panel user pterodisbot (a root admin)")


# -- Discord ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["pterodactyl"])
async def test_a_guild_the_bot_is_not_in_gets_the_invite_link(world: E2E) -> None:
    world.discord.application_id = world.discord.snowflake()  # an older app: its id is not the bot's
    elsewhere = world.discord.add_guild(name="Not invited", bot_member=False)
    run = await run_check(world, ALLOWED_GUILD_ID=str(elsewhere.id))
    assert run.code == 1
    invite = INVITE.format(world.discord.application_id)
    assert world.discord.application_id != world.discord.bot_user.id
    assert run.line("Discord server") == (
        f"✗ Discord server: the bot is not a member of the server {elsewhere.id} (ALLOWED_GUILD_ID; 403 "
        f"Missing Access) → invite it with {invite} (or fix ALLOWED_GUILD_ID)"
    )
    assert run.line("Slash commands") == "- Slash commands: skipped: Discord server did not pass"
    assert run.line("Channels") == "- Channels: skipped: Discord server did not pass"
    unknown = await run_check(world, ALLOWED_GUILD_ID=str(world.discord.snowflake()))
    assert "404 Unknown Guild) → copy the id again" in unknown.line("Discord server")
    assert unknown.line("Discord server").endswith(f"then invite the bot with {invite}")


@pytest.mark.parametrize("flavour", ["pterodactyl"])
async def test_the_commands_scope_missing(world: E2E) -> None:
    world.discord.guilds[world.guild_id].commands_scope = False
    run = await run_check(world)
    assert run.code == 1
    assert run.line("Slash commands") == (
        "✗ Slash commands: Discord refused to list the bot's commands in Game Night (403 Missing Access): "
        "the bot was invited without the applications.commands scope → re-invite it with "
        f"{INVITE.format(world.discord.application_id)} (it stays in the server; nothing is lost)"
    )
    assert run.marks()["Channel #server-status (1 card(s))"] == "✓"


@pytest.mark.parametrize("flavour", ["pterodactyl"])
async def test_a_revoked_discord_token(world: E2E) -> None:
    run = await run_check(world, DISCORD_TOKEN="MTAwMDAwMDAwMDAwMDAwMDAx.GrEvoK.revokedDiscordTokenMiddle")
    assert run.code == 1
    assert run.line("Discord token").startswith("✗ Discord token: Discord rejected DISCORD_TOKEN (401")
    assert run.marks()["Discord server"] == "-" and run.marks()["Panel address"] == "✓"


@pytest.mark.parametrize("flavour", ["pterodactyl"])
async def test_a_card_channel_where_the_bot_lacks_attach_files(world: E2E) -> None:
    world.discord.set_permissions(world.channel_id, attach_files=False)
    run = await run_check(world, AUDIT_CHANNEL_ID=str(world.discord.snowflake()))
    assert run.code == 1
    assert run.line("Channel #server-status (1 card(s))") == (
        "✗ Channel #server-status (1 card(s)): the bot lacks Attach Files → in that channel's settings → "
        "Permissions, allow Attach Files for the bot (or its role)"
    )
    audit = next(title for title in run.lines if title.endswith("(AUDIT_CHANNEL_ID)"))
    assert run.line(audit).startswith(f"✗ {audit}: no channel of Game Night (404 Unknown Channel) → set ")


# -- local files -----------------------------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["pterodactyl"])
async def test_a_corrupt_store_is_reported_and_not_moved(world: E2E) -> None:
    world.store_path.write_text('{"abcd1234": {"channel_id": ', encoding="utf-8")
    run = await run_check(world)
    assert run.code == 1
    assert run.line("Card locations") == (
        "✗ Card locations: embed/embed_locations.json is not valid JSON (Expecting value: line 1 column 29 "
        "(char 28)): a normal start would move it aside and begin with no cards; the file was left as it "
        "is → fix its owner or mode, or restore it from a backup (or delete it)"
    )
    assert [p.name for p in world.store_path.parent.iterdir()] == ["embed_locations.json"]
    assert world.store_path.read_text(encoding="utf-8") == '{"abcd1234": {"channel_id": '
    assert run.line("Channels").startswith("- Channels: nothing to check yet")


@pytest.mark.parametrize("flavour", ["pterodactyl"])
async def test_an_unwritable_embed_folder(world: E2E) -> None:
    world.store_path.unlink()
    world.store_path.parent.rmdir()
    (world.cwd / "embed").write_text("a file where the folder should be")
    run = await run_check(world)
    assert run.code == 1  # a normal start would exit 2 here; the check reports it as one failure
    assert re.fullmatch(
        r"✗ Folders: \S+/embed is not writable by this user \(uid \d+\): \S.* → let uid \d+ write there "
        r"\(e\.g\. chown -R \d+ embed logs\); a file in a folder's place must go",
        run.line("Folders"),
    ), run.line("Folders")
    assert run.line("Card locations") == "- Card locations: skipped: embed/ is not a folder"


# -- the permission arithmetic, in process against the stand-in's own computation -----------------


async def test_channel_permissions_are_computed_as_discord_does(tmp_path: Path) -> None:
    async with DiscordStandin(token=TOKEN) as d:
        guild = d.add_guild(name="G")
        role = d.add_role(guild.id, name="Helpers")
        d.set_member_roles(guild.id, d.bot_user.id, [d.bot_role(guild.id).id, role.id])
        everyone_denied = d.add_channel(guild.id, name="a")
        d.set_permissions(everyone_denied.id, guild.id, attach_files=False, embed_links=False)
        d.set_permissions(everyone_denied.id, role.id, embed_links=True)  # a role allow beats @everyone
        member_wins = d.add_channel(guild.id, name="b")
        d.set_permissions(member_wins.id, role.id, read_message_history=False)
        d.set_permissions(member_wins.id, d.bot_user.id, read_message_history=True, send_messages=False)
        hidden = d.add_channel(guild.id, name="c")
        d.set_permissions(hidden.id, d.bot_role(guild.id).id, view_channel=False)
        settings = Settings(TOKEN, guild.id, ("x",), "http://127.0.0.1:9", CLIENT_KEY, CLIENT_KEY)
        saved = point_discord_py_at(d.url)
        http = discord.http.HTTPClient(asyncio.get_running_loop())
        doc = Doctor(settings, PterodactylAPI("http://127.0.0.1:9", "k", "k"), http, (), {}, None, 0)
        try:
            assert (await check_token(doc)).mark == "ok" and (await check_guild(doc)).mark == "ok"
            channels = {int(c["id"]): c for c in await http.get_all_guild_channels(guild.id)}
            for channel, missing in (
                (everyone_denied, ["Attach Files"]),
                (member_wins, ["Send Messages"]),
                (hidden, ["View Channel"]),
            ):
                perms = channel_permissions(doc, channels[channel.id])
                assert [name for name, bit in NEEDED.items() if not perms & bit] == missing
                explicit = d.bot_permissions(channel.id)  # with Discord's implicit rules on top
                assert all(perms & bit for bit in NEEDED.values() if explicit & bit)
            d.set_role_permissions(role.id, administrator=True)
            await check_guild(doc)
            assert channel_permissions(doc, channels[hidden.id]) == discord.Permissions.all().value
        finally:
            await http.close()
            restore_discord_py(saved)


def test_the_store_is_inspected_without_changing_it(tmp_path: Path) -> None:
    path = tmp_path / "embed_locations.json"
    assert EmbedStore.inspect(path) == ({}, None, 0)  # no file: no cards yet
    path.write_text(
        json.dumps(
            {
                "abcd1234": {"channel_id": "1300000000000000002", "message_id": MESSAGE_ID},
                "bad id!": {"channel_id": "1", "message_id": "2"},
                "ef567890": {"channel_id": "not a number", "message_id": MESSAGE_ID},
            }
        ),
        encoding="utf-8",
    )
    leftover = tmp_path / ".embed_locations-x.tmp"  # load() would delete this
    leftover.write_text("{}")
    cards, problem, dropped = EmbedStore.inspect(path)
    assert cards == {"abcd1234": EmbedLocation(1300000000000000002, int(MESSAGE_ID))}
    assert (problem, dropped) == (None, 2) and leftover.exists()
    path.write_bytes(b"\xff\xfe not text")
    assert EmbedStore.inspect(path) == (
        {},
        f"{path} is not text (not UTF-8): a normal start would move it aside and begin with no cards",
        0,
    )
    path.write_text("[]", encoding="utf-8")
    assert EmbedStore.inspect(path)[1] == (
        f"{path} is not valid (the top level is not an object): a normal start would move it aside and "
        "begin with no cards"
    )
    path.unlink()
    path.mkdir()  # a folder in the file's place: unreadable, and a start would stop
    assert EmbedStore.inspect(path) == (
        {},
        f"{path} cannot be read (Is a directory): a normal start would stop here",
        0,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [".embed_locations-x.tmp", "embed_locations.json"]


async def test_live_updates_are_checked_per_node_and_a_refusing_node_is_a_warning(world: E2E) -> None:
    w = world
    w.panel.add_server(name="Far", node_id=2, node_name="Node 2")
    await w.panel.start_wings(2)
    w.panel.wings[2].set_mode("origin")
    run = await run_check(w, LIVE_UPDATES="auto")
    lines = [line for line in run.out.splitlines() if "Live updates" in line]
    assert lines == [
        "✓ Live updates, node Node 1: the websocket opened and authenticated (tried with Server 001)",
        "! Live updates, node Node 2: Wings refused the Origin: its panel URL (`remote`) differs from "
        "PTERODACTYL_URL (tried with Far) → until then the bot polls its servers",
    ], run.out
    assert run.code == 0  # a warning: the bot polls that node instead
    off = await run_check(w, LIVE_UPDATES="off")
    assert "- Live updates: LIVE_UPDATES=off: every card is polled" in off.out
