"""The real AWS runtime interface clients, unmodified, run inside Lamina (the runtime contract is AWS's)."""
from __future__ import annotations

import json

import pytest

from tests.support.ric_builds import (
    awslambdaric_site,
    node_ric_entry,
    node_ric_modules,
    system_python_version,
    zip_dir,
)

PYTHON_APP = b"""
import logging
logging.getLogger().setLevel(logging.INFO)

def handler(event, context):
    logging.info("handled %s", context.aws_request_id)
    if event.get("fail"):
        raise RuntimeError("ric failure")
    return {"ric": "awslambdaric", "event": event, "arn": context.invoked_function_arn,
            "remaining_ok": context.get_remaining_time_in_millis() > 0}
"""
PYTHON_BOOTSTRAP = b"""#!/bin/sh
export PYTHONPATH="$LAMBDA_TASK_ROOT"
exec /usr/bin/python3 -m awslambdaric "$_HANDLER"
"""
NODE_APP = b"""
export const handler = async (event, context) => {
  if (event.fail) { throw new Error("node ric failure"); }
  return { ric: "aws-lambda-ric", event, requestId: context.awsRequestId };
};
"""


def _create(lambda_client, make_function, package: bytes) -> str:
    name = make_function({"placeholder.txt": "x"}, handler="app.handler", runtime="provided.al2023", Timeout=30)
    lambda_client.update_function_code(FunctionName=name, ZipFile=package)
    return name


def _invoke(lambda_client, name: str, payload: dict) -> tuple[dict, dict]:
    response = lambda_client.invoke(FunctionName=name, Payload=json.dumps(payload), LogType="Tail")
    return response, json.loads(response["Payload"].read())


@pytest.fixture(scope="module")
def awslambdaric_package() -> bytes:
    site = awslambdaric_site(system_python_version())
    return zip_dir(site, {"bootstrap": (PYTHON_BOOTSTRAP, 0o755), "app.py": (PYTHON_APP, 0o644)})


@pytest.fixture(scope="module")
def node_ric_package() -> bytes:
    app_root = node_ric_modules()
    entry = node_ric_entry(app_root)
    bootstrap = f'#!/bin/sh\ncd "$LAMBDA_TASK_ROOT"\nexec /usr/bin/node {entry} "$_HANDLER"\n'.encode()
    return zip_dir(app_root, {"bootstrap": (bootstrap, 0o755), "app.mjs": (NODE_APP, 0o644)})


def test_real_awslambdaric(lambda_client, make_function, awslambdaric_package):
    name = _create(lambda_client, make_function, awslambdaric_package)
    response, result = _invoke(lambda_client, name, {"n": 1})
    assert "FunctionError" not in response, result
    assert result["ric"] == "awslambdaric" and result["event"] == {"n": 1} and result["remaining_ok"]
    assert result["arn"].endswith(f":function:{name}")
    response, result = _invoke(lambda_client, name, {"fail": True})
    assert response["FunctionError"] == "Unhandled"
    assert result["errorType"] == "RuntimeError" and result["errorMessage"] == "ric failure"
    assert result["requestId"] == response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    response, result = _invoke(lambda_client, name, {"n": 2})
    assert result["event"] == {"n": 2}


def test_real_node_aws_lambda_ric(lambda_client, make_function, node_ric_package):
    name = _create(lambda_client, make_function, node_ric_package)
    response, result = _invoke(lambda_client, name, {"n": 1})
    assert "FunctionError" not in response, result
    assert result["ric"] == "aws-lambda-ric" and result["event"] == {"n": 1}
    assert result["requestId"] == response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    response, result = _invoke(lambda_client, name, {"fail": True})
    assert response["FunctionError"] == "Unhandled"
    assert result["errorType"] == "Error" and result["errorMessage"] == "node ric failure"
    response, result = _invoke(lambda_client, name, {"n": 3})
    assert "FunctionError" not in response and result["event"] == {"n": 3}


NODE_STREAMING_APP = b"""
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.setContentType("text/plain");
  responseStream.write("first,");
  await sleep(1000);
  if (event.fail) { throw new Error("ric stream failure"); }
  responseStream.write("second");
  responseStream.end();
});
"""


@pytest.fixture(scope="module")
def node_ric_streaming_package() -> bytes:
    app_root = node_ric_modules()
    entry = node_ric_entry(app_root)
    bootstrap = f'#!/bin/sh\ncd "$LAMBDA_TASK_ROOT"\nexec /usr/bin/node {entry} "$_HANDLER"\n'.encode()
    return zip_dir(app_root, {"bootstrap": (bootstrap, 0o755), "app.mjs": (NODE_STREAMING_APP, 0o644)})


def _stream(lambda_client, name: str, payload: dict) -> tuple[dict, list[tuple[float, dict]]]:
    import time

    started = time.monotonic()
    response = lambda_client.invoke_with_response_stream(FunctionName=name, Payload=json.dumps(payload))
    return response, [(time.monotonic() - started, event) for event in response["EventStream"]]


def test_real_node_aws_lambda_ric_streams_responses(lambda_client, make_function, node_ric_streaming_package):
    """aws-lambda-ric's own streamifyResponse (its chunked http.request and error trailers) through Lamina."""
    name = _create(lambda_client, make_function, node_ric_streaming_package)
    response, events = _stream(lambda_client, name, {})
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-remapped-content-type"] == "text/plain"
    pieces = [(at, event["PayloadChunk"]["Payload"]) for at, event in events if "PayloadChunk" in event]
    assert b"".join(piece for _, piece in pieces) == b"first,second"
    assert events[-1][1] == {"InvokeComplete": {}}
    assert pieces[0][0] < events[-1][0] - 0.6, events
    response, events = _stream(lambda_client, name, {"fail": True})
    complete = events[-1][1]["InvokeComplete"]
    assert complete["ErrorCode"] == "Error" and complete["ErrorDetails"] == "ric stream failure"
    response = lambda_client.invoke(FunctionName=name, Payload=b"{}")
    assert "FunctionError" not in response and response["Payload"].read() == b"first,second"
