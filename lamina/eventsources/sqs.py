"""The SQS poller of one mapping: long-poll the queue, gather a batch, invoke, delete what succeeded.

AWS's rules, as Lambda's SQS poller applies them:
- ReceiveMessage long-polls (WaitTimeSeconds 20, at most 10 messages a call); with a batching window the poller keeps
  receiving until BatchSize messages or the window (from the first message) is over.
- Messages are deleted (DeleteMessageBatch) only after the function succeeded. A function error leaves the whole
  batch on the queue: it becomes visible after the queue's visibility timeout, so the queue's redrive policy counts
  the receive and moves it to its dead-letter queue in the end.
- With ReportBatchItemFailures the answer's `batchItemFailures` stay and the rest is deleted; an invalid answer
  fails the whole batch (batch_response.py). On a FIFO queue a message group stops at its first failure: the later
  messages of that group stay too, so the group stays in order.
- Throttles and platform errors retry the batch (invoker.py), not counted as failures.
- A disabled or deleted mapping stops polling at once (the long poll is abandoned; messages it still brings are made
  visible again) and finishes a batch already being invoked.
"""
from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable, TypeVar
from concurrent.futures import Executor

from lamina.eventsources.batch_response import read_batch_item_failures
from lamina.eventsources.invoker import BatchInvoker, wait_or_stop
from lamina.eventsources.results import ResultRecorder
from lamina.eventsources.sqs_client import MAX_WAIT_SECONDS, SQS_BATCH_LIMIT, SqsError, SqsQueue
from lamina.eventsources.sqs_event import event_payload
from lamina.model.event_source_mapping import EventSourceMapping

REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"
#: How long a poller waits before polling again after SQS refused or could not be reached (doubling up to the cap).
ERROR_BACKOFF_SECONDS = 1.0
ERROR_BACKOFF_CAP_SECONDS = 30.0
#: How often a mapping whose function is gone looks again.
NO_FUNCTION_RECHECK_SECONDS = 1.0
#: A throttled batch is retried until this long before its messages become visible again.
VISIBILITY_MARGIN_SECONDS = 1.0
_log = logging.getLogger("lamina.eventsources.sqs")
T = TypeVar("T")
Message = dict[str, Any]


class SqsPoller:
    def __init__(
        self,
        mapping: EventSourceMapping,
        queue: SqsQueue,
        invoker: BatchInvoker,
        results: ResultRecorder,
        executor: Executor,
        stop: asyncio.Event,
    ) -> None:
        self._mapping = mapping
        self._queue = queue
        self._invoker = invoker
        self._results = results
        self._executor = executor
        self._stop = stop
        self._visibility_timeout: int | None = None

    async def run(self) -> None:
        """Poll until the stop event is set; SQS errors are recorded and retried with back-off."""
        backoff = ERROR_BACKOFF_SECONDS
        while not self._stop.is_set():
            if not self._invoker.target_exists(self._mapping):
                await wait_or_stop(self._stop, NO_FUNCTION_RECHECK_SECONDS)
                continue
            try:
                await self.poll_once()
            except SqsError as error:
                await self._results.problem(error.problem)
                await wait_or_stop(self._stop, backoff)
                backoff = min(ERROR_BACKOFF_CAP_SECONDS, backoff * 2)
                continue
            backoff = ERROR_BACKOFF_SECONDS

    async def poll_once(self) -> None:
        """One round: gather a batch (maybe none) and process it."""
        if self._visibility_timeout is None:
            self._visibility_timeout = await self._blocking(self._queue.visibility_timeout)
        batch = await self._gather()
        if batch:
            await self._process(batch)
        else:
            await self._results.ok()

    # -- gathering ---------------------------------------------------------------------------------------------------
    async def _gather(self) -> list[Message]:
        """Up to BatchSize messages: one long poll, then more within the batching window, if there is one."""
        size = self._mapping.batch_size
        window = self._mapping.maximum_batching_window_in_seconds or 0
        batch = await self._receive(min(SQS_BATCH_LIMIT, size), MAX_WAIT_SECONDS)
        if not batch or window <= 0:
            return batch
        deadline = time.monotonic() + window
        while len(batch) < size and not self._stop.is_set():
            remaining = int(deadline - time.monotonic())
            if remaining < 1:
                break
            batch += await self._receive(min(SQS_BATCH_LIMIT, size - len(batch)), min(MAX_WAIT_SECONDS, remaining))
        return batch

    async def _receive(self, max_messages: int, wait_seconds: int) -> list[Message]:
        """One ReceiveMessage, abandoned when the poller stops meanwhile (what it still brings goes back at once)."""
        received = asyncio.get_running_loop().run_in_executor(
            self._executor, self._queue.receive, max_messages, wait_seconds
        )
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({received, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if received.done():
            return received.result()
        received.add_done_callback(self._release_late)
        return []

    def _release_late(self, received: asyncio.Future[list[Message]]) -> None:
        if received.cancelled() or received.exception() is not None or not received.result():
            return
        try:
            self._executor.submit(self._release_quietly, received.result())
        except RuntimeError:
            pass  # the server is stopping: the messages come back after their visibility timeout

    def _release_quietly(self, messages: list[Message]) -> None:
        try:
            self._queue.release(messages)
        except SqsError as error:
            _log.warning("%s: could not release %d messages: %s", self._queue.arn, len(messages), error)

    # -- processing --------------------------------------------------------------------------------------------------
    async def _process(self, batch: list[Message]) -> None:
        received_at = time.monotonic()
        visibility = self._visibility_timeout or 30
        payload = event_payload(batch, self._queue.arn, self._queue.region)
        give_up_at = received_at + visibility - VISIBILITY_MARGIN_SECONDS
        outcome = await self._invoker.invoke(self._mapping, payload, self._stop, give_up_at)
        if outcome is None:
            if self._stop.is_set() or not self._invoker.target_exists(self._mapping):
                await self._blocking(self._release_quietly, batch)  # nobody will process them here: back at once
            return
        if outcome.function_error is not None:
            return  # the whole batch becomes visible again after the visibility timeout
        done = self._succeeded(batch, outcome.payload)
        if done:
            await self._blocking(self._queue.delete, done)
        await self._results.ok()

    def _succeeded(self, batch: list[Message], answer: bytes) -> list[Message]:
        """The messages to delete after the function returned `answer`."""
        if REPORT_BATCH_ITEM_FAILURES not in (self._mapping.function_response_types or ()):
            return batch
        verdict = read_batch_item_failures(answer, {message["MessageId"] for message in batch})
        if verdict.failed is None:
            return []
        failed_groups: set[str] = set()
        done = []
        for message in batch:
            group = (message.get("Attributes") or {}).get("MessageGroupId")
            if message["MessageId"] in verdict.failed or (group is not None and group in failed_groups):
                if group is not None:
                    failed_groups.add(group)
                continue
            done.append(message)
        return done

    async def _blocking(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, call, *args)
