"""Accepting asynchronous events and delivering them: the dispatcher that composes the parts.

`enqueue` returns once the event is durable (the caller then answers 202). Each function has a ready queue and
a few delivery workers that invoke it through the normal invocation service, so async events share the
function's environments and concurrency limits with synchronous invokes. Under a burst of Event invokes,
acknowledging has priority: the workers slow down (never stop) until the burst passes, and the backlog drains
afterwards. One job per module:
- `residency.py`: which events are in memory (bounded) and the read-back from disk (start-up recovery too);
- `scheduling.py`: a function's queue and how many workers its backlog gets;
- `retry_policy.py`: back-off, retries, event age, and which failures are the platform's;
- `outcomes.py`: destinations and the dead-letter queue;
- this module: accepting, the timer, the workers and one delivery attempt.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from concurrent.futures import Executor
from typing import Any, Callable, Coroutine

from lamina.asyncinvoke.destinations import Destinations
from lamina.asyncinvoke.events import AttemptResult, EventState, QueuedEvent
from lamina.asyncinvoke.host_cpu import HostCpu
from lamina.asyncinvoke.outcomes import OutcomeRouter
from lamina.asyncinvoke.queue_store import EventQueueStore
from lamina.asyncinvoke.records import EVENT_AGE_EXCEEDED, RETRIES_EXHAUSTED
from lamina.asyncinvoke.residency import Residency
from lamina.asyncinvoke.retry_policy import PLATFORM_FAILURES, RetryPolicy
from lamina.asyncinvoke.scheduling import SCALE_INTERVAL_SECONDS, FunctionQueue, should_add_worker
from lamina.aws.client import AwsClient
from lamina.control.event_invoke import EventInvokeConfigService
from lamina.control.functions import FunctionService
from lamina.errors import LambdaError, TooManyRequestsException
from lamina.invoke.service import InvocationService
from lamina.model.arns import FunctionRef
from lamina.model.keys import FunctionKey
from lamina.supervisor import supervised

#: While this many acknowledgements are waiting for their commit, acceptance has priority over delivery: a worker
#: waits for the burst to pass, but never longer than ACCEPT_PRIORITY_MAX_WAIT before its next delivery.
ACCEPT_PRESSURE = 8
ACCEPT_PRIORITY_MAX_WAIT = 0.1
_log = logging.getLogger("lamina.asyncinvoke")


class AsyncInvoker:
    def __init__(
        self,
        store: EventQueueStore,
        functions: FunctionService,
        invocations: InvocationService,
        settings: EventInvokeConfigService,
        aws: AwsClient,
        *,
        retry_base_seconds: float,
        max_workers_per_function: int,
        reserved_concurrency: Callable[[FunctionKey], int | None],
        destination_executor: Executor | None = None,
    ) -> None:
        self._store = store
        self._functions = functions
        self._invocations = invocations
        self._settings = settings
        self._retry = RetryPolicy(retry_base_seconds)
        self._max_workers = max_workers_per_function
        self._reserved = reserved_concurrency
        self._host_cpu = HostCpu()
        self._host_idle = 1.0
        self._queues: dict[FunctionKey, FunctionQueue] = {}
        self._backlogged: set[FunctionQueue] = set()
        self._waiting: list[tuple[float, int, QueuedEvent]] = []
        self._sequence = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self._residency = Residency(store, self._make_ready, self._wait)
        self._outcomes = OutcomeRouter(
            Destinations(aws, self.enqueue, destination_executor), self._finish, self._track
        )
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._stopping = False
        self._accepting = 0
        self._calm = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._store.start(asyncio.get_running_loop())
        self._timer = asyncio.create_task(supervised("async-invoke timer", self._run_timer))
        self._residency.start_refill()

    async def stop(self) -> None:
        """Stop delivering; whatever has not finished stays in the queue for the next start."""
        self._stopping = True
        tasks = [task for task in (self._timer, self._residency.task, *self._tasks) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._store.close()

    # -- accepting -------------------------------------------------------------------------------------------------
    async def enqueue(self, function: FunctionKey, qualifier: str | None, request_id: str, payload: bytes) -> None:
        """Store the event durably; when this returns, the caller may acknowledge it."""
        event = QueuedEvent(self._store.next_id(), *function, qualifier, request_id, payload, time.time())
        resident = self._residency.admit(event)
        self._accepting += 1
        try:
            await self._store.append(event)
        except BaseException:
            if resident:
                self._residency.release(event)
            raise
        finally:
            self._accepting -= 1
            if self._accepting < ACCEPT_PRESSURE:
                self._calm.set()
        if resident:
            self._make_ready(event)

    # -- scheduling ------------------------------------------------------------------------------------------------
    def _make_ready(self, event: QueuedEvent) -> None:
        event.state = EventState.READY
        event.ready_since = time.monotonic()
        key = event.key
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = FunctionQueue(key)
        queue.ready.append(event)
        if queue.workers == 0:
            self._spawn(queue)
        elif queue not in self._backlogged:
            self._backlogged.add(queue)
            self._wake.set()

    def _wait(self, event: QueuedEvent, until: float) -> None:
        event.state = EventState.WAITING
        event.not_before = until
        heapq.heappush(self._waiting, (until, next(self._sequence), event))
        if self._waiting[0][2] is event:
            self._wake.set()

    def _spawn(self, queue: FunctionQueue) -> None:
        queue.workers += 1
        self._track(self._work(queue))

    def _track(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_timer(self) -> None:
        """Moves due retries to their ready queues and adds workers where backlogs persist."""
        while True:
            now = time.time()
            while self._waiting and self._waiting[0][0] <= now:
                self._make_ready(heapq.heappop(self._waiting)[2])
            if self._backlogged:
                self._host_idle = self._host_cpu.idle_share()
            for queue in list(self._backlogged):
                self._scale(queue)
            timeout = self._waiting[0][0] - now if self._waiting else None
            if self._backlogged:
                timeout = min(timeout, SCALE_INTERVAL_SECONDS) if timeout is not None else SCALE_INTERVAL_SECONDS
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), timeout)
            except asyncio.TimeoutError:
                pass

    def _scale(self, queue: FunctionQueue) -> None:
        if not queue.ready:
            self._backlogged.discard(queue)
            return
        now = time.monotonic()
        if should_add_worker(
            queue, now, accepting_burst=self._accepting >= ACCEPT_PRESSURE, host_idle=self._host_idle,
            max_workers=self._max_workers, reserved=self._reserved(queue.key),
        ):
            self._spawn(queue)
            queue.last_scaled = now

    # -- delivering ------------------------------------------------------------------------------------------------
    async def _work(self, queue: FunctionQueue) -> None:
        try:
            while queue.ready:
                pause = queue.throttled_until - time.monotonic()
                if pause > 0:
                    await asyncio.sleep(pause)
                    continue
                if self._accepting >= ACCEPT_PRESSURE:
                    await self._yield_to_acceptance()
                    if not queue.ready:
                        break
                event = queue.ready.popleft()
                if not await self._deliver(event, queue):
                    break
        finally:
            queue.workers -= 1
            if queue.workers == 0 and not self._stopping:
                if queue.ready:
                    self._spawn(queue)
                else:
                    self._backlogged.discard(queue)
                    if self._queues.get(queue.key) is queue:
                        del self._queues[queue.key]

    async def _yield_to_acceptance(self) -> None:
        self._calm.clear()
        try:
            await asyncio.wait_for(self._calm.wait(), ACCEPT_PRIORITY_MAX_WAIT)
        except asyncio.TimeoutError:
            pass

    async def _deliver(self, event: QueuedEvent, queue: FunctionQueue) -> bool:
        """One attempt. False when this worker should stop (throttled while others keep going)."""
        event.state = EventState.RUNNING
        function = event.key
        try:
            config = self._functions.resolve(function.scope, FunctionRef(event.name), event.qualifier, routed=True)
        except LambdaError:
            _log.warning("dropping event %s: %s is gone", event.request_id, self._outcomes.qualified_arn(event))
            self._finish(event)
            return True
        settings = self._settings.settings(function, event.qualifier)
        if self._retry.too_old(event.enqueued_at, time.time(), settings.max_event_age_seconds):
            self._outcomes.fail(event, config, settings, EVENT_AGE_EXCEEDED)
            return True
        if self._reserved(function) == 0:
            self._outcomes.fail(event, config, settings, RETRIES_EXHAUSTED)
            return True
        started = time.monotonic()
        try:
            outcome = await self._invocations.invoke(
                config,
                event.request_id,
                event.payload or b"{}",
                function.arn(event.qualifier),
            )
        except TooManyRequestsException:
            event.state = EventState.READY
            queue.ready.appendleft(event)
            queue.backoff = self._retry.throttle_backoff(queue.backoff)
            queue.throttled_until = time.monotonic() + queue.backoff
            return queue.workers <= 1
        except PLATFORM_FAILURES as error:  # try again later; not an attempt
            event.platform_failures += 1
            delay = self._retry.platform_delay(event.platform_failures)
            _log.warning("event %s: platform error (%s), retrying in %.1f s", event.request_id, error, delay)
            self._wait(event, time.time() + delay)
            return True
        except Exception:  # noqa: BLE001 - a bug: retrying would repeat it for ever
            _log.exception("event %s: Lamina failed delivering it (a bug); not retried", event.request_id)
            self._outcomes.fail(event, config, settings, RETRIES_EXHAUSTED)
            return True
        queue.backoff = 0.0
        queue.record(outcome.duration_ms / 1000, time.monotonic() - started)
        event.attempts += 1
        event.platform_failures = 0
        event.last_result = AttemptResult(config.version, outcome.function_error, outcome.payload)
        if outcome.function_error is None:
            self._outcomes.succeed(event, settings)
        elif event.attempts > settings.retry_attempts:
            self._outcomes.fail(event, config, settings, RETRIES_EXHAUSTED)
        else:
            due = self._retry.function_error_due(event.attempts, time.time())
            if self._retry.too_old(event.enqueued_at, due, settings.max_event_age_seconds):
                self._outcomes.fail(event, config, settings, EVENT_AGE_EXCEEDED)
            else:
                event.not_before = due
                self._store.reschedule(event)
                self._wait(event, due)
        return True

    def _finish(self, event: QueuedEvent) -> None:
        event.state = EventState.DONE
        self._store.remove(event.id)
        self._residency.release(event)
