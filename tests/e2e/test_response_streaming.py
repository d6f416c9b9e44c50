"""Response streaming end to end: InvokeWithResponseStream read by boto3 (and the JS SDK v3 when npm can install it),
RESPONSE_STREAM function URLs read by http.client, against Node functions streaming through Lamina's bootstrap
(`awslambda.streamifyResponse`, `awslambda.HttpResponseStream.from`) and a provided.al2023 bash bootstrap that
streams with raw chunked POSTs and trailers.

"Arrives as written" is checked by time: each streaming function writes, waits a second, writes again; the first
piece must reach the client well before the last one.
"""
from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import time
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from tests.e2e.conftest import ROLE, zip_files

PAUSE_S = 1.0
#: How much earlier than the end the first piece must arrive (the function waits PAUSE_S between its writes).
EARLY_S = 0.6
EVENTSTREAM = "application/vnd.amazon.eventstream"

NODE_STREAMING = """
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  console.log("streaming", event.mode ?? "plain");
  if (event.mode === "fail-first") {
    throw new Error("nothing sent");
  }
  if (event.mode === "big") {
    const piece = Buffer.alloc(64 * 1024, 97);
    for (let sent = 0; sent < event.bytes; sent += piece.length) {
      responseStream.write(piece);
    }
    responseStream.end();
    return;
  }
  responseStream.write("first,");
  await sleep(event.pause ?? 1000);
  if (event.mode === "fail") {
    throw new TypeError("boom");
  }
  if (event.mode === "hang") {
    await sleep(60000);
  }
  responseStream.write("second");
  responseStream.end();
});

// A function URL's handler: the path picks the case.
export const url = awslambda.streamifyResponse(async (event, responseStream) => {
  const path = event.rawPath;
  if (path === "/early") {
    throw new Error("nothing sent");
  }
  if (path === "/plain") {
    responseStream.setContentType("text/csv");
    responseStream.write("a,b\\n");
    responseStream.end();
    return;
  }
  if (path === "/buffered") {
    responseStream.write('{"statusCode":202,');
    responseStream.write('"body":"buffered"}');
    responseStream.end();
    return;
  }
  const stream = awslambda.HttpResponseStream.from(responseStream, {
    statusCode: 201,
    headers: { "Content-Type": "text/plain", "X-Custom": "yes" },
    cookies: ["a=1; Path=/", "b=2"],
  });
  stream.write("first,");
  await sleep(1000);
  if (path === "/fail-later") {
    throw new Error("after the head");
  }
  stream.write("second");
  stream.end();
});
"""

PYTHON_ECHO = "def handler(event, context):\n    return {'echo': event}\n"

BASH_BOOTSTRAP = r"""#!/usr/bin/env bash
# A custom runtime streaming its responses by hand: chunked POSTs written on a raw socket, errors in the trailers.
set -u
API="$AWS_LAMBDA_RUNTIME_API"
HOST="${API%:*}"
PORT="${API##*:}"
BASE="http://$API/2018-06-01/runtime/invocation"
chunk() { printf '%x\r\n%s\r\n' "${#1}" "$1" >&3; }
while true; do
  curl -sS -D /tmp/headers -o /tmp/event "$BASE/next"
  ID=$(grep -i '^lambda-runtime-aws-request-id:' /tmp/headers | cut -d' ' -f2 | tr -d '\r\n')
  EVENT=$(cat /tmp/event)
  exec 3<>"/dev/tcp/$HOST/$PORT"
  printf 'POST /2018-06-01/runtime/invocation/%s/response HTTP/1.1\r\nHost: %s\r\n' "$ID" "$API" >&3
  printf 'Lambda-Runtime-Function-Response-Mode: streaming\r\nContent-Type: text/plain\r\n' >&3
  printf 'Transfer-Encoding: chunked\r\n' >&3
  printf 'Trailer: Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body\r\n\r\n' >&3
  chunk "hello "
  case "$EVENT" in
    *trailer*)
      BODY=$(printf '{"errorMessage":"bad thing","errorType":"Custom.Failure"}' | base64 -w0)
      printf '0\r\nLambda-Runtime-Function-Error-Type: Custom.Failure\r\n' >&3
      printf 'Lambda-Runtime-Function-Error-Body: %s\r\n\r\n' "$BODY" >&3
      ;;
    *late-error*)
      ANSWER=$(curl -sS -w ' %{http_code}' -X POST -d '{"errorMessage":"late","errorType":"Late"}' "$BASE/$ID/error")
      chunk "$ANSWER"
      printf '0\r\n\r\n' >&3
      ;;
    *)
      sleep 1
      chunk "world"
      printf '0\r\n\r\n' >&3
      ;;
  esac
  IFS= read -r STATUS <&3 || true
  exec 3>&-
  echo "stream answered: $STATUS"
done
"""


