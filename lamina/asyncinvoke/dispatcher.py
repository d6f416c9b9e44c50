"""Accepting asynchronous events and delivering them: workers, retries, back-off, destinations.

`enqueue` returns once the event is durable (the caller then answers 202). Each function has a ready queue and
a few delivery workers that invoke it through the normal invocation service, so async events share the
function's environments and concurrency limits with synchronous invokes. The number of workers follows the
backlog: enough to drain what is queued in about a second at the function's own measured duration (not the
server's time, which grows when the host is busy and would feed back into ever more environments), grown by one
per scaling interval, and shrunk by throttles. A worker is added only while the function, not Lamina, takes
most of each delivery (for a function that returns at once, more environments only add cold starts) and while
the host has idle CPU (a CPU-bound backlog on a saturated host drains no faster with more environments); the
first 2 x CPU-count workers are added without these conditions. Under a burst of Event invokes, acknowledging
has priority: the workers slow down (never stop) until the burst passes, and the backlog drains afterwards.

Outcomes, as on AWS:
- a throttle (429) or a platform failure puts the event back with exponential back-off; it is not an attempt;
- a function error is retried up to MaximumRetryAttempts, after `retry_base` then 2 x `retry_base` seconds;
- an event older than MaximumEventAgeInSeconds, or whose next retry would be, goes to the failure path;
- success sends a record to OnSuccess; failure sends one to OnFailure and the event to the DLQ.

Memory stays bounded: at most MAX_RESIDENT_EVENTS (or MAX_RESIDENT_BYTES) events are held in memory; beyond
that new events are only on disk and are read back in id order as the backlog drains. Start-up recovery is the
same read-back.
"""
from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import os
import time
from collections import deque
from typing import Any, Awaitable, Callable, Coroutine

from lamina.asyncinvoke.destinations import Destinations
from lamina.asyncinvoke.events import AttemptResult, EventState, QueuedEvent
from lamina.asyncinvoke.host_cpu import HostCpu
from lamina.asyncinvoke.queue_store import EventQueueStore
from lamina.asyncinvoke.records import EVENT_AGE_EXCEEDED, RETRIES_EXHAUSTED, SUCCESS, invocation_record
from lamina.aws.client import AwsClient
from lamina.model.arns import LATEST, FunctionRef, function_arn
from lamina.control.event_invoke import EventInvokeConfig, EventInvokeConfigService
from lamina.control.functions import FunctionService
from lamina.model.function import FunctionConfig
from lamina.errors import LambdaError, TooManyRequestsException
from lamina.invoke.service import InvocationService

MAX_RESIDENT_EVENTS = 100_000
MAX_RESIDENT_BYTES = 256 * 1024 * 1024
REFILL_BATCH = 2000
#: How often worker counts are reconsidered, and the backlog age below which no worker is added.
SCALE_INTERVAL_SECONDS = 0.05
#: Workers are sized to drain the backlog in about this long.
DRAIN_TARGET_SECONDS = 1.0
#: Workers are added only while the function's own time is at least this share of a delivery.
FUNCTION_BOUND_SHARE = 0.5
#: ... and while at least this share of the host's CPU time was idle over the last scaling interval.
MIN_IDLE_CPU_SHARE = 0.25
#: Up to this many workers per function are added without those two conditions.
FREE_WORKERS = 2 * (os.cpu_count() or 1)
#: Assumed duration of a function not measured yet.
INITIAL_DURATION_SECONDS = 0.1
#: While this many acknowledgements are waiting for their commit, acceptance has priority over delivery: a worker
#: waits for the burst to pass, but never longer than ACCEPT_PRIORITY_MAX_WAIT before its next delivery.
ACCEPT_PRESSURE = 8
ACCEPT_PRIORITY_MAX_WAIT = 0.1
#: Throttle/platform back-off starts at retry_base / 60 (1 s by default) and stops doubling at 300 times that.
THROTTLE_BACKOFF_FRACTION = 1 / 60
THROTTLE_BACKOFF_CAP = 300
_log = logging.getLogger("lamina.asyncinvoke")

FunctionKey = tuple[str, str]


class _FunctionQueue:
    """One function's ready events and its delivery workers."""

    __slots__ = ("key", "ready", "workers", "last_scaled", "duration", "cycle", "backoff", "throttled_until")

    def __init__(self, key: FunctionKey) -> None:
        self.key = key
        self.ready: deque[QueuedEvent] = deque()
        self.workers = 0
        self.last_scaled = 0.0
        self.duration: float | None = None  # the function's own time per invocation (EWMA, seconds)
        self.cycle: float | None = None  # a worker's time per delivery, Lamina's part included
        self.backoff = 0.0
        self.throttled_until = 0.0

    def record(self, duration: float, cycle: float) -> None:
        if self.duration is None or self.cycle is None:
            self.duration, self.cycle = duration, cycle
        else:
            self.duration = 0.8 * self.duration + 0.2 * duration
            self.cycle = 0.8 * self.cycle + 0.2 * cycle

    @property
    def function_bound(self) -> bool:
        if self.duration is None or self.cycle is None:
            return True
        return self.duration >= FUNCTION_BOUND_SHARE * self.cycle


