"""Lambda's request validation for CreateFunction, UpdateFunctionConfiguration and UpdateFunctionCode.

AWS checks a request in three passes, and so does this module, so that a bad request fails the same way:
1. and 2. deserialisation and the service model's constraints: `lamina.validation`'s pass over botocore's Lambda
   model (`LAMBDA`), with the override table below where Lambda's server differs from the published model;
3. Lambda's own rules (runtime, memory quota, layers, environment, code source): InvalidParameterValueException,
   the first failure wins.
Messages are AWS's recorded text where one exists (`shared/reference/aws-recorded`). FunctionName is not checked
here: the API layer parses it with `lamina.model.arns` before calling in. Unknown members are ignored, as AWS does.
"""
from __future__ import annotations

import json
from typing import Any

from botocore.model import ServiceModel

from lamina.control.runtime_identifiers import (
    KNOWN_RUNTIMES,
    LIST_FILTER_RUNTIMES,
    SUPPORTED_RUNTIMES,
    deprecated_runtime_message,
    runtime_status,
    unknown_runtime_message,
)
from lamina.errors import InvalidParameterValueException
from lamina.validation.constraints import ModelValidator, Override, raise_if_any, require_object
from lamina.validation.service_models import service_model

__all__ = [
    "LAMBDA",
    "RESERVED_ENVIRONMENT_KEYS",
    "runtime_status",
    "validate_create_function",
    "validate_environment",
    "validate_update_code",
    "validate_update_configuration",
]

# The server's pattern and 2048 limit for layer version ARNs (from the recorded message), which differ from botocore's
# copy (it wraps the alternatives in one more group).
LAYER_ARN_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:"
    r"[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)
_RUNTIME_FILTER = Override(enum=KNOWN_RUNTIMES, enum_shown=LIST_FILTER_RUNTIMES)
# Where Lambda's server differs from botocore's published model (shape names, or `Operation.Member.Path`).
LAMBDA_OVERRIDES: dict[str, Override] = {
    # names and ARNs in the path are parsed, with their own messages, by `lamina.model.arns`
    **{shape: Override(skip=True) for shape in (
        "FunctionName", "NamespacedFunctionName", "UnqualifiedFunctionName", "FunctionUrlFunctionName",
        "LayerNameOrArn", "LayerVersionNumber", "TaggableResource", "Tags", "TagKeyList",
    )},
    # a service rule (supported, deprecated, unknown: InvalidParameterValueException), `runtime_identifiers.py`
    "Runtime": Override(enum=()),
    "ListLayers.CompatibleRuntime": _RUNTIME_FILTER,
    "ListLayerVersions.CompatibleRuntime": _RUNTIME_FILTER,
    # recorded: the list's enum printed in the create/update order, without the member form, deprecated names accepted
    "PublishLayerVersion.CompatibleRuntimes": Override(
        items=Override(enum=KNOWN_RUNTIMES),
        member_constraint=f"Member must satisfy enum value set: [{', '.join(SUPPORTED_RUNTIMES)}]",
    ),
    # recorded: enums the server prints in its own (hash-set) order
    "RecursiveLoop": Override(enum_shown=("Terminate", "Allow")),
    "InvokeMode": Override(enum_shown=("RESPONSE_STREAM", "BUFFERED")),
    "EventSourcePosition": Override(enum_shown=("LATEST", "AT_TIMESTAMP", "TRIM_HORIZON")),
    "Timeout": Override(max=900),  # the model says 5400
    "EphemeralStorageSize": Override(max=10240),  # the model says 32768
    "LayerVersionArn": Override(pattern=LAYER_ARN_PATTERN),
    # recorded: these list members print no "Member must not be null"
    "SubnetIds": Override(member_constraint=(
        "Member must satisfy constraint: [Member must have length less than or equal to 1024, Member must have "
        "length greater than or equal to 0, Member must satisfy regular expression pattern: subnet-[0-9a-z]*]"
    )),
    "SecurityGroupIds": Override(member_constraint=(
        "Member must satisfy constraint: [Member must have length less than or equal to 1024, Member must have "
        "length greater than or equal to 0, Member must satisfy regular expression pattern: sg-[0-9a-zA-Z]*]"
    )),
}
# Where Lambda's server lists its errors in another order than botocore's model (recorded: compatibleRuntimes before
# compatibleArchitectures, which the server added last).
LAMBDA_MEMBER_ORDER: dict[str, tuple[str, ...]] = {
    "PublishLayerVersion": ("Description", "Content", "CompatibleRuntimes", "LicenseInfo", "CompatibleArchitectures"),
    "ListLayers": ("CompatibleRuntime", "Marker", "MaxItems", "CompatibleArchitecture"),
    "ListLayerVersions": ("CompatibleRuntime", "LayerName", "Marker", "MaxItems", "CompatibleArchitecture"),
}
#: Lambda's model, compiled once (at start-up: the server imports this module before it listens).
LAMBDA = ModelValidator(
    ServiceModel(service_model("lambda"), service_name="lambda"), LAMBDA_OVERRIDES, LAMBDA_MEMBER_ORDER
)

MAX_MEMORY_MB = 10240
MAX_LAYERS = 5
MAX_ENVIRONMENT_BYTES = 4096

