"""The function control plane through boto3 and the aws CLI, with AWS's shapes and errors."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid

import boto3
import pytest
from botocore.exceptions import ClientError

from conftest import PY_RUNTIME, REGION, ROLE, zip_files
from tests.support.client_errors import error_of

HELLO = {"app.py": "def handler(event, context):\n    return {'hello': event.get('name')}\n"}


def test_create_get_update_delete_lifecycle(lambda_client, make_function):
    package = zip_files(HELLO)
    name = f"life-{uuid.uuid4().hex[:8]}"
    created = lambda_client.create_function(
        FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler", Code={"ZipFile": package},
        Timeout=5, MemorySize=256, Environment={"Variables": {"ENV_A": "1"}},
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["State"] == "Pending" and created["StateReasonCode"] == "Creating"
    assert created["FunctionArn"] == f"arn:aws:lambda:{REGION}:000000000000:function:{name}"
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(package).digest()).decode()
    assert created["CodeSize"] == len(package)
    assert created["Version"] == "$LATEST" and created["Timeout"] == 5 and created["MemorySize"] == 256
    assert created["Environment"] == {"Variables": {"ENV_A": "1"}}
    assert created["LoggingConfig"] == {"LogFormat": "Text", "LogGroup": f"/aws/lambda/{name}"}
    assert created["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]

    lambda_client.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    got = lambda_client.get_function(FunctionName=name)
    assert got["Configuration"]["State"] == "Active"
    assert got["Configuration"]["LastUpdateStatus"] == "Successful"
    with urllib.request.urlopen(got["Code"]["Location"]) as download:
        assert download.read() == package

    updated = lambda_client.update_function_configuration(FunctionName=name, Description="changed", MemorySize=512)
    assert updated["LastUpdateStatus"] == "InProgress"
    assert updated["RevisionId"] != created["RevisionId"]
    lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig={"Delay": 1})
    config = lambda_client.get_function_configuration(FunctionName=name)
    assert config["Description"] == "changed" and config["MemorySize"] == 512 and config["Timeout"] == 5

    new_package = zip_files({"app.py": "def handler(event, context):\n    return 'v2'\n"})
    code_update = lambda_client.update_function_code(FunctionName=name, ZipFile=new_package)
    assert code_update["CodeSha256"] == base64.b64encode(hashlib.sha256(new_package).digest()).decode()

    deleted = lambda_client.delete_function(FunctionName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as excinfo:
        lambda_client.get_function(FunctionName=name)
    assert error_of(excinfo) == (
        404, "ResourceNotFoundException", f"Function not found: arn:aws:lambda:{REGION}:000000000000:function:{name}"
    )


def test_every_name_form_resolves_the_same_function(lambda_client, make_function):
    name = make_function(HELLO)
    arn = f"arn:aws:lambda:{REGION}:000000000000:function:{name}"
    for reference in (name, arn, f"000000000000:function:{name}", f"{name}:$LATEST", f"{arn}:$LATEST"):
        assert lambda_client.get_function_configuration(FunctionName=reference)["FunctionName"] == name


def test_qualifier_mismatch_and_unknown_version(lambda_client, make_function):
    name = make_function(HELLO)
    with pytest.raises(ClientError) as excinfo:
        lambda_client.get_function(FunctionName=f"{name}:$LATEST", Qualifier="1")
    assert error_of(excinfo) == (
        400, "InvalidParameterValueException",
        "The derived qualifier from the function name does not match the specified qualifier.",
    )
    with pytest.raises(ClientError) as excinfo:
        lambda_client.get_function(FunctionName=name, Qualifier="7")
    assert error_of(excinfo)[:2] == (404, "ResourceNotFoundException")
    assert error_of(excinfo)[2].endswith(f"function:{name}:7")
    with pytest.raises(ClientError) as excinfo:
        lambda_client.delete_function(FunctionName=name, Qualifier="$LATEST")
    assert error_of(excinfo) == (
        400, "InvalidParameterValueException", "$LATEST version cannot be deleted without deleting the function."
    )


def test_duplicate_name_conflicts_and_keeps_the_original(lambda_client, make_function):
    name = make_function(HELLO)
    before = lambda_client.get_function_configuration(FunctionName=name)
    with pytest.raises(ClientError) as excinfo:
        lambda_client.create_function(
            FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="other.handler",
            Code={"ZipFile": zip_files({"other.py": "x = 1"})},
        )
    assert error_of(excinfo) == (409, "ResourceConflictException", f"Function already exist: {name}")
    after = lambda_client.get_function_configuration(FunctionName=name)
    before.pop("ResponseMetadata")
    after.pop("ResponseMetadata")
    assert after == before


@pytest.mark.parametrize(
    "package, message",
    [
        (b"this is not a zip", "Could not unzip uploaded file. Please check your file, then try to upload again."),
        (zip_files({"../escape.py": "x"}), None),
        (zip_files({"/etc/evil.py": "x"}), None),
    ],
)
def test_bad_packages_are_refused_without_side_effects(lambda_client, lamina, package, message):
    name = f"bad-{uuid.uuid4().hex[:8]}"
    blobs_before = set(os.listdir(lamina.data_dir / "code" / "blobs"))
    with pytest.raises(ClientError) as excinfo:
        lambda_client.create_function(
            FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler", Code={"ZipFile": package}
        )
    status, code, text = error_of(excinfo)
    assert (status, code) == (400, "InvalidParameterValueException")
    if message:
        assert text == message
    assert set(os.listdir(lamina.data_dir / "code" / "blobs")) == blobs_before
    with pytest.raises(ClientError):
        lambda_client.get_function(FunctionName=name)


def test_configuration_validation_matches_aws(unvalidated_client, make_function):
    name = make_function(HELLO)
    cases = [
        ({"MemorySize": 64}, "memorySize"),
        ({"MemorySize": 10241}, None),
        ({"Timeout": 901}, "timeout"),
        ({"Timeout": 0}, "timeout"),
    ]
    for settings, field in cases:
        with pytest.raises(ClientError) as excinfo:
            unvalidated_client.update_function_configuration(FunctionName=name, **settings)
        status, code, message = error_of(excinfo)
        assert status == 400 and code in ("ValidationException", "InvalidParameterValueException"), (settings, message)
        if field:
            assert field in message
    with pytest.raises(ClientError) as excinfo:
        unvalidated_client.update_function_configuration(
            FunctionName=name, Environment={"Variables": {"AWS_REGION": "eu-west-1"}}
        )
    status, code, message = error_of(excinfo)
    assert (status, code) == (400, "InvalidParameterValueException") and "AWS_REGION" in message
    with pytest.raises(ClientError) as excinfo:
        unvalidated_client.update_function_configuration(
            FunctionName=name, Environment={"Variables": {"BIG": "x" * 5000}}
        )
    assert "exceeded the 4KB limit" in error_of(excinfo)[2]
    assert unvalidated_client.get_function_configuration(FunctionName=name)["MemorySize"] == 128


def test_runtime_errors(unvalidated_client):
    def create(runtime: str):
        with pytest.raises(ClientError) as excinfo:
            unvalidated_client.create_function(
                FunctionName=f"rt-{uuid.uuid4().hex[:8]}", Runtime=runtime, Role=ROLE, Handler="app.handler",
                Code={"ZipFile": zip_files(HELLO)},
            )
        return error_of(excinfo)

    status, code, message = create("cobol85")
    assert (status, code) == (400, "InvalidParameterValueException")
    assert message.startswith("Value cobol85 at 'runtime' failed to satisfy constraint: Member must satisfy enum value set:")
    status, code, message = create("python3.7")
    assert message.startswith("The runtime parameter of python3.7 is no longer supported")
    status, code, message = create("java21")
    assert (status, code) == (400, "InvalidParameterValueException")
    assert "java21" in message and "not available on this Lamina host" in message


def test_bad_role_and_name(unvalidated_client):
    with pytest.raises(ClientError) as excinfo:
        unvalidated_client.create_function(
            FunctionName="ok-name", Runtime=PY_RUNTIME, Role="r1", Handler="app.handler",
            Code={"ZipFile": zip_files(HELLO)},
        )
    assert error_of(excinfo)[:2] == (400, "ValidationException")
    assert "at 'role'" in error_of(excinfo)[2]
    with pytest.raises(ClientError) as excinfo:
        unvalidated_client.get_function(FunctionName="a" * 65)
    assert error_of(excinfo) == (
        400, "ValidationException",
        "1 validation error detected: Value '" + "a" * 65 + "' at 'functionName' failed to satisfy constraint: "
        "Member must have length less than or equal to 64",
    )


def test_list_functions_paginates(lambda_client, make_function):
    names = sorted(make_function(HELLO) for _ in range(3))
    seen: list[str] = []
    paginator = lambda_client.get_paginator("list_functions")
    for page in paginator.paginate(PaginationConfig={"PageSize": 2}):
        assert len(page["Functions"]) <= 2
        seen.extend(function["FunctionName"] for function in page["Functions"])
    assert [name for name in seen if name in names] == names
    assert len(seen) == len(set(seen))


def test_account_settings_count_functions(lambda_client, make_function):
    before = lambda_client.get_account_settings()["AccountUsage"]
    make_function(HELLO)
    after = lambda_client.get_account_settings()
    assert after["AccountUsage"]["FunctionCount"] == before["FunctionCount"] + 1
    assert after["AccountUsage"]["TotalCodeSize"] > before["TotalCodeSize"]
    assert after["AccountLimit"]["CodeSizeZipped"] == 52428800


def test_functions_are_regional(lamina, make_function):
    name = make_function(HELLO)
    eu = boto3.client(
        "lambda", endpoint_url=lamina.endpoint, region_name="eu-west-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )
    with pytest.raises(ClientError) as excinfo:
        eu.get_function(FunctionName=name)
    assert f"arn:aws:lambda:eu-west-1:000000000000:function:{name}" in error_of(excinfo)[2]


def test_unknown_route_and_malformed_json_are_aws_errors(lamina):
    request = urllib.request.Request(f"{lamina.endpoint}/2015-03-31/functions", data=b"{not json", method="POST")
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(request)
    assert excinfo.value.code == 400
    assert excinfo.value.headers["x-amzn-ErrorType"] == "InvalidRequestContentException"
    assert excinfo.value.headers["x-amzn-RequestId"]
    with pytest.raises(urllib.error.HTTPError) as excinfo:
        urllib.request.urlopen(f"{lamina.endpoint}/2015-03-31/nothing-here")
    assert excinfo.value.code == 404
    assert "Traceback" not in excinfo.value.read().decode()


def test_aws_cli_round_trip(lamina, tmp_path, make_function):
    package = tmp_path / "fn.zip"
    package.write_bytes(zip_files(HELLO))
    name = f"cli-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "awscli", "--endpoint-url", lamina.endpoint, "lambda", *args],
            capture_output=True, text=True, env=env, timeout=120,
        )

    created = aws(
        "create-function", "--function-name", name, "--runtime", PY_RUNTIME, "--role", ROLE,
        "--handler", "app.handler", "--zip-file", f"fileb://{package}",
    )
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["FunctionName"] == name
    out = tmp_path / "out.json"
    invoked = aws("invoke", "--function-name", name, "--payload", '{"name": "cli"}', str(out))
    assert invoked.returncode == 0, invoked.stderr
    assert json.loads(invoked.stdout)["StatusCode"] == 200
    assert json.loads(out.read_text()) == {"hello": "cli"}
    missing = aws("get-function", "--function-name", "does-not-exist")
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
    assert aws("delete-function", "--function-name", name).returncode == 0
