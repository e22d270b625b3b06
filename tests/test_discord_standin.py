"""The Discord stand-in, proven with a real discord.py bot running in a separate process.

The demo bot (tests/discord_standin/demo_bot.py) is unmodified discord.py code; it reaches the
stand-in only through the sitecustomize put on its PYTHONPATH by ``DiscordStandin.bot_env()``.
"""

from __future__ import annotations

import json
import re
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from tests.discord_standin import BotProcess, DiscordStandin, Message

REPO = Path(__file__).resolve().parents[1]
DEMO_BOT = REPO / "tests" / "discord_standin" / "demo_bot.py"
TOKEN = "test-token"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

PATCH_MESSAGE = "PATCH /channels/{channel_id}/messages/{message_id}"
POST_MESSAGE = "POST /channels/{channel_id}/messages"
CALLBACK = "POST /interactions/{webhook_id}/{webhook_token}/callback"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class Env:
    d: DiscordStandin
    bot: BotProcess
    guild_id: int
    channel_id: int
    alice: int


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def env() -> Any:
    d = DiscordStandin(token=TOKEN, interaction_deadline=3.0)
    guild = d.add_guild(name="Test Guild")
    channel = d.add_channel(guild.id, name="status")
    role = d.add_role(guild.id, name="Game Server User")
    alice = d.add_member(guild.id, username="alice", roles=[role.id])
    await d.start()
    bot = BotProcess(
        [str(DEMO_BOT)],
        env={
            **d.bot_env(guild_ready_timeout=0.2),
            "DEMO_TOKEN": TOKEN,
            "DEMO_GUILD_ID": str(guild.id),
            "DEMO_CHANNEL_ID": str(channel.id),
            "DEMO_LOG_LEVEL": "DEBUG",
        },
        cwd=str(REPO),
        python=sys.executable,
    )
    await bot.start()
    try:
        await d.wait_ready(timeout=20)
        await d.wait_for_commands(guild.id, timeout=20)
        yield Env(d=d, bot=bot, guild_id=guild.id, channel_id=channel.id, alice=alice.id)
    finally:
        await bot.stop()
        await d.stop()


async def post_status(env: Env) -> tuple[Message, Message]:
    """/panel, then its "Post status" button: the bot posts an embed + PNG. Returns (panel, status)."""
    d = env.d
    known = {e["message_id"] for e in env.bot.events("posted")}
    panel = await d.slash_command(env.guild_id, env.channel_id, env.alice, "panel")
    panel_msg = await panel.wait_original()
    click = await d.component_click(panel_msg.id, "demo:post", member_id=env.alice)
    assert (await click.wait_response())["type"] == 6  # deferred update
    event = await env.bot.wait_for_event("posted", lambda e: e["message_id"] not in known)
    return panel_msg, d.messages[event["message_id"]]


async def test_login_ready_and_command_sync(env: Env) -> None:
    d = env.d
    assert d.identify_count == 1
    assert d.gateway_connections == 1
    query = d.gateway_queries[0]
    assert query == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
    identify = d.identify_payloads[0]
    assert identify["token"] == TOKEN and identify["intents"] > 0
    login = [c.route for c in d.calls[:2]]
    assert login == ["GET /users/@me", "GET /oauth2/applications/@me"]
    commands = d.commands[env.guild_id]
    assert [c["name"] for c in commands] == ["ping", "slow", "panel", "bigembed", "think"]
    for cmd in commands:
        assert cmd["application_id"] == str(d.application_id)
        assert cmd["guild_id"] == str(env.guild_id)
        assert cmd["id"].isdigit() and cmd["version"].isdigit()
    assert d.command_puts[None] == 1 and d.commands[None] == []  # global sync too
    synced = await env.bot.wait_for_event("synced")
    assert synced["commands"] == ["ping", "slow", "panel", "bigembed", "think"]
    await env.bot.wait_for_event("ready", timeout=10)


