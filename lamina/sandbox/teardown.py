"""The thread that tears sandboxes down, so the event loop never waits for a kill, a reap, an rmdir or an unmount.

A teardown is an attempt (SandboxProcess.try_destroy) retried with back-off until it reports done: one environment
whose processes are slow to exit (a fork bomb dying, a task in uninterruptible sleep) never holds up the others,
and nothing sleeps on the event loop.
"""
from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

log = logging.getLogger(__name__)

FIRST_RETRY_S = 0.001
MAX_RETRY_S = 1.0
#: A teardown still unfinished after this long is reported once.
SLOW_TEARDOWN_S = 10.0


@dataclass(order=True)
class _Job:
    due: float
    seq: int
    name: str = field(compare=False)
    attempt: Callable[[], bool] = field(compare=False)
    on_done: Callable[[], None] = field(compare=False)
    submitted: float = field(compare=False)
    delay: float = field(compare=False, default=FIRST_RETRY_S)
    failed: bool = field(compare=False, default=False)
    slow: bool = field(compare=False, default=False)


class TeardownThread:
    """Runs teardowns on one daemon thread, started with the first one."""

    def __init__(self) -> None:
        self._jobs: list[_Job] = []
        self._seq = itertools.count()
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None

    def submit(self, name: str, attempt: Callable[[], bool], on_done: Callable[[], None]) -> None:
        """Call `attempt` on the teardown thread until it returns True, then `on_done` (on that thread too)."""
        now = time.monotonic()
        with self._changed:
            heapq.heappush(self._jobs, _Job(now, next(self._seq), name, attempt, on_done, now))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lamina-teardown", daemon=True)
                self._thread.start()
            self._changed.notify()

    def _run(self) -> None:
        while True:
            with self._changed:
                while not self._jobs or self._jobs[0].due > time.monotonic():
                    self._changed.wait(self._jobs[0].due - time.monotonic() if self._jobs else None)
                job = heapq.heappop(self._jobs)
            if self._attempt(job):
                try:
                    job.on_done()
                except Exception:  # noqa: BLE001 - e.g. the event loop already closed at exit
                    log.exception("teardown of %s: completion callback failed", job.name)
                continue
            job.due = time.monotonic() + job.delay
            job.delay = min(job.delay * 2, MAX_RETRY_S)
            with self._changed:
                heapq.heappush(self._jobs, job)

    @staticmethod
    def _attempt(job: _Job) -> bool:
        """One try; an error is logged once per teardown and tried again (the processes may still be alive)."""
        try:
            done = job.attempt()
        except Exception:  # noqa: BLE001 - retried with back-off
            if not job.failed:
                log.exception("teardown of %s failed; retrying", job.name)
            job.failed = True
            done = False
        if not done and not job.slow and time.monotonic() - job.submitted > SLOW_TEARDOWN_S:
            job.slow = True
            log.warning("teardown of %s unfinished after %.0f s; still retrying", job.name, SLOW_TEARDOWN_S)
        return done
