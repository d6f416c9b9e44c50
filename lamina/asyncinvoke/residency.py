"""Which queued events are held in memory: bounded, with the rest read back from disk in id order.

At most MAX_RESIDENT_EVENTS (or MAX_RESIDENT_BYTES) events are held; beyond that new events are only in
`queue.db` and are read back, oldest first, as the backlog drains. Start-up recovery is the same read-back: the
dispatcher starts "spilled" and reads the whole queue back through here.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from lamina.asyncinvoke.events import QueuedEvent
from lamina.asyncinvoke.queue_store import EventQueueStore

MAX_RESIDENT_EVENTS = 100_000
MAX_RESIDENT_BYTES = 256 * 1024 * 1024
REFILL_BATCH = 2000
_log = logging.getLogger("lamina.asyncinvoke")


class Residency:
    def __init__(
        self,
        store: EventQueueStore,
        ready: Callable[[QueuedEvent], None],
        wait: Callable[[QueuedEvent, float], None],
    ) -> None:
        """`ready(event)` / `wait(event, until)`: hand an event read back from disk to scheduling."""
        self._store = store
        self._ready = ready
        self._wait = wait
        self.events = 0
        self.bytes = 0
        #: Every event with an id up to this one is in memory or finished; later ones may be on disk only.
        self._loaded_through = 0
        self._spilled = True  # until start-up recovery has read the queue back
        self._refilling: asyncio.Task[None] | None = None
        self._memory_freed = asyncio.Event()

    def admit(self, event: QueuedEvent) -> bool:
        """Hold a new event in memory if it fits (True), else leave it to the read-back (False)."""
        if not self._spilled and not self._full():
            self.hold(event)
            self._loaded_through = event.id
            return True
        self._spilled = True
        self.start_refill()
        return False

    def hold(self, event: QueuedEvent) -> None:
        self.events += 1
        self.bytes += len(event.payload)

    def release(self, event: QueuedEvent) -> None:
        self.events -= 1
        self.bytes -= len(event.payload)
        if self.events <= MAX_RESIDENT_EVENTS // 2 and self.bytes <= MAX_RESIDENT_BYTES // 2:
            self._memory_freed.set()

    def start_refill(self) -> None:
        if self._refilling is None or self._refilling.done():
            self._refilling = asyncio.create_task(self._refill())

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._refilling

    def _full(self) -> bool:
        return self.events >= MAX_RESIDENT_EVENTS or self.bytes >= MAX_RESIDENT_BYTES

    async def _refill(self) -> None:
        """Read events that are only on disk back into memory, oldest first, as memory allows."""
        while self._spilled:
            if self.events > MAX_RESIDENT_EVENTS // 2 or self.bytes > MAX_RESIDENT_BYTES // 2:
                self._memory_freed.clear()
                await self._memory_freed.wait()
                continue
            assigned = self._store.last_id
            try:
                events = await self._store.read_after(self._loaded_through, REFILL_BATCH)
            except Exception:  # noqa: BLE001 - a failed read is retried; the events stay on disk
                _log.exception("reading the event queue failed")
                await asyncio.sleep(1.0)
                continue
            for event in events:
                self.hold(event)
                self._loaded_through = event.id
                if event.not_before > time.time():
                    self._wait(event, event.not_before)
                else:
                    self._ready(event)
            if len(events) < REFILL_BATCH:
                # The read ran after every insert with an id up to `assigned`: all of those are loaded now.
                self._loaded_through = max(self._loaded_through, assigned)
                if self._store.last_id == assigned:
                    self._spilled = False
