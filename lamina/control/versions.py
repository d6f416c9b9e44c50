"""Published versions: immutable snapshots of $LATEST, numbered "1", "2", ... and never renumbered.

The service keeps every published version in memory (the invoke path reads them without touching the database)
and decides what a publish does: a $LATEST unchanged since the last publish gives back that version; anything else
takes the next number, even when higher numbers were deleted.
"""
from __future__ import annotations

import contextlib
import dataclasses
import uuid
from typing import Callable, ContextManager, Iterable

from lamina.model.arns import LATEST
from lamina.model.function import BOOKKEEPING_FIELDS, FunctionConfig, aws_timestamp, content_digest
from lamina.model.keys import FunctionKey, Scope
from lamina.store.base import FunctionStore
from lamina.store.versions import PublishMark, VersionStore


def content_fingerprint(config: FunctionConfig) -> str:
    """What "unchanged since the last publish" compares: code and configuration, not version, revision or timestamps."""
    return content_digest(config, ignore=BOOKKEEPING_FIELDS + ("version",))


class VersionService:
    def __init__(
        self,
        functions: FunctionStore,
        store: VersionStore,
        transaction: Callable[[], ContextManager[object]] = contextlib.nullcontext,
    ) -> None:
        """`transaction`: groups the function store's and the version store's writes (they share a database), so a
        publish or a delete is one atomic change and start-up finds no half of one."""
        self._functions = functions
        self._store = store
        self._transaction = transaction
        self._published: dict[FunctionKey, dict[str, FunctionConfig]] = {}
        self._marks: dict[FunctionKey, PublishMark] = {}

    def load(self, configs: Iterable[FunctionConfig]) -> None:
        """Published versions from the functions table, marks from the version store. Nothing to repair: a publish
        (versions and mark) and a delete (rows and mark) are each one transaction."""
        for config in configs:
            if config.version != LATEST:
                self._published.setdefault(config.key, {})[config.version] = config
        self._marks.update(self._store.marks())

    # -- reads (the invoke path) -----------------------------------------------------------------------------------
    def get(self, key: FunctionKey, version: str) -> FunctionConfig | None:
        versions = self._published.get(key)
        return versions.get(version) if versions else None

    def of(self, key: FunctionKey) -> list[FunctionConfig]:
        """A function's published versions, oldest first."""
        versions = self._published.get(key) or {}
        return sorted(versions.values(), key=lambda config: int(config.version))

    def code_size(self, scope: Scope) -> int:
        published = list(self._published.items())  # a snapshot: publishes run in worker threads
        return sum(
            c.code_size for key, versions in published if key.scope == scope for c in list(versions.values())
        )

    # -- writes (the caller holds the function's update slot) -----------------------------------------------------
    def publish(self, current: FunctionConfig, description: str | None) -> tuple[FunctionConfig | None, FunctionConfig]:
        """(the new $LATEST, or None when nothing was published; the version). Raises StoreConflict on a lost race."""
        key = current.key
        fingerprint = content_fingerprint(current)
        mark = self._marks.get(key)
        if mark is not None and mark.fingerprint == fingerprint:
            existing = self.get(key, str(mark.number))
            if existing is not None:
                return None, existing
        number = (mark.number if mark else 0) + 1
        version = dataclasses.replace(
            current,
            version=str(number),
            revision_id=str(uuid.uuid4()),
            last_modified=aws_timestamp(),
            description=current.description if description is None else description,
            state="Active",
            last_update_status="Successful",
        )
        # Publishing gives $LATEST a new RevisionId (as AWS does). The three writes commit together or not at all.
        latest = dataclasses.replace(current, revision_id=str(uuid.uuid4()))
        with self._transaction():
            self._functions.replace(latest, current.revision_id)
            self._functions.create(version)
            self._store.put_mark(key, PublishMark(number, fingerprint))
        self._marks[key] = PublishMark(number, fingerprint)
        self._published.setdefault(key, {})[version.version] = version
        return latest, version

    def remove(self, key: FunctionKey, version: str) -> bool:
        """Delete one version (the caller has checked that no alias uses it); False when there was none."""
        if self.get(key, version) is None:
            return False
        self._functions.delete_version(key, version)
        self._published.get(key, {}).pop(version, None)
        return True

    def set_revision(self, key: FunctionKey, version: str, revision_id: str) -> FunctionConfig:
        """A version's one mutable field: its RevisionId, replaced when its resource policy changes (as AWS does).
        The caller holds the aliases' lock, so the version cannot be deleted meanwhile."""
        current = self._published[key][version]
        changed = dataclasses.replace(current, revision_id=revision_id)
        self._functions.replace(changed, current.revision_id)
        self._published[key][version] = changed
        return changed

    def delete_function(self, key: FunctionKey) -> None:
        """Delete every stored version of a function with its mark and aliases (one transaction), then drop the
        in-memory view of its versions."""
        with self._transaction():
            self._functions.delete(key)
            self._store.forget(key)
        self._published.pop(key, None)
        self._marks.pop(key, None)
