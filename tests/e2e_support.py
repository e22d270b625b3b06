"""Helpers for the end-to-end tests: the bot runs as a separate process (``python pterodisbot.py``),
configured only through environment variables, against the fake panel and the Discord stand-in, both
served from the test's event loop on 127.0.0.1.

Nothing here reaches into the bot: everything is observed from outside, as a user or an operator
would see it (Discord messages and interaction answers, panel requests, the bot's output, the files it
writes in its working directory).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import re
import signal
import struct
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.discord_standin import BotProcess, DiscordStandin, InteractionRecord, Message
from tests.fake_panel import FakePanel, FakeServer
from tests.harness import GuildMembers, answer, components, locations

REPO = Path(__file__).resolve().parents[1]
BOT_SCRIPT = REPO / "pterodisbot.py"

# Secrets the bot is given. Distinctive, so that a leak cannot be confused with anything else.
TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GzE2eQ.e2eDiscordTokenSecretMiddle_9fQx7LmW2kRt"
CLIENT_KEY = "ptlc_E2eClientSecretMiddleQz8Vn3Wd5Hj"
APP_KEY = "ptla_E2eApplicationSecretMiddleKp4Tb7Xs"
KEYS = {  # per flavour: Pelican's own prefixes, the same secret middle
    "pterodactyl": (CLIENT_KEY, APP_KEY),
    "pelican": ("pacc_" + CLIENT_KEY[5:], "papp_" + APP_KEY[5:]),
}
SECRETS = {"DISCORD_TOKEN": TOKEN, "client API key": CLIENT_KEY, "application API key": APP_KEY}
SECRETS |= {"Pelican client API key": KEYS["pelican"][0], "Pelican application API key": KEYS["pelican"][1]}

CONTROL_ROLE = "Game Server User"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CYCLE_RE = re.compile(
    r"Update cycle: (\d+) server\(s\) checked, (\d+) edited, (\d+) failure\(s\), (\d+) dropped"
)
READY_LINE = "Connected to Discord as"
PATCH_MESSAGE = "PATCH /channels/{channel_id}/messages/{message_id}"
POST_MESSAGE = "POST /channels/{channel_id}/messages"
DELETE_MESSAGE = "DELETE /channels/{channel_id}/messages/{message_id}"


def secret_fragments() -> dict[str, str]:
    """Every secret, and the long middle part of each (what a masked or sliced leak would still show)."""
    fragments: dict[str, str] = {}
    for name, value in SECRETS.items():
        fragments[name] = value
        fragments[f"{name} (middle)"] = value[5:-4]
    for i, part in enumerate(TOKEN.split(".")):
        if len(part) >= 6:
            fragments[f"DISCORD_TOKEN part {i}"] = part
    return fragments


# -- the fake panel, with CPU that moves --------------------------------------------------------


class E2EPanel(FakePanel):
    """The fake panel, plus servers whose CPU changes on every resources read while running, so the
    bot has something to edit every cycle (and running servers collect graph samples)."""

    def __init__(self, flavour: str = "pterodactyl", **kwargs: Any) -> None:
        client_key, app_key = KEYS[flavour]
        super().__init__(client_key=client_key, app_key=app_key, flavour=flavour, **kwargs)
        self._cpu_values: dict[str, Iterator[float]] = {}

    def vary_cpu(self, server: FakeServer, values: Iterable[float] = (15.0, 95.0)) -> None:
        self._cpu_values[server.identifier] = itertools.cycle(list(values))

    def _stats(self, s: FakeServer) -> dict[str, Any]:
        values = self._cpu_values.get(s.identifier)
        if values is not None and s.state == "running":
            s.cpu = next(values)
        return super()._stats(s)


# -- the bot process ----------------------------------------------------------------------------


class BotRun(BotProcess):
    """One ``python pterodisbot.py`` process, with waits on its output."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._cycles: list[tuple[int, int, int, int]] = []
        self._cycles_upto = 0

    async def wait_until(
        self,
        predicate: Callable[[], Any],
        timeout: float = 10.0,
        what: str = "condition",
    ) -> Any:
        """Wait until ``predicate()`` is true, re-checked whenever the bot prints a line."""

        def check() -> Any:
            value = predicate()
            if not value and self._eof:
                raise RuntimeError(f"bot exited ({self.returncode}) before {what}:\n{self.tail()}")
            return value

        async def inner() -> Any:
            async with self._cond:
                return await self._cond.wait_for(check)

        try:
            return await asyncio.wait_for(inner(), timeout)
        except TimeoutError:
            raise TimeoutError(f"no {what} within {timeout}s; bot output:\n{self.tail()}") from None

    def cycles(self) -> list[tuple[int, int, int, int]]:
        """(checked, edited, failures, dropped) of every update cycle the bot logged, in order."""
        lines = self.lines
        for line in lines[self._cycles_upto :]:  # incremental: waits re-check this on every line
            m = CYCLE_RE.search(line)
            if m:
                self._cycles.append((int(m[1]), int(m[2]), int(m[3]), int(m[4])))
        self._cycles_upto = len(lines)
        return list(self._cycles)

    async def wait_cycles(
        self,
        n: int = 1,
        timeout: float = 10.0,
        where: Callable[[tuple[int, int, int, int]], bool] | None = None,
    ) -> tuple[int, int, int, int]:
        """Wait for ``n`` more update cycles (counting from now) that satisfy ``where``; return the last."""
        start = len(self.cycles())

        def done() -> tuple[int, int, int, int] | None:
            new = [c for c in self.cycles()[start:] if where is None or where(c)]
            return new[n - 1] if len(new) >= n else None

        return await self.wait_until(done, timeout, f"{n} update cycle(s)")

    async def terminate(self, timeout: float = 10.0) -> int:
        """SIGTERM, as ``docker stop`` does; returns the exit status."""
        assert self.proc is not None
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            self.proc.kill()
            await self.proc.wait()
            raise AssertionError(
                f"the bot did not exit within {timeout}s of SIGTERM:\n{self.tail()}"
            ) from None
        await self._drain()
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def kill(self) -> None:
        """SIGKILL: no clean-up of any kind in the bot."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()
        await self.proc.wait()
        await self._drain()

    async def _drain(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(self._reader, 5)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.returncode is None


# -- the world ----------------------------------------------------------------------------------


@dataclass
class E2E(GuildMembers):
    panel: E2EPanel
    discord: DiscordStandin
    cwd: Path  # the bot's working directory: embed/ and logs/ land here
    guild_id: int
    channel_id: int
    other_channel_id: int
    operator_id: int  # has the control role
    member_id: int  # a plain member
    other_guild_id: int  # a guild the bot is also in, but does not serve
    other_guild_channel_id: int
    stranger_id: int  # a member of the other guild only
    bots: list[BotRun] = field(default_factory=list)

    # -- processes ------------------------------------------------------------------------------
    def env(self, log_level: str = "DEBUG", **extra: str) -> dict[str, str]:
        """Exactly what ``docker run -e ...`` would give the bot, plus the stand-in's redirection."""
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/root"),  # matplotlib's font cache lives there
            "PYTHONUNBUFFERED": "1",
            "DISCORD_TOKEN": TOKEN,
            "ALLOWED_GUILD_ID": str(self.guild_id),
            "CONTROL_ROLES": CONTROL_ROLE,
            "PTERODACTYL_URL": self.panel.url,
            "PTERODACTYL_CLIENT_API_KEY": self.panel.client_key,
            "PTERODACTYL_APPLICATION_API_KEY": self.panel.app_key,
            "UPDATE_INTERVAL": "1",
            "LIVE_UPDATES": "off",  # polling, unless a test asks for live updates
            "LOG_LEVEL": log_level,
            **self.discord.bot_env(guild_ready_timeout=0.2),
        }
        env.update(extra)
        return env

    async def start_bot(self, log_level: str = "DEBUG", *, ready: bool = True, **extra: str) -> BotRun:
        """Start ``python pterodisbot.py`` in :attr:`cwd`; by default wait until it is connected, has
        synced its commands and runs its first update cycle."""
        ready_before = self.discord.ready_count
        puts_before = self.discord.command_puts.get(self.guild_id, 0)
        bot = BotRun([str(BOT_SCRIPT)], cwd=str(self.cwd), python=sys.executable)
        bot.env = self.env(log_level, **extra)  # only these variables, nothing from the test's environment
        self.bots.append(bot)
        await bot.start()
        if ready:
            await self.discord.wait_ready(timeout=20, count=ready_before + 1)
            await self.discord.wait_for_commands(self.guild_id, timeout=20, count=puts_before + 1)
            await bot.wait_for_line(READY_LINE, timeout=20)
            await bot.wait_until(bot.cycles, timeout=20, what="a first update cycle")
        return bot

    async def stop_bot(self, bot: BotRun) -> None:
        """SIGTERM; the bot must exit 0."""
        code = await bot.terminate()
        assert code == 0, f"exit status {code} after SIGTERM:\n{bot.tail()}"

    # -- what members do ------------------------------------------------------------------------
    async def open_picker(
        self,
        *,
        channel: int | None = None,
        member: int | None = None,
        timeout: float = 10.0,
    ) -> tuple[InteractionRecord, Message]:
        """/server_status; returns the interaction and the private menu message."""
        command = await self.slash("server_status", channel=channel, member=member)
        await command.wait_followups(1, timeout=timeout)
        return command, command.followup_messages[0]

    async def click_next(self, menu: Message, *, member: int | None = None) -> InteractionRecord:
        """Click the menu's Next button."""
        next_id = next(c["custom_id"] for c in components(menu) if c.get("label") == "Next")
        return await self.discord.component_click(
            menu.id,
            next_id,
            guild_id=self.guild_id,
            channel_id=menu.channel_id,
            member_id=member or self.member_id,
        )

    async def next_page(
        self,
        menu: Message,
        page: int,
        pages: int,
        *,
        member: int | None = None,
        timeout: float = 10.0,
    ) -> Message:
        """Click Next on the menu and wait until it shows ``Page page of pages``."""
        turn = await self.click_next(menu, member=member)
        await turn.wait_response(timeout=timeout)
        return await self.discord.wait_for_message(
            lambda m: m.id == menu.id and f"Page {page} of {pages}" in m.content,
            timeout,
            include_ephemeral=True,
        )

    async def choose(
        self,
        menu: Message,
        identifier: str,
        *,
        channel: int | None = None,
        member: int | None = None,
    ) -> InteractionRecord:
        """Pick a server in an open menu (turning pages until it is listed), by default as the operator
        (who may post cards); returns the choice."""
        member = member or self.operator_id
        pages = page_count(menu)
        page = current_page(menu)
        while identifier not in select_values(menu):
            assert page < pages, f"{identifier} is on no page of the menu"
            page += 1
            menu = await self.next_page(menu, page, pages, member=member)
        select = next(c for c in components(menu) if c["type"] == 3)
        return await self.discord.select_choice(
            menu.id,
            select["custom_id"],
            values=[identifier],
            guild_id=self.guild_id,
            channel_id=channel or self.channel_id,
            member_id=member or self.member_id,
        )

    async def post_status(
        self, identifier: str, *, channel: int | None = None, member: int | None = None
    ) -> tuple[Message, str]:
        """/server_status and a choice, as an operator (who may post cards) would: returns the posted
        message and the bot's private confirmation."""
        channel, member = channel or self.channel_id, member or self.operator_id
        _, menu = await self.open_picker(channel=channel, member=member)
        choice = await self.choose(menu, identifier, channel=channel, member=member)
        text = await answer(choice)
        assert "Posted the live status" in text, text
        return self.status_message(identifier, channel), text

    # -- what there is to see --------------------------------------------------------------------
    def status_message(self, identifier: str, channel: int | None = None) -> Message:
        """The newest status message of a server in a channel."""
        found = [
            m
            for m in self.discord.channel_messages(channel or self.channel_id)
            if m.author_id == self.discord.bot_user.id and footer_identifier(m) == identifier
        ]
        assert found, f"no status message of {identifier} in channel {channel}"
        return found[-1]

    @property
    def store_path(self) -> Path:
        return self.cwd / "embed" / "embed_locations.json"

    def stored(self) -> dict[str, dict[str, str]]:
        """Where the store file says each card is (its channel and message ids)."""
        return locations(json.loads(self.store_path.read_text(encoding="utf-8")))

    def location(self, message: Message) -> dict[str, str]:
        return {"channel_id": str(message.channel_id), "message_id": str(message.id)}

    def problems(self) -> list[str]:
        """What must never happen in any test: unknown Discord routes, stand-in errors, tracebacks."""
        found = [f"unknown Discord call {c!r}" for c in self.discord.unknown_calls]
        found += [f"stand-in internal error {e!r}" for e in self.discord.internal_errors]
        for i, bot in enumerate(self.bots):
            if "Traceback" in bot.output:
                found.append(f"Traceback in the output of bot process #{i}:\n{bot.output}")
        return found


