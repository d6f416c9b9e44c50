"""Which settings go with which event source, each source's defaults, and AWS's messages for the rest.

CreateEventSourceMapping and UpdateEventSourceMapping take one parameter list for every source; each source accepts
only some (the per-source tables of AWS's developer guide) and fills in its own defaults, and the answer shows exactly
those (recorded: an SQS mapping has no ParallelizationFactor, a stream's has DestinationConfig `{"OnFailure": {}}`).
These rules run after the model pass (`LAMBDA.check`) and before the function is looked up (recorded: a bad
DestinationConfig is refused for a function that does not exist). Messages are AWS's recorded text; the few AWS has no
recording of follow the recorded forms and say so (inferred).
"""
from __future__ import annotations

import copy
import ipaddress
import json
from typing import Any, Callable, Iterable, Mapping

from lamina.control.validation import LAMBDA
from lamina.errors import InvalidParameterValueException, detected, violation
from lamina.model.event_source_mapping import SETTINGS, EventSourceMapping, SourceKind, is_fifo_queue, source_kind
from lamina.validation.constraints import camel, unreadable

_UNRECOGNIZED = "Unrecognized event source."
_DESTINATION = "Unsupported DestinationConfig parameter for given event source mapping type."
_SQS_POSITION = "StartingPosition is not valid for SQS event sources."  # AWS's, quoted in boto/boto3#1613
_NO_TIMESTAMP = "Need to specify a timestamp"  # AWS's, quoted through CloudFormation
_FIFO_WINDOW = "Batching window is not supported for FIFO queues"  # AWS's, quoted through CloudFormation
_WINDOW_NEEDED = "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
_BAD_FILTER = "Invalid filter pattern definition."
_NO_ACCESS = "Required 'sourceAccessConfigurations' parameter is missing."
#: Members that are not settings of the mapping (the service handles them).
_NOT_SETTINGS = frozenset({"UUID", "FunctionName", "Enabled", "Tags"})

_EVERY = frozenset({"FunctionName", "Enabled", "BatchSize", "FilterCriteria", "KMSKeyArn", "MetricsConfig",
                    "LoggingConfig", "Tags", "EventSourceArn"})
_STREAM = _EVERY | {"MaximumBatchingWindowInSeconds", "ParallelizationFactor", "StartingPosition",
                    "StartingPositionTimestamp", "DestinationConfig", "MaximumRecordAgeInSeconds",
                    "BisectBatchOnFunctionError", "MaximumRetryAttempts", "TumblingWindowInSeconds",
                    "FunctionResponseTypes"}
_KAFKA = {"MaximumBatchingWindowInSeconds", "StartingPosition", "StartingPositionTimestamp", "DestinationConfig",
          "Topics", "SourceAccessConfigurations", "ProvisionedPollerConfig"}
#: The members each source accepts (AWS's per-source parameter tables).
ACCEPTED: dict[SourceKind, frozenset[str]] = {
    SourceKind.SQS: _EVERY | {"MaximumBatchingWindowInSeconds", "FunctionResponseTypes", "ScalingConfig",
                              "ProvisionedPollerConfig"},
    SourceKind.KINESIS: _STREAM,
    SourceKind.DYNAMODB_STREAMS: _STREAM,
    SourceKind.MSK: _EVERY | _KAFKA | {"AmazonManagedKafkaEventSourceConfig"},
    SourceKind.SELF_MANAGED_KAFKA: (_EVERY - {"EventSourceArn"}) | _KAFKA
    | {"SelfManagedEventSource", "SelfManagedKafkaEventSourceConfig"},
    SourceKind.MQ: _EVERY | {"MaximumBatchingWindowInSeconds", "Queues", "SourceAccessConfigurations"},
}
_STREAM_DEFAULTS: dict[str, Any] = {
    "batch_size": 100, "maximum_batching_window_in_seconds": 0, "parallelization_factor": 1,
    "destination_config": {"OnFailure": {}}, "maximum_record_age_in_seconds": -1,
    "bisect_batch_on_function_error": False, "maximum_retry_attempts": -1, "tumbling_window_in_seconds": 0,
    "function_response_types": (),
}
#: What each source shows for a member not given (recorded for SQS, both streams and self-managed Kafka, whose
#: StartingPosition defaults to TRIM_HORIZON; Amazon MQ's and MSK's follow AWS's tables).
_DEFAULTS: dict[SourceKind, dict[str, Any]] = {
    SourceKind.SQS: {"batch_size": 10, "maximum_batching_window_in_seconds": 0, "function_response_types": ()},
    SourceKind.KINESIS: _STREAM_DEFAULTS,
    SourceKind.DYNAMODB_STREAMS: _STREAM_DEFAULTS,
    SourceKind.MSK: {"batch_size": 100, "starting_position": "TRIM_HORIZON"},
    SourceKind.SELF_MANAGED_KAFKA: {"batch_size": 100, "starting_position": "TRIM_HORIZON"},
    SourceKind.MQ: {"batch_size": 100},
}
#: The consumer group a Kafka mapping gets when none is given: its UUID (recorded).
_CONSUMER_GROUP = {
    SourceKind.MSK: "amazon_managed_kafka_event_source_config",
    SourceKind.SELF_MANAGED_KAFKA: "self_managed_kafka_event_source_config",
}


