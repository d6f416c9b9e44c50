"""Lamina's Python bootstrap, run as a real process against a fake Runtime API; formats follow awslambdaric 4.2.2."""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Iterator

import pytest

from fake_runtime_api import FakeRuntimeApi, RuntimeProcess

BOOTSTRAP = Path(__file__).resolve().parents[2] / "lamina" / "runtimes" / "bootstraps" / "python" / "bootstrap.py"
PYTHON = os.path.realpath(sys.executable)
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

APP = '''
import logging, os, sys
from decimal import Decimal

def echo(event, context):
    return {"echo": event}

def nothing(event, context):
    return None

def raw(event, context):
    return b"\\x00raw"

def numbers(event, context):
    return {"d": Decimal("1.10"), "big": Decimal("12345678901234567890.5"), "b": b"bytes"}

def unserialisable(event, context):
    return {1, 2}

def fields(event, context):
    cc = context.client_context
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "client_context": None if cc is None else {
            "custom": cc.custom, "env": cc.env,
            "client": None if cc.client is None else [cc.client.installation_id, cc.client.app_title],
        },
        "w3c": context.w3c(),
    }

def fail(event, context):
    def inner():
        raise ValueError("bad thing")
    inner()

def chatty(event, context):
    print("printed", event["n"])
    logging.warning("warned %s", event["n"])
    logging.info("hidden unless the level allows it")
    context.log("via context\\n")
    return event["n"]

def paths(event, context):
    return sys.path

def kind(event, context):
    return [type(event).__name__, event.decode() if isinstance(event, bytes) else event]
'''


def _line(code: str) -> int:
    """Line number of `code` in APP, so traceback assertions follow edits to the sample."""
    return [line.strip() for line in APP.splitlines()].index(code) + 1


@pytest.fixture
def api() -> Iterator[FakeRuntimeApi]:
    with FakeRuntimeApi() as fake:
        yield fake


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "mod.py").write_text("def fn(event, context):\n    return ['nested', event]\n")
    return tmp_path


@pytest.fixture
def start(api: FakeRuntimeApi, task_root: Path) -> Iterator:
    started: list[RuntimeProcess] = []

    def run(handler: str, env: dict[str, str] | None = None, python: str = PYTHON) -> RuntimeProcess:
        process = RuntimeProcess([python, str(BOOTSTRAP)], api, task_root, handler, env)
        started.append(process)
        return process

    yield run
    for process in started:
        process.stop()


def test_result_is_json_dumped_and_posted(api, start) -> None:
    start("app.echo")
    request_id = api.push({"a": [1, "x"]})
    posted = api.result(request_id)
    assert posted.path == f"/2018-06-01/runtime/invocation/{request_id}/response"
    assert posted.headers["content-type"] == "application/json"
    assert posted.body == b'{"echo": {"a": [1, "x"]}}'


def test_none_result_is_null(api, start) -> None:
    start("app.nothing")
    assert api.result(api.push({})).body == b"null"


def test_bytes_result_is_sent_raw(api, start) -> None:
    start("app.raw")
    posted = api.result(api.push({}))
    assert (posted.body, posted.headers["content-type"]) == (b"\x00raw", "application/unknown")


def test_decimals_and_bytes_are_encoded_like_simplejson(api, start) -> None:
    start("app.numbers")
    assert api.result(api.push({})).body == b'{"d": 1.10, "big": 12345678901234567890.5, "b": "bytes"}'


def test_unserialisable_result_is_a_marshal_error(api, start) -> None:
    process = start("app.unserialisable")
    request_id = api.push({})
    posted = api.result(request_id)
    assert posted.path.endswith("/error")
    assert posted.json() == {
        "errorMessage": "Unable to marshal response: Object of type set is not JSON serializable",
        "errorType": "Runtime.MarshalError",
        "requestId": request_id,
        "stackTrace": [],
    }
    assert "[ERROR] Runtime.MarshalError: Unable to marshal response" in process.log


def test_invalid_json_event_is_an_unmarshal_error(api, start) -> None:
    start("app.echo")
    posted = api.result(api.push(raw=b"not json"))
    assert posted.json()["errorType"] == "Runtime.UnmarshalError"
    assert posted.json()["errorMessage"] == "Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)"


def test_non_json_content_type_passes_the_raw_bytes(api, start) -> None:
    start("app.kind")
    assert api.result(api.push(raw=b"plain", content_type="text/plain")).json() == ["bytes", "plain"]
    assert api.result(api.push({"a": 1})).json() == ["dict", {"a": 1}]


