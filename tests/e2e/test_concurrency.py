"""Concurrency controls end to end: reserved and account limits, throttling, leases, provisioned concurrency."""
from __future__ import annotations

import json
import threading
import time
from typing import Callable

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from conftest import PY_RUNTIME, REGION, ROLE, client_for, start_server, zip_files
from tests.support.client_errors import error_response

#: One handler for every behaviour the tests need, chosen by the event.
BEHAVIOUR_HANDLER = """
import os, time

def handler(event, context):
    mode = event.get("mode", "ok")
    if mode == "sleep":
        time.sleep(event["seconds"])
    elif mode == "error":
        raise ValueError("boom")
    elif mode == "crash":
        os._exit(3)
    return {"init": os.environ["AWS_LAMBDA_INITIALIZATION_TYPE"], "version": context.function_version,
            "pid": os.getpid()}
"""
THROTTLE_BODY = {"Type": "User", "message": "Rate Exceeded."}


def invoke(client, name: str, event: dict | None = None, **kwargs: object) -> dict:
    response = client.invoke(FunctionName=name, Payload=json.dumps(event or {}), **kwargs)
    response["Body"] = json.loads(response["Payload"].read())
    return response


def throttle_of(client, name: str, **kwargs: object) -> dict:
    with pytest.raises(ClientError) as caught:
        client.invoke(FunctionName=name, Payload=b"{}", **kwargs)
    return caught.value.response


def assert_throttled(response: dict, reason: str) -> None:
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 429
    assert response["Error"] == {"Code": "TooManyRequestsException", "Message": "Rate Exceeded."}
    assert response["Reason"] == reason
    assert {key: response[key] for key in THROTTLE_BODY} == THROTTLE_BODY
    assert response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"


def in_background(call: Callable[[], object]) -> tuple[threading.Thread, list]:
    """Run `call` in a thread; the list receives its result or exception."""
    outcome: list = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as error:  # noqa: BLE001 - the test inspects it
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


#: Enough for a warm environment to have started a background invocation that then sleeps for seconds.
SETTLE_SECONDS = 0.5


# -- reserved concurrency: the API ----------------------------------------------------------------------------------
def test_reserved_concurrency_crud_and_get_function(lambda_client, make_function):
    name = make_function(code=BEHAVIOUR_HANDLER)
    response = lambda_client.get_function_concurrency(FunctionName=name)
    assert "ReservedConcurrentExecutions" not in response
    assert "Concurrency" not in lambda_client.get_function(FunctionName=name)

    assert lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=3)[
        "ReservedConcurrentExecutions"
    ] == 3
    assert lambda_client.get_function_concurrency(FunctionName=name)["ReservedConcurrentExecutions"] == 3
    assert lambda_client.get_function(FunctionName=name)["Concurrency"] == {"ReservedConcurrentExecutions": 3}

    deleted = lambda_client.delete_function_concurrency(FunctionName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert "ReservedConcurrentExecutions" not in lambda_client.get_function_concurrency(FunctionName=name)
    assert "Concurrency" not in lambda_client.get_function(FunctionName=name)


def test_reserved_concurrency_errors(lambda_client, unvalidated_client, make_function):
    name = make_function(code=BEHAVIOUR_HANDLER)
    arn = f"arn:aws:lambda:{REGION}:000000000000:function"
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as caught:
        lambda_client.put_function_concurrency(FunctionName="doesnotexist", ReservedConcurrentExecutions=0)
    assert caught.value.response["Message"] == f"Function not found: {arn}:doesnotexist:$LATEST"
    with pytest.raises(lambda_client.exceptions.ResourceNotFoundException) as caught:
        lambda_client.get_function_concurrency(FunctionName="doesnotexist")
    assert caught.value.response["Message"] == f"Function not found: {arn}:doesnotexist"
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as caught:
        lambda_client.put_function_concurrency(FunctionName=f"{arn}:{name}:$LATEST", ReservedConcurrentExecutions=0)
    assert caught.value.response["message"].startswith("This operation is permitted on Lambda functions only.")
    assert caught.value.response["Type"] == "User"
    with pytest.raises(ClientError) as caught:
        unvalidated_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=-1)
    assert caught.value.response["Error"]["Code"] == "ValidationException"
    assert caught.value.response["Error"]["Message"] == (
        "1 validation error detected: Value '-1' at 'reservedConcurrentExecutions' failed to satisfy constraint: "
        "Member must have value greater than or equal to 0"
    )


