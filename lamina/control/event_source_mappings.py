"""Event source mappings (Create/Get/Update/Delete/ListEventSourceMappings, and their tags): state and lifecycle.

Which settings go with which source, and AWS's messages for them, are `event_source_rules.py`. The mappings live in
`store/event_source_mappings.py`; an index by UUID in memory answers reads (and the pollers) without the database.
Writes run on a worker thread under one lock, which keeps index and store in step and orders the notifications.

The states are AWS's (`model.event_source_mapping.TRANSITIONS`): Create answers Creating and the mapping is Enabled
shortly after (created disabled: Disabled at once, recorded); Update answers Updating, or Enabling/Disabling when it
switches Enabled, and settles; Delete answers Deleting and the mapping is gone shortly after. While a change is under
way the mapping refuses the next one (ResourceInUseException, as AWS documents). `schedule(delay, work)` runs the
settling later on a worker thread; a change a stop interrupted is finished when the mappings are loaded again.

A mapping outlives its function, as on AWS (recorded: Get answers it, Enabled, after DeleteFunction); listeners hear of
the deletion, so that pollers stop invoking a function that is gone.
"""
from __future__ import annotations

import functools
import logging
import threading
import uuid as uuids
from typing import Any, Callable, Mapping

from lamina.control.event_source_rules import (
    conflict_message,
    create_settings,
    duplicate_of,
    initial_result,
    source_of,
    update_settings,
    user_reason,
)
from lamina.control.functions import FunctionService
from lamina.control.tags import check_tags
from lamina.control.validation import LAMBDA
from lamina.errors import InvalidParameterValueException, LambdaError, ResourceConflictException
from lamina.errors import ResourceNotFoundException
from lamina.model.arns import LATEST, MAX_NAMESPACED_LENGTH, is_version, parse_function_name
from lamina.model.event_source_mapping import EventSourceMapping, State, now
from lamina.model.keys import FunctionKey, Scope
from lamina.store.event_source_mappings import EventSourceMappingStore
from lamina.validation.paging import page, page_size

#: How long a change stays in its passing state (Creating, Updating, ...) before it settles.
SETTLE_SECONDS = 0.5
#: ListEventSourceMappings answers at most 100 mappings a page, whatever MaxItems says (AWS's API reference).
LIST_PAGE_LIMIT = 100
_NOT_FOUND = "The resource you requested does not exist."
_NO_FUNCTION = "Function does not exist"
_log = logging.getLogger("lamina.event_source_mappings")

#: `listener(uuid, mapping)`: the mapping after a change, None once it is gone.
Listener = Callable[[str, EventSourceMapping | None], None]
#: `schedule(delay, work)`: run `work` on a worker thread `delay` seconds from now.
Schedule = Callable[[float, Callable[[], None]], None]
#: `target_exists(function, qualifier)`: the function exists, and so does the version or alias it names.
TargetExists = Callable[[FunctionKey, str | None], bool]


class ResourceInUseException(LambdaError):
    """A change to a mapping while another is under way (AWS's code and status; the message is inferred)."""

    code, status = "ResourceInUseException", 400


def function_targets(functions: FunctionService) -> TargetExists:
    """`TargetExists` answered from the function service's memory."""

    def exists(function: FunctionKey, qualifier: str | None) -> bool:
        if qualifier is None or is_version(qualifier):
            return functions.version_config(function, qualifier or LATEST) is not None
        return functions.exists(function) and functions.aliases.get(function, qualifier) is not None

    return exists


def _settled(mapping: EventSourceMapping) -> State:
    return State.ENABLED if mapping.enabled else State.DISABLED