def test_context_fields_and_trace_id(api, start, task_root) -> None:
    start("app.fields")
    arn = "arn:aws:lambda:us-east-1:123456789012:function:fn:prod"
    first = api.push({}, arn=arn, timeout_ms=2000)
    fields = api.result(first).json()
    assert fields == {
        "aws_request_id": first,
        "function_name": "fn",
        "function_version": "$LATEST",
        "invoked_function_arn": arn,
        "memory_limit_in_mb": "128",
        "log_group_name": "/aws/lambda/fn",
        "log_stream_name": "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
        "remaining": fields["remaining"],
        "trace": "Root=1-65f0a1b2-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0",
        "identity": [None, None],
        "client_context": None,
        "w3c": {},
    }
    assert 0 < fields["remaining"] <= 2000
    assert api.result(api.push({}, trace_id=None)).json()["trace"] is None


def test_client_context_and_identity(api, start) -> None:
    start("app.fields")
    client_context = {
        "custom": {"k": "v"},
        "env": {"platform": "x"},
        "client": {"installation_id": "inst", "app_title": "title"},
        "w3c": {"traceparent": "00-abc-def-01", "baggage": 5},
    }
    identity = {"cognitoIdentityId": "id-1", "cognitoIdentityPoolId": "pool-1"}
    fields = api.result(api.push({}, client_context=client_context, identity=identity)).json()
    assert fields["client_context"] == {"custom": {"k": "v"}, "env": {"platform": "x"}, "client": ["inst", "title"]}
    assert fields["identity"] == ["id-1", "pool-1"]
    assert fields["w3c"] == {"traceparent": "00-abc-def-01"}


def test_handler_exception_payload_and_log(api, start, task_root) -> None:
    process = start("app.fail")
    request_id = api.push({})
    posted = api.result(request_id)
    app = str(task_root / "app.py")
    outer, inner = _line("inner()"), _line('raise ValueError("bad thing")')
    assert posted.path.endswith(f"/{request_id}/error")
    assert posted.json() == {
        "errorMessage": "bad thing",
        "errorType": "ValueError",
        "requestId": request_id,
        "stackTrace": [
            f'  File "{app}", line {outer}, in fail\n    inner()\n',
            f'  File "{app}", line {inner}, in inner\n    raise ValueError("bad thing")\n',
        ],
    }
    cause = json.loads(posted.headers["lambda-runtime-function-xray-error-cause"])
    assert cause["exceptions"][0]["stack"][1] == {"label": "inner", "path": app, "line": inner}
    assert (
        "[ERROR] ValueError: bad thing\rTraceback (most recent call last):\r"
        f'\u00a0\u00a0File "{app}", line {outer}, in fail\r\u00a0\u00a0\u00a0\u00a0inner()\r'
    ) in process.log


SYNTAX_ERROR = "def handler(event, context):\n    x = = 1\n"
UNPACK_ERROR = "not enough values to unpack (expected 2, got 1)"


def _syntax_error_message() -> str:
    try:
        compile(SYNTAX_ERROR, "broken.py", "exec")
    except SyntaxError as error:
        return str(error)
    raise AssertionError("the sample must not compile")


SYNTAX_MESSAGE = _syntax_error_message()  # the wording differs between Python versions


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        ("nomod.handler", "Runtime.ImportModuleError", "Unable to import module 'nomod': No module named 'nomod'"),
        ("imports.handler", "Runtime.ImportModuleError", "Unable to import module 'imports': No module named 'gone'"),
        ("app.missing", "Runtime.HandlerNotFound", "Handler 'missing' missing on module 'app'"),
        ("nodots", "Runtime.MalformedHandlerName", "Bad handler 'nodots': " + UNPACK_ERROR),
        ("sys.handler", "Runtime.BuiltInModuleConflict", "Cannot use built-in module sys as a handler module"),
        ("broken.handler", "Runtime.UserCodeSyntaxError", f"Syntax error in module 'broken': {SYNTAX_MESSAGE}"),
    ],
)
def test_init_errors(api, start, task_root, handler, error_type, message) -> None:
    (task_root / "imports.py").write_text("import gone\n")
    (task_root / "broken.py").write_text(SYNTAX_ERROR)
    process = start(handler)
    posted = api.init_error()
    assert posted.headers["lambda-runtime-function-error-type"] == error_type
    body = posted.json()
    assert (body["errorType"], body["errorMessage"], body["requestId"]) == (error_type, message, "")
    if error_type == "Runtime.UserCodeSyntaxError":
        assert body["stackTrace"] == [f'  File "{task_root / "broken.py"}" Line 2\n        x = = 1\n']
    else:
        assert body["stackTrace"] == []
    assert process.wait() == 1
    log = process.log
    assert re.search(rf"\[WARNING\]\t{TIMESTAMP}\t\tLAMBDA_WARNING: Unhandled exception\.", log)
    assert f"[ERROR] {error_type}: {message}\rTraceback (most recent call last):" in log
    assert not [request for request in api.requests if request.path.endswith("/next")]


