"""Function tags: TagResource, UntagResource, ListTags and `Tags` in CreateFunction/GetFunction.

Tags belong to the unqualified function (AWS refuses version and alias ARNs) and are kept in memory, written through
to the attachment store. Changing them gives the function a new RevisionId, as AWS does.
Tags of the other kinds Lamina hosts (event source mappings) are kept by their owners (`TaggedResources`).
"""
from __future__ import annotations

import threading
from typing import Any, Callable, Mapping, Protocol

from lamina.model.arns import FunctionRef, TaggableRef, function_arn, parse_taggable_arn
from lamina.control.functions import FunctionService
from lamina.errors import InvalidParameterValueException, InvalidRequestContentException, ResourceNotFoundException
from lamina.errors import validation_error
from lamina.model.keys import FunctionKey, Scope
from lamina.store.attachments import AttachmentStore

MAX_TAGS = 50
MAX_KEY_LENGTH = 128
MAX_VALUE_LENGTH = 256

_QUALIFIED = "Tags on function aliases and versions are not supported. Please specify a function ARN."
_TOO_MANY = "Number of tags exceeds resource tag limit."
_EMPTY = "An error occurred and the request cannot be processed."
# AWS's not-found text for the other taggable kinds (recorded where AWS has one), for those no owner answers.
_OTHER_KINDS = {
    "event-source-mapping": "Event source mapping not found: {arn}",
    "capacity-provider": "Capacity provider not found: {arn}",
    "code-signing-config": "The Lambda code signing configuration {arn} can not be found.",
    "layer": "Layer not found: {arn}",
}


class TaggedResources(Protocol):
    """Another kind of taggable resource Lamina hosts (event source mappings), by the name in its ARN."""

    def tags_of(self, scope: Scope, name: str, arn: str) -> dict[str, str]:
        """Its tags, or AWS's not-found error for `arn`."""
        ...

    def retag(self, scope: Scope, name: str, arn: str, change: Callable[[dict[str, str]], dict[str, str]]) -> None:
        """Replace its tags with `change(current tags)`, atomically."""
        ...


def check_create_tags(tags: Any) -> dict[str, str]:
    """CreateFunction's `Tags`: checked for the limits here; a malformed map is left to the request validation,
    which AWS runs first and which refuses it with its own message."""
    if not isinstance(tags, dict) or not all(isinstance(value, str) for value in tags.values()):
        return {}
    return check_tags(tags)


def _require_string_map(tags: Any) -> None:
    if not isinstance(tags, dict) or not all(isinstance(value, str) for value in tags.values()):
        raise InvalidRequestContentException("Could not parse request body into json: expected a string map for Tags.")


def check_tags(tags: Any) -> dict[str, str]:
    """A request's tag map, or AWS's error for it (count first, then each key and value)."""
    _require_string_map(tags)
    if len(tags) > MAX_TAGS:
        raise InvalidParameterValueException(_TOO_MANY)
    for key, value in tags.items():
        if not 1 <= len(key) <= MAX_KEY_LENGTH:
            raise InvalidParameterValueException(
                f"Tag keys must be between 1 and {MAX_KEY_LENGTH} characters long: {key}"
            )
        if key.lower().startswith("aws:"):
            raise InvalidParameterValueException(f"Tag keys starting with 'aws:' are reserved for internal use: {key}")
        if len(value) > MAX_VALUE_LENGTH:
            raise InvalidParameterValueException(
                f"Tag values must be at most {MAX_VALUE_LENGTH} characters long (key {key})"
            )
    return dict(tags)


def _merged(current: dict[str, str], tags: dict[str, str]) -> dict[str, str]:
    """TagResource's result: `tags` over `current`, or AWS's error for an empty request or too many tags."""
    if not tags:
        raise InvalidParameterValueException(_EMPTY)
    merged = current | check_tags(tags)
    if len(merged) > MAX_TAGS:
        raise InvalidParameterValueException(_TOO_MANY)
    return merged