# -- helpers --------------------------------------------------------------------------------------------------------
def node_runtime() -> str:
    major = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip().lstrip("v")
    return f"nodejs{major.split('.')[0]}.x"


def public_url(lambda_client, name: str, **settings: object) -> str:
    url = lambda_client.create_function_url_config(FunctionName=name, AuthType="NONE", **settings)
    lambda_client.add_permission(FunctionName=name, StatementId="public-url", Action="lambda:InvokeFunctionUrl",
                                 Principal="*", FunctionUrlAuthType="NONE")
    return url["FunctionUrl"]


def stream(client, name: str, payload: object = None, **kwargs: object) -> tuple[dict, list[tuple[float, dict]]]:
    """invoke_with_response_stream, and each event with the seconds since the call began when it was read."""
    started = time.monotonic()
    response = client.invoke_with_response_stream(FunctionName=name, Payload=json.dumps(payload or {}), **kwargs)
    events = [(time.monotonic() - started, event) for event in response["EventStream"]]
    return response, events


def chunks(events: list[tuple[float, dict]]) -> list[bytes]:
    return [event["PayloadChunk"]["Payload"] for _, event in events if "PayloadChunk" in event]


def complete(events: list[tuple[float, dict]]) -> dict:
    assert "InvokeComplete" in events[-1][1], events
    assert sum("InvokeComplete" in event for _, event in events) == 1
    return events[-1][1]["InvokeComplete"]


def assert_streamed_early(events: list[tuple[float, dict]]) -> None:
    first = next(at for at, event in events if "PayloadChunk" in event)
    last = events[-1][0]
    assert first < last - EARLY_S, f"first chunk at {first:.3f} s, end at {last:.3f} s: not streamed"


@pytest.fixture(scope="module")
def node_stream_function(lambda_client) -> Iterator[str]:
    name = f"fn-{uuid.uuid4().hex[:12]}"
    lambda_client.create_function(FunctionName=name, Runtime=node_runtime(), Role=ROLE, Handler="app.handler",
                                  Code={"ZipFile": zip_files({"app.mjs": NODE_STREAMING})}, Timeout=3)
    yield name
    lambda_client.delete_function(FunctionName=name)


# -- InvokeWithResponseStream ---------------------------------------------------------------------------------------
def test_node_chunks_arrive_as_the_function_writes_them(lambda_client, node_stream_function) -> None:
    response, events = stream(lambda_client, node_stream_function)
    assert response["StatusCode"] == 200 and response["ExecutedVersion"] == "$LATEST"
    assert response["ResponseStreamContentType"] == EVENTSTREAM
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    assert headers["content-type"] == EVENTSTREAM
    assert headers["x-amzn-remapped-content-type"] == "application/octet-stream"
    assert headers["transfer-encoding"] == "chunked"
    assert chunks(events) == [b"first,", b"second"]
    assert complete(events) == {}
    assert_streamed_early(events)


def test_a_function_that_does_not_stream_is_one_chunk(lambda_client, make_function) -> None:
    name = make_function(code=PYTHON_ECHO)
    response, events = stream(lambda_client, name, {"n": 1})
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-remapped-content-type"] == "application/json"
    assert [json.loads(chunk) for chunk in chunks(events)] == [{"echo": {"n": 1}}]
    assert complete(events) == {}


