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
