"""The function store's SQLite implementation (`FunctionStore` in base.py): only the functions table.

The embedded default; durability and the shared connection: see database.py.

Records are JSON documents keyed by (account, region, name, version) so new configuration fields need no migration.
The key's columns are the truth: a record is read back with the account of its row (a table written before rows
carried their account was given the legacy account, see database.py).
"""
from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from lamina.model.function import FunctionConfig
from lamina.model.keys import FunctionKey, Scope
from lamina.store.base import StoreConflict
from lamina.store.database import Database, SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS functions (
    account TEXT NOT NULL,
    region  TEXT NOT NULL,
    name    TEXT NOT NULL,
    version TEXT NOT NULL,
    code    TEXT NOT NULL,
    record  TEXT NOT NULL,
    PRIMARY KEY (account, region, name, version)
);
"""
_KEY = "account=? AND region=? AND name=?"


def _config(account: str, record: str) -> FunctionConfig:
    return FunctionConfig.from_record({**json.loads(record), "account": account})


class SqliteFunctionStore(SqliteDatabase):
    def __init__(self, database: Database | Path) -> None:
        super().__init__(database, _SCHEMA)

    def get(self, key: FunctionKey, version: str) -> FunctionConfig | None:
        with self._reading() as db:
            row = db.execute(
                f"SELECT account, record FROM functions WHERE {_KEY} AND version=?", (*key, version)
            ).fetchone()
        return _config(*row) if row else None

    def list_versions(self, scope: Scope | None, version: str | None) -> list[FunctionConfig]:
        query = "SELECT account, record FROM functions WHERE 1=1"
        params: tuple[str, ...] = ()
        if scope is not None:
            query += " AND account=? AND region=?"
            params += tuple(scope)
        if version is not None:
            query += " AND version=?"
            params += (version,)
        with self._reading() as db:
            rows = db.execute(query + " ORDER BY name, version, account, region", params).fetchall()
        return [_config(*row) for row in rows]

    def create(self, config: FunctionConfig) -> None:
        try:
            with self.transaction() as db:
                db.execute(
                    "INSERT INTO functions (account, region, name, version, code, record) VALUES (?, ?, ?, ?, ?, ?)",
                    (*config.key, config.version, config.code_sha256_hex, json.dumps(config.to_record())),
                )
        except sqlite3.IntegrityError as error:
            raise StoreConflict(config.name) from error

    def replace(self, config: FunctionConfig, expected_revision: str) -> None:
        with self.transaction() as db:
            row = db.execute(
                f"SELECT record FROM functions WHERE {_KEY} AND version=?", (*config.key, config.version)
            ).fetchone()
            if row is None or json.loads(row[0])["revision_id"] != expected_revision:
                raise StoreConflict(config.name)
            db.execute(
                f"UPDATE functions SET code=?, record=? WHERE {_KEY} AND version=?",
                (config.code_sha256_hex, json.dumps(config.to_record()), *config.key, config.version),
            )

    def delete(self, key: FunctionKey) -> list[FunctionConfig]:
        with self.transaction() as db:
            rows = db.execute(f"DELETE FROM functions WHERE {_KEY} RETURNING account, record", tuple(key)).fetchall()
        return [_config(*row) for row in rows]

    def delete_version(self, key: FunctionKey, version: str) -> bool:
        with self.transaction() as db:
            cursor = db.execute(f"DELETE FROM functions WHERE {_KEY} AND version=?", (*key, version))
        return cursor.rowcount > 0

    def referenced_code(self) -> set[str]:
        with self._reading() as db:
            return {row[0] for row in db.execute("SELECT DISTINCT code FROM functions")}
