"""Function URL configurations end to end through boto3: the API's shapes, messages and lifecycle.

Shapes and messages are AWS's, from shared/reference/aws-recorded (TestLambdaUrl in test_lambda_api and test_lambda).
"""
from __future__ import annotations

import re

import pytest

from conftest import PY_RUNTIME, REGION, ROLE, client_for, start_server, zip_files
from tests.support.client_errors import call_error

QUALIFIER_PATTERN = r"((?!^\d+$)^[0-9a-zA-Z-_]+$)"
NOT_FOUND = (404, "ResourceNotFoundException", "The resource you requested does not exist.")
NO_FUNCTION = (404, "ResourceNotFoundException", "Function does not exist")
MISMATCH = (400, "InvalidParameterValueException",
            "The derived qualifier from the function name does not match the specified qualifier.")


def qualifier_error(value: str) -> tuple[int, str, str]:
    return (400, "ValidationException", f"1 validation error detected: Value '{value}' at 'qualifier' failed to "
            f"satisfy constraint: Member must satisfy regular expression pattern: {QUALIFIER_PATTERN}")


def url_pattern(port: str) -> re.Pattern[str]:
    return re.compile(rf"http://[a-z0-9]{{32}}\.lambda-url\.{REGION}\.localhost:{port}/")


@pytest.fixture
def function_with_alias(lambda_client, make_function) -> str:
    name = make_function()
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    return name


