"""The durable event queue: `queue.db` (SQLite, WAL, synchronous=FULL) written by one thread with group commit.

An Event invoke is acknowledged only after its row is committed and fsynced. Committing once per request would
cap acknowledgements at the disk's fsync rate, so every write goes through one writer thread that takes all the
operations queued since its last commit and commits them together: many concurrent acknowledgements share one
fsync. Reads that must see earlier writes (recovery, refills) go through the same thread, in order.

Each event carries the account of the function it was sent to. A queue written before events carried it is rebuilt
when opened, its events given the legacy account (the server's configured one), as `lamina.db`'s tables are
(`lamina/store/database.py`).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamina.asyncinvoke.events import AttemptResult, EventState, QueuedEvent
from lamina.store.database import migrate_account_columns

#: Operations folded into one transaction at most (bounds the latency of the first one in a huge batch).
MAX_BATCH = 20000
#: The queue's file in the data directory.
QUEUE_FILE = "queue.db"
#: Rows per multi-row statement (8 parameters each, well under SQLite's 32766).
CHUNK_ROWS = 500
_log = logging.getLogger("lamina.asyncinvoke.queue")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id           INTEGER PRIMARY KEY,
    account      TEXT NOT NULL,
    region       TEXT NOT NULL,
    name         TEXT NOT NULL,
    qualifier    TEXT,
    request_id   TEXT NOT NULL,
    payload      BLOB NOT NULL,
    enqueued_at  REAL NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    not_before   REAL NOT NULL DEFAULT 0,
    last_version TEXT,
    last_error   TEXT,
    last_payload BLOB
);
"""
_COLUMNS = (
    "id, account, region, name, qualifier, request_id, payload, enqueued_at, attempts, not_before, "
    "last_version, last_error, last_payload"
)


def _row_to_event(row: tuple[Any, ...]) -> QueuedEvent:
    event_id, account, region, name, qualifier, request_id, payload, enqueued_at, attempts, not_before = row[:10]
    last_version, last_error, last_payload = row[10:]
    last = AttemptResult(last_version, last_error, bytes(last_payload)) if last_version is not None else None
    return QueuedEvent(
        event_id, account, region, name, qualifier, request_id, bytes(payload), enqueued_at, attempts, not_before,
        last, state=EventState.READY,
    )


@dataclass(frozen=True)
class QueueStats:
    account: str | None
    region: str
    name: str
    qualifier: str | None
    depth: int
    oldest_enqueued_at: float
    retrying: int

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "Account": self.account,
            "Region": self.region,
            "FunctionName": self.name,
            "Qualifier": self.qualifier,
            "Depth": self.depth,
            "OldestEventAgeSeconds": round(max(0.0, now - self.oldest_enqueued_at), 3),
            "Retrying": self.retrying,
        }


def read_stats(path: Path) -> list[QueueStats]:
    """Depth, oldest event and retrying count per function qualifier, read-only (for `lamina queue`)."""
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        # A queue not yet rebuilt with accounts (no server has opened it since) shows its events without one.
        columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
        account = "account" if "account" in columns else "NULL"
        rows = db.execute(
            f"SELECT {account}, region, name, qualifier, COUNT(*), MIN(enqueued_at), SUM(attempts > 0) FROM events "
            f"GROUP BY {account}, region, name, qualifier ORDER BY {account}, region, name, qualifier"
        ).fetchall()
    except sqlite3.OperationalError:  # a queue file created before its table
        return []
    finally:
        db.close()
    return [QueueStats(*row) for row in rows]


class _Stop:
    pass


