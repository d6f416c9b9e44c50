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
from lamina.model.arns import LATEST, function_arn
from lamina.model.function import FunctionConfig
from lamina.control.version_validation import check_alias_name, check_alias_request, check_routing, routing_weights
from lamina.errors import PreconditionFailedException, ResourceConflictException, ResourceNotFoundException
from lamina.store.versions import VersionStore

FunctionKey = tuple[str, str]  # (region, name)
#: (region, function name, version or $LATEST) -> that version's record, or None.
VersionLookup = Callable[[str, str, str], "FunctionConfig | None"]

REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


class AliasService:
    def __init__(self, store: VersionStore, account: str, lookup: VersionLookup) -> None:
        self._store = store
        self._account = account
        self._lookup = lookup
        self._aliases: dict[FunctionKey, dict[str, AliasConfig]] = {}
        self.lock = threading.RLock()
        self._deletion_listeners: list[Callable[[str, str, str], None]] = []

    def load(self, existing: set[FunctionKey]) -> None:
        """Aliases of functions that still exist; those of a function deleted just before a crash are dropped."""
        for alias in self._store.aliases():
            key = (alias.region, alias.function_name)
            if key in existing:
                self._aliases.setdefault(key, {})[alias.name] = alias
            else:
                self._store.delete_alias(alias.region, alias.function_name, alias.name)

    # -- reads (the invoke path) -----------------------------------------------------------------------------------
    def get(self, region: str, name: str, alias: str) -> AliasConfig | None:
        aliases = self._aliases.get((region, name))
        return aliases.get(alias) if aliases else None

    def require(self, region: str, name: str, alias: str) -> AliasConfig:
        """GetAlias: the alias or AWS's 404 (the same message whether or not the function exists)."""
        check_alias_name(alias)
        found = self.get(region, name, alias)
        if found is None:
            raise ResourceNotFoundException(f"Cannot find alias arn: {self._arn(region, name, alias)}")
        return found

    def list(self, region: str, name: str, function_version: str | None = None) -> list[AliasConfig]:
        self._require_function(region, name)
        aliases = sorted((self._aliases.get((region, name)) or {}).values(), key=lambda alias: alias.name)
        if function_version is not None:
            aliases = [alias for alias in aliases if alias.function_version == function_version]
        return aliases

    def referencing(self, region: str, name: str, version: str) -> list[str]:
        """Names of the aliases that can run `version` (as their version or their routing's)."""
        aliases = (self._aliases.get((region, name)) or {}).values()
        return sorted(alias.name for alias in aliases if version in alias.versions)

    # -- writes ------------------------------------------------------------------------------------------------------
    def create(self, region: str, name: str, body: dict[str, Any]) -> AliasConfig:
        check_alias_request(body, name=None, creating=True)
        weights = routing_weights(body) or {}
        check_routing(body["FunctionVersion"], weights)
        with self.lock:
            self._require_versions(region, name, body["FunctionVersion"], weights)
            if self.get(region, name, body["Name"]) is not None:
                raise ResourceConflictException(f"Alias already exists: {self._arn(region, name, body['Name'])}")
            alias = AliasConfig(
                region=region,
                account=self._account,
                function_name=name,
                name=body["Name"],
                function_version=body["FunctionVersion"],
                description=body.get("Description") or "",
                additional_weights=weights,
                revision_id=str(uuid.uuid4()),
            )
            self._save(alias)
        return alias

    def update(self, region: str, name: str, alias_name: str, body: dict[str, Any]) -> AliasConfig:
        """Members left out keep their value; `RoutingConfig: {}` (or empty weights) removes the routing."""
        check_alias_request(body, name=alias_name, creating=False)
        with self.lock:
            current = self.get(region, name, alias_name)
            if current is None:
                raise ResourceNotFoundException(f"Alias not found: {self._arn(region, name, alias_name)}")
            if body.get("RevisionId") is not None and body["RevisionId"] != current.revision_id:
                raise PreconditionFailedException(REVISION_MISMATCH)
            version = body.get("FunctionVersion") or current.function_version
            weights = routing_weights(body)
            weights = current.additional_weights if weights is None else weights
            check_routing(version, weights)
            self._require_versions(region, name, version, weights)
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

    def delete(self, region: str, name: str, alias_name: str) -> None:
        """Idempotent for an alias that is not there (recorded from AWS), but the function must exist."""
        check_alias_name(alias_name)
        with self.lock:
            self._require_function(region, name)
            if self.get(region, name, alias_name) is None:
                return
            self._store.delete_alias(region, name, alias_name)
            self._aliases[(region, name)].pop(alias_name, None)
            for listener in self._deletion_listeners:
                listener(region, name, alias_name)

    def set_revision(self, region: str, name: str, alias_name: str, revision_id: str) -> None:
        """Replace an alias's RevisionId when its resource policy changes (as AWS does); the caller holds `lock`."""
        self._save(dataclasses.replace(self._aliases[(region, name)][alias_name], revision_id=revision_id))

    def on_delete(self, listener: Callable[[str, str, str], None]) -> None:
        """Call `listener(region, function name, alias name)` after an alias is deleted (its policy goes with it)."""
        self._deletion_listeners.append(listener)

    def forget(self, region: str, name: str) -> None:
        """After the function was deleted (the version store dropped the rows): the in-memory view."""
        with self.lock:
            self._aliases.pop((region, name), None)

    # -- helpers -----------------------------------------------------------------------------------------------------
    def _save(self, alias: AliasConfig) -> None:
        self._store.put_alias(alias)
        self._aliases.setdefault((alias.region, alias.function_name), {})[alias.name] = alias

    def _require_function(self, region: str, name: str) -> None:
        if self._lookup(region, name, LATEST) is None:
            raise ResourceNotFoundException(f"Function not found: {function_arn(region, self._account, name)}")

    def _require_versions(self, region: str, name: str, version: str, weights: dict[str, float]) -> None:
        for needed in (version, *weights):
            if self._lookup(region, name, needed) is None:
                raise ResourceNotFoundException(f"Function not found: {function_arn(region, self._account, name, needed)}")

    def _arn(self, region: str, name: str, alias: str) -> str:
        return function_arn(region, self._account, name, alias)
