"""AWS's request validation for the layer operations, with its recorded messages.

As for functions (see `validation.py`): a member of the wrong JSON type makes the body unreadable; the model's
constraints are then reported together in one ValidationException, in the model's member order.
"""
from __future__ import annotations

import re
from typing import Any

from lamina.control.runtimes_catalog import DEPRECATED_RUNTIMES, NEWER_SUPPORTED_RUNTIMES, SUPPORTED_RUNTIMES
from lamina.control.validation import ARCHITECTURES, S3_BUCKET_PATTERN
from lamina.errors import InvalidParameterValueException, InvalidRequestContentException, ValidationException

STATEMENT_ID_PATTERN = r"([a-zA-Z0-9-_]+)"
LAYER_ACTION_PATTERN = "lambda:GetLayerVersion"
LAYER_PRINCIPAL_PATTERN = r"\d{12}|\*|arn:(aws[a-zA-Z-]*):iam::\d{12}:root"
ORGANIZATION_ID_PATTERN = r"o-[a-z0-9]{10,32}"
MAX_COMPATIBLE_RUNTIMES = 15
MAX_LIST_ITEMS = 50

# ListLayers / ListLayerVersions print the service's whole Runtime enum, in this order (recorded); PublishLayerVersion
# accepts those names too (deprecated ones included, recorded) but prints only the supported ones.
FILTER_RUNTIMES: tuple[str, ...] = (
    "ruby3.5", "ruby2.6", "dotnetcore1.0", "python3.7", "nodejs8.10", "nasa", "ruby2.7", "python2.7-greengrass",
    "dotnetcore2.0", "python3.8", "java21", "dotnet6", "dotnetcore2.1", "python3.9", "java11", "nodejs6.10",
    "provided", "dotnetcore3.1", "dotnet8", "java25", "java17", "nodejs", "nodejs4.3", "java8.al2", "go1.x",
    "dotnet10", "nodejs20.x", "go1.9", "byol", "nodejs10.x", "provided.al2023", "nodejs22.x", "python3.10", "java8",
    "nodejs12.x", "python3.11", "nodejs24.x", "nodejs8.x", "python3.12", "nodejs14.x", "nodejs8.9", "nodejs26.x",
    "python3.13", "python3.14", "nodejs16.x", "python3.15", "provided.al2", "nodejs4.3-edge", "nodejs18.x", "ruby3.2",
    "python3.4", "ruby3.3", "ruby3.4", "ruby2.5", "python3.6", "python2.7",
)
KNOWN_RUNTIMES = frozenset((*FILTER_RUNTIMES, *SUPPORTED_RUNTIMES, *NEWER_SUPPORTED_RUNTIMES, *DEPRECATED_RUNTIMES))
_ARCHITECTURE_MEMBER = (
    f"Member must satisfy constraint: [Member must satisfy enum value set: [{', '.join(ARCHITECTURES)}], "
    "Member must not be null]"
)
_NO_SOURCE = "Please provide a source for function code."
_ZIP_FILE_NOT_ALONE = "Please do not provide other FunctionCode parameters when providing a ZipFile."


class _Problems:
    """Collects the model-constraint violations of one request, then raises them as AWS does (all at once)."""

    def __init__(self) -> None:
        self.entries: list[str] = []

    def add(self, value: Any, field: str, constraint: str) -> None:
        shown = "null" if value is None else f"'{_java_text(value)}'"
        self.entries.append(f"Value {shown} at '{field}' failed to satisfy constraint: {constraint}")

    def length(self, value: str, field: str, low: int, high: int) -> None:
        if len(value) > high:
            self.add(value, field, f"Member must have length less than or equal to {high}")
        elif len(value) < low:
            self.add(value, field, f"Member must have length greater than or equal to {low}")

    def pattern(self, value: str, field: str, pattern: str) -> None:
        if re.fullmatch(pattern, value, re.ASCII) is None:
            self.add(value, field, f"Member must satisfy regular expression pattern: {pattern}")

    def raise_if_any(self) -> None:
        if self.entries:
            count = len(self.entries)
            raise ValidationException(
                f"{count} validation error{'s' if count > 1 else ''} detected: {'; '.join(self.entries)}"
            )


