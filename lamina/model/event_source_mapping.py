"""An event source mapping: the record the store keeps, the API shows and the pollers run from.

Settings are kept as AWS shows them once a source's defaults are filled in: a member AWS leaves out for a source
(ParallelizationFactor for a queue, LastProcessingResult for SQS) is None here, so the wire form is the set members.
The state moves only along `TRANSITIONS` (`EventSourceMapping.moved`); Deleting is final (the mapping then goes).
"""
from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from lamina.model.keys import FunctionKey, Scope


class State(str, Enum):
    CREATING = "Creating"
    ENABLING = "Enabling"
    ENABLED = "Enabled"
    DISABLING = "Disabling"
    DISABLED = "Disabled"
    UPDATING = "Updating"
    DELETING = "Deleting"

    @property
    def settled(self) -> bool:
        """Enabled or Disabled: no change is under way, so the mapping takes the next one."""
        return self in (State.ENABLED, State.DISABLED)


#: Every move a mapping may make. A user's change starts from a settled state (Enabled, Disabled); each passing state
#: ends in a settled one, except Deleting, after which the mapping is removed.
TRANSITIONS: dict[State, frozenset[State]] = {
    State.CREATING: frozenset({State.ENABLED, State.DISABLED}),
    State.ENABLED: frozenset({State.UPDATING, State.DISABLING, State.DELETING}),
    State.DISABLED: frozenset({State.UPDATING, State.ENABLING, State.DELETING}),
    State.UPDATING: frozenset({State.ENABLED, State.DISABLED}),
    State.ENABLING: frozenset({State.ENABLED}),
    State.DISABLING: frozenset({State.DISABLED}),
    State.DELETING: frozenset(),
}


class IllegalTransition(ValueError):
    """A move `TRANSITIONS` does not allow (a bug in the caller, not a client error)."""


class SourceKind(str, Enum):
    """Which poller a mapping needs, from its EventSourceArn (or SelfManagedEventSource)."""

    SQS = "sqs"
    KINESIS = "kinesis"
    DYNAMODB_STREAMS = "dynamodb"
    MSK = "kafka"
    SELF_MANAGED_KAFKA = "self-managed-kafka"
    MQ = "mq"

    @property
    def is_stream(self) -> bool:
        return self in (SourceKind.KINESIS, SourceKind.DYNAMODB_STREAMS)

    @property
    def is_kafka(self) -> bool:
        return self in (SourceKind.MSK, SourceKind.SELF_MANAGED_KAFKA)


_ARN = re.compile(r"arn:[^:]+:(?P<service>[^:]+):[^:]*:[^:]*:(?P<resource>.+)")
_RESOURCE_KINDS = {
    "sqs": (SourceKind.SQS, re.compile(r"[^:/]+")),
    "kinesis": (SourceKind.KINESIS, re.compile(r"stream/.+")),
    "dynamodb": (SourceKind.DYNAMODB_STREAMS, re.compile(r"table/[^/]+/stream/.+")),
    "kafka": (SourceKind.MSK, re.compile(r"cluster/.+")),
    "mq": (SourceKind.MQ, re.compile(r"broker:.+")),
}


def source_kind(event_source_arn: str) -> SourceKind | None:
    """The kind of source an ARN names, or None for one Lambda does not poll (a table without its stream, say)."""
    match = _ARN.fullmatch(event_source_arn)
    if match is None or match["service"] not in _RESOURCE_KINDS:
        return None
    kind, resource = _RESOURCE_KINDS[match["service"]]
    return kind if resource.fullmatch(match["resource"]) else None


def is_fifo_queue(event_source_arn: str) -> bool:
    return event_source_arn.endswith(".fifo")


def mapping_arn(scope: Scope, uuid: str) -> str:
    return f"arn:aws:lambda:{scope.region}:{scope.account}:event-source-mapping:{uuid}"


