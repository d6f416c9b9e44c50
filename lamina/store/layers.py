"""Durable layer versions: the interface the control plane uses, and its SQLite (WAL) implementation.

Version numbers come from a per-layer counter that outlives every version, so a number is never reused, even after
all versions of a layer were deleted (as AWS does). The tables live in the same database file as the functions.
Layers belong to an account in a region (their ARNs carry both): rows are keyed by (account, region, name).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Protocol

from lamina.model.keys import Scope
from lamina.model.layer import LayerVersion
from lamina.store.database import Database, SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS layers (
    account      TEXT NOT NULL,
    region       TEXT NOT NULL,
    name         TEXT NOT NULL,
    last_version INTEGER NOT NULL,
    PRIMARY KEY (account, region, name)
);
CREATE TABLE IF NOT EXISTS layer_versions (
    account TEXT NOT NULL,
    region  TEXT NOT NULL,
    name    TEXT NOT NULL,
    version INTEGER NOT NULL,
    code    TEXT NOT NULL,
    record  TEXT NOT NULL,
    PRIMARY KEY (account, region, name, version)
);
"""
_KEY = "account=? AND region=? AND name=?"


def _layer(account: str, record: str) -> LayerVersion:
    return LayerVersion.from_record({**json.loads(record), "account": account})


class LayerStore(Protocol):
    def publish(self, scope: Scope, name: str, build: Callable[[int], LayerVersion]) -> LayerVersion:
        """Take the layer's next version number and store `build(number)`, atomically."""
        ...

    def get(self, scope: Scope, name: str, version: int) -> LayerVersion | None: ...

    def list_versions(self, scope: Scope, name: str | None) -> list[LayerVersion]:
        """Versions of one layer (or of all, when None) of an account in a region: by name, newest version first."""
        ...

    def replace(self, layer: LayerVersion) -> None:
        """Overwrite a stored version (its policy is the only part that changes)."""
        ...

    def delete(self, scope: Scope, name: str, version: int) -> None: ...

    def referenced_code(self) -> set[str]:
        """Content addresses of every stored layer version's zip (for garbage collection)."""
        ...

    def close(self) -> None: ...


class SqliteLayerStore(SqliteDatabase):
    def __init__(self, database: Database | Path) -> None:
        super().__init__(database, _SCHEMA)

    def publish(self, scope: Scope, name: str, build: Callable[[int], LayerVersion]) -> LayerVersion:
        key = (*scope, name)
        with self.transaction() as db:
            row = db.execute(f"SELECT last_version FROM layers WHERE {_KEY}", key).fetchone()
            number = (row[0] if row else 0) + 1
            layer = build(number)
            db.execute(
                "INSERT INTO layers (account, region, name, last_version) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (account, region, name) DO UPDATE SET last_version=excluded.last_version",
                (*key, number),
            )
            db.execute(
                "INSERT INTO layer_versions (account, region, name, version, code, record) VALUES (?, ?, ?, ?, ?, ?)",
                (*key, number, layer.code_sha256_hex, json.dumps(layer.to_record())),
            )
        return layer

    def get(self, scope: Scope, name: str, version: int) -> LayerVersion | None:
        with self._reading() as db:
            row = db.execute(
                f"SELECT account, record FROM layer_versions WHERE {_KEY} AND version=?", (*scope, name, version)
            ).fetchone()
        return _layer(*row) if row else None

    def list_versions(self, scope: Scope, name: str | None) -> list[LayerVersion]:
        query, params = "SELECT account, record FROM layer_versions WHERE account=? AND region=?", tuple(scope)
        if name is not None:
            query, params = query + " AND name=?", (*scope, name)
        with self._reading() as db:
            rows = db.execute(query + " ORDER BY name, version DESC", params).fetchall()
        return [_layer(*row) for row in rows]

    def replace(self, layer: LayerVersion) -> None:
        with self.transaction() as db:
            db.execute(
                f"UPDATE layer_versions SET record=? WHERE {_KEY} AND version=?",
                (json.dumps(layer.to_record()), *layer.scope, layer.name, layer.version),
            )

    def delete(self, scope: Scope, name: str, version: int) -> None:
        with self.transaction() as db:
            db.execute(f"DELETE FROM layer_versions WHERE {_KEY} AND version=?", (*scope, name, version))

    def referenced_code(self) -> set[str]:
        with self._reading() as db:
            return {row[0] for row in db.execute("SELECT DISTINCT code FROM layer_versions")}
