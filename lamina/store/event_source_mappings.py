"""Durable event source mappings: one JSON record per mapping, by account, region and UUID.

A table of `lamina.db` (the shared connection of `database.py`). The function is part of the record, not of the key:
a mapping outlives its function (AWS keeps it when the function is deleted) and may be pointed at another one.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from lamina.model.event_source_mapping import EventSourceMapping
from lamina.model.keys import Scope
from lamina.store.database import Database, SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS event_source_mappings (
    account TEXT NOT NULL,
    region  TEXT NOT NULL,
    uuid    TEXT NOT NULL,
    record  TEXT NOT NULL,
    PRIMARY KEY (account, region, uuid)
);
"""


class EventSourceMappingStore(Protocol):
    def load_all(self) -> list[EventSourceMapping]: ...

    def put(self, mapping: EventSourceMapping) -> None:
        """Insert or replace the mapping's record."""
        ...

    def delete(self, scope: Scope, uuid: str) -> None: ...

    def close(self) -> None: ...


class SqliteEventSourceMappingStore(SqliteDatabase):
    def __init__(self, database: Database | Path) -> None:
        super().__init__(database, _SCHEMA)

    def load_all(self) -> list[EventSourceMapping]:
        with self._reading() as db:
            rows = db.execute("SELECT record FROM event_source_mappings").fetchall()
        return [EventSourceMapping.from_record(json.loads(row[0])) for row in rows]

    def put(self, mapping: EventSourceMapping) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO event_source_mappings (account, region, uuid, record) VALUES (?, ?, ?, ?)",
                (*mapping.scope, mapping.uuid, json.dumps(mapping.to_record())),
            )

    def delete(self, scope: Scope, uuid: str) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM event_source_mappings WHERE account=? AND region=? AND uuid=?", (*scope, uuid)
            )
