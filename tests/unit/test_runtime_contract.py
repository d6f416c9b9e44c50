"""The Runtime API contract both of Lamina's bootstraps keep, each run as a real process against a fake Runtime API.

Every case runs once per runtime with the same handler names (see tests/support/bootstraps.py); where the two
languages spell an outcome differently (an error's type, a message), the case names both. What only one runtime
does is in test_python_bootstrap.py and test_node_bootstrap.py.
"""
from __future__ import annotations

import json

import pytest

from tests.support.bootstraps import NODE, PYTHON, Bootstrap, api, start, task_root  # noqa: F401 (fixtures)
from tests.support.fake_runtime_api import DEFAULT_TRACE, FakeRuntimeApi, RuntimeProcess
from tests.support.polling import wait_until

each_runtime = pytest.mark.parametrize("runtime", [PYTHON.param(), NODE.param()])


def per_runtime(*, python: object, node: object) -> list[object]:
    """Parameters `(runtime, expected)` for a case whose expected outcome each language spells its own way."""
    return [PYTHON.param(python), NODE.param(node)]


def _syntax_error_message() -> str:
    try:
        compile(PYTHON.files["broken.py"], "broken.py", "exec")
    except SyntaxError as error:
        return str(error)
    raise AssertionError("the sample must not compile")


SYNTAX_MESSAGE = _syntax_error_message()  # the wording differs between Python versions
UNPACK_ERROR = "not enough values to unpack (expected 2, got 1)"
INIT_ERRORS = [
    PYTHON.param(handler, error_type, message, id=f"python-{error_type}-{handler}")
    for handler, error_type, message in [
        ("nomod.handler", "Runtime.ImportModuleError", "Unable to import module 'nomod': No module named 'nomod'"),
        ("imports.handler", "Runtime.ImportModuleError", "Unable to import module 'imports': No module named 'gone'"),
        ("app.missing", "Runtime.HandlerNotFound", "Handler 'missing' missing on module 'app'"),
        ("nodots", "Runtime.MalformedHandlerName", "Bad handler 'nodots': " + UNPACK_ERROR),
        ("sys.handler", "Runtime.BuiltInModuleConflict", "Cannot use built-in module sys as a handler module"),
        ("broken.handler", "Runtime.UserCodeSyntaxError", f"Syntax error in module 'broken': {SYNTAX_MESSAGE}"),
    ]
] + [
    NODE.param(handler, error_type, message, id=f"node-{error_type}-{handler}")
    for handler, error_type, message in [
        (
            "nomod.handler",
            "Runtime.ImportModuleError",
            f"Error: Cannot find module 'nomod'\nRequire stack:\n- {NODE.script.parent / 'loader.mjs'}",
        ),
        ("app.missing", "Runtime.HandlerNotFound", "app.missing is undefined or not exported"),
        ("notfn.value", "Runtime.HandlerNotFound", "notfn.value is not a function"),
        ("nodots", "Runtime.MalformedHandlerName", "Bad handler"),
        (
            "../up.handler",
            "Runtime.MalformedHandlerName",
            "'../up.handler' is not a valid handler name. Use absolute paths when specifying root directories in "
            "handler names.",
        ),
        ("broken.handler", "Runtime.UserCodeSyntaxError", "SyntaxError: Unexpected token ';'"),
    ]
]


@each_runtime
def test_result_is_posted_as_json_to_its_response(api, start) -> None:
    start("app.echo")
    request_id = api.push({"a": [1, "x"]})
    posted = api.result(request_id)
    assert posted.path == f"/2018-06-01/runtime/invocation/{request_id}/response"
    assert posted.headers["content-type"] == "application/json"
    assert posted.json() == {"echo": {"a": [1, "x"]}}


@each_runtime
def test_no_result_is_null(api, start) -> None:
    start("app.nothing")
    assert api.result(api.push({})).body == b"null"


@each_runtime
def test_a_handler_in_a_subdirectory(api, start) -> None:
    start("pkg/sub/mod.fn")
    assert api.result(api.push(7)).json() == ["nested", 7]


