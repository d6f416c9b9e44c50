"""Durable state attached to a function but not part of its configuration: tags and resource policies.

Tags belong to the function (every version shares them); a resource policy belongs to one qualifier ("" for the
unqualified function, a version number or an alias name). Both live in the same SQLite file as the functions, in their
own tables, and are read once at start-up: the control plane keeps them in memory.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from lamina.model.keys import FunctionKey
from lamina.store.database import Database, SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS function_tags (
    account TEXT NOT NULL,
    region  TEXT NOT NULL,
    name    TEXT NOT NULL,
    tags    TEXT NOT NULL,
    PRIMARY KEY (account, region, name)
);
CREATE TABLE IF NOT EXISTS function_policies (
    account     TEXT NOT NULL,
    region      TEXT NOT NULL,
    name        TEXT NOT NULL,
    qualifier   TEXT NOT NULL,
    revision_id TEXT NOT NULL,
    statements  TEXT NOT NULL,
    PRIMARY KEY (account, region, name, qualifier)
);
"""
_KEY = "account=? AND region=? AND name=?"


@dataclass(frozen=True)
class StoredPolicy:
    """One qualifier's resource policy: its statements in the order they were added, and its own revision."""

    account: str
    region: str
    name: str
    qualifier: str
    revision_id: str
    statements: tuple[dict[str, Any], ...]

    @property
    def key(self) -> FunctionKey:
        """The function the policy belongs to."""
        return FunctionKey(self.account, self.region, self.name)


class AttachmentStore(Protocol):
    def all_tags(self) -> dict[FunctionKey, dict[str, str]]: ...

    def put_tags(self, key: FunctionKey, tags: dict[str, str]) -> None:
        """Replace a function's tags; an empty mapping removes the row."""
        ...

    def all_policies(self) -> list[StoredPolicy]: ...

    def put_policy(self, policy: StoredPolicy) -> None:
        """Replace one qualifier's policy; a policy without statements removes the row."""
        ...

    def forget(self, key: FunctionKey, qualifier: str | None = None) -> None:
        """Drop what belongs to a deleted function (qualifier None: tags and every policy) or to one qualifier."""
        ...


class SqliteAttachmentStore(SqliteDatabase):
    def __init__(self, database: Database | Path) -> None:
        super().__init__(database, _SCHEMA)

    def all_tags(self) -> dict[FunctionKey, dict[str, str]]:
        with self._reading() as db:
            rows = db.execute("SELECT account, region, name, tags FROM function_tags").fetchall()
        return {FunctionKey(account, region, name): json.loads(tags) for account, region, name, tags in rows}

    def put_tags(self, key: FunctionKey, tags: dict[str, str]) -> None:
        with self.transaction() as db:
            if tags:
                db.execute(
                    "INSERT OR REPLACE INTO function_tags (account, region, name, tags) VALUES (?, ?, ?, ?)",
                    (*key, json.dumps(tags)),
                )
            else:
                db.execute(f"DELETE FROM function_tags WHERE {_KEY}", tuple(key))

    def all_policies(self) -> list[StoredPolicy]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT account, region, name, qualifier, revision_id, statements FROM function_policies"
            ).fetchall()
        return [
            StoredPolicy(account, region, name, qualifier, revision_id, tuple(json.loads(statements)))
            for account, region, name, qualifier, revision_id, statements in rows
        ]

    def put_policy(self, policy: StoredPolicy) -> None:
        row = (*policy.key, policy.qualifier)
        with self.transaction() as db:
            if policy.statements:
                db.execute(
                    "INSERT OR REPLACE INTO function_policies (account, region, name, qualifier, revision_id, statements) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (*row, policy.revision_id, json.dumps(list(policy.statements))),
                )
            else:
                db.execute(f"DELETE FROM function_policies WHERE {_KEY} AND qualifier=?", row)

    def forget(self, key: FunctionKey, qualifier: str | None = None) -> None:
        with self.transaction() as db:
            if qualifier is not None:
                db.execute(f"DELETE FROM function_policies WHERE {_KEY} AND qualifier=?", (*key, qualifier))
                return
            db.execute(f"DELETE FROM function_tags WHERE {_KEY}", tuple(key))
            db.execute(f"DELETE FROM function_policies WHERE {_KEY}", tuple(key))
