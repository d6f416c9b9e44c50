"""Synchronous invoke through boto3 against real execution environments: success and every failure path."""
from __future__ import annotations

import base64
import json
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.exceptions import ClientError

from conftest import PY_RUNTIME, REGION, zip_files
from lamina.runtimes.registry import discover_pythons

CONTEXT_HANDLER = """
import os

def handler(event, context):
    return {
        "event": event,
        "request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "arn": context.invoked_function_arn,
        "memory": context.memory_limit_in_mb,
        "remaining": context.get_remaining_time_in_millis(),
        "log_group": context.log_group_name,
        "log_stream": context.log_stream_name,
        "client_context": context.client_context.custom if context.client_context else None,
        "env": {k: os.environ.get(k) for k in (
            "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
            "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME", "AWS_REGION", "AWS_DEFAULT_REGION",
            "AWS_EXECUTION_ENV", "AWS_LAMBDA_INITIALIZATION_TYPE", "_HANDLER", "LAMBDA_TASK_ROOT",
            "LAMBDA_RUNTIME_DIR", "TZ", "LANG", "PATH", "LD_LIBRARY_PATH", "USER_VAR", "_X_AMZN_TRACE_ID")},
        "cwd": os.getcwd(),
        "uid": os.getuid(),
    }
"""