async def test_slash_command_answered_ephemerally_within_deadline(env: Env) -> None:
    d = env.d
    it = await d.slash_command(env.guild_id, env.channel_id, env.alice, "ping")
    body = await it.wait_response(timeout=5)
    assert body["type"] == 4
    assert body["data"]["content"] == "pong"
    assert body["data"]["flags"] & 64
    assert it.ephemeral
    assert it.latency is not None and it.latency < d.interaction_deadline
    (msg,) = it.messages
    assert msg.ephemeral and msg.content == "pong"
    assert msg.id not in d.messages and msg.id in d.ephemeral_messages
    await env.bot.wait_for_event("pinged", lambda e: e["interaction"] == it.id)


async def test_late_callback_gets_unknown_interaction(env: Env) -> None:
    d = env.d
    it = await d.slash_command(env.guild_id, env.channel_id, env.alice, "slow")
    attempt = await it.wait_callback_attempt(timeout=d.interaction_deadline + 3)
    assert attempt.status == 404
    assert attempt.response == {"message": "Unknown interaction", "code": 10062}
    assert attempt.at - it.created_at > d.interaction_deadline
    assert it.response is None and not it.acknowledged
    event = await env.bot.wait_for_event("error", lambda e: e["where"] == "slow")
    assert (event["status"], event["code"]) == (404, 10062)


async def test_button_posts_embed_with_png_attachment(env: Env) -> None:
    d = env.d
    _, msg = await post_status(env)
    assert msg.channel_id == env.channel_id and msg.author_id == d.bot_user.id
    assert msg.content == "Status"
    (embed,) = msg.embeds
    assert embed["title"] == "Demo server"
    assert embed["description"] == "Server is **online**"
    (att,) = msg.attachments
    assert att.filename == "status.png" and att.content_type == "image/png"
    assert att.data.startswith(PNG_SIGNATURE) and (att.width, att.height) == (4, 3)
    assert msg.embed_image_attachment() is att  # attachment://status.png resolved
    call = await d.wait_for_call(lambda c: c.route == POST_MESSAGE and c.status == 200 and c.files)
    assert call.files[0].data == att.data
    assert call.json["attachments"] == [{"id": 0, "filename": "status.png"}]
    assert msg in d.channel_messages(env.channel_id)
    async with aiohttp.ClientSession() as session, session.get(att.url) as resp:
        assert resp.status == 200
        assert await resp.read() == att.data


async def test_select_edits_message_and_replaces_attachment(env: Env) -> None:
    d = env.d
    panel, msg = await post_status(env)
    old_attachment = msg.attachments[0]
    select = await d.select_choice(panel.id, "demo:select", ["offline"], member_id=env.alice)
    body = await select.wait_response()
    assert body["type"] == 7 and body["data"]["content"] == "Selected: offline"
    assert panel.content == "Selected: offline" and panel.edits == 1
    event = await env.bot.wait_for_event("edited", lambda e: e["message_id"] == msg.id)
    assert event["value"] == "offline"
    assert msg.edits == 1 and msg.edited_at is not None
    assert msg.embeds[0]["description"] == "Server is **offline**"
    (att,) = msg.attachments
    assert att.id != old_attachment.id and (att.width, att.height) == (2, 2)
    assert msg.history[0]["attachments"][0]["id"] == str(old_attachment.id)


async def test_rate_limited_edit_is_retried_by_discord_py(env: Env) -> None:
    d = env.d
    panel, msg = await post_status(env)
    before = len(d.calls_to(PATCH_MESSAGE))
    d.fail_next(PATCH_MESSAGE, 429, retry_after=0.05)
    await d.select_choice(panel.id, "demo:select", ["starting"], member_id=env.alice)
    await env.bot.wait_for_event("edited", lambda e: e["message_id"] == msg.id and e["value"] == "starting")
    first, second = d.calls_to(PATCH_MESSAGE)[before:]
    assert first.status == 429 and first.injected
    assert first.response == {"message": "You are being rate limited.", "retry_after": 0.05, "global": False}
    assert second.status == 200 and second.at - first.at >= 0.05
    assert msg.edits == 1


