"""The runtime names AWS Lambda knows, and which of them it still accepts when a function is created or updated.

This is AWS's view, not the host's: whether this Lamina host can actually run a runtime is
`lamina.runtimes.registry`'s question, asked after these checks pass.
"""
from __future__ import annotations

from typing import Literal

RuntimeStatus = Literal["supported", "deprecated", "unknown"]

# The runtimes AWS accepts for create/update, in the order AWS prints them in its enum message (its own
# hash-set order, not the model's), copied from the recorded `Value X at 'runtime'` responses.
SUPPORTED_RUNTIMES: tuple[str, ...] = (
    "nodejs20.x",
    "python3.14",
    "provided.al2023",
    "python3.12",
    "python3.13",
    "nodejs24.x",
    "nodejs22.x",
    "java25",
    "python3.10",
    "python3.11",
    "java21",
    "ruby3.3",
    "ruby3.4",
    "ruby3.2",
    "python3.8",
    "python3.9",
    "java17",
    "nodejs16.x",
    "dotnet10",
    "dotnet8",
    "java11",
    "dotnet6",
    "nodejs18.x",
    "provided.al2",
    "java8.al2",
)

# Accepted, but released after the recording: where AWS now prints them in its enum message is unknown, so the
# message keeps the recorded text.
NEWER_SUPPORTED_RUNTIMES: tuple[str, ...] = ("ruby4.0",)

# In the service model's Runtime enum but refused on create/update with "no longer supported" (model order).
DEPRECATED_RUNTIMES: tuple[str, ...] = (
    "nodejs",
    "nodejs4.3",
    "nodejs6.10",
    "nodejs8.10",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "java8",
    "python2.7",
    "python3.6",
    "python3.7",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "nodejs4.3-edge",
    "go1.x",
    "ruby2.5",
    "ruby2.7",
    "provided",
)

# ListLayers / ListLayerVersions print the service's whole Runtime enum, in this order (recorded); PublishLayerVersion
# accepts those names too (deprecated ones included, recorded) but prints only the supported ones.
LIST_FILTER_RUNTIMES: tuple[str, ...] = (
    "ruby3.5", "ruby2.6", "dotnetcore1.0", "python3.7", "nodejs8.10", "nasa", "ruby2.7", "python2.7-greengrass",
    "dotnetcore2.0", "python3.8", "java21", "dotnet6", "dotnetcore2.1", "python3.9", "java11", "nodejs6.10",
    "provided", "dotnetcore3.1", "dotnet8", "java25", "java17", "nodejs", "nodejs4.3", "java8.al2", "go1.x",
    "dotnet10", "nodejs20.x", "go1.9", "byol", "nodejs10.x", "provided.al2023", "nodejs22.x", "python3.10", "java8",
    "nodejs12.x", "python3.11", "nodejs24.x", "nodejs8.x", "python3.12", "nodejs14.x", "nodejs8.9", "nodejs26.x",
    "python3.13", "python3.14", "nodejs16.x", "python3.15", "provided.al2", "nodejs4.3-edge", "nodejs18.x", "ruby3.2",
    "python3.4", "ruby3.3", "ruby3.4", "ruby2.5", "python3.6", "python2.7",
)
#: Every runtime name the layer operations accept as a filter or a compatible runtime.
KNOWN_RUNTIMES: tuple[str, ...] = tuple(
    dict.fromkeys(LIST_FILTER_RUNTIMES + SUPPORTED_RUNTIMES + NEWER_SUPPORTED_RUNTIMES + DEPRECATED_RUNTIMES)
)
_ACCEPTED = frozenset(SUPPORTED_RUNTIMES + NEWER_SUPPORTED_RUNTIMES)
_DEPRECATED = frozenset(DEPRECATED_RUNTIMES)

RUNTIME_ENUM_CONSTRAINT = f"Member must satisfy enum value set: [{', '.join(SUPPORTED_RUNTIMES)}] or be a valid ARN"


def runtime_status(runtime: str) -> RuntimeStatus:
    """Runtime names are case-sensitive on AWS: `PYTHON3.9` is unknown, not python3.9."""
    if runtime in _ACCEPTED:
        return "supported"
    if runtime in _DEPRECATED:
        return "deprecated"
    return "unknown"


def unknown_runtime_message(runtime: str) -> str:
    """AWS's InvalidParameterValueException text: no `1 validation error` prefix and the value is not quoted."""
    return f"Value {runtime} at 'runtime' failed to satisfy constraint: {RUNTIME_ENUM_CONSTRAINT}"


def deprecated_runtime_message(runtime: str) -> str:
    return (
        f"The runtime parameter of {runtime} is no longer supported for creating or updating AWS Lambda functions. "
        "We recommend you use a supported runtime while creating or updating functions."
    )
