"""Versions and aliases end to end: publishing, qualifiers everywhere, alias routing at invoke time.

Shapes and messages are AWS's, from shared/reference/aws-recorded (TestLambdaVersions, TestLambdaAlias,
TestLambdaRevisions, test_lambda_alias_moving).
"""
from __future__ import annotations

import collections
import http.client
import json
import os
import subprocess
import sys
import threading
import uuid
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from conftest import PY_RUNTIME, REGION, ROLE, client_for, start_server, zip_files
from tests.support.client_errors import error_of

ACCOUNT = "000000000000"
# Reports what the environment knows: its version, the ARN as called, and an id fixed when the environment started.
REPORTER = {
    "app.py": (
        "import os, uuid\n"
        "ENVIRONMENT = uuid.uuid4().hex\n"
        "def handler(event, context):\n"
        "    return {'version': os.environ['AWS_LAMBDA_FUNCTION_VERSION'], 'context_version': context.function_version,\n"
        "            'arn': context.invoked_function_arn, 'stage': os.environ.get('STAGE'), 'environment': ENVIRONMENT}\n"
    )
}
REVISION_MISMATCH = (
    "The Revision Id provided does not match the latest Revision Id. "
    "Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
)


def arn(name: str, qualifier: str | None = None) -> str:
    base = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
    return f"{base}:{qualifier}" if qualifier else base


def invoke(client, name: str, qualifier: str | None = None) -> tuple[str, dict]:
    extra = {"Qualifier": qualifier} if qualifier else {}
    response = client.invoke(FunctionName=name, Payload=b"{}", **extra)
    body = json.loads(response["Payload"].read())
    assert "FunctionError" not in response, body
    return response["ExecutedVersion"], body


def with_two_versions(client, make_function) -> str:
    """A function whose version 1 runs with STAGE=one and version 2 with STAGE=two."""
    name = make_function(REPORTER, Environment={"Variables": {"STAGE": "one"}})
    assert client.publish_version(FunctionName=name)["Version"] == "1"
    client.update_function_configuration(FunctionName=name, Environment={"Variables": {"STAGE": "two"}})
    assert client.publish_version(FunctionName=name)["Version"] == "2"
    return name


