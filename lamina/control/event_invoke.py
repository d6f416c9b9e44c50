"""Asynchronous-invocation settings per function qualifier (Put/Update/Get/Delete/ListFunctionEventInvokeConfig).

The rules and AWS's messages live here; the records live in `store/event_invoke_configs.py`. An in-memory view
answers the delivery workers (`settings`) without touching the database.
"""
from __future__ import annotations

import dataclasses
import threading
import time
from dataclasses import dataclass
from typing import Any

from lamina.model.arns import LATEST, FunctionRef, is_version, parse_function_name
from lamina.model.keys import FunctionKey, Scope
from lamina.control.functions import FunctionService
from lamina.control.validation import LAMBDA
from lamina.errors import (
    InvalidParameterValueException,
    LambdaError,
    ResourceNotFoundException,
)
from lamina.store.event_invoke_configs import EventInvokeConfigStore
from lamina.validation.paging import page

DEFAULT_RETRY_ATTEMPTS = 2
DEFAULT_MAX_EVENT_AGE_SECONDS = 21600
#: Where Lamina can deliver invocation records (S3 and Kafka destinations are not supported).
DESTINATION_SERVICES = ("lambda", "sqs", "sns", "events")
_SIDES = (("OnSuccess", "onSuccess"), ("OnFailure", "onFailure"))
_SETTINGS = ("MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig")


@dataclass(frozen=True)
class EventInvokeConfig:
    """One qualifier's settings; None means "not set" (AWS leaves the member out and applies the default)."""

    account: str
    region: str
    name: str
    qualifier: str
    maximum_retry_attempts: int | None = None
    maximum_event_age_seconds: int | None = None
    on_success: str | None = None
    on_failure: str | None = None
    last_modified: float = 0.0

    @property
    def key(self) -> FunctionKey:
        """The function the settings belong to."""
        return FunctionKey(self.account, self.region, self.name)

    @property
    def retry_attempts(self) -> int:
        return DEFAULT_RETRY_ATTEMPTS if self.maximum_retry_attempts is None else self.maximum_retry_attempts

    @property
    def max_event_age_seconds(self) -> int:
        if self.maximum_event_age_seconds is None:
            return DEFAULT_MAX_EVENT_AGE_SECONDS
        return self.maximum_event_age_seconds

    def to_record(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> "EventInvokeConfig":
        known = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in record.items() if key in known})

    def to_aws(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "LastModified": self.last_modified,
            "FunctionArn": self.key.arn(self.qualifier),
        }
        if self.maximum_retry_attempts is not None:
            document["MaximumRetryAttempts"] = self.maximum_retry_attempts
        if self.maximum_event_age_seconds is not None:
            document["MaximumEventAgeInSeconds"] = self.maximum_event_age_seconds
        document["DestinationConfig"] = {
            "OnSuccess": {"Destination": self.on_success} if self.on_success else {},
            "OnFailure": {"Destination": self.on_failure} if self.on_failure else {},
        }
        return document


def _qualifier_order(qualifier: str) -> tuple[int, int, str]:
    """$LATEST, then versions by number, then aliases by name."""
    if qualifier == LATEST:
        return (0, 0, "")
    if is_version(qualifier):
        return (1, int(qualifier), "")
    return (2, 0, qualifier)


def _no_config(key: FunctionKey, qualifier: str | None) -> ResourceNotFoundException:
    arn = key.arn(qualifier or LATEST)
    return ResourceNotFoundException(f"The function {arn} doesn't have an EventInvokeConfig")


def _no_function() -> ResourceNotFoundException:
    return ResourceNotFoundException("The function doesn't exist.")


def _java_destination_config(destinations: dict[str, Any]) -> str:
    """How AWS's Java front end prints the DestinationConfig it refuses."""
    parts = []
    for member, field in _SIDES:
        side = destinations.get(member)
        if side is None:
            parts.append(f"{field}=null")
        else:
            parts.append(f"{field}={member}(destination={side.get('Destination') or 'null'})")
    return f"DestinationConfig({', '.join(parts)})"


def _check_body(body: dict[str, Any], operation: str = "PutFunctionEventInvokeConfig") -> None:
    """Types, then "at least one setting", then the model's constraints (ValidationException)."""
    LAMBDA.check_types(operation, body)
    if all(body.get(member) is None for member in _SETTINGS):
        raise InvalidParameterValueException("You must specify at least one of error handling or destination setting.")
    LAMBDA.check(operation, body)


