"""The narrow state-store interface: the API and the invocation code depend on this, never on SQLite."""
from __future__ import annotations

from typing import Protocol

from lamina.model.function import FunctionConfig


class StoreConflict(Exception):
    """A write lost a race: the record exists already, or its revision moved on."""


class FunctionStore(Protocol):
    def get(self, region: str, name: str, version: str) -> FunctionConfig | None: ...

    def list_versions(self, region: str | None, version: str | None) -> list[FunctionConfig]:
        """Functions ordered by name, of one region (or all when None), one version (or all when None)."""
        ...

    def create(self, config: FunctionConfig) -> None:
        """Insert a new function version; StoreConflict when it exists."""
        ...

    def replace(self, config: FunctionConfig, expected_revision: str) -> None:
        """Overwrite a version atomically; StoreConflict when the stored revision is not `expected_revision`."""
        ...

    def delete(self, region: str, name: str) -> list[FunctionConfig]:
        """Delete every version of a function, returning what was deleted."""
        ...

    def delete_version(self, region: str, name: str, version: str) -> bool:
        """Delete one published version; False when it was not there."""
        ...

    def referenced_code(self) -> set[str]:
        """Content addresses of every code blob any version uses (for garbage collection)."""
        ...

    def close(self) -> None: ...