class TagService:
    def __init__(
        self, store: AttachmentStore, functions: FunctionService, others: Mapping[str, TaggedResources] | None = None
    ) -> None:
        """`others`: the owners of other taggable kinds (`event-source-mapping`), by ARN kind."""
        self._store = store
        self._functions = functions
        self._others = dict(others or {})
        self._tags: dict[FunctionKey, dict[str, str]] = {}
        self._guard = threading.Lock()

    def load(self) -> None:
        """Read every function's tags; tags left by a function whose deletion was interrupted are dropped."""
        for key, tags in self._store.all_tags().items():
            if self._functions.exists(key):
                self._tags[key] = tags
            else:
                self._store.forget(key)

    # -- reads ---------------------------------------------------------------------------------------------------
    def tags_of(self, key: FunctionKey) -> dict[str, str]:
        return dict(self._tags.get(key, {}))

    def list(self, scope: Scope, resource: str) -> dict[str, str]:
        target = parse_taggable_arn(resource)
        if target.kind in self._others:
            return self._others[target.kind].tags_of(scope, target.name, target.arn)
        _, key = self._function(scope, target)
        return self.tags_of(key)

    # -- writes --------------------------------------------------------------------------------------------------
    def attach_initial(self, key: FunctionKey, tags: dict[str, str]) -> None:
        """CreateFunction's `Tags` (checked with check_create_tags): a new function starts with exactly these."""
        with self._guard:
            self._store.put_tags(key, tags)
            self._tags[key] = dict(tags)

    def tag(self, scope: Scope, resource: str, tags: Any) -> None:
        if tags is not None:
            _require_string_map(tags)
        target = parse_taggable_arn(resource)
        if tags is None:
            raise validation_error(None, "tags", "Member must not be null")
        if target.kind in self._others:
            self._others[target.kind].retag(scope, target.name, target.arn, lambda current: _merged(current, tags))
            return
        ref, key = self._function(scope, target)
        self._replace(scope, ref, _merged(self.tags_of(key), tags))

    def untag(self, scope: Scope, resource: str, keys: list[str] | None) -> None:
        target = parse_taggable_arn(resource)
        if not keys:
            raise validation_error(None, "tagKeys", "Member must not be null")
        if target.kind in self._others:
            self._others[target.kind].retag(
                scope, target.name, target.arn, lambda current: {k: v for k, v in current.items() if k not in keys}
            )
            return
        ref, function = self._function(scope, target)
        current = self.tags_of(function)
        remaining = {key: value for key, value in current.items() if key not in keys}
        if remaining != current:
            self._replace(scope, ref, remaining)

    def forget(self, key: FunctionKey) -> None:
        with self._guard:
            self._store.put_tags(key, {})
            self._tags.pop(key, None)

    # -- helpers -------------------------------------------------------------------------------------------------
    def _function(self, scope: Scope, target: TaggableRef) -> tuple[FunctionRef, FunctionKey]:
        """The unqualified function a tagging call names, or AWS's error for a version, alias, other resource, or a
        function of another account or region than the caller's."""
        if target.kind != "function":
            raise ResourceNotFoundException(_OTHER_KINDS[target.kind].format(arn=target.arn))
        if target.qualifier is not None:
            raise InvalidParameterValueException(_QUALIFIED)
        ref = FunctionRef(target.name, region=target.region, account=target.account)
        if target.region != scope.region or target.account != scope.account:
            raise ResourceNotFoundException(
                f"Function not found: {function_arn(target.region, target.account, target.name)}"
            )
        key = scope.function(target.name)
        self._functions.current(key)
        return ref, key

    def _replace(self, scope: Scope, ref: FunctionRef, tags: dict[str, str]) -> None:
        """Store the new tags and give the function a new RevisionId, under the function's update slot."""
        with self._functions.revising(scope, ref) as (current, _):
            with self._guard:
                self._store.put_tags(current.key, tags)
                self._tags[current.key] = tags
