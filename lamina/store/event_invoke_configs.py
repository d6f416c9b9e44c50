"""Durable asynchronous-invocation settings (EventInvokeConfig), one JSON record per function qualifier.

A table of `lamina.db` beside the functions (the shared connection of `database.py`), created if absent, so the
function store's interface stays as narrow as it is.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Protocol
from lamina.store.database import Database, SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS event_invoke_configs (
    region    TEXT NOT NULL,
    name      TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    record    TEXT NOT NULL,
    PRIMARY KEY (region, name, qualifier)
);
"""


class EventInvokeConfigStore(Protocol):
    def load_all(self) -> list[dict[str, Any]]: ...

    def put(self, region: str, name: str, qualifier: str, record: dict[str, Any]) -> None: ...

    def delete(self, region: str, name: str, qualifier: str | None) -> None:
        """Delete one qualifier's record, or every record of the function when `qualifier` is None."""
        ...

    def close(self) -> None: ...


class SqliteEventInvokeConfigStore(SqliteDatabase):
    def __init__(self, database: Database | Path) -> None:
        super().__init__(database, _SCHEMA)

    def load_all(self) -> list[dict[str, Any]]:
        with self._reading() as db:
            rows = db.execute("SELECT record FROM event_invoke_configs").fetchall()
        return [json.loads(row[0]) for row in rows]

    def put(self, region: str, name: str, qualifier: str, record: dict[str, Any]) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO event_invoke_configs (region, name, qualifier, record) VALUES (?, ?, ?, ?)",
                (region, name, qualifier, json.dumps(record)),
            )

    def delete(self, region: str, name: str, qualifier: str | None) -> None:
        with self.transaction() as db:
            if qualifier is None:
                db.execute("DELETE FROM event_invoke_configs WHERE region=? AND name=?", (region, name))
            else:
                db.execute(
                    "DELETE FROM event_invoke_configs WHERE region=? AND name=? AND qualifier=?",
                    (region, name, qualifier),
                )