# -- versions ------------------------------------------------------------------------------------------------------
def test_publish_snapshots_latest_and_returns_the_last_version_while_nothing_changed(lambda_client, make_function):
    name = make_function(REPORTER, Description="No version :(")
    assert [v["Version"] for v in lambda_client.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST"]
    latest_before = lambda_client.get_function_configuration(FunctionName=name)["RevisionId"]

    first = lambda_client.publish_version(FunctionName=name, Description="First version description :)")
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert (first["Version"], first["FunctionArn"]) == ("1", arn(name, "1"))
    assert first["Description"] == "First version description :)"
    assert (first["State"], first["LastUpdateStatus"]) == ("Active", "Successful")
    latest = lambda_client.get_function_configuration(FunctionName=name)
    assert latest["RevisionId"] not in (latest_before, first["RevisionId"])  # publishing revises $LATEST
    assert latest["Description"] == "No version :("

    again = lambda_client.publish_version(FunctionName=name, Description="ignored: nothing changed")
    assert (again["Version"], again["RevisionId"], again["Description"]) == ("1", first["RevisionId"], first["Description"])

    lambda_client.update_function_configuration(FunctionName=name, Description="Second version :))", Timeout=7)
    second = lambda_client.publish_version(FunctionName=name)
    assert (second["Version"], second["Description"], second["Timeout"]) == ("2", "Second version :))", 7)
    version_one = lambda_client.get_function(FunctionName=name, Qualifier="1")["Configuration"]
    assert (version_one["Timeout"], version_one["RevisionId"]) == (3, first["RevisionId"])  # immutable

    listed = lambda_client.list_versions_by_function(FunctionName=name)["Versions"]
    assert [(v["Version"], v["FunctionArn"]) for v in listed] == [
        ("$LATEST", arn(name, "$LATEST")), ("1", arn(name, "1")), ("2", arn(name, "2"))
    ]
    assert "State" not in listed[0] and "RuntimeVersionConfig" not in listed[0]


def test_publish_preconditions(lambda_client, make_function):
    name = make_function(REPORTER)
    current = lambda_client.get_function_configuration(FunctionName=name)
    with pytest.raises(ClientError) as excinfo:
        lambda_client.publish_version(FunctionName=name, CodeSha256="somenonexistentsha256")
    assert error_of(excinfo) == (
        400, "InvalidParameterValueException",
        f"CodeSHA256 (somenonexistentsha256) is different from current CodeSHA256 in $LATEST ({current['CodeSha256']}). "
        "Please try again with the CodeSHA256 in $LATEST.",
    )
    with pytest.raises(ClientError) as excinfo:
        lambda_client.publish_version(FunctionName=name, RevisionId="wrong")
    assert error_of(excinfo) == (412, "PreconditionFailedException", REVISION_MISMATCH)
    published = lambda_client.publish_version(
        FunctionName=name, CodeSha256=current["CodeSha256"], RevisionId=current["RevisionId"]
    )
    assert published["Version"] == "1"
    with pytest.raises(ClientError) as excinfo:  # publishing gave $LATEST a new RevisionId
        lambda_client.update_function_configuration(FunctionName=name, Timeout=9, RevisionId=current["RevisionId"])
    assert error_of(excinfo)[0] == 412


def test_publish_flag_on_create_and_code_update(lambda_client, make_function):
    name = f"fn-{uuid.uuid4().hex[:12]}"
    created = lambda_client.create_function(
        FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
        Code={"ZipFile": zip_files(REPORTER)}, Publish=True,
    )
    try:
        assert (created["Version"], created["FunctionArn"], created["State"]) == ("1", arn(name), "Pending")
        updated = lambda_client.update_function_code(
            FunctionName=name, ZipFile=zip_files({**REPORTER, "extra.txt": "x"}), Publish=True
        )
        assert (updated["Version"], updated["FunctionArn"], updated["State"]) == ("2", arn(name, "2"), "Pending")
        assert updated["CodeSha256"] != created["CodeSha256"]
        version_two = lambda_client.get_function_configuration(FunctionName=name, Qualifier="2")
        assert (version_two["CodeSha256"], version_two["State"]) == (updated["CodeSha256"], "Active")
        assert lambda_client.get_function_configuration(FunctionName=name, Qualifier="1")["CodeSha256"] == created["CodeSha256"]
    finally:
        lambda_client.delete_function(FunctionName=name)


def test_version_numbers_are_never_reused_and_listing_pages(lambda_client, make_function):
    name = make_function(REPORTER)
    for timeout in (4, 5, 6):
        lambda_client.update_function_configuration(FunctionName=name, Timeout=timeout)
        lambda_client.publish_version(FunctionName=name)
    pages = lambda_client.get_paginator("list_versions_by_function").paginate(
        FunctionName=name, PaginationConfig={"PageSize": 1}
    )
    assert [v["Version"] for page in pages for v in page["Versions"]] == ["$LATEST", "1", "2", "3"]
    assert lambda_client.delete_function(FunctionName=name, Qualifier="3")["ResponseMetadata"]["HTTPStatusCode"] == 204
    lambda_client.delete_function(FunctionName=name, Qualifier="3")  # idempotent, as AWS
    with pytest.raises(ClientError) as excinfo:
        lambda_client.get_function(FunctionName=name, Qualifier="3")
    assert error_of(excinfo) == (404, "ResourceNotFoundException", f"Function not found: {arn(name, '3')}")
    lambda_client.update_function_configuration(FunctionName=name, Timeout=8)
    assert lambda_client.publish_version(FunctionName=name)["Version"] == "4"

    everything = [
        f["FunctionArn"]
        for page in lambda_client.get_paginator("list_functions").paginate(
            FunctionVersion="ALL", PaginationConfig={"PageSize": 2}
        )
        for f in page["Functions"]
    ]
    assert [a for a in everything if a.startswith(arn(name) + ":")] == [arn(name, q) for q in ("$LATEST", "1", "2", "4")]
    assert arn(name) in [f["FunctionArn"] for p in lambda_client.get_paginator("list_functions").paginate() for f in p["Functions"]]


def test_delete_with_qualifier(lambda_client, make_function):
    name = with_two_versions(lambda_client, make_function)
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lambda_client.create_alias(
        FunctionName=name, Name="canary", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"2": 0.5}}
    )
    with pytest.raises(ClientError) as excinfo:
        lambda_client.delete_function(FunctionName=name, Qualifier="1")
    assert error_of(excinfo) == (
        409, "ResourceConflictException", "Unable to delete version because the following aliases reference it: [canary, live]"
    )
    with pytest.raises(ClientError) as excinfo:  # a routing target counts too
        lambda_client.delete_function(FunctionName=f"{name}:2")
    assert error_of(excinfo)[:2] == (409, "ResourceConflictException")
    with pytest.raises(ClientError) as excinfo:
        lambda_client.delete_function(FunctionName=name, Qualifier="live")
    assert error_of(excinfo) == (400, "InvalidParameterValueException", "Deletion of aliases is not currently supported.")
    with pytest.raises(ClientError) as excinfo:
        lambda_client.delete_function(FunctionName=f"{name}:1", Qualifier="2")
    assert error_of(excinfo)[2] == "The derived qualifier from the function name does not match the specified qualifier."
    with pytest.raises(ClientError) as excinfo:
        lambda_client.delete_function(FunctionName="does-not-exist-anywhere", Qualifier="1")
    assert error_of(excinfo) == (404, "ResourceNotFoundException", f"Function not found: {arn('does-not-exist-anywhere')}")

    lambda_client.delete_alias(FunctionName=name, Name="canary")
    lambda_client.delete_function(FunctionName=arn(name, "2"))
    assert [v["Version"] for v in lambda_client.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST", "1"]
    assert invoke(lambda_client, name, "live")[0] == "1"


def test_deleting_a_function_deletes_its_versions_and_aliases(lambda_client):
    name = f"fn-{uuid.uuid4().hex[:12]}"

    def create() -> None:
        lambda_client.create_function(
            FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler", Code={"ZipFile": zip_files(REPORTER)}
        )

    create()
    lambda_client.publish_version(FunctionName=name)
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    lambda_client.delete_function(FunctionName=name)
    with pytest.raises(ClientError) as excinfo:
        lambda_client.get_function(FunctionName=name, Qualifier="1")
    assert error_of(excinfo)[0] == 404
    create()
    try:
        assert lambda_client.list_aliases(FunctionName=name)["Aliases"] == []
        assert [v["Version"] for v in lambda_client.list_versions_by_function(FunctionName=name)["Versions"]] == ["$LATEST"]
        assert lambda_client.publish_version(FunctionName=name)["Version"] == "1"
    finally:
        lambda_client.delete_function(FunctionName=name)


# -- qualifiers in the read operations ------------------------------------------------------------------------------
def test_get_function_names_the_version_as_called(lambda_client, make_function):
    name = with_two_versions(lambda_client, make_function)
    alias = lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    assert lambda_client.get_function(FunctionName=name)["Configuration"]["FunctionArn"] == arn(name)
    for kwargs, expected_arn, version in (
        ({"FunctionName": name, "Qualifier": "$LATEST"}, arn(name, "$LATEST"), "$LATEST"),
        ({"FunctionName": f"{name}:2"}, arn(name, "2"), "2"),
        ({"FunctionName": name, "Qualifier": "live"}, arn(name, "live"), "1"),
        ({"FunctionName": alias["AliasArn"]}, arn(name, "live"), "1"),
        ({"FunctionName": f"{ACCOUNT}:function:{name}:live", "Qualifier": "live"}, arn(name, "live"), "1"),
    ):
        configuration = lambda_client.get_function(**kwargs)["Configuration"]
        assert (configuration["FunctionArn"], configuration["Version"]) == (expected_arn, version), kwargs
        assert lambda_client.get_function_configuration(**kwargs)["FunctionArn"] == expected_arn
    assert lambda_client.get_function_configuration(FunctionName=name, Qualifier="live")["Environment"] == {
        "Variables": {"STAGE": "one"}
    }
    for qualifier in ("aliasdoesnotexist", "1221"):
        with pytest.raises(ClientError) as excinfo:
            lambda_client.get_function(FunctionName=name, Qualifier=qualifier)
        assert error_of(excinfo) == (404, "ResourceNotFoundException", f"Function not found: {arn(name, qualifier)}")
    with pytest.raises(ClientError) as excinfo:
        lambda_client.get_function_configuration(FunctionName=alias["AliasArn"], Qualifier="1")
    assert error_of(excinfo) == (
        400, "InvalidParameterValueException",
        "The derived qualifier from the function name does not match the specified qualifier.",
    )


# -- aliases ----------------------------------------------------------------------------------------------------------
def test_alias_lifecycle(lambda_client, make_function):
    name = with_two_versions(lambda_client, make_function)
    created = lambda_client.create_alias(
        FunctionName=name, Name="aliasname1_1", FunctionVersion="1", Description="custom-alias",
        RoutingConfig={"AdditionalVersionWeights": {"2": 0.2}},
    )
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    created.pop("ResponseMetadata")
    assert created == {
        "AliasArn": arn(name, "aliasname1_1"), "Name": "aliasname1_1", "FunctionVersion": "1",
        "Description": "custom-alias", "RevisionId": created["RevisionId"],
        "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.2}},
    }
    got = lambda_client.get_alias(FunctionName=name, Name="aliasname1_1")
    got.pop("ResponseMetadata")
    assert got == created
    lambda_client.create_alias(FunctionName=name, Name="aliasname1_2", FunctionVersion="1")
    lambda_client.create_alias(FunctionName=arn(name), Name="aliasname2", FunctionVersion="2")
    lambda_client.create_alias(FunctionName=name, Name="2024-01-02", FunctionVersion="$LATEST")

    pages = lambda_client.get_paginator("list_aliases").paginate(FunctionName=name, PaginationConfig={"PageSize": 1})
    assert [a["Name"] for p in pages for a in p["Aliases"]] == ["2024-01-02", "aliasname1_1", "aliasname1_2", "aliasname2"]
    only_one = lambda_client.list_aliases(FunctionName=name, FunctionVersion="1")["Aliases"]
    assert [a["Name"] for a in only_one] == ["aliasname1_1", "aliasname1_2"]

    unrouted = lambda_client.update_alias(FunctionName=name, Name="aliasname1_1", RoutingConfig={"AdditionalVersionWeights": {}})
    assert "RoutingConfig" not in unrouted and unrouted["RevisionId"] != created["RevisionId"]
    untouched = lambda_client.get_alias(FunctionName=name, Name="aliasname1_2")
    unchanged = lambda_client.update_alias(FunctionName=name, Name="aliasname1_2")  # still a new revision (recorded)
    assert unchanged["RevisionId"] != untouched["RevisionId"] and unchanged["FunctionVersion"] == "1"
    with pytest.raises(ClientError) as excinfo:
        lambda_client.update_alias(FunctionName=name, Name="aliasname1_2", Description="x", RevisionId=untouched["RevisionId"])
    assert error_of(excinfo) == (412, "PreconditionFailedException", REVISION_MISMATCH)
    moved = lambda_client.update_alias(
        FunctionName=name, Name="aliasname1_2", FunctionVersion="2", Description="moved", RevisionId=unchanged["RevisionId"]
    )
    assert (moved["FunctionVersion"], moved["Description"]) == ("2", "moved")

    assert lambda_client.delete_alias(FunctionName=name, Name="aliasname1_1")["ResponseMetadata"]["HTTPStatusCode"] == 204
    lambda_client.delete_alias(FunctionName=name, Name="aliasname1_1")  # idempotent (recorded)
    with pytest.raises(ClientError) as excinfo:
        lambda_client.get_alias(FunctionName=name, Name="aliasname1_1")
    assert error_of(excinfo) == (404, "ResourceNotFoundException", f"Cannot find alias arn: {arn(name, 'aliasname1_1')}")
    with pytest.raises(ClientError) as excinfo:
        lambda_client.update_alias(FunctionName=name, Name="non-existent", Description="x")
    assert error_of(excinfo) == (404, "ResourceNotFoundException", f"Alias not found: {arn(name, 'non-existent')}")
    with pytest.raises(ClientError) as excinfo:
        lambda_client.create_alias(FunctionName=name, Name="aliasname2", FunctionVersion="1")
    assert error_of(excinfo) == (409, "ResourceConflictException", f"Alias already exists: {arn(name, 'aliasname2')}")


@pytest.mark.parametrize(
    "kwargs, expected",
    [
        (
            {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.8, "2": 0.2}}},
            (400, "InvalidParameterValueException", "Number of items in AdditionalVersionWeights cannot be greater than 1"),
        ),
        (
            {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": 2}}},
            (400, "ValidationException", "1 validation error detected: Value '{2=2.0}' at 'routingConfig.additionalVersionWeights' "
             "failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, "
             "Member must have value greater than or equal to 0.0, Member must not be null]"),
        ),
        (
            {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"2": -1}}},
            (400, "ValidationException", "1 validation error detected: Value '{2=-1.0}' at 'routingConfig.additionalVersionWeights' "
             "failed to satisfy constraint: Map value must satisfy constraint: [Member must have value less than or equal to 1.0, "
             "Member must have value greater than or equal to 0.0, Member must not be null]"),
        ),
        (
            {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}}},
            (400, "InvalidParameterValueException",
             "Invalid function version 1. Function version 1 is already included in routing configuration."),
        ),
        (
            {"FunctionVersion": "10", "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.5}}},
            (404, "ResourceNotFoundException", "Function not found: {arn}:10"),
        ),
        (
            {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"10": 0.5}}},
            (404, "ResourceNotFoundException", "Function not found: {arn}:10"),
        ),
        (
            {"FunctionVersion": "$LATEST", "RoutingConfig": {"AdditionalVersionWeights": {"1": 0.5}}},
            (400, "InvalidParameterValueException", "$LATEST is not supported for an alias pointing to more than 1 version"),
        ),
        (
            {"FunctionVersion": "1", "RoutingConfig": {"AdditionalVersionWeights": {"$LATEST": 0.5}}},
            (400, "ValidationException", "1 validation error detected: Value '{$LATEST=0.5}' at 'routingConfig.additionalVersionWeights' "
             "failed to satisfy constraint: Map keys must satisfy constraint: [Member must have length less than or equal to 1024, "
             "Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+]"),
        ),
        (
            {"FunctionVersion": "1", "Name": "2024"},
            (400, "ValidationException", "1 validation error detected: Value '2024' at 'name' failed to satisfy constraint: "
             "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)"),
        ),
    ],
    ids=["toomany", "toohigh", "subzero", "sameversion", "version-missing", "routed-missing", "latest-routed",
         "latest-key", "numeric-name"],
)
def test_alias_validation_errors(unvalidated_client, make_function, kwargs, expected):
    name = with_two_versions(unvalidated_client, make_function)
    with pytest.raises(ClientError) as excinfo:
        unvalidated_client.create_alias(FunctionName=name, **{"Name": "custom", **kwargs})
    status, code, message = expected
    assert error_of(excinfo) == (status, code, message.replace("{arn}", arn(name)))
    if "$LATEST is not supported" in message:
        assert "Type" not in excinfo.value.response  # AWS's body for this one has no Type (recorded)


