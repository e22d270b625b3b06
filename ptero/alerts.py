"""Alerts, the audit trail and the presence line.

- ``OutageTracker`` (pure): when a server with a card goes down, and when it is back.
- ``Notifier``: posts alert and audit messages from its own queue and task, so that a slow or
  failing Discord never delays a button answer or an update cycle.
- ``PresenceLine``: "Watching 3/5 servers running", changed when the count changes, at most every 15 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import discord

from ptero.cards import md

log = logging.getLogger(__name__)

UP_STATES = frozenset({"running", "starting"})
DOWN_STATES = {
    "offline": "offline",
    "stopped": "offline",
    "unreachable": "unreachable",
    "node_unreachable": "node",
}
INTENT_LASTS = 600.0  # a Stop or Restart pressed on a card explains the outage for this long at most
Kind = Literal["offline", "unreachable", "node"]


@dataclass(frozen=True, slots=True)
class Outage:
    server_id: str
    name: str
    kind: Kind
    since: float  # monotonic


@dataclass(frozen=True, slots=True)
class Recovery:
    server_id: str
    name: str
    down_for: float  # seconds


@dataclass(slots=True)
class _Watch:
    state: str
    was_up: bool
    pending: Outage | None = None  # down, not yet for long enough
    alerted: Outage | None = None  # down, and said so
    intended_until: float = float("-inf")  # a Stop/Restart from the card explains a stop until then


class OutageTracker:
    """Decides, from the states a card shows, when to alert. Pure: the clock is passed in."""

    def __init__(self, alert_after: float) -> None:
        self.alert_after = alert_after
        self._watch: dict[str, _Watch] = {}

    def forget(self, server_id: str) -> None:
        self._watch.pop(server_id, None)

    def intend(self, server_id: str, now: float) -> None:
        """A Stop or Restart was sent from the card: the stop that follows is no outage."""
        watch = self._watch.get(server_id)
        if watch is not None:
            watch.intended_until = now + INTENT_LASTS

    def observe(self, server_id: str, name: str, state: str, now: float) -> Outage | Recovery | None:
        """A state seen for a server; what to announce now, if anything."""
        watch = self._watch.get(server_id)
        if watch is None:  # the first look is the baseline: a server already down raises nothing
            self._watch[server_id] = _Watch(state, state in UP_STATES)
            return None
        watch.state = state
        if state in UP_STATES:
            watch.was_up, watch.pending = True, None
            if state == "running":
                watch.intended_until = float("-inf")
                if watch.alerted is not None:
                    outage, watch.alerted = watch.alerted, None
                    return Recovery(server_id, name, now - outage.since)
            return None
        kind = DOWN_STATES.get(state)
        if kind is None or not watch.was_up or watch.alerted is not None:
            return None  # stopping, installing...; or never up since the baseline; or already said
        if watch.pending is None:
            if kind == "offline" and now < watch.intended_until:
                watch.was_up = False  # the stop asked for on the card: not an outage
                return None
            watch.pending = Outage(server_id, name, kind, now)  # type: ignore[arg-type]
        return self._due(watch, now)

    def tick(self, now: float) -> list[Outage]:
        """Outages that have now lasted long enough (called every cycle, as time passes)."""
        return [outage for watch in self._watch.values() if (outage := self._due(watch, now)) is not None]

    def _due(self, watch: _Watch, now: float) -> Outage | None:
        if watch.pending is None or now - watch.pending.since < self.alert_after:
            return None
        watch.alerted, watch.pending = watch.pending, None
        return watch.alerted


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s" if minutes < 10 and secs else f"{minutes} min"
    return f"{secs} s"


DOWN_WORDS: dict[Kind, str] = {
    "offline": "is down (offline)",
    "unreachable": "is unreachable (the panel does not answer)",
    "node": "is unreachable (the panel cannot reach its node)",
}


def down_text(outage: Outage, since_unix: float, mention: str) -> str:
    lead = f"{mention} " if mention else ""
    return f"{lead}🔴 **{md(outage.name)}** {DOWN_WORDS[outage.kind]} since <t:{int(since_unix)}:R>."


def up_text(recovery: Recovery) -> str:
    return f"🟢 **{md(recovery.name)}** is running again, after {format_duration(recovery.down_for)} down."


AUDIT_ICONS = {"start": "▶️", "stop": "⏹️", "restart": "🔄"}


def audit_text(user_id: int, action: str, name: str, outcome: str) -> str:
    """One line of the audit trail; the user mention shows who, and pings nobody."""
    icon = AUDIT_ICONS.get(action, "•")
    return f"{icon} <@{user_id}> pressed **{action.capitalize()}** on **{md(name)}**: {outcome}."


@dataclass(frozen=True, slots=True)
class _Post:
    channel_id: int
    content: str
    allowed: discord.AllowedMentions
    what: str  # for the log: "down alert", "audit"


class Notifier:
    """Posts to the alert and audit channels from one queue, with a bounded retry; a post that cannot
    be made is logged (once per channel for a missing channel or permission) and dropped."""

    RETRIES = (2.0, 10.0, 30.0)
    QUEUE = 500

    def __init__(self, client: discord.Client, guild_id: int) -> None:
        self.client, self.guild_id = client, guild_id
        self._queue: deque[_Post] = deque()
        self._task: asyncio.Task[None] | None = None
        self._drained = asyncio.Event()
        self._drained.set()
        self._broken: set[int] = set()  # channels already reported as unusable
        self.sent = 0

    def post(self, channel_id: int | None, content: str, allowed: discord.AllowedMentions, what: str) -> None:
        """Queue a message; returns at once."""
        if channel_id is None:
            return
        if len(self._queue) >= self.QUEUE:
            dropped = self._queue.popleft()
            log.warning("Too many messages waiting for Discord; dropped a %s", dropped.what)
        self._queue.append(_Post(channel_id, content, allowed, what))
        self._drained.clear()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="notifier")

    async def idle(self) -> None:
        """Wait until every queued message was sent or given up."""
        await self._drained.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        try:
            while self._queue:
                await self._send(self._queue.popleft())
        finally:
            if not self._queue:
                self._drained.set()

    async def _send(self, post: _Post) -> None:
        channel = self.client.get_partial_messageable(post.channel_id, guild_id=self.guild_id)
        for attempt, pause in enumerate((*self.RETRIES, None)):
            try:
                await asyncio.wait_for(channel.send(post.content, allowed_mentions=post.allowed), 30)
                self.sent += 1
                self._broken.discard(post.channel_id)
                return
            except (discord.NotFound, discord.Forbidden) as exc:
                if post.channel_id not in self._broken:
                    self._broken.add(post.channel_id)
                    log.error(
                        "Cannot post in channel %s (%s): check that it exists and that the bot may send "
                        "messages there; dropped a %s",
                        post.channel_id,
                        exc.text,
                        post.what,
                    )
                return
            except (discord.HTTPException, TimeoutError) as exc:
                if pause is None:
                    log.warning("Gave up posting a %s after %d tries (%s)", post.what, attempt + 1, exc)
                    return
                await asyncio.sleep(pause)


class PresenceLine:
    """The bot's presence: how many of the servers with a card run, at most one change every 15 s."""

    EVERY = 15.0

    def __init__(
        self, client: discord.Client, *, clock: Callable[[], float] = time.monotonic, every: float = EVERY
    ) -> None:
        self.client, self.clock, self.every = client, clock, every
        self.shown: str | None = None
        self._wanted: str | None = None
        self._last = float("-inf")
        self._later: asyncio.TimerHandle | None = None

    @staticmethod
    def text(running: int, total: int) -> str:
        return f"{running}/{total} servers running"

    def update(self, running: int, total: int) -> None:
        """Ask for the line; it is changed now, or as soon as 15 s have passed since the last change."""
        self._wanted = self.text(running, total)
        if self._wanted == self.shown:
            return
        wait = self._last + self.every - self.clock()
        if wait <= 0:
            self._apply()
        elif self._later is None:
            self._later = asyncio.get_running_loop().call_later(wait, self._apply)

    def _apply(self) -> None:
        self._later = None
        if self._wanted is None or self._wanted == self.shown or self.client.ws is None:
            return
        self.shown, self._last = self._wanted, self.clock()
        activity = discord.Activity(type=discord.ActivityType.watching, name=self.shown)
        task = asyncio.get_running_loop().create_task(self._send(activity))
        task.add_done_callback(lambda t: t.exception() if not t.cancelled() else None)

    async def _send(self, activity: discord.Activity) -> None:
        try:
            await self.client.change_presence(activity=activity)
        except (ConnectionError, discord.DiscordException) as exc:
            log.debug("Could not change the presence: %s", exc)


