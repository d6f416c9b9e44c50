"""The event source mapping state machine: AWS's passing states, their settling, refusals, restarts and listeners.

The service runs against an in-memory store and a scheduler the test drives, so every step is observed.
"""
from __future__ import annotations

from typing import Callable

import pytest

from lamina.control.event_source_mappings import EventSourceMappingService, ResourceInUseException
from lamina.errors import ResourceNotFoundException
from lamina.model.event_source_mapping import (
    TRANSITIONS,
    EventSourceMapping,
    IllegalTransition,
    SourceKind,
    State,
)
from lamina.model.keys import FunctionKey, Scope

SCOPE = Scope("123456789012", "us-east-1")
QUEUE = "arn:aws:sqs:us-east-1:123456789012:orders"
STREAM = "arn:aws:kinesis:us-east-1:123456789012:stream/clicks"


class MemoryStore:
    def __init__(self, mappings: list[EventSourceMapping] | None = None) -> None:
        self.rows = {mapping.uuid: mapping.to_record() for mapping in mappings or []}

    def load_all(self) -> list[EventSourceMapping]:
        return [EventSourceMapping.from_record(record) for record in self.rows.values()]

    def put(self, mapping: EventSourceMapping) -> None:
        self.rows[mapping.uuid] = mapping.to_record()

    def delete(self, scope: Scope, uuid: str) -> None:
        self.rows.pop(uuid, None)

    def close(self) -> None:
        pass


class Scheduler:
    """Keeps scheduled work until the test runs it."""

    def __init__(self) -> None:
        self.pending: list[tuple[float, Callable[[], None]]] = []

    def __call__(self, delay: float, work: Callable[[], None]) -> None:
        self.pending.append((delay, work))

    def run(self) -> None:
        pending, self.pending = self.pending, []
        for _, work in pending:
            work()


@pytest.fixture
def parts() -> tuple[EventSourceMappingService, MemoryStore, Scheduler, list[tuple[str, State | None]]]:
    store, scheduler = MemoryStore(), Scheduler()
    service = EventSourceMappingService(store, lambda function, qualifier: function.name == "fn", scheduler)
    heard: list[tuple[str, State | None]] = []
    service.on_change(lambda uuid, mapping: heard.append((uuid, mapping.state if mapping else None)))
    return service, store, scheduler, heard


def mapping(state: State, *, enabled: bool = True, uuid: str = "7f6a1b9e-0000-4000-8000-000000000001") -> EventSourceMapping:
    return EventSourceMapping(
        uuid=uuid, function=FunctionKey(*SCOPE, "fn"), qualifier=None, kind=SourceKind.SQS, state=state,
        state_transition_reason="USER_INITIATED", last_modified=1.0, enabled=enabled, batch_size=10,
        event_source_arn=QUEUE, maximum_batching_window_in_seconds=0, function_response_types=(),
    )


def test_every_passing_state_ends_settled_and_deleting_is_final() -> None:
    for state, targets in TRANSITIONS.items():
        if state in (State.CREATING, State.UPDATING, State.ENABLING, State.DISABLING):
            assert targets and all(target.settled for target in targets), state
    assert TRANSITIONS[State.DELETING] == frozenset()
    # a user's change starts only from a settled state
    assert {state for state, targets in TRANSITIONS.items() if State.DELETING in targets} == {
        State.ENABLED, State.DISABLED
    }


@pytest.mark.parametrize("start, to", [
    (State.CREATING, State.UPDATING), (State.CREATING, State.DELETING), (State.ENABLED, State.ENABLED),
    (State.ENABLED, State.ENABLING), (State.DISABLED, State.DISABLING), (State.UPDATING, State.DELETING),
    (State.ENABLING, State.DISABLED), (State.DISABLING, State.ENABLED), (State.DELETING, State.ENABLED),
])
def test_illegal_moves_are_refused(start: State, to: State) -> None:
    with pytest.raises(IllegalTransition):
        mapping(start).moved(to)


def test_create_answers_creating_then_settles_enabled(parts) -> None:
    service, store, scheduler, heard = parts
    created = service.create(SCOPE, {"FunctionName": "fn", "EventSourceArn": QUEUE})
    assert created.state is State.CREATING
    assert service.get(SCOPE, created.uuid).state is State.CREATING
    assert [delay for delay, _ in scheduler.pending] == [0.5]
    scheduler.run()
    assert service.get(SCOPE, created.uuid).state is State.ENABLED
    assert EventSourceMapping.from_record(store.rows[created.uuid]).state is State.ENABLED
    assert heard == [(created.uuid, State.CREATING), (created.uuid, State.ENABLED)]


def test_created_disabled_is_disabled_at_once(parts) -> None:
    service, _, scheduler, _ = parts
    created = service.create(SCOPE, {"FunctionName": "fn", "EventSourceArn": QUEUE, "Enabled": False})
    assert created.state is State.DISABLED and not scheduler.pending


def test_changes_wait_for_the_one_under_way(parts) -> None:
    service, _, scheduler, _ = parts
    created = service.create(SCOPE, {"FunctionName": "fn", "EventSourceArn": QUEUE})
    for change in (lambda: service.update(SCOPE, created.uuid, {"BatchSize": 5}),
                   lambda: service.delete(SCOPE, created.uuid)):
        with pytest.raises(ResourceInUseException) as refused:
            change()
        assert refused.value.status == 400 and "Creating" in refused.value.message
    scheduler.run()
    assert service.update(SCOPE, created.uuid, {"BatchSize": 5}).state is State.UPDATING
    with pytest.raises(ResourceInUseException):
        service.update(SCOPE, created.uuid, {"BatchSize": 6})
    scheduler.run()
    settled = service.get(SCOPE, created.uuid)
    assert settled.state is State.ENABLED and settled.batch_size == 5


