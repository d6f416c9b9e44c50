"""AWS's request validation for CreateFunction, UpdateFunctionConfiguration and UpdateFunctionCode.

AWS checks a request in three passes, and so does this module, so that a bad request fails the same way:
1. deserialisation: a member of the wrong JSON type makes the body unreadable (InvalidRequestContentException);
2. the service model's constraints (required, length, range, pattern, enum), all reported together in one
   ValidationException, in the model's member order;
3. Lambda's own rules (runtime, memory quota, layers, environment, code source): InvalidParameterValueException,
   the first failure wins.
Messages are AWS's recorded text where one exists (`shared/reference/aws-recorded`). FunctionName is not checked
here: the API layer parses it with `lamina.model.arns` before calling in. Unknown members are ignored, as AWS does.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, NoReturn, Union

from lamina.control.runtimes_catalog import deprecated_runtime_message, runtime_status, unknown_runtime_message
from lamina.errors import InvalidParameterValueException, InvalidRequestContentException, ValidationException

__all__ = [
    "RESERVED_ENVIRONMENT_KEYS",
    "runtime_status",
    "validate_create_function",
    "validate_environment",
    "validate_update_code",
    "validate_update_configuration",
]

# Patterns are AWS's text: it prints them in its messages. They are matched in full, as Java's String.matches does.
ROLE_PATTERN = r"arn:(aws[a-zA-Z-]*)?:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+"
HANDLER_PATTERN = r"[^\s]+"
S3_BUCKET_PATTERN = r"[0-9A-Za-z\.\-_]*(?<!\.)"
ENVIRONMENT_KEY_PATTERN = r"[a-zA-Z]([a-zA-Z0-9_])+"
DEAD_LETTER_TARGET_PATTERN = r"(arn:(aws[a-zA-Z-]*)?:[a-z0-9-.]+:.*)|()"
LOG_GROUP_PATTERN = r"[\.\-_/#A-Za-z0-9]+"
# The server's pattern and 2048 limit (from the recorded message), which differ from botocore's copy.
LAYER_ARN_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:"
    r"[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)

ARCHITECTURES = ("x86_64", "arm64")
PACKAGE_TYPES = ("Zip", "Image")
TRACING_MODES = ("Active", "PassThrough")
SNAP_START_APPLY_ON = ("PublishedVersions", "None")
LOG_FORMATS = ("JSON", "Text")
APPLICATION_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LOG_LEVELS = ("DEBUG", "INFO", "WARN")

MIN_MEMORY_MB, MODEL_MAX_MEMORY_MB, MAX_MEMORY_MB = 128, 32768, 10240
MAX_TIMEOUT_SECONDS = 900
MIN_EPHEMERAL_MB, MAX_EPHEMERAL_MB = 512, 10240
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
_NO_CODE_SOURCE = "Please provide a source for function code."
_ZIP_FILE_NOT_ALONE = "Please do not provide other FunctionCode parameters when providing a ZipFile."
_RUNTIME_AND_HANDLER = "Runtime and Handler are mandatory parameters for functions created with deployment packages."
_IMAGE_UNSUPPORTED = (
    "Lamina does not support PackageType Image (container images): package the function as a .zip archive "
    "with PackageType Zip."
)
# AWS lists every constraint of a list member when any member fails, e.g. for the recorded `[X86_64]`.
_ARCHITECTURE_MEMBER = (
    f"Member must satisfy constraint: [Member must satisfy enum value set: [{', '.join(ARCHITECTURES)}], "
    "Member must not be null]"
)
_LAYER_MEMBER = (
    "Member must satisfy constraint: [Member must have length less than or equal to 2048, Member must have length "
    f"greater than or equal to 1, Member must satisfy regular expression pattern: {LAYER_ARN_PATTERN}, "
    "Member must not be null]"
)
_ENVIRONMENT_KEYS = (
    f"Map keys must satisfy constraint: [Member must satisfy regular expression pattern: {ENVIRONMENT_KEY_PATTERN}]"
)
_ENVIRONMENT_VALUES = "Map value must satisfy constraint: [Member must not be null]"


# -- public interface ---------------------------------------------------------------------------------------------
def validate_create_function(body: Any) -> None:
    """CreateFunction's JSON body; Lamina creates Zip functions only."""
    _check_types(_require_object(body), _CREATE_SHAPE, "")
    _raise_if_any(_model_problems(body, _CREATE_MEMBERS, required=("Role", "Code")))
    if body.get("PackageType") == "Image":
        raise InvalidParameterValueException(_IMAGE_UNSUPPORTED)
    if not body.get("Runtime") or body.get("Handler") is None:
        raise InvalidParameterValueException(_RUNTIME_AND_HANDLER)
    _check_settings(body)
    _check_code_source(body["Code"], action="creating")


