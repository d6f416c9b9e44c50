"""Durable function URL configurations: one JSON record per (function, qualifier), the URL id unique across all.

A table of `lamina.db` (the shared connection of `database.py`). The unqualified function's URL is stored under the
empty qualifier, so the primary key needs no NULL.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

from lamina.model.function_url import FunctionUrlConfig
from lamina.model.keys import FunctionKey
from lamina.store.database import Database, SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS function_urls (
    account   TEXT NOT NULL,
    region    TEXT NOT NULL,
    name      TEXT NOT NULL,
    qualifier TEXT NOT NULL,
    url_id    TEXT NOT NULL UNIQUE,
    record    TEXT NOT NULL,
    PRIMARY KEY (account, region, name, qualifier)
);
"""


class FunctionUrlStore(Protocol):
    def load_all(self) -> list[FunctionUrlConfig]: ...

    def put(self, config: FunctionUrlConfig) -> None: ...

    def delete(self, function: FunctionKey, qualifier: str | None) -> None: ...

    def delete_function(self, function: FunctionKey) -> None: ...

    def close(self) -> None: ...


class SqliteFunctionUrlStore(SqliteDatabase):
    def __init__(self, database: Database | Path) -> None:
        super().__init__(database, _SCHEMA)

    def load_all(self) -> list[FunctionUrlConfig]:
        with self._reading() as db:
            rows = db.execute("SELECT record FROM function_urls").fetchall()
        return [FunctionUrlConfig.from_record(json.loads(row[0])) for row in rows]

    def put(self, config: FunctionUrlConfig) -> None:
        account, region, name = config.function
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO function_urls (account, region, name, qualifier, url_id, record) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (account, region, name, config.qualifier or "", config.url_id, json.dumps(config.to_record())),
            )

    def delete(self, function: FunctionKey, qualifier: str | None) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM function_urls WHERE account=? AND region=? AND name=? AND qualifier=?",
                (*function, qualifier or ""),
            )

    def delete_function(self, function: FunctionKey) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM function_urls WHERE account=? AND region=? AND name=?", tuple(function))
