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


# -- layers -------------------------------------------------------------------------------------------------------
# AWS prints these patterns in its messages: botocore's for LayerName, the server's own for layer version ARNs.
LAYER_NAME_PATTERN = r"(arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+"
LAYER_VERSION_ARN_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:"
    r"[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)
MAX_LAYER_ARN_LENGTH = 140
_LAYER_ARN_RE = re.compile(
    r"arn:[a-zA-Z0-9-]+:lambda:(?P<region>[a-zA-Z0-9-]+):(?P<account>\d{12}):layer:(?P<name>[a-zA-Z0-9-_]+)"
    r"(?::(?P<version>[0-9]+))?",
    re.ASCII,
)


@dataclass(frozen=True)
class LayerRef:
    """A layer named by name or ARN; region/account are set only when the caller gave an ARN."""

    name: str
    region: str | None = None
    account: str | None = None


def parse_layer_name(raw: str) -> LayerRef:
    """The `LayerName` path parameter: a bare name or a layer ARN without version."""
    if len(raw) > MAX_LAYER_ARN_LENGTH:
        raise validation_error(raw, "layerName", f"Member must have length less than or equal to {MAX_LAYER_ARN_LENGTH}")
    if re.fullmatch(LAYER_NAME_PATTERN, raw, re.ASCII) is None:
        raise validation_error(raw, "layerName", f"Member must satisfy regular expression pattern: {LAYER_NAME_PATTERN}")
    match = _LAYER_ARN_RE.fullmatch(raw)
    if match is None:
        return LayerRef(raw)
    return LayerRef(match["name"], match["region"], match["account"])


def parse_layer_version_arn(
    raw: str | None, *, field: str = "arn", max_length: int = MAX_LAYER_ARN_LENGTH
) -> tuple[LayerRef, int] | None:
    """A layer version ARN (`...:layer:name:N`); None for AWS's own `awslayer` form, which Lamina does not host."""
    if raw is None or raw == "":
        raise validation_error(None, field, "Member must not be null")
    if len(raw) > max_length:
        raise validation_error(raw, field, f"Member must have length less than or equal to {max_length}")
    if re.fullmatch(LAYER_VERSION_ARN_PATTERN, raw, re.ASCII) is None:
        raise validation_error(
            raw, field, f"Member must satisfy regular expression pattern: {LAYER_VERSION_ARN_PATTERN}"
        )
    match = _LAYER_ARN_RE.fullmatch(raw)
    if match is None or match["version"] is None:
        return None
    return LayerRef(match["name"], match["region"], match["account"]), int(match["version"])


def layer_arn(region: str, account: str, name: str, version: int | None = None) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:layer:{name}"
    return f"{arn}:{version}" if version is not None else arn


# -- tag resources --------------------------------------------------------------------------------------------------
# The server's pattern for TagResource/UntagResource/ListTags `Resource` (recorded; botocore's copy lacks `layer:`).
TAGGABLE_ARN_PATTERN = (
    r"arn:(aws[a-zA-Z-]*):lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:"
    r"(function:[a-zA-Z0-9-_]+(:(\$LATEST|[a-zA-Z0-9-_]+))?|layer:([a-zA-Z0-9-_]+)|code-signing-config:csc-[a-z0-9]{17}"
    r"|event-source-mapping:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|capacity-provider:[a-zA-Z0-9-_]+)"
)
MAX_TAGGABLE_ARN_LENGTH = 256
_TAGGABLE_ARN_RE = re.compile(
    r"arn:aws[a-zA-Z-]*:lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"(?P<kind>function|layer|code-signing-config|event-source-mapping|capacity-provider):"
    r"(?P<name>[a-zA-Z0-9-_]+)(?::(?P<qualifier>\$LATEST|[a-zA-Z0-9-_]+))?",
    re.ASCII,
)


@dataclass(frozen=True)
class TaggableRef:
    """The `Resource` of the tagging operations: a function (maybe qualified) or another kind of Lambda resource."""

    arn: str
    kind: str
    name: str
    region: str
    account: str
    qualifier: str | None = None


def parse_taggable_arn(raw: str) -> TaggableRef:
    if len(raw) > MAX_TAGGABLE_ARN_LENGTH:
        raise validation_error(raw, "resource", f"Member must have length less than or equal to {MAX_TAGGABLE_ARN_LENGTH}")
    match = _TAGGABLE_ARN_RE.fullmatch(raw)
    if re.fullmatch(TAGGABLE_ARN_PATTERN, raw, re.ASCII) is None or match is None:
        raise validation_error(raw, "resource", f"Member must satisfy regular expression pattern: {TAGGABLE_ARN_PATTERN}")
    return TaggableRef(raw, match["kind"], match["name"], match["region"], match["account"], match["qualifier"])