def user_reason(kind: SourceKind) -> str:
    """StateTransitionReason after a user's change (recorded: streams say it differently from the others)."""
    return "User action" if kind.is_stream else "USER_INITIATED"


def initial_result(kind: SourceKind) -> str | None:
    """LastProcessingResult of a new mapping; SQS mappings show none (recorded)."""
    return None if kind is SourceKind.SQS else "No records processed"


def source_of(body: Mapping[str, Any]) -> SourceKind:
    """The source a Create names: its EventSourceArn, or a self-managed Kafka cluster's bootstrap servers."""
    kind: SourceKind | None = None
    if body.get("EventSourceArn"):
        kind = source_kind(body["EventSourceArn"])
    elif body.get("SelfManagedEventSource") is not None:
        if (body["SelfManagedEventSource"].get("Endpoints") or {}).get("KAFKA_BOOTSTRAP_SERVERS"):
            kind = SourceKind.SELF_MANAGED_KAFKA
    if kind is None:
        raise InvalidParameterValueException(_UNRECOGNIZED)
    return kind


def create_settings(kind: SourceKind, body: Mapping[str, Any], uuid: str) -> dict[str, Any]:
    """A new mapping's settings (attribute -> value): the request's, checked for the source, then its defaults."""
    settings = _changes(kind, "CreateEventSourceMapping", body)
    for name, value in _DEFAULTS[kind].items():
        if settings.get(name) is None:
            settings[name] = copy.deepcopy(value)
    if kind in _CONSUMER_GROUP:
        group = _CONSUMER_GROUP[kind]
        settings[group] = {"ConsumerGroupId": uuid, **(settings.get(group) or {})}
    _check_position(kind, settings)
    _check_whole(kind, settings)
    return settings


def update_settings(mapping: EventSourceMapping, body: Mapping[str, Any]) -> dict[str, Any]:
    """The settings an Update changes, checked for the mapping's source together with the ones it keeps."""
    changes = _changes(mapping.kind, "UpdateEventSourceMapping", body)
    _check_whole(mapping.kind, {**{name: getattr(mapping, name) for name in SETTINGS.values()}, **changes})
    return changes


def duplicate_of(mapping: EventSourceMapping, others: Iterable[EventSourceMapping]) -> EventSourceMapping | None:
    """An existing mapping of the same source to the same function (a Kafka or MQ source: also the same topic or
    queue; self-managed Kafka: any bootstrap server in common)."""
    for other in others:
        if other.uuid == mapping.uuid or other.kind is not mapping.kind or other.function_arn != mapping.function_arn:
            continue
        if mapping.kind is SourceKind.SELF_MANAGED_KAFKA:
            if other.topics == mapping.topics and set(_servers(other)) & set(_servers(mapping)):
                return other
        elif other.event_source_arn == mapping.event_source_arn and (other.topics, other.queues) == (
            mapping.topics, mapping.queues
        ):
            return other
    return None


