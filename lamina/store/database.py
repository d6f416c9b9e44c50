"""One SQLite database file: one connection, one lock, one `transaction()` for every write.

WAL with synchronous=NORMAL survives `kill -9` of the server at any moment (a write either committed or did
not). The server opens `lamina.db` once (`Database`) and hands it to every store that keeps tables there
(functions, versions, layers, attachments, concurrency, EventInvokeConfig): they share its connection, so several
stores' writes can be one transaction (a publish writes $LATEST, the new version and the publish mark together;
a delete drops the function's rows and its mark together) and start-up never has to repair a half-done change.

Calls block (SQLite does I/O): callers run them off the event loop, on the control-plane executor
(`lamina/executors.py`). The lock serialises the connection; it is re-entrant, so a store method called inside an
open `transaction()` joins it instead of starting its own.
"""
from __future__ import annotations

import contextlib
import sqlite3
import threading
from pathlib import Path
from typing import Iterator


class Database:
    """The shared connection of one database file (autocommit outside `transaction()`)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.RLock()
        self._depth = 0
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")

    def ensure_schema(self, schema: str) -> None:
        """Create a store's tables if absent (`CREATE TABLE IF NOT EXISTS ...` statements)."""
        with self._lock:
            self._db.executescript(schema)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT around the block; an exception leaving it rolls back everything it wrote.

        Nested calls on the same thread join the outermost transaction (only it commits or rolls back); other
        threads wait on the lock until it ends.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self._db
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")
            finally:
                self._depth = 0

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads (inside an open transaction, they see its writes)."""
        with self._lock:
            yield self._db

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SqliteDatabase:
    """Base for a store with tables in a shared `Database` (or, given a path, in its own: tests and tools)."""

    def __init__(self, database: Database | Path, schema: str) -> None:
        self._owns_database = not isinstance(database, Database)
        self._database = Database(database) if not isinstance(database, Database) else database
        self._database.ensure_schema(schema)

    def transaction(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._database.transaction()

    def _reading(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        return self._database.reading()

    def close(self) -> None:
        """Closes the database only if this store opened it; a shared one is closed by its owner."""
        if self._owns_database:
            self._database.close()