def test_alias_of_a_missing_function(lambda_client):
    with pytest.raises(ClientError) as excinfo:
        lambda_client.create_alias(FunctionName="no-such-function-here", Name="custom", FunctionVersion="1")
    assert error_of(excinfo) == (404, "ResourceNotFoundException", f"Function not found: {arn('no-such-function-here', '1')}")
    with pytest.raises(ClientError) as excinfo:
        lambda_client.list_aliases(FunctionName="no-such-function-here")
    assert error_of(excinfo) == (404, "ResourceNotFoundException", f"Function not found: {arn('no-such-function-here')}")


# -- invoking versions and aliases -----------------------------------------------------------------------------------
def test_invoke_alias_runs_its_version_and_sees_the_arn_as_called(lambda_client, make_function):
    name = with_two_versions(lambda_client, make_function)
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion="1")
    executed, body = invoke(lambda_client, name, "live")
    assert executed == "1"
    assert (body["version"], body["context_version"], body["stage"]) == ("1", "1", "one")
    assert body["arn"] == arn(name, "live")
    executed_by_arn, body_by_arn = invoke(lambda_client, arn(name, "live"))
    assert (executed_by_arn, body_by_arn["arn"]) == ("1", arn(name, "live"))
    # The alias and its version share warm environments: the pool key is the version, not the name called.
    executed_version, by_version = invoke(lambda_client, name, "1")
    assert (executed_version, by_version["arn"], by_version["environment"]) == ("1", arn(name, "1"), body["environment"])

    lambda_client.update_alias(FunctionName=name, Name="live", FunctionVersion="2")
    executed, body = invoke(lambda_client, name, "live")
    assert (executed, body["version"], body["stage"]) == ("2", "2", "two")
    with pytest.raises(ClientError) as excinfo:
        lambda_client.invoke(FunctionName=name, Qualifier="non-existent-alias", Payload=b"{}")
    assert error_of(excinfo) == (404, "ResourceNotFoundException", f"Function not found: {arn(name, 'non-existent-alias')}")