class EventInvokeConfigService:
    """Writes run on a worker thread (they write SQLite) while the loop reads: each function's map of qualifiers is
    replaced whole, never changed in place, so a reader iterating one is never disturbed; a lock orders the writers."""

    def __init__(self, store: EventInvokeConfigStore, functions: FunctionService) -> None:
        self._store = store
        self._functions = functions
        self._configs: dict[FunctionKey, dict[str, EventInvokeConfig]] = {}
        self._writing = threading.RLock()

    def load(self) -> None:
        for record in self._store.load_all():
            config = EventInvokeConfig.from_record(record)
            self._configs.setdefault(config.key, {})[config.qualifier] = config

    # -- the delivery path ---------------------------------------------------------------------------------------
    def settings(self, key: FunctionKey, qualifier: str | None) -> EventInvokeConfig:
        """The settings an event invoked with `qualifier` runs under (AWS's defaults when none are set)."""
        qualifier = qualifier or LATEST
        config = self._configs.get(key, {}).get(qualifier)
        return config if config is not None else EventInvokeConfig(*key, qualifier)

    # -- operations ----------------------------------------------------------------------------------------------
    def put(self, scope: Scope, ref: FunctionRef, qualifier: str | None, body: dict[str, Any]) -> EventInvokeConfig:
        _check_body(body)
        qualifier = self._existing_qualifier(scope, ref, qualifier)
        self._check_destinations(scope, ref.name, body.get("DestinationConfig") or {})
        destinations = body.get("DestinationConfig") or {}
        config = EventInvokeConfig(
            account=scope.account,
            region=scope.region,
            name=ref.name,
            qualifier=qualifier,
            maximum_retry_attempts=body.get("MaximumRetryAttempts"),
            maximum_event_age_seconds=body.get("MaximumEventAgeInSeconds"),
            on_success=(destinations.get("OnSuccess") or {}).get("Destination") or None,
            on_failure=(destinations.get("OnFailure") or {}).get("Destination") or None,
            last_modified=time.time(),
        )
        return self._save(config)

    def update(self, scope: Scope, ref: FunctionRef, qualifier: str | None, body: dict[str, Any]) -> EventInvokeConfig:
        _check_body(body, "UpdateFunctionEventInvokeConfig")
        qualifier = self._existing_qualifier(scope, ref, qualifier)
        key = scope.function(ref.name)
        destinations = body.get("DestinationConfig") or {}
        with self._writing:  # read, change and save as one, so two updates cannot lose one another
            current = self._configs.get(key, {}).get(qualifier)
            if current is None:
                raise _no_config(key, qualifier)
            self._check_destinations(scope, ref.name, destinations)
            changes: dict[str, Any] = {"last_modified": time.time()}
            if body.get("MaximumRetryAttempts") is not None:
                changes["maximum_retry_attempts"] = body["MaximumRetryAttempts"]
            if body.get("MaximumEventAgeInSeconds") is not None:
                changes["maximum_event_age_seconds"] = body["MaximumEventAgeInSeconds"]
            for member, attribute in (("OnSuccess", "on_success"), ("OnFailure", "on_failure")):
                if destinations.get(member) is not None:
                    changes[attribute] = destinations[member].get("Destination") or None
            return self._save(dataclasses.replace(current, **changes))

    def get(self, scope: Scope, ref: FunctionRef, qualifier: str | None) -> EventInvokeConfig:
        key = scope.function(ref.name)
        config = self._configs.get(key, {}).get(qualifier or LATEST)
        if config is None or not self._qualifier_exists(scope, ref, qualifier):
            raise _no_config(key, qualifier)
        return config

    def delete(self, scope: Scope, ref: FunctionRef, qualifier: str | None) -> None:
        key = self.get(scope, ref, qualifier).key
        with self._writing:
            self._store.delete(key, qualifier or LATEST)
            remaining = {name: config for name, config in self._configs.get(key, {}).items()
                         if name != (qualifier or LATEST)}
            if remaining:
                self._configs[key] = remaining
            else:
                self._configs.pop(key, None)

    def list(
        self, scope: Scope, ref: FunctionRef, marker: str | None, max_items: int
    ) -> tuple[list[EventInvokeConfig], str | None]:
        if not self._qualifier_exists(scope, ref, None):
            raise _no_function()
        configs = sorted(
            (
                config
                for config in self._configs.get(scope.function(ref.name), {}).values()
                if self._qualifier_exists(scope, ref, config.qualifier)
            ),
            key=lambda config: _qualifier_order(config.qualifier),
        )
        return page(configs, lambda config: config.qualifier, marker, max_items, _qualifier_order)

    def forget_function(self, key: FunctionKey) -> None:
        """The function is gone: so are its settings."""
        with self._writing:
            if self._configs.pop(key, None) is not None:
                self._store.delete(key, None)

    # -- helpers -------------------------------------------------------------------------------------------------
    def _save(self, config: EventInvokeConfig) -> EventInvokeConfig:
        with self._writing:
            self._store.put(config.key, config.qualifier, config.to_record())
            self._configs[config.key] = {**self._configs.get(config.key, {}), config.qualifier: config}
        return config

    def _qualifier_exists(self, scope: Scope, ref: FunctionRef, qualifier: str | None) -> bool:
        try:
            self._functions.resolve(scope, FunctionRef(ref.name, region=ref.region, account=ref.account), qualifier)
        except LambdaError:
            return False
        return True

    def _existing_qualifier(self, scope: Scope, ref: FunctionRef, qualifier: str | None) -> str:
        if not self._qualifier_exists(scope, ref, qualifier):
            raise _no_function()
        return qualifier or LATEST

    def _check_destinations(self, scope: Scope, name: str, destinations: dict[str, Any]) -> None:
        for member, _ in _SIDES:
            destination = (destinations.get(member) or {}).get("Destination")
            if not destination:
                continue
            parts = destination.split(":", 5)
            if len(parts) != 6 or parts[2] not in DESTINATION_SERVICES:
                raise InvalidParameterValueException(
                    f"The provided destination config {_java_destination_config(destinations)} is invalid."
                )
            if parts[2] == "lambda":
                self._check_function_destination(scope, name, destination)

    def _check_function_destination(self, scope: Scope, name: str, destination: str) -> None:
        invalid = InvalidParameterValueException(f"The destination ARN {destination} is invalid.")
        try:
            target = parse_function_name(destination)
        except LambdaError as error:
            raise invalid from error
        if target.name == name and target.region in (None, scope.region):
            raise InvalidParameterValueException("You can't specify the function as a destination for itself.")
        if target.region not in (None, scope.region) or not self._qualifier_exists(scope, target, target.qualifier):
            raise invalid
