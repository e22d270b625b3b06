"""What every check shares: the ``Doctor`` it reads and fills, a printed ``Line``, a ``Check``, and the
time limits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import discord
from discord.http import HTTPClient

from ptero.config import Settings
from ptero.panel import Account, PanelServer, PterodactylAPI
from ptero.panel.errors import (
    PterodactylAuthError,
)
from ptero.store import EmbedLocation

T = TypeVar("T")

REQUEST_TIMEOUT = 5.0  # one request to the panel or to Discord
STEP_TIMEOUT = 2 * REQUEST_TIMEOUT + 1  # one check: at most two requests one after the other
OVERALL_TIMEOUT = 25.0  # all checks; with start-up and shutdown the command stays under 30 s
NOT_LEARNED = 10**9  # a budget's limit until the panel's X-RateLimit-Limit header replaces it
STORE_PATH = Path("embed") / "embed_locations.json"
NEEDED = {  # what the bot needs in every channel it posts in, named as Discord's settings name them
    "View Channel": discord.Permissions(view_channel=True).value,
    "Send Messages": discord.Permissions(send_messages=True).value,
    "Embed Links": discord.Permissions(embed_links=True).value,
    "Attach Files": discord.Permissions(attach_files=True).value,
    "Read Message History": discord.Permissions(read_message_history=True).value,
}
ADMINISTRATOR = discord.Permissions(administrator=True).value
INVITE = "https://discord.com/oauth2/authorize?client_id={}&scope=bot+applications.commands&permissions={}"
APP_KEY_FIX = (
    "create an application key (Admin → Application API) with Read on Servers, Nodes and Allocations "
    "and set PTERODACTYL_APPLICATION_API_KEY"
)
CLIENT_KEY_FIX = (
    "log in to the panel as the user the bot acts as, create a key (Account → API Credentials) "
    "and set PTERODACTYL_CLIENT_API_KEY"
)

Mark = Literal["ok", "warn", "fail", "skip"]
MARKS: dict[Mark, str] = {"ok": "✓", "warn": "!", "fail": "✗", "skip": "-"}


@dataclass(frozen=True, slots=True)
class Line:
    """One printed line: what was checked and found, and for a warning or a failure what to do."""

    mark: Mark
    text: str
    fix: str = ""
    title: str = ""  # empty: the check's title

    def render(self, title: str) -> str:
        line = f"{MARKS[self.mark]} {self.title or title}: {self.text}"
        return f"{line} → {self.fix}" if self.fix else line


def ok(text: str, *, title: str = "") -> Line:
    return Line("ok", text, title=title)


def warn(text: str, fix: str, *, title: str = "") -> Line:
    return Line("warn", text, fix, title)


def fail(text: str, fix: str, *, title: str = "") -> Line:
    return Line("fail", text, fix, title)


def skip(text: str, *, title: str = "") -> Line:
    return Line("skip", text, title=title)


class Unanswered(Exception):
    """A request got no answer in time (the message names it)."""


async def within(step: Awaitable[T], what: str, seconds: float = REQUEST_TIMEOUT) -> T:
    """Await one network step with its own timeout (Discord's HTTP client has none)."""
    try:
        async with asyncio.timeout(seconds):
            return await step
    except TimeoutError:
        raise Unanswered(f"{what} did not answer within {seconds:g} s") from None


@dataclass
class Doctor:
    """What every check may use, and what earlier checks learned for later ones."""

    settings: Settings
    api: PterodactylAPI  # open; short timeout, no retries
    discord: HTTPClient  # logged in by the token check
    config_warnings: Sequence[str]
    cards: dict[str, EmbedLocation]  # from embed_locations.json, read without changing it
    store_problem: str | None
    dropped_cards: int
    client_servers: list[PanelServer] | None = None  # what the bot lists (SERVER_SCOPE)
    client_refusal: PterodactylAuthError | None = None
    account: Account | None = None
    app_servers: int | None = None
    nodes: list[Mapping[str, Any]] = field(default_factory=list)  # Application API, the first page
    bot_id: int = 0
    application_id: int = 0
    guild_name: str = ""
    role_permissions: dict[int, int] = field(default_factory=dict)  # role id -> permission bits
    bot_roles: list[int] = field(default_factory=list)

    @property
    def invite(self) -> str:
        return INVITE.format(self.application_id, sum(NEEDED.values()))


CheckFn = Callable[[Doctor], Awaitable[Line | Sequence[Line]]]


@dataclass(frozen=True, slots=True)
class Check:
    key: str  # what later checks name in ``needs``
    title: str
    run: CheckFn
    needs: tuple[str, ...] = ()  # run only after these passed (warnings count as passed)
    after: tuple[str, ...] = ()  # run only after these finished, whatever they found
    waits_on: str = "the panel"  # named when the check runs out of time
    timeout: float = STEP_TIMEOUT
