"""Published versions: immutable snapshots of $LATEST, numbered "1", "2", ... and never renumbered.

The service keeps every published version in memory (the invoke path reads them without touching the database)
and decides what a publish does: a $LATEST unchanged since the last publish gives back that version; anything else
takes the next number, even when higher numbers were deleted.
"""
from __future__ import annotations

import dataclasses
import uuid
from typing import Iterable

from lamina.model.arns import LATEST
from lamina.model.function import BOOKKEEPING_FIELDS, FunctionConfig, aws_timestamp, content_digest
from lamina.store.base import FunctionStore
from lamina.store.versions import PublishMark, VersionStore

FunctionKey = tuple[str, str]  # (region, name)

def content_fingerprint(config: FunctionConfig) -> str:
    """What "unchanged since the last publish" compares: code and configuration, not version, revision or timestamps."""
    return content_digest(config, ignore=BOOKKEEPING_FIELDS + ("version",))


class VersionService:
    def __init__(self, functions: FunctionStore, store: VersionStore) -> None:
        self._functions = functions
        self._store = store
        self._published: dict[FunctionKey, dict[str, FunctionConfig]] = {}
        self._marks: dict[FunctionKey, PublishMark] = {}

    def load(self, configs: Iterable[FunctionConfig], existing: set[FunctionKey]) -> None:
        """Published versions from the functions table, marks from the version store (stale ones dropped)."""
        for config in configs:
            if config.version != LATEST:
                self._published.setdefault((config.region, config.name), {})[config.version] = config
        for key, mark in self._store.marks().items():
            if key in existing:
                self._marks[key] = mark
            else:
                self._store.forget(*key)  # the function was deleted just before a crash
        for key, versions in self._published.items():
            highest = max(int(number) for number in versions)
            mark = self._marks.get(key)
            if mark is None or mark.number < highest:  # a publish was cut short after writing its version
                self._marks[key] = PublishMark(highest, "")

    # -- reads (the invoke path) -----------------------------------------------------------------------------------
    def get(self, region: str, name: str, version: str) -> FunctionConfig | None:
        versions = self._published.get((region, name))
        return versions.get(version) if versions else None

    def of(self, region: str, name: str) -> list[FunctionConfig]:
        """A function's published versions, oldest first."""
        versions = self._published.get((region, name)) or {}
        return sorted(versions.values(), key=lambda config: int(config.version))

    def code_size(self, region: str) -> int:
        published = list(self._published.items())  # a snapshot: publishes run in worker threads
        return sum(c.code_size for (r, _), versions in published if r == region for c in list(versions.values()))

    # -- writes (the caller holds the function's update slot) -----------------------------------------------------
    def publish(self, current: FunctionConfig, description: str | None) -> tuple[FunctionConfig | None, FunctionConfig]:
        """(the new $LATEST, or None when nothing was published; the version). Raises StoreConflict on a lost race."""
        key = (current.region, current.name)
        fingerprint = content_fingerprint(current)
        mark = self._marks.get(key)
        if mark is not None and mark.fingerprint == fingerprint:
            existing = self.get(current.region, current.name, str(mark.number))
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
        # Publishing gives $LATEST a new RevisionId (as AWS does). Written first: if the process dies after it, the
        # next publish simply takes the number; the mark is rebuilt from the versions present at start-up.
        latest = dataclasses.replace(current, revision_id=str(uuid.uuid4()))
        self._functions.replace(latest, current.revision_id)
        self._functions.create(version)
        self._store.put_mark(current.region, current.name, PublishMark(number, fingerprint))
        self._marks[key] = PublishMark(number, fingerprint)
        self._published.setdefault(key, {})[version.version] = version
        return latest, version

    def remove(self, region: str, name: str, version: str) -> bool:
        """Delete one version (the caller has checked that no alias uses it); False when there was none."""
        if self.get(region, name, version) is None:
            return False
        self._functions.delete_version(region, name, version)
        self._published.get((region, name), {}).pop(version, None)
        return True

    def set_revision(self, region: str, name: str, version: str, revision_id: str) -> FunctionConfig:
        """A version's one mutable field: its RevisionId, replaced when its resource policy changes (as AWS does).
        The caller holds the aliases' lock, so the version cannot be deleted meanwhile."""
        current = self._published[(region, name)][version]
        changed = dataclasses.replace(current, revision_id=revision_id)
        self._functions.replace(changed, current.revision_id)
        self._published[(region, name)][version] = changed
        return changed

    def forget(self, region: str, name: str) -> None:
        """After the function was deleted (its version rows went with it): its mark and the in-memory view."""
        self._published.pop((region, name), None)
        self._marks.pop((region, name), None)
        self._store.forget(region, name)
