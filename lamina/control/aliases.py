"""Aliases: named pointers to a version, optionally routing a share of invocations to one more version.

The service keeps every alias in memory for the invoke path. Its mutations hold `lock`, and so does deleting a
version, so a version can never disappear while an alias is being pointed at it.
"""
from __future__ import annotations

import dataclasses
import threading
import uuid
from typing import Any, Callable

from lamina.model.alias import AliasConfig
from lamina.model.arns import LATEST
from lamina.model.function import FunctionConfig
from lamina.model.keys import FunctionKey
from lamina.control.version_validation import check_alias_name, check_alias_request, check_routing, routing_weights
from lamina.errors import PreconditionFailedException, ResourceConflictException, ResourceNotFoundException
from lamina.store.versions import VersionStore

#: (function, version or $LATEST) -> that version's record, or None.
VersionLookup = Callable[[FunctionKey, str], "FunctionConfig | None"]

REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


class AliasService:
    def __init__(self, store: VersionStore, lookup: VersionLookup) -> None:
        self._store = store
        self._lookup = lookup
        self._aliases: dict[FunctionKey, dict[str, AliasConfig]] = {}
        self.lock = threading.RLock()
        self._deletion_listeners: list[Callable[[FunctionKey, str], None]] = []

    def load(self, existing: set[FunctionKey]) -> None:
        """Aliases of functions that still exist; those of a function deleted just before a crash are dropped."""
        for alias in self._store.aliases():
            if alias.key in existing:
                self._aliases.setdefault(alias.key, {})[alias.name] = alias
            else:
                self._store.delete_alias(alias.key, alias.name)

    # -- reads (the invoke path) -----------------------------------------------------------------------------------
    def get(self, key: FunctionKey, alias: str) -> AliasConfig | None:
        aliases = self._aliases.get(key)
        return aliases.get(alias) if aliases else None

    def require(self, key: FunctionKey, alias: str) -> AliasConfig:
        """GetAlias: the alias or AWS's 404 (the same message whether or not the function exists)."""
        check_alias_name(alias)
        found = self.get(key, alias)
        if found is None:
            raise ResourceNotFoundException(f"Cannot find alias arn: {key.arn(alias)}")
        return found

    def list(self, key: FunctionKey, function_version: str | None = None) -> list[AliasConfig]:
        self._require_function(key)
        aliases = sorted((self._aliases.get(key) or {}).values(), key=lambda alias: alias.name)
        if function_version is not None:
            aliases = [alias for alias in aliases if alias.function_version == function_version]
        return aliases

    def referencing(self, key: FunctionKey, version: str) -> list[str]:
        """Names of the aliases that can run `version` (as their version or their routing's)."""
        aliases = (self._aliases.get(key) or {}).values()
        return sorted(alias.name for alias in aliases if version in alias.versions)

    # -- writes ------------------------------------------------------------------------------------------------------
    def create(self, key: FunctionKey, body: dict[str, Any]) -> AliasConfig:
        check_alias_request(body, name=None, creating=True)
        weights = routing_weights(body) or {}
        check_routing(body["FunctionVersion"], weights)
        with self.lock:
            self._require_versions(key, body["FunctionVersion"], weights)
            if self.get(key, body["Name"]) is not None:
                raise ResourceConflictException(f"Alias already exists: {key.arn(body['Name'])}")
            alias = AliasConfig(
                region=key.region,
                account=key.account,
                function_name=key.name,
                name=body["Name"],
                function_version=body["FunctionVersion"],
                description=body.get("Description") or "",
                additional_weights=weights,
                revision_id=str(uuid.uuid4()),
            )
            self._save(alias)
        return alias

    def update(self, key: FunctionKey, alias_name: str, body: dict[str, Any]) -> AliasConfig:
        """Members left out keep their value; `RoutingConfig: {}` (or empty weights) removes the routing."""
        check_alias_request(body, name=alias_name, creating=False)
        with self.lock:
            current = self.get(key, alias_name)
            if current is None:
                raise ResourceNotFoundException(f"Alias not found: {key.arn(alias_name)}")
            if body.get("RevisionId") is not None and body["RevisionId"] != current.revision_id:
                raise PreconditionFailedException(REVISION_MISMATCH)
            version = body.get("FunctionVersion") or current.function_version
            weights = routing_weights(body)
            weights = current.additional_weights if weights is None else weights
            check_routing(version, weights)
            self._require_versions(key, version, weights)
            description = body.get("Description")
            alias = dataclasses.replace(
                current,
                function_version=version,
                description=current.description if description is None else description,
                additional_weights=weights,
                revision_id=str(uuid.uuid4()),
            )
            self._save(alias)
        return alias

    def delete(self, key: FunctionKey, alias_name: str) -> None:
        """Idempotent for an alias that is not there (recorded from AWS), but the function must exist."""
        check_alias_name(alias_name)
        with self.lock:
            self._require_function(key)
            if self.get(key, alias_name) is None:
                return
            self._store.delete_alias(key, alias_name)
            self._aliases[key].pop(alias_name, None)
            for listener in self._deletion_listeners:
                listener(key, alias_name)

    def set_revision(self, key: FunctionKey, alias_name: str, revision_id: str) -> None:
        """Replace an alias's RevisionId when its resource policy changes (as AWS does); the caller holds `lock`."""
        self._save(dataclasses.replace(self._aliases[key][alias_name], revision_id=revision_id))

    def on_delete(self, listener: Callable[[FunctionKey, str], None]) -> None:
        """Call `listener(function, alias name)` after an alias is deleted (its policy goes with it)."""
        self._deletion_listeners.append(listener)

    def forget(self, key: FunctionKey) -> None:
        """After the function was deleted (the version store dropped the rows): the in-memory view."""
        with self.lock:
            self._aliases.pop(key, None)

    # -- helpers -----------------------------------------------------------------------------------------------------
    def _save(self, alias: AliasConfig) -> None:
        self._store.put_alias(alias)
        self._aliases.setdefault(alias.key, {})[alias.name] = alias

    def _require_function(self, key: FunctionKey) -> None:
        if self._lookup(key, LATEST) is None:
            raise ResourceNotFoundException(f"Function not found: {key.arn()}")

    def _require_versions(self, key: FunctionKey, version: str, weights: dict[str, float]) -> None:
        for needed in (version, *weights):
            if self._lookup(key, needed) is None:
                raise ResourceNotFoundException(f"Function not found: {key.arn(needed)}")