def conflict_message(mapping: EventSourceMapping, existing: EventSourceMapping, function_name: str) -> str:
    """AWS's 409 text, which differs by source (recorded for SQS, streams and self-managed Kafka; MSK's and MQ's
    follow the Kafka form, inferred). SQS and streams name the function as the request did."""
    tail = f"Please update or delete the existing mapping with UUID {existing.uuid}"
    if mapping.kind is SourceKind.SQS:
        return (f'An event source mapping with SQS arn (" {mapping.event_source_arn} ") and function '
                f'(" {function_name} ") already exists. {tail}')
    if mapping.kind.is_stream:
        return (f'The event source arn (" {mapping.event_source_arn} ") and function (" {function_name} ") provided '
                f"mapping already exists. {tail}")
    source = ",".join(_servers(mapping)) if mapping.kind is SourceKind.SELF_MANAGED_KAFKA else mapping.event_source_arn
    what, names = ("queues", mapping.queues) if mapping.kind is SourceKind.MQ else ("topics", mapping.topics)
    return (f'An event source mapping with event source ("{source}"), function ("{mapping.function_arn}"), '
            f'{what} ("{",".join(names or ())}") already exists. {tail}')


# -- the checks ----------------------------------------------------------------------------------------------------
def _changes(kind: SourceKind, operation: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """The settings a request gives, in the model's member order; the first one the source does not take is refused."""
    accepted = ACCEPTED[kind]
    changes: dict[str, Any] = {}
    for member in LAMBDA.member_names(operation):
        value = body.get(member)
        if value is None or member in _NOT_SETTINGS:
            continue
        if member not in accepted:
            raise InvalidParameterValueException(_refusal(kind, member))
        changes[SETTINGS[member]] = _value(kind, member, value)
    return changes


def _refusal(kind: SourceKind, member: str) -> str:
    if member == "DestinationConfig":
        return _DESTINATION
    if member == "StartingPosition" and kind is SourceKind.SQS:
        return _SQS_POSITION
    # AWS's form, quoted in pulumi/pulumi-aws#1418 for 'maximumBatchingWindowInSeconds'
    return f"Unsupported '{camel(member)}' parameter for given event source mapping type."


def _value(kind: SourceKind, member: str, value: Any) -> Any:
    if member in ("Topics", "Queues", "FunctionResponseTypes"):
        return tuple(value)
    if member == "SourceAccessConfigurations":
        return tuple(dict(entry) for entry in value)
    if member == "FilterCriteria":
        return _filter_criteria(value)
    if member == "DestinationConfig":
        if value.get("OnSuccess") is not None:
            raise InvalidParameterValueException(_DESTINATION)
        return {"OnFailure": value.get("OnFailure") or {}}
    if member == "StartingPositionTimestamp":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            unreadable(member, "a number", value)
        return float(value)
    return value


def _server_violation(value: Any, member: str, constraint: str) -> InvalidParameterValueException:
    """Lambda's own checks in the model pass's form, as InvalidParameterValueException ending in a period (recorded
    for a stream's missing startingPosition)."""
    return InvalidParameterValueException(detected([violation(value, camel(member), constraint)]) + ".")


def _check_position(kind: SourceKind, settings: dict[str, Any]) -> None:
    position = settings.get("starting_position")
    if kind.is_stream and position is None:
        raise _server_violation(None, "StartingPosition", "Member must not be null")
    if position == "AT_TIMESTAMP":
        if kind is SourceKind.DYNAMODB_STREAMS:
            raise InvalidParameterValueException(
                f"Unsupported starting position for arn type: {settings['event_source_arn']}"
            )
        if settings.get("starting_position_timestamp") is None:
            raise InvalidParameterValueException(_NO_TIMESTAMP)
    else:
        settings.pop("starting_position_timestamp", None)


def _check_whole(kind: SourceKind, settings: Mapping[str, Any]) -> None:
    """The rules over several settings, on what the mapping will have."""
    required = "Topics" if kind.is_kafka else "Queues" if kind is SourceKind.MQ else None
    if required is not None and not settings.get(SETTINGS[required]):
        raise _server_violation(None, required, "Member must not be null")  # (inferred)
    if kind in (SourceKind.SELF_MANAGED_KAFKA, SourceKind.MQ) and not settings.get("source_access_configurations"):
        raise InvalidParameterValueException(_NO_ACCESS)  # recorded for self-managed Kafka
    age = settings.get("maximum_record_age_in_seconds")
    if age is not None and 0 <= age < 60:
        raise _server_violation(age, "MaximumRecordAgeInSeconds", "Member must have value greater than or equal to 60")
    if kind is SourceKind.SQS:
        window = settings.get("maximum_batching_window_in_seconds") or 0
        if window > 0 and is_fifo_queue(settings["event_source_arn"]):
            raise InvalidParameterValueException(_FIFO_WINDOW)
        if settings["batch_size"] > 10 and window == 0:
            raise InvalidParameterValueException(_WINDOW_NEEDED)


def _servers(mapping: EventSourceMapping) -> list[str]:
    return list(((mapping.self_managed_event_source or {}).get("Endpoints") or {}).get("KAFKA_BOOTSTRAP_SERVERS", []))


# -- filter patterns (EventBridge's syntax) --------------------------------------------------------------------------
def _filter_criteria(value: Mapping[str, Any]) -> dict[str, Any] | None:
    """FilterCriteria as kept and shown; none at all when it has no filters (recorded: `{"Filters": []}` is left out
    of the answer)."""
    filters = value.get("Filters") or []
    for entry in filters:
        if not valid_pattern(entry.get("Pattern")):
            raise InvalidParameterValueException(_BAD_FILTER)
    return {"Filters": [dict(entry) for entry in filters]} if filters else None


def valid_pattern(text: Any) -> bool:
    """A filter's Pattern: a JSON object whose fields are nested objects or non-empty lists of values and matchers
    (prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, exists, cidr), or `$or` of such objects."""
    if not isinstance(text, str):
        return False
    try:
        pattern = json.loads(text)
        return isinstance(pattern, dict) and _valid_object(pattern)
    except (ValueError, RecursionError):
        return False


def _valid_object(pattern: dict[str, Any]) -> bool:
    for key, value in pattern.items():
        if key == "$or":
            if not (isinstance(value, list) and len(value) > 1
                    and all(isinstance(part, dict) and part and _valid_object(part) for part in value)):
                return False
        elif isinstance(value, dict):
            if not _valid_object(value):
                return False
        elif not (isinstance(value, list) and value and all(_valid_matcher(matcher) for matcher in value)):
            return False
    return True


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _text_or_ignoring_case(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, dict) and list(value) == ["equals-ignore-case"]
                                      and isinstance(value["equals-ignore-case"], str))


