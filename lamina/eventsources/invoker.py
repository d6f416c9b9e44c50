"""One batch through the invocation service, as a poller needs it: the mapping's function resolved each time,
throttles (429) and platform failures retried with back-off without counting as the batch's failure.

Why its own module: every source retries the same way, and only the outcome (the function's answer or its error)
is the source's to judge.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid as uuids

from lamina.control.functions import FunctionService
from lamina.errors import LambdaError, PlatformError, ResourceNotFoundException, TooManyRequestsException
from lamina.invoke.service import InvocationService
from lamina.model.arns import FunctionRef
from lamina.model.event_source_mapping import EventSourceMapping
from lamina.model.function import FunctionConfig
from lamina.model.invocation import InvocationOutcome

#: Platform failures (Lamina's, not the function's): retried, as the async dispatcher does (asyncinvoke/retry_policy.py).
PLATFORM_FAILURES: tuple[type[BaseException], ...] = (PlatformError, LambdaError, OSError)
FIRST_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 10.0
_log = logging.getLogger("lamina.eventsources")


class BatchInvoker:
    def __init__(self, functions: FunctionService, invocations: InvocationService) -> None:
        self._functions = functions
        self._invocations = invocations

    def target_exists(self, mapping: EventSourceMapping) -> bool:
        """The function (and the version or alias) the mapping names still exists: polling is pointless otherwise."""
        try:
            self._resolve(mapping)
        except ResourceNotFoundException:
            return False
        return True

    def _resolve(self, mapping: EventSourceMapping) -> FunctionConfig:
        return self._functions.resolve(
            mapping.scope, FunctionRef(mapping.function.name), mapping.qualifier, routed=True
        )

    async def invoke(
        self, mapping: EventSourceMapping, payload: bytes, stop: asyncio.Event, give_up_at: float
    ) -> InvocationOutcome | None:
        """The function's outcome for `payload`; None when the poller is stopping, the function is gone, or
        throttles and platform failures lasted until `give_up_at` (monotonic; the records are visible again by then)."""
        backoff = FIRST_BACKOFF_SECONDS
        while not stop.is_set():
            try:
                config = self._resolve(mapping)
            except ResourceNotFoundException:
                return None
            try:
                return await self._invocations.invoke(config, str(uuids.uuid4()), payload, mapping.function_arn)
            except TooManyRequestsException:
                pass
            except PLATFORM_FAILURES as error:
                _log.warning("event source mapping %s: platform error (%s), retrying in %.1f s",
                             mapping.uuid, error, backoff)
            if time.monotonic() + backoff >= give_up_at:
                return None
            await wait_or_stop(stop, backoff)
            backoff = min(MAX_BACKOFF_SECONDS, backoff * 2)
        return None


async def wait_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds`, or less when `stop` is set meanwhile; True when stopping."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except asyncio.TimeoutError:
        return False
    return True
