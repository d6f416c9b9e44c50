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

`control` has more threads than `s3` can hold waiting (4), so writes always find a free thread. Dedicated threads
outside these pools: `lamina-log-writer` (logs/store.py), `lamina-queue-writer` (asyncinvoke/queue_store.py),
`lamina-teardown` (sandbox/teardown.py), `lamina-netns` (sandbox/netns.py).
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

CONTROL_THREADS = 8
S3_THREADS = 4
DESTINATION_THREADS = 4
UPKEEP_THREADS = 1
SETTINGS_THREADS = 1


class Executors:
    def __init__(self) -> None:
        self.control = ThreadPoolExecutor(CONTROL_THREADS, thread_name_prefix="lamina-control")
        self.s3 = ThreadPoolExecutor(S3_THREADS, thread_name_prefix="lamina-s3")
        self.destinations = ThreadPoolExecutor(DESTINATION_THREADS, thread_name_prefix="lamina-destinations")
        self.upkeep = ThreadPoolExecutor(UPKEEP_THREADS, thread_name_prefix="lamina-upkeep")
        self.settings = ThreadPoolExecutor(SETTINGS_THREADS, thread_name_prefix="lamina-settings")

    def close(self) -> None:
        """Stop accepting work; queued work is dropped, running work finishes on its own (threads are not waited)."""
        for pool in (self.s3, self.destinations, self.upkeep, self.settings, self.control):
            pool.shutdown(wait=False, cancel_futures=True)
