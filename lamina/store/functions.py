"""The function store's SQLite implementation (`FunctionStore` in base.py): only the functions table.

The embedded default; durability and the shared connection: see database.py.

Records are JSON documents keyed by (region, name, version) so new configuration fields need no migration.
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from lamina.model.function import FunctionConfig
from lamina.store.base import StoreConflict
from lamina.store.database import Database, SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS functions (
    region  TEXT NOT NULL,
    name    TEXT NOT NULL,
    version TEXT NOT NULL,
    code    TEXT NOT NULL,
    record  TEXT NOT NULL,
    PRIMARY KEY (region, name, version)
);
"""


class SqliteFunctionStore(SqliteDatabase):
    def __init__(self, database: Database | Path) -> None:
        super().__init__(database, _SCHEMA)

    def get(self, region: str, name: str, version: str) -> FunctionConfig | None:
        with self._reading() as db:
            row = db.execute(
                "SELECT record FROM functions WHERE region=? AND name=? AND version=?", (region, name, version)
            ).fetchone()
        return FunctionConfig.from_record(json.loads(row[0])) if row else None

    def list_versions(self, region: str | None, version: str | None) -> list[FunctionConfig]:
        query = "SELECT record FROM functions WHERE 1=1"
        params: tuple[str, ...] = ()
        if region is not None:
            query += " AND region=?"
            params += (region,)
        if version is not None:
            query += " AND version=?"
            params += (version,)
        with self._reading() as db:
            rows = db.execute(query + " ORDER BY name, version", params).fetchall()
        return [FunctionConfig.from_record(json.loads(row[0])) for row in rows]

    def create(self, config: FunctionConfig) -> None:
        try:
            with self.transaction() as db:
                db.execute(
                    "INSERT INTO functions (region, name, version, code, record) VALUES (?, ?, ?, ?, ?)",
                    (config.region, config.name, config.version, config.code_sha256_hex, json.dumps(config.to_record())),
                )
        except sqlite3.IntegrityError as error:
            raise StoreConflict(config.name) from error

    def replace(self, config: FunctionConfig, expected_revision: str) -> None:
        with self.transaction() as db:
            row = db.execute(
                "SELECT record FROM functions WHERE region=? AND name=? AND version=?",
                (config.region, config.name, config.version),
            ).fetchone()
            if row is None or json.loads(row[0])["revision_id"] != expected_revision:
                raise StoreConflict(config.name)
            db.execute(
                "UPDATE functions SET code=?, record=? WHERE region=? AND name=? AND version=?",
                (config.code_sha256_hex, json.dumps(config.to_record()), config.region, config.name, config.version),
            )

    def delete(self, region: str, name: str) -> list[FunctionConfig]:
        with self.transaction() as db:
            rows = db.execute(
                "DELETE FROM functions WHERE region=? AND name=? RETURNING record", (region, name)
            ).fetchall()
        return [FunctionConfig.from_record(json.loads(row[0])) for row in rows]

    def delete_version(self, region: str, name: str, version: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute(
                "DELETE FROM functions WHERE region=? AND name=? AND version=?", (region, name, version)
            )
        return cursor.rowcount > 0

    def referenced_code(self) -> set[str]:
        with self._reading() as db:
            return {row[0] for row in db.execute("SELECT DISTINCT code FROM functions")}