@each_runtime
def test_context_carries_the_invocation_and_the_function_settings(api, start) -> None:
    start("app.fields")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn:prod"
    request_id = api.push({}, arn=arn, timeout_ms=2000)
    fields = api.result(request_id).json()
    assert fields == {
        "aws_request_id": request_id,
        "function_name": "fn",
        "function_version": "$LATEST",
        "invoked_function_arn": arn,
        "memory_limit_in_mb": "128",
        "log_group_name": "/aws/lambda/fn",
        "log_stream_name": "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
        "remaining": fields["remaining"],
        "trace": DEFAULT_TRACE,
    }
    assert 0 < fields["remaining"] <= 2000
    assert api.result(api.push({}, trace_id=None)).json()["trace"] is None


@pytest.mark.parametrize(
    ("runtime", "error"), per_runtime(python=("ValueError", "bad thing"), node=("TypeError", "bad thing"))
)
def test_a_handler_error_is_posted_logged_and_explained_to_x_ray(api, start, task_root, error) -> None:
    process = start("app.fail")
    request_id = api.push({})
    posted = api.result(request_id)
    assert posted.path == f"/2018-06-01/runtime/invocation/{request_id}/error"
    assert (posted.json()["errorType"], posted.json()["errorMessage"]) == error
    cause = json.loads(posted.headers["lambda-runtime-function-xray-error-cause"])
    assert cause["working_directory"] == str(task_root)
    assert (cause["exceptions"][0]["type"], cause["exceptions"][0]["message"]) == error
    wait_until(lambda: all(part in process.log for part in error), what="the error in the log")


@pytest.mark.parametrize(
    ("runtime", "error"),
    per_runtime(
        python=("Runtime.MarshalError", "Unable to marshal response: Object of type set is not JSON serializable"),
        node=("Error", "Unable to stringify response body"),
    ),
)
def test_an_unserialisable_result_is_an_error(api, start, error) -> None:
    process = start("app.unserialisable")
    posted = api.result(api.push({}))
    assert posted.path.endswith("/error")
    assert (posted.json()["errorType"], posted.json()["errorMessage"]) == error
    wait_until(lambda: all(part in process.log for part in error), what="the error in the log")


@pytest.mark.parametrize(("runtime", "handler", "error_type", "message"), INIT_ERRORS)
def test_init_errors_are_posted_and_end_the_runtime_before_any_next(
    runtime: Bootstrap, api: FakeRuntimeApi, start, handler: str, error_type: str, message: str
) -> None:
    process = start(handler)
    posted = api.init_error()
    assert posted.path == "/2018-06-01/runtime/init/error"
    assert posted.headers["lambda-runtime-function-error-type"] == error_type
    assert (posted.json()["errorType"], posted.json()["errorMessage"]) == (error_type, message)
    assert process.wait() == runtime.init_error_exit
    assert error_type in process.log
    assert api.next_requests() == []


@each_runtime
def test_one_connection_with_pipelined_next(api, start) -> None:
    start("app.echo")
    for n in range(3):
        api.result(api.push(n))
    nexts = api.next_requests()
    assert api.connections == 1
    assert len(nexts) >= 3  # the GET after the last result may still be in flight
    assert all(request.pipelined for request in nexts[1:])


@each_runtime
def test_rejected_oversized_response_keeps_the_runtime_serving(api, start) -> None:
    process = start("app.echo")
    api.result(api.push({"big": 1}, response_status=413))
    assert api.result(api.push({"after": 1})).json() == {"echo": {"after": 1}}
    assert process.returncode is None


@each_runtime
def test_exits_when_the_runtime_api_goes_away(runtime: Bootstrap, task_root) -> None:
    with FakeRuntimeApi() as fake:
        process = RuntimeProcess(runtime.argv(), fake, task_root, "app.echo")
        fake.result(fake.push({}))
    try:
        assert process.wait() == 1
        assert "Lamina runtime: lost the Runtime API" in process.log
    finally:
        process.stop()