class EventQueueStore:
    def __init__(self, path: Path, *, legacy_account: str | None = None) -> None:
        """`legacy_account`: the account of events queued before events carried one (see the module's doc)."""
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: the WAL is fsynced at every commit, so an acknowledged event survives power loss, not only kill -9.
        self._db.execute("PRAGMA synchronous=FULL")
        migrate_account_columns(self._db, _SCHEMA, legacy_account, path)
        self._db.executescript(_SCHEMA)
        self.last_id: int = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()[0]
        self._ops: queue.SimpleQueue[tuple[Any, ...] | _Stop] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the event loop's side -------------------------------------------------------------------------------------
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="lamina-queue-writer", daemon=True)
        self._thread.start()

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def append(self, event: QueuedEvent) -> asyncio.Future[None]:
        """Queue the insert; the future completes once the row is committed (or the commit failed)."""
        assert self._loop is not None
        future: asyncio.Future[None] = self._loop.create_future()
        row = (
            event.id, event.account, event.region, event.name, event.qualifier, event.request_id, event.payload,
            event.enqueued_at,
        )
        self._ops.put(("insert", row, future))
        return future

    def remove(self, event_id: int) -> None:
        self._ops.put(("delete", (event_id,), None))

    def reschedule(self, event: QueuedEvent) -> None:
        """Persist an attempt's outcome and the retry time, so a restart neither forgets nor repeats attempts."""
        last = event.last_result
        row = (
            event.attempts,
            event.not_before,
            last.executed_version if last else None,
            last.function_error if last else None,
            last.payload if last else None,
            event.id,
        )
        self._ops.put(("update", row, None))

    def read_after(self, after_id: int, limit: int) -> asyncio.Future[list[QueuedEvent]]:
        """Events with id > after_id in id order, read after every write queued before this call."""
        assert self._loop is not None
        future: asyncio.Future[list[QueuedEvent]] = self._loop.create_future()
        self._ops.put(("read", (after_id, limit), future))
        return future

    def close(self) -> None:
        """Commit what is queued, stop the writer and close the database."""
        if self._thread is not None:
            self._ops.put(_Stop())
            self._thread.join()
            self._thread = None
        self._db.close()

    # -- the writer thread ---------------------------------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch = [self._ops.get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(self._ops.get_nowait())
                except queue.Empty:
                    break
            stopping = any(isinstance(op, _Stop) for op in batch)
            self._apply([op for op in batch if not isinstance(op, _Stop)])

    def _apply(self, batch: list[tuple[Any, ...]]) -> None:
        """One transaction: inserts, then updates, then deletes (an event's later operations come later)."""
        rows: dict[str, list[tuple[Any, ...]]] = {"insert": [], "update": [], "delete": [], "read": []}
        for kind, row, _ in batch:
            rows[kind].append(row)
        inserts = [op for op in batch if op[0] == "insert"]
        error: BaseException | None = None
        try:
            self._db.execute("BEGIN")
            # Multi-row statements: one sqlite3_step (one GIL release and re-acquisition) per chunk, not per row,
            # so the writer does not wrestle the event loop for the GIL once per event.
            for chunk in _chunks(rows["insert"]):
                self._db.execute(
                    "INSERT INTO events (id, account, region, name, qualifier, request_id, payload, enqueued_at) VALUES "
                    + ",".join(["(?,?,?,?,?,?,?,?)"] * len(chunk)),
                    [value for row in chunk for value in row],
                )
            self._db.executemany(
                "UPDATE events SET attempts=?, not_before=?, last_version=?, last_error=?, last_payload=? WHERE id=?",
                rows["update"],
            )
            for chunk in _chunks(rows["delete"]):
                self._db.execute(
                    f"DELETE FROM events WHERE id IN ({','.join(['?'] * len(chunk))})", [row[0] for row in chunk]
                )
            self._db.execute("COMMIT")
        except sqlite3.Error as failure:
            _log.error("event queue commit failed: %s", failure)
            error = failure
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error):  # the writer must outlive a full disk
                    self._db.execute("ROLLBACK")
        reads = [(op[1], op[2]) for op in batch if op[0] == "read"]
        results = [(future, self._read(*args)) for args, future in reads]
        assert self._loop is not None
        futures = [op[2] for op in inserts]
        try:
            self._loop.call_soon_threadsafe(_settle, futures, error, results)
        except RuntimeError:  # the loop is closed: nobody is waiting any more
            pass

    def _read(self, after_id: int, limit: int) -> list[QueuedEvent] | BaseException:
        try:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM events WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            ).fetchall()
        except sqlite3.Error as failure:
            return failure
        return [_row_to_event(row) for row in rows]


def _chunks(rows: list[tuple[Any, ...]]) -> list[list[tuple[Any, ...]]]:
    """Slices small enough for SQLite's limit on bound parameters (32766)."""
    return [rows[start : start + CHUNK_ROWS] for start in range(0, len(rows), CHUNK_ROWS)]


def _settle(
    futures: list[asyncio.Future[None]],
    error: BaseException | None,
    reads: list[tuple[asyncio.Future[list[QueuedEvent]], list[QueuedEvent] | BaseException]],
) -> None:
    for future in futures:
        if future.done():
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
    for future, result in reads:
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