def validate_update_configuration(body: Any) -> None:
    """UpdateFunctionConfiguration's JSON body (the function name travels in the path)."""
    _check_types(_require_object(body), _UPDATE_CONFIGURATION_SHAPE, "")
    _raise_if_any(_model_problems(body, _UPDATE_CONFIGURATION_MEMBERS))
    _check_settings(body)


def validate_update_code(body: Any) -> None:
    """UpdateFunctionCode's JSON body: exactly one of ZipFile, S3Bucket+S3Key (ImageUri: Lamina functions are Zip)."""
    _check_types(_require_object(body), _UPDATE_CODE_SHAPE, "")
    _raise_if_any(_model_problems(body, _UPDATE_CODE_MEMBERS))
    _check_code_source(body, action="updating")


def validate_environment(variables: dict[str, str]) -> None:
    """Key pattern (ValidationException), then reserved keys and the 4 KB limit (InvalidParameterValueException)."""
    problems: list[str] = []
    _check_environment_variables(problems, variables, "environment.variables")
    _raise_if_any(problems)
    _check_environment_rules(variables)


# -- pass 1: deserialisation --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _ListOf:
    member: _Shape


@dataclass(frozen=True)
class _MapOf:
    value: _Shape


# A shape is a scalar type (str, int, bool), a list, a string-keyed map, or a structure (member name -> shape).
_Shape = Union[type, _ListOf, _MapOf, dict]
_INT32 = range(-(2**31), 2**31)

_CODE_SHAPE: dict[str, _Shape] = {
    "ZipFile": str,
    "S3Bucket": str,
    "S3Key": str,
    "S3ObjectVersion": str,
    "ImageUri": str,
    "SourceKMSKeyArn": str,
}
_SETTINGS_SHAPE: dict[str, _Shape] = {
    "Role": str,
    "Handler": str,
    "Description": str,
    "Timeout": int,
    "MemorySize": int,
    "Runtime": str,
    "Environment": {"Variables": _MapOf(str)},
    "DeadLetterConfig": {"TargetArn": str},
    "KMSKeyArn": str,
    "TracingConfig": {"Mode": str},
    "Layers": _ListOf(str),
    "EphemeralStorage": {"Size": int},
    "SnapStart": {"ApplyOn": str},
    "LoggingConfig": {"LogFormat": str, "ApplicationLogLevel": str, "SystemLogLevel": str, "LogGroup": str},
}
_CREATE_SHAPE: dict[str, _Shape] = {
    **_SETTINGS_SHAPE,
    "FunctionName": str,
    "Code": _CODE_SHAPE,
    "Publish": bool,
    "PackageType": str,
    "Tags": _MapOf(str),
    "Architectures": _ListOf(str),
}
_UPDATE_CONFIGURATION_SHAPE: dict[str, _Shape] = {**_SETTINGS_SHAPE, "RevisionId": str}
_UPDATE_CODE_SHAPE: dict[str, _Shape] = {
    **_CODE_SHAPE,
    "Publish": bool,
    "DryRun": bool,
    "RevisionId": str,
    "Architectures": _ListOf(str),
}


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        unreadable("the request body", "an object", body)
    return body


