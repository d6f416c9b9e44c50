"""Layer management: publish, read, list, delete, layer version policies, and the layers a function references.

Publishing stores the zip by content address and extracts it right away, so every environment of every function
that uses the version shares that one read-only tree. A deleted version is gone from the API, but functions that
already reference it keep its content (as on AWS). Layers belong to an account in a region, as their ARNs say: every
operation takes the caller's `Scope`.
"""
from __future__ import annotations

import threading
import uuid
import zipfile
from dataclasses import dataclass
from typing import Any, Iterable

from lamina.control import layer_validation
from lamina.model.arns import LayerRef, layer_arn, parse_layer_version_arn
from lamina.control.code_sources import CodeSources
from lamina.model.layer import LayerVersion, layer_statement
from lamina.model.function import FunctionConfig, aws_timestamp
from lamina.model.keys import Scope
from lamina.errors import (
    InvalidParameterValueException,
    PreconditionFailedException,
    ResourceConflictException,
    ResourceNotFoundException,
)
from lamina.store.blobs import CodeStore
from lamina.store.codezip import MAX_UNZIPPED
from lamina.store.layers import LayerStore
from lamina.store.space import SpaceReserve
from lamina.validation.paging import page

_NOT_FOUND = "The resource you requested does not exist."
_WRONG_POLICY_REVISION = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetLayerPolicy API to retrieve the latest Revision Id"
)


@dataclass(frozen=True)
class Page:
    items: list[Any]
    next_marker: str | None