def test_lifecycle_shapes_and_conflict(lambda_client, lamina, make_function) -> None:
    name = make_function()
    created = lambda_client.create_function_url_config(FunctionName=name, AuthType="NONE")
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    arn = lambda_client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    assert created["FunctionArn"] == arn
    assert url_pattern(lamina.endpoint.rsplit(":", 1)[1]).fullmatch(created["FunctionUrl"])
    # Create's answer leaves out what was not set (InvokeMode) and has no LastModifiedTime (recorded)
    assert {key for key in created if key != "ResponseMetadata"} == {"AuthType", "CreationTime", "FunctionArn",
                                                                      "FunctionUrl"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", created["CreationTime"])

    assert call_error(lambda_client.create_function_url_config, FunctionName=name, AuthType="NONE") == (
        409, "ResourceConflictException",
        f"Failed to create function url config for [functionArn = {arn}]. Error message:  "
        "FunctionUrlConfig exists for this Lambda function",
    )
    got = lambda_client.get_function_url_config(FunctionName=name)
    assert got["InvokeMode"] == "BUFFERED" and got["FunctionUrl"] == created["FunctionUrl"]
    assert got["CreationTime"] == created["CreationTime"] and "LastModifiedTime" in got

    updated = lambda_client.update_function_url_config(FunctionName=name, AuthType="AWS_IAM")
    assert updated["AuthType"] == "AWS_IAM" and "InvokeMode" not in updated and "LastModifiedTime" in updated
    streaming = lambda_client.update_function_url_config(
        FunctionName=name, InvokeMode="RESPONSE_STREAM",
        Cors={"AllowOrigins": ["https://example.com"], "AllowMethods": ["GET"], "MaxAge": 60},
    )
    assert streaming["InvokeMode"] == "RESPONSE_STREAM" and streaming["AuthType"] == "AWS_IAM"
    assert streaming["Cors"] == {"AllowOrigins": ["https://example.com"], "AllowMethods": ["GET"], "MaxAge": 60}
    assert streaming["FunctionUrl"] == created["FunctionUrl"]

    deleted = lambda_client.delete_function_url_config(FunctionName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert call_error(lambda_client.get_function_url_config, FunctionName=name) == NOT_FOUND


def test_alias_urls_listing_and_paging(lambda_client, function_with_alias) -> None:
    name = function_with_alias
    assert lambda_client.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"] == []
    plain = lambda_client.create_function_url_config(FunctionName=name, AuthType="NONE")
    aliased = lambda_client.create_function_url_config(FunctionName=name, Qualifier="live", AuthType="NONE",
                                                       InvokeMode="BUFFERED")
    assert aliased["FunctionArn"].endswith(f":function:{name}:live") and aliased["InvokeMode"] == "BUFFERED"
    assert aliased["FunctionUrl"] != plain["FunctionUrl"]
    listed = lambda_client.list_function_url_configs(FunctionName=name)["FunctionUrlConfigs"]
    assert [entry["FunctionArn"] for entry in listed] == [plain["FunctionArn"], aliased["FunctionArn"]]
    assert all(entry["InvokeMode"] == "BUFFERED" and "LastModifiedTime" in entry for entry in listed)

    first = lambda_client.list_function_url_configs(FunctionName=name, MaxItems=1)
    assert [entry["FunctionArn"] for entry in first["FunctionUrlConfigs"]] == [plain["FunctionArn"]]
    rest = lambda_client.list_function_url_configs(FunctionName=name, MaxItems=1, Marker=first["NextMarker"])
    assert [entry["FunctionArn"] for entry in rest["FunctionUrlConfigs"]] == [aliased["FunctionArn"]]
    assert "NextMarker" not in rest

    # deleting the unqualified function's URL leaves the alias's (recorded: deletion without qualifier)
    lambda_client.delete_function_url_config(FunctionName=name)
    assert lambda_client.get_function_url_config(FunctionName=name, Qualifier="live")["FunctionArn"] == \
        aliased["FunctionArn"]
    assert call_error(lambda_client.get_function_url_config, FunctionName=name) == NOT_FOUND


@pytest.mark.parametrize("operation", ["create", "get", "update", "delete"])
def test_recorded_errors(lambda_client, unvalidated_client, function_with_alias, operation) -> None:
    name = function_with_alias
    arn = lambda_client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    call = getattr(unvalidated_client, f"{operation}_function_url_config")
    extra = {"AuthType": "NONE"} if operation in ("create", "update") else {}
    missing = NO_FUNCTION if operation in ("create", "update") else NOT_FOUND
    assert call_error(call, FunctionName="no-such-function", **extra) == missing
    assert call_error(call, FunctionName=arn.replace(name, "no-such-function"), **extra) == missing
    assert call_error(call, FunctionName="no-such-function", Qualifier="1", **extra) == qualifier_error("1")
    assert call_error(call, FunctionName=name, Qualifier="1", **extra) == qualifier_error("1")
    assert call_error(call, FunctionName=name, Qualifier="$LATEST", **extra) == qualifier_error("$LATEST")
    assert call_error(call, FunctionName=name, Qualifier="nope", **extra) == missing
    assert call_error(call, FunctionName=f"{arn}:live", Qualifier="other", **extra) == MISMATCH
    if operation != "create":
        assert call_error(call, FunctionName=name, **extra) == NOT_FOUND  # no config yet


def test_invalid_invoke_mode_and_missing_auth_type(unvalidated_client, make_function) -> None:
    name = make_function()
    assert call_error(unvalidated_client.create_function_url_config, FunctionName=name, AuthType="NONE",
                      InvokeMode="UNKNOWN") == (
        400, "ValidationException", "1 validation error detected: Value 'UNKNOWN' at 'invokeMode' failed to satisfy "
        "constraint: Member must satisfy enum value set: [RESPONSE_STREAM, BUFFERED]")
    status, code, message = call_error(unvalidated_client.create_function_url_config, FunctionName=name)
    assert (status, code) == (400, "ValidationException") and "'authType'" in message


def test_list_of_missing_function(lambda_client) -> None:
    assert call_error(lambda_client.list_function_url_configs, FunctionName="no-such-function") == NO_FUNCTION


def test_wrong_region_arn(lambda_client, make_function) -> None:
    name = make_function()
    arn = lambda_client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    assert call_error(lambda_client.get_function_url_config, FunctionName=arn.replace(REGION, "eu-west-1")) == (
        404, "ResourceNotFoundException", f"Functions from 'eu-west-1' are not reachable in this region ('{REGION}')"
    )


def test_urls_survive_restart_and_go_with_their_function(tmp_path) -> None:
    server = start_server(tmp_path / "data")
    try:
        client = client_for(server.endpoint)
        client.create_function(FunctionName="kept", Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                               Code={"ZipFile": zip_files({"app.py": "def handler(e, c):\n    return e\n"})})
        created = client.create_function_url_config(FunctionName="kept", AuthType="AWS_IAM")
    finally:
        server.stop()
    server = start_server(tmp_path / "data")
    try:
        client = client_for(server.endpoint)
        got = client.get_function_url_config(FunctionName="kept")
        assert (got["FunctionUrl"].split(".")[0], got["AuthType"]) == (created["FunctionUrl"].split(".")[0],
                                                                       "AWS_IAM")
        client.delete_function(FunctionName="kept")
        client.create_function(FunctionName="kept", Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                               Code={"ZipFile": zip_files({"app.py": "def handler(e, c):\n    return e\n"})})
        assert call_error(client.get_function_url_config, FunctionName="kept") == NOT_FOUND
    finally:
        server.stop()