def _check_types(value: Any, shape: _Shape, path: str) -> None:
    """Null is "absent" here; whether a member may be absent is the constraint pass's business."""
    if value is None:
        return
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            unreadable(path, "an object", value)
        for name, member in shape.items():
            _check_types(value.get(name), member, f"{path}.{name}" if path else name)
    elif isinstance(shape, _ListOf):
        if not isinstance(value, list):
            unreadable(path, "a list", value)
        for index, item in enumerate(value):
            _check_types(item, shape.member, f"{path}[{index}]")
    elif isinstance(shape, _MapOf):
        if not isinstance(value, dict):
            unreadable(path, "an object", value)
        for key, item in value.items():
            _check_types(item, shape.value, f"{path}.{key}")
    elif shape is int:
        if isinstance(value, bool) or not isinstance(value, int):
            unreadable(path, "an integer", value)
        if value not in _INT32:
            raise InvalidRequestContentException(
                f"Could not parse request body into json: {path} is out of range for a 32-bit integer."
            )
    elif shape is bool:
        if not isinstance(value, bool):
            unreadable(path, "a boolean", value)
    elif not isinstance(value, str):
        unreadable(path, "a string", value)


def unreadable(path: str, expected: str, value: Any) -> NoReturn:
    """Jackson could not bind the member: AWS answers InvalidRequestContentException."""
    raise InvalidRequestContentException(
        f"Could not parse request body into json: expected {expected} for {path}, got {_json_kind(value)}."
    )


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


# -- pass 2: the model's constraints ------------------------------------------------------------------------------
def _raise_if_any(problems: list[str]) -> None:
    if problems:
        count = len(problems)
        plural = "s" if count > 1 else ""
        raise ValidationException(f"{count} validation error{plural} detected: {'; '.join(problems)}")


def _violation(value: Any, field: str, constraint: str, *, sensitive: bool = False) -> str:
    """One entry of AWS's message; sensitive members (environment variables) are printed without their value."""
    if sensitive:
        shown = ""
    elif value is None:
        shown = "null "
    else:
        shown = f"'{_java_text(value)}' "
    return f"Value {shown}at '{field}' failed to satisfy constraint: {constraint}"


