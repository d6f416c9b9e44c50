"""Asynchronous invocation's parts in isolation: the durable queue, the dispatcher's memory bound and recovery,
retries and throttles, invocation records, EventInvokeConfig validation and SigV4 signing."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

from lamina.asyncinvoke import residency as residency_module
from lamina.asyncinvoke.dispatcher import AsyncInvoker
from lamina.asyncinvoke.events import AttemptResult, QueuedEvent
from lamina.asyncinvoke.queue_store import EventQueueStore, read_stats
from lamina.asyncinvoke.records import dead_letter_attributes, encode_record, invocation_record
from lamina.aws.client import AwsClient
from lamina.control.event_invoke import EventInvokeConfig, _check_body, _java_destination_config
from lamina.errors import InvalidParameterValueException, PlatformError, TooManyRequestsException, ValidationException
from lamina.model.invocation import InvocationOutcome
from lamina.model.keys import FunctionKey

ACCOUNT = "000000000000"
FN = FunctionKey(ACCOUNT, "us-east-1", "fn")


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def event(store: EventQueueStore, name: str = "fn", payload: bytes = b'{"a": 1}') -> QueuedEvent:
    return QueuedEvent(store.next_id(), ACCOUNT, "us-east-1", name, None, f"req-{store.last_id}", payload, time.time())


# -- the durable queue -----------------------------------------------------------------------------------------------
def test_queue_commits_concurrent_appends_together_and_survives_reopening(tmp_path: Path):
    async def scenario() -> None:
        store = EventQueueStore(tmp_path / "queue.db")
        commits: list[str] = []
        store._db.set_trace_callback(lambda statement: commits.append(statement) if statement == "COMMIT" else None)
        store.start(asyncio.get_running_loop())
        events = [event(store) for _ in range(200)]
        await asyncio.gather(*(store.append(item) for item in events))
        assert len(commits) < 50, "appends waiting together share commits"
        store.remove(events[0].id)
        events[1].attempts, events[1].not_before = 1, 123.0
        events[1].last_result = AttemptResult("$LATEST", "Unhandled", b'{"errorMessage": "x"}')
        store.reschedule(events[1])
        assert [item.id for item in await store.read_after(0, 3)] == [events[1].id, events[2].id, events[3].id]
        store.close()

    run(scenario())
    reopened = EventQueueStore(tmp_path / "queue.db")
    assert reopened.last_id == 200
    [stats] = read_stats(tmp_path / "queue.db")
    assert (stats.account, stats.name, stats.depth, stats.retrying) == (ACCOUNT, "fn", 199, 1)

    async def read_back() -> list[QueuedEvent]:
        reopened.start(asyncio.get_running_loop())
        rows = await reopened.read_after(0, 1)
        reopened.close()
        return rows

    [retried] = run(read_back())
    assert (retried.attempts, retried.not_before, retried.payload) == (1, 123.0, b'{"a": 1}')
    assert retried.last_result == AttemptResult("$LATEST", "Unhandled", b'{"errorMessage": "x"}')


# -- the dispatcher, with the invocation side faked -----------------------------------------------------------------
class FakeConfig:
    version = "$LATEST"
    dead_letter_target = None


class FakeFunctions:
    def resolve(self, scope: Any, ref: Any, qualifier: str | None, routed: bool = False) -> FakeConfig:
        return FakeConfig()


class FakeSettings:
    def __init__(self, **values: Any) -> None:
        self.values = values

    def settings(self, function: FunctionKey, qualifier: str | None) -> EventInvokeConfig:
        return EventInvokeConfig(*function, qualifier or "$LATEST", **self.values)


class FakeInvocations:
    """Answers by payload: `throttle` and `platform` (a failure in Lamina) fail twice before the function runs;
    `fail` is a function error. Records the calls that reached the function."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []
        self.refused: dict[str, int] = {}

    async def invoke(self, config: Any, request_id: str, payload: bytes, arn: str) -> InvocationOutcome:
        await asyncio.sleep(0)
        if (b"throttle" in payload or b"platform" in payload) and self.refused.get(request_id, 0) < 2:
            self.refused[request_id] = self.refused.get(request_id, 0) + 1
            if b"platform" in payload:
                raise PlatformError("the sandbox could not start")
            raise TooManyRequestsException("Rate Exceeded.")
        self.calls.append((request_id, payload))
        if b"fail" in payload:
            return InvocationOutcome(b'{"errorMessage": "no"}', function_error="Unhandled", duration_ms=1)
        return InvocationOutcome(b"{}", duration_ms=1)


def invoker(store: EventQueueStore, invocations: FakeInvocations, **settings: Any) -> AsyncInvoker:
    return AsyncInvoker(
        store, FakeFunctions(), invocations, FakeSettings(**settings), AwsClient(None),  # type: ignore[arg-type]
        retry_base_seconds=0.05, max_workers_per_function=4, reserved_concurrency=lambda function: None,
    )


