"""Lambda's own rules for the version and alias operations, in AWS's order and with its recorded messages.

As for functions (see `validation.py`): a member of the wrong JSON type makes the body unreadable, then the service
model's constraints are reported together in one ValidationException (`lamina.validation`'s pass, `LAMBDA`), then
Lambda's own routing rules apply.
"""
from __future__ import annotations

from typing import Any

from lamina.control.validation import LAMBDA
from lamina.errors import InvalidParameterValueException
from lamina.model.arns import LATEST

#: The Alias shape's pattern (the service also reads it to tell an alias qualifier from a version).
ALIAS_NAME_PATTERN: str = LAMBDA.pattern_of("GetAlias", "Name")
MAX_ROUTING_ENTRIES = 1


def check_alias_request(body: dict[str, Any], *, name: str | None, creating: bool) -> None:
    """CreateAlias (name in the body) or UpdateAlias (name in the path, passed as `name`)."""
    if creating:
        LAMBDA.check("CreateAlias", body)
    else:
        LAMBDA.check("UpdateAlias", {**body, "Name": name})


def check_publish_request(body: dict[str, Any], current_code_sha256: str) -> None:
    """PublishVersion's members; its RevisionId precondition is the function's own check."""
    LAMBDA.check("PublishVersion", body)
    code_sha256 = body.get("CodeSha256")
    if code_sha256 is not None and code_sha256 != current_code_sha256:
        raise InvalidParameterValueException(
            f"CodeSHA256 ({code_sha256}) is different from current CodeSHA256 in $LATEST ({current_code_sha256}). "
            "Please try again with the CodeSHA256 in $LATEST."
        )


def check_alias_name(name: str) -> None:
    """The `{Name}` path parameter of GetAlias, UpdateAlias and DeleteAlias."""
    LAMBDA.check("GetAlias", {"Name": name})


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