class Alerting:
    """Down/up alerts and the audit trail, as the configuration asks (both optional)."""

    def __init__(
        self,
        client: discord.Client,
        *,
        guild_id: int,
        alert_channel_id: int | None,
        alert_mention: str | None,
        alert_after: float,
        audit_channel_id: int | None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.guild_id = client, guild_id
        self.alert_channel_id, self.audit_channel_id = alert_channel_id, audit_channel_id
        self.alert_mention = alert_mention
        self.clock, self.wall_clock = clock, wall_clock
        self.tracker = OutageTracker(alert_after) if alert_channel_id is not None else None
        self.notifier = Notifier(client, guild_id)
        self._mention_warned = False

    def seen(self, server_id: str, name: str, state: str) -> None:
        if self.tracker is not None:
            self._announce(self.tracker.observe(server_id, name, state, self.clock()))

    def tick(self) -> None:
        if self.tracker is not None:
            for outage in self.tracker.tick(self.clock()):
                self._announce(outage)

    def intend(self, server_id: str) -> None:
        if self.tracker is not None:
            self.tracker.intend(server_id, self.clock())

    def _announce(self, event: Outage | Recovery | None) -> None:
        if isinstance(event, Outage):
            since = self.wall_clock() - (self.clock() - event.since)
            role = self._mention_role()
            allowed = discord.AllowedMentions(everyone=False, users=False, roles=[role] if role else False)
            mention = f"<@&{role.id}>" if role else ""
            log.info("Alert: %s %s", event.server_id, DOWN_WORDS[event.kind])
            self.notifier.post(self.alert_channel_id, down_text(event, since, mention), allowed, "down alert")
        elif isinstance(event, Recovery):
            log.info("Alert: %s is running again after %s", event.server_id, format_duration(event.down_for))
            self.notifier.post(
                self.alert_channel_id, up_text(event), discord.AllowedMentions.none(), "up alert"
            )

    def _mention_role(self) -> discord.Object | None:
        """ALERT_MENTION as a role of the served guild (by id, else by name, case-blind)."""
        if not self.alert_mention:
            return None
        guild = self.client.get_guild(self.guild_id)
        roles = guild.roles if guild is not None else []
        wanted = self.alert_mention
        role = next((r for r in roles if str(r.id) == wanted), None) or next(
            (r for r in roles if r.name.casefold() == wanted.casefold()), None
        )
        if role is None or role.is_default():
            if not self._mention_warned:
                self._mention_warned = True
                log.warning(
                    "ALERT_MENTION %r is no role of the Discord server; alerts mention nobody", wanted
                )
            return None
        return discord.Object(id=role.id)

    def audit(
        self, user_id: int, user_name: str, action: str, server_id: str, name: str, outcome: str
    ) -> None:
        """One INFO line, and one message in the audit channel when it is set."""
        log.info("Audit: %s (%s) pressed %s on %s: %s", user_name, user_id, action, server_id, outcome)
        text = audit_text(user_id, action, name, outcome)
        self.notifier.post(self.audit_channel_id, text, discord.AllowedMentions.none(), "audit message")
