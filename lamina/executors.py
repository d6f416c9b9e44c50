"""The server's thread pools: every kind of blocking work has its own named, bounded executor.

Nothing slow runs on the event loop (see docs/architecture.md, "Threads, the event loop and state"). The pools
are separate so that one kind of slow work cannot starve another: a dozen 120-second S3 reads leave
TagResource its threads, a dead SQS endpoint does not hold up a code upload.

| executor | threads | runs |
|---|---|---|
| `control` (the loop's default executor, so `asyncio.to_thread` lands here) | 8 | control-plane operations: SQLite writes through the shared `lamina.db` connection, code ingest (hash, unzip; one at a time under the code store's lock) |
| `s3` | 4 | S3 GetObject of code and layers (120 s read timeout); a control thread waits for it |
| `destinations` | 4 | SQS/SNS/EventBridge sends of asynchronous results and dead letters |
| `upkeep` | 1 | storage upkeep: the space reserve, garbage collection of unreferenced code |
| `settings` | 1 | store writes of state the event loop owns (concurrency settings): one thread, so they land in order |
| `event_sources` | 16 | the event source pollers' boto3 calls (SQS ReceiveMessage long polls, deletes): one thread per poll in flight; daemon threads (`DaemonThreadPool`), so a 20-second long poll in flight does not hold up the process's exit |

`control` has more threads than `s3` can hold waiting (4), so writes always find a free thread. Dedicated threads
outside these pools: `lamina-log-writer` (logs/store.py), `lamina-queue-writer` (asyncinvoke/queue_store.py),
`lamina-teardown` (sandbox/teardown.py), `lamina-netns` (sandbox/netns.py).
"""
from __future__ import annotations

import queue
import threading
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, Callable

CONTROL_THREADS = 8
S3_THREADS = 4
DESTINATION_THREADS = 4
UPKEEP_THREADS = 1
SETTINGS_THREADS = 1
#: An SQS long poll holds its thread up to 20 s: one per enabled mapping polling at once.
EVENT_SOURCE_THREADS = 16


class Executors:
    def __init__(self) -> None:
        self.control = ThreadPoolExecutor(CONTROL_THREADS, thread_name_prefix="lamina-control")
        self.s3 = ThreadPoolExecutor(S3_THREADS, thread_name_prefix="lamina-s3")
        self.destinations = ThreadPoolExecutor(DESTINATION_THREADS, thread_name_prefix="lamina-destinations")
        self.upkeep = ThreadPoolExecutor(UPKEEP_THREADS, thread_name_prefix="lamina-upkeep")
        self.settings = ThreadPoolExecutor(SETTINGS_THREADS, thread_name_prefix="lamina-settings")
        self.event_sources = DaemonThreadPool(EVENT_SOURCE_THREADS, thread_name_prefix="lamina-event-sources")

    def close(self) -> None:
        """Stop accepting work; queued work is dropped, running work finishes on its own (threads are not waited)."""
        for pool in (self.s3, self.destinations, self.upkeep, self.settings, self.event_sources, self.control):
            pool.shutdown(wait=False, cancel_futures=True)


class DaemonThreadPool(Executor):
    """A bounded pool of daemon threads, for calls that may block long and whose result nobody needs once the server
    stops (an SQS long poll waits up to 20 s): ThreadPoolExecutor's threads are joined at exit, these are not.
    Threads start on demand, up to `max_workers`, and an idle one is reused first (as ThreadPoolExecutor does)."""

    def __init__(self, max_workers: int, thread_name_prefix: str) -> None:
        self._max_workers = max_workers
        self._prefix = thread_name_prefix
        self._work: queue.SimpleQueue[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]] | None] = (
            queue.SimpleQueue()
        )
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._shut_down = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        with self._lock:
            if self._shut_down:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: Future[Any] = Future()
            self._work.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max_workers:
                thread = threading.Thread(
                    target=self._run, name=f"{self._prefix}_{len(self._threads)}", daemon=True
                )
                thread.start()
                self._threads.append(thread)
            return future

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            future, fn, args, kwargs = item
            if future.set_running_or_notify_cancel():
                try:
                    result = fn(*args, **kwargs)
                except BaseException as error:  # noqa: BLE001 - handed to the caller, as ThreadPoolExecutor does
                    future.set_exception(error)
                else:
                    future.set_result(result)
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._shut_down = True
            if cancel_futures:
                while True:
                    try:
                        item = self._work.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            for _ in self._threads:
                self._work.put(None)
        if wait:
            for thread in self._threads:
                thread.join()
