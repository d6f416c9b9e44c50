"""Code and layers from S3: a Lamina server configured with an S3 endpoint (moto's standalone server here)."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
import uuid
from typing import Iterator

import pytest
from botocore.exceptions import ClientError

from conftest import PY_RUNTIME, REGION, ROLE, RunningServer, client_for, invoke_json, start_server, zip_files
from tests.support.client_errors import error_of

NO_BUCKET = (
    "Error occurred while GetObject. S3 Error Code: NoSuchBucket. S3 Error Message: The specified bucket does not exist"
)
NO_KEY = "Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist."
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def package(answer: str) -> bytes:
    return zip_files({"app.py": f"def handler(event, context):\n    return {answer!r}\n"})


@pytest.fixture(scope="module")
def s3_lamina(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Iterator[RunningServer]:
    """A Lamina server that reads S3 code from moto, signing with credentials from the standard variables."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in CREDENTIALS.items():
            patch.setenv(name, value)
        server = start_server(tmp_path_factory.mktemp("lamina-s3") / "data", "--s3-endpoint-url", moto_endpoint)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def client(s3_lamina: RunningServer):
    return client_for(s3_lamina.endpoint)


@pytest.fixture(scope="module")
def bucket(moto_endpoint: str) -> tuple[object, str]:
    s3 = client_for(moto_endpoint, "s3")
    name = f"code-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=name)
    return s3, name


def create(client, **code: str) -> tuple[str, dict]:
    name = f"s3fn-{uuid.uuid4().hex[:10]}"
    created = client.create_function(
        FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler", Code=code
    )
    return name, created


def test_create_and_update_function_code_from_s3(client, bucket):
    s3, name = bucket
    v1, v2 = package("v1"), package("v2")
    s3.put_object(Bucket=name, Key="fn/v1.zip", Body=v1)
    s3.put_object(Bucket=name, Key="fn/v2.zip", Body=v2)
    function, created = create(client, S3Bucket=name, S3Key="fn/v1.zip")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["CodeSha256"] == base64.b64encode(hashlib.sha256(v1).digest()).decode()
    assert created["CodeSize"] == len(v1)
    assert invoke_json(client, function) == "v1"
    updated = client.update_function_code(FunctionName=function, S3Bucket=name, S3Key="fn/v2.zip")
    assert updated["CodeSha256"] == base64.b64encode(hashlib.sha256(v2).digest()).decode()
    assert invoke_json(client, function) == "v2"


def test_s3_object_version_picks_that_version(client, bucket):
    s3, _ = bucket
    versioned = f"versioned-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=versioned)
    s3.put_bucket_versioning(Bucket=versioned, VersioningConfiguration={"Status": "Enabled"})
    first = s3.put_object(Bucket=versioned, Key="fn.zip", Body=package("first"))["VersionId"]
    s3.put_object(Bucket=versioned, Key="fn.zip", Body=package("second"))
    function, _ = create(client, S3Bucket=versioned, S3Key="fn.zip", S3ObjectVersion=first)
    assert invoke_json(client, function) == "first"
    client.update_function_code(FunctionName=function, S3Bucket=versioned, S3Key="fn.zip")
    assert invoke_json(client, function) == "second"


def test_missing_bucket_or_key_gives_aws_errors(client, bucket):
    s3, name = bucket
    s3.put_object(Bucket=name, Key="ok.zip", Body=package("ok"))
    function, _ = create(client, S3Bucket=name, S3Key="ok.zip")
    for code, message in (
        ({"S3Bucket": f"missing-{uuid.uuid4().hex[:8]}", "S3Key": "ok.zip"}, NO_BUCKET),
        ({"S3Bucket": name, "S3Key": "missing.zip"}, NO_KEY),
    ):
        with pytest.raises(ClientError) as excinfo:
            create(client, **code)
        assert error_of(excinfo) == (400, "InvalidParameterValueException", message)
        assert excinfo.value.response["Type"] == "User" and excinfo.value.response["message"] == message
        with pytest.raises(ClientError) as excinfo:
            client.update_function_code(FunctionName=function, **code)
        assert error_of(excinfo) == (400, "InvalidParameterValueException", message)
        with pytest.raises(ClientError) as excinfo:
            client.publish_layer_version(LayerName="from-s3", Content=code)
        assert error_of(excinfo) == (400, "InvalidParameterValueException", message)
    assert invoke_json(client, function) == "ok"  # failed updates changed nothing


def test_layer_from_s3(client, bucket):
    s3, name = bucket
    layer_zip = zip_files({"python/s3_layer_mod.py": "WHO = 's3 layer'\n"})
    s3.put_object(Bucket=name, Key="layers/lib.zip", Body=layer_zip)
    layer = client.publish_layer_version(LayerName=f"s3-{uuid.uuid4().hex[:8]}",
                                         Content={"S3Bucket": name, "S3Key": "layers/lib.zip"})
    assert layer["ResponseMetadata"]["HTTPStatusCode"] == 201 and layer["Version"] == 1
    assert layer["Content"]["CodeSha256"] == base64.b64encode(hashlib.sha256(layer_zip).digest()).decode()
    assert "CompatibleRuntimes" not in layer and "CompatibleArchitectures" not in layer  # recorded from AWS
    code = zip_files({"app.py": "import s3_layer_mod\ndef handler(event, context):\n    return s3_layer_mod.WHO\n"})
    s3.put_object(Bucket=name, Key="fn/uses-layer.zip", Body=code)
    function = f"s3fn-{uuid.uuid4().hex[:10]}"
    client.create_function(FunctionName=function, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                           Code={"S3Bucket": name, "S3Key": "fn/uses-layer.zip"}, Layers=[layer["LayerVersionArn"]])
    assert invoke_json(client, function) == "s3 layer"


def test_aws_cli_updates_code_from_s3(s3_lamina, client, bucket):
    s3, name = bucket
    s3.put_object(Bucket=name, Key="cli/v1.zip", Body=package("cli v1"))
    s3.put_object(Bucket=name, Key="cli/v2.zip", Body=package("cli v2"))
    function, _ = create(client, S3Bucket=name, S3Key="cli/v1.zip")
    env = {**os.environ, **CREDENTIALS, "AWS_DEFAULT_REGION": REGION}
    updated = subprocess.run(
        [sys.executable, "-m", "awscli", "--endpoint-url", s3_lamina.endpoint, "lambda", "update-function-code",
         "--function-name", function, "--s3-bucket", name, "--s3-key", "cli/v2.zip"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert updated.returncode == 0, updated.stderr
    assert json.loads(updated.stdout)["CodeSize"] == len(package("cli v2"))
    assert invoke_json(client, function) == "cli v2"


def test_a_server_without_moto_endpoint_says_so(lambda_client):
    with pytest.raises(ClientError) as excinfo:
        lambda_client.create_function(FunctionName=f"s3fn-{uuid.uuid4().hex[:10]}", Runtime=PY_RUNTIME, Role=ROLE,
                                      Handler="app.handler", Code={"S3Bucket": "bucket", "S3Key": "key.zip"})
    status, code, message = error_of(excinfo)
    assert (status, code) == (400, "InvalidParameterValueException") and "--s3-endpoint-url" in message

