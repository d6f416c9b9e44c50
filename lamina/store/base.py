"""The narrow state-store interfaces the control plane depends on, never on SQLite.

These protocols (this one, and the one beside each further table group: `versions.VersionStore`,
`layers.LayerStore`, `attachments.AttachmentStore`, `concurrency.ConcurrencyStore`,
`event_invoke_configs.EventInvokeConfigStore`) are what another backend (PostgreSQL) implements. The rules every
implementation keeps:
- every call blocks and is made off the event loop (the control-plane executor, `lamina/executors.py`);
- each write is atomic on its own; `transaction()` groups writes of every store of one database into one
  atomic change (an exception leaving it rolls all of them back), and calls made inside it join it;
- reads are only made at start-up (and for garbage collection): the control plane keeps the truth in memory
  and writes through (see docs/architecture.md, "Threads, the event loop and state");
- every row is filed under its account: a function under its `FunctionKey` (account, region, name), a layer under its
  `Scope` (account, region) and name.
"""
from __future__ import annotations

from typing import ContextManager, Protocol

from lamina.model.function import FunctionConfig
from lamina.model.keys import FunctionKey, Scope


class StoreConflict(Exception):
    """A write lost a race: the record exists already, or its revision moved on."""


class Transactional(Protocol):
    def transaction(self) -> ContextManager[object]:
        """One atomic change across the stores sharing this database; nested calls join the outer one."""
        ...


class FunctionStore(Transactional, Protocol):
    def get(self, key: FunctionKey, version: str) -> FunctionConfig | None: ...

    def list_versions(self, scope: Scope | None, version: str | None) -> list[FunctionConfig]:
        """Functions ordered by name, of one account's region (or all when None), one version (or all when None)."""
        ...

    def create(self, config: FunctionConfig) -> None:
        """Insert a new function version; StoreConflict when it exists."""
        ...

    def replace(self, config: FunctionConfig, expected_revision: str) -> None:
        """Overwrite a version atomically; StoreConflict when the stored revision is not `expected_revision`."""
        ...

    def delete(self, key: FunctionKey) -> list[FunctionConfig]:
        """Delete every version of a function, returning what was deleted."""
        ...

    def delete_version(self, key: FunctionKey, version: str) -> bool:
        """Delete one published version; False when it was not there."""
        ...

    def referenced_code(self) -> set[str]:
        """Content addresses of every code blob any version uses (for garbage collection)."""
        ...

    def close(self) -> None: ...