def validate_publish(body: dict[str, Any]) -> None:
    """PublishLayerVersion's JSON body."""
    _check_type(body.get("Description"), str, "Description")
    _check_type(body.get("LicenseInfo"), str, "LicenseInfo")
    content = body.get("Content")
    _check_type(content, dict, "Content")
    for member in ("ZipFile", "S3Bucket", "S3Key", "S3ObjectVersion"):
        _check_type((content or {}).get(member), str, f"Content.{member}")
    for member in ("CompatibleRuntimes", "CompatibleArchitectures"):
        _check_type(body.get(member), list, member)
        for index, item in enumerate(body.get(member) or []):
            _check_type(item, str, f"{member}[{index}]")

    problems = _Problems()
    if body.get("Description") is not None:
        problems.length(body["Description"], "description", 0, 256)
    if content is None:
        problems.add(None, "content", "Member must not be null")
    else:
        if content.get("S3Bucket") is not None:
            problems.length(content["S3Bucket"], "content.s3Bucket", 3, 63)
            problems.pattern(content["S3Bucket"], "content.s3Bucket", S3_BUCKET_PATTERN)
        for member, field in (("S3Key", "content.s3Key"), ("S3ObjectVersion", "content.s3ObjectVersion")):
            if content.get(member) is not None:
                problems.length(content[member], field, 1, 1024)
    runtimes = body.get("CompatibleRuntimes")
    if runtimes is not None:
        if len(runtimes) > MAX_COMPATIBLE_RUNTIMES:
            limit = f"Member must have length less than or equal to {MAX_COMPATIBLE_RUNTIMES}"
            problems.add(runtimes, "compatibleRuntimes", limit)
        elif any(runtime not in KNOWN_RUNTIMES for runtime in runtimes):
            enum = f"Member must satisfy enum value set: [{', '.join(SUPPORTED_RUNTIMES)}]"
            problems.add(runtimes, "compatibleRuntimes", enum)
    if body.get("LicenseInfo") is not None:
        problems.length(body["LicenseInfo"], "licenseInfo", 0, 512)
    architectures = body.get("CompatibleArchitectures")
    if architectures is not None:
        if len(architectures) > len(ARCHITECTURES):
            problems.add(architectures, "compatibleArchitectures", "Member must have length less than or equal to 2")
        elif any(architecture not in ARCHITECTURES for architecture in architectures):
            problems.add(architectures, "compatibleArchitectures", _ARCHITECTURE_MEMBER)
    problems.raise_if_any()

    has_zip = content.get("ZipFile") is not None
    if has_zip and any(content.get(member) is not None for member in ("S3Bucket", "S3Key", "S3ObjectVersion")):
        raise InvalidParameterValueException(_ZIP_FILE_NOT_ALONE)
    if not has_zip and (content.get("S3Bucket") is None or content.get("S3Key") is None):
        raise InvalidParameterValueException(_NO_SOURCE)


def validate_list_filters(runtime: str | None, architecture: str | None, max_items: str | None) -> int:
    """ListLayers / ListLayerVersions query parameters (model order); the page size."""
    problems = _Problems()
    if runtime is not None and runtime not in KNOWN_RUNTIMES:
        enum = f"Member must satisfy enum value set: [{', '.join(FILTER_RUNTIMES)}]"
        problems.add(runtime, "compatibleRuntime", enum)
    size = MAX_LIST_ITEMS
    if max_items is not None:
        if not re.fullmatch(r"-?\d+", max_items):
            raise InvalidRequestContentException(f"Could not parse request: MaxItems '{max_items}' is not an integer.")
        size = int(max_items)
        if size > MAX_LIST_ITEMS:
            problems.add(size, "maxItems", f"Member must have value less than or equal to {MAX_LIST_ITEMS}")
        elif size < 1:
            problems.add(size, "maxItems", "Member must have value greater than or equal to 1")
    if architecture is not None and architecture not in ARCHITECTURES:
        problems.add(
            architecture, "compatibleArchitecture", f"Member must satisfy enum value set: [{', '.join(ARCHITECTURES)}]"
        )
    problems.raise_if_any()
    return size


def validate_add_permission(body: dict[str, Any]) -> None:
    """AddLayerVersionPermission's JSON body."""
    for member in ("StatementId", "Action", "Principal", "OrganizationId"):
        _check_type(body.get(member), str, member)
    problems = _Problems()
    for member, field, check in (
        ("StatementId", "statementId", _statement_id),
        ("Action", "action", _action),
        ("Principal", "principal", _principal),
    ):
        if body.get(member) is None:
            problems.add(None, field, "Member must not be null")
        else:
            check(problems, body[member], field)
    organization = body.get("OrganizationId")
    if organization is not None:
        problems.length(organization, "organizationId", 0, 34)
        problems.pattern(organization, "organizationId", ORGANIZATION_ID_PATTERN)
    problems.raise_if_any()


def validate_statement_id(statement_id: str) -> None:
    """RemoveLayerVersionPermission's path parameter."""
    problems = _Problems()
    _statement_id(problems, statement_id, "statementId")
    problems.raise_if_any()


def _statement_id(problems: _Problems, value: str, field: str) -> None:
    problems.length(value, field, 1, 100)
    problems.pattern(value, field, STATEMENT_ID_PATTERN)


def _action(problems: _Problems, value: str, field: str) -> None:
    problems.length(value, field, 0, 22)
    problems.pattern(value, field, LAYER_ACTION_PATTERN)


def _principal(problems: _Problems, value: str, field: str) -> None:
    problems.pattern(value, field, LAYER_PRINCIPAL_PATTERN)


def _check_type(value: Any, expected: type, path: str) -> None:
    """Null is "absent"; any other JSON type than the model's makes the body unreadable."""
    if value is None or (isinstance(value, expected) and not isinstance(value, bool)):
        return
    kind = {str: "a string", list: "a list", dict: "an object"}[expected]
    raise InvalidRequestContentException(f"Could not parse request body into json: expected {kind} for {path}.")


def _java_text(value: Any) -> str:
    """Lists print as Java prints them: `[a, b]`."""
    if isinstance(value, list):
        return "[" + ", ".join("null" if item is None else str(item) for item in value) + "]"
    return str(value)
