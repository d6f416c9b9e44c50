"""AWS's request checks for the version and alias operations, in AWS's order and with its recorded messages.

As for functions (see `validation.py`): a member of the wrong JSON type makes the body unreadable, then the service
model's constraints are reported together in one ValidationException, then Lambda's own routing rules apply.
"""
from __future__ import annotations

import re
from typing import Any

from lamina.model.arns import LATEST
from lamina.control.validation import unreadable
from lamina.errors import InvalidParameterValueException, ValidationException

ALIAS_NAME_PATTERN = r"(?!^[0-9]+$)([a-zA-Z0-9-_]+)"
FUNCTION_VERSION_PATTERN = r"(\$LATEST(\.PUBLISHED)?|[0-9]+)"
MAX_ALIAS_NAME_LENGTH = 128
MAX_VERSION_LENGTH = 1024
MAX_DESCRIPTION_LENGTH = 256
MAX_ROUTING_ENTRIES = 1

_WEIGHT_KEYS = (
    "Map keys must satisfy constraint: [Member must have length less than or equal to 1024, "
    "Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]"
)
_WEIGHT_VALUES = (
    "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, "
    "Member must have value greater than or equal to 0.0, Member must not be null]"
)


def check_alias_request(body: dict[str, Any], *, name: str | None, creating: bool) -> None:
    """CreateAlias (name in the body) or UpdateAlias (name in the path, passed as `name`)."""
    _check_types(body)
    problems: list[str] = []
    alias_name = body.get("Name") if creating else name
    if alias_name is None:
        problems.append(_violation(None, "name", "Member must not be null"))
    else:
        problems.extend(alias_name_problems(alias_name))
    version = body.get("FunctionVersion")
    if version is None:
        if creating:
            problems.append(_violation(None, "functionVersion", "Member must not be null"))
    else:
        problems.extend(function_version_problems(version))
    description = body.get("Description")
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        problems.append(
            _violation(description, "description", f"Member must have length less than or equal to {MAX_DESCRIPTION_LENGTH}")
        )
    weights = (body.get("RoutingConfig") or {}).get("AdditionalVersionWeights")
    if weights:
        problems.extend(_weight_problems(weights))
    raise_if_any(problems)


def check_publish_request(body: dict[str, Any], current_code_sha256: str) -> None:
    """PublishVersion's members; its RevisionId precondition is the function's own check."""
    for member in ("CodeSha256", "Description", "RevisionId"):
        value = body.get(member)
        if value is not None and not isinstance(value, str):
            unreadable(member, "a string", value)
    description = body.get("Description")
    if description is not None and len(description) > MAX_DESCRIPTION_LENGTH:
        raise_if_any(
            [_violation(description, "description", f"Member must have length less than or equal to {MAX_DESCRIPTION_LENGTH}")]
        )
    code_sha256 = body.get("CodeSha256")
    if code_sha256 is not None and code_sha256 != current_code_sha256:
        raise InvalidParameterValueException(
            f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST ({current_code_sha256}). "
            "Please try again with the CodeSHA256 in $LATEST."
        )


def check_alias_name(name: str) -> None:
    """The `{Name}` path parameter of GetAlias, UpdateAlias and DeleteAlias."""
    raise_if_any(alias_name_problems(name))


def check_routing(primary: str, weights: dict[str, float]) -> None:
    """Lambda's own rules on RoutingConfig, after the model's; the existence of the versions is the caller's."""
    if len(weights) > MAX_ROUTING_ENTRIES:
        raise InvalidParameterValueException("Number of items in AdditionalVersionWeights cannot be greater than 1")
    if primary in weights:
        raise InvalidParameterValueException(
            f"Invalid function version {primary}. Function version {primary} is already included in routing configuration."
        )
    if primary == LATEST and weights:
        error = InvalidParameterValueException("$LATEST is not supported for an alias pointing to more than 1 version")
        error.include_type = False  # recorded from AWS: this one has no `Type` in its body
        raise error


def routing_weights(body: dict[str, Any]) -> dict[str, float] | None:
    """AdditionalVersionWeights as given (None when the request has no RoutingConfig)."""
    routing = body.get("RoutingConfig")
    if routing is None:
        return None
    weights = routing.get("AdditionalVersionWeights")
    return {} if weights is None else {key: float(value) for key, value in weights.items()}


def alias_name_problems(name: str) -> list[str]:
    problems = []
    if len(name) > MAX_ALIAS_NAME_LENGTH:
        problems.append(_violation(name, "name", f"Member must have length less than or equal to {MAX_ALIAS_NAME_LENGTH}"))
    if not _matches(ALIAS_NAME_PATTERN, name):
        problems.append(_violation(name, "name", f"Member must satisfy regular expression pattern: {ALIAS_NAME_PATTERN}"))
    return problems


def function_version_problems(version: str, field: str = "functionVersion") -> list[str]:
    problems = []
    if len(version) > MAX_VERSION_LENGTH:
        problems.append(_violation(version, field, f"Member must have length less than or equal to {MAX_VERSION_LENGTH}"))
    elif len(version) < 1:
        problems.append(_violation(version, field, "Member must have length greater than or equal to 1"))
    if not _matches(FUNCTION_VERSION_PATTERN, version):
        problems.append(_violation(version, field, f"Member must satisfy regular expression pattern: {FUNCTION_VERSION_PATTERN}"))
    return problems


def raise_if_any(problems: list[str]) -> None:
    if problems:
        plural = "s" if len(problems) > 1 else ""
        raise ValidationException(f"{len(problems)} validation error{plural} detected: {'; '.join(problems)}")


# -- helpers -----------------------------------------------------------------------------------------------------------
def _check_types(body: dict[str, Any]) -> None:
    for member in ("Name", "FunctionVersion", "Description", "RevisionId"):
        value = body.get(member)
        if value is not None and not isinstance(value, str):
            unreadable(member, "a string", value)
    routing = body.get("RoutingConfig")
    if routing is None:
        return
    if not isinstance(routing, dict):
        unreadable("RoutingConfig", "an object", routing)
    weights = routing.get("AdditionalVersionWeights")
    if weights is None:
        return
    if not isinstance(weights, dict):
        unreadable("RoutingConfig.AdditionalVersionWeights", "an object", weights)
    for key, value in weights.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            unreadable(f"RoutingConfig.AdditionalVersionWeights.{key}", "a number", value)


def _weight_problems(weights: dict[str, Any]) -> list[str]:
    shown = "{" + ", ".join(f"{key}={_java_number(value)}" for key, value in weights.items()) + "}"
    field = "routingConfig.additionalVersionWeights"
    problems = []
    if any(not (1 <= len(key) <= MAX_VERSION_LENGTH) or not _matches("[0-9]+", key) for key in weights):
        problems.append(f"Value '{shown}' at '{field}' failed to satisfy constraint: {_WEIGHT_KEYS}")
    if any(value is None or not 0.0 <= value <= 1.0 for value in weights.values()):
        problems.append(f"Value '{shown}' at '{field}' failed to satisfy constraint: {_WEIGHT_VALUES}")
    return problems


def _java_number(value: float | None) -> str:
    """Java prints a Double as `2.0`, `0.25`; Python's repr of a float agrees for the values that occur here."""
    return "null" if value is None else repr(float(value))


def _violation(value: Any, field: str, constraint: str) -> str:
    shown = "null " if value is None else f"'{value}' "
    return f"Value {shown}at '{field}' failed to satisfy constraint: {constraint}"


def _matches(pattern: str, text: str) -> bool:
    return re.fullmatch(pattern, text, re.ASCII) is not None