def test_a_mid_stream_error_ends_in_invoke_complete(lambda_client, node_stream_function) -> None:
    response, events = stream(lambda_client, node_stream_function, {"mode": "fail", "pause": 50})
    assert response["StatusCode"] == 200
    assert chunks(events) == [b"first,"]
    assert complete(events) == {"ErrorCode": "TypeError", "ErrorDetails": "boom"}
    response, events = stream(lambda_client, node_stream_function, {"mode": "fail-first"})
    assert chunks(events) == []
    assert complete(events) == {"ErrorCode": "Error", "ErrorDetails": "nothing sent"}


def test_a_timeout_mid_stream_ends_the_stream_with_sandbox_timedout(lambda_client, node_stream_function) -> None:
    response, events = stream(lambda_client, node_stream_function, {"mode": "hang", "pause": 10})
    assert chunks(events) == [b"first,"]
    request_id = response["ResponseMetadata"]["RequestId"]
    assert complete(events) == {"ErrorCode": "Sandbox.Timedout",
                                "ErrorDetails": f"RequestId: {request_id} Error: Task timed out after 3.00 seconds"}
    response, events = stream(lambda_client, node_stream_function, {"pause": 10})  # a fresh environment serves
    # 10 ms apart, the two writes may reach the client as one chunk on a busy host: their bytes are what counts here
    assert b"".join(chunks(events)) == b"first,second" and complete(events) == {}


def test_log_type_tail_puts_the_log_in_invoke_complete(lambda_client, node_stream_function) -> None:
    response, events = stream(lambda_client, node_stream_function, {"pause": 10}, LogType="Tail")
    request_id = response["ResponseMetadata"]["RequestId"]
    log = base64.b64decode(complete(events)["LogResult"]).decode()
    assert f"START RequestId: {request_id}" in log and "streaming plain" in log
    assert f"END RequestId: {request_id}" in log and f"REPORT RequestId: {request_id}" in log
    assert set(complete(events)) == {"LogResult"}


def test_dry_run_validation_throttle_and_unknown_function(lambda_client, unvalidated_client, make_function) -> None:
    name = make_function(code=PYTHON_ECHO)
    response, events = stream(lambda_client, name, InvocationType="DryRun")
    assert response["StatusCode"] == 204 and events == []
    with pytest.raises(ClientError) as caught:
        unvalidated_client.invoke_with_response_stream(FunctionName=name, InvocationType="Event", LogType="All")
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["Error"]["Message"] == (
        "2 validation errors detected: Value 'All' at 'logType' failed to satisfy constraint: Member must satisfy "
        "enum value set: [None, Tail]; Value 'Event' at 'invocationType' failed to satisfy constraint: Member must "
        "satisfy enum value set: [RequestResponse, DryRun]"
    )
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as caught:
        lambda_client.invoke_with_response_stream(FunctionName=f"{name}-missing", Payload=b"{}")
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as buffered:
        lambda_client.invoke(FunctionName=f"{name}-missing", Payload=b"{}")
    assert caught.value.response["Message"] == buffered.value.response["Message"]
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    with pytest.raises(lambda_client.exceptions.TooManyRequestsException) as caught:
        lambda_client.invoke_with_response_stream(FunctionName=name, Payload=b"{}")
    throttle = caught.value.response
    assert throttle["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert throttle["Reason"] == "ReservedFunctionConcurrentInvocationLimitExceeded"


def test_a_buffered_invoke_gets_the_whole_stream_within_6_mb(lambda_client, node_stream_function) -> None:
    response = lambda_client.invoke(FunctionName=node_stream_function, Payload=json.dumps({"pause": 10}))
    assert "FunctionError" not in response
    assert response["ResponseMetadata"]["HTTPHeaders"]["content-type"] == "application/octet-stream"
    assert response["Payload"].read() == b"first,second"
    response = lambda_client.invoke(FunctionName=node_stream_function,
                                    Payload=json.dumps({"mode": "big", "bytes": 7 * 1024 * 1024}))
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read()) == {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
    }
    _, events = stream(lambda_client, node_stream_function, {"mode": "big", "bytes": 7 * 1024 * 1024})
    assert sum(len(chunk) for chunk in chunks(events)) == 7 * 1024 * 1024 and complete(events) == {}