@asynccontextmanager
async def e2e_world(
    tmp_path: Path, *, interaction_deadline: float = 3.0, flavour: str = "pterodactyl", **panel: Any
) -> AsyncIterator[E2E]:
    """The fake panel and the Discord stand-in on 127.0.0.1, a served guild with two channels, a
    control role, an operator (with it) and a member (without), and another guild the bot is in."""
    cwd = tmp_path / "bot"
    cwd.mkdir()
    fake = E2EPanel(flavour, **panel)
    stand_in = DiscordStandin(token=TOKEN, interaction_deadline=interaction_deadline)
    async with fake, stand_in:
        guild = stand_in.add_guild(name="Game Night")
        channel = stand_in.add_channel(guild.id, name="server-status")
        other_channel = stand_in.add_channel(guild.id, name="lobby")
        control = stand_in.add_role(guild.id, name=CONTROL_ROLE)
        operator = stand_in.add_member(guild.id, username="olivia", roles=[control.id])
        member = stand_in.add_member(guild.id, username="max")
        other_guild = stand_in.add_guild(name="Elsewhere")
        other_guild_channel = stand_in.add_channel(other_guild.id, name="general")
        stranger = stand_in.add_member(other_guild.id, username="mallory")
        world = E2E(
            fake,
            stand_in,
            cwd,
            guild.id,
            channel.id,
            other_channel.id,
            operator.id,
            member.id,
            other_guild.id,
            other_guild_channel.id,
            stranger.id,
        )
        try:
            yield world
        finally:
            for bot in world.bots:  # a failed test must not leave a process behind
                if bot.running:
                    await bot.kill()