def _snake(member: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", member).lower()


#: The settings of EventSourceMappingConfiguration in the model's order, each kept in the attribute `SETTINGS[member]`.
SETTINGS: dict[str, str] = {member: _snake(member) for member in (
    "StartingPosition", "StartingPositionTimestamp", "BatchSize", "MaximumBatchingWindowInSeconds",
    "ParallelizationFactor", "EventSourceArn", "FilterCriteria", "KMSKeyArn", "MetricsConfig", "LoggingConfig",
    "ScalingConfig", "DestinationConfig", "Topics", "Queues", "SourceAccessConfigurations", "SelfManagedEventSource",
    "MaximumRecordAgeInSeconds", "BisectBatchOnFunctionError", "MaximumRetryAttempts", "TumblingWindowInSeconds",
    "FunctionResponseTypes", "AmazonManagedKafkaEventSourceConfig", "SelfManagedKafkaEventSourceConfig",
    "ProvisionedPollerConfig",
)}
_TUPLES = ("topics", "queues", "source_access_configurations", "function_response_types")


@dataclass(frozen=True)
class EventSourceMapping:
    """One mapping of a source to a function (unqualified: $LATEST, or a version or alias as `qualifier`).

    `enabled` is the state it settles in (Enabled or Disabled) once a change is through. Nested settings keep AWS's
    shapes (`scaling_config["MaximumConcurrency"]`, `destination_config["OnFailure"]`); `last_modified` is epoch
    seconds, as the API shows it."""

    uuid: str
    function: FunctionKey
    qualifier: str | None
    kind: SourceKind
    state: State
    state_transition_reason: str
    last_modified: float
    enabled: bool
    batch_size: int
    last_processing_result: str | None = None
    starting_position: str | None = None
    starting_position_timestamp: float | None = None
    maximum_batching_window_in_seconds: int | None = None
    parallelization_factor: int | None = None
    event_source_arn: str | None = None
    filter_criteria: dict[str, Any] | None = None
    kms_key_arn: str | None = None
    metrics_config: dict[str, Any] | None = None
    logging_config: dict[str, Any] | None = None
    scaling_config: dict[str, Any] | None = None
    destination_config: dict[str, Any] | None = None
    topics: tuple[str, ...] | None = None
    queues: tuple[str, ...] | None = None
    source_access_configurations: tuple[dict[str, str], ...] | None = None
    self_managed_event_source: dict[str, Any] | None = None
    maximum_record_age_in_seconds: int | None = None
    bisect_batch_on_function_error: bool | None = None
    maximum_retry_attempts: int | None = None
    tumbling_window_in_seconds: int | None = None
    function_response_types: tuple[str, ...] | None = None
    amazon_managed_kafka_event_source_config: dict[str, Any] | None = None
    self_managed_kafka_event_source_config: dict[str, Any] | None = None
    provisioned_poller_config: dict[str, Any] | None = None
    tags: dict[str, str] = field(default_factory=dict)

    @property
    def scope(self) -> Scope:
        return self.function.scope

    @property
    def arn(self) -> str:
        return mapping_arn(self.scope, self.uuid)

    @property
    def function_arn(self) -> str:
        return self.function.arn(self.qualifier)

    def moved(self, to: State, reason: str | None = None) -> "EventSourceMapping":
        """This mapping in state `to` (now its LastModified), or IllegalTransition when `TRANSITIONS` forbids it."""
        if to not in TRANSITIONS[self.state]:
            raise IllegalTransition(f"event source mapping {self.uuid}: {self.state.value} -> {to.value}")
        return self.replace(
            state=to, state_transition_reason=reason or self.state_transition_reason, last_modified=now()
        )

    def replace(self, **changes: Any) -> "EventSourceMapping":
        return dataclasses.replace(self, **changes)

    def to_record(self) -> dict[str, Any]:
        record = {item.name: getattr(self, item.name) for item in dataclasses.fields(self)}
        record.update(function=list(self.function), kind=self.kind.value, state=self.state.value)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "EventSourceMapping":
        values = {item.name: record[item.name] for item in dataclasses.fields(cls) if item.name in record}
        values.update(
            function=FunctionKey(*record["function"]), kind=SourceKind(record["kind"]), state=State(record["state"])
        )
        for name in _TUPLES:
            if values.get(name) is not None:
                values[name] = tuple(values[name])
        return cls(**values)


def now() -> float:
    """LastModified as AWS gives it: epoch seconds, to the millisecond."""
    return round(time.time(), 3)