async def test_moderator_deletion_then_edit_gets_unknown_message(env: Env) -> None:
    d = env.d
    panel, msg = await post_status(env)
    d.delete_message(env.channel_id, msg.id)
    assert msg.deleted and msg not in d.channel_messages(env.channel_id)
    await d.wait_until(lambda: any(p["t"] == "MESSAGE_DELETE" for p in d.dispatched), 5, "MESSAGE_DELETE")
    select = await d.select_choice(panel.id, "demo:select", ["online"], member_id=env.alice)
    event = await env.bot.wait_for_event("error", lambda e: e["where"] == "edit")
    assert (event["status"], event["code"]) == (404, 10008)
    call = await d.wait_for_call(lambda c: c.route == PATCH_MESSAGE and c.params["message_id"] == str(msg.id))
    assert call.response == {"message": "Unknown Message", "code": 10008}
    body = await select.wait_response()
    assert body["data"]["content"] == "edit failed: 10008" and select.ephemeral


async def test_embed_too_large_is_raised_to_the_bot(env: Env) -> None:
    d = env.d
    it = await d.slash_command(env.guild_id, env.channel_id, env.alice, "bigembed")
    event = await env.bot.wait_for_event("error", lambda e: e["where"] == "bigembed")
    assert (event["status"], event["code"]) == (400, 50035)
    assert "In embeds: Embed size exceeds maximum size of 6000" in event["text"]
    call = await d.wait_for_call(lambda c: c.route == POST_MESSAGE and c.status == 400)
    too_big = {"code": "MAX_EMBED_SIZE_EXCEEDED", "message": "Embed size exceeds maximum size of 6000"}
    assert call.response["errors"] == {"embeds": {"_errors": [too_big]}}
    assert (await it.wait_response())["data"]["content"] == "error 50035"


async def test_missing_attach_permission_is_403(env: Env) -> None:
    d = env.d
    d.set_permissions(env.channel_id, attach_files=False)
    try:
        panel = await d.slash_command(env.guild_id, env.channel_id, env.alice, "panel")
        panel_msg = await panel.wait_original()
        await d.component_click(panel_msg.id, "demo:post", member_id=env.alice)
        event = await env.bot.wait_for_event("error", lambda e: e["where"] == "post")
        assert (event["status"], event["code"]) == (403, 50013)
        assert "Missing Permissions" in event["text"]
    finally:
        d.set_permissions(env.channel_id, attach_files=None)


async def test_defer_then_followup_replaces_thinking_message(env: Env) -> None:
    d = env.d
    it = await d.slash_command(env.guild_id, env.channel_id, env.alice, "think", {"text": "hello"})
    body = await it.wait_response()
    assert body == {"type": 5, "data": {"flags": 64}}
    (followup,) = await it.wait_followups(1)
    assert followup["content"] == "thought: hello"
    event = await env.bot.wait_for_event("thought", lambda e: e["message_id"] == it.original_message_id)
    assert event["ephemeral"] is True
    original = it.original
    assert original is not None and not original.loading and original.content == "thought: hello"
    assert original.ephemeral and original.id not in d.messages
    # its button (generated custom_id) edits the ephemeral message via @original of the click
    click = await d.component_click(original.id, label="Again", member_id=env.alice)
    assert (await click.wait_response())["type"] == 6
    await env.bot.wait_for_event("again", lambda e: e["message_id"] == original.id)
    assert original.content == "thought again" and original.components == [] and original.edits == 2


async def test_gateway_reconnect_resumes_session(env: Env) -> None:
    d = env.d
    assert d.gateway_reconnect() == 1
    await d.wait_until(lambda: d.resume_count >= 1, 10, "RESUME")
    assert d.identify_count == 1 and d.gateway_connections == 2
    it = await d.slash_command(env.guild_id, env.channel_id, env.alice, "ping")
    assert (await it.wait_response())["data"]["content"] == "pong"


async def test_bot_debug_log_is_clean(env: Env) -> None:
    """discord.py at DEBUG: no parse errors, unknown events/ops, or surprise reconnects."""
    d = env.d
    it = await d.slash_command(env.guild_id, env.channel_id, env.alice, "ping")
    await it.wait_response()
    await env.bot.wait_for_event("pinged", lambda e: e["interaction"] == it.id)
    bad = re.compile(
        r"Unknown event|Unknown OP|Traceback|KeyError|ValueError|TypeError|Attempting a reconnect|"
        r"Websocket closed with|Shard ID None has stopped|discarding|Discarding"
    )
    problems = [line for line in env.bot.lines if bad.search(line)]
    assert problems == []
    # the log really is at DEBUG: every gateway event is logged
    assert any("WebSocket Event" in line and "INTERACTION_CREATE" in line for line in env.bot.lines)
    warnings = [
        line
        for line in env.bot.lines
        if "WARNING" in line and "is not installed, voice will NOT be supported" not in line
    ]
    # the only expected warning is discord.py's own line about the injected 429
    assert all("rate limited" in line for line in warnings), warnings
    assert d.unknown_calls == []
    assert d.internal_errors == []