def test_a_bash_bootstrap_streams_with_chunked_posts_and_trailers(lambda_client, make_function) -> None:
    name = make_function({"bootstrap": (BASH_BOOTSTRAP, 0o755)}, handler="unused", runtime="provided.al2023",
                         Timeout=10)
    response, events = stream(lambda_client, name, {"mode": "plain"})
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-remapped-content-type"] == "text/plain"
    assert b"".join(chunks(events)) == b"hello world" and complete(events) == {}
    assert_streamed_early(events)
    _, events = stream(lambda_client, name, {"mode": "trailer"})
    assert b"".join(chunks(events)) == b"hello "
    assert complete(events) == {"ErrorCode": "Custom.Failure", "ErrorDetails": "bad thing"}
    _, events = stream(lambda_client, name, {"mode": "late-error"})
    answer = b"".join(chunks(events))[len(b"hello "):].decode()
    body, _, status = answer.rpartition(" ")
    assert status == "403", answer
    assert json.loads(body) == {
        "errorMessage": "State transition from InvocationResponse to InvocationErrorResponse failed for runtime. "
                        "Error: State transition is not allowed",
        "errorType": "InvalidStateTransition",
    }
    assert complete(events) == {}
    response = lambda_client.invoke(FunctionName=name, Payload=json.dumps({"mode": "trailer"}))
    assert response["FunctionError"] == "Unhandled"
    assert json.loads(response["Payload"].read()) == {"errorMessage": "bad thing", "errorType": "Custom.Failure"}


def test_a_client_that_goes_away_leaves_the_invocation_running_to_its_end(lamina, lambda_client, make_function) -> None:
    """The function runs on (its output dropped) and holds its concurrency slot until its stream ended, as on AWS."""
    name = make_function({"app.mjs": NODE_STREAMING}, handler="app.handler", runtime=node_runtime(), Timeout=5)
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    body = json.dumps({"pause": 1500}).encode()
    with socket.create_connection(("127.0.0.1", urlsplit(lamina.endpoint).port)) as client:
        client.sendall(f"POST /2021-11-15/functions/{name}/response-streaming-invocations HTTP/1.1\r\n"
                       f"Host: lambda\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
        assert client.recv(65536).startswith(b"HTTP/1.1 200 OK")
    with pytest.raises(lambda_client.exceptions.TooManyRequestsException):
        lambda_client.invoke_with_response_stream(FunctionName=name, Payload=b"{}")
    deadline = time.monotonic() + 10
    while True:
        try:
            _, events = stream(lambda_client, name, {"pause": 10})
            break
        except lambda_client.exceptions.TooManyRequestsException:
            assert time.monotonic() < deadline, "the abandoned invocation never ended"
            time.sleep(0.2)
    assert b"".join(chunks(events)) == b"first,second" and complete(events) == {}


# -- RESPONSE_STREAM function URLs ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def stream_url(lambda_client) -> Iterator[str]:
    name = f"fn-{uuid.uuid4().hex[:12]}"
    lambda_client.create_function(FunctionName=name, Runtime=node_runtime(), Role=ROLE, Handler="app.url",
                                  Code={"ZipFile": zip_files({"app.mjs": NODE_STREAMING})}, Timeout=5)
    yield public_url(lambda_client, name, InvokeMode="RESPONSE_STREAM")
    lambda_client.delete_function(FunctionName=name)


def _open(url: str, path: str) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=30)
    connection.request("GET", path, headers={"Host": parts.netloc})
    return connection, connection.getresponse()


def test_a_response_stream_url_streams_with_the_prelude_head(stream_url) -> None:
    started = time.monotonic()
    connection, answer = _open(stream_url, "/prelude")
    try:
        assert answer.status == 201
        assert answer.headers["Content-Type"] == "text/plain" and answer.headers["X-Custom"] == "yes"
        assert answer.headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2"]
        assert answer.headers["Transfer-Encoding"] == "chunked" and answer.headers["x-amzn-RequestId"]
        first = answer.read(6)
        first_at = time.monotonic() - started
        rest = answer.read()
        end_at = time.monotonic() - started
    finally:
        connection.close()
    assert (first, rest) == (b"first,", b"second")
    assert first_at < end_at - EARLY_S, f"first piece at {first_at:.3f} s, end at {end_at:.3f} s"


