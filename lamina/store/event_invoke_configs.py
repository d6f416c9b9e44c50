"""Durable asynchronous-invocation settings (EventInvokeConfig), one JSON record per function qualifier.

A table of `lamina.db` beside the functions (the shared connection of `database.py`), created if absent, so the
function store's interface stays as narrow as it is.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol

from lamina.model.keys import FunctionKey
from lamina.store.database import Database, SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS event_invoke_configs (
    account   TEXT NOT NULL,
    region    TEXT NOT NULL,
    name      TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    record    TEXT NOT NULL,
    PRIMARY KEY (account, region, name, qualifier)
);
"""
_KEY = "account=? AND region=? AND name=?"


class EventInvokeConfigStore(Protocol):
    def load_all(self) -> list[dict[str, Any]]:
        """Every record, with the `account` of its row (records written before rows carried it lack one)."""
        ...

    def put(self, key: FunctionKey, qualifier: str, record: dict[str, Any]) -> None: ...

    def delete(self, key: FunctionKey, qualifier: str | None) -> None:
        """Delete one qualifier's record, or every record of the function when `qualifier` is None."""
        ...

    def close(self) -> None: ...


class SqliteEventInvokeConfigStore(SqliteDatabase):
    def __init__(self, database: Database | Path) -> None:
        super().__init__(database, _SCHEMA)

    def load_all(self) -> list[dict[str, Any]]:
        with self._reading() as db:
            rows = db.execute("SELECT account, record FROM event_invoke_configs").fetchall()
        return [{**json.loads(record), "account": account} for account, record in rows]

    def put(self, key: FunctionKey, qualifier: str, record: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO event_invoke_configs (account, region, name, qualifier, record) "
                "VALUES (?, ?, ?, ?, ?)",
                (*key, qualifier, json.dumps(record)),
            )

    def delete(self, key: FunctionKey, qualifier: str | None) -> None:
        with self.transaction() as db:
            if qualifier is None:
                db.execute(f"DELETE FROM event_invoke_configs WHERE {_KEY}", tuple(key))
            else:
                db.execute(f"DELETE FROM event_invoke_configs WHERE {_KEY} AND qualifier=?", (*key, qualifier))