def test_updating_latest_retires_only_latest_environments(lambda_client, make_function):
    name = with_two_versions(lambda_client, make_function)
    _, version_before = invoke(lambda_client, name, "1")
    _, latest_before = invoke(lambda_client, name)
    lambda_client.update_function_configuration(FunctionName=name, Environment={"Variables": {"STAGE": "three"}})
    _, version_after = invoke(lambda_client, name, "1")
    _, latest_after = invoke(lambda_client, name)
    assert version_after["environment"] == version_before["environment"]
    assert latest_after["environment"] != latest_before["environment"] and latest_after["stage"] == "three"


def test_weighted_alias_routes_a_tenth_within_one_point_over_10000_invokes(lambda_client, lamina):
    """10,000 real invokes through raw keep-alive connections (boto3 would take minutes); the weight is 0.1.

    The standard deviation of the share is 0.3 points, so a 1-point bound fails by chance about once in 1,000 runs.
    """
    name = f"fn-{uuid.uuid4().hex[:12]}"
    lambda_client.create_function(
        FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
        Code={"ZipFile": zip_files({"app.py": "def handler(event, context):\n    return 0\n"})}, Publish=True,
    )
    try:
        lambda_client.update_function_configuration(FunctionName=name, Description="v2")
        lambda_client.publish_version(FunctionName=name)
        lambda_client.create_alias(
            FunctionName=name, Name="canary", FunctionVersion="1", RoutingConfig={"AdditionalVersionWeights": {"2": 0.1}}
        )
        endpoint = urlsplit(lamina.endpoint)
        executed: collections.Counter[str] = collections.Counter()
        lock = threading.Lock()

        def run(count: int) -> None:
            connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=60)
            seen: collections.Counter[str] = collections.Counter()
            for _ in range(count):
                connection.request("POST", f"/2015-03-31/functions/{name}:canary/invocations", body=b"{}")
                response = connection.getresponse()
                response.read()
                assert response.status == 200
                seen[response.getheader("X-Amz-Executed-Version")] += 1
            connection.close()
            with lock:
                executed.update(seen)

        threads = [threading.Thread(target=run, args=(2500,)) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(executed.values()) == 10000 and set(executed) == {"1", "2"}
        assert abs(executed["2"] / 10000 - 0.1) <= 0.01, executed
    finally:
        lambda_client.delete_function(FunctionName=name)


# -- durability and the aws CLI --------------------------------------------------------------------------------------
def test_versions_aliases_and_numbering_survive_a_restart(tmp_path):
    server = start_server(tmp_path / "data")
    client = client_for(server.endpoint)
    try:
        client.create_function(
            FunctionName="durable", Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
            Code={"ZipFile": zip_files(REPORTER)}, Publish=True,
        )
        client.update_function_configuration(FunctionName="durable", Timeout=5)
        client.publish_version(FunctionName="durable")
        client.create_alias(FunctionName="durable", Name="live", FunctionVersion="1")
        client.delete_function(FunctionName="durable", Qualifier="2")
    finally:
        server.stop()
    server = start_server(tmp_path / "data")
    client = client_for(server.endpoint)
    try:
        assert [v["Version"] for v in client.list_versions_by_function(FunctionName="durable")["Versions"]] == ["$LATEST", "1"]
        assert client.get_alias(FunctionName="durable", Name="live")["FunctionVersion"] == "1"
        assert invoke(client, "durable", "live")[0] == "1"
        assert client.publish_version(FunctionName="durable")["Version"] == "3"  # 2 was handed out before
    finally:
        server.stop()


def test_aws_cli_publishes_and_aliases(lamina, make_function):
    name = make_function(REPORTER)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}

    def aws(*args: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "awscli", "--endpoint-url", lamina.endpoint, "--output", "json", "lambda", *args],
            capture_output=True, text=True, env=env, timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout) if done.stdout.strip() else {}

    assert aws("publish-version", "--function-name", name)["Version"] == "1"
    alias = aws("create-alias", "--function-name", name, "--name", "live", "--function-version", "1")
    assert alias["AliasArn"] == arn(name, "live")
    listed = aws("list-aliases", "--function-name", name, "--function-version", "1")["Aliases"]
    assert [(a["Name"], a["FunctionVersion"]) for a in listed] == [("live", "1")]
    assert [v["Version"] for v in aws("list-versions-by-function", "--function-name", name)["Versions"]] == ["$LATEST", "1"]
