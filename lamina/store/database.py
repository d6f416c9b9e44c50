"""The one place SQLite stores open their database: WAL, NORMAL sync, a lock per connection.

WAL with synchronous=NORMAL survives `kill -9` of the server at any moment (a write either committed or did
not). Each store keeps its own connection to the data directory's `lamina.db` and creates its own tables.
"""
from __future__ import annotations

import sqlite3
import threading
from pathlib import Path


class SqliteDatabase:
    """Base for the SQLite stores: `_db` (autocommit; use BEGIN IMMEDIATE for multi-statement writes) and `_lock`."""

    def __init__(self, path: Path, schema: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(schema)

    def close(self) -> None:
        with self._lock:
            self._db.close()
