"""A tiny real discord.py bot used to prove the Discord stand-in (run as a separate process).

Environment: DEMO_TOKEN, DEMO_GUILD_ID, DEMO_CHANNEL_ID (where it posts), DEMO_LOG_LEVEL (default INFO),
plus the stand-in's ``bot_env()``. It prints ``DEMO_EVENT {json}`` lines the tests wait for.

Commands (guild): /ping (ephemeral "pong"), /slow (answers after 3.5 s: too late),
/panel (a message with a button and a select), /bigembed (an embed over 6000 characters),
/think (ephemeral defer, then a followup whose "Again" button edits it).
Button ``demo:post`` posts an embed + PNG in the channel; select ``demo:select`` edits that
message (new embed, PNG replaced).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import struct
import zlib
from typing import Any

import discord
from discord import app_commands

GUILD = discord.Object(id=int(os.environ["DEMO_GUILD_ID"]))
CHANNEL_ID = int(os.environ["DEMO_CHANNEL_ID"])
SLOW_SECONDS = float(os.environ.get("DEMO_SLOW_SECONDS", "3.5"))


def emit(event: str, **data: Any) -> None:
    print("DEMO_EVENT " + json.dumps({"event": event, **data}), flush=True)


def make_png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    row = b"\x00" + bytes(rgb) * width
    raw = row * height
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


def status_embed(title: str, value: str) -> discord.Embed:
    embed = discord.Embed(title=title, description=f"Server is **{value}**", colour=0x2ECC71)
    embed.add_field(name="Players", value="3/20")
    embed.set_image(url="attachment://status.png")
    embed.set_footer(text="demo bot")
    return embed


class DemoBot(discord.Client):
    def __init__(self) -> None:
        super().__init__(intents=discord.Intents.default())
        self.tree = app_commands.CommandTree(self)
        self.status_message: discord.Message | None = None

    async def setup_hook(self) -> None:
        self.add_view(Panel(self))
        register(self)
        synced = await self.tree.sync(guild=GUILD)
        await self.tree.sync()
        emit("synced", commands=[c.name for c in synced])

    async def on_ready(self) -> None:
        emit("ready", user=self.user.id if self.user else None, guilds=[g.id for g in self.guilds])

    async def channel(self) -> discord.abc.Messageable:
        channel = self.get_channel(CHANNEL_ID)
        if channel is None:
            channel = await self.fetch_channel(CHANNEL_ID)
        return channel  # type: ignore[return-value]


class Panel(discord.ui.View):
    def __init__(self, bot: DemoBot) -> None:
        super().__init__(timeout=None)
        self.bot = bot

    @discord.ui.button(label="Post status", custom_id="demo:post", style=discord.ButtonStyle.primary)
    async def post(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        await interaction.response.defer()
        channel = await self.bot.channel()
        png = make_png(4, 3, (0, 200, 0))
        try:
            msg = await channel.send(
                content="Status",
                embed=status_embed("Demo server", "online"),
                file=discord.File(io.BytesIO(png), filename="status.png"),
            )
        except discord.HTTPException as exc:
            emit("error", where="post", status=exc.status, code=exc.code, text=exc.text)
            await interaction.followup.send(f"post failed: {exc.code}", ephemeral=True)
            return
        self.bot.status_message = msg
        emit("posted", message_id=msg.id, attachments=[a.filename for a in msg.attachments])

    @discord.ui.select(
        custom_id="demo:select",
        placeholder="Pick a state",
        options=[
            discord.SelectOption(label="Online", value="online"),
            discord.SelectOption(label="Offline", value="offline"),
            discord.SelectOption(label="Starting", value="starting", description="booting up"),
        ],
    )
    async def choose(self, interaction: discord.Interaction, select: discord.ui.Select) -> None:
        value = select.values[0]
        msg = self.bot.status_message
        if msg is None:
            await interaction.response.send_message("nothing posted yet", ephemeral=True)
            return
        png = make_png(2, 2, (200, 0, 0) if value == "offline" else (0, 0, 200))
        try:
            edited = await msg.edit(
                embed=status_embed("Demo server", value),
                attachments=[discord.File(io.BytesIO(png), filename="status.png")],
            )
        except discord.HTTPException as exc:
            emit("error", where="edit", status=exc.status, code=exc.code, text=exc.text)
            await interaction.response.send_message(f"edit failed: {exc.code}", ephemeral=True)
            return
        self.bot.status_message = edited
        emit("edited", message_id=edited.id, value=value, attachments=[a.id for a in edited.attachments])
        await interaction.response.edit_message(content=f"Selected: {value}")


def register(bot: DemoBot) -> None:
    tree = bot.tree

    @tree.command(name="ping", description="Answer pong", guild=GUILD)
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong", ephemeral=True)
        emit("pinged", interaction=interaction.id)

    @tree.command(name="slow", description="Answers after the deadline", guild=GUILD)
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(SLOW_SECONDS)
        try:
            await interaction.response.send_message("finally")
        except discord.HTTPException as exc:
            emit("error", where="slow", status=exc.status, code=exc.code, text=exc.text)
        else:
            emit("slow_answered")

    @tree.command(name="panel", description="Post the control panel", guild=GUILD)
    async def panel(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Control panel", view=Panel(bot))
        message = await interaction.original_response()
        emit("panel", message_id=message.id)

    @tree.command(name="bigembed", description="Try an embed over 6000 characters", guild=GUILD)
    async def bigembed(interaction: discord.Interaction) -> None:
        embed = discord.Embed(title="Too big", description="d" * 4000)
        for index in range(3):
            embed.add_field(name=f"field {index}", value="v" * 1000)
        channel = await bot.channel()
        try:
            await channel.send(embed=embed)
        except discord.HTTPException as exc:
            emit("error", where="bigembed", status=exc.status, code=exc.code, text=exc.text)
            await interaction.response.send_message(f"error {exc.code}", ephemeral=True)
        else:
            await interaction.response.send_message("sent?!", ephemeral=True)

    @tree.command(name="think", description="Defer, then follow up", guild=GUILD)
    @app_commands.describe(text="what to say")
    async def think(interaction: discord.Interaction, text: str = "done") -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await asyncio.sleep(0.05)
        followup = await interaction.followup.send(f"thought: {text}", view=Again(), wait=True)
        emit("thought", message_id=followup.id, ephemeral=followup.flags.ephemeral)


class Again(discord.ui.View):
    """A view on an ephemeral followup; its button has a generated custom_id."""

    def __init__(self) -> None:
        super().__init__(timeout=60)
        button: discord.ui.Button[Again] = discord.ui.Button(
            label="Again", style=discord.ButtonStyle.secondary
        )
        button.callback = self.again  # type: ignore[method-assign]
        self.add_item(button)

    async def again(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        message = await interaction.edit_original_response(content="thought again", view=None)
        emit("again", message_id=message.id)


def main() -> None:
    level = getattr(logging, os.environ.get("DEMO_LOG_LEVEL", "INFO").upper())
    discord.utils.setup_logging(level=level, root=True)
    bot = DemoBot()
    bot.run(os.environ["DEMO_TOKEN"], log_handler=None)


if __name__ == "__main__":
    main()