def test_disable_and_enable_pass_through_disabling_and_enabling(parts) -> None:
    service, _, scheduler, heard = parts
    uuid = service.create(SCOPE, {"FunctionName": "fn", "EventSourceArn": QUEUE}).uuid
    scheduler.run()
    assert service.update(SCOPE, uuid, {"Enabled": False}).state is State.DISABLING
    scheduler.run()
    assert service.get(SCOPE, uuid).state is State.DISABLED
    # a change to a disabled mapping updates it and leaves it disabled
    assert service.update(SCOPE, uuid, {"BatchSize": 3}).state is State.UPDATING
    scheduler.run()
    assert service.get(SCOPE, uuid).state is State.DISABLED
    assert service.update(SCOPE, uuid, {"Enabled": True}).state is State.ENABLING
    scheduler.run()
    assert [state for _, state in heard] == [
        State.CREATING, State.ENABLED, State.DISABLING, State.DISABLED, State.UPDATING, State.DISABLED,
        State.ENABLING, State.ENABLED,
    ]


def test_delete_answers_deleting_and_the_mapping_goes(parts) -> None:
    service, store, scheduler, heard = parts
    uuid = service.create(SCOPE, {"FunctionName": "fn", "EventSourceArn": QUEUE}).uuid
    scheduler.run()
    assert service.delete(SCOPE, uuid).state is State.DELETING
    assert service.get(SCOPE, uuid).state is State.DELETING
    scheduler.run()
    with pytest.raises(ResourceNotFoundException):
        service.get(SCOPE, uuid)
    assert uuid not in store.rows and heard[-2:] == [(uuid, State.DELETING), (uuid, None)]


def test_a_move_made_meanwhile_is_not_undone(parts) -> None:
    service, _, scheduler, _ = parts
    uuid = service.create(SCOPE, {"FunctionName": "fn", "EventSourceArn": QUEUE}).uuid
    # a poller that failed to start leaves the mapping disabled before the timer fires
    assert service.transition(uuid, State.DISABLED, "Lambda initiated").enabled is False
    scheduler.run()
    settled = service.get(SCOPE, uuid)
    assert settled.state is State.DISABLED and settled.state_transition_reason == "Lambda initiated"
    with pytest.raises(IllegalTransition):
        service.transition(uuid, State.DISABLING)


def test_a_restart_finishes_interrupted_changes() -> None:
    store = MemoryStore([
        mapping(State.CREATING, uuid="00000000-0000-4000-8000-00000000000a"),
        mapping(State.UPDATING, enabled=False, uuid="00000000-0000-4000-8000-00000000000b"),
        mapping(State.DISABLING, enabled=False, uuid="00000000-0000-4000-8000-00000000000c"),
        mapping(State.DELETING, uuid="00000000-0000-4000-8000-00000000000d"),
        mapping(State.ENABLED, uuid="00000000-0000-4000-8000-00000000000e"),
    ])
    service = EventSourceMappingService(store, lambda function, qualifier: True, Scheduler())
    service.load()
    states = {item.uuid[-1]: item.state for item in service.mappings()}
    assert states == {"a": State.ENABLED, "b": State.DISABLED, "c": State.DISABLED, "e": State.ENABLED}
    assert "00000000-0000-4000-8000-00000000000d" not in store.rows
    assert EventSourceMapping.from_record(store.rows["00000000-0000-4000-8000-00000000000a"]).state is State.ENABLED


def test_a_deleted_function_keeps_its_mappings_and_the_listeners_hear_of_it(parts) -> None:
    service, _, scheduler, heard = parts
    uuid = service.create(SCOPE, {"FunctionName": "fn", "EventSourceArn": QUEUE}).uuid
    scheduler.run()
    service.function_deleted(FunctionKey(*SCOPE, "fn"))
    service.function_deleted(FunctionKey(*SCOPE, "other"))
    assert service.get(SCOPE, uuid).state is State.ENABLED
    assert heard[-1] == (uuid, State.ENABLED) and len(heard) == 3


def test_processing_results_are_written_only_when_they_change(parts) -> None:
    service, store, scheduler, heard = parts
    uuid = service.create(
        SCOPE, {"FunctionName": "fn", "EventSourceArn": STREAM, "StartingPosition": "LATEST"}
    ).uuid
    scheduler.run()
    assert service.get(SCOPE, uuid).last_processing_result == "No records processed"
    service.record_result(uuid, "OK")
    assert EventSourceMapping.from_record(store.rows[uuid]).last_processing_result == "OK"
    store.rows[uuid]["last_processing_result"] = "sentinel"
    service.record_result(uuid, "OK")
    assert store.rows[uuid]["last_processing_result"] == "sentinel" and len(heard) == 2


def test_the_record_round_trips() -> None:
    original = mapping(State.ENABLED).replace(
        topics=("t",), source_access_configurations=({"Type": "BASIC_AUTH", "URI": "arn:x"},),
        filter_criteria={"Filters": [{"Pattern": "{}"}]}, tags={"a": "b"}, starting_position_timestamp=1.5,
    )
    assert EventSourceMapping.from_record(original.to_record()) == original
