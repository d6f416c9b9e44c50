"""How many delivery workers a function's asynchronous backlog gets (the scaling rule, without I/O).

Enough to drain what is queued in about a second at the function's own measured duration (not the server's time,
which grows when the host is busy and would feed back into ever more environments), grown by one per scaling
interval, and shrunk by throttles. A worker is added only while the function, not Lamina, takes most of each
delivery (for a function that returns at once, more environments only add cold starts) and while the host has idle
CPU (a CPU-bound backlog on a saturated host drains no faster with more environments); the first 2 x CPU-count
workers are added without these conditions. While a burst of Event invokes is being acknowledged, no worker is
added.
"""
from __future__ import annotations

import math
import os
from collections import deque

from lamina.asyncinvoke.events import QueuedEvent
from lamina.model.keys import FunctionKey

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


class FunctionQueue:
    """One function's ready events, its delivery workers and what scaling needs to know about it."""

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


def should_add_worker(
    queue: FunctionQueue, now: float, *, accepting_burst: bool, host_idle: float, max_workers: int,
    reserved: int | None,
) -> bool:
    """Whether `queue` (with ready events) gets one more worker now (`now`: time.monotonic())."""
    if now < queue.throttled_until or now - queue.last_scaled < SCALE_INTERVAL_SECONDS:
        return False
    if accepting_burst:  # no cold starts while a burst is being acknowledged
        return False
    if queue.workers >= FREE_WORKERS and (not queue.function_bound or host_idle < MIN_IDLE_CPU_SHARE):
        return False
    if now - queue.ready[0].ready_since < SCALE_INTERVAL_SECONDS:
        return False
    duration = queue.duration if queue.duration is not None else INITIAL_DURATION_SECONDS
    target = math.ceil(len(queue.ready) * duration / DRAIN_TARGET_SECONDS)
    limit = max_workers if reserved is None else min(max_workers, reserved)
    return queue.workers < max(1, min(target, limit))
