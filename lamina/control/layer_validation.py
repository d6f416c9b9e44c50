"""Lambda's own rules for the layer operations; the model's constraints are `lamina.validation`'s pass (`LAMBDA`).

As for functions (see `validation.py`): a member of the wrong JSON type makes the body unreadable; the model's
constraints are then reported together in one ValidationException, in the model's member order; then the rules
below, the first failure wins.
"""
from __future__ import annotations

from typing import Any

from lamina.control.validation import LAMBDA, NO_CODE_SOURCE, ZIP_FILE_NOT_ALONE
from lamina.errors import InvalidParameterValueException
from lamina.validation.paging import page_size


def validate_publish(body: dict[str, Any]) -> None:
    """PublishLayerVersion's JSON body."""
    LAMBDA.check("PublishLayerVersion", body)
    content = body["Content"]
    has_zip = content.get("ZipFile") is not None
    if has_zip and any(content.get(member) is not None for member in ("S3Bucket", "S3Key", "S3ObjectVersion")):
        raise InvalidParameterValueException(ZIP_FILE_NOT_ALONE)
    if not has_zip and (content.get("S3Bucket") is None or content.get("S3Key") is None):
        raise InvalidParameterValueException(NO_CODE_SOURCE)


def validate_list_filters(runtime: str | None, architecture: str | None, max_items: str | None) -> int:
    """ListLayers / ListLayerVersions query parameters (model order); the page size."""
    return page_size(LAMBDA, "ListLayers", max_items, CompatibleRuntime=runtime, CompatibleArchitecture=architecture)


def validate_add_permission(body: dict[str, Any]) -> None:
    """AddLayerVersionPermission's JSON body."""
    LAMBDA.check("AddLayerVersionPermission", body)


def validate_statement_id(statement_id: str) -> None:
    """RemoveLayerVersionPermission's path parameter."""
    LAMBDA.check("RemoveLayerVersionPermission", {"StatementId": statement_id})
