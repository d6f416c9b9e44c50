"""Function management: the rules of create/update/delete/list, independent of HTTP.

Mutations run in a worker thread (hashing and unzipping a 50 MB package must not stall invokes). The service
keeps the current version of every function in memory, so the invoke path never touches the database.
"""
from __future__ import annotations

import base64
import binascii
import dataclasses
import threading
import uuid
from typing import Any, Callable

from lamina.control import validation
from lamina.control.arns import LATEST, FunctionRef, function_arn, is_version
from lamina.control.models import FunctionConfig, aws_timestamp
from lamina.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lamina.runtimes.registry import RuntimeCatalog, RuntimeUnavailable
from lamina.store.base import FunctionStore, StoreConflict
from lamina.store.blobs import CodeStore
from lamina.store.codezip import ZipSummary, inspect_zip

FunctionKey = tuple[str, str]  # (region, name)


def _code_bytes(code: dict[str, Any]) -> bytes:
    if "ZipFile" in code:
        try:
            return base64.b64decode(code["ZipFile"], validate=True)
        except (binascii.Error, TypeError, ValueError) as error:
            raise InvalidParameterValueException(
                "Could not unzip uploaded file. Please check your file, then try to upload again."
            ) from error
    # Validation has already refused ImageUri, so the source is S3, which needs an S3 endpoint.
    raise InvalidParameterValueException(
        "Code from S3 (S3Bucket/S3Key) needs an S3 endpoint, and this Lamina server has none configured."
    )


class FunctionService:
    def __init__(
        self,
        store: FunctionStore,
        code: CodeStore,
        catalog: RuntimeCatalog,
        account: str,
        on_change: Callable[[str, str], None],
    ) -> None:
        self._store = store
        self._code = code
        self._catalog = catalog
        self._account = account
        self._on_change = on_change
        self._latest: dict[FunctionKey, FunctionConfig] = {}
        self._updating: dict[FunctionKey, threading.Lock] = {}
        self._guard = threading.Lock()

    def load(self) -> None:
        for config in self._store.list_versions(None, LATEST):
            self._latest[(config.region, config.name)] = config

    # -- reads ---------------------------------------------------------------------------------------------------
    def resolve(self, region: str, ref: FunctionRef, qualifier: str | None) -> FunctionConfig:
        """The version a (possibly qualified) reference names, or AWS's 404."""
        self._check_arn_scope(region, ref, qualifier)
        config = self._latest.get((region, ref.name))
        if config is None or (qualifier is not None and qualifier != LATEST):
            raise ResourceNotFoundException(
                f"Function not found: {function_arn(region, self._account, ref.name, qualifier)}"
            )
        return config

    def _check_arn_scope(self, region: str, ref: FunctionRef, qualifier: str | None) -> None:
        if (ref.region is not None and ref.region != region) or (ref.account is not None and ref.account != self._account):
            arn_region = ref.region or region
            raise ResourceNotFoundException(
                f"Function not found: {function_arn(arn_region, ref.account or self._account, ref.name, qualifier)}"
            )

    def list_latest(self, region: str) -> list[FunctionConfig]:
        return sorted((c for (r, _), c in self._latest.items() if r == region), key=lambda c: c.name)

    def usage(self, region: str) -> tuple[int, int]:
        functions = [c for (r, _), c in self._latest.items() if r == region]
        return len(functions), sum(c.code_size for c in functions)

    # -- writes ----------------------------------------------------------------------------------------------------
    def create(self, region: str, ref: FunctionRef, body: dict[str, Any]) -> FunctionConfig:
        validation.validate_create_function(body)
        self._check_runtime(body.get("Runtime"))
        if (region, ref.name) in self._latest:
            raise ResourceConflictException(f"Function already exist: {ref.name}")
        summary = self._ingest(_code_bytes(body["Code"]))
        config = FunctionConfig(
            region=region,
            account=self._account,
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
        config = self._apply_settings(config, body)
        try:
            self._store.create(config)
        except StoreConflict as error:
            raise ResourceConflictException(f"Function already exist: {ref.name}") from error
        self._latest[(region, ref.name)] = config
        return config

    def update_code(self, region: str, ref: FunctionRef, body: dict[str, Any]) -> FunctionConfig:
        validation.validate_update_code(body)
        with self._exclusive(region, ref) as current:
            self._check_revision(current, body.get("RevisionId"))
            summary = self._ingest(_code_bytes(body))
            changed = dataclasses.replace(
                current,
                code_sha256_hex=summary.sha256_hex,
                code_sha256_b64=summary.sha256_b64,
                code_size=summary.size,
            )
            if body.get("DryRun"):
                return changed
            return self._commit(current, changed)

    def update_configuration(self, region: str, ref: FunctionRef, body: dict[str, Any]) -> FunctionConfig:
        validation.validate_update_configuration(body)
        if "Runtime" in body:
            self._check_runtime(body["Runtime"])
        with self._exclusive(region, ref) as current:
            self._check_revision(current, body.get("RevisionId"))
            changed = self._apply_settings(current, body)
            return self._commit(current, changed)

    def delete(self, region: str, ref: FunctionRef, qualifier: str | None) -> None:
        self._check_arn_scope(region, ref, qualifier)
        if qualifier == LATEST:
            raise InvalidParameterValueException("$LATEST version cannot be deleted without deleting the function.")
        if (region, ref.name) not in self._latest or (qualifier is not None and is_version(qualifier)):
            raise ResourceNotFoundException(
                f"Function not found: {function_arn(region, self._account, ref.name, qualifier)}"
            )
        self._store.delete(region, ref.name)
        self._latest.pop((region, ref.name), None)
        self._on_change(region, ref.name)

    # -- helpers -----------------------------------------------------------------------------------------------------
    def _check_runtime(self, runtime: str | None) -> None:
        if runtime is None:
            return
        try:
            self._catalog.check(runtime)
        except RuntimeUnavailable as error:
            raise InvalidParameterValueException(str(error)) from error

    def _ingest(self, data: bytes) -> ZipSummary:
        summary = inspect_zip(data)
        self._code.put(summary.sha256_hex, data)
        self._code.tree(summary.sha256_hex)
        return summary

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
        self._latest[(changed.region, changed.name)] = changed
        self._on_change(changed.region, changed.name)
        return changed

    def _exclusive(self, region: str, ref: FunctionRef) -> "_UpdateSlot":
        self._check_arn_scope(region, ref, ref.qualifier)
        with self._guard:
            lock = self._updating.setdefault((region, ref.name), threading.Lock())
        return _UpdateSlot(self, region, ref, lock)

    def current(self, region: str, ref: FunctionRef) -> FunctionConfig:
        config = self._latest.get((region, ref.name))
        if config is None:
            raise ResourceNotFoundException(f"Function not found: {function_arn(region, self._account, ref.name)}")
        return config


class _UpdateSlot:
    """Holds the function's update lock for one mutation; a concurrent update gets AWS's 409."""

    def __init__(self, service: FunctionService, region: str, ref: FunctionRef, lock: threading.Lock) -> None:
        self._service = service
        self._region = region
        self._ref = ref
        self._lock = lock

    def __enter__(self) -> FunctionConfig:
        current = self._service.current(self._region, self._ref)
        if not self._lock.acquire(blocking=False):
            raise ResourceConflictException(
                f"The operation cannot be performed at this time. An update is in progress for resource: {current.arn}"
            )
        try:
            return self._service.current(self._region, self._ref)
        except BaseException:
            self._lock.release()
            raise

    def __exit__(self, *exc_info: object) -> None:
        self._lock.release()