class LayerService:
    def __init__(self, store: LayerStore, code: CodeStore, sources: CodeSources,
                 reserve: SpaceReserve | None = None) -> None:
        """`reserve`: space a delete may take on a full disk, so deleting is always possible."""
        self._store = store
        self._reserve = reserve
        self._code = code
        self._sources = sources
        self._policy_lock = threading.Lock()

    # -- layer versions ----------------------------------------------------------------------------------------------
    def publish(self, scope: Scope, ref: LayerRef, body: dict[str, Any]) -> LayerVersion:
        """Runs in a worker thread: it may fetch from S3, and hashes and unzips the package."""
        layer_validation.validate_publish(body)
        self._check_scope(scope, ref)
        package = self._sources.read(body["Content"])
        with self._code.ingest(package.data, max_zipped=package.max_zipped) as summary:
            created = aws_timestamp()

            def build(number: int) -> LayerVersion:
                return LayerVersion(
                    region=scope.region,
                    account=scope.account,
                    name=ref.name,
                    version=number,
                    code_sha256_hex=summary.sha256_hex,
                    code_sha256_b64=summary.sha256_b64,
                    code_size=summary.size,
                    unzipped_size=summary.unzipped_size,
                    created_date=created,
                    description=body.get("Description") or "",
                    license_info=body.get("LicenseInfo"),
                    compatible_runtimes=body.get("CompatibleRuntimes"),
                    compatible_architectures=body.get("CompatibleArchitectures"),
                )

            return self._store.publish(scope, ref.name, build)

    def get(self, scope: Scope, ref: LayerRef, version: int) -> LayerVersion:
        _check_version(version)
        self._check_scope(scope, ref)
        layer = self._store.get(scope, ref.name, version)
        if layer is None:
            raise ResourceNotFoundException(_NOT_FOUND)
        return layer

    def get_by_arn(self, scope: Scope, arn: str | None) -> LayerVersion:
        parsed = parse_layer_version_arn(arn)
        if parsed is None:
            raise ResourceNotFoundException(_NOT_FOUND)
        ref, version = parsed
        return self.get(scope, ref, version)

    def list_versions(
        self, scope: Scope, ref: LayerRef, runtime: str | None, architecture: str | None, marker: str | None, size: int
    ) -> Page:
        """Newest first; the marker is the last version number of the previous page."""
        if not self._in_scope(scope, ref):
            return Page([], None)
        versions = [v for v in self._store.list_versions(scope, ref.name) if v.matches(runtime, architecture)]
        return Page(*page(versions, lambda v: str(v.version), marker, size, _newest_first))

    def list_layers(
        self, scope: Scope, runtime: str | None, architecture: str | None, marker: str | None, size: int
    ) -> Page:
        """Each layer with its newest version that matches the filters, by name; the marker is a layer name."""
        latest: dict[str, LayerVersion] = {}
        for version in self._store.list_versions(scope, None):
            if version.name not in latest and version.matches(runtime, architecture):
                latest[version.name] = version
        return Page(*page([latest[name] for name in sorted(latest)], lambda v: v.name, marker, size))

    def delete(self, scope: Scope, ref: LayerRef, version: int) -> None:
        """Idempotent, as on AWS; the number is never handed out again."""
        _check_version(version)
        if self._in_scope(scope, ref):
            if self._reserve is not None:
                self._reserve.make_room()
            self._store.delete(scope, ref.name, version)

    # -- layer version policies -------------------------------------------------------------------------------------
    def add_permission(
        self, scope: Scope, ref: LayerRef, version: int, body: dict[str, Any], revision_id: str | None
    ) -> tuple[dict[str, Any], str]:
        layer_validation.validate_add_permission(body)
        with self._policy_lock:
            layer = self._policy_target(scope, ref, version)
            self._check_policy_revision(layer, revision_id)
            statement_id = body["StatementId"]
            if any(statement["Sid"] == statement_id for statement in layer.policy):
                raise ResourceConflictException(
                    f"The statement id ({statement_id}) provided already exists. Please provide a new statement id, "
                    "or remove the existing statement."
                )
            statement = layer_statement(statement_id, body["Principal"], layer.arn, body.get("OrganizationId"))
            layer.policy.append(statement)
            layer.policy_revision_id = str(uuid.uuid4())
            self._store.replace(layer)
        return statement, layer.policy_revision_id

    def get_policy(self, scope: Scope, ref: LayerRef, version: int) -> LayerVersion:
        layer = self._policy_target(scope, ref, version)
        if not layer.policy:
            raise ResourceNotFoundException("No policy is associated with the given resource.")
        return layer

    def remove_permission(
        self, scope: Scope, ref: LayerRef, version: int, statement_id: str, revision_id: str | None
    ) -> None:
        layer_validation.validate_statement_id(statement_id)
        with self._policy_lock:
            layer = self._policy_target(scope, ref, version)
            self._check_policy_revision(layer, revision_id)
            remaining = [statement for statement in layer.policy if statement["Sid"] != statement_id]
            if len(remaining) == len(layer.policy):
                raise ResourceNotFoundException(f"Statement {statement_id} is not found in resource policy.")
            layer.policy = remaining
            layer.policy_revision_id = str(uuid.uuid4())
            self._store.replace(layer)

    def _policy_target(self, scope: Scope, ref: LayerRef, version: int) -> LayerVersion:
        _check_version(version)
        layer = self._store.get(scope, ref.name, version) if self._in_scope(scope, ref) else None
        if layer is None:
            arn = layer_arn(ref.region or scope.region, ref.account or scope.account, ref.name, version)
            raise ResourceNotFoundException(f"Layer version {arn} does not exist.")
        return layer

    @staticmethod
    def _check_policy_revision(layer: LayerVersion, revision_id: str | None) -> None:
        if revision_id is not None and revision_id != layer.policy_revision_id:
            raise PreconditionFailedException(_WRONG_POLICY_REVISION)

    # -- functions ---------------------------------------------------------------------------------------------------
    def resolve_for_function(self, scope: Scope, arns: list[str]) -> list[dict[str, Any]]:
        """A function's `Layers` (already checked for form, count and duplicates) as stored with the function; only
        the layers of the function's own account (the one in `scope`) are found."""
        resolved = []
        for arn in arns:
            parsed = parse_layer_version_arn(arn, field="layers", max_length=2048)
            if parsed is not None and parsed[0].region != scope.region:
                raise InvalidParameterValueException(
                    "Layers are not in the same region as the function. "
                    f"Layers are expected to be in region {scope.region}."
                )
            layer = None
            if parsed is not None and parsed[0].account == scope.account and parsed[1] >= 1:
                layer = self._store.get(scope, parsed[0].name, parsed[1])
            if layer is None:
                raise InvalidParameterValueException(f"Layer version {arn} does not exist.")
            resolved.append(
                {
                    "arn": layer.arn,
                    "code_size": layer.code_size,
                    "code_sha256_hex": layer.code_sha256_hex,
                    "unzipped_size": layer.unzipped_size,
                }
            )
        return resolved

    def check_total_size(self, code_sha256_hex: str, layers: list[dict[str, Any]]) -> None:
        """Function code plus its layers, unzipped, stay within 250 MB (AWS's messages)."""
        if not layers:
            return
        layers_size = sum(layer["unzipped_size"] for layer in layers)
        if layers_size > MAX_UNZIPPED:
            raise InvalidParameterValueException(f"Layers consume more than the available size of {MAX_UNZIPPED} bytes")
        total = layers_size + self._unzipped_size(code_sha256_hex)
        if total > MAX_UNZIPPED:
            raise InvalidParameterValueException(
                f"Function code combined with layers exceeds the maximum allowed size of {MAX_UNZIPPED} bytes. "
                f"The actual size is {total} bytes."
            )

    def _unzipped_size(self, sha256_hex: str) -> int:
        """The declared unzipped size of a stored (already validated) package, from its central directory."""
        with zipfile.ZipFile(self._code.blob_path(sha256_hex)) as archive:
            return sum(info.file_size for info in archive.infolist())

    def referenced_code(self, functions: Iterable[FunctionConfig]) -> set[str]:
        """Layer zips to keep: every stored version's, and every version a function still uses (even deleted)."""
        used = {layer["code_sha256_hex"] for config in functions for layer in config.layers}
        return self._store.referenced_code() | used

    # -- helpers -----------------------------------------------------------------------------------------------------
    @staticmethod
    def _in_scope(scope: Scope, ref: LayerRef) -> bool:
        region_ok = ref.region is None or ref.region == scope.region
        return region_ok and (ref.account is None or ref.account == scope.account)

    def _check_scope(self, scope: Scope, ref: LayerRef) -> None:
        if not self._in_scope(scope, ref):
            raise ResourceNotFoundException(_NOT_FOUND)


def _check_version(version: int) -> None:
    if version < 1:
        raise InvalidParameterValueException("Layer Version Cannot be less than 1")


def _newest_first(marker: str) -> float:
    """ListLayerVersions pages newest first; its marker is a version number (any other marker starts at the top)."""
    return -int(marker) if marker.isdigit() else float("-inf")