class EventSourceMappingService:
    def __init__(
        self,
        store: EventSourceMappingStore,
        target_exists: TargetExists,
        schedule: Schedule,
        *,
        settle_seconds: float = SETTLE_SECONDS,
    ) -> None:
        self._store = store
        self._target_exists = target_exists
        self._schedule = schedule
        self._settle_seconds = settle_seconds
        self._by_uuid: dict[str, EventSourceMapping] = {}
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def on_change(self, listener: Listener) -> None:
        """Call `listener(uuid, mapping)` after every change of a mapping's settings or state (None: it is gone), and
        when its function is deleted. Called in order under the service's lock, from the thread that made the change:
        a listener only hands the change on (to a poller's loop). Tags and LastProcessingResult do not notify."""
        self._listeners.append(listener)

    def load(self) -> None:
        """Read every mapping; a change a stop interrupted is finished (passing states settle, Deleting ones go)."""
        for mapping in self._store.load_all():
            if mapping.state is State.DELETING:
                self._store.delete(mapping.scope, mapping.uuid)
                continue
            if not mapping.state.settled:
                mapping = mapping.moved(_settled(mapping))
                self._store.put(mapping)
            self._by_uuid[mapping.uuid] = mapping

    # -- reads -------------------------------------------------------------------------------------------------------
    def mapping(self, uuid: str) -> EventSourceMapping | None:
        return self._by_uuid.get(uuid)

    def mappings(self) -> list[EventSourceMapping]:
        """Every mapping of every account (the pollers start from these)."""
        return list(self._by_uuid.values())

    def get(self, scope: Scope, uuid: str) -> EventSourceMapping:
        LAMBDA.check("GetEventSourceMapping", {"UUID": uuid})
        return self._existing(scope, uuid)

    def list(
        self,
        scope: Scope,
        function_name: str | None,
        event_source_arn: str | None,
        marker: str | None,
        raw_max_items: str | None,
    ) -> tuple[list[EventSourceMapping], str | None]:
        """The caller's mappings, of one function (as named: a qualifier names that version or alias) and/or one
        source; filters naming nothing give an empty list, not an error (recorded)."""
        size = page_size(
            LAMBDA, "ListEventSourceMappings", raw_max_items,
            EventSourceArn=event_source_arn, FunctionName=function_name, Marker=marker,
        )
        size = min(size, LIST_PAGE_LIMIT) if raw_max_items is not None else LIST_PAGE_LIMIT
        target: tuple[FunctionKey, str | None] | None = None
        if function_name is not None:
            ref = parse_function_name(function_name, max_length=MAX_NAMESPACED_LENGTH)
            if ref.region not in (None, scope.region) or ref.account not in (None, scope.account):
                return [], None
            target = (scope.function(ref.name), ref.qualifier)
        chosen = sorted(
            (
                mapping for mapping in self._by_uuid.values()
                if mapping.scope == scope
                and (event_source_arn is None or mapping.event_source_arn == event_source_arn)
                and (target is None or (mapping.function, mapping.qualifier) == target)
            ),
            key=lambda mapping: mapping.uuid,
        )
        return page(chosen, lambda mapping: mapping.uuid, marker, size)

    # -- writes (worker threads) -------------------------------------------------------------------------------------
    def create(self, scope: Scope, body: Mapping[str, Any]) -> EventSourceMapping:
        LAMBDA.check("CreateEventSourceMapping", body)
        kind = source_of(body)
        uuid = str(uuids.uuid4())
        settings = create_settings(kind, body, uuid)
        tags = check_tags(body["Tags"]) if body.get("Tags") is not None else {}
        function, qualifier = self._target(scope, body.get("FunctionName"))
        enabled = body.get("Enabled") is not False
        mapping = EventSourceMapping(
            uuid=uuid,
            function=function,
            qualifier=qualifier,
            kind=kind,
            state=State.CREATING if enabled else State.DISABLED,
            state_transition_reason=user_reason(kind),
            last_modified=now(),
            enabled=enabled,
            last_processing_result=initial_result(kind),
            tags=tags,
            **settings,
        )
        with self._lock:
            self._refuse_duplicate(mapping, body["FunctionName"])
            self._write(mapping)
        if enabled:
            self._settle_later(mapping)
        return mapping

    def update(self, scope: Scope, uuid: str, body: Mapping[str, Any]) -> EventSourceMapping:
        LAMBDA.check("UpdateEventSourceMapping", {**body, "UUID": uuid})
        with self._lock:
            current = self._existing(scope, uuid)
            self._require_settled(current)
            changes = update_settings(current, body)
            if body.get("FunctionName") is not None:
                changes["function"], changes["qualifier"] = self._target(scope, body["FunctionName"])
            enabled = current.enabled if body.get("Enabled") is None else bool(body["Enabled"])
            passing = State.UPDATING if enabled == current.enabled else State.ENABLING if enabled else State.DISABLING
            mapping = current.replace(enabled=enabled, **changes).moved(passing, user_reason(current.kind))
            if body.get("FunctionName") is not None:
                self._refuse_duplicate(mapping, body["FunctionName"])
            self._write(mapping)
        self._settle_later(mapping)
        return mapping

    def delete(self, scope: Scope, uuid: str) -> EventSourceMapping:
        LAMBDA.check("DeleteEventSourceMapping", {"UUID": uuid})
        with self._lock:
            current = self._existing(scope, uuid)
            self._require_settled(current)
            mapping = current.moved(State.DELETING, user_reason(current.kind))
            self._write(mapping)
        self._settle_later(mapping)
        return mapping

    def transition(self, uuid: str, to: State, reason: str | None = None) -> EventSourceMapping:
        """A Lambda-initiated move (the pollers'), refused with IllegalTransition where `TRANSITIONS` has none; a
        passing state settles as a user's change does."""
        with self._lock:
            current = self._by_uuid.get(uuid)
            if current is None:
                raise KeyError(uuid)
            mapping = current.moved(to, reason)
            if to.settled:
                mapping = mapping.replace(enabled=to is State.ENABLED)
            self._write(mapping)
        if not to.settled:
            self._settle_later(mapping)
        return mapping

    def record_result(self, uuid: str, last_processing_result: str) -> None:
        """The pollers' LastProcessingResult ("OK", "PROBLEM: ..."); written only when it changes."""
        with self._lock:
            current = self._by_uuid.get(uuid)
            if current is not None and current.last_processing_result != last_processing_result:
                changed = current.replace(last_processing_result=last_processing_result)
                self._store.put(changed)
                self._by_uuid[uuid] = changed

    def function_deleted(self, function: FunctionKey) -> None:
        """The function is gone; its mappings stay, as on AWS, and the listeners hear of each."""
        with self._lock:
            for mapping in [mapping for mapping in self._by_uuid.values() if mapping.function == function]:
                self._notify(mapping.uuid, mapping)

    # -- tags on event-source-mapping ARNs (control/tags.py) -----------------------------------------------------------
    def tags_of(self, scope: Scope, uuid: str, arn: str) -> dict[str, str]:
        mapping = self._by_uuid.get(uuid)
        if mapping is None or mapping.scope != scope or mapping.arn != arn:
            raise ResourceNotFoundException(f"Event source mapping not found: {arn}")
        return dict(mapping.tags)

    def retag(
        self, scope: Scope, uuid: str, arn: str, change: Callable[[dict[str, str]], dict[str, str]]
    ) -> None:
        """Replace the mapping's tags with `change(current tags)` (which may refuse with an error)."""
        with self._lock:
            current = self.tags_of(scope, uuid, arn)
            tags = change(dict(current))
            if tags != current:
                changed = self._by_uuid[uuid].replace(tags=tags)
                self._store.put(changed)
                self._by_uuid[uuid] = changed

    # -- helpers -------------------------------------------------------------------------------------------------------
    def _target(self, scope: Scope, raw_name: str | None) -> tuple[FunctionKey, str | None]:
        """The function and qualifier FunctionName names, or AWS's 400 when either does not exist (recorded)."""
        ref = parse_function_name(raw_name, max_length=MAX_NAMESPACED_LENGTH)
        function = scope.function(ref.name)
        foreign = ref.region not in (None, scope.region) or ref.account not in (None, scope.account)
        if foreign or not self._target_exists(function, ref.qualifier):
            raise InvalidParameterValueException(_NO_FUNCTION)
        return function, ref.qualifier

    def _existing(self, scope: Scope, uuid: str) -> EventSourceMapping:
        mapping = self._by_uuid.get(uuid)
        if mapping is None or mapping.scope != scope:
            raise ResourceNotFoundException(_NOT_FOUND)
        return mapping

    @staticmethod
    def _require_settled(mapping: EventSourceMapping) -> None:
        if not mapping.state.settled:
            raise ResourceInUseException(
                "The operation cannot be performed at this time. The event source mapping is currently in "
                f"{mapping.state.value} state."
            )

    def _refuse_duplicate(self, mapping: EventSourceMapping, function_name: str) -> None:
        existing = duplicate_of(mapping, (other for other in self._by_uuid.values() if other.scope == mapping.scope))
        if existing is not None:
            raise ResourceConflictException(conflict_message(mapping, existing, function_name))

    def _write(self, mapping: EventSourceMapping) -> None:
        """Store, index and announce a mapping (under the lock)."""
        self._store.put(mapping)
        self._by_uuid[mapping.uuid] = mapping
        self._notify(mapping.uuid, mapping)

    def _notify(self, uuid: str, mapping: EventSourceMapping | None) -> None:
        for listener in self._listeners:
            try:
                listener(uuid, mapping)
            except Exception:
                _log.exception("event source mapping listener failed on %s", uuid)

    def _settle_later(self, mapping: EventSourceMapping) -> None:
        self._schedule(self._settle_seconds, functools.partial(self._settle, mapping.uuid, mapping.state))

    def _settle(self, uuid: str, passing: State) -> None:
        """Finish the change that left the mapping in `passing`, unless something else moved it meanwhile."""
        try:
            with self._lock:
                mapping = self._by_uuid.get(uuid)
                if mapping is None or mapping.state is not passing:
                    return
                if passing is State.DELETING:
                    self._store.delete(mapping.scope, uuid)
                    del self._by_uuid[uuid]
                    self._notify(uuid, None)
                else:
                    self._write(mapping.moved(_settled(mapping)))
        except Exception:
            _log.exception("event source mapping %s did not settle from %s", uuid, passing.value)