def test_exception_at_import_is_reported_with_its_traceback(api, start, task_root) -> None:
    (task_root / "boom.py").write_text("import json\nraise RuntimeError('init boom')\n")
    process = start("boom.handler")
    body = api.init_error().json()
    assert (body["errorType"], body["errorMessage"], body["requestId"]) == ("RuntimeError", "init boom", "")
    assert "importlib" in body["stackTrace"][0] and "in import_module" in body["stackTrace"][0]
    last = f'  File "{task_root / "boom.py"}", line 2, in <module>\n    raise RuntimeError(\'init boom\')\n'
    assert body["stackTrace"][-1] == last
    assert not any("bootstrap.py" in frame for frame in body["stackTrace"])
    assert process.wait() == 1


@pytest.mark.parametrize("handler", ["pkg.sub.mod.fn", "pkg/sub/mod.fn"])
def test_dotted_and_slashed_handler_paths(api, start, handler) -> None:
    start(handler)
    assert api.result(api.push(7)).json() == ["nested", 7]


def test_sys_path_puts_function_code_and_layers_first(api, start, task_root) -> None:
    start("app.paths")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    path = api.result(api.push({})).json()
    assert path[:4] == [
        str(task_root),
        f"/opt/python/lib/python{version}/site-packages",
        "/opt/python",
        str(BOOTSTRAP.parent.parent),
    ]
    assert str(BOOTSTRAP.parent) not in path


def test_logging_and_print_are_flushed_before_the_result(api, start) -> None:
    process = start("app.chatty")
    request_id = api.push({"n": 1})
    api.result(request_id)
    log = process.log  # read right after the POST arrived: nothing may still sit in a buffer
    assert log.startswith("printed 1\n")
    assert re.search(rf"^\[WARNING\]\t{TIMESTAMP}\t{request_id}\twarned 1\n", log, re.M)
    assert "hidden" not in log
    assert log.endswith("via context\n")


def test_log_level_and_json_format(api, start) -> None:
    process = start("app.chatty", env={"AWS_LAMBDA_LOG_LEVEL": "INFO", "AWS_LAMBDA_LOG_FORMAT": "JSON"})
    request_id = api.push({"n": 2})
    api.result(request_id)
    records = [json.loads(line) for line in process.log.splitlines() if line.startswith("{")]
    assert [(r["level"], r["message"], r["requestId"], r["logger"]) for r in records] == [
        ("WARNING", "warned 2", request_id, "root"),
        ("INFO", "hidden unless the level allows it", request_id, "root"),
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", records[0]["timestamp"])


def test_one_connection_with_pipelined_next(api, start) -> None:
    start("app.echo")
    for n in range(3):
        api.result(api.push(n))
    nexts = [request for request in api.requests if request.path.endswith("/invocation/next")]
    assert api.connections == 1
    assert len(nexts) >= 3  # the GET after the last result may still be in flight
    assert all(request.pipelined for request in nexts[1:])


def test_rejected_oversized_response_keeps_the_runtime_serving(api, start) -> None:
    process = start("app.echo")
    api.result(api.push({"big": 1}, response_status=413))
    assert api.result(api.push({"after": 1})).json() == {"echo": {"after": 1}}
    assert process.returncode is None


def test_exits_when_the_runtime_api_goes_away(task_root) -> None:
    with FakeRuntimeApi() as fake:
        process = RuntimeProcess([PYTHON, str(BOOTSTRAP)], fake, task_root, "app.echo")
        fake.result(fake.push({}))
    try:
        assert process.wait() == 1
        assert "Lamina runtime: lost the Runtime API" in process.log
    finally:
        process.stop()


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_other_interpreters(api, start, task_root, version) -> None:
    candidates = sorted(Path(os.path.expanduser("~/.pyenv/versions")).glob(f"{version}.*/bin/python{version}"))
    if not candidates:
        pytest.skip(f"no Python {version} here")
    start("app.fail", python=str(candidates[-1]))
    request_id = api.push({})
    error = api.result(request_id).json()
    assert (error["errorType"], error["requestId"]) == ("ValueError", request_id)
    raise_line = _line('raise ValueError("bad thing")')
    assert error["stackTrace"][1] == (
        f'  File "{task_root / "app.py"}", line {raise_line}, in inner\n    raise ValueError("bad thing")\n'
    )
