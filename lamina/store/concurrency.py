"""Durable concurrency settings: reserved concurrency per function, provisioned configs per qualifier.

Kept in their own tables of `lamina.db` (the shared connection of `database.py`) behind a narrow protocol, so
another backend only has to implement these few calls.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from lamina.store.database import Database, SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS function_concurrency (
    region   TEXT NOT NULL,
    name     TEXT NOT NULL,
    reserved INTEGER NOT NULL,
    PRIMARY KEY (region, name)
);
CREATE TABLE IF NOT EXISTS provisioned_concurrency (
    region        TEXT NOT NULL,
    name          TEXT NOT NULL,
    qualifier     TEXT NOT NULL,
    requested     INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (region, name, qualifier)
);
"""


@dataclass(frozen=True)
class ProvisionedConfigRecord:
    region: str
    name: str
    qualifier: str
    requested: int
    last_modified: str


class ConcurrencyStore(Protocol):
    def reserved(self) -> dict[tuple[str, str], int]: ...

    def set_reserved(self, region: str, name: str, reserved: int | None) -> None:
        """Store a function's reserved concurrency; None removes it."""
        ...

    def provisioned(self) -> list[ProvisionedConfigRecord]: ...

    def put_provisioned(self, record: ProvisionedConfigRecord) -> None: ...

    def delete_provisioned(self, region: str, name: str, qualifier: str | None = None) -> None:
        """Delete one qualifier's config, or every config of the function when qualifier is None."""
        ...

    def close(self) -> None: ...


class SqliteConcurrencyStore(SqliteDatabase):
    def __init__(self, database: Database | Path) -> None:
        super().__init__(database, _SCHEMA)

    def reserved(self) -> dict[tuple[str, str], int]:
        with self._reading() as db:
            rows = db.execute("SELECT region, name, reserved FROM function_concurrency").fetchall()
        return {(region, name): reserved for region, name, reserved in rows}

    def set_reserved(self, region: str, name: str, reserved: int | None) -> None:
        with self.transaction() as db:
            if reserved is None:
                db.execute("DELETE FROM function_concurrency WHERE region=? AND name=?", (region, name))
            else:
                db.execute(
                    "INSERT INTO function_concurrency (region, name, reserved) VALUES (?, ?, ?) "
                    "ON CONFLICT (region, name) DO UPDATE SET reserved=excluded.reserved",
                    (region, name, reserved),
                )

    def provisioned(self) -> list[ProvisionedConfigRecord]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT region, name, qualifier, requested, last_modified FROM provisioned_concurrency "
                "ORDER BY region, name, qualifier"
            ).fetchall()
        return [ProvisionedConfigRecord(*row) for row in rows]

    def put_provisioned(self, record: ProvisionedConfigRecord) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO provisioned_concurrency (region, name, qualifier, requested, last_modified) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (region, name, qualifier) "
                "DO UPDATE SET requested=excluded.requested, last_modified=excluded.last_modified",
                (record.region, record.name, record.qualifier, record.requested, record.last_modified),
            )

    def delete_provisioned(self, region: str, name: str, qualifier: str | None = None) -> None:
        with self.transaction() as db:
            if qualifier is None:
                db.execute("DELETE FROM provisioned_concurrency WHERE region=? AND name=?", (region, name))
            else:
                db.execute(
                    "DELETE FROM provisioned_concurrency WHERE region=? AND name=? AND qualifier=?",
                    (region, name, qualifier),
                )
