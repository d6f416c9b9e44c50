"""Where an asynchronous event's result goes: OnSuccess / OnFailure destinations and the dead-letter queue.

Success sends a record to OnSuccess; failure (retries exhausted, too old) sends one to OnFailure and the event to
the DLQ. The event leaves the queue only once its result has been sent (a restart before that sends it again).
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, Coroutine

from lamina.asyncinvoke.destinations import Destinations
from lamina.asyncinvoke.events import EventState, QueuedEvent
from lamina.asyncinvoke.records import SUCCESS, invocation_record
from lamina.control.event_invoke import EventInvokeConfig
from lamina.model.arns import LATEST
from lamina.model.function import FunctionConfig

_log = logging.getLogger("lamina.asyncinvoke")


class OutcomeRouter:
    def __init__(
        self,
        destinations: Destinations,
        finish: Callable[[QueuedEvent], None],
        track: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        """`finish(event)`: the event leaves the queue; `track(coroutine)`: run a send as a dispatcher task."""
        self._destinations = destinations
        self._finish = finish
        self._track = track

    def qualified_arn(self, event: QueuedEvent) -> str:
        return event.key.arn(event.qualifier or LATEST)

    def succeed(self, event: QueuedEvent, settings: EventInvokeConfig) -> None:
        if settings.on_success is None:
            self._finish(event)
            return
        arn = self.qualified_arn(event)
        record = invocation_record(event, arn, SUCCESS)
        self._finish_after(event, self._destinations.send_record(settings.on_success, record, arn))

    def fail(self, event: QueuedEvent, config: FunctionConfig, settings: EventInvokeConfig, condition: str) -> None:
        sends = []
        if settings.on_failure is not None:
            arn = self.qualified_arn(event)
            record = invocation_record(event, arn, condition)
            sends.append(self._destinations.send_record(settings.on_failure, record, arn))
        if config.dead_letter_target:
            sends.append(self._destinations.send_dead_letter(config.dead_letter_target, event))
        if not sends:
            _log.debug("event %s failed (%s) with no destination: dropped", event.request_id, condition)
            self._finish(event)
            return
        self._finish_after(event, asyncio.gather(*sends))

    def _finish_after(self, event: QueuedEvent, sending: Awaitable[Any]) -> None:
        event.state = EventState.FINISHING

        async def finish() -> None:
            try:
                await sending
            except Exception:  # noqa: BLE001 - a destination failure must not keep the event forever
                _log.exception("event %s: sending its result failed", event.request_id)
            self._finish(event)

        self._track(finish())
