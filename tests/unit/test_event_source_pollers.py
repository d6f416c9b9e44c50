"""The event source pollers' parts without servers: AWS's rules for a ReportBatchItemFailures answer, the SQS event's
shape, gathering a batch and choosing what to delete, the manager starting and stopping pollers as mappings change,
and the daemon pool their boto3 calls run on."""
from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest

from lamina.eventsources.batch_response import read_batch_item_failures
from lamina.eventsources.manager import PollerManager
from lamina.eventsources.sqs import SqsPoller
from lamina.eventsources.sqs_event import event_payload, message_attribute
from lamina.executors import DaemonThreadPool
from lamina.model.event_source_mapping import EventSourceMapping, SourceKind, State
from lamina.model.keys import FunctionKey
from tests.support.polling import async_wait_until

IDS = {"a", "b", "c"}
ARN = "arn:aws:sqs:us-east-1:000000000000:queue"


@pytest.mark.parametrize("answer", [b"", b"null", b"{}", b'{"batchItemFailures": []}', b'{"batchItemFailures": null}',
                                    b'"a string"'])
def test_answers_that_mean_the_whole_batch_succeeded(answer: bytes) -> None:
    verdict = read_batch_item_failures(answer, IDS)
    assert verdict.failed == frozenset()


@pytest.mark.parametrize("answer", [
    b"not json", b'{"batchItemFailures": [{"foo": "notvalid"}]}', b'{"batchItemFailures": [{"itemIdentifier": ""}]}',
    b'{"batchItemFailures": [{"itemIdentifier": null}]}', b'{"batchItemFailures": [{"itemIdentifier": "zzz"}]}',
    b'{"batchItemFailures": "a"}', b'{"batchItemFailures": ["a"]}',
])
def test_answers_that_fail_the_whole_batch(answer: bytes) -> None:
    assert read_batch_item_failures(answer, IDS).whole_batch_failed


def test_reported_failures_are_the_ones_kept() -> None:
    answer = json.dumps({"batchItemFailures": [{"itemIdentifier": "b"}, {"itemIdentifier": "c"}]}).encode()
    assert read_batch_item_failures(answer, IDS).failed == {"b", "c"}


def message(message_id: str, body: str = "hi", group: str | None = None, **extra: Any) -> dict[str, Any]:
    attributes = {"SenderId": "AIDA", "ApproximateFirstReceiveTimestamp": "2", "SentTimestamp": "1",
                  "ApproximateReceiveCount": "1"}
    if group is not None:
        attributes |= {"MessageGroupId": group, "SequenceNumber": "18", "MessageDeduplicationId": "d"}
    return {"MessageId": message_id, "ReceiptHandle": f"rh-{message_id}", "MD5OfBody": "md5", "Body": body,
            "Attributes": attributes, **extra}


