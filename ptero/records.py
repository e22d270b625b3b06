"""What the board keeps per server (one record each), what it reports, and the narrow interface
through which it reaches Discord (a CardSink, with its three kinds of failure)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Protocol

import discord

from ptero.cards import Card
from ptero.pacing import Backoff
from ptero.panel import PanelServer, PterodactylError, ServerResources
from ptero.rules import FailureKind, TrackedState, failure_kind
from ptero.store import EmbedLocation


class CardGone(Exception):
    """The message (or its channel) no longer exists."""


class CardRefused(Exception):
    """Discord refused the call for good (a 4xx such as a missing permission or an invalid embed)."""

    def __init__(self, status: int, code: int, text: str) -> None:
        self.status, self.code, self.text = status, code, text
        super().__init__(f"{status} (code {code}): {text}")


class CardUnavailable(Exception):
    """Discord failed for now (5xx, rate limit, network); worth retrying later."""


class CardSink(Protocol):
    """What the board needs from Discord."""

    async def post(self, channel_id: int, server_id: str, card: Card) -> EmbedLocation: ...

    async def edit(self, location: EmbedLocation, server_id: str, card: Card) -> None: ...

    async def retire(self, location: EmbedLocation, embed: discord.Embed) -> None:
        """Replace the card with ``embed``, without buttons or attachments."""

    async def delete(self, location: EmbedLocation) -> None: ...

    async def exists(self, location: EmbedLocation) -> bool:
        """False only when Discord says the message is gone."""


@dataclass(slots=True)
class CardState:
    """The message that shows a server, and what it showed when it was last edited."""

    location: EmbedLocation
    shown: TrackedState | None = None
    fingerprint: str | None = None
    backoff: Backoff = field(default_factory=Backoff)
    verified: bool = True  # False for a card read from the store until Discord confirms it is there


@dataclass(frozen=True, slots=True)
class PowerClaim:
    action: str
    user: str
    until: float


@dataclass(eq=False, slots=True)
class ServerRecord:
    """Everything the bot knows about one server."""

    server_id: str
    server: PanelServer | None = None  # its entry in the panel's listing
    listed: bool = False  # in the latest listing
    inaccessible: bool = False  # has a card, but the client key's user cannot see it any more
    access_checked_at: float = float("-inf")
    resources: ServerResources | None = None
    fetched_at: float = float("-inf")
    failures: int = 0  # failed checks in a row
    failure: FailureKind = "panel"  # what the latest failure was: the panel, or the node behind it
    card: CardState | None = None
    power: PowerClaim | None = None  # a power action in progress
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one render and edit at a time

    def observe(self, result: ServerResources | PterodactylError | None, now: float) -> None:
        """Take a check's result. A failure (or Pelican's "missing": the node cannot be reached) keeps
        the last good data, so one blip does not flap the card; the rules count the failures."""
        if result is None:
            return
        kind = failure_kind(result)
        if kind is None:
            assert isinstance(result, ServerResources)
            self.resources, self.fetched_at, self.failures = result, now, 0
        else:
            self.failures += 1
            self.failure = kind

    @property
    def name(self) -> str:
        return self.server.name if self.server else self.server_id


@dataclass(frozen=True, slots=True)
class CycleReport:
    checked: int
    edited: int
    failed: int
    dropped: int
    seconds: float
    polled: int = 0
    deferred: int = 0  # edits left for a later cycle (Discord's pace, or a card backing off)

    @property
    def eventful(self) -> bool:
        return bool(self.edited or self.failed or self.dropped)


@dataclass(frozen=True, slots=True)
class PostResult:
    server: PanelServer
    saved: bool  # the location was written to the store
    replaced: EmbedLocation | None  # the older card of this server, if there was one
    replaced_deleted: bool