# --- the stand-in's REST answers, checked directly (no bot) ---------------------------------------


async def test_rest_error_shapes() -> None:
    async with DiscordStandin(token=TOKEN) as d:
        guild = d.add_guild()
        chan = d.add_channel(guild.id, name="status")
        auth = {"Authorization": f"Bot {TOKEN}"}
        base = d.url + "/api/v10"
        async with aiohttp.ClientSession() as s:
            async with s.get(base + "/users/@me") as r:
                assert r.status == 401
                assert r.headers["Content-Type"] == "application/json"
                assert await r.json() == {"message": "401: Unauthorized", "code": 0}
            async with s.get(base + "/users/@me", headers=auth) as r:
                assert r.status == 200 and r.headers["Content-Type"] == "application/json"
            async with s.get(base + "/no/such/route", headers=auth) as r:
                assert r.status == 404
            assert [c.path for c in d.unknown_calls] == ["/no/such/route"]

            url = f"{base}/channels/{chan.id}/messages"
            async with s.post(url, json={"content": ""}, headers=auth) as r:
                empty = {"message": "Cannot send an empty message", "code": 50006}
                assert (r.status, await r.json()) == (400, empty)
            body = {
                "content": "x" * 2001,
                "embeds": [{"title": "t" * 257, "fields": [{"name": "n"}]}],
                "components": [
                    {
                        "type": 1,
                        "components": [
                            {"type": 2, "style": 1, "label": "a", "custom_id": "dup"},
                            {"type": 3, "custom_id": "dup", "options": [{"label": "o", "value": "v"}]},
                        ],
                    }
                ],
            }
            async with s.post(url, json=body, headers=auth) as r:
                data = await r.json()
            assert r.status == 400 and data["code"] == 50035 and data["message"] == "Invalid Form Body"
            errors = data["errors"]
            assert errors["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
            title_errors = errors["embeds"]["0"]["title"]["_errors"]
            assert title_errors == [
                {"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 256 or fewer in length."}
            ]
            assert errors["embeds"]["0"]["fields"]["0"]["value"]["_errors"][0]["code"] == "BASE_TYPE_REQUIRED"
            row = errors["components"]["0"]["components"]
            assert row["_errors"][0]["code"] == "COMPONENT_LAYOUT_WIDTH_EXCEEDED"
            assert row["1"]["custom_id"]["_errors"][0]["code"] == "COMPONENT_CUSTOM_ID_DUPLICATED"

            d.set_permissions(chan.id, send_messages=False)
            async with s.post(url, json={"content": "hi"}, headers=auth) as r:
                assert (r.status, await r.json()) == (403, {"message": "Missing Permissions", "code": 50013})
            d.set_permissions(chan.id, send_messages=None)

            d.fail_next(POST_MESSAGE, 429, retry_after=0.05)
            async with s.post(url, json={"content": "hi"}, headers=auth) as r:
                assert r.status == 429 and r.headers["Via"] and r.headers["X-RateLimit-Remaining"] == "0"
                assert (await r.json())["retry_after"] == 0.05
            async with s.post(url, json={"content": "hi"}, headers=auth) as r:
                assert r.status == 200
                msg_id = int((await r.json())["id"])
            d.delete_message(chan.id, msg_id)
            async with s.patch(f"{url}/{msg_id}", json={"content": "x"}, headers=auth) as r:
                assert (r.status, await r.json()) == (404, {"message": "Unknown Message", "code": 10008})
            d.delete_channel(chan.id)
            async with s.post(url, json={"content": "hi"}, headers=auth) as r:
                assert (r.status, await r.json()) == (404, {"message": "Unknown Channel", "code": 10003})
        assert d.internal_errors == []


class RawGateway:
    """A bare websocket client speaking the gateway protocol with zlib-stream (to test the stand-in)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._inflate = zlib.decompressobj()
        self._buffer = bytearray()

    async def recv(self) -> dict[str, Any]:
        while True:
            msg = await self.ws.receive(timeout=5)
            if msg.type == aiohttp.WSMsgType.BINARY:
                self._buffer.extend(msg.data)
                if bytes(self._buffer[-4:]) != b"\x00\x00\xff\xff":
                    continue
                text = self._inflate.decompress(bytes(self._buffer)).decode()
                self._buffer.clear()
                return json.loads(text)
            if msg.type == aiohttp.WSMsgType.TEXT:
                return json.loads(msg.data)
            raise ConnectionError(f"closed: {msg.type} {self.ws.close_code}")

    async def recv_dispatch(self, event: str) -> dict[str, Any]:
        while True:
            payload = await self.recv()
            if payload["op"] == 0 and payload["t"] == event:
                return payload

    async def send(self, op: int, data: Any) -> None:
        await self.ws.send_str(json.dumps({"op": op, "d": data}))


async def test_gateway_protocol() -> None:
    async with DiscordStandin(token=TOKEN) as d, aiohttp.ClientSession() as s:
        guild = d.add_guild(name="G")
        d.add_channel(guild.id, name="status")
        d.add_member(guild.id, username="alice")
        url = d.gateway_url + "?v=10&encoding=json&compress=zlib-stream"
        async with s.ws_connect(url) as ws:
            gw = RawGateway(ws)
            hello = await gw.recv()
            assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] < 60000
            await gw.send(1, None)
            assert (await gw.recv())["op"] == 11
            await gw.send(2, {"token": "wrong", "intents": 513, "properties": {}})
            assert (await ws.receive(timeout=5)).type == aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 4004
        async with s.ws_connect(url) as ws:
            gw = RawGateway(ws)
            await gw.recv()
            await gw.send(3, {"status": "online"})  # before IDENTIFY
            await ws.receive(timeout=5)
            assert ws.close_code == 4003
        async with s.ws_connect(url) as ws:
            gw = RawGateway(ws)
            await gw.recv()
            await gw.send(2, {"token": TOKEN, "intents": (1 << 0) | (1 << 1) | (1 << 9), "properties": {}})
            ready = await gw.recv()
            assert (ready["t"], ready["s"]) == ("READY", 1)
            assert ready["d"]["guilds"] == [{"id": str(guild.id), "unavailable": True}]
            assert ready["d"]["resume_gateway_url"] == d.gateway_url
            create = await gw.recv()
            assert create["t"] == "GUILD_CREATE" and create["s"] == 2
            g = create["d"]
            assert g["unavailable"] is False and g["member_count"] == len(g["members"]) == 3
            assert any(r["id"] == str(guild.id) and r["name"] == "@everyone" for r in g["roles"])
            await d.wait_ready()
            d.add_channel(guild.id, name="later")
            assert (await gw.recv_dispatch("CHANNEL_CREATE"))["d"]["name"] == "later"
            await gw.send(2, {"token": TOKEN, "intents": 1, "properties": {}})
            await ws.receive(timeout=5)
            assert ws.close_code == 4005  # IDENTIFY twice


async def test_guild_without_the_bot_and_guild_without_the_commands_scope() -> None:
    async with DiscordStandin(token=TOKEN) as d, aiohttp.ClientSession() as s:
        served = d.add_guild(name="Served")
        absent = d.add_guild(name="Not invited", bot_member=False)
        secret = d.add_channel(absent.id, name="elsewhere")
        d.add_member(absent.id, username="carol")
        no_commands = d.add_guild(name="Bot scope only", commands_scope=False)
        auth = {"Authorization": f"Bot {TOKEN}"}
        base = d.url + "/api/v10"
        missing_access = {"message": "Missing Access", "code": 50001}
        assert d.bot_in_guild(served.id) and not d.bot_in_guild(absent.id)
        assert d.bot_permissions(secret.id) == 0
        for path in (
            f"/guilds/{absent.id}",
            f"/guilds/{absent.id}/channels",
            f"/guilds/{absent.id}/members/{d.bot_user.id}",
            f"/channels/{secret.id}",
            f"/applications/{d.application_id}/guilds/{no_commands.id}/commands",
        ):
            async with s.get(base + path, headers=auth) as r:
                assert (r.status, await r.json()) == (403, missing_access), path
        async with s.put(
            f"{base}/applications/{d.application_id}/guilds/{no_commands.id}/commands", json=[], headers=auth
        ) as r:
            assert (r.status, await r.json()) == (403, missing_access)
        async with s.get(f"{base}/guilds/{d.snowflake()}", headers=auth) as r:
            assert (r.status, await r.json()) == (404, {"message": "Unknown Guild", "code": 10004})
        for guild in (served, absent):  # applications.commands alone is enough for guild commands
            async with s.get(
                f"{base}/applications/{d.application_id}/guilds/{guild.id}/commands", headers=auth
            ) as r:
                assert (r.status, await r.json()) == (200, [])
        async with s.get(f"{base}/guilds/{no_commands.id}", headers=auth) as r:
            assert r.status == 200 and (await r.json())["name"] == "Bot scope only"
        async with s.get(f"{base}/users/@me/guilds", headers=auth) as r:
            assert [g["name"] for g in await r.json()] == ["Served", "Bot scope only"]

        async with s.ws_connect(d.gateway_url + "?v=10&encoding=json&compress=zlib-stream") as ws:
            gw = RawGateway(ws)
            await gw.recv()
            await gw.send(2, {"token": TOKEN, "intents": 1, "properties": {}})
            ready = await gw.recv()
            assert [g["id"] for g in ready["d"]["guilds"]] == [str(served.id), str(no_commands.id)]
            created = [(await gw.recv())["d"]["name"] for _ in range(2)]
            assert created == ["Served", "Bot scope only"]
            d.add_channel(absent.id, name="unseen")
            d.add_channel(served.id, name="seen")
            assert (await gw.recv_dispatch("CHANNEL_CREATE"))["d"]["name"] == "seen"
        assert d.internal_errors == []


async def test_interaction_callback_rules() -> None:
    async with DiscordStandin(token=TOKEN) as d, aiohttp.ClientSession() as s:
        guild = d.add_guild(name="G")
        chan = d.add_channel(guild.id, name="status")
        alice = d.add_member(guild.id, username="alice")
        base = d.url + "/api/v10"
        auth = {"Authorization": f"Bot {TOKEN}"}
        commands = [{"name": "ping", "description": "p", "type": 1}]
        async with s.put(
            f"{base}/applications/{d.application_id}/guilds/{guild.id}/commands", json=commands
        ) as r:
            assert r.status == 401
        bad = [{"name": "Bad Name", "description": "", "type": 1}]
        url = f"{base}/applications/{d.application_id}/guilds/{guild.id}/commands"
        async with s.put(url, json=bad, headers=auth) as r:
            errors = (await r.json())["errors"]["0"]
            assert r.status == 400 and set(errors) == {"name", "description"}
        async with s.put(url, json=commands, headers=auth) as r:
            (registered,) = await r.json()
            assert registered["guild_id"] == str(guild.id) and registered["application_id"] == str(
                d.application_id
            )
        async with s.ws_connect(d.gateway_url + "?v=10&encoding=json&compress=zlib-stream") as ws:
            gw = RawGateway(ws)
            await gw.recv()
            await gw.send(2, {"token": TOKEN, "intents": 513, "properties": {}})
            await d.wait_ready()

            it = await d.slash_command(guild.id, chan.id, alice.id, "ping")
            payload = (await gw.recv_dispatch("INTERACTION_CREATE"))["d"]
            assert payload["data"] == {
                "id": registered["id"],
                "name": "ping",
                "type": 1,
                "guild_id": str(guild.id),
            }
            assert payload["member"]["user"]["id"] == str(alice.id) and payload["attachment_size_limit"] > 0
            callback = f"{base}/interactions/{it.id}/{it.token}/callback"
            followup = f"{base}/webhooks/{d.application_id}/{it.token}"
            async with s.post(followup, json={"content": "early"}) as r:
                assert (r.status, (await r.json())["code"]) == (404, 10015)
            async with s.post(callback, json={"type": 7, "data": {"content": "x"}}) as r:
                assert r.status == 400 and "type" in (await r.json())["errors"]
            async with s.post(
                callback, params={"with_response": "1"}, json={"type": 4, "data": {"content": "hi"}}
            ) as r:
                body = await r.json()
                assert body["interaction"]["response_message_id"] == body["resource"]["message"]["id"]
                assert body["resource"]["type"] == 4 and body["resource"]["message"]["content"] == "hi"
            async with s.post(callback, json={"type": 4, "data": {"content": "again"}}) as r:
                assert (r.status, (await r.json())["code"]) == (400, 40060)
            async with s.post(followup, params={"wait": "1"}, json={"content": "more", "flags": 64}) as r:
                assert r.status == 200 and (await r.json())["flags"] & 64
            async with s.patch(followup + "/messages/@original", json={"content": "edited"}) as r:
                assert r.status == 200 and (await r.json())["content"] == "edited"
            assert it.ephemeral and [m.content for m in it.messages] == ["edited", "more"]
            assert it.original is not None and it.original.edits == 1

            late = await d.slash_command(guild.id, chan.id, alice.id, "ping")
            late.created_at -= d.interaction_deadline + 1  # as if the bot answered too late
            async with s.post(f"{base}/interactions/{late.id}/{late.token}/callback", json={"type": 5}) as r:
                assert (r.status, await r.json()) == (404, {"message": "Unknown interaction", "code": 10062})


async def test_multipart_attachments_and_rate_limits() -> None:
    limits = {"POST /channels/{channel_id}/messages": (3, 30.0)}
    async with DiscordStandin(token=TOKEN, rate_limits=limits) as d, aiohttp.ClientSession() as s:
        guild = d.add_guild(name="G")
        chan = d.add_channel(guild.id, name="status")
        auth = {"Authorization": f"Bot {TOKEN}"}
        url = f"{d.url}/api/v10/channels/{chan.id}/messages"

        def form(payload: dict[str, Any], *files: tuple[str, bytes]) -> aiohttp.FormData:
            data = aiohttp.FormData(quote_fields=False)
            data.add_field("payload_json", json.dumps(payload))
            for index, (name, raw) in enumerate(files):
                data.add_field(f"files[{index}]", raw, filename=name, content_type="application/octet-stream")
            return data

        first = {
            "content": "two files",
            "attachments": [{"id": 0, "filename": "a.txt"}, {"id": 1, "filename": "b.txt"}],
        }
        async with s.post(url, data=form(first, ("a.txt", b"A"), ("b.txt", b"B")), headers=auth) as r:
            assert r.status == 200 and r.headers["X-RateLimit-Remaining"] == "2"
            msg = await r.json()
        keep = next(a for a in msg["attachments"] if a["filename"] == "a.txt")
        edit = {"attachments": [{"id": keep["id"]}, {"id": 0, "filename": "c.txt"}]}
        async with s.patch(f"{url}/{msg['id']}", data=form(edit, ("c.txt", b"C")), headers=auth) as r:
            assert r.status == 200
        stored = d.messages[int(msg["id"])]
        assert [(a.filename, a.data) for a in stored.attachments] == [("a.txt", b"A"), ("c.txt", b"C")]
        assert stored.attachments[0].id == int(keep["id"])

        d.set_permissions(chan.id, attach_files=False)
        async with s.post(url, data=form({"content": "f"}, ("x.txt", b"X")), headers=auth) as r:
            assert (r.status, (await r.json())["code"]) == (403, 50013)
        d.set_permissions(chan.id, attach_files=None)
        async with s.post(url, json={"content": "x"}, headers=auth) as r:
            # the refused (403) request counted against the bucket too
            assert r.status == 200 and r.headers["X-RateLimit-Remaining"] == "0"
        async with s.post(url, json={"content": "x"}, headers=auth) as r:
            assert r.status == 429 and r.headers["Via"] and r.headers["X-RateLimit-Scope"] == "user"
            body = await r.json()
            assert body["global"] is False and 0 < body["retry_after"] <= 30