def test_the_event_has_awss_members_in_awss_order() -> None:
    event = json.loads(event_payload([message("m1"), message("m2", group="g")], ARN, "us-east-1"))
    first, second = event["Records"]
    assert list(first) == ["messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                           "eventSource", "eventSourceARN", "awsRegion"]
    assert list(first["attributes"]) == ["ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                         "ApproximateFirstReceiveTimestamp"]
    assert list(second["attributes"]) == ["ApproximateReceiveCount", "SentTimestamp", "SequenceNumber",
                                          "MessageGroupId", "SenderId", "MessageDeduplicationId",
                                          "ApproximateFirstReceiveTimestamp"]
    assert (first["eventSource"], first["eventSourceARN"], first["awsRegion"]) == ("aws:sqs", ARN, "us-east-1")


def test_message_attributes_take_lambdas_shape_with_binary_as_base64() -> None:
    assert message_attribute({"DataType": "Binary", "BinaryValue": b"\x00\x01", "BinaryListValues": [b"\x02"]}) == {
        "binaryValue": "AAE=", "stringListValues": [], "binaryListValues": ["Ag=="], "dataType": "Binary"}
    assert message_attribute({"DataType": "String", "StringValue": "x"}) == {
        "stringValue": "x", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    with_attributes = message("m1", MessageAttributes={"A": {"DataType": "Number", "StringValue": "6"}},
                              MD5OfMessageAttributes="abc")
    record = json.loads(event_payload([with_attributes], ARN, "us-east-1"))["Records"][0]
    assert list(record)[4:6] == ["messageAttributes", "md5OfMessageAttributes"]


def mapping(uuid: str = "u1", *, state: State = State.ENABLED, enabled: bool = True, batch_size: int = 10,
            window: int = 0, response_types: tuple[str, ...] = ()) -> EventSourceMapping:
    return EventSourceMapping(
        uuid=uuid, function=FunctionKey("000000000000", "us-east-1", "fn"), qualifier=None, kind=SourceKind.SQS,
        state=state, state_transition_reason="USER_INITIATED", last_modified=0.0, enabled=enabled,
        batch_size=batch_size, maximum_batching_window_in_seconds=window, event_source_arn=ARN,
        function_response_types=response_types,
    )


class FakeQueue:
    arn, region = ARN, "us-east-1"

    def __init__(self, waves: list[list[dict[str, Any]]]) -> None:
        self.waves = waves
        self.calls: list[tuple[int, int]] = []

    def receive(self, max_messages: int, wait_seconds: int) -> list[dict[str, Any]]:
        self.calls.append((max_messages, wait_seconds))
        return self.waves.pop(0) if self.waves else []


def poller(queue: Any, settings: EventSourceMapping, executor: Any) -> SqsPoller:
    return SqsPoller(settings, queue, None, None, executor, asyncio.Event())  # type: ignore[arg-type]


def test_a_batching_window_keeps_receiving_until_the_batch_is_full() -> None:
    pool = DaemonThreadPool(2, "test")
    queue = FakeQueue([[message("1"), message("2")], [message("3")], [message("4")]])

    async def scenario() -> list[dict[str, Any]]:
        return await poller(queue, mapping(batch_size=4, window=5), pool)._gather()

    batch = asyncio.run(scenario())
    assert [item["MessageId"] for item in batch] == ["1", "2", "3", "4"]
    assert queue.calls[0] == (4, 20) and [call[0] for call in queue.calls] == [4, 2, 1]
    pool.shutdown()


def test_without_a_window_one_receive_makes_the_batch() -> None:
    pool = DaemonThreadPool(2, "test")
    queue = FakeQueue([[message("1")], [message("2")]])

    async def scenario() -> list[dict[str, Any]]:
        return await poller(queue, mapping(batch_size=10), pool)._gather()

    assert [item["MessageId"] for item in asyncio.run(scenario())] == ["1"]
    assert queue.calls == [(10, 20)]
    pool.shutdown()


def test_reported_failures_stay_and_a_fifo_group_stops_at_its_first_failure() -> None:
    settings = mapping(response_types=("ReportBatchItemFailures",))
    batch = [message("1", group="g"), message("2", group="g"), message("3", group="g"), message("4", group="h")]
    answer = json.dumps({"batchItemFailures": [{"itemIdentifier": "2"}]}).encode()
    done = poller(None, settings, None)._succeeded(batch, answer)
    assert [item["MessageId"] for item in done] == ["1", "4"]
    assert poller(None, mapping(), None)._succeeded(batch, answer) == batch  # not asked for: all succeeded
    assert poller(None, settings, None)._succeeded(batch, b"{bad") == []


class FakeMappings:
    def __init__(self, *mappings: EventSourceMapping) -> None:
        self.by_uuid = {item.uuid: item for item in mappings}
        self.listeners: list[Any] = []

    def on_change(self, listener: Any) -> None:
        self.listeners.append(listener)

    def mappings(self) -> list[EventSourceMapping]:
        return list(self.by_uuid.values())

    def mapping(self, uuid: str) -> EventSourceMapping | None:
        return self.by_uuid.get(uuid)

    def change(self, uuid: str, changed: EventSourceMapping | None) -> None:
        """As the service does: from another thread, under its lock."""
        if changed is None:
            del self.by_uuid[uuid]
        else:
            self.by_uuid[uuid] = changed
        thread = threading.Thread(target=lambda: [listener(uuid, changed) for listener in self.listeners])
        thread.start()
        thread.join()


def test_the_manager_polls_enabled_mappings_and_stops_them_when_disabled_or_deleted() -> None:
    started: list[tuple[str, int]] = []
    ended: list[str] = []

    def factory(settings: EventSourceMapping, stop: asyncio.Event):
        async def run() -> None:
            started.append((settings.uuid, settings.batch_size))
            await stop.wait()
            ended.append(settings.uuid)
        return run

    mappings = FakeMappings(mapping("on"), mapping("off", state=State.DISABLED, enabled=False))

    async def scenario() -> None:
        manager = PollerManager(mappings, {SourceKind.SQS: factory})  # type: ignore[arg-type]
        manager.start()
        await async_wait_until(lambda: started == [("on", 10)], what="the enabled mapping polled")
        mappings.change("off", mapping("off", state=State.ENABLED))
        await async_wait_until(lambda: sorted(manager.polled()) == ["off", "on"], what="the enabled one polled")
        mappings.change("on", mapping("on", state=State.UPDATING, batch_size=5))
        await asyncio.sleep(0.05)
        assert ("on", 5) not in started and "on" not in ended  # polled with its settings until it settles
        mappings.change("on", mapping("on", batch_size=5))
        await async_wait_until(lambda: ("on", 5) in started and ended == ["on"], what="restarted with new settings")
        mappings.change("on", mapping("on", state=State.DISABLING, enabled=False, batch_size=5))
        mappings.change("off", None)
        await async_wait_until(lambda: manager.polled() == [] and sorted(ended) == ["off", "on", "on"],
                               what="both stopped")
        await manager.stop()

    asyncio.run(scenario())


def test_daemon_pool_runs_calls_and_does_not_wait_for_a_stuck_one_on_shutdown() -> None:
    pool = DaemonThreadPool(2, "test")
    assert pool.submit(lambda x: x * 2, 21).result(timeout=5) == 42
    failing = pool.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        failing.result(timeout=5)
    release, running = threading.Event(), threading.Event()
    stuck = pool.submit(lambda: running.set() or release.wait())
    assert running.wait(5)
    started = time.monotonic()
    pool.shutdown(wait=False, cancel_futures=True)
    assert time.monotonic() - started < 1
    assert all(thread.daemon for thread in pool._threads)
    with pytest.raises(RuntimeError):
        pool.submit(print)
    release.set()
    assert stuck.result(timeout=5) is True