# AWS's documented reserved keys, in the documentation's order. The message lists the offenders in this order: the one
# multi-key message on record (AWS_REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) fits it, request order does not.
# TZ, LANG, PATH, AWS_XRAY_* and AWS_LAMBDA_EXEC_WRAPPER are documented as settable. `_`-prefixed keys (_HANDLER,
# _X_AMZN_TRACE_ID, _AWS_XRAY_*) never get this far: they fail the key pattern first.
_RESERVED_ENVIRONMENT_ORDER = (
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
)
RESERVED_ENVIRONMENT_KEYS: frozenset[str] = frozenset(_RESERVED_ENVIRONMENT_ORDER)

_ENVIRONMENT_PREFIX = "Lambda was unable to configure your environment variables because the environment variables"
NO_CODE_SOURCE = "Please provide a source for function code."
ZIP_FILE_NOT_ALONE = "Please do not provide other FunctionCode parameters when providing a ZipFile."
_RUNTIME_AND_HANDLER = "Runtime and Handler are mandatory parameters for functions created with deployment packages."
_IMAGE_UNSUPPORTED = (
    "Lamina does not support PackageType Image (container images): package the function as a .zip archive "
    "with PackageType Zip."
)


# -- public interface ---------------------------------------------------------------------------------------------
def validate_create_function(body: Any) -> None:
    """CreateFunction's JSON body; Lamina creates Zip functions only."""
    LAMBDA.check("CreateFunction", require_object(body))
    if body.get("PackageType") == "Image":
        raise InvalidParameterValueException(_IMAGE_UNSUPPORTED)
    if not body.get("Runtime") or body.get("Handler") is None:
        raise InvalidParameterValueException(_RUNTIME_AND_HANDLER)
    _check_settings(body)
    _check_code_source(body["Code"], action="creating")


def validate_update_configuration(body: Any) -> None:
    """UpdateFunctionConfiguration's JSON body (the function name travels in the path)."""
    LAMBDA.check("UpdateFunctionConfiguration", require_object(body))
    _check_settings(body)


def validate_update_code(body: Any) -> None:
    """UpdateFunctionCode's JSON body: exactly one of ZipFile, S3Bucket+S3Key (ImageUri: Lamina functions are Zip)."""
    LAMBDA.check("UpdateFunctionCode", require_object(body))
    _check_code_source(body, action="updating")


def validate_environment(variables: dict[str, str]) -> None:
    """Key pattern (ValidationException), then reserved keys and the 4 KB limit (InvalidParameterValueException)."""
    raise_if_any(LAMBDA.problems("UpdateFunctionConfiguration", {"Environment": {"Variables": variables}}))
    _check_environment_rules(variables)


# -- pass 3: Lambda's own rules -----------------------------------------------------------------------------------
def _check_settings(body: dict[str, Any]) -> None:
    """The rules CreateFunction and UpdateFunctionConfiguration share."""
    runtime = body.get("Runtime")
    if runtime is not None:
        _check_runtime(runtime)
    memory = body.get("MemorySize")
    if memory is not None and memory > MAX_MEMORY_MB:
        raise InvalidParameterValueException(
            f"'MemorySize' value failed to satisfy constraint: Member must have value less than or equal to "
            f"{MAX_MEMORY_MB}"
        )
    if body.get("Layers"):
        _check_layer_rules(body["Layers"])
    variables = (body.get("Environment") or {}).get("Variables")
    if variables:
        _check_environment_rules(variables)


def _check_runtime(runtime: str) -> None:
    status = runtime_status(runtime)
    if status == "deprecated":
        raise InvalidParameterValueException(deprecated_runtime_message(runtime))
    if status == "unknown":
        raise InvalidParameterValueException(unknown_runtime_message(runtime))


def _check_layer_rules(layers: list[str]) -> None:
    if len(layers) > MAX_LAYERS:
        raise InvalidParameterValueException(f"Cannot reference more than {MAX_LAYERS} layers.")
    seen: dict[str, str] = {}
    for arn in layers:
        layer = arn.rsplit(":", 1)[0] if ":layer:" in arn else arn
        if layer in seen:
            raise InvalidParameterValueException(
                "Two different versions of the same layer are not allowed to be referenced in the same function. "
                f"{seen[layer]} and {arn} are versions of the same layer."
            )
        seen[layer] = arn


def _check_environment_rules(variables: dict[str, str]) -> None:
    reserved = [key for key in _RESERVED_ENVIRONMENT_ORDER if key in variables]
    if reserved:
        raise InvalidParameterValueException(
            f"{_ENVIRONMENT_PREFIX} you have provided contains reserved keys that are currently not supported for "
            f"modification. Reserved keys used in this request: {', '.join(reserved)}"
        )
    # AWS measures the compact JSON of the map, in request order, and quotes it back.
    measured = json.dumps(variables, separators=(",", ":"), ensure_ascii=False)
    if len(measured.encode("utf-8")) > MAX_ENVIRONMENT_BYTES:
        raise InvalidParameterValueException(
            f"{_ENVIRONMENT_PREFIX} you have provided exceeded the 4KB limit. String measured: {measured}"
        )


def _check_code_source(code: dict[str, Any], *, action: str) -> None:
    has_zip = code.get("ZipFile") is not None
    has_s3 = any(code.get(member) is not None for member in ("S3Bucket", "S3Key", "S3ObjectVersion"))
    has_image = code.get("ImageUri") is not None
    if has_zip and (has_s3 or has_image):
        raise InvalidParameterValueException(ZIP_FILE_NOT_ALONE)
    if has_image:
        raise InvalidParameterValueException(
            f"Please don't provide ImageUri when {action} a function with packageType Zip."
        )
    if not has_zip and (code.get("S3Bucket") is None or code.get("S3Key") is None):
        raise InvalidParameterValueException(NO_CODE_SOURCE)
