"""Durable layer versions: the interface the control plane uses, and its SQLite (WAL) implementation.

Version numbers come from a per-layer counter that outlives every version, so a number is never reused, even after
all versions of a layer were deleted (as AWS does). The tables live in the same database file as the functions.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Protocol

from lamina.model.layer import LayerVersion
from lamina.store.database import Database, SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS layers (
    region       TEXT NOT NULL,
    name         TEXT NOT NULL,
    last_version INTEGER NOT NULL,
    PRIMARY KEY (region, name)
);
CREATE TABLE IF NOT EXISTS layer_versions (
    region  TEXT NOT NULL,
    name    TEXT NOT NULL,
    version INTEGER NOT NULL,
    code    TEXT NOT NULL,
    record  TEXT NOT NULL,
    PRIMARY KEY (region, name, version)
);
"""


class LayerStore(Protocol):
    def publish(self, region: str, name: str, build: Callable[[int], LayerVersion]) -> LayerVersion:
        """Take the layer's next version number and store `build(number)`, atomically."""
        ...

    def get(self, region: str, name: str, version: int) -> LayerVersion | None: ...

    def list_versions(self, region: str, name: str | None) -> list[LayerVersion]:
        """Versions of one layer (or of all, when None) in a region: by name, newest version first."""
        ...

    def replace(self, layer: LayerVersion) -> None:
        """Overwrite a stored version (its policy is the only part that changes)."""
        ...

    def delete(self, region: str, name: str, version: int) -> None: ...

    def referenced_code(self) -> set[str]:
        """Content addresses of every stored layer version's zip (for garbage collection)."""
        ...

    def close(self) -> None: ...


class SqliteLayerStore(SqliteDatabase):
    def __init__(self, database: Database | Path) -> None:
        super().__init__(database, _SCHEMA)

    def publish(self, region: str, name: str, build: Callable[[int], LayerVersion]) -> LayerVersion:
        with self.transaction() as db:
            row = db.execute(
                "SELECT last_version FROM layers WHERE region=? AND name=?", (region, name)
            ).fetchone()
            number = (row[0] if row else 0) + 1
            layer = build(number)
            db.execute(
                "INSERT INTO layers (region, name, last_version) VALUES (?, ?, ?) "
                "ON CONFLICT (region, name) DO UPDATE SET last_version=excluded.last_version",
                (region, name, number),
            )
            db.execute(
                "INSERT INTO layer_versions (region, name, version, code, record) VALUES (?, ?, ?, ?, ?)",
                (region, name, number, layer.code_sha256_hex, json.dumps(layer.to_record())),
            )
        return layer

    def get(self, region: str, name: str, version: int) -> LayerVersion | None:
        with self._reading() as db:
            row = db.execute(
                "SELECT record FROM layer_versions WHERE region=? AND name=? AND version=?", (region, name, version)
            ).fetchone()
        return LayerVersion.from_record(json.loads(row[0])) if row else None

    def list_versions(self, region: str, name: str | None) -> list[LayerVersion]:
        query, params = "SELECT record FROM layer_versions WHERE region=?", (region,)
        if name is not None:
            query, params = query + " AND name=?", (region, name)
        with self._reading() as db:
            rows = db.execute(query + " ORDER BY name, version DESC", params).fetchall()
        return [LayerVersion.from_record(json.loads(row[0])) for row in rows]

    def replace(self, layer: LayerVersion) -> None:
        with self.transaction() as db:
            db.execute(
                "UPDATE layer_versions SET record=? WHERE region=? AND name=? AND version=?",
                (json.dumps(layer.to_record()), layer.region, layer.name, layer.version),
            )

    def delete(self, region: str, name: str, version: int) -> None:
        with self.transaction() as db:
            db.execute(
                "DELETE FROM layer_versions WHERE region=? AND name=? AND version=?", (region, name, version)
            )

    def referenced_code(self) -> set[str]:
        with self._reading() as db:
            return {row[0] for row in db.execute("SELECT DISTINCT code FROM layer_versions")}