def _java_text(value: Any) -> str:
    """How AWS's Java front end prints a value: lists as `[a, b]`, maps as `{k=v}`, booleans in lower case."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_java_text(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_java_text(key)}={_java_text(item)}" for key, item in value.items()) + "}"
    return str(value)


def _java_length(text: str) -> int:
    """Java measures strings in UTF-16 code units, so a character outside the BMP counts twice."""
    return len(text.encode("utf-16-le")) // 2


@lru_cache(maxsize=None)
def _compiled(pattern: str) -> re.Pattern[str]:
    # ASCII: Java's \d and \s are ASCII-only, Python's are not.
    return re.compile(pattern, re.ASCII)


def _matches(pattern: str, text: str) -> bool:
    return _compiled(pattern).fullmatch(text) is not None


def _check_length(problems: list[str], value: str, field: str, low: int | None, high: int | None) -> None:
    size = _java_length(value)
    if high is not None and size > high:
        problems.append(_violation(value, field, f"Member must have length less than or equal to {high}"))
    elif low is not None and size < low:
        problems.append(_violation(value, field, f"Member must have length greater than or equal to {low}"))


def _check_range(problems: list[str], value: int, field: str, low: int, high: int | None) -> None:
    if high is not None and value > high:
        problems.append(_violation(value, field, f"Member must have value less than or equal to {high}"))
    elif value < low:
        problems.append(_violation(value, field, f"Member must have value greater than or equal to {low}"))


def _check_pattern(problems: list[str], value: str, field: str, pattern: str) -> None:
    if not _matches(pattern, value):
        problems.append(_violation(value, field, f"Member must satisfy regular expression pattern: {pattern}"))


def _check_enum(problems: list[str], value: str, field: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        problems.append(_violation(value, field, f"Member must satisfy enum value set: [{', '.join(allowed)}]"))


def _role(problems: list[str], value: str, field: str) -> None:
    _check_pattern(problems, value, field, ROLE_PATTERN)


def _handler(problems: list[str], value: str, field: str) -> None:
    _check_length(problems, value, field, None, 128)
    _check_pattern(problems, value, field, HANDLER_PATTERN)


def _description(problems: list[str], value: str, field: str) -> None:
    _check_length(problems, value, field, None, 256)


def _timeout(problems: list[str], value: int, field: str) -> None:
    _check_range(problems, value, field, 1, MAX_TIMEOUT_SECONDS)


def _memory_size(problems: list[str], value: int, field: str) -> None:
    # The model's ceiling (Lambda Managed Instances); the 10240 quota for ordinary functions is a later service rule.
    _check_range(problems, value, field, MIN_MEMORY_MB, MODEL_MAX_MEMORY_MB)


def _package_type(problems: list[str], value: str, field: str) -> None:
    _check_enum(problems, value, field, PACKAGE_TYPES)


def _s3_bucket(problems: list[str], value: str, field: str) -> None:
    _check_length(problems, value, field, 3, 63)
    _check_pattern(problems, value, field, S3_BUCKET_PATTERN)


def _s3_key(problems: list[str], value: str, field: str) -> None:
    _check_length(problems, value, field, 1, 1024)


def _code(problems: list[str], code: dict[str, Any], field: str) -> None:
    for member, check in (("S3Bucket", _s3_bucket), ("S3Key", _s3_key), ("S3ObjectVersion", _s3_key)):
        if code.get(member) is not None:
            check(problems, code[member], f"{field}.{_camel(member)}")


def _dead_letter_config(problems: list[str], config: dict[str, Any], field: str) -> None:
    if config.get("TargetArn") is not None:
        _check_pattern(problems, config["TargetArn"], f"{field}.targetArn", DEAD_LETTER_TARGET_PATTERN)


def _environment(problems: list[str], environment: dict[str, Any], field: str) -> None:
    if environment.get("Variables") is not None:
        _check_environment_variables(problems, environment["Variables"], f"{field}.variables")


def _check_environment_variables(problems: list[str], variables: dict[str, Any], field: str) -> None:
    if any(not _matches(ENVIRONMENT_KEY_PATTERN, key) for key in variables):
        problems.append(_violation(variables, field, _ENVIRONMENT_KEYS, sensitive=True))
    if any(value is None for value in variables.values()):
        problems.append(_violation(variables, field, _ENVIRONMENT_VALUES, sensitive=True))


def _tracing_config(problems: list[str], config: dict[str, Any], field: str) -> None:
    if config.get("Mode") is not None:
        _check_enum(problems, config["Mode"], f"{field}.mode", TRACING_MODES)


def _layers(problems: list[str], layers: list[str | None], field: str) -> None:
    if any(arn is None or len(arn) > 2048 or not _matches(LAYER_ARN_PATTERN, arn) for arn in layers):
        problems.append(_violation(layers, field, _LAYER_MEMBER))


def _architectures(problems: list[str], architectures: list[str | None], field: str) -> None:
    if len(architectures) > 1:
        problems.append(_violation(architectures, field, "Member must have length less than or equal to 1"))
    elif not architectures:
        problems.append(_violation(architectures, field, "Member must have length greater than or equal to 1"))
    if any(architecture not in ARCHITECTURES for architecture in architectures):
        problems.append(_violation(architectures, field, _ARCHITECTURE_MEMBER))


def _ephemeral_storage(problems: list[str], storage: dict[str, Any], field: str) -> None:
    size = storage.get("Size")
    if size is None:
        problems.append(_violation(None, f"{field}.size", "Member must not be null"))
    else:
        _check_range(problems, size, f"{field}.size", MIN_EPHEMERAL_MB, MAX_EPHEMERAL_MB)


def _snap_start(problems: list[str], config: dict[str, Any], field: str) -> None:
    if config.get("ApplyOn") is not None:
        _check_enum(problems, config["ApplyOn"], f"{field}.applyOn", SNAP_START_APPLY_ON)


def _logging_config(problems: list[str], config: dict[str, Any], field: str) -> None:
    enums = (
        ("LogFormat", LOG_FORMATS),
        ("ApplicationLogLevel", APPLICATION_LOG_LEVELS),
        ("SystemLogLevel", SYSTEM_LOG_LEVELS),
    )
    for member, allowed in enums:
        if config.get(member) is not None:
            _check_enum(problems, config[member], f"{field}.{_camel(member)}", allowed)
    log_group = config.get("LogGroup")
    if log_group is not None:
        _check_length(problems, log_group, f"{field}.logGroup", 1, 512)
        _check_pattern(problems, log_group, f"{field}.logGroup", LOG_GROUP_PATTERN)


_Check = Callable[[list[str], Any, str], None]
_CHECKS: dict[str, _Check] = {
    "Role": _role,
    "Handler": _handler,
    "Code": _code,
    "Description": _description,
    "Timeout": _timeout,
    "MemorySize": _memory_size,
    "PackageType": _package_type,
    "DeadLetterConfig": _dead_letter_config,
    "Environment": _environment,
    "TracingConfig": _tracing_config,
    "Layers": _layers,
    "Architectures": _architectures,
    "EphemeralStorage": _ephemeral_storage,
    "SnapStart": _snap_start,
    "LoggingConfig": _logging_config,
    "S3Bucket": _s3_bucket,
    "S3Key": _s3_key,
    "S3ObjectVersion": _s3_key,
}
# Each operation's members in the service model's order, which is the order AWS lists the errors in.
_CREATE_MEMBERS = (
    "Role",
    "Handler",
    "Code",
    "Description",
    "Timeout",
    "MemorySize",
    "PackageType",
    "DeadLetterConfig",
    "Environment",
    "TracingConfig",
    "Layers",
    "Architectures",
    "EphemeralStorage",
    "SnapStart",
    "LoggingConfig",
)
_UPDATE_CONFIGURATION_MEMBERS = (
    "Role",
    "Handler",
    "Description",
    "Timeout",
    "MemorySize",
    "Environment",
    "DeadLetterConfig",
    "TracingConfig",
    "Layers",
    "EphemeralStorage",
    "SnapStart",
    "LoggingConfig",
)
_UPDATE_CODE_MEMBERS = ("S3Bucket", "S3Key", "S3ObjectVersion", "Architectures")


def _camel(member: str) -> str:
    """AWS names fields in its messages by lower-casing the member's first letter (`MemorySize` -> `memorySize`)."""
    return member[0].lower() + member[1:]


def _model_problems(body: dict[str, Any], members: tuple[str, ...], required: tuple[str, ...] = ()) -> list[str]:
    problems: list[str] = []
    for member in members:
        value = body.get(member)
        if value is None:
            if member in required:
                problems.append(_violation(None, _camel(member), "Member must not be null"))
        else:
            _CHECKS[member](problems, value, _camel(member))
    return problems


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
        raise InvalidParameterValueException(_ZIP_FILE_NOT_ALONE)
    if has_image:
        raise InvalidParameterValueException(
            f"Please don't provide ImageUri when {action} a function with packageType Zip."
        )
    if not has_zip and (code.get("S3Bucket") is None or code.get("S3Key") is None):
        raise InvalidParameterValueException(_NO_CODE_SOURCE)