def test_account_keeps_100_unreserved(lambda_client, make_function):
    first, second = make_function(code=BEHAVIOUR_HANDLER), make_function(code=BEHAVIOUR_HANDLER)
    limit = lambda_client.get_account_settings()["AccountLimit"]
    assert limit["ConcurrentExecutions"] == 1000
    unreserved = limit["UnreservedConcurrentExecutions"]
    too_many = unreserved - 100 + 1
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as caught:
        lambda_client.put_function_concurrency(FunctionName=first, ReservedConcurrentExecutions=too_many)
    assert caught.value.response["message"] == (
        "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution "
        "below its minimum value of [100]."
    )
    assert "Type" not in caught.value.response  # recorded: AWS omits it on this error

    lambda_client.put_function_concurrency(FunctionName=first, ReservedConcurrentExecutions=unreserved - 110)
    assert lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == 110
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException):
        lambda_client.put_function_concurrency(FunctionName=second, ReservedConcurrentExecutions=11)
    # Replacing a function's own reservation counts only the difference.
    lambda_client.put_function_concurrency(FunctionName=first, ReservedConcurrentExecutions=unreserved - 100)
    lambda_client.delete_function_concurrency(FunctionName=first)
    lambda_client.put_function_concurrency(FunctionName=second, ReservedConcurrentExecutions=7)
    assert lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == unreserved - 7
    lambda_client.delete_function(FunctionName=second)
    assert lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == unreserved


# -- throttling ----------------------------------------------------------------------------------------------------
def test_reserved_zero_stops_every_invocation(lambda_client, make_function):
    name = make_function(code=BEHAVIOUR_HANDLER)
    assert invoke(lambda_client, name)["StatusCode"] == 200
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    assert_throttled(throttle_of(lambda_client, name), "ReservedFunctionConcurrentInvocationLimitExceeded")
    assert_throttled(throttle_of(lambda_client, name, Qualifier="$LATEST"), "ReservedFunctionConcurrentInvocationLimitExceeded")
    lambda_client.delete_function_concurrency(FunctionName=name)
    assert invoke(lambda_client, name)["StatusCode"] == 200


def test_reserved_limit_throttles_while_busy_and_frees_after(lambda_client, make_function):
    name = make_function(code=BEHAVIOUR_HANDLER, Timeout=10)
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    invoke(lambda_client, name)  # warm
    thread, outcome = in_background(lambda: invoke(lambda_client, name, {"mode": "sleep", "seconds": 2}))
    time.sleep(SETTLE_SECONDS)
    assert_throttled(throttle_of(lambda_client, name), "ReservedFunctionConcurrentInvocationLimitExceeded")
    thread.join()
    assert outcome[0]["StatusCode"] == 200
    assert invoke(lambda_client, name)["StatusCode"] == 200


@pytest.mark.parametrize(
    "event, error_type",
    [
        ({"mode": "error"}, "ValueError"),
        ({"mode": "crash"}, "Runtime.ExitError"),
        ({"mode": "sleep", "seconds": 30}, "Sandbox.Timedout"),
    ],
    ids=["function-error", "crash", "timeout"],
)
def test_lease_is_released_after_a_failed_invocation(lambda_client, make_function, event, error_type):
    name = make_function(code=BEHAVIOUR_HANDLER, Timeout=1)
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    failed = invoke(lambda_client, name, event)
    assert failed["FunctionError"] == "Unhandled"
    assert failed["Body"]["errorType"] == error_type
    assert invoke(lambda_client, name)["StatusCode"] == 200  # at the limit again: the slot came back


