"""The editor: how a card's new content reaches its Discord message, at Discord's pace.

An edit goes out at once when its channel has a slot; otherwise it waits in that channel's queue,
which one task per channel drains as slots come (the update cycle never waits for Discord's pace).
Queued edits render when their turn comes, so they send the latest data. A card Discord refuses
for good backs off; a deleted one is reported to the board.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Literal

from ptero.cards import Card
from ptero.pacing import ChannelPacer
from ptero.records import CardGone, CardRefused, CardSink, CardState, CardUnavailable, ServerRecord
from ptero.rules import TrackedState
from ptero.store import EmbedLocation

log = logging.getLogger(__name__)

EditOutcome = Literal["edited", "unchanged", "failed", "dropped", "deferred"]


class CardEditor:
    def __init__(
        self,
        sink: CardSink,
        compose: Callable[[ServerRecord], Awaitable[Card]],
        *,
        on_edited: Callable[[ServerRecord, CardState], None],
        on_gone: Callable[[ServerRecord, EmbedLocation], None],
        clock: Callable[[], float] = time.monotonic,
        edit_timeout: float = 15.0,
        pacer: ChannelPacer | None = None,
    ) -> None:
        self.sink = sink
        self.compose = compose
        self.on_edited, self.on_gone = on_edited, on_gone
        self.clock = clock
        self.edit_timeout = edit_timeout
        self.pacer = pacer or ChannelPacer()
        self._queues: dict[int, dict[str, tuple[ServerRecord, str, bool]]] = {}
        self._drains: dict[int, asyncio.Task[None]] = {}

    @property
    def queued(self) -> int:
        return sum(len(queue) for queue in self._queues.values())

    async def refresh(self, record: ServerRecord, *, reason: str, force: bool = False) -> EditOutcome:
        """Edit the card now if its channel has a slot, else queue it (\"deferred\")."""
        card_state = record.card
        if card_state is None:
            return "failed"
        if card_state.backoff.waiting(self.clock()):
            return "deferred"
        channel = card_state.location.channel_id
        slot = self.pacer.try_take(channel)
        if slot is None:
            self._enqueue(channel, record, reason, force)
            return "deferred"
        outcome = await self._edit(record, reason, force)
        if outcome == "unchanged":
            self.pacer.give_back(channel, slot)
        return outcome

    def _enqueue(self, channel: int, record: ServerRecord, reason: str, force: bool) -> None:
        queue = self._queues.setdefault(channel, {})
        urgent = reason == "state changed"
        if record.server_id in queue:
            urgent = urgent or queue[record.server_id][1] == "state changed"
            force = force or queue[record.server_id][2]
        queue[record.server_id] = (record, "state changed" if urgent else reason, force)
        drain = self._drains.get(channel)
        if drain is None or drain.done():
            self._drains[channel] = asyncio.get_running_loop().create_task(self._drain(channel))

    async def _drain(self, channel: int) -> None:
        queue = self._queues[channel]
        while queue:
            await self.pacer.take(channel)
            if not queue:
                break
            # State changes first; otherwise oldest first.
            server_id = next(
                (sid for sid, (_r, why, _f) in queue.items() if why == "state changed"), next(iter(queue))
            )
            record, reason, force = queue.pop(server_id)
            try:
                if record.card is not None and record.card.location.channel_id == channel:
                    await self._edit(record, reason, force)
            except Exception:
                log.exception("Editing the card of %s failed", record.server_id)

    async def close(self) -> None:
        for task in self._drains.values():
            task.cancel()
        for task in self._drains.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._drains.clear()
        self._queues.clear()

    async def _edit(self, record: ServerRecord, reason: str, force: bool) -> EditOutcome:
        """Render the card from the latest data and edit its message, unless it shows the same."""
        async with record.lock:  # at most one edit in flight per card
            card_state = record.card
            if card_state is None:
                return "failed"
            card = await self.compose(record)
            if not force and card_state.fingerprint == card.fingerprint:
                card_state.shown = TrackedState(card.state, card.cpu, self.clock())
                self.on_edited(record, card_state)
                return "unchanged"
            try:
                await asyncio.wait_for(
                    self.sink.edit(card_state.location, record.server_id, card), self.edit_timeout
                )
            except CardGone:
                log.info("Status message of %s was deleted; forgetting it", record.server_id)
                self.on_gone(record, card_state.location)
                return "dropped"
            except CardRefused as exc:
                delay = card_state.backoff.failed(self.clock())
                logger = log.warning if card_state.backoff.step == 1 else log.debug
                logger(
                    "Discord refused to edit the card of %s (%s); trying again in %.0f s, then less often",
                    record.server_id,
                    exc,
                    delay,
                )
                return "failed"
            except (CardUnavailable, TimeoutError) as exc:
                log.warning(
                    "Editing the card of %s failed (%s); will retry", record.server_id, str(exc) or "timeout"
                )
                return "failed"
            if card_state.backoff.succeeded():
                log.info("The card of %s can be edited again", record.server_id)
            log.debug("Edited %s (%s)", record.server_id, reason)
            card_state.shown = TrackedState(card.state, card.cpu, self.clock())
            card_state.fingerprint, card_state.verified = card.fingerprint, True
            self.on_edited(record, card_state)
            return "edited"
