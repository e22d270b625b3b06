"""A local stand-in for Discord that the real discord.py client connects to (tests only).

Typical use::

    from tests.discord_standin import BotProcess, DiscordStandin

    async with DiscordStandin(token="test-token") as d:
        guild = d.add_guild(name="Test Guild")
        chan = d.add_channel(guild.id, name="status")
        alice = d.add_member(guild.id, username="alice")
        bot = await BotProcess(["pterodisbot.py"], env=d.bot_env(), cwd=REPO).start()
        await d.wait_ready()
        await d.wait_for_commands(guild.id)
        it = await d.slash_command(guild.id, chan.id, alice.id, "server_status")
        body = await it.wait_response()

See README.md in this directory for the full interface.
"""

from .errors import DiscordError, FormErrors
from .models import (
    Attachment,
    Call,
    Channel,
    Guild,
    InteractionRecord,
    Member,
    Message,
    Role,
    UploadedFile,
    User,
)
from .permissions import PERMISSIONS, perms
from .process import BotProcess
from .standin import DISCORD_LIKE_RATE_LIMITS, SITECUSTOMIZE_DIR, DiscordStandin

__all__ = [
    "DISCORD_LIKE_RATE_LIMITS",
    "PERMISSIONS",
    "SITECUSTOMIZE_DIR",
    "Attachment",
    "BotProcess",
    "Call",
    "Channel",
    "DiscordError",
    "DiscordStandin",
    "FormErrors",
    "Guild",
    "InteractionRecord",
    "Member",
    "Message",
    "Role",
    "UploadedFile",
    "User",
    "perms",
]