def test_lease_is_released_after_the_client_goes_away(lamina, lambda_client, make_function):
    name = make_function(code=BEHAVIOUR_HANDLER, Timeout=10)
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    invoke(lambda_client, name)  # warm
    impatient = boto3.client(
        "lambda",
        endpoint_url=lamina.endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}, read_timeout=0.5),
    )
    with pytest.raises(ReadTimeoutError):
        impatient.invoke(FunctionName=name, Payload=json.dumps({"mode": "sleep", "seconds": 2}))
    # The invocation still runs (as on AWS) and holds the slot until it ends; then the slot is free again.
    assert_throttled(throttle_of(lambda_client, name), "ReservedFunctionConcurrentInvocationLimitExceeded")
    deadline = time.monotonic() + 10
    while True:
        try:
            assert invoke(lambda_client, name)["StatusCode"] == 200
            break
        except ClientError:
            assert time.monotonic() < deadline, "the slot was never released"
            time.sleep(0.1)


def test_account_limit_throttles_unreserved_functions(tmp_path):
    server = start_server(tmp_path / "data", "--concurrency-limit", "2")
    try:
        client = client_for(server.endpoint)
        code = {"ZipFile": zip_files({"app.py": BEHAVIOUR_HANDLER})}
        names = [f"limited-{index}" for index in range(2)]
        for name in names:
            client.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler", Code=code)
        limit = client.get_account_settings()["AccountLimit"]
        assert (limit["ConcurrentExecutions"], limit["UnreservedConcurrentExecutions"]) == (2, 2)
        for name in names:
            invoke(client, name)  # warm
        background = [
            in_background(lambda: invoke(client, names[0], {"mode": "sleep", "seconds": 3})),
            in_background(lambda: invoke(client, names[1], {"mode": "sleep", "seconds": 3})),
        ]
        time.sleep(SETTLE_SECONDS)
        assert_throttled(throttle_of(client, names[0]), "ConcurrentInvocationLimitExceeded")
        assert_throttled(throttle_of(client, names[1]), "ConcurrentInvocationLimitExceeded")
        for thread, outcome in background:
            thread.join()
            assert outcome[0]["StatusCode"] == 200
        assert invoke(client, names[0])["StatusCode"] == 200
        # With a limit this small nothing can be reserved except 0, which survives a restart.
        with pytest.raises(client.exceptions.InvalidParameterValueException):
            client.put_function_concurrency(FunctionName=names[1], ReservedConcurrentExecutions=1)
        client.put_function_concurrency(FunctionName=names[1], ReservedConcurrentExecutions=0)
    finally:
        server.stop()
    server = start_server(tmp_path / "data", "--concurrency-limit", "2")
    try:
        client = client_for(server.endpoint)
        assert client.get_function_concurrency(FunctionName=names[1])["ReservedConcurrentExecutions"] == 0
        assert_throttled(throttle_of(client, names[1]), "ReservedFunctionConcurrentInvocationLimitExceeded")
    finally:
        server.stop()


# -- provisioned concurrency -----------------------------------------------------------------------------------------
def wait_for_status(client, name: str, qualifier: str, status: str = "READY", deadline: float = 20) -> dict:
    end = time.monotonic() + deadline
    while True:
        config = client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=qualifier)
        if config["Status"] == status or time.monotonic() > end:
            return config
        time.sleep(0.1)


