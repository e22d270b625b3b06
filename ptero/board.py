"""The board: one record per server the bot knows, the update cycle, and every card's post and edit.

The board decides; cards render; a ``CardSink`` carries the result to Discord. The sink is the
board's only way to Discord (post, edit, retire, delete a message), so the board runs in tests
without a gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor

from ptero.cards import UNREACHABLE, Card, StatusSnapshot, build_card, inaccessible_card, removed_embed
from ptero.config import Settings
from ptero.editor import CardEditor, EditOutcome
from ptero.pacing import ChannelPacer
from ptero.panel import PanelServer, PterodactylAPI, PterodactylError, ServerResources
from ptero.records import (
    CardGone,
    CardRefused,
    CardSink,
    CardState,
    CardUnavailable,
    CycleReport,
    PostResult,
    PowerClaim,
    ServerRecord,
)
from ptero.rules import UNREACHABLE_AFTER_FAILURES, TrackedState, display_state, failure_kind, update_reason
from ptero.runtime import release_free_memory
from ptero.store import CardEntry, EmbedLocation, EmbedStore, LastAction, ShownState
from ptero.wings import LiveSource
from server_metrics_graphs import ServerMetricsGraphs, ServerMetricsManager

log = logging.getLogger(__name__)

RECHECK_ACCESS = 600.0  # how often a card the bot's panel user cannot see is checked again


def render_and_release(graphs: ServerMetricsGraphs) -> bytes | None:
    """Render in the graph thread, then hand the allocator's free pages back to the system: without it
    the process keeps ~20 MB more of freed render memory (measured with 200 renders)."""
    try:
        return graphs.generate_combined_graph()
    finally:
        release_free_memory()


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
        wall_clock: Callable[[], float] = time.time,
        edit_timeout: float = 15.0,
        pacer: ChannelPacer | None = None,
    ) -> None:
        self.settings = settings
        self.api = api
        self.store = store
        self.metrics = metrics
        self.sink = sink
        self.clock = clock
        self.wall_clock = wall_clock
        self.edit_timeout = edit_timeout
        self.editor = CardEditor(
            sink,
            self.compose,
            on_edited=lambda record, card: self._remember(record.server_id, card),
            on_gone=self._card_gone,
            clock=clock,
            edit_timeout=edit_timeout,
            pacer=pacer,
        )
        self.records: dict[str, ServerRecord] = {}
        self.listed_at = float("-inf")
        self.live: LiveSource | None = None  # the Wings sockets, when live updates are on
        self.on_state: Callable[[ServerRecord, str], None] | None = None  # every state a card's server shows
        self._live_edits: dict[str, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[EditOutcome]] = set()
        self._cycle_lock = asyncio.Lock()
        # matplotlib off the event loop, in one dedicated thread: every extra rendering thread
        # keeps its own font caches and memory arenas (measured: 9 pool threads cost ~30 MB).
        self._graphs = ThreadPoolExecutor(max_workers=1, thread_name_prefix="graphs")

    # -- records --------------------------------------------------------------------------------
    def load(self) -> None:
        """Read the store: one record per card (with what it showed), until the first listing."""
        self.store.load()
        now, wall = self.clock(), self.wall_clock()
        for server_id, _location in self.store.items():
            entry = self.store.entry(server_id)
            assert entry is not None
            card = self._record(server_id).card = CardState(entry.location, verified=False)
            if entry.shown is not None:  # the rules carry on where the previous run left them
                since = max(0.0, wall - entry.shown.edited_at)
                card.shown = TrackedState(entry.shown.state, entry.shown.cpu, now - since)
                card.fingerprint = entry.shown.fingerprint

    async def close(self) -> None:
        if self.live is not None:
            await self.live.close()
        for task in [*self._live_edits.values(), *self._background]:
            task.cancel()
        await self.editor.close()
        self.store.flush()
        self._graphs.shutdown(wait=False, cancel_futures=True)

    def _record(self, server_id: str) -> ServerRecord:
        record = self.records.get(server_id)
        if record is None:
            record = self.records[server_id] = ServerRecord(server_id)
        return record

    def tracked(self) -> list[ServerRecord]:
        """Records with a card whose server the listing knows (or that the bot may no longer see)."""
        return [r for r in self.records.values() if r.card is not None and (r.server or r.inaccessible)]

    def listed_servers(self) -> list[PanelServer]:
        return [r.server for r in self.records.values() if r.listed and r.server is not None]

    def server(self, server_id: str) -> PanelServer | None:
        """A server of the latest listing (one the bot may show), else None."""
        record = self.records.get(server_id)
        return record.server if record is not None and record.listed else None

    def name(self, server_id: str) -> str:
        record = self.records.get(server_id)
        return record.name if record else server_id

    def _remember(self, server_id: str, card: CardState) -> None:
        """Keep what the card showed in the store entry (written at the end of the cycle)."""
        if card.shown is None or card.fingerprint is None:
            return
        edited_at = self.wall_clock() - max(0.0, self.clock() - card.shown.last_forced_update)
        shown = ShownState(card.shown.state, card.shown.cpu, edited_at, card.fingerprint)
        self.store.update(server_id, shown=shown)

    def _card_gone(self, record: ServerRecord, location: EmbedLocation) -> None:
        self.drop_card(record.server_id, location)

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
        return display_state(record.server, record.resources, record.failures, record.failure)

    def current(self, record: ServerRecord) -> tuple[str, float, bool]:
        """(state to show, cpu, stale) from what we know now."""
        if record.inaccessible:
            return "inaccessible", 0.0, False
        state = display_state(record.server, record.resources, record.failures, record.failure)
        cpu = record.resources.cpu_absolute if record.resources else 0.0
        return state, cpu, record.failures > 0

    # -- the panel ------------------------------------------------------------------------------
    async def refresh_listing(self) -> bool:
        """Refresh the server list; False (and the old one kept) when the panel fails."""
        try:
            servers = await self.api.list_servers(
                scope="all" if self.settings.server_scope == "all" else "mine"
            )
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
            record.server, record.listed, record.inaccessible = server, True, False
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
            results = await asyncio.wait_for(self.api.get_many_resources(wanted, interactive=True), wait)
        except TimeoutError:
            return
        now = self.clock()
        for sid, result in results.items():
            if sid in self.records:
                self.records[sid].observe(result, now)

    async def _unlisted(self, record: ServerRecord) -> None:
        """A card whose server left the listing: removed from the panel, or only out of the bot's sight."""
        now = self.clock()
        if record.inaccessible and now - record.access_checked_at < RECHECK_ACCESS:
            return
        record.access_checked_at = now
        try:
            exists = await self.api.server_exists(
                record.server_id, record.server.uuid if record.server else None
            )
        except PterodactylError as exc:
            log.warning(
                "Could not check whether %s still exists (%s); keeping its card", record.server_id, exc
            )
            exists = True  # never delete on uncertainty
        if not exists:
            await self._retire(record)
        elif not record.inaccessible:
            record.inaccessible = True
            log.warning(
                "The bot's panel user can no longer see server %s; its card says so", record.server_id
            )

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
                    await self._unlisted(record)
            tracked = self.tracked()
            visible = [r.server for r in tracked if r.server is not None and not r.inaccessible]
            if self.live is not None:
                self.live.track(visible)
            polled = [
                s.identifier
                for s in visible
                if not s.blocking_status and not (self.live is not None and self.live.is_live(s.identifier))
            ]
            results = await self.api.get_many_resources(polled)
            outcomes = await self._edit_all(tracked, results, force)
            self.metrics.cleanup_old_servers(r.server_id for r in tracked)
            self.store.flush()
            return CycleReport(
                checked=len(tracked),
                edited=outcomes.count("edited"),
                failed=outcomes.count("failed")
                + sum(isinstance(r, PterodactylError) for r in results.values()),
                dropped=outcomes.count("dropped"),
                seconds=time.perf_counter() - started,
                polled=len(polled),
                deferred=outcomes.count("deferred"),
            )

    def _decide(
        self, record: ServerRecord, result: ServerResources | PterodactylError | None, force: bool
    ) -> str | None:
        """Take a check's result into the record; the reason to edit its card now, if any."""
        record.observe(result, self.clock())
        kind = failure_kind(result) if result is not None else None
        if kind is not None and record.failures in (1, UNREACHABLE_AFTER_FAILURES):
            # The first failure and the turn to "unreachable" are worth a line; the rest is counted.
            what = result if isinstance(result, PterodactylError) else "the panel cannot reach its node"
            log.warning(
                "Server %s: %s; %s",
                record.server_id,
                what,
                "keeping its last known data" if record.failures == 1 else "its card says unreachable",
            )
        state, cpu, stale = self.current(record)
        if self.on_state is not None and record.card is not None:
            self.on_state(record, state)
        if not force:
            self._sample(record, state, stale)
        previous = record.card.shown if record.card else None
        if previous is not None and previous.state != state:
            record.power = None  # the panel shows the effect: allow new clicks
        if stale and previous is not None:
            cpu = previous.cpu  # stale data must not look like a CPU change
        return "refresh" if force else self._reason(previous, state, cpu)

    async def _act(self, record: ServerRecord, reason: str | None, force: bool) -> EditOutcome:
        try:
            if reason is None:
                return await self._verify(record)
            return await self.refresh_card(record, reason=reason, force=force)
        except Exception:
            log.exception("Updating server %s failed", record.server_id)
            return "failed"

    async def _edit_all(
        self,
        tracked: Sequence[ServerRecord],
        results: Mapping[str, ServerResources | PterodactylError],
        force: bool,
    ) -> list[EditOutcome]:
        """Decide for every card, then edit: state changes first, so that they take the channel's first
        edit slots and reach Discord before CPU and refresh edits queue up behind Discord's pace."""
        decided: list[tuple[ServerRecord, str | None]] = []
        for record in tracked:
            try:
                decided.append((record, self._decide(record, results.get(record.server_id), force)))
            except Exception:
                log.exception("Updating server %s failed", record.server_id)
        urgent = [(r, why) for r, why in decided if why == "state changed"]
        later = [(r, why) for r, why in decided if why != "state changed"]
        outcomes = list(await asyncio.gather(*(self._act(r, why, force) for r, why in urgent)))
        outcomes += await asyncio.gather(*(self._act(r, why, force) for r, why in later))
        return outcomes + ["failed"] * (len(tracked) - len(decided))

    async def _verify(self, record: ServerRecord) -> EditOutcome:
        """A card read from the store that the rules do not edit: check once that it still exists
        (one may have been deleted while the bot was away, when nobody heard the delete event)."""
        card = record.card
        if card is None or card.verified:
            return "unchanged"
        try:
            exists = await asyncio.wait_for(self.sink.exists(card.location), self.edit_timeout)
        except TimeoutError:
            return "unchanged"  # checked again next cycle
        card.verified = True
        if exists:
            return "unchanged"
        log.info("Status message of %s was deleted while the bot was away; forgetting it", record.server_id)
        self.drop_card(record.server_id, card.location)
        return "dropped"

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
            # The reading's uptime tells a fresh reading from a cached one (bench/live_bench.py reads it).
            log.debug("Graph sample of %s: the reading at uptime %d ms", record.server_id, res.uptime_ms)
            self.metrics.add_sample(
                record.server_id,
                server.name,
                res.cpu_absolute,
                res.memory_bytes / (1024 * 1024),
                cpu_limit=server.limits.cpu,
                memory_limit_mb=server.limits.memory_mb,
            )
        elif state not in ("running", "starting", "stopping", *UNREACHABLE):
            self.metrics.remove_server(record.server_id)

    # -- what the Wings sockets report -----------------------------------------------------------
    def on_live_state(self, server_id: str, state: str) -> None:
        """A state pushed by Wings: the card follows at once (the rules otherwise as ever)."""
        record = self.records.get(server_id)
        if record is None:
            return
        old = record.resources
        if old is None:
            old = ServerResources(state, False, 0.0, 0, 0, 0, 0, 0)
        elif state == "offline":  # what Wings does when the process stops (ResourceUsage.Reset); disk stays
            old = ServerResources(state, old.is_suspended, 0.0, 0, old.disk_bytes, 0, 0, 0)
        record.observe(dataclasses.replace(old, current_state=state), self.clock())
        if self.on_state is not None and record.card is not None:
            self.on_state(record, self.current(record)[0])
        self._follow_live(record)

    def on_live_stats(self, server_id: str, resources: ServerResources) -> None:
        """Stats pushed by Wings (about once a second): kept for the next cycle's rules and graph."""
        record = self.records.get(server_id)
        if record is not None:
            record.observe(resources, self.clock())
            self._follow_live(record)

    def _follow_live(self, record: ServerRecord) -> None:
        """Edit the card now when what it shows is no longer the server's state."""
        card = record.card
        if card is None or card.shown is None:
            return
        state, _cpu, _stale = self.current(record)
        if state == card.shown.state:
            return
        record.power = None  # the effect of a power action shows: allow new clicks
        task = self._live_edits.get(record.server_id)
        if task is None or task.done():
            self._live_edits[record.server_id] = asyncio.get_running_loop().create_task(
                self._live_edit(record)
            )

    async def _live_edit(self, record: ServerRecord) -> None:
        """Edit until the card shows the latest state (a state that changes again mid-edit wins)."""
        try:
            while record.card is not None and record.card.shown is not None:
                if self.current(record)[0] == record.card.shown.state:
                    return
                outcome = await self.refresh_card(record, reason="state changed")
                if outcome != "edited" and outcome != "unchanged":
                    return  # queued for its channel, backing off, or gone: nothing more to do here
        except Exception:
            log.exception("Editing the card of %s after a live update failed", record.server_id)

    # -- cards ------------------------------------------------------------------------------------
    async def compose(self, record: ServerRecord) -> Card:
        """Render a record's card from what is known now (the one path for posting and editing)."""
        if record.inaccessible or record.server is None:
            return inaccessible_card(record.name, record.server_id)
        state, _cpu, stale = self.current(record)
        graph = None
        graphs = self.metrics.get(record.server_id)
        if state == "running" and graphs is not None and graphs.has_sufficient_data:
            loop = asyncio.get_running_loop()
            graph = await loop.run_in_executor(self._graphs, render_and_release, graphs)
        entry = self.store.entry(record.server_id)
        snapshot = StatusSnapshot(
            record.server,
            record.resources,
            state,
            stale=stale,
            failure=record.failure,
            last_action=entry.last_action if entry is not None else None,
        )
        return build_card(snapshot, graph)

    async def refresh_card(self, record: ServerRecord, *, reason: str, force: bool = False) -> EditOutcome:
        """Re-render one card and edit its message (now, or at its channel's pace), unless unchanged."""
        return await self.editor.refresh(record, reason=reason, force=force)

    async def _retire(self, record: ServerRecord) -> None:
        """The server is gone from the panel: say so on its card, drop its buttons, forget it."""
        if record.card is None:
            return
        with contextlib.suppress(CardGone, CardRefused, CardUnavailable, TimeoutError):
            await asyncio.wait_for(
                self.sink.retire(record.card.location, removed_embed(record.name)), self.edit_timeout
            )
        self.drop_card(record.server_id)
        log.info("Server %s disappeared from the panel; its card is marked removed", record.server_id)

    async def preview(self, server_id: str) -> Card:
        """A server's card as it would be posted now (for a member who may only look)."""
        record = self.records[server_id]
        await self._fetch_for_someone(record)
        return await self.compose(record)

    async def _fetch_for_someone(self, record: ServerRecord) -> None:
        if record.server is not None and not record.server.blocking_status:
            try:
                record.observe(await self.api.get_resources(record.server_id, interactive=True), self.clock())
            except PterodactylError as exc:
                record.observe(exc, self.clock())

    async def post(self, server_id: str, channel_id: int) -> PostResult:
        """Post a server's card in a channel, replacing its older one. CardRefused if Discord refuses."""
        record = self.records.get(server_id)
        if record is None or record.server is None:
            raise KeyError(server_id)
        await self._fetch_for_someone(record)
        async with record.lock:
            card = await self.compose(record)
            location = await self.sink.post(channel_id, server_id, card)
            old = record.card.location if record.card else None
            new = record.card = CardState(
                location, TrackedState(card.state, card.cpu, self.clock()), card.fingerprint
            )
            previous = self.store.entry(server_id)
            self.store.put(
                server_id, CardEntry(location, last_action=previous.last_action if previous else None)
            )
            self._remember(server_id, new)
            saved = self.store.save()  # the old card is deleted only once the new one is on disk
        deleted = False
        if old is not None and old.message_id != location.message_id and saved:
            try:
                await self.sink.delete(old)
                deleted = True
            except CardGone:
                pass
            except (CardRefused, CardUnavailable) as exc:
                log.warning("Could not delete the old card of %s: %s", server_id, exc)
        return PostResult(record.server, saved, old, deleted)

    def record_action(self, server_id: str, action: str, user_id: int, user_name: str) -> None:
        """A power action sent from the card: kept in its store entry and shown on the card."""
        record = self.records.get(server_id)
        if record is None or record.card is None or server_id not in self.store:
            return
        self.store.update(server_id, last_action=LastAction(action, user_id, user_name, self.wall_clock()))
        self.store.save()
        task = asyncio.get_running_loop().create_task(self.refresh_card(record, reason="last action"))
        self._background.add(task)  # held until done (the loop keeps only weak references)
        task.add_done_callback(self._background.discard)

    def running_counts(self) -> tuple[int, int]:
        """(servers with a card that run, servers with a card)."""
        shown = [self.current(r)[0] for r in self.tracked()]
        return shown.count("running"), len(shown)

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
