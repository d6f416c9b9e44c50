"""Lamina's Node.js bootstrap, run as a real `node` process against a fake Runtime API (formats: aws-lambda-ric)."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Iterator

import pytest

from fake_runtime_api import FakeRuntimeApi, RuntimeProcess

BOOTSTRAP = Path(__file__).resolve().parents[2] / "lamina" / "runtimes" / "bootstraps" / "nodejs" / "bootstrap.mjs"
NODE = shutil.which("node")
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

FILES = {
    "index.mjs": """
export const handler = async (event, context) => {
  console.log("hello", event);
  return {
    event,
    context: JSON.parse(JSON.stringify(context)),
    remaining: context.getRemainingTimeInMillis(),
    trace: process.env._X_AMZN_TRACE_ID ?? null,
  };
};
export const fail = async () => {
  throw new TypeError("bad thing");
};
export const chatty = async (event) => {
  console.log("multi\\nline", { n: event.n });
  console.info("info");
  console.warn("warn");
  console.error("error");
  console.debug("debug");
  return event.n;
};
""",
    "cb.js": """
exports.waits = (event, context, callback) => {
  setTimeout(() => console.log("timer fired"), 30);
  callback(null, { waited: event });
};
exports.early = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => console.log("timer fired"), 1000);
  callback(null, "early");
};
exports.succeed = (event, context) => context.succeed({ succeeded: event });
exports.failWith = (event, context) => context.fail(event === "nothing" ? undefined : new Error("failed"));
exports.done = (event, context) => context.done(null, "done");
exports.stringError = (event, context, callback) => callback("string error");
exports.sync = () => 42;
exports.twice = async (event, context) => { context.succeed("first"); return "second"; };
exports.circular = async () => { const a = {}; a.self = a; return a; };
exports.uncaught = () => { setTimeout(() => { throw new Error("later"); }, 5); };
exports.rejects = () => { Promise.reject(new Error("nope")); };
exports.nested = { deeper: { fn: async (event) => ["nested", event] } };
""",
    "lib/deep.cjs": "module.exports.handler = async (event) => ['cjs', event];\n",
    "esm/package.json": '{"type": "module"}',
    "esm/app.js": "export const handler = async (event) => ['esm-js', event];\n",
    "broken.js": "const x = ;\n",
    "notfn.js": "exports.value = 5;\n",
}


@pytest.fixture
def api() -> Iterator[FakeRuntimeApi]:
    with FakeRuntimeApi() as fake:
        yield fake


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    for name, text in FILES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.fixture
def start(api: FakeRuntimeApi, task_root: Path) -> Iterator:
    started: list[RuntimeProcess] = []

    def run(handler: str, env: dict[str, str] | None = None) -> RuntimeProcess:
        process = RuntimeProcess([NODE, str(BOOTSTRAP)], api, task_root, handler, env)
        started.append(process)
        return process

    yield run
    for process in started:
        process.stop()


def test_async_esm_handler_and_context(api, start) -> None:
    process = start("index.handler")
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
    assert 0 < result["remaining"] <= 2000
    assert result["trace"].startswith("Root=1-")
    assert re.fullmatch(rf"{TIMESTAMP}\t{request_id}\tINFO\thello {{ a: 1 }}\n", process.log)


def test_client_context_and_identity(api, start) -> None:
    start("index.handler")
    client_context = {"custom": {"foo": "bar"}, "client": {"snap": ["crackle"]}, "env": {"fizz": "buzz"}}
    identity = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
    context = api.result(api.push({}, client_context=client_context, identity=identity)).json()["context"]
    assert context["clientContext"] == client_context
    assert context["identity"] == identity
    assert api.result(api.push({}, trace_id=None)).json()["trace"] is None


def test_handler_error_payload_and_log(api, start, task_root) -> None:
    process = start("index.fail")
    request_id = api.push({})
    posted = api.result(request_id)
    assert posted.path.endswith(f"/{request_id}/error")
    error = posted.json()
    assert list(error) == ["errorType", "errorMessage", "trace"]
    assert (error["errorType"], error["errorMessage"]) == ("TypeError", "bad thing")
    assert error["trace"][0] == "TypeError: bad thing"
    assert f"{(task_root / 'index.mjs').as_uri()}:12:" in error["trace"][1]
    cause = json.loads(posted.headers["lambda-runtime-function-xray-error-cause"])
    assert cause["exceptions"][0]["type"] == "TypeError"
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


def test_unserialisable_result(api, start) -> None:
    start("cb.circular")
    error = api.result(api.push({})).json()
    assert (error["errorType"], error["errorMessage"]) == ("Error", "Unable to stringify response body")


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
    ("handler", "error_type", "message"),
    [
        ("missing.handler", "Runtime.ImportModuleError", "Error: Cannot find module 'missing'\nRequire stack:\n- "),
        ("index.nope", "Runtime.HandlerNotFound", "index.nope is undefined or not exported"),
        ("notfn.value", "Runtime.HandlerNotFound", "notfn.value is not a function"),
        ("broken.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: Unexpected token ';'"),
        ("nodot", "Runtime.MalformedHandlerName", "Bad handler"),
        (
            "../up.handler",
            "Runtime.MalformedHandlerName",
            "'../up.handler' is not a valid handler name. Use absolute paths when specifying root directories in "
            "handler names.",
        ),
    ],
)
def test_init_errors(api, start, handler, error_type, message) -> None:
    process = start(handler)
    posted = api.init_error()
    assert posted.headers["lambda-runtime-function-error-type"] == error_type
    body = posted.json()
    assert body["errorType"] == error_type
    assert body["errorMessage"].startswith(message)
    assert body["trace"][0].startswith(f"{error_type}: {message}".split("\n")[0])
    assert process.wait() == 129
    logged = rf"{TIMESTAMP}\tundefined\tERROR\tUncaught Exception \t\{{\"errorType\":\"{error_type}\""
    assert re.match(logged, process.log)
    assert not [request for request in api.requests if request.path.endswith("/next")]


def test_uncaught_exception_fails_the_invocation_and_exits_129(api, start) -> None:
    process = start("cb.uncaught")
    request_id = api.push({})
    error = api.result(request_id).json()
    assert (error["errorType"], error["errorMessage"]) == ("Error", "later")
    assert process.wait() == 129
    assert f"\t{request_id}\tERROR\tUncaught Exception \t" in process.log
    assert len([request for request in api.requests if request.path.endswith("/next")]) == 1


def test_unhandled_rejection_fails_the_invocation_and_exits_128(api, start) -> None:
    process = start("cb.rejects")
    error = api.result(api.push({})).json()
    assert (error["errorType"], error["errorMessage"]) == ("Runtime.UnhandledPromiseRejection", "Error: nope")
    assert process.wait() == 128
    assert "\tERROR\tUnhandled Promise Rejection \t" in process.log


def test_console_levels_and_newlines(api, start) -> None:
    process = start("index.chatty", env={"AWS_LAMBDA_LOG_LEVEL": "INFO"})
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
    process = start("index.chatty", env={"AWS_LAMBDA_LOG_FORMAT": "JSON", "AWS_LAMBDA_LOG_LEVEL": "WARN"})
    request_id = api.push({"n": 2})
    api.result(request_id)
    records = [json.loads(line) for line in process.log.splitlines()]
    assert [(r["level"], r["requestId"], r["message"]) for r in records] == [
        ("WARN", request_id, "warn"),
        ("ERROR", request_id, "error"),
    ]


def test_one_connection_with_pipelined_next(api, start) -> None:
    start("index.handler")
    for n in range(3):
        api.result(api.push(n))
    nexts = [request for request in api.requests if request.path.endswith("/invocation/next")]
    assert api.connections == 1
    assert len(nexts) >= 3  # the GET after the last result may still be in flight
    assert all(request.pipelined for request in nexts[1:])


def test_rejected_oversized_response_keeps_the_runtime_serving(api, start) -> None:
    process = start("cb.succeed")
    api.result(api.push("big", response_status=413))
    assert api.result(api.push("after")).json() == {"succeeded": "after"}
    assert process.returncode is None


def test_exits_when_the_runtime_api_goes_away(task_root) -> None:
    with FakeRuntimeApi() as fake:
        process = RuntimeProcess([NODE, str(BOOTSTRAP)], fake, task_root, "cb.succeed")
        fake.result(fake.push({}))
    try:
        assert process.wait() == 1
        assert "Lamina runtime: lost the Runtime API" in process.log
    finally:
        process.stop()