class AsyncInvoker:
    def __init__(
        self,
        store: EventQueueStore,
        functions: FunctionService,
        invocations: InvocationService,
        settings: EventInvokeConfigService,
        aws: AwsClient,
        *,
        account: str,
        retry_base_seconds: float,
        max_workers_per_function: int,
        reserved_concurrency: Callable[[str, str], int | None],
    ) -> None:
        self._store = store
        self._functions = functions
        self._invocations = invocations
        self._settings = settings
        self._destinations = Destinations(aws, self.enqueue)
        self._account = account
        self._retry_base = retry_base_seconds
        self._throttle_base = retry_base_seconds * THROTTLE_BACKOFF_FRACTION
        self._max_workers = max_workers_per_function
        self._reserved = reserved_concurrency
        self._host_cpu = HostCpu()
        self._host_idle = 1.0
        self._queues: dict[FunctionKey, _FunctionQueue] = {}
        self._backlogged: set[_FunctionQueue] = set()
        self._waiting: list[tuple[float, int, QueuedEvent]] = []
        self._sequence = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()
        self._resident_events = 0
        self._resident_bytes = 0
        #: Every event with an id up to this one is in memory or finished; later ones may be on disk only.
        self._loaded_through = 0
        self._spilled = True  # until start-up recovery has read the queue back
        self._refilling: asyncio.Task[None] | None = None
        self._memory_freed = asyncio.Event()
        self._wake = asyncio.Event()
        self._timer: asyncio.Task[None] | None = None
        self._stopping = False
        self._accepting = 0
        self._calm = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------------------------------
    async def start(self) -> None:
        self._store.start(asyncio.get_running_loop())
        self._timer = asyncio.create_task(self._run_timer())
        self._start_refill()

    async def stop(self) -> None:
        """Stop delivering; whatever has not finished stays in the queue for the next start."""
        self._stopping = True
        tasks = [task for task in (self._timer, self._refilling, *self._tasks) if task is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._store.close()

    # -- accepting -------------------------------------------------------------------------------------------------
    async def enqueue(self, region: str, name: str, qualifier: str | None, request_id: str, payload: bytes) -> None:
        """Store the event durably; when this returns, the caller may acknowledge it."""
        event = QueuedEvent(self._store.next_id(), region, name, qualifier, request_id, payload, time.time())
        resident = not self._spilled and not self._memory_full()
        if resident:
            self._hold(event)
            self._loaded_through = event.id
        else:
            self._spilled = True
            self._start_refill()
        self._accepting += 1
        try:
            await self._store.append(event)
        except BaseException:
            if resident:
                self._release(event)
            raise
        finally:
            self._accepting -= 1
            if self._accepting < ACCEPT_PRESSURE:
                self._calm.set()
        if resident:
            self._make_ready(event)

    # -- memory accounting -----------------------------------------------------------------------------------------
    def _memory_full(self) -> bool:
        return self._resident_events >= MAX_RESIDENT_EVENTS or self._resident_bytes >= MAX_RESIDENT_BYTES

    def _hold(self, event: QueuedEvent) -> None:
        self._resident_events += 1
        self._resident_bytes += len(event.payload)

    def _release(self, event: QueuedEvent) -> None:
        self._resident_events -= 1
        self._resident_bytes -= len(event.payload)
        if self._resident_events <= MAX_RESIDENT_EVENTS // 2 and self._resident_bytes <= MAX_RESIDENT_BYTES // 2:
            self._memory_freed.set()

    def _start_refill(self) -> None:
        if self._refilling is None or self._refilling.done():
            self._refilling = asyncio.create_task(self._refill())

    async def _refill(self) -> None:
        """Read events that are only on disk back into memory, oldest first, as memory allows."""
        while self._spilled:
            if self._resident_events > MAX_RESIDENT_EVENTS // 2 or self._resident_bytes > MAX_RESIDENT_BYTES // 2:
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
                self._hold(event)
                self._loaded_through = event.id
                if event.not_before > time.time():
                    self._wait(event, event.not_before)
                else:
                    self._make_ready(event)
            if len(events) < REFILL_BATCH:
                # The read ran after every insert with an id up to `assigned`: all of those are loaded now.
                self._loaded_through = max(self._loaded_through, assigned)
                if self._store.last_id == assigned:
                    self._spilled = False

    # -- scheduling ------------------------------------------------------------------------------------------------
    def _make_ready(self, event: QueuedEvent) -> None:
        event.state = EventState.READY
        event.ready_since = time.monotonic()
        key = (event.region, event.name)
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = _FunctionQueue(key)
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

    def _spawn(self, queue: _FunctionQueue) -> None:
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

    def _scale(self, queue: _FunctionQueue) -> None:
        if not queue.ready:
            self._backlogged.discard(queue)
            return
        now = time.monotonic()
        if now < queue.throttled_until or now - queue.last_scaled < SCALE_INTERVAL_SECONDS:
            return
        if self._accepting >= ACCEPT_PRESSURE:  # no cold starts while a burst is being acknowledged
            return
        if queue.workers >= FREE_WORKERS and (not queue.function_bound or self._host_idle < MIN_IDLE_CPU_SHARE):
            return
        if now - queue.ready[0].ready_since < SCALE_INTERVAL_SECONDS:
            return
        duration = queue.duration if queue.duration is not None else INITIAL_DURATION_SECONDS
        target = math.ceil(len(queue.ready) * duration / DRAIN_TARGET_SECONDS)
        reserved = self._reserved(*queue.key)
        limit = self._max_workers if reserved is None else min(self._max_workers, reserved)
        target = max(1, min(target, limit))
        if queue.workers < target:
            self._spawn(queue)
            queue.last_scaled = now

    # -- delivering ------------------------------------------------------------------------------------------------
    async def _work(self, queue: _FunctionQueue) -> None:
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

    async def _deliver(self, event: QueuedEvent, queue: _FunctionQueue) -> bool:
        """One attempt. False when this worker should stop (throttled while others keep going)."""
        event.state = EventState.RUNNING
        try:
            config = self._functions.resolve(event.region, FunctionRef(event.name), event.qualifier, routed=True)
        except LambdaError:
            _log.warning("dropping event %s: %s is gone", event.request_id, self._qualified_arn(event))
            self._finish(event)
            return True
        settings = self._settings.settings(event.region, event.name, event.qualifier)
        if time.time() - event.enqueued_at >= settings.max_event_age_seconds:
            self._fail(event, config, settings, EVENT_AGE_EXCEEDED)
            return True
        if self._reserved(event.region, event.name) == 0:
            self._fail(event, config, settings, RETRIES_EXHAUSTED)
            return True
        started = time.monotonic()
        try:
            outcome = await self._invocations.invoke(
                config,
                event.request_id,
                event.payload or b"{}",
                function_arn(event.region, self._account, event.name, event.qualifier),
            )
        except TooManyRequestsException:
            event.state = EventState.READY
            queue.ready.appendleft(event)
            queue.backoff = min(max(self._throttle_base, queue.backoff * 2), self._throttle_base * THROTTLE_BACKOFF_CAP)
            queue.throttled_until = time.monotonic() + queue.backoff
            return queue.workers <= 1
        except Exception as error:  # noqa: BLE001 - a platform failure: try again later, not an attempt
            event.platform_failures += 1
            delay = self._throttle_base * min(2 ** (event.platform_failures - 1), THROTTLE_BACKOFF_CAP)
            _log.warning("event %s: platform error (%s), retrying in %.1f s", event.request_id, error, delay)
            self._wait(event, time.time() + delay)
            return True
        queue.backoff = 0.0
        queue.record(outcome.duration_ms / 1000, time.monotonic() - started)
        event.attempts += 1
        event.platform_failures = 0
        event.last_result = AttemptResult(config.version, outcome.function_error, outcome.payload)
        if outcome.function_error is None:
            self._succeed(event, settings)
        elif event.attempts > settings.retry_attempts:
            self._fail(event, config, settings, RETRIES_EXHAUSTED)
        else:
            due = time.time() + self._retry_base * 2 ** (event.attempts - 1)
            if due - event.enqueued_at >= settings.max_event_age_seconds:
                self._fail(event, config, settings, EVENT_AGE_EXCEEDED)
            else:
                event.not_before = due
                self._store.reschedule(event)
                self._wait(event, due)
        return True

    # -- outcomes --------------------------------------------------------------------------------------------------
    def _qualified_arn(self, event: QueuedEvent) -> str:
        return function_arn(event.region, self._account, event.name, event.qualifier or LATEST)

    def _succeed(self, event: QueuedEvent, settings: EventInvokeConfig) -> None:
        if settings.on_success is None:
            self._finish(event)
            return
        arn = self._qualified_arn(event)
        record = invocation_record(event, arn, SUCCESS)
        self._finish_after(event, self._destinations.send_record(settings.on_success, record, arn))

    def _fail(self, event: QueuedEvent, config: FunctionConfig, settings: EventInvokeConfig, condition: str) -> None:
        sends = []
        if settings.on_failure is not None:
            arn = self._qualified_arn(event)
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
        """The event leaves the queue once its result has been sent (a restart before that sends it again)."""
        event.state = EventState.FINISHING

        async def finish() -> None:
            try:
                await sending
            except Exception:  # noqa: BLE001 - a destination failure must not keep the event forever
                _log.exception("event %s: sending its result failed", event.request_id)
            self._finish(event)

        self._track(finish())

    def _finish(self, event: QueuedEvent) -> None:
        event.state = EventState.DONE
        self._store.remove(event.id)
        self._release(event)
