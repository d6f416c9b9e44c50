"""Lamina's Python bootstrap, run as a real process against a fake Runtime API; formats follow awslambdaric 4.2.2.

What both bootstraps do alike is in test_runtime_contract.py; this module holds what is Python's own.
"""
from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import pytest

from tests.support.bootstraps import PYTHON, TIMESTAMP, Bootstrap, api, start, task_root  # noqa: F401 (fixtures)


@pytest.fixture
def runtime() -> Bootstrap:
    return PYTHON


def test_bytes_result_is_sent_raw(api, start) -> None:
    start("app.raw")
    posted = api.result(api.push({}))
    assert (posted.body, posted.headers["content-type"]) == (b"\x00raw", "application/unknown")


def test_decimals_and_bytes_are_encoded_like_simplejson(api, start) -> None:
    start("app.numbers")
    assert api.result(api.push({})).body == b'{"d": 1.10, "big": 12345678901234567890.5, "b": "bytes"}'


def test_invalid_json_event_is_an_unmarshal_error(api, start) -> None:
    start("app.echo")
    posted = api.result(api.push(raw=b"not json"))
    assert posted.json()["errorType"] == "Runtime.UnmarshalError"
    assert posted.json()["errorMessage"] == "Unable to unmarshal input: Expecting value: line 1 column 1 (char 0)"


def test_non_json_content_type_passes_the_raw_bytes(api, start) -> None:
    start("app.kind")
    assert api.result(api.push(raw=b"plain", content_type="text/plain")).json() == ["bytes", "plain"]
    assert api.result(api.push({"a": 1})).json() == ["dict", {"a": 1}]


def test_client_context_and_identity(api, start) -> None:
    start("app.extras")
    assert api.result(api.push({})).json() == {"identity": [None, None], "client_context": None, "w3c": {}}
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
    outer, inner = PYTHON.line("app.py", "inner()"), PYTHON.line("app.py", 'raise ValueError("bad thing")')
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


@pytest.mark.parametrize(
    ("handler", "error_type"),
    [("nomod.handler", "Runtime.ImportModuleError"), ("broken.handler", "Runtime.UserCodeSyntaxError")],
)
def test_init_error_report_and_log(api, start, task_root, handler, error_type) -> None:
    """The contract suite checks every init error's type and message; here, the rest of Python's report."""
    process = start(handler)
    body = api.init_error().json()
    assert (body["errorType"], body["requestId"]) == (error_type, "")
    if error_type == "Runtime.UserCodeSyntaxError":
        assert body["stackTrace"] == [f'  File "{task_root / "broken.py"}" Line 2\n        x = = 1\n']
    else:
        assert body["stackTrace"] == []
    assert process.wait() == 1
    log = process.log
    assert re.search(rf"\[WARNING\]\t{TIMESTAMP}\t\tLAMBDA_WARNING: Unhandled exception\.", log)
    assert f"[ERROR] {error_type}: {body['errorMessage']}\rTraceback (most recent call last):" in log


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


def test_dotted_handler_path_names_packages(api, start) -> None:
    start("pkg.sub.mod.fn")
    assert api.result(api.push(7)).json() == ["nested", 7]


def test_sys_path_puts_function_code_and_layers_first(api, start, task_root) -> None:
    start("app.paths")
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    path = api.result(api.push({})).json()
    assert path[:4] == [
        str(task_root),
        f"/opt/python/lib/python{version}/site-packages",
        "/opt/python",
        str(PYTHON.script.parent.parent),
    ]
    assert str(PYTHON.script.parent) not in path


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


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_other_interpreters(api, start, task_root, version) -> None:
    candidates = sorted(Path(os.path.expanduser("~/.pyenv/versions")).glob(f"{version}.*/bin/python{version}"))
    if not candidates:
        pytest.skip(f"no Python {version} here")
    start("app.fail", interpreter=str(candidates[-1]))
    request_id = api.push({})
    error = api.result(request_id).json()
    assert (error["errorType"], error["requestId"]) == ("ValueError", request_id)
    raise_line = PYTHON.line("app.py", 'raise ValueError("bad thing")')
    assert error["stackTrace"][1] == (
        f'  File "{task_root / "app.py"}", line {raise_line}, in inner\n    raise ValueError("bad thing")\n'
    )
