"""The one place that turns names, partial ARNs, full ARNs and `name:qualifier` into a reference.

Accepted forms (as AWS): `name`, `name:qualifier`, `account:function:name[:qualifier]`,
`arn:aws:lambda:region:account:function:name[:qualifier]`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from lamina.errors import InvalidParameterValueException, validation_error

LATEST = "$LATEST"
MAX_NAME_LENGTH = 64

# The patterns and length limits are botocore's (FunctionName / NamespacedFunctionName shapes);
# AWS echoes the pattern text in its validation message, so it is kept verbatim.
FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?((eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:)?"
    r"(\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
_FUNCTION_NAME_RE = re.compile(
    r"(?:arn:(?P<partition>aws[a-zA-Z-]*)?:lambda:)?"
    r"(?:(?P<region>(?:eusc-)?[a-z]{2}(?:(?:-gov)|(?:-iso(?:[a-z]?)))?-[a-z]+-\d{1}):)?"
    r"(?:(?P<account>\d{12}):)?(?P<function_kw>function:)?(?P<name>[a-zA-Z0-9-_]+)"
    r"(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9-_]+))?"
)
QUALIFIER_RE = re.compile(r"[a-zA-Z0-9$_-]+")
VERSION_RE = re.compile(r"\$LATEST|[0-9]+")
# Which shapes allow which total length (botocore): FunctionName 140, NamespacedFunctionName 256.
MAX_ARN_LENGTH = 140
MAX_NAMESPACED_LENGTH = 256


@dataclass(frozen=True)
class FunctionRef:
    """A parsed function identifier; region/account are set only when the caller gave an ARN."""

    name: str
    qualifier: str | None = None
    region: str | None = None
    account: str | None = None


def parse_function_name(
    raw: str | None, *, max_length: int = MAX_NAMESPACED_LENGTH, creating: bool = False
) -> FunctionRef:
    """Parse any accepted form, raising AWS's validation errors for the others.

    CreateFunction reports an over-long bare name as InvalidParameterValueException (recorded from AWS);
    every other operation reports it as ValidationException with the same text.
    """
    if raw is None or raw == "":
        raise validation_error(None, "functionName", "Member must not be null")
    if len(raw) > max_length:
        raise validation_error(raw, "functionName", f"Member must have length less than or equal to {max_length}")
    match = _FUNCTION_NAME_RE.fullmatch(raw)
    if match is None or (match["partition"] is None and raw.startswith("arn:")):
        raise validation_error(
            raw, "functionName", f"Member must satisfy regular expression pattern: {FUNCTION_NAME_PATTERN}"
        )
    if match["account"] and not match["function_kw"]:
        # `123456789012:name` is not a form AWS accepts: the account needs `function:` after it.
        raise validation_error(
            raw, "functionName", f"Member must satisfy regular expression pattern: {FUNCTION_NAME_PATTERN}"
        )
    name = match["name"]
    if len(name) > MAX_NAME_LENGTH:
        error = validation_error(raw, "functionName", f"Member must have length less than or equal to {MAX_NAME_LENGTH}")
        raise InvalidParameterValueException(error.message) if creating else error
    return FunctionRef(name=name, qualifier=match["qualifier"], region=match["region"], account=match["account"])


def merge_qualifier(ref: FunctionRef, query_qualifier: str | None) -> str | None:
    """Combine the qualifier in the name with `?Qualifier=`; AWS refuses two that differ."""
    if query_qualifier is not None and query_qualifier != "":
        if not QUALIFIER_RE.fullmatch(query_qualifier) or len(query_qualifier) > 128:
            raise validation_error(
                query_qualifier,
                "qualifier",
                r"Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)",
            )
        if ref.qualifier is not None and ref.qualifier != query_qualifier:
            raise InvalidParameterValueException(
                "The derived qualifier from the function name does not match the specified qualifier."
            )
        return query_qualifier
    return ref.qualifier


def function_arn(region: str, account: str, name: str, qualifier: str | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def is_version(qualifier: str) -> bool:
    return VERSION_RE.fullmatch(qualifier) is not None