def test_provisioned_concurrency_api_errors(lambda_client, unvalidated_client, make_function):
    name = make_function(code=BEHAVIOUR_HANDLER)
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    arn = f"arn:aws:lambda:{REGION}:000000000000:function"
    errors = lambda_client.exceptions

    missing = error_response(lambda_client.get_provisioned_concurrency_config, FunctionName=name, Qualifier=version)
    assert missing["Error"]["Code"] == "ProvisionedConcurrencyConfigNotFoundException"
    assert missing["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert (missing["Type"], missing["message"]) == ("User", "No Provisioned Concurrency Config found for this function")
    for call in (lambda_client.get_provisioned_concurrency_config, lambda_client.delete_provisioned_concurrency_config):
        for function, qualifier, message in [
            ("doesnotexist", "noalias", f"Cannot find alias arn: {arn}:doesnotexist:noalias"),
            (name, "noalias", f"Cannot find alias arn: {arn}:{name}:noalias"),
            (name, "10", f"Function not found: {arn}:{name}:10"),
        ]:
            response = error_response(call, FunctionName=function, Qualifier=qualifier)
            assert (response["Error"]["Code"], response["Message"]) == ("ResourceNotFoundException", message)
        latest = error_response(call, FunctionName=name, Qualifier="$LATEST")
        assert latest["Error"]["Code"] == "InvalidParameterValueException"
        assert latest["message"] == "The function resource provided must be an alias or a published version."
    put = lambda_client.put_provisioned_concurrency_config
    latest = error_response(put, FunctionName=name, Qualifier="$LATEST", ProvisionedConcurrentExecutions=1)
    assert latest["message"] == "Provisioned Concurrency Configs cannot be applied to unpublished function versions."
    zero = error_response(
        unvalidated_client.put_provisioned_concurrency_config,
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=0,
    )
    assert zero["Error"] == {
        "Code": "ValidationException",
        "Message": "1 validation error detected: Value '0' at 'provisionedConcurrentExecutions' failed to satisfy "
        "constraint: Member must have value greater than or equal to 1",
    }
    assert lambda_client.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"] == []
    with pytest.raises(errors.ResourceNotFoundException) as caught:
        lambda_client.list_provisioned_concurrency_configs(FunctionName="doesnotexist")
    assert caught.value.response["Message"] == f"Function not found: {arn}:doesnotexist"
    deleted = lambda_client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204

    unreserved = lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]
    over = error_response(put, FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=unreserved + 1)
    assert over["message"] == (
        f"Specified ConcurrentExecutions for function is greater than account's unreserved concurrency [{unreserved}]."
    )
    below = error_response(put, FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=unreserved - 99)
    assert below["message"] == (
        "Specified ConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its "
        "minimum value of [100]."
    )
    assert "Type" not in over and "Type" not in below


def test_provisioned_environments_serve_first_and_spill_over(lambda_client, make_function):
    name = make_function(code=BEHAVIOUR_HANDLER, Timeout=10)
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    alias = lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)["Name"]
    before = lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"]

    put = lambda_client.put_provisioned_concurrency_config(
        FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1
    )
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert (put["Status"], put["RequestedProvisionedConcurrentExecutions"]) == ("IN_PROGRESS", 1)
    assert put["AllocatedProvisionedConcurrentExecutions"] == put["AvailableProvisionedConcurrentExecutions"] == 0
    assert lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == before - 1
    with pytest.raises(lambda_client.exceptions.ResourceConflictException) as caught:
        lambda_client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=alias, ProvisionedConcurrentExecutions=1)
    assert caught.value.response["message"] == (
        "Alias can't be used for Provisioned Concurrency configuration on an already Provisioned version"
    )

    ready = wait_for_status(lambda_client, name, version)
    assert ready["Status"] == "READY"
    assert ready["AllocatedProvisionedConcurrentExecutions"] == ready["AvailableProvisionedConcurrentExecutions"] == 1
    listed = lambda_client.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"]
    assert [(item["FunctionArn"], item["Status"]) for item in listed] == [
        (f"arn:aws:lambda:{REGION}:000000000000:function:{name}:{version}", "READY")
    ]

    first = invoke(lambda_client, name, Qualifier=version)["Body"]
    assert first["init"] == "provisioned-concurrency"
    assert invoke(lambda_client, name, Qualifier=alias)["Body"] == first  # the alias runs the same environment
    assert invoke(lambda_client, name)["Body"]["init"] == "on-demand"  # $LATEST never does
    thread, outcome = in_background(lambda: invoke(lambda_client, name, {"mode": "sleep", "seconds": 2}, Qualifier=version))
    time.sleep(SETTLE_SECONDS)
    spilled = invoke(lambda_client, name, Qualifier=version)["Body"]
    assert (spilled["init"], spilled["version"]) == ("on-demand", version)
    thread.join()
    assert outcome[0]["Body"]["init"] == "provisioned-concurrency"

    lambda_client.delete_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    with pytest.raises(lambda_client.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lambda_client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=version)
    assert lambda_client.get_account_settings()["AccountLimit"]["UnreservedConcurrentExecutions"] == before
    lambda_client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=alias, ProvisionedConcurrentExecutions=1)
    with pytest.raises(lambda_client.exceptions.ResourceConflictException) as caught:
        lambda_client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1)
    assert caught.value.response["message"] == "Version is pointed by a Provisioned Concurrency alias"
    lambda_client.delete_alias(FunctionName=name, Name=alias)
    assert lambda_client.list_provisioned_concurrency_configs(FunctionName=name)["ProvisionedConcurrencyConfigs"] == []


