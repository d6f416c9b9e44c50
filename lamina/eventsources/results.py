"""A mapping's LastProcessingResult as its poller sees it, written to the mapping service only when it changes.

Why: `record_result` writes the store, so it runs on a control thread (never on the loop), and a poller that
succeeds batch after batch should not hop threads for nothing. "OK" is written only after a PROBLEM was. SQS
mappings never show LastProcessingResult on AWS (recorded: not even while their queue fails), so for them
(`shown=False`) a problem goes only to the server's log, once each time it changes.
"""
from __future__ import annotations

import asyncio
import logging

from lamina.control.event_source_mappings import EventSourceMappingService

OK = "OK"
_log = logging.getLogger("lamina.eventsources")


class ResultRecorder:
    def __init__(
        self, service: EventSourceMappingService, uuid: str, current: str | None, *, shown: bool = True
    ) -> None:
        self._service = service
        self._uuid = uuid
        self._last = current
        self._shown = shown

    async def ok(self) -> None:
        if self._last is not None and self._last != OK:
            await self._record(OK)

    async def problem(self, text: str) -> None:
        result = f"PROBLEM: {text}"
        if result != self._last:
            _log.warning("event source mapping %s: %s", self._uuid, result)
            await self._record(result)

    async def _record(self, result: str) -> None:
        self._last = result
        if self._shown:
            await asyncio.to_thread(self._service.record_result, self._uuid, result)
