"""Lamina's Node.js bootstrap, run as a real `node` process against a fake Runtime API (formats: aws-lambda-ric).

What both bootstraps do alike is in test_runtime_contract.py; this module holds what is Node's own.
"""
from __future__ import annotations

import json
import re

import pytest

from tests.support.bootstraps import NODE, TIMESTAMP, Bootstrap, api, start, task_root  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(NODE.interpreter is None, reason="node is not installed")


@pytest.fixture
def runtime() -> Bootstrap:
    return NODE


def test_async_esm_handler_and_context(api, start) -> None:
    process = start("app.context")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn:live"
    request_id = api.push({"a": 1}, arn=arn, timeout_ms=2000)
    posted = api.result(request_id)
    assert posted.path == f"/2018-06-01/runtime/invocation/{request_id}/response"
    result = posted.json()
    assert result["event"] == {"a": 1}
    # Key order and values as AWS's Node.js runtime serialises its context.
    assert list(result["context"].items()) == [
        ("callbackWaitsForEmptyEventLoop", True),
        ("functionVersion", "$LATEST"),
        ("functionName", "fn"),
        ("memoryLimitInMB", "128"),
        ("logGroupName", "/aws/lambda/fn"),
        ("logStreamName", "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef"),
        ("invokedFunctionArn", arn),
        ("awsRequestId", request_id),
    ]
    assert re.fullmatch(rf"{TIMESTAMP}\t{request_id}\tINFO\thello {{ a: 1 }}\n", process.log)


def test_client_context_and_identity(api, start) -> None:
    start("app.context")
    client_context = {"custom": {"foo": "bar"}, "client": {"snap": ["crackle"]}, "env": {"fizz": "buzz"}}
    identity = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
    context = api.result(api.push({}, client_context=client_context, identity=identity)).json()["context"]
    assert context["clientContext"] == client_context
    assert context["identity"] == identity


def test_handler_error_payload_and_log(api, start, task_root) -> None:
    process = start("app.fail")
    request_id = api.push({})
    posted = api.result(request_id)
    assert posted.path.endswith(f"/{request_id}/error")
    error = posted.json()
    assert list(error) == ["errorType", "errorMessage", "trace"]
    assert (error["errorType"], error["errorMessage"]) == ("TypeError", "bad thing")
    assert error["trace"][0] == "TypeError: bad thing"
    throw_line = NODE.line("app.mjs", 'throw new TypeError("bad thing");')
    assert f"{(task_root / 'app.mjs').as_uri()}:{throw_line}:" in error["trace"][1]
    line = process.log.splitlines()[0]
    prefix = rf"{TIMESTAMP}\t{request_id}\tERROR\tInvoke Error \t"
    assert re.match(prefix, line)
    logged = json.loads(re.sub(prefix, "", line))
    assert (logged["errorType"], logged["errorMessage"]) == ("TypeError", "bad thing")
    assert logged["stack"][0] == "TypeError: bad thing"


def test_callback_waits_for_the_event_loop_to_drain(api, start) -> None:
    process = start("cb.waits")
    assert api.result(api.push(1)).json() == {"waited": 1}
    assert "timer fired" in process.log  # logged before the response was posted


def test_callback_without_waiting_responds_at_once(api, start) -> None:
    process = start("cb.early")
    assert api.result(api.push(1)).json() == "early"
    assert "timer fired" not in process.log


@pytest.mark.parametrize(
    ("handler", "event", "outcome", "body"),
    [
        ("cb.succeed", 3, "response", {"succeeded": 3}),
        ("cb.done", 0, "response", "done"),
        ("cb.sync", 0, "response", None),
        ("cb.twice", 0, "response", "first"),
        ("cb.failWith", "nothing", "error", {"errorType": "string", "errorMessage": "handled", "trace": []}),
        ("cb.stringError", 0, "error", {"errorType": "string", "errorMessage": "string error", "trace": []}),
    ],
)
def test_callback_styles(api, start, handler, event, outcome, body) -> None:
    start(handler)
    posted = api.result(api.push(event))
    assert posted.path.endswith(f"/{outcome}")
    assert posted.json() == body


def test_context_fail_with_an_error(api, start) -> None:
    start("cb.failWith")
    error = api.result(api.push("error")).json()
    assert (error["errorType"], error["errorMessage"], error["trace"][0]) == ("Error", "failed", "Error: failed")


@pytest.mark.parametrize(
    ("handler", "result"),
    [
        ("lib/deep.handler", ["cjs", 5]),
        ("esm/app.handler", ["esm-js", 5]),
        ("cb.nested.deeper.fn", ["nested", 5]),
    ],
)
def test_module_kinds_and_handler_paths(api, start, handler, result) -> None:
    start(handler)
    assert api.result(api.push(5)).json() == result


@pytest.mark.parametrize(
    ("handler", "error_type"),
    [("nomod.handler", "Runtime.ImportModuleError"), ("broken.handler", "Runtime.UserCodeSyntaxError")],
)
def test_init_error_report_and_log(api, start, handler, error_type) -> None:
    """The contract suite checks every init error's type and message; here, the rest of Node's report."""
    process = start(handler)
    body = api.init_error().json()
    assert body["trace"][0] == f"{error_type}: {body['errorMessage']}".split("\n")[0]
    assert process.wait() == 129
    logged = rf"{TIMESTAMP}\tundefined\tERROR\tUncaught Exception \t\{{\"errorType\":\"{error_type}\""
    assert re.match(logged, process.log)


def test_uncaught_exception_fails_the_invocation_and_exits_129(api, start) -> None:
    process = start("cb.uncaught")
    request_id = api.push({})
    error = api.result(request_id).json()
    assert (error["errorType"], error["errorMessage"]) == ("Error", "later")
    assert process.wait() == 129
    assert f"\t{request_id}\tERROR\tUncaught Exception \t" in process.log
    assert len(api.next_requests()) == 1


def test_unhandled_rejection_fails_the_invocation_and_exits_128(api, start) -> None:
    process = start("cb.rejects")
    error = api.result(api.push({})).json()
    assert (error["errorType"], error["errorMessage"]) == ("Runtime.UnhandledPromiseRejection", "Error: nope")
    assert process.wait() == 128
    assert "\tERROR\tUnhandled Promise Rejection \t" in process.log


def test_console_levels_and_newlines(api, start) -> None:
    process = start("app.chatty", env={"AWS_LAMBDA_LOG_LEVEL": "INFO"})
    request_id = api.push({"n": 1})
    api.result(request_id)
    lines = [line.split("\t", 1)[1] for line in process.log.split("\n")[:-1]]  # \r stays inside its line
    assert lines == [
        f"{request_id}\tINFO\tmulti\rline {{ n: 1 }}",
        f"{request_id}\tINFO\tinfo",
        f"{request_id}\tWARN\twarn",
        f"{request_id}\tERROR\terror",
    ]


def test_json_log_format(api, start) -> None:
    process = start("app.chatty", env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"})
    request_id = api.push({"n": 2})
    api.result(request_id)
    records = [json.loads(line) for line in process.log.splitlines()]
    assert [(r["level"], r["requestId"], r["message"]) for r in records] == [
        ("WARN", request_id, "warn"),
        ("ERROR", request_id, "error"),
    ]