# -- reading messages and answers -----------------------------------------------------------------


def select_values(menu: Message) -> list[str]:
    select = next(c for c in components(menu) if c["type"] == 3)
    return [o["value"] for o in select["options"]]


def page_count(menu: Message) -> int:
    m = re.search(r"Page (\d+) of (\d+)", menu.content)
    return int(m[2]) if m else 1


def current_page(menu: Message) -> int:
    m = re.search(r"Page (\d+) of (\d+)", menu.content)
    return int(m[1]) if m else 1


def footer_identifier(message: Message) -> str | None:
    try:
        text = message.embeds[0]["footer"]["text"]
    except (IndexError, KeyError, TypeError):
        return None
    return text.split(" · ", 1)[0]


def field_value(embed: dict[str, Any], name: str) -> str | None:
    return next((f["value"] for f in embed.get("fields", []) if f["name"] == name), None)


def state_shown(message: Message) -> str | None:
    return field_value(message.embeds[0], "State") if message.embeds else None


def states_shown(message: Message) -> list[str]:
    """Every State the message showed, oldest first, repeats collapsed."""
    versions = [*message.history, {"embeds": message.embeds}]
    out: list[str] = []
    for version in versions:
        embeds = version.get("embeds") or []
        state = field_value(embeds[0], "State") if embeds else None
        if state is not None and (not out or out[-1] != state):
            out.append(state)
    return out


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk (which must come first)."""
    assert data.startswith(PNG_SIGNATURE), data[:16]
    assert data[12:16] == b"IHDR", data[8:16]
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def everything_sent_to_discord(discord: DiscordStandin) -> str:
    """Every message, embed, component, attachment and REST body the bot sent (minus the headers,
    where the token belongs), as one text to search."""
    parts: list[str] = []
    for message in [*discord.messages.values(), *discord.ephemeral_messages.values()]:
        parts.append(message.content)
        parts.append(json.dumps([*message.history, message.embeds, message.components]))
        for attachment in message.attachments:
            parts.append(attachment.filename)
            parts.append(attachment.data.decode("latin-1"))
    for interaction in discord.interactions.values():
        parts.append(json.dumps([interaction.response, interaction.followups]))
    for call in discord.calls:
        parts.append(call.path)
        parts.append(json.dumps([call.json, call.query]))
        for upload in call.files:
            parts.append(upload.filename)
            parts.append(upload.data.decode("latin-1"))
    parts.append(json.dumps(discord.presence_updates))
    return "\n".join(parts)


def files_written(cwd: Path) -> dict[str, str]:
    """Every file the bot wrote in its working directory, by relative path."""
    out = {}
    for path in sorted(cwd.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(cwd))] = path.read_bytes().decode("latin-1")
    return out


async def wait_for_new_call(
    discord: DiscordStandin,
    route: str,
    since: int,
    timeout: float = 10.0,
) -> Any:
    """The first REST call of ``route`` recorded after the first ``since`` calls."""
    key = discord.route_key(route)

    def find() -> Any:
        return next((c for c in discord.calls[since:] if c.route == key), None)

    return await discord.wait_until(find, timeout, f"a new {route} call")


def find_secrets(text: str) -> list[str]:
    return [name for name, value in secret_fragments().items() if value in text]
