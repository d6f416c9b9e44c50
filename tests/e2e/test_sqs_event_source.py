"""SQS event source mappings end to end: a real Lamina polling moto's SQS server, messages sent with boto3.

What the function got is read back from its log (`lamina logs`): the handler prints each event on one line. The
event shape is AWS's (shared/reference/aws-recorded/test_lambda_integration_sqs.snapshot.json).
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from conftest import RunningServer, client_for, start_server
from tests.support.polling import wait_until

HANDLER = '''
import json

def handler(event, context):
    print("EVENT " + json.dumps(event))
    failures = []
    for record in event["Records"]:
        if record["body"].startswith("fail"):
            raise RuntimeError("asked to fail")
        if record["body"].startswith("bad"):
            failures.append({"itemIdentifier": record["messageId"]})
        if record["body"].startswith("invalid"):
            failures.append({"foo": "notvalid"})
    return {"batchItemFailures": failures}
'''
RECORD_KEYS = ["messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody", "eventSource",
               "eventSourceARN", "awsRegion"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("sqs-esm") / "data", "--aws-endpoint-url", moto_endpoint)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def lambda_client(server: RunningServer):
    return client_for(server.endpoint)


@pytest.fixture(scope="module")
def sqs(moto_endpoint: str):
    return client_for(moto_endpoint, "sqs")


@pytest.fixture
def function(lambda_client) -> Iterator[str]:
    from conftest import PY_RUNTIME, ROLE, zip_files

    name = f"sqs-fn-{uuid.uuid4().hex[:10]}"
    lambda_client.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                                  Code={"ZipFile": zip_files({"app.py": HANDLER})})
    yield name
    lambda_client.delete_function(FunctionName=name)


def make_queue(sqs, *, fifo: bool = False, visibility: int = 30, dlq_arn: str | None = None) -> tuple[str, str]:
    name = f"q-{uuid.uuid4().hex[:10]}" + (".fifo" if fifo else "")
    attributes = {"VisibilityTimeout": str(visibility)}
    if fifo:
        attributes["FifoQueue"] = "true"
    if dlq_arn:
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})
    url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def map_queue(lambda_client, function: str, queue_arn: str, **settings: object) -> str:
    mapping = lambda_client.create_event_source_mapping(FunctionName=function, EventSourceArn=queue_arn, **settings)
    wait_for_state(lambda_client, mapping["UUID"], "Enabled")
    return mapping["UUID"]


def wait_for_state(lambda_client, mapping_uuid: str, state: str) -> None:
    wait_until(lambda: lambda_client.get_event_source_mapping(UUID=mapping_uuid)["State"] == state,
               what=f"mapping {state}")


def events(server: RunningServer, function: str) -> list[dict]:
    """Every event the function printed so far, from its log."""
    printed = subprocess.run([sys.executable, "-m", "lamina.cli", "logs", function, "--data-dir", str(server.data_dir)],
                             capture_output=True, text=True, timeout=30)
    assert printed.returncode == 0, printed.stderr
    return [json.loads(line.split("EVENT ", 1)[1]) for line in printed.stdout.splitlines() if "EVENT {" in line]


def records(server: RunningServer, function: str) -> list[dict]:
    return [record for event in events(server, function) for record in event["Records"]]


def bodies(server: RunningServer, function: str) -> list[str]:
    return [record["body"] for record in records(server, function)]


def wait_for_bodies(server: RunningServer, function: str, wanted: list[str], timeout: float = 30) -> list[dict]:
    def seen() -> list[dict]:
        got = records(server, function)
        return got if all(body in [record["body"] for record in got] for body in wanted) else []

    return wait_until(seen, timeout=timeout, interval=0.5, what=f"records {wanted} delivered")


def messages_left(sqs, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_messages_reach_the_function_in_aws_shape_and_are_deleted(server, lambda_client, sqs, function) -> None:
    url, arn = make_queue(sqs)
    map_queue(lambda_client, function, arn, BatchSize=10, MaximumBatchingWindowInSeconds=1)
    sqs.send_message(QueueUrl=url, MessageBody='{"foo": "bar"}')
    sent = sqs.send_message(QueueUrl=url, MessageBody="with attributes", MessageAttributes={
        "Author": {"DataType": "String", "StringValue": "John Grisham"},
        "WeeksOn": {"DataType": "Number", "StringValue": "6"},
        "Blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
    })
    got = {record["body"]: record for record in wait_for_bodies(server, function, ['{"foo": "bar"}', "with attributes"])}

    plain = got['{"foo": "bar"}']
    assert list(plain) == RECORD_KEYS
    assert list(plain["attributes"]) == ["ApproximateReceiveCount", "SentTimestamp", "SenderId",
                                         "ApproximateFirstReceiveTimestamp"]
    assert plain["attributes"]["ApproximateReceiveCount"] == "1"
    assert plain["messageAttributes"] == {}
    assert plain["md5OfBody"] == hashlib.md5(b'{"foo": "bar"}').hexdigest()
    assert (plain["eventSource"], plain["eventSourceARN"], plain["awsRegion"]) == ("aws:sqs", arn, "us-east-1")

    rich = got["with attributes"]
    assert rich["messageId"] == sent["MessageId"]
    assert rich["md5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert rich["messageAttributes"] == {
        "Author": {"stringValue": "John Grisham", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "WeeksOn": {"stringValue": "6", "stringListValues": [], "binaryListValues": [], "dataType": "Number"},
        "Blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    wait_until(lambda: messages_left(sqs, url) == 0, what="messages deleted after success")
    time.sleep(1.5)
    assert sorted(bodies(server, function)) == sorted(['{"foo": "bar"}', "with attributes"])  # each exactly once


def test_fifo_records_carry_the_group_and_sequence(server, lambda_client, sqs, function) -> None:
    url, arn = make_queue(sqs, fifo=True)
    map_queue(lambda_client, function, arn, BatchSize=10)
    for index in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"fifo-{index}", MessageGroupId="g1",
                         MessageDeduplicationId=f"dedup-{index}")
    got = wait_for_bodies(server, function, ["fifo-0", "fifo-1", "fifo-2"])
    assert [record["body"] for record in got] == ["fifo-0", "fifo-1", "fifo-2"]
    attributes = got[0]["attributes"]
    assert attributes["MessageGroupId"] == "g1"
    assert attributes["MessageDeduplicationId"] == "dedup-0"
    assert attributes["SequenceNumber"]
    assert set(attributes) == {"ApproximateReceiveCount", "SentTimestamp", "SequenceNumber", "MessageGroupId",
                               "SenderId", "MessageDeduplicationId", "ApproximateFirstReceiveTimestamp"}
    wait_until(lambda: messages_left(sqs, url) == 0, what="messages deleted after success")


def test_a_failing_function_leaves_the_message_to_come_back_and_reach_the_dlq(
    server, lambda_client, sqs, function
) -> None:
    dlq_url, dlq_arn = make_queue(sqs)
    url, arn = make_queue(sqs, visibility=2, dlq_arn=dlq_arn)
    mapping = map_queue(lambda_client, function, arn, BatchSize=1)
    sqs.send_message(QueueUrl=url, MessageBody="fail please")

    def received_twice() -> list[dict]:
        got = [record for record in records(server, function) if record["body"] == "fail please"]
        return got if len(got) >= 2 else []

    got = wait_until(received_twice, timeout=30, interval=0.5, what="the failed message received again")
    assert [record["attributes"]["ApproximateReceiveCount"] for record in got[:2]] == ["1", "2"]
    assert got[0]["messageId"] == got[1]["messageId"]

    def in_dlq() -> list[dict]:
        return sqs.receive_message(QueueUrl=dlq_url, WaitTimeSeconds=1).get("Messages", [])

    moved = wait_until(in_dlq, timeout=30, what="the message moved to the dead-letter queue")
    assert moved[0]["Body"] == "fail please"
    lambda_client.delete_event_source_mapping(UUID=mapping)


def test_report_batch_item_failures_deletes_only_the_successful_ones(server, lambda_client, sqs, function) -> None:
    url, arn = make_queue(sqs, visibility=2)
    mapping = map_queue(lambda_client, function, arn, BatchSize=10, MaximumBatchingWindowInSeconds=1,
                        FunctionResponseTypes=["ReportBatchItemFailures"])
    sqs.send_message_batch(QueueUrl=url, Entries=[
        {"Id": "1", "MessageBody": "good-1"}, {"Id": "2", "MessageBody": "bad-1"}, {"Id": "3", "MessageBody": "good-2"},
    ])

    def bad_seen_again() -> bool:
        return bodies(server, function).count("bad-1") >= 2

    wait_until(bad_seen_again, timeout=30, interval=0.5, what="the reported failure delivered again")
    delivered = bodies(server, function)
    assert delivered.count("good-1") == 1 and delivered.count("good-2") == 1
    lambda_client.delete_event_source_mapping(UUID=mapping)
    wait_until(lambda: messages_left(sqs, url) == 1, timeout=15, what="only the failed message left")


def test_an_invalid_batch_item_failures_answer_fails_the_whole_batch(server, lambda_client, sqs, function) -> None:
    url, arn = make_queue(sqs, visibility=2)
    mapping = map_queue(lambda_client, function, arn, BatchSize=1, FunctionResponseTypes=["ReportBatchItemFailures"])
    sqs.send_message(QueueUrl=url, MessageBody="invalid answer")
    wait_until(lambda: bodies(server, function).count("invalid answer") >= 2, timeout=30, interval=0.5,
               what="the batch delivered again")
    lambda_client.delete_event_source_mapping(UUID=mapping)
    assert messages_left(sqs, url) == 1


def test_disabling_the_mapping_stops_delivery_and_enabling_resumes_it(server, lambda_client, sqs, function) -> None:
    url, arn = make_queue(sqs)
    mapping = map_queue(lambda_client, function, arn, BatchSize=1)
    sqs.send_message(QueueUrl=url, MessageBody="before")
    wait_for_bodies(server, function, ["before"])

    lambda_client.update_event_source_mapping(UUID=mapping, Enabled=False)
    wait_for_state(lambda_client, mapping, "Disabled")
    time.sleep(2.0)  # "within a few seconds": the long poll in flight is abandoned
    sqs.send_message(QueueUrl=url, MessageBody="while disabled")
    time.sleep(4.0)  # the point: nothing is delivered meanwhile
    assert "while disabled" not in bodies(server, function)
    assert messages_left(sqs, url) == 1

    lambda_client.update_event_source_mapping(UUID=mapping, Enabled=True)
    wait_for_state(lambda_client, mapping, "Enabled")
    wait_for_bodies(server, function, ["while disabled"])
    wait_until(lambda: messages_left(sqs, url) == 0, what="delivered after re-enabling")
    lambda_client.delete_event_source_mapping(UUID=mapping)


def test_a_queue_that_does_not_exist_is_logged_as_a_problem_and_retried(server, lambda_client, function) -> None:
    """AWS shows no LastProcessingResult on SQS mappings (recorded), so the problem goes to the server's log."""
    missing = f"arn:aws:sqs:us-east-1:123456789012:missing-{uuid.uuid4().hex[:8]}"
    mapping = map_queue(lambda_client, function, missing)
    wanted = f"event source mapping {mapping}: PROBLEM: Error occurred while ReceiveMessage. SQS Error Code: "
    wait_until(lambda: wanted in server.stderr_path.read_text(), what="the problem logged")
    assert "LastProcessingResult" not in lambda_client.get_event_source_mapping(UUID=mapping)
    lambda_client.delete_event_source_mapping(UUID=mapping)


def test_an_enabled_mapping_polls_again_after_a_restart(tmp_path: Path, moto_endpoint: str, sqs) -> None:
    from conftest import PY_RUNTIME, ROLE, zip_files

    data_dir = tmp_path / "data"
    first = start_server(data_dir, "--aws-endpoint-url", moto_endpoint)
    try:
        client = client_for(first.endpoint)
        name = f"sqs-fn-{uuid.uuid4().hex[:10]}"
        client.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                               Code={"ZipFile": zip_files({"app.py": HANDLER})})
        url, arn = make_queue(sqs)
        map_queue(client, name, arn, BatchSize=1)
    finally:
        assert first.stop() == 0
    sqs.send_message(QueueUrl=url, MessageBody="after the restart")
    second = start_server(data_dir, "--aws-endpoint-url", moto_endpoint)
    try:
        wait_for_bodies(second, name, ["after the restart"])
        wait_until(lambda: messages_left(sqs, url) == 0, what="deleted after success")
    finally:
        assert second.stop() == 0