def invoke(client, name: str, payload: object = None, **kwargs: object) -> tuple[dict, object]:
    response = client.invoke(FunctionName=name, Payload=json.dumps(payload if payload is not None else {}), **kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def test_python_success_with_context_and_environment(lambda_client, make_function):
    name = make_function(code=CONTEXT_HANDLER, Environment={"Variables": {"USER_VAR": "mine"}}, Timeout=7)
    context = base64.b64encode(json.dumps({"custom": {"k": "v"}}).encode()).decode()
    response, result = invoke(lambda_client, name, {"x": 1}, ClientContext=context)
    assert response["StatusCode"] == 200
    assert "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert result["event"] == {"x": 1}
    assert result["request_id"] == response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert result["function_name"] == name and result["function_version"] == "$LATEST"
    assert result["arn"] == f"arn:aws:lambda:{REGION}:000000000000:function:{name}"
    assert result["memory"] == "128"
    assert 5000 < result["remaining"] <= 7000
    assert result["log_group"] == f"/aws/lambda/{name}"
    assert "[$LATEST]" in result["log_stream"]
    assert result["client_context"] == {"k": "v"}
    env = result["env"]
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name and env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == REGION
    assert env["AWS_EXECUTION_ENV"] == f"AWS_Lambda_{PY_RUNTIME}"
    assert env["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert env["_HANDLER"] == "app.handler" and env["LAMBDA_TASK_ROOT"] == "/var/task"
    assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime" and env["TZ"] == ":UTC" and env["LANG"] == "en_US.UTF-8"
    assert env["PATH"].startswith("/var/lang/bin") and "/opt/lib" in env["LD_LIBRARY_PATH"]
    assert env["USER_VAR"] == "mine"
    assert env["_X_AMZN_TRACE_ID"].startswith("Root=1-")
    assert result["cwd"] == "/var/task"
    assert result["uid"] != 0


def test_qualified_invoke_passes_the_arn_as_called(lambda_client, make_function):
    name = make_function(code=CONTEXT_HANDLER)
    response, result = invoke(lambda_client, name, Qualifier="$LATEST")
    assert result["arn"] == f"arn:aws:lambda:{REGION}:000000000000:function:{name}:$LATEST"
    assert response["ExecutedVersion"] == "$LATEST"


def test_handler_error_is_200_unhandled(lambda_client, make_function):
    name = make_function(code="def handler(event, context):\n    raise ValueError('bad thing')\n")
    response, result = invoke(lambda_client, name)
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert result["errorType"] == "ValueError" and result["errorMessage"] == "bad thing"
    assert result["requestId"] == response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert any("raise ValueError" in frame for frame in result["stackTrace"])
    second, _ = invoke(lambda_client, name)
    assert second["FunctionError"] == "Unhandled"


@pytest.mark.parametrize(
    "files, handler, error_type",
    [
        ({"app.py": "def handler(e, c):\n    return 1\n"}, "missing.handler", "Runtime.ImportModuleError"),
        ({"app.py": "def other(e, c):\n    return 1\n"}, "app.handler", "Runtime.HandlerNotFound"),
        ({"app.py": "def handler(e, c)\n    return 1\n"}, "app.handler", "Runtime.UserCodeSyntaxError"),
    ],
)
def test_init_errors(lambda_client, make_function, files, handler, error_type):
    name = make_function(files, handler=handler)
    for _ in range(2):
        response, result = invoke(lambda_client, name)
        assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
        assert result["errorType"] == error_type


def test_warm_environment_keeps_globals_and_tmp(lambda_client, make_function):
    code = """
import os
count = 0
def handler(event, context):
    global count
    count += 1
    with open('/tmp/marker', 'a') as f:
        f.write('x')
    return {"count": count, "tmp": len(open('/tmp/marker').read()), "pid": os.getpid()}
"""
    name = make_function(code=code)
    results = [invoke(lambda_client, name)[1] for _ in range(3)]
    assert [r["count"] for r in results] == [1, 2, 3]
    assert [r["tmp"] for r in results] == [1, 2, 3]


def test_concurrent_invokes_run_in_parallel_environments(lambda_client, make_function):
    code = "import os, time\ndef handler(event, context):\n    time.sleep(1)\n    return os.environ['AWS_LAMBDA_LOG_STREAM_NAME']\n"
    name = make_function(code=code)
    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        streams = list(pool.map(lambda _: invoke(lambda_client, name)[1], range(4)))
    elapsed = time.monotonic() - started
    assert len(set(streams)) == 4
    assert elapsed < 3.5, elapsed


def test_update_is_seen_by_the_next_invoke(lambda_client, make_function):
    name = make_function(code="def handler(e, c):\n    return 'v1'\n")
    assert invoke(lambda_client, name)[1] == "v1"
    lambda_client.update_function_code(
        FunctionName=name, ZipFile=zip_files({"app.py": "def handler(e, c):\n    return 'v2'\n"})
    )
    assert invoke(lambda_client, name)[1] == "v2"
    lambda_client.update_function_configuration(FunctionName=name, Environment={"Variables": {"VAR_V": "3"}})
    lambda_client.update_function_code(
        FunctionName=name, ZipFile=zip_files({"app.py": "import os\ndef handler(e, c):\n    return os.environ['VAR_V']\n"})
    )
    assert invoke(lambda_client, name)[1] == "3"


def test_timeout_kills_the_environment_and_recovers(lambda_client, make_function):
    code = """
import time
def handler(event, context):
    if event.get("sleep"):
        time.sleep(30)
    return "ok"
"""
    name = make_function(code=code, Timeout=1)
    started = time.monotonic()
    response, result = invoke(lambda_client, name, {"sleep": True})
    assert time.monotonic() - started < 5
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert result == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after 1.00 seconds",
    }
    assert invoke(lambda_client, name)[1] == "ok"


@pytest.mark.parametrize(
    "body, message",
    [
        ("import os\ndef handler(e, c):\n    os._exit(3)\n", "Runtime exited with error: exit status 3"),
        ("import sys\ndef handler(e, c):\n    sys.exit(0)\n", "Runtime exited without providing a reason"),
        ("import os, signal\ndef handler(e, c):\n    os.kill(os.getpid(), signal.SIGKILL)\n",
         "Runtime exited with error: signal: killed"),
    ],
)
def test_runtime_exit(lambda_client, make_function, body, message):
    name = make_function(code=body + "\ndef ok(e, c):\n    return 'fine'\n")
    response, result = invoke(lambda_client, name)
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    assert response["FunctionError"] == "Unhandled"
    assert result == {"errorType": "Runtime.ExitError", "errorMessage": f"RequestId: {request_id} Error: {message}"}
    lambda_client.update_function_configuration(FunctionName=name, Handler="app.ok")
    assert invoke(lambda_client, name)[1] == "fine"


def test_memory_limit_kills_with_signal_killed(lambda_client, make_function):
    code = """
def handler(event, context):
    if event.get("hog"):
        blocks = []
        while True:
            blocks.append(bytearray(16 * 1024 * 1024))
    return "alive"
"""
    name = make_function(code=code, MemorySize=128)
    response, result = invoke(lambda_client, name, {"hog": True})
    assert response["FunctionError"] == "Unhandled"
    assert result["errorType"] == "Runtime.ExitError"
    assert result["errorMessage"].endswith("Runtime exited with error: signal: killed")
    assert invoke(lambda_client, name)[1] == "alive"


def test_response_too_large(lambda_client, make_function):
    name = make_function(code="def handler(e, c):\n    return 'x' * (7 * 1024 * 1024) if e.get('big') else 'small'\n")
    response, result = invoke(lambda_client, name, {"big": True})
    assert response["FunctionError"] == "Unhandled"
    assert result == {
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
        "errorType": "Function.ResponseSizeTooLarge",
    }
    assert invoke(lambda_client, name)[1] == "small"


def test_request_payload_limits_and_json(lambda_client, make_function):
    name = make_function()
    with pytest.raises(ClientError) as excinfo:
        lambda_client.invoke(FunctionName=name, Payload=b'"' + b"x" * 6291456 + b'"')
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert excinfo.value.response["Error"]["Code"] == "RequestTooLargeException"
    with pytest.raises(ClientError) as excinfo:
        lambda_client.invoke(FunctionName=name, Payload=b"{not json")
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert excinfo.value.response["Error"]["Code"] == "InvalidRequestContentException"
    assert excinfo.value.response["Error"]["Message"].startswith("Could not parse request body into json")


def test_dry_run_and_unknown_function(lambda_client, make_function):
    name = make_function()
    response = lambda_client.invoke(FunctionName=name, InvocationType="DryRun")
    assert response["StatusCode"] == 204
    with pytest.raises(ClientError) as excinfo:
        lambda_client.invoke(FunctionName="doesnotexist")
    error = excinfo.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["Error"]["Message"] == f"Function not found: arn:aws:lambda:{REGION}:000000000000:function:doesnotexist"


def test_log_tail_has_aws_framing(lambda_client, make_function):
    name = make_function(code="def handler(e, c):\n    print('hello from the function')\n    return 1\n")
    response = lambda_client.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
    tail = base64.b64decode(response["LogResult"]).decode()
    request_id = response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    lines = tail.splitlines()
    assert lines[0] == f"START RequestId: {request_id} Version: $LATEST"
    assert "hello from the function" in lines
    assert lines[-2] == f"END RequestId: {request_id}"
    assert lines[-1].startswith(f"REPORT RequestId: {request_id}\tDuration: ")
    assert "\tMemory Size: 128 MB\tMax Memory Used: " in lines[-1] and "Init Duration: " in lines[-1]
    warm = lambda_client.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
    assert "Init Duration" not in base64.b64decode(warm["LogResult"]).decode()


def test_node_function(lambda_client, make_function):
    code = "exports.handler = async (event, context) => ({got: event, name: context.functionName, mem: context.memoryLimitInMB});\n"
    name = make_function({"index.js": code}, handler="index.handler", runtime=node_runtime())
    response, result = invoke(lambda_client, name, {"a": 1})
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert result == {"got": {"a": 1}, "name": name, "mem": "128"}
    failing = make_function(
        {"index.mjs": "export const handler = async () => { throw new TypeError('nope'); };\n"},
        handler="index.handler", runtime=node_runtime(),
    )
    response, result = invoke(lambda_client, failing)
    assert response["FunctionError"] == "Unhandled"
    assert result["errorType"] == "TypeError" and result["errorMessage"] == "nope"
    assert isinstance(result["trace"], list)


def test_provided_runtime_with_shell_bootstrap(lambda_client, make_function):
    bootstrap = """#!/usr/bin/env python3
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation"
while True:
    with urllib.request.urlopen(api + "/next") as event:
        request_id = event.headers["Lambda-Runtime-Aws-Request-Id"]
        body = json.loads(event.read())
    answer = json.dumps({"echo": body}).encode()
    urllib.request.urlopen(urllib.request.Request(api + "/" + request_id + "/response", data=answer, method="POST"))
"""
    name = make_function({"bootstrap": (bootstrap, 0o755)}, handler="unused", runtime="provided.al2023")
    response, result = invoke(lambda_client, name, {"v": 5})
    assert response["StatusCode"] == 200 and "FunctionError" not in response, result
    assert result == {"echo": {"v": 5}}
    missing = make_function({"readme.txt": "no bootstrap"}, handler="unused", runtime="provided.al2023")
    response, result = invoke(lambda_client, missing)
    assert response["FunctionError"] == "Unhandled"
    assert result["errorType"] == "Runtime.InvalidEntrypoint"


def node_runtime() -> str:
    import subprocess

    major = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip().lstrip("v").split(".")[0]
    return f"nodejs{major}.x"


def test_request_ids_are_unique(lambda_client, make_function):
    name = make_function(code="def handler(e, c):\n    return c.aws_request_id\n")
    ids = {invoke(lambda_client, name)[1] for _ in range(5)}
    assert len(ids) == 5 and all(uuid.UUID(i) for i in ids)


@pytest.mark.parametrize("version", sorted(discover_pythons()))
def test_every_host_python_is_a_runtime(lambda_client, make_function, version):
    code = "import sys\ndef handler(e, c):\n    return '%d.%d' % sys.version_info[:2]\n"
    name = make_function(code=code, runtime=f"python{version}")
    response, result = invoke(lambda_client, name)
    assert "FunctionError" not in response, result
    assert result == version


def test_tag_changes_keep_environments_warm_and_code_changes_do_not(lambda_client, make_function):
    name = make_function(code="def handler(e, c):\n    return 1\n")
    arn = lambda_client.get_function_configuration(FunctionName=name)["FunctionArn"]

    def cold() -> bool:
        response = lambda_client.invoke(FunctionName=name, LogType="Tail", Payload=b"{}")
        return "Init Duration" in base64.b64decode(response["LogResult"]).decode()

    assert cold()
    lambda_client.tag_resource(Resource=arn, Tags={"team": "lamina"})
    assert not cold()
    lambda_client.update_function_configuration(FunctionName=name, Description="new description")
    assert cold()