def test_provisioned_concurrency_moves_with_its_alias(lambda_client, make_function):
    name = make_function(code=BEHAVIOUR_HANDLER)
    first = lambda_client.publish_version(FunctionName=name)["Version"]
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion=first)
    lambda_client.put_provisioned_concurrency_config(FunctionName=name, Qualifier="live", ProvisionedConcurrentExecutions=1)
    assert wait_for_status(lambda_client, name, "live")["Status"] == "READY"
    assert invoke(lambda_client, name, Qualifier=first)["Body"]["init"] == "provisioned-concurrency"

    lambda_client.update_function_configuration(FunctionName=name, Timeout=10)
    second = lambda_client.publish_version(FunctionName=name)["Version"]
    lambda_client.update_alias(FunctionName=name, Name="live", FunctionVersion=second)
    assert wait_for_status(lambda_client, name, "live")["Status"] == "READY"
    moved = invoke(lambda_client, name, Qualifier="live")["Body"]
    assert (moved["init"], moved["version"]) == ("provisioned-concurrency", second)
    assert invoke(lambda_client, name, Qualifier=first)["Body"]["init"] == "on-demand"
    with pytest.raises(lambda_client.exceptions.ProvisionedConcurrencyConfigNotFoundException):
        lambda_client.get_provisioned_concurrency_config(FunctionName=name, Qualifier=second)


def test_reserved_and_provisioned_concurrency_overlap(lambda_client, make_function):
    name = make_function(code=BEHAVIOUR_HANDLER)
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=1)
    lambda_client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1)
    # The reservation is all provisioned: nothing is left for on-demand invocations (recorded from AWS).
    assert_throttled(throttle_of(lambda_client, name), "ReservedFunctionConcurrentInvocationLimitExceeded")
    assert wait_for_status(lambda_client, name, version)["Status"] == "READY"
    assert invoke(lambda_client, name, Qualifier=version)["Body"]["init"] == "provisioned-concurrency"
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as caught:
        lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    assert caught.value.response["message"] == (
        " ReservedConcurrentExecutions  0 should not be lower than function's total provisioned concurrency [1]."
    )
    with pytest.raises(lambda_client.exceptions.InvalidParameterValueException) as caught:
        lambda_client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=2)
    assert caught.value.response["message"] == (
        "Requested Provisioned Concurrency should not be greater than the reservedConcurrentExecution for function"
    )
    assert caught.value.response["Type"] == "User"


def test_provisioned_init_failure_is_reported(lambda_client, make_function):
    name = make_function(code="raise RuntimeError('init fails')\n")
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    lambda_client.put_provisioned_concurrency_config(FunctionName=name, Qualifier=version, ProvisionedConcurrentExecutions=1)
    failed = wait_for_status(lambda_client, name, version, "FAILED")
    assert (failed["Status"], failed["StatusReason"]) == ("FAILED", "FUNCTION_ERROR_INIT_FAILURE")
    assert failed["AllocatedProvisionedConcurrentExecutions"] == 0


def test_provisioned_configs_are_provisioned_again_after_a_restart(tmp_path):
    server = start_server(tmp_path / "data")
    try:
        client = client_for(server.endpoint)
        client.create_function(
            FunctionName="kept", Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
            Code={"ZipFile": zip_files({"app.py": BEHAVIOUR_HANDLER})},
        )
        version = client.publish_version(FunctionName="kept")["Version"]
        client.put_provisioned_concurrency_config(FunctionName="kept", Qualifier=version, ProvisionedConcurrentExecutions=1)
    finally:
        server.stop()
    server = start_server(tmp_path / "data")
    try:
        client = client_for(server.endpoint)
        assert wait_for_status(client, "kept", version)["Status"] == "READY"
        assert invoke(client, "kept", Qualifier=version)["Body"]["init"] == "provisioned-concurrency"
    finally:
        server.stop()