def _numeric(value: Any) -> bool:
    if not isinstance(value, list) or len(value) not in (2, 4):
        return False
    operators = value[::2]
    if not all(op in ("<", "<=", "=", ">", ">=") for op in operators) or not all(map(_is_number, value[1::2])):
        return False
    return len(operators) == 1 or "=" not in operators


def _anything_but(value: Any) -> bool:
    if isinstance(value, list):
        return bool(value) and all(_is_text(item) or _is_number(item) for item in value)
    if isinstance(value, dict):
        return len(value) == 1 and list(value)[0] in ("prefix", "suffix", "equals-ignore-case", "wildcard") and all(
            map(_is_text, value.values())
        )
    return _is_text(value) or _is_number(value)


def _cidr(value: Any) -> bool:
    try:
        return isinstance(value, str) and ipaddress.ip_network(value, strict=False) is not None
    except ValueError:
        return False


_MATCHERS: dict[str, Callable[[Any], bool]] = {
    "prefix": _text_or_ignoring_case,
    "suffix": _text_or_ignoring_case,
    "equals-ignore-case": _is_text,
    "wildcard": _is_text,
    "anything-but": _anything_but,
    "numeric": _numeric,
    "exists": lambda value: isinstance(value, bool),
    "cidr": _cidr,
}


def _valid_matcher(matcher: Any) -> bool:
    if matcher is None or isinstance(matcher, (str, bool, int, float)):
        return True
    if not isinstance(matcher, dict) or len(matcher) != 1:
        return False
    ((operator, operand),) = matcher.items()
    check = _MATCHERS.get(operator)
    return check is not None and check(operand)
