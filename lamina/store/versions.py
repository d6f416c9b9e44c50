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
from lamina.model.keys import FunctionKey
from lamina.store.database import Database, SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS function_publish_marks (
    account     TEXT NOT NULL,
    region      TEXT NOT NULL,
    name        TEXT NOT NULL,
    number      INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,
    PRIMARY KEY (account, region, name)
);
CREATE TABLE IF NOT EXISTS function_aliases (
    account TEXT NOT NULL,
    region  TEXT NOT NULL,
    name    TEXT NOT NULL,
    alias   TEXT NOT NULL,
    record  TEXT NOT NULL,
    PRIMARY KEY (account, region, name, alias)
);
"""
_KEY = "account=? AND region=? AND name=?"


@dataclass(frozen=True)
class PublishMark:
    """The last version number handed out for a function, and the fingerprint of the $LATEST it was taken from."""

    number: int
    fingerprint: str


class VersionStore(Protocol):
    def marks(self) -> dict[FunctionKey, PublishMark]: ...

    def put_mark(self, key: FunctionKey, mark: PublishMark) -> None: ...

    def aliases(self) -> list[AliasConfig]: ...

    def put_alias(self, alias: AliasConfig) -> None:
        """Insert or replace (the control plane has already checked existence and revision)."""
        ...

    def delete_alias(self, key: FunctionKey, alias: str) -> None: ...

    def forget(self, key: FunctionKey) -> None:
        """Drop the mark and aliases of a deleted function."""
        ...

    def close(self) -> None: ...


class SqliteVersionStore(SqliteDatabase):
    def __init__(self, database: Database | Path) -> None:
        super().__init__(database, _SCHEMA)

    def marks(self) -> dict[FunctionKey, PublishMark]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT account, region, name, number, fingerprint FROM function_publish_marks"
            ).fetchall()
        return {
            FunctionKey(account, region, name): PublishMark(number, fingerprint)
            for account, region, name, number, fingerprint in rows
        }

    def put_mark(self, key: FunctionKey, mark: PublishMark) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO function_publish_marks (account, region, name, number, fingerprint) "
                "VALUES (?, ?, ?, ?, ?)",
                (*key, mark.number, mark.fingerprint),
            )

    def aliases(self) -> list[AliasConfig]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT account, record FROM function_aliases ORDER BY account, region, name, alias"
            ).fetchall()
        return [AliasConfig.from_record({**json.loads(record), "account": account}) for account, record in rows]

    def put_alias(self, alias: AliasConfig) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT OR REPLACE INTO function_aliases (account, region, name, alias, record) VALUES (?, ?, ?, ?, ?)",
                (*alias.key, alias.name, json.dumps(alias.to_record())),
            )

    def delete_alias(self, key: FunctionKey, alias: str) -> None:
        with self.transaction() as db:
            db.execute(f"DELETE FROM function_aliases WHERE {_KEY} AND alias=?", (*key, alias))

    def forget(self, key: FunctionKey) -> None:
        with self.transaction() as db:
            db.execute(f"DELETE FROM function_publish_marks WHERE {_KEY}", tuple(key))
            db.execute(f"DELETE FROM function_aliases WHERE {_KEY}", tuple(key))
