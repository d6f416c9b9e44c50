"""Asynchronous invocation end to end: durable acceptance, retries, destinations, DLQs, EventInvokeConfig, kill -9.

Functions report each attempt to a small HTTP collector the test runs on 127.0.0.1 (each server allows it with
`--allow-host-port`, since functions reach nothing else on the host), so the test sees what ran, when, and with
which request id. SQS, SNS and EventBridge are moto's
standalone server, which the Lamina servers here are configured with (`--aws-endpoint-url`).
"""
from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from conftest import PY_RUNTIME, ROLE, RunningServer, client_for, start_server, zip_files
from tests.support.client_errors import call_error
from tests.support.polling import wait_until

RETRY_BASE = 0.5
#: Reports the attempt to the collector, then fails or answers as the event asks.
HANDLER = """
import json, os, time, urllib.request

def handler(event, context):
    report = {"request_id": context.aws_request_id, "function": context.function_name, "event": event,
              "at": time.time()}
    request = urllib.request.Request(os.environ["COLLECTOR"], data=json.dumps(report).encode(), method="POST")
    urllib.request.urlopen(request, timeout=10).read()
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("fail"):
        raise Exception("intentional failure")
    return {"echo": event}
"""


class Collector:
    """What the functions reported, in arrival order."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server API
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with collector._lock:
                    collector.reports.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/"
        #: The `lamina serve` arguments that let functions reach the collector.
        self.allowed = ("--allow-host-port", f"127.0.0.1:{self._server.server_address[1]}")
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def matching(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        with self._lock:
            return [report for report in self.reports if predicate(report)]

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 20) -> list[dict]:
        def enough() -> list[dict[str, Any]] | None:
            found = self.matching(predicate)
            return found if len(found) >= count else None

        return wait_until(enough, timeout, what=f"{count} matching reports")

    def close(self) -> None:
        self._server.shutdown()


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    running = Collector()
    yield running
    running.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str, collector: Collector) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("lamina-async") / "data",
        "--aws-endpoint-url", moto_endpoint, "--async-retry-base-seconds", str(RETRY_BASE), *collector.allowed,
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server: RunningServer):
    return client_for(server.endpoint)


@pytest.fixture(scope="module")
def raw_client(server: RunningServer):
    return client_for(server.endpoint, parameter_validation=False)


@pytest.fixture(scope="module")
def sqs(moto_endpoint: str):
    return client_for(moto_endpoint, "sqs")


def new_function(client, collector: Collector, **settings: Any) -> str:
    name = f"async-{uuid.uuid4().hex[:10]}"
    client.create_function(
        FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
        Code={"ZipFile": zip_files({"app.py": HANDLER})}, Environment={"Variables": {"COLLECTOR": collector.url}},
        Timeout=10, **settings,
    )
    return name


def new_queue(sqs) -> tuple[str, str]:
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:10]}")["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def receive(sqs, url: str, count: int = 1, timeout: float = 20) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []

    def poll() -> bool:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        messages.extend(answer.get("Messages", []))
        return len(messages) >= count

    wait_until(poll, timeout)
    return messages


def send_event(client, name: str, event: dict[str, Any], **kwargs: Any) -> str:
    response = client.invoke(FunctionName=name, InvocationType="Event", Payload=json.dumps(event), **kwargs)
    assert response["StatusCode"] == 202
    assert response["Payload"].read() == b""
    return response["ResponseMetadata"]["RequestId"]


# -- acceptance ----------------------------------------------------------------------------------------------------
def test_event_invoke_is_acknowledged_then_runs_with_the_same_request_id(client, collector):
    name = new_function(client, collector)
    marker = uuid.uuid4().hex
    request_id = send_event(client, name, {"marker": marker})
    [report] = collector.wait_for(lambda r: r["event"].get("marker") == marker)
    assert report["request_id"] == request_id

    legacy = client.invoke_async(FunctionName=name, InvokeArgs=json.dumps({"marker": marker + "-legacy"}))
    assert legacy["Status"] == 202
    [report] = collector.wait_for(lambda r: r["event"].get("marker") == marker + "-legacy")
    assert report["request_id"] == legacy["ResponseMetadata"]["RequestId"]


def test_event_payload_limit_is_1_mb(client, collector):
    name = new_function(client, collector)
    exactly = json.dumps({"pad": "x" * (1048576 - 11)})
    assert len(exactly) == 1048576
    send_event(client, name, json.loads(exactly))
    status, code, message = call_error(
        lambda: client.invoke(FunctionName=name, InvocationType="Event", Payload=exactly + " ")
    )
    assert (status, code) == (413, "RequestTooLargeException")
    assert message == "Request must be smaller than 1048576 bytes for the InvokeFunction operation"
    status, code, _ = call_error(lambda: client.invoke(FunctionName=name, InvocationType="Event", Payload=b"{not json"))
    assert (status, code) == (400, "InvalidRequestContentException")


# -- retries and destinations --------------------------------------------------------------------------------------
def test_function_errors_are_retried_twice_with_back_off_then_go_to_on_failure(client, collector, sqs):
    name = new_function(client, collector)
    url, arn = new_queue(sqs)
    client.put_function_event_invoke_config(FunctionName=name, DestinationConfig={"OnFailure": {"Destination": arn}})
    request_id = send_event(client, name, {"fail": True, "n": 1})
    attempts = collector.wait_for(lambda r: r["function"] == name, count=3)
    assert {attempt["request_id"] for attempt in attempts} == {request_id}
    gaps = [later["at"] - earlier["at"] for earlier, later in zip(attempts, attempts[1:])]
    assert gaps[0] >= RETRY_BASE * 0.9 and gaps[1] >= 2 * RETRY_BASE * 0.9, gaps
    [message] = receive(sqs, url)
    record = json.loads(message["Body"])
    assert set(record) == {"version", "timestamp", "requestContext", "requestPayload", "responseContext", "responsePayload"}
    assert record["version"] == "1.0"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", record["timestamp"])
    assert record["requestContext"] == {
        "requestId": request_id,
        "functionArn": f"arn:aws:lambda:us-east-1:000000000000:function:{name}:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"] == {"fail": True, "n": 1}
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorMessage"] == "intentional failure"
    assert record["responsePayload"]["requestId"] == request_id
    time.sleep(3 * RETRY_BASE)
    assert len(collector.matching(lambda r: r["function"] == name)) == 3, "no attempt after the last retry"


def test_on_success_record_and_a_lamina_function_as_destination(client, collector, sqs):
    name = new_function(client, collector)
    receiver = new_function(client, collector)
    url, arn = new_queue(sqs)
    receiver_arn = client.get_function(FunctionName=receiver)["Configuration"]["FunctionArn"]
    client.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": arn}, "OnFailure": {"Destination": receiver_arn}},
    )
    request_id = send_event(client, name, {"ok": 1})
    record = json.loads(receive(sqs, url)[0]["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 1
    assert record["requestContext"]["requestId"] == request_id
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"echo": {"ok": 1}}

    failed_id = send_event(client, name, {"fail": True})
    [delivered] = collector.wait_for(lambda r: r["function"] == receiver)
    assert delivered["request_id"] != failed_id
    assert delivered["event"]["requestContext"]["requestId"] == failed_id
    assert delivered["event"]["requestContext"]["condition"] == "RetriesExhausted"
    assert delivered["event"]["requestContext"]["approximateInvokeCount"] == 1


def test_sns_and_eventbridge_destinations(client, collector, sqs, moto_endpoint):
    sns, events = client_for(moto_endpoint, "sns"), client_for(moto_endpoint, "events")
    url, queue_arn = new_queue(sqs)
    topic = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:8]}")["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    bus_name = f"b-{uuid.uuid4().hex[:8]}"
    bus = events.create_event_bus(Name=bus_name)["EventBusArn"]
    events.put_rule(Name="all", EventBusName=bus_name, EventPattern=json.dumps({"source": ["lambda"]}))
    events.put_targets(Rule="all", EventBusName=bus_name, Targets=[{"Id": "q", "Arn": queue_arn}])
    name = new_function(client, collector)
    client.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0,
        DestinationConfig={"OnSuccess": {"Destination": topic}, "OnFailure": {"Destination": bus}},
    )
    send_event(client, name, {"ok": 2})
    failed_id = send_event(client, name, {"fail": True})
    bodies = [json.loads(message["Body"]) for message in receive(sqs, url, count=2)]
    [via_sns] = [body for body in bodies if "requestContext" in body]
    assert via_sns["requestContext"]["condition"] == "Success"
    assert via_sns["responsePayload"] == {"echo": {"ok": 2}}
    [via_bus] = [body for body in bodies if "detail" in body]
    assert via_bus["source"] == "lambda"
    assert via_bus["detail-type"] == "Lambda Function Invocation Result - Failure"
    assert via_bus["detail"]["requestContext"]["requestId"] == failed_id
    assert via_bus["detail"]["responseContext"]["functionError"] == "Unhandled"


def test_dead_letter_queue_gets_the_original_event_with_error_attributes(client, collector, sqs):
    url, arn = new_queue(sqs)
    name = new_function(client, collector, DeadLetterConfig={"TargetArn": arn})
    assert client.get_function_configuration(FunctionName=name)["DeadLetterConfig"] == {"TargetArn": arn}
    client.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    request_id = send_event(client, name, {"fail": True, "keep": "me"})
    [message] = receive(sqs, url)
    assert json.loads(message["Body"]) == {"fail": True, "keep": "me"}
    assert message["MessageAttributes"] == {
        "RequestID": {"StringValue": request_id, "DataType": "String"},
        "ErrorCode": {"StringValue": "200", "DataType": "Number"},
        "ErrorMessage": {"StringValue": "intentional failure", "DataType": "String"},
    }
    kept = client.update_function_configuration(FunctionName=name, DeadLetterConfig={})
    assert kept["DeadLetterConfig"] == {"TargetArn": arn}
    client.get_waiter("function_updated_v2").wait(FunctionName=name)
    removed = client.update_function_configuration(FunctionName=name, DeadLetterConfig={"TargetArn": ""})
    assert "DeadLetterConfig" not in removed


def test_throttles_are_not_attempts_and_reserved_zero_fails_at_once(client, collector, sqs):
    name = new_function(client, collector)
    url, arn = new_queue(sqs)
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    client.put_function_event_invoke_config(
        FunctionName=name, MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": arn}}
    )
    # A synchronous invoke holds the only slot, so deliveries meanwhile are throttled (429), again and again.
    holder = threading.Thread(
        target=lambda: client.invoke(FunctionName=name, Payload=json.dumps({"sleep": 1.0, "holder": True}))
    )
    holder.start()
    collector.wait_for(lambda r: r["function"] == name and r["event"].get("holder"))
    ids = {send_event(client, name, {"sleep": 0.2, "i": i}) for i in range(3)}
    reports = collector.wait_for(lambda r: r["function"] == name and "i" in r["event"], count=3)
    holder.join()
    assert sorted(report["request_id"] for report in reports) == sorted(ids), "each ran exactly once"
    starts = sorted(report["at"] for report in reports)
    assert all(later - earlier >= 0.15 for earlier, later in zip(starts, starts[1:])), "one at a time"
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages") is None, "no throttle was an attempt"

    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    request_id = send_event(client, name, {"never": "runs"})
    record = json.loads(receive(sqs, url)[0]["Body"])
    assert record["requestContext"]["requestId"] == request_id
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert not collector.matching(lambda r: r["event"].get("never"))


def test_queue_depth_and_oldest_age_are_visible(server, client, collector):
    name = new_function(client, collector)
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    for i in range(3):
        send_event(client, name, {"sleep": 1.5, "i": i})
    time.sleep(0.5)
    connection = http.client.HTTPConnection(server.endpoint.removeprefix("http://"))
    connection.request("GET", "/lamina/async-queue")
    queues = json.loads(connection.getresponse().read())["Queues"]
    [entry] = [queue for queue in queues if queue["FunctionName"] == name]
    assert entry["Depth"] == 3 and entry["Qualifier"] is None
    assert entry["OldestEventAgeSeconds"] >= 0.4
    printed = subprocess.run(
        [sys.executable, "-m", "lamina.cli", "queue", "--data-dir", str(server.data_dir), "--json"],
        capture_output=True, text=True, check=True,
    ).stdout
    [entry] = [queue for queue in json.loads(printed)["Queues"] if queue["FunctionName"] == name]
    assert entry["Depth"] >= 2


# -- EventInvokeConfig -----------------------------------------------------------------------------------------------
def test_event_invoke_config_lifecycle_and_errors(client, raw_client, collector):
    name, other = new_function(client, collector), new_function(client, collector)
    arn = client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    other_arn = arn.replace(name, other)
    version = client.publish_version(FunctionName=name)["Version"]
    alias_arn = client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)["AliasArn"]
    missing = arn.replace(name, "doesnotexist")

    put = client.put_function_event_invoke_config(FunctionName=name, MaximumEventAgeInSeconds=60)
    assert put["FunctionArn"] == f"{arn}:$LATEST"
    assert put["MaximumEventAgeInSeconds"] == 60 and "MaximumRetryAttempts" not in put
    assert put["DestinationConfig"] == {"OnSuccess": {}, "OnFailure": {}}
    updated = client.update_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=1)
    assert (updated["MaximumEventAgeInSeconds"], updated["MaximumRetryAttempts"]) == (60, 1)
    replaced = client.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=0)
    assert "MaximumEventAgeInSeconds" not in replaced
    assert client.get_function_event_invoke_config(FunctionName=name)["MaximumRetryAttempts"] == 0
    assert client.put_function_event_invoke_config(FunctionName=f"{name}:{version}", MaximumRetryAttempts=1)[
        "FunctionArn"
    ] == f"{arn}:{version}"
    assert client.put_function_event_invoke_config(FunctionName=alias_arn, MaximumRetryAttempts=1)[
        "FunctionArn"
    ] == alias_arn
    success = client.put_function_event_invoke_config(
        FunctionName=name, Qualifier="$LATEST", DestinationConfig={"OnSuccess": {"Destination": other_arn}}
    )
    assert success["DestinationConfig"] == {"OnSuccess": {"Destination": other_arn}, "OnFailure": {}}

    listed = client.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"]
    assert [entry["FunctionArn"] for entry in listed] == [f"{arn}:$LATEST", f"{arn}:{version}", alias_arn]
    page = client.list_function_event_invoke_configs(FunctionName=name, MaxItems=2)
    assert len(page["FunctionEventInvokeConfigs"]) == 2
    rest = client.list_function_event_invoke_configs(FunctionName=name, Marker=page["NextMarker"])
    assert [entry["FunctionArn"] for entry in rest["FunctionEventInvokeConfigs"]] == [alias_arn]

    not_found = "The function doesn't exist."
    assert call_error(lambda: client.put_function_event_invoke_config(FunctionName="doesnotexist", MaximumRetryAttempts=1)) == (
        404, "ResourceNotFoundException", not_found
    )
    assert call_error(lambda: client.put_function_event_invoke_config(FunctionName=name, Qualifier="nope", MaximumRetryAttempts=1)) == (
        404, "ResourceNotFoundException", not_found
    )
    assert call_error(lambda: client.put_function_event_invoke_config(FunctionName="doesnotexist")) == (
        400, "InvalidParameterValueException", "You must specify at least one of error handling or destination setting."
    )
    assert call_error(
        lambda: client.put_function_event_invoke_config(FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": arn}})
    ) == (400, "InvalidParameterValueException", "You can't specify the function as a destination for itself.")
    assert call_error(
        lambda: client.put_function_event_invoke_config(FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": missing}})
    ) == (400, "InvalidParameterValueException", f"The destination ARN {missing} is invalid.")
    iam = arn.replace(":lambda:", ":iam:")
    assert call_error(
        lambda: client.put_function_event_invoke_config(FunctionName=name, DestinationConfig={"OnSuccess": {"Destination": iam}})
    ) == (
        400, "InvalidParameterValueException",
        f"The provided destination config DestinationConfig(onSuccess=OnSuccess(destination={iam}), onFailure=null) is invalid.",
    )
    bad_pattern = arn.replace(":lambda:", ":_-/!lambda:")
    status, code, message = call_error(
        lambda: client.put_function_event_invoke_config(
            FunctionName=name, DestinationConfig={"OnFailure": {"Destination": bad_pattern}}
        )
    )
    assert (status, code) == (400, "ValidationException")
    assert message.startswith(f"1 validation error detected: Value '{bad_pattern}' at 'destinationConfig.onFailure.destination'")
    status, code, message = call_error(lambda: raw_client.put_function_event_invoke_config(FunctionName=name, MaximumRetryAttempts=3))
    assert (status, code) == (400, "ValidationException")
    assert "Member must have value less than or equal to 2" in message
    assert call_error(
        lambda: client.put_function_event_invoke_config(FunctionName=f"{name}:{version}", Qualifier="$LATEST", MaximumRetryAttempts=1)
    ) == (400, "InvalidParameterValueException", "The derived qualifier from the function name does not match the specified qualifier.")
    assert call_error(lambda: client.list_function_event_invoke_configs(FunctionName="doesnotexist")) == (
        404, "ResourceNotFoundException", not_found
    )
    assert call_error(lambda: client.update_function_event_invoke_config(FunctionName="doesnotexist", MaximumRetryAttempts=0)) == (
        404, "ResourceNotFoundException", not_found
    )

    for qualifier in ("$LATEST", version, "live"):
        client.delete_function_event_invoke_config(FunctionName=name, Qualifier=qualifier)
    assert client.list_function_event_invoke_configs(FunctionName=name)["FunctionEventInvokeConfigs"] == []
    no_config = f"The function {arn}:$LATEST doesn't have an EventInvokeConfig"
    assert call_error(lambda: client.delete_function_event_invoke_config(FunctionName=name)) == (
        404, "ResourceNotFoundException", no_config
    )
    assert call_error(lambda: client.get_function_event_invoke_config(FunctionName=name)) == (
        404, "ResourceNotFoundException", no_config
    )
    assert call_error(lambda: client.update_function_event_invoke_config(FunctionName=alias_arn, MaximumRetryAttempts=0)) == (
        404, "ResourceNotFoundException", f"The function {alias_arn} doesn't have an EventInvokeConfig"
    )
    assert call_error(lambda: client.get_function_event_invoke_config(FunctionName="doesnotexist")) == (
        404, "ResourceNotFoundException", f"The function {missing}:$LATEST doesn't have an EventInvokeConfig"
    )


def test_alias_events_use_the_alias_settings(client, collector, sqs):
    name = new_function(client, collector)
    version = client.publish_version(FunctionName=name)["Version"]
    alias_arn = client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)["AliasArn"]
    url, arn = new_queue(sqs)
    client.put_function_event_invoke_config(
        FunctionName=name, Qualifier="live", MaximumRetryAttempts=0, DestinationConfig={"OnSuccess": {"Destination": arn}}
    )
    request_id = send_event(client, name, {"via": "alias"}, Qualifier="live")
    record = json.loads(receive(sqs, url)[0]["Body"])
    assert record["requestContext"]["functionArn"] == alias_arn
    assert record["requestContext"]["requestId"] == request_id
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": version}


# -- event age and durability ----------------------------------------------------------------------------------------
def test_an_event_whose_retry_would_be_too_old_goes_to_on_failure_as_event_age_exceeded(
    tmp_path: Path, moto_endpoint, collector, sqs
):
    # With 61 s before the first retry, an event limited to 60 s cannot be retried.
    slow = start_server(tmp_path / "data", "--aws-endpoint-url", moto_endpoint, "--async-retry-base-seconds", "61",
                        *collector.allowed)
    try:
        client = client_for(slow.endpoint)
        name = new_function(client, collector)
        url, arn = new_queue(sqs)
        client.put_function_event_invoke_config(
            FunctionName=name, MaximumEventAgeInSeconds=60, DestinationConfig={"OnFailure": {"Destination": arn}}
        )
        request_id = send_event(client, name, {"fail": True})
        record = json.loads(receive(sqs, url)[0]["Body"])
        assert record["requestContext"]["condition"] == "EventAgeExceeded"
        assert record["requestContext"]["approximateInvokeCount"] == 1
        assert record["requestContext"]["requestId"] == request_id
        assert record["responseContext"]["functionError"] == "Unhandled"
    finally:
        slow.stop()


def test_kill_9_while_accepting_loses_no_acknowledged_event(tmp_path: Path, collector):
    data_dir = tmp_path / "data"
    first = start_server(data_dir, *collector.allowed)
    client = client_for(first.endpoint)
    name = new_function(client, collector)
    # Deliveries lag acceptance (one at a time, after a cold start), so the kill leaves a backlog on disk.
    client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    host = first.endpoint.removeprefix("http://")
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()

    def sender(worker: int) -> None:
        connection = http.client.HTTPConnection(host, timeout=10)
        sequence = 0
        while not stop.is_set():
            marker = f"{worker}-{sequence}"
            sequence += 1
            try:
                connection.request(
                    "POST", f"/2015-03-31/functions/{name}/invocations",
                    body=json.dumps({"marker": marker}), headers={"X-Amz-Invocation-Type": "Event"},
                )
                response = connection.getresponse()
                response.read()
            except (OSError, http.client.HTTPException):
                return  # the server is gone: this event was never acknowledged
            if response.status == 202:
                with lock:
                    acknowledged.append(marker)

    senders = [threading.Thread(target=sender, args=(worker,)) for worker in range(8)]
    for thread in senders:
        thread.start()
    wait_until(lambda: len(acknowledged) >= 300, timeout=20, interval=0.01)
    first.process.send_signal(signal.SIGKILL)
    first.process.wait(timeout=10)
    stop.set()
    for thread in senders:
        thread.join(timeout=15)
    assert len(acknowledged) >= 300

    def delivered() -> set[str]:
        return {report["event"].get("marker") for report in collector.matching(lambda r: r["function"] == name)}

    before_restart = delivered()
    assert set(acknowledged) - before_restart, "the kill left acknowledged events undelivered"
    second = start_server(data_dir, *collector.allowed)
    try:
        wait_until(lambda: set(acknowledged) <= delivered(), timeout=40, interval=0.2)
    finally:
        second.stop()
