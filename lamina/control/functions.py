"""Function management: the rules of create/update/delete/list, independent of HTTP.

Mutations run in a worker thread (hashing and unzipping a 50 MB package must not stall invokes). The service
keeps the current version of every function in memory, so the invoke path never touches the database.
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
import uuid
from typing import Any, Callable, ContextManager, Iterator

from lamina.control import validation
from lamina.control.aliases import AliasService
from lamina.model.arns import LATEST, FunctionRef, function_arn, is_version
from lamina.control.code_sources import CodePackage, CodeSources
from lamina.control.layers import LayerService
from lamina.model.function import FunctionConfig, aws_timestamp
from lamina.model.keys import FunctionKey, Scope
from lamina.control.routing import choose_version
from lamina.control.version_validation import ALIAS_NAME_PATTERN, check_publish_request
from lamina.control.versions import VersionService
from lamina.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lamina.runtimes.registry import RuntimeCatalog, RuntimeUnavailable
from lamina.store.base import FunctionStore, StoreConflict
from lamina.store.blobs import CodeStore
from lamina.store.codezip import ZipSummary
from lamina.store.space import SpaceReserve
from lamina.store.versions import VersionStore


class FunctionService:
    def __init__(
        self,
        store: FunctionStore,
        code: CodeStore,
        catalog: RuntimeCatalog,
        on_change: Callable[[FunctionKey, str | None], None],
        *,
        version_store: VersionStore,
        sources: CodeSources | None = None,
        layers: LayerService | None = None,
        reserve: SpaceReserve | None = None,
        transaction: Callable[[], ContextManager[object]] = contextlib.nullcontext,
    ) -> None:
        """`on_change(function, version)`: called after a version (None: the whole function) changed or went away.
        `reserve`: space a delete may take on a full disk, so deleting is always possible. `transaction`: one
        atomic change over the function and version stores (their shared database's `transaction`).

        Every function belongs to the account and region of the caller that created it (its `FunctionKey`); the
        operations take the caller's `Scope` and never see another account's functions."""
        self._store = store
        self._reserve = reserve
        self._sources = sources or CodeSources(None, "")
        self._layers = layers
        self._code = code
        self._catalog = catalog
        self._on_change = on_change
        self._latest: dict[FunctionKey, FunctionConfig] = {}
        self._updating: dict[FunctionKey, threading.Lock] = {}
        self._guard = threading.Lock()
        self._deletion_listeners: list[Callable[[FunctionKey], None]] = []
        self._qualifier_deletion_listeners: list[Callable[[FunctionKey, str], None]] = []
        self.versions = VersionService(store, version_store, transaction)
        self.aliases = AliasService(version_store, self.version_config)

    def on_delete(self, listener: Callable[[FunctionKey], None]) -> None:
        """Call `listener(function)` after a whole function is deleted (its tags and policies go with it)."""
        self._deletion_listeners.append(listener)

    def on_qualifier_delete(self, listener: Callable[[FunctionKey, str], None]) -> None:
        """Call `listener(function, qualifier)` after one version or one alias is deleted (its policy goes)."""
        self._qualifier_deletion_listeners.append(listener)
        self.aliases.on_delete(listener)

    def load(self) -> None:
        for config in self._store.list_versions(None, LATEST):
            self._latest[config.key] = config
        self.versions.load(self._store.list_versions(None, None))
        self.aliases.load(set(self._latest))

    # -- reads ---------------------------------------------------------------------------------------------------
    def resolve(
        self, scope: Scope, ref: FunctionRef, qualifier: str | None, *, routed: bool = False
    ) -> FunctionConfig:
        """The version a reference names ($LATEST, a number, or an alias's version), or AWS's 404.

        `routed`: an alias with a RoutingConfig picks by weight, as an invocation does; otherwise it names its version.
        """
        self._check_arn_scope(scope, ref, qualifier)
        key = scope.function(ref.name)
        config = None
        if qualifier is None or is_version(qualifier):
            config = self.version_config(key, qualifier or LATEST)
        elif key in self._latest:
            alias = self.aliases.get(key, qualifier)
            if alias is not None:
                version = (
                    choose_version(alias.function_version, alias.additional_weights) if routed else alias.function_version
                )
                config = self.version_config(key, version)
        if config is None:
            raise ResourceNotFoundException(f"Function not found: {key.arn(qualifier)}")
        return config

    def version_config(self, key: FunctionKey, version: str) -> FunctionConfig | None:
        """$LATEST or a published version of an existing function."""
        if version == LATEST:
            return self._latest.get(key)
        return self.versions.get(key, version) if key in self._latest else None

    @staticmethod
    def _check_arn_scope(scope: Scope, ref: FunctionRef, qualifier: str | None) -> None:
        """AWS's 404 when an ARN names another region or account than the caller's."""
        if (ref.region is not None and ref.region != scope.region) or (
            ref.account is not None and ref.account != scope.account
        ):
            arn_region = ref.region or scope.region
            raise ResourceNotFoundException(
                f"Function not found: {function_arn(arn_region, ref.account or scope.account, ref.name, qualifier)}"
            )

    def check_scope(self, scope: Scope, ref: FunctionRef) -> FunctionKey:
        """The function `ref` names in the caller's scope; AWS's 404 when its ARN names another region or account
        than the caller's."""
        self._check_arn_scope(scope, ref, ref.qualifier)
        return scope.function(ref.name)

    def exists(self, key: FunctionKey) -> bool:
        return key in self._latest

    def list_latest(self, scope: Scope) -> list[FunctionConfig]:
        return sorted((c for key, c in self._latest.items() if key.scope == scope), key=lambda c: c.name)

    def usage(self, scope: Scope) -> tuple[int, int]:
        functions = [c for key, c in self._latest.items() if key.scope == scope]
        return len(functions), sum(c.code_size for c in functions) + self.versions.code_size(scope)

    # -- writes ----------------------------------------------------------------------------------------------------
    def create(self, scope: Scope, ref: FunctionRef, body: dict[str, Any]) -> FunctionConfig:
        validation.validate_create_function(body)
        self._check_runtime(body.get("Runtime"))
        key = scope.function(ref.name)
        if key in self._latest:
            raise ResourceConflictException(f"Function already exist: {ref.name}")
        with self._ingest(self._sources.read(body["Code"])) as summary:
            config = FunctionConfig(
                region=scope.region,
                account=scope.account,
                name=ref.name,
                role=body["Role"],
                runtime=body.get("Runtime"),
                handler=body.get("Handler"),
                code_sha256_hex=summary.sha256_hex,
                code_sha256_b64=summary.sha256_b64,
                code_size=summary.size,
                revision_id=str(uuid.uuid4()),
                last_modified=aws_timestamp(),
            )
            config = self._with_layers(self._apply_settings(config, body), body)
            try:
                self._store.create(config)
            except StoreConflict as error:
                raise ResourceConflictException(f"Function already exist: {ref.name}") from error
        self._latest[key] = config
        if body.get("Publish"):
            with self._exclusive(scope, ref) as current:
                return self._publish(current, None)
        return config

    def update_code(self, scope: Scope, ref: FunctionRef, body: dict[str, Any]) -> FunctionConfig:
        validation.validate_update_code(body)
        with self._exclusive(scope, ref) as current:
            self._check_revision(current, body.get("RevisionId"))
            with self._ingest(self._sources.read(body)) as summary:
                changed = dataclasses.replace(
                    current,
                    code_sha256_hex=summary.sha256_hex,
                    code_sha256_b64=summary.sha256_b64,
                    code_size=summary.size,
                )
                if self._layers is not None:
                    self._layers.check_total_size(summary.sha256_hex, current.layers)
                if body.get("DryRun"):
                    return changed
                committed = self._commit(current, changed)
            return self._publish(committed, None) if body.get("Publish") else committed

    def update_configuration(self, scope: Scope, ref: FunctionRef, body: dict[str, Any]) -> FunctionConfig:
        validation.validate_update_configuration(body)
        if "Runtime" in body:
            self._check_runtime(body["Runtime"])
        with self._exclusive(scope, ref) as current:
            self._check_revision(current, body.get("RevisionId"))
            changed = self._with_layers(self._apply_settings(current, body), body)
            return self._commit(current, changed)

    def delete(self, scope: Scope, ref: FunctionRef, qualifier: str | None) -> None:
        """The whole function (with its versions and aliases), or with a number as qualifier one version."""
        self._check_arn_scope(scope, ref, qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValueException("$LATEST version cannot be deleted without deleting the function.")
        if qualifier is not None and re.fullmatch(ALIAS_NAME_PATTERN, qualifier):
            raise InvalidParameterValueException("Deletion of aliases is not currently supported.")
        key = scope.function(ref.name)
        if key not in self._latest:
            raise ResourceNotFoundException(f"Function not found: {key.arn()}")
        if self._reserve is not None:
            self._reserve.make_room()
        if qualifier is not None:
            self._delete_version(key, qualifier)
            return
        self.versions.delete_function(key)
        self._latest.pop(key, None)
        self.aliases.forget(key)
        for listener in self._deletion_listeners:
            listener(key)
        self._on_change(key, None)

    def _delete_version(self, key: FunctionKey, version: str) -> None:
        """Idempotent for a version that is not there (recorded from AWS); refused while an alias can run it."""
        with self.aliases.lock:
            users = self.aliases.referencing(key, version)
            if users:
                raise ResourceConflictException(
                    f"Unable to delete version because the following aliases reference it: [{', '.join(users)}]"
                )
            if self.versions.remove(key, version):
                for listener in self._qualifier_deletion_listeners:
                    listener(key, version)
                self._on_change(key, version)

    def publish(self, scope: Scope, ref: FunctionRef, body: dict[str, Any]) -> FunctionConfig:
        """PublishVersion: a new immutable version of $LATEST, or the last one when nothing changed since."""
        with self._exclusive(scope, ref) as current:
            self._check_revision(current, body.get("RevisionId"))
            check_publish_request(body, current.code_sha256_b64)
            return self._publish(current, body.get("Description"))

    # -- helpers -----------------------------------------------------------------------------------------------------
    def _check_runtime(self, runtime: str | None) -> None:
        if runtime is None:
            return
        try:
            self._catalog.check(runtime)
        except RuntimeUnavailable as error:
            raise InvalidParameterValueException(str(error)) from error

    def _ingest(self, package: CodePackage) -> ContextManager[ZipSummary]:
        return self._code.ingest(package.data, max_zipped=package.max_zipped)

    def _with_layers(self, config: FunctionConfig, body: dict[str, Any]) -> FunctionConfig:
        """`Layers` replaces the function's list; they must exist, and fit with the code in the unzipped limit."""
        arns = body.get("Layers")
        if arns is None:
            return config
        if self._layers is None:
            raise InvalidParameterValueException("Layers are not available on this Lamina server.")
        layers = self._layers.resolve_for_function(config.key.scope, arns)
        self._layers.check_total_size(config.code_sha256_hex, layers)
        return dataclasses.replace(config, layers=layers)

    @staticmethod
    def _apply_settings(config: FunctionConfig, body: dict[str, Any]) -> FunctionConfig:
        body = {key: value for key, value in body.items() if value is not None}  # AWS treats null as absent
        changes: dict[str, Any] = {}
        simple = {
            "Role": "role",
            "Runtime": "runtime",
            "Handler": "handler",
            "Description": "description",
            "Timeout": "timeout",
            "MemorySize": "memory_size",
        }
        for key, attribute in simple.items():
            if key in body:
                changes[attribute] = body[key]
        if "Environment" in body:
            changes["environment"] = dict(body["Environment"].get("Variables") or {})
        if "EphemeralStorage" in body:
            changes["ephemeral_storage"] = body["EphemeralStorage"]["Size"]
        if "Architectures" in body:
            changes["architectures"] = list(body["Architectures"])
        if "TracingConfig" in body:
            changes["tracing_mode"] = body["TracingConfig"].get("Mode", "PassThrough")
        if "LoggingConfig" in body:
            changes["logging_config"] = dict(body["LoggingConfig"] or {})
        if body.get("DeadLetterConfig", {}).get("TargetArn") is not None:
            # An empty TargetArn removes the DLQ; `DeadLetterConfig: {}` leaves it as it is (recorded from AWS).
            changes["dead_letter_target"] = body["DeadLetterConfig"]["TargetArn"] or None
        return dataclasses.replace(config, **changes)

    def _check_revision(self, current: FunctionConfig, revision_id: str | None) -> None:
        if revision_id is not None and revision_id != current.revision_id:
            raise PreconditionFailedException(
                "The Revision Id provided does not match the latest Revision Id. "
                "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
            )

    def _commit(self, current: FunctionConfig, changed: FunctionConfig) -> FunctionConfig:
        changed = dataclasses.replace(changed, revision_id=str(uuid.uuid4()), last_modified=aws_timestamp())
        try:
            self._store.replace(changed, current.revision_id)
        except StoreConflict as error:
            raise ResourceConflictException(
                f"The operation cannot be performed at this time. An update is in progress for resource: {current.arn}"
            ) from error
        self._latest[changed.key] = changed
        self._on_change(changed.key, LATEST)
        return changed

    def _publish(self, current: FunctionConfig, description: str | None) -> FunctionConfig:
        """Publish `current` ($LATEST, whose update slot the caller holds); $LATEST gets a new RevisionId."""
        try:
            latest, version = self.versions.publish(current, description)
        except StoreConflict as error:
            raise ResourceConflictException(
                f"The operation cannot be performed at this time. An update is in progress for resource: {current.arn}"
            ) from error
        if latest is not None:
            self._latest[latest.key] = latest
            self._on_change(latest.key, LATEST)
        return version

    def _exclusive(self, scope: Scope, ref: FunctionRef) -> "_UpdateSlot":
        key = self.check_scope(scope, ref)
        with self._guard:
            lock = self._updating.setdefault(key, threading.Lock())
        return _UpdateSlot(self, key, lock)

    def current(self, key: FunctionKey) -> FunctionConfig:
        """A function's $LATEST, or AWS's 404."""
        config = self._latest.get(key)
        if config is None:
            raise ResourceNotFoundException(f"Function not found: {key.arn()}")
        return config

    @contextlib.contextmanager
    def revising(self, scope: Scope, ref: FunctionRef) -> Iterator[tuple[FunctionConfig, str]]:
        """Hold $LATEST's update slot while something attached to it changes (tags, its policy); on success it gets
        the yielded new RevisionId, as AWS does, with its code and configuration unchanged."""
        with self._exclusive(scope, ref) as current:
            revision_id = str(uuid.uuid4())
            yield current, revision_id
            changed = dataclasses.replace(current, revision_id=revision_id)
            try:
                self._store.replace(changed, current.revision_id)
            except StoreConflict as error:
                raise ResourceConflictException(
                    f"The operation cannot be performed at this time. An update is in progress for resource: {current.arn}"
                ) from error
            # Code and configuration are unchanged, so warm environments (keyed on content) stay valid.
            self._latest[changed.key] = changed

    @contextlib.contextmanager
    def revising_qualified(self, key: FunctionKey, qualifier: str) -> Iterator[tuple[str, str]]:
        """The same for a published version or an alias (its policy changes): yields (its RevisionId now, the one it
        gets on success). The aliases' lock is held throughout, so neither can be deleted meanwhile."""
        with self.aliases.lock:
            revision_id = str(uuid.uuid4())
            if is_version(qualifier):
                version = self.version_config(key, qualifier)
                if version is None:
                    raise ResourceNotFoundException(f"Function not found: {key.arn(qualifier)}")
                yield version.revision_id, revision_id
                self.versions.set_revision(key, qualifier, revision_id)
            else:
                alias = self.aliases.get(key, qualifier)
                if alias is None:
                    raise ResourceNotFoundException(f"Cannot find alias arn: {key.arn(qualifier)}")
                yield alias.revision_id, revision_id
                self.aliases.set_revision(key, qualifier, revision_id)


class _UpdateSlot:
    """Holds the function's update lock for one mutation; a concurrent update gets AWS's 409."""

    def __init__(self, service: FunctionService, key: FunctionKey, lock: threading.Lock) -> None:
        self._service = service
        self._key = key
        self._lock = lock

    def __enter__(self) -> FunctionConfig:
        current = self._service.current(self._key)
        if not self._lock.acquire(blocking=False):
            raise ResourceConflictException(
                f"The operation cannot be performed at this time. An update is in progress for resource: {current.arn}"
            )
        try:
            return self._service.current(self._key)
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()
