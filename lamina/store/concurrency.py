"""Durable concurrency settings: reserved concurrency per function, provisioned configs per qualifier.

Kept in their own tables of `lamina.db` (the shared connection of `database.py`) behind a narrow protocol, so
another backend only has to implement these few calls.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from lamina.model.keys import FunctionKey
from lamina.store.database import Database, SqliteDatabase

_SCHEMA = """
CREATE TABLE IF NOT EXISTS function_concurrency (
    account  TEXT NOT NULL,
    region   TEXT NOT NULL,
    name     TEXT NOT NULL,
    reserved INTEGER NOT NULL,
    PRIMARY KEY (account, region, name)
);
CREATE TABLE IF NOT EXISTS provisioned_concurrency (
    account       TEXT NOT NULL,
    region        TEXT NOT NULL,
    name          TEXT NOT NULL,
    qualifier     TEXT NOT NULL,
    requested     INTEGER NOT NULL,
    last_modified TEXT NOT NULL,
    PRIMARY KEY (account, region, name, qualifier)
);
"""
_KEY = "account=? AND region=? AND name=?"


@dataclass(frozen=True)
class ProvisionedConfigRecord:
    account: str
    region: str
    name: str
    qualifier: str
    requested: int
    last_modified: str

    @property
    def key(self) -> FunctionKey:
        """The function the config belongs to."""
        return FunctionKey(self.account, self.region, self.name)


class ConcurrencyStore(Protocol):
    def reserved(self) -> dict[FunctionKey, int]: ...

    def set_reserved(self, key: FunctionKey, reserved: int | None) -> None:
        """Store a function's reserved concurrency; None removes it."""
        ...

    def provisioned(self) -> list[ProvisionedConfigRecord]: ...

    def put_provisioned(self, record: ProvisionedConfigRecord) -> None: ...

    def delete_provisioned(self, key: FunctionKey, qualifier: str | None = None) -> None:
        """Delete one qualifier's config, or every config of the function when qualifier is None."""
        ...

    def close(self) -> None: ...


class SqliteConcurrencyStore(SqliteDatabase):
    def __init__(self, database: Database | Path) -> None:
        super().__init__(database, _SCHEMA)

    def reserved(self) -> dict[FunctionKey, int]:
        with self._reading() as db:
            rows = db.execute("SELECT account, region, name, reserved FROM function_concurrency").fetchall()
        return {FunctionKey(account, region, name): reserved for account, region, name, reserved in rows}

    def set_reserved(self, key: FunctionKey, reserved: int | None) -> None:
        with self.transaction() as db:
            if reserved is None:
                db.execute(f"DELETE FROM function_concurrency WHERE {_KEY}", tuple(key))
            else:
                db.execute(
                    "INSERT INTO function_concurrency (account, region, name, reserved) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (account, region, name) DO UPDATE SET reserved=excluded.reserved",
                    (*key, reserved),
                )

    def provisioned(self) -> list[ProvisionedConfigRecord]:
        with self._reading() as db:
            rows = db.execute(
                "SELECT account, region, name, qualifier, requested, last_modified FROM provisioned_concurrency "
                "ORDER BY account, region, name, qualifier"
            ).fetchall()
        return [ProvisionedConfigRecord(*row) for row in rows]

    def put_provisioned(self, record: ProvisionedConfigRecord) -> None:
        with self.transaction() as db:
            db.execute(
                "INSERT INTO provisioned_concurrency (account, region, name, qualifier, requested, last_modified) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (account, region, name, qualifier) "
                "DO UPDATE SET requested=excluded.requested, last_modified=excluded.last_modified",
                (*record.key, record.qualifier, record.requested, record.last_modified),
            )

    def delete_provisioned(self, key: FunctionKey, qualifier: str | None = None) -> None:
        with self.transaction() as db:
            if qualifier is None:
                db.execute(f"DELETE FROM provisioned_concurrency WHERE {_KEY}", tuple(key))
            else:
                db.execute(f"DELETE FROM provisioned_concurrency WHERE {_KEY} AND qualifier=?", (*key, qualifier))