def test_a_response_stream_url_without_prelude_and_its_errors(stream_url) -> None:
    connection, answer = _open(stream_url, "/plain")
    assert (answer.status, answer.headers["Content-Type"], answer.read()) == (200, "text/csv", b"a,b\n")
    connection.close()
    connection, answer = _open(stream_url, "/early")
    assert (answer.status, answer.read()) == (502, b"Internal Server Error")
    connection.close()
    connection, answer = _open(stream_url, "/fail-later")  # the head is out: the body just ends
    assert answer.status == 201 and answer.read() == b"first,"
    connection.close()


def test_a_buffered_url_of_a_streaming_function_maps_the_whole_body(lambda_client, make_function) -> None:
    name = make_function({"app.mjs": NODE_STREAMING}, handler="app.url", runtime=node_runtime())
    url = public_url(lambda_client, name)  # BUFFERED
    connection, answer = _open(url, "/buffered")
    assert (answer.status, answer.read()) == (202, b"buffered")
    connection.close()
    connection, answer = _open(url, "/prelude")  # HttpResponseStream.from, read whole: the prelude's head
    assert (answer.status, answer.headers["X-Custom"], answer.read()) == (201, "yes", b"first,second")
    assert answer.headers["Content-Length"] == "12"
    connection.close()


# -- the JS SDK v3 ----------------------------------------------------------------------------------------------------
JS_SDK_SCRIPT = """
const { LambdaClient, InvokeWithResponseStreamCommand } = require("@aws-sdk/client-lambda");
const [endpoint, name, payload] = process.argv.slice(2);
const client = new LambdaClient({ endpoint, region: "us-east-1", maxAttempts: 1,
  credentials: { accessKeyId: "test", secretAccessKey: "test" } });
(async () => {
  const started = Date.now();
  const response = await client.send(new InvokeWithResponseStreamCommand({
    FunctionName: name, Payload: Buffer.from(payload), LogType: "Tail" }));
  const events = [];
  for await (const event of response.EventStream) {
    if (event.PayloadChunk) {
      events.push({ chunk: Buffer.from(event.PayloadChunk.Payload).toString(), at: Date.now() - started });
    } else if (event.InvokeComplete) {
      events.push({ complete: event.InvokeComplete, at: Date.now() - started });
    }
  }
  console.log(JSON.stringify({ status: response.StatusCode, version: response.ExecutedVersion,
    contentType: response.ResponseStreamContentType, events }));
})().catch((error) => { console.error(error); process.exit(1); });
"""


def _js_sdk() -> Path:
    """@aws-sdk/client-lambda installed from npm once, under the tests' cache; skips the test if npm cannot."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    root = Path(base) / "lamina-tests" / "aws-sdk-client-lambda-3"
    if (root / "node_modules" / "@aws-sdk" / "client-lambda").is_dir():
        return root
    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    scratch = root.with_name(f"{root.name}.building-{uuid.uuid4().hex[:6]}")
    scratch.mkdir(parents=True)
    try:
        done = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--prefix", str(scratch),
                               "@aws-sdk/client-lambda@3"], capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            pytest.skip(f"npm could not install @aws-sdk/client-lambda: {done.stderr[-2000:]}")
        scratch.rename(root)
    except subprocess.TimeoutExpired:
        pytest.skip("npm install of @aws-sdk/client-lambda timed out")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return root


def test_the_js_sdk_reads_the_stream(lamina, node_stream_function) -> None:
    sdk = _js_sdk()
    script = sdk / "invoke_stream.js"
    script.write_text(JS_SDK_SCRIPT)
    done = subprocess.run(["node", str(script), lamina.endpoint, node_stream_function, "{}"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "NODE_PATH": str(sdk / "node_modules")})
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert (result["status"], result["version"], result["contentType"]) == (200, "$LATEST", EVENTSTREAM)
    events = result["events"]
    assert [event["chunk"] for event in events if "chunk" in event] == ["first,", "second"]
    assert set(events[-1]["complete"]) == {"LogResult"}
    assert events[0]["at"] < events[-1]["at"] - EARLY_S * 1000
