"""One SQLite database file: one connection, one lock, one `transaction()` for every write.

WAL with synchronous=NORMAL survives `kill -9` of the server at any moment (a write either committed or did
not). The server opens `lamina.db` once (`Database`) and hands it to every store that keeps tables there
(functions, versions, layers, attachments, concurrency, EventInvokeConfig): they share its connection, so several
stores' writes can be one transaction (a publish writes $LATEST, the new version and the publish mark together;
a delete drops the function's rows and its mark together) and start-up never has to repair a half-done change.

Calls block (SQLite does I/O): callers run them off the event loop, on the control-plane executor
(`lamina/executors.py`). The lock serialises the connection; it is re-entrant, so a store method called inside an
open `transaction()` joins it instead of starting its own.

Every row of a table keyed by function or layer carries its account (part of the primary key, beside the region).
Tables written before that have no `account` column: when a store opens one, `ensure_schema` rebuilds it in one
transaction (create the new table, copy every row with the legacy account, drop the old one, rename the new one), so
a data directory of an earlier Lamina keeps working. The legacy account is the server's configured one
(`Database(path, legacy_account=...)`); a database opened without it refuses such a table instead of guessing.
"""
from __future__ import annotations

import contextlib
import re
import sqlite3
import threading
from pathlib import Path
from typing import Iterator

_CREATE_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+)\s*\(", re.IGNORECASE)
_ACCOUNT_COLUMN = re.compile(r"^\s*account\s", re.MULTILINE)


class LegacySchema(Exception):
    """A table predates the account in every key, and no account was given to migrate its rows to."""


def table_definitions(schema: str) -> dict[str, str]:
    """The `CREATE TABLE IF NOT EXISTS name (...)` statements of a schema, by table name."""
    definitions = {}
    for statement in schema.split(";"):
        found = _CREATE_TABLE.search(statement)
        if found is not None:
            definitions[found.group(1)] = statement.strip()
    return definitions


def migrate_account_columns(db: sqlite3.Connection, schema: str, legacy_account: str | None, source: object) -> list[str]:
    """Rebuild every table of `schema` that declares an `account` column but exists without one (written before rows
    carried their account), all in one transaction: each gets the new definition and its rows, with `legacy_account`.
    `db` is in autocommit mode and no transaction is open. Returns the tables rebuilt."""
    stale = []
    for table, definition in table_definitions(schema).items():
        if _ACCOUNT_COLUMN.search(definition) is None:
            continue
        columns = [row[1] for row in db.execute(f"PRAGMA table_info({table})")]
        if columns and "account" not in columns:
            stale.append((table, definition, columns))
    if not stale:
        return []
    if legacy_account is None:
        raise LegacySchema(
            f"{source}: table {stale[0][0]} was written before rows carried their account; open it with the account "
            "its rows belong to"
        )
    db.execute("BEGIN IMMEDIATE")
    try:
        for table, definition, columns in stale:
            staging = f"{table}__with_account"
            db.execute(definition.replace(f"EXISTS {table}", f"EXISTS {staging}", 1))
            names = ", ".join(columns)
            db.execute(f"INSERT INTO {staging} (account, {names}) SELECT ?, {names} FROM {table}", (legacy_account,))
            db.execute(f"DROP TABLE {table}")
            db.execute(f"ALTER TABLE {staging} RENAME TO {table}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return [table for table, _, _ in stale]


class Database:
    """The shared connection of one database file (autocommit outside `transaction()`)."""

    def __init__(self, path: Path, *, legacy_account: str | None = None) -> None:
        """`legacy_account`: the account of rows written before every row carried one (see the module's doc)."""
        self.path = path
        self.legacy_account = legacy_account
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._lock = threading.RLock()
        self._depth = 0
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")

    def ensure_schema(self, schema: str) -> None:
        """Create a store's tables if absent (`CREATE TABLE IF NOT EXISTS ...` statements), after rebuilding those
        written before rows carried their account (`migrate_account_columns`)."""
        with self._lock:
            assert not self._depth, "schemas are ensured when a store opens, outside any transaction"
            migrate_account_columns(self._db, schema, self.legacy_account, self.path)
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
