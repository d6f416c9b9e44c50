"""The pollers of every mapping: one supervised asyncio task per Enabled mapping, started and stopped as the mapping
service announces changes.

Why this shape: the mapping service calls its listeners under its lock from a control thread, so the listener only
hands the UUID to the loop (`call_soon_threadsafe`); the loop then reads the mapping's current record and makes the
pollers match it, which makes every announcement idempotent and their order harmless. A mapping is polled while it
is Enabled (and while it is Updating from Enabled, with the settings it had; the new ones take over once it settles).
Disabling or deleting it sets the poller's stop event: the poll in flight is abandoned at once, a batch being invoked
finishes. A clean stop of the server cancels every poller.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Awaitable, Callable

from lamina.control.event_source_mappings import EventSourceMappingService
from lamina.model.event_source_mapping import EventSourceMapping, SourceKind, State
from lamina.supervisor import supervised

#: `make_poller(mapping, stop)`: the poll loop of a mapping (returning once `stop` is set), or None when Lamina has no
#: poller for its source yet.
PollerFactory = Callable[[EventSourceMapping, asyncio.Event], Callable[[], Awaitable[None]] | None]
_log = logging.getLogger("lamina.eventsources")


def _settings(mapping: EventSourceMapping) -> EventSourceMapping:
    """What a running poller depends on: the mapping without its state, results and tags."""
    return mapping.replace(
        state=State.ENABLED, state_transition_reason="", last_modified=0.0, last_processing_result=None, tags={}
    )


@dataclass
class _Running:
    settings: EventSourceMapping
    stop: asyncio.Event
    task: asyncio.Task[None]


class PollerManager:
    def __init__(self, mappings: EventSourceMappingService, factories: dict[SourceKind, PollerFactory]) -> None:
        self._mappings = mappings
        self._factories = factories
        self._running: dict[str, _Running] = {}
        self._stopping: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._unsupported: set[str] = set()

    def start(self) -> None:
        """Listen for changes, and start the pollers of the mappings that are Enabled now (on the loop)."""
        self._loop = asyncio.get_running_loop()
        self._mappings.on_change(self._heard)
        for mapping in self._mappings.mappings():
            self._apply(mapping.uuid)

    async def stop(self) -> None:
        """Cancel every poller and wait for them to end."""
        self._loop = None
        tasks = [running.task for running in self._running.values()] + list(self._stopping)
        self._running.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def polled(self) -> list[str]:
        """The UUIDs being polled now."""
        return list(self._running)

    def _heard(self, uuid: str, mapping: EventSourceMapping | None) -> None:
        """The mapping service's listener (a control thread, under its lock): hand the change to the loop."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed: stopping anyway
                loop.call_soon_threadsafe(self._apply, uuid)

    def _apply(self, uuid: str) -> None:
        """Make the pollers of `uuid` match its current record (on the loop)."""
        if self._loop is None:
            return
        mapping = self._mappings.mapping(uuid)
        running = self._running.get(uuid)
        wanted = mapping is not None and mapping.enabled and mapping.state in (State.ENABLED, State.UPDATING)
        if running is not None and (
            not wanted or (mapping is not None and mapping.state is State.ENABLED and running.settings != _settings(mapping))
        ):
            self._retire(uuid)
            running = None
        if wanted and running is None:
            assert mapping is not None
            self._launch(mapping)

    def _launch(self, mapping: EventSourceMapping) -> None:
        stop = asyncio.Event()
        factory = self._factories.get(mapping.kind)
        poll = factory(mapping, stop) if factory is not None else None
        if poll is None:
            if mapping.uuid not in self._unsupported:
                self._unsupported.add(mapping.uuid)
                _log.warning("event source mapping %s: no %s poller yet; not polled", mapping.uuid, mapping.kind.value)
            return

        async def until_stopped() -> None:
            await poll()
            if stop.is_set():
                raise asyncio.CancelledError  # stopped: ends `supervised` as a cancellation does

        task = asyncio.create_task(supervised(f"event source mapping {mapping.uuid}", until_stopped))
        self._running[mapping.uuid] = _Running(_settings(mapping), stop, task)
        _log.info("event source mapping %s: polling %s", mapping.uuid, mapping.event_source_arn)

    def _retire(self, uuid: str) -> None:
        """Ask the poller to stop; it ends on its own once a batch being invoked is through."""
        running = self._running.pop(uuid)
        running.stop.set()
        self._stopping.add(running.task)
        running.task.add_done_callback(self._stopping.discard)
        _log.info("event source mapping %s: polling stopped", uuid)