async def drained(store_path: Path, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stats = await asyncio.to_thread(read_stats, store_path)
        if not stats:
            return 0
        await asyncio.sleep(0.05)
    return sum(entry.depth for entry in stats)


def test_events_beyond_the_memory_bound_wait_on_disk_and_all_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(residency_module, "MAX_RESIDENT_EVENTS", 10)
    monkeypatch.setattr(residency_module, "REFILL_BATCH", 4)
    invocations = FakeInvocations()

    async def scenario() -> None:
        store = EventQueueStore(tmp_path / "queue.db")
        service = invoker(store, invocations)
        await service.start()
        await asyncio.gather(*(service.enqueue(FN, None, f"r{i}", b"{}") for i in range(100)))
        assert await drained(store.path) == 0
        await service.stop()

    run(scenario())
    assert sorted(request_id for request_id, _ in invocations.calls) == sorted(f"r{i}" for i in range(100))


def test_start_up_delivers_what_a_previous_run_left_in_the_queue(tmp_path: Path):
    async def leave_events() -> None:
        store = EventQueueStore(tmp_path / "queue.db")
        store.start(asyncio.get_running_loop())
        await asyncio.gather(*(store.append(event(store)) for _ in range(25)))
        store.close()

    run(leave_events())
    invocations = FakeInvocations()

    async def restart() -> None:
        store = EventQueueStore(tmp_path / "queue.db")
        service = invoker(store, invocations)
        await service.start()
        await service.enqueue(FN, None, "new", b"{}")
        assert await drained(store.path) == 0
        await service.stop()

    run(restart())
    assert len(invocations.calls) == 26


def test_function_errors_retry_with_the_same_request_id_and_throttles_and_platform_errors_do_not_count(
    tmp_path: Path,
):
    invocations = FakeInvocations()

    async def scenario() -> None:
        store = EventQueueStore(tmp_path / "queue.db")
        service = invoker(store, invocations, maximum_retry_attempts=1)
        await service.start()
        await service.enqueue(FN, None, "failing", b'{"fail": 1}')
        await service.enqueue(FN, None, "throttled", b'{"throttle": 1}')
        await service.enqueue(FN, None, "platform", b'{"platform": 1}')
        assert await drained(store.path) == 0
        await service.stop()

    run(scenario())
    assert [request_id for request_id, _ in invocations.calls].count("failing") == 2
    assert [request_id for request_id, _ in invocations.calls].count("throttled") == 1
    assert [request_id for request_id, _ in invocations.calls].count("platform") == 1
    assert invocations.refused == {"throttled": 2, "platform": 2}


def test_a_bug_escaping_an_invocation_is_not_retried(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    class BuggyInvocations(FakeInvocations):
        async def invoke(self, config: Any, request_id: str, payload: bytes, arn: str) -> InvocationOutcome:
            self.refused[request_id] = self.refused.get(request_id, 0) + 1
            raise TypeError("a programming error")

    invocations = BuggyInvocations()

    async def scenario() -> None:
        store = EventQueueStore(tmp_path / "queue.db")
        service = invoker(store, invocations)
        await service.start()
        await service.enqueue(FN, None, "buggy", b"{}")
        assert await drained(store.path) == 0, "the event leaves the queue (failure path), not retried for ever"
        await service.stop()

    run(scenario())
    assert invocations.refused == {"buggy": 1}
    assert any("a bug" in record.getMessage() and record.exc_info for record in caplog.records)


# -- records -------------------------------------------------------------------------------------------------------
def test_invocation_record_shape_and_size_limit():
    queued = QueuedEvent(1, ACCOUNT, "us-east-1", "fn", None, "rid", b'{"k": 1}', 0.0, attempts=2)
    queued.last_result = AttemptResult("3", "Unhandled", b'{"errorMessage": "bad"}')
    record = invocation_record(queued, "arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST", "RetriesExhausted")
    assert record["requestContext"] == {
        "requestId": "rid",
        "functionArn": "arn:aws:lambda:us-east-1:000000000000:function:fn:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 2,
    }
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "3", "functionError": "Unhandled"}
    assert (record["requestPayload"], record["responsePayload"]) == ({"k": 1}, {"errorMessage": "bad"})
    assert "requestPayload" not in json.loads(encode_record(record, 100))
    assert json.loads(encode_record(record, 100000)) == record
    never_ran = QueuedEvent(2, ACCOUNT, "us-east-1", "fn", None, "rid2", b"raw text", 0.0)
    assert "responseContext" not in invocation_record(never_ran, "arn", "EventAgeExceeded")
    assert invocation_record(never_ran, "arn", "EventAgeExceeded")["requestPayload"] == "raw text"


def test_dead_letter_attributes():
    attributes = dead_letter_attributes("rid", AttemptResult("$LATEST", "Unhandled", json.dumps({"errorMessage": "e" * 2000}).encode()))
    assert [(a.name, a.data_type) for a in attributes] == [("RequestID", "String"), ("ErrorCode", "Number"), ("ErrorMessage", "String")]
    assert attributes[1].value == "200" and len(attributes[2].value) == 1024
    assert [a.value for a in dead_letter_attributes("rid", None)][1:] == ["429", "Rate Exceeded."]


# -- EventInvokeConfig validation ------------------------------------------------------------------------------------
def test_event_invoke_config_body_rules():
    with pytest.raises(InvalidParameterValueException, match="at least one of error handling or destination"):
        _check_body({})
    with pytest.raises(ValidationException) as caught:
        _check_body({"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 59})
    assert caught.value.message.startswith("2 validation errors detected: Value '3' at 'maximumRetryAttempts'")
    _check_body({"DestinationConfig": {"OnSuccess": {}}})
    _check_body({"DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:q"}}})
    assert _java_destination_config({"OnSuccess": {"Destination": "x"}}) == (
        "DestinationConfig(onSuccess=OnSuccess(destination=x), onFailure=null)"
    )
    assert _java_destination_config({"OnFailure": {}}) == (
        "DestinationConfig(onSuccess=null, onFailure=OnFailure(destination=null))"
    )


# -- SigV4 -----------------------------------------------------------------------------------------------------------

