"""The board: one record per server the bot knows, the update cycle, and every card's post and edit.

The board decides; cards render; a ``CardSink`` carries the result to Discord. The sink is the
board's only way to Discord (post, edit, retire, delete a message), so the board runs in tests
without a gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Literal, Protocol

import discord

from ptero.cards import Card, StatusSnapshot, build_card, removed_embed
from ptero.config import Settings
from ptero.panel import PanelServer, PterodactylAPI, PterodactylError, ServerResources
from ptero.rules import TrackedState, display_state, update_reason
from ptero.store import EmbedLocation, EmbedStore
from server_metrics_graphs import ServerMetricsManager

log = logging.getLogger(__name__)

EditOutcome = Literal["edited", "unchanged", "failed", "dropped"]


class CardGone(Exception):
    """The message (or its channel) no longer exists."""


class CardRefused(Exception):
    """Discord refused the call for good (a 4xx such as a missing permission)."""

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


@dataclass(slots=True)
class CardState:
    """The message that shows a server, and what it showed when it was last edited."""

    location: EmbedLocation
    shown: TrackedState | None = None
    fingerprint: str | None = None


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
    resources: ServerResources | None = None
    fetched_at: float = float("-inf")
    failures: int = 0  # failed checks in a row
    card: CardState | None = None
    power: PowerClaim | None = None  # a power action in progress
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one render and edit at a time

    def observe(self, result: ServerResources | PterodactylError | None, now: float) -> None:
        if isinstance(result, ServerResources):
            self.resources, self.fetched_at, self.failures = result, now, 0
        elif isinstance(result, PterodactylError):
            self.failures += 1

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


@dataclass(frozen=True, slots=True)
class PostResult:
    server: PanelServer
    saved: bool  # the location was written to the store
    replaced: EmbedLocation | None  # the older card of this server, if there was one
    replaced_deleted: bool


class StatusBoard:
    def __init__(
        self,
        settings: Settings,
        api: PterodactylAPI,
        store: EmbedStore,
        metrics: ServerMetricsManager,
        sink: CardSink,
        *,
        clock: Callable[[], float] = time.monotonic,
        edit_timeout: float = 15.0,
    ) -> None:
        self.settings = settings
        self.api = api
        self.store = store
        self.metrics = metrics
        self.sink = sink
        self.clock = clock
        self.edit_timeout = edit_timeout
        self.records: dict[str, ServerRecord] = {}
        self.listed_at = float("-inf")
        self._cycle_lock = asyncio.Lock()
        # matplotlib off the event loop, in one dedicated thread: every extra rendering thread
        # keeps its own font caches and memory arenas (measured: 9 pool threads cost ~30 MB).
        self._graphs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphs")

    # -- records --------------------------------------------------------------------------------
    def load(self) -> None:
        """Read the store: one record per card, until the first listing fills in the servers."""
        self.store.load()
        for server_id, location in self.store.items():
            self._record(server_id).card = CardState(location)

    def close(self) -> None:
        self._graphs.shutdown(wait=False, cancel_futures=True)

    def _record(self, server_id: str) -> ServerRecord:
        record = self.records.get(server_id)
        if record is None:
            record = self.records[server_id] = ServerRecord(server_id)
        return record

    def tracked(self) -> list[ServerRecord]:
        """Records with a card whose server the listing knows."""
        return [r for r in self.records.values() if r.card is not None and r.server is not None]

    def listed_servers(self) -> list[PanelServer]:
        return [r.server for r in self.records.values() if r.listed and r.server is not None]

    def server(self, server_id: str) -> PanelServer | None:
        record = self.records.get(server_id)
        return record.server if record else None

    def name(self, server_id: str) -> str:
        record = self.records.get(server_id)
        return record.name if record else server_id

    def drop_card(self, server_id: str, expected: EmbedLocation | None = None) -> bool:
        """Forget a server's card (only if it is still ``expected``, when given)."""
        record = self.records.get(server_id)
        if record is None or record.card is None:
            return False
        if expected is not None and record.card.location != expected:
            return False
        self.store.remove(server_id, record.card.location)
        record.card = None
        self.metrics.remove_server(server_id)
        if not record.listed:
            del self.records[server_id]
        return True

    def drop_cards(self, matches: Callable[[EmbedLocation], bool], why: str) -> None:
        for record in list(self.records.values()):
            if record.card is not None and matches(record.card.location):
                self.drop_card(record.server_id)
                log.info("The status message of %s %s; no longer tracked", record.server_id, why)

    def known_state(self, server_id: str) -> str | None:
        """The server's state if the panel told us recently, else None."""
        record = self.records.get(server_id)
        if record is None:
            return None
        if record.server is not None and record.server.blocking_status:
            return record.server.blocking_status
        if record.resources is None:
            return None
        if self.clock() - record.fetched_at > max(60.0, 3 * self.settings.update_interval):
            return None
        return display_state(record.server, record.resources, record.failures)

    def current(self, record: ServerRecord) -> tuple[str, float, bool]:
        """(state to show, cpu, stale) from what we know now."""
        state = display_state(record.server, record.resources, record.failures)
        cpu = record.resources.cpu_absolute if record.resources else 0.0
        return state, cpu, record.failures > 0

    # -- the panel ------------------------------------------------------------------------------
    async def refresh_listing(self) -> bool:
        """Refresh the server list; False (and the old one kept) when the panel fails."""
        try:
            servers = await self.api.list_servers()
        except PterodactylError as exc:
            log.warning("Could not list the panel's servers: %s", exc)
            return False
        listed = {s.identifier for s in servers}
        for record in list(self.records.values()):
            if record.server_id not in listed:
                record.listed = False
                if record.card is None:
                    del self.records[record.server_id]  # prunes its resources, lock and claim too
        for server in servers:
            record = self._record(server.identifier)
            record.server, record.listed = server, True
        self.listed_at = self.clock()
        return True

    async def refresh_listing_briefly(self, wait: float = 5.0) -> bool:
        """Refresh the server list for someone waiting in Discord: a slow panel falls back to the cache."""
        try:
            return await asyncio.wait_for(self.refresh_listing(), wait)
        except TimeoutError:
            log.warning("The panel took more than %.0f s to list servers; using the cached list", wait)
            return False

    async def check_states(self, server_ids: Sequence[str], wait: float = 2.0) -> None:
        """Fetch states not known recently, giving up after ``wait`` s (the menu shows what it has)."""
        wanted = [sid for sid in server_ids if self.known_state(sid) is None]
        if not wanted:
            return
        try:
            results = await asyncio.wait_for(self.api.get_many_resources(wanted), wait)
        except TimeoutError:
            return
        now = self.clock()
        for sid, result in results.items():
            if sid in self.records:
                self.records[sid].observe(result, now)

    # -- the update cycle -------------------------------------------------------------------------
    async def poll(self, *, force: bool = False) -> CycleReport:
        """One pass over every card: list servers, fetch what needs fetching, edit what needs it.

        The update task calls it every interval; /refresh_embeds calls it with ``force`` (every card
        re-rendered and sent). Both take the cycle lock, so they never interleave.
        """
        async with self._cycle_lock:
            started = time.perf_counter()
            if await self.refresh_listing():
                for record in [r for r in self.records.values() if r.card is not None and not r.listed]:
                    await self._retire(record)
            tracked = self.tracked()
            polled = [r.server_id for r in tracked if r.server is not None and not r.server.blocking_status]
            results = await self.api.get_many_resources(polled)
            outcomes = await asyncio.gather(
                *(self._update(record, results.get(record.server_id), force) for record in tracked)
            )
            self.metrics.cleanup_old_servers(r.server_id for r in tracked)
            return CycleReport(
                checked=len(tracked),
                edited=outcomes.count("edited"),
                failed=outcomes.count("failed")
                + sum(isinstance(r, PterodactylError) for r in results.values()),
                dropped=outcomes.count("dropped"),
                seconds=time.perf_counter() - started,
                polled=len(polled),
            )

    async def _update(
        self, record: ServerRecord, result: ServerResources | PterodactylError | None, force: bool
    ) -> EditOutcome:
        try:
            record.observe(result, self.clock())
            if isinstance(result, PterodactylError):
                log.warning(
                    "Server %s: panel error (%s); keeping its last known data (%d failed check(s))",
                    record.server_id,
                    result,
                    record.failures,
                )
            state, cpu, stale = self.current(record)
            if not force:
                self._sample(record, state, stale)
            previous = record.card.shown if record.card else None
            if previous is not None and previous.state != state:
                record.power = None  # the panel shows the effect: allow new clicks
            if stale and previous is not None:
                cpu = previous.cpu  # stale data must not look like a CPU change
            reason = "refresh" if force else self._reason(previous, state, cpu)
            if reason is None:
                return "unchanged"
            return await self.refresh_card(record, reason=reason, force=force)
        except Exception:
            log.exception("Updating server %s failed", record.server_id)
            return "failed"

    def _reason(self, previous: TrackedState | None, state: str, cpu: float) -> str | None:
        return update_reason(
            previous,
            state,
            cpu,
            self.clock(),
            cpu_threshold=self.settings.cpu_change_threshold,
            force_interval=self.settings.force_update_interval,
        )

    def _sample(self, record: ServerRecord, state: str, stale: bool) -> None:
        """Running servers add a sample every cycle; a stopped one loses its graph."""
        server, res = record.server, record.resources
        if server is None or res is None:
            return
        if state == "running" and not stale:
            self.metrics.add_sample(
                record.server_id,
                server.name,
                res.cpu_absolute,
                res.memory_bytes / (1024 * 1024),
                cpu_limit=server.limits.cpu,
                memory_limit_mb=server.limits.memory_mb,
            )
        elif state not in ("running", "starting", "stopping", "unreachable"):
            self.metrics.remove_server(record.server_id)

    # -- cards ------------------------------------------------------------------------------------
    async def compose(self, record: ServerRecord) -> Card:
        """Render a record's card from what is known now (the one path for posting and editing)."""
        assert record.server is not None
        state, _cpu, stale = self.current(record)
        graph = None
        graphs = self.metrics.get(record.server_id)
        if state == "running" and graphs is not None and graphs.has_sufficient_data:
            loop = asyncio.get_running_loop()
            graph = await loop.run_in_executor(self._graphs, graphs.generate_combined_graph)
        return build_card(StatusSnapshot(record.server, record.resources, state, stale=stale), graph)

    async def refresh_card(self, record: ServerRecord, *, reason: str, force: bool = False) -> EditOutcome:
        """Re-render one card and edit its message, unless what it shows did not change."""
        if record.card is None or record.server is None:
            return "failed"
        async with record.lock:  # at most one edit in flight per card
            card_state = record.card
            if card_state is None:
                return "failed"
            card = await self.compose(record)
            now = self.clock()
            if not force and card_state.fingerprint == card.fingerprint:
                card_state.shown = TrackedState(card.state, card.cpu, now)
                return "unchanged"
            try:
                await asyncio.wait_for(
                    self.sink.edit(card_state.location, record.server_id, card), self.edit_timeout
                )
            except CardGone:
                log.info("Status message of %s was deleted; forgetting it", record.server_id)
                self.drop_card(record.server_id, card_state.location)
                return "dropped"
            except CardRefused as exc:
                # The message exists but we may not touch it: retry when the rules next say so.
                log.warning("No permission to edit the status message of %s: %s", record.server_id, exc.text)
                card_state.shown = TrackedState(card.state, card.cpu, now)
                return "failed"
            except (CardUnavailable, TimeoutError) as exc:
                log.warning("Editing the status message of %s failed (%s); will retry", record.server_id, exc)
                return "failed"
            log.debug("Edited %s (%s)", record.server_id, reason)
            card_state.shown = TrackedState(card.state, card.cpu, now)
            card_state.fingerprint = card.fingerprint
            return "edited"

    async def _retire(self, record: ServerRecord) -> None:
        """The server is gone from the panel: say so on its card, drop its buttons, forget it."""
        if record.card is None:
            return
        with contextlib.suppress(CardGone, CardRefused, CardUnavailable, TimeoutError):
            await asyncio.wait_for(
                self.sink.retire(record.card.location, removed_embed(record.name)), self.edit_timeout
            )
        self.drop_card(record.server_id)
        log.info(
            "Server %s disappeared from the panel; its status message is marked removed", record.server_id
        )

    async def post(self, server_id: str, channel_id: int) -> PostResult:
        """Post a server's card in a channel, replacing its older one. CardRefused if Discord refuses."""
        record = self.records.get(server_id)
        if record is None or record.server is None:
            raise KeyError(server_id)
        if not record.server.blocking_status:
            try:
                record.observe(await self.api.get_resources(server_id), self.clock())
            except PterodactylError as exc:
                record.observe(exc, self.clock())
        async with record.lock:
            card = await self.compose(record)
            location = await self.sink.post(channel_id, server_id, card)
            old = record.card.location if record.card else None
            saved = self.store.set(server_id, location)
            record.card = CardState(
                location, TrackedState(card.state, card.cpu, self.clock()), card.fingerprint
            )
        deleted = False
        if old is not None and old.message_id != location.message_id:
            try:
                await self.sink.delete(old)
                deleted = True
            except CardGone:
                pass
            except (CardRefused, CardUnavailable) as exc:
                log.warning("Could not delete the old status message of %s: %s", server_id, exc)
        return PostResult(record.server, saved, old, deleted)

    # -- power claims ----------------------------------------------------------------------------
    def power_claim(self, server_id: str) -> PowerClaim | None:
        """The power action in progress on a server, if any."""
        record = self.records.get(server_id)
        if record is None or record.power is None or record.power.until <= self.clock():
            return None
        return record.power

    def claim_power(self, server_id: str, action: str, user: str) -> None:
        """Claim the server for a power action until the panel shows its effect (or a timeout).

        Called before the first await of a click, so a simultaneous click sees the claim.
        """
        settle = max(15.0, 3 * self.settings.update_interval)
        self._record(server_id).power = PowerClaim(action, user, self.clock() + settle)

    def release_power(self, server_id: str) -> None:
        record = self.records.get(server_id)
        if record is not None:
            record.power = None
