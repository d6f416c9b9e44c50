"""Durable state of versions and aliases that is not a version's own record.

A published version is a row of the functions table (`FunctionStore.create` / `delete_version`). This store keeps
what belongs to the function as a whole: its publish mark (the highest version number ever handed out, because
numbers are never reused even after a deletion, and the fingerprint of the $LATEST it was published from) and its
aliases. It lives in the same SQLite file, in its own tables, and is read once at start-up.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lamina.model.alias import AliasConfig
from lamina.store.database import Database, SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS function_publish_marks (
    region      TEXT NOT NULL,
    name        TEXT NOT NULL,
    number      INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (region, name)
);
CREATE TABLE IF NOT EXISTS function_aliases (
    region TEXT NOT NULL,
    name   TEXT NOT NULL,
    alias  TEXT NOT NULL,
    record TEXT NOT NULL,
    PRIMARY KEY (region, name, alias)
);
"""


@dataclass(frozen=True)
class PublishMark:
    """The last version number handed out for a function, and the fingerprint of the $LATEST it was taken from."""

    number: int
    fingerprint: str


class VersionStore(Protocol):
    def marks(self) -> dict[tuple[str, str], PublishMark]: ...

    def put_mark(self, region: str, name: str, mark: PublishMark) -> None: ...

    def aliases(self) -> list[AliasConfig]: ...

    def put_alias(self, alias: AliasConfig) -> None:
        """Insert or replace (the control plane has already checked existence and revision)."""
        ...

    def delete_alias(self, region: str, name: str, alias: str) -> None: ...

    def forget(self, region: str, name: str) -> None:
        """Drop the mark and aliases of a deleted function."""
        ...

    def close(self) -> None: ...


class SqliteVersionStore(SqliteDatabase):
    def __init__(self, database: Database | Path) -> None:
        super().__init__(database, _SCHEMA)

    def marks(self) -> dict[tuple[str, str], PublishMark]:
        with self._reading() as db:
            rows = db.execute("SELECT region, name, number, fingerprint FROM function_publish_marks").fetchall()
        return {(region, name): PublishMark(number, fingerprint) for region, name, number, fingerprint in rows}

    def put_mark(self, region: str, name: str, mark: PublishMark) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO function_publish_marks (region, name, number, fingerprint) VALUES (?, ?, ?, ?)",
                (region, name, mark.number, mark.fingerprint),
            )

    def aliases(self) -> list[AliasConfig]:
        with self._reading() as db:
            rows = db.execute("SELECT record FROM function_aliases ORDER BY region, name, alias").fetchall()
        return [AliasConfig.from_record(json.loads(row[0])) for row in rows]

    def put_alias(self, alias: AliasConfig) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO function_aliases (region, name, alias, record) VALUES (?, ?, ?, ?)",
                (alias.region, alias.function_name, alias.name, json.dumps(alias.to_record())),
            )

    def delete_alias(self, region: str, name: str, alias: str) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM function_aliases WHERE region=? AND name=? AND alias=?", (region, name, alias)
            )

    def forget(self, region: str, name: str) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM function_publish_marks WHERE region=? AND name=?", (region, name))
            db.execute("DELETE FROM function_aliases WHERE region=? AND name=?", (region, name))
