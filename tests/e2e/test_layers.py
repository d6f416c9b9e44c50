"""Layers through boto3 and the aws CLI: AWS's shapes and recorded messages, and /opt at run time."""
from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import urllib.request
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from conftest import PY_RUNTIME, REGION, invoke_json, zip_files
from tests.support.client_errors import error_of
from tests.support.polling import wait_until

ACCOUNT = "000000000000"
LAYER_ARN_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:(eusc-)?[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\d{1}:\d{12}:layer:"
    r"[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)"
)
NOT_FOUND = (404, "ResourceNotFoundException", "The resource you requested does not exist.")
BAD_VERSION = (400, "InvalidParameterValueException", "Layer Version Cannot be less than 1")
LIB = zip_files({"python/lib_mod.py": "VALUE = 'from layer'\n"})


def layer_name() -> str:
    return f"layer-{uuid.uuid4().hex[:10]}"


def layer_arn(name: str, version: int | None = None, region: str = REGION) -> str:
    arn = f"arn:aws:lambda:{region}:{ACCOUNT}:layer:{name}"
    return f"{arn}:{version}" if version is not None else arn


def test_publish_get_list_delete_lifecycle(lambda_client):
    name = layer_name()
    first = lambda_client.publish_layer_version(
        LayerName=name, Content={"ZipFile": LIB}, Description="my layer", LicenseInfo="MIT",
        CompatibleRuntimes=[PY_RUNTIME], CompatibleArchitectures=["x86_64"],
    )
    assert first["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert first["LayerArn"] == layer_arn(name) and first["LayerVersionArn"] == layer_arn(name, 1)
    assert first["Version"] == 1 and first["Description"] == "my layer" and first["LicenseInfo"] == "MIT"
    assert first["CompatibleRuntimes"] == [PY_RUNTIME] and first["CompatibleArchitectures"] == ["x86_64"]
    assert first["Content"]["CodeSha256"] == base64.b64encode(hashlib.sha256(LIB).digest()).decode()
    assert first["Content"]["CodeSize"] == len(LIB)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", first["CreatedDate"])
    with urllib.request.urlopen(first["Content"]["Location"]) as download:
        assert download.read() == LIB
    second = lambda_client.publish_layer_version(LayerName=name, Content={"ZipFile": LIB})
    assert second["Version"] == 2 and second["Content"]["CodeSha256"] == first["Content"]["CodeSha256"]
    assert "CompatibleRuntimes" not in second and "LicenseInfo" not in second  # absent unless given

    got = lambda_client.get_layer_version(LayerName=name, VersionNumber=1)
    by_arn = lambda_client.get_layer_version_by_arn(Arn=layer_arn(name, 1))
    by_layer_arn = lambda_client.get_layer_version(LayerName=layer_arn(name), VersionNumber=1)
    for response in (got, by_arn, by_layer_arn, first):
        response.pop("ResponseMetadata")
    assert got == by_arn == by_layer_arn == first

    listed = lambda_client.list_layer_versions(LayerName=name)["LayerVersions"]
    assert [item["Version"] for item in listed] == [2, 1]  # newest first
    assert "Content" not in listed[1] and "LayerArn" not in listed[1]
    assert listed[1] == {key: value for key, value in first.items() if key not in ("Content", "LayerArn")}
    layers = {layer["LayerName"]: layer for layer in lambda_client.list_layers()["Layers"]}
    assert layers[name]["LayerArn"] == layer_arn(name)
    assert layers[name]["LatestMatchingVersion"]["LayerVersionArn"] == layer_arn(name, 2)

    for version in (1, 2, 2):  # deleting is idempotent
        assert lambda_client.delete_layer_version(LayerName=name, VersionNumber=version)[
            "ResponseMetadata"]["HTTPStatusCode"] == 204
    assert lambda_client.list_layer_versions(LayerName=name)["LayerVersions"] == []
    assert name not in {layer["LayerName"] for layer in lambda_client.list_layers()["Layers"]}
    assert lambda_client.publish_layer_version(LayerName=name, Content={"ZipFile": LIB})["Version"] == 3


def test_layer_errors_match_aws(lambda_client, unvalidated_client):
    name = layer_name()
    published = lambda_client.publish_layer_version(LayerName=name, Content={"ZipFile": LIB})
    with pytest.raises(ClientError) as excinfo:
        lambda_client.get_layer_version(LayerName="layerdoesnotexist", VersionNumber=1)
    assert error_of(excinfo) == NOT_FOUND
    assert excinfo.value.response["Message"] == NOT_FOUND[2] and excinfo.value.response["Type"] == "User"
    for version in (0, -1):
        with pytest.raises(ClientError) as excinfo:
            lambda_client.get_layer_version(LayerName=name, VersionNumber=version)
        assert error_of(excinfo) == BAD_VERSION
    with pytest.raises(ClientError) as excinfo:
        lambda_client.delete_layer_version(LayerName=name, VersionNumber=-1)
    assert error_of(excinfo) == BAD_VERSION
    with pytest.raises(ClientError) as excinfo:
        lambda_client.get_layer_version(LayerName=name, VersionNumber=2)
    assert error_of(excinfo) == NOT_FOUND
    with pytest.raises(ClientError) as excinfo:
        lambda_client.get_layer_version_by_arn(Arn=published["LayerArn"])
    assert error_of(excinfo) == (
        400, "ValidationException",
        f"1 validation error detected: Value '{published['LayerArn']}' at 'arn' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {LAYER_ARN_PATTERN}",
    )
    with pytest.raises(ClientError) as excinfo:
        lambda_client.get_layer_version_by_arn(Arn=f"{published['LayerArn']}:2")
    assert error_of(excinfo) == NOT_FOUND
    assert lambda_client.list_layer_versions(LayerName="layerdoesnotexist")["LayerVersions"] == []
    assert lambda_client.delete_layer_version(LayerName="layerdoesnotexist", VersionNumber=1)[
        "ResponseMetadata"]["HTTPStatusCode"] == 204

    with pytest.raises(ClientError) as excinfo:
        lambda_client.list_layers(CompatibleRuntime="runtimedoesnotexist")
    status, code, message = error_of(excinfo)
    assert (status, code) == (400, "ValidationException")
    assert message.startswith(
        "1 validation error detected: Value 'runtimedoesnotexist' at 'compatibleRuntime' failed to satisfy "
        "constraint: Member must satisfy enum value set: [ruby3.5, ruby2.6, dotnetcore1.0, python3.7,"
    )
    with pytest.raises(ClientError) as excinfo:
        lambda_client.list_layers(CompatibleArchitecture="archdoesnotexist")
    assert error_of(excinfo) == (
        400, "ValidationException",
        "1 validation error detected: Value 'archdoesnotexist' at 'compatibleArchitecture' failed to satisfy "
        "constraint: Member must satisfy enum value set: [x86_64, arm64]",
    )
    empty = lambda_client.publish_layer_version(
        LayerName=layer_name(), Content={"ZipFile": LIB}, CompatibleRuntimes=[], CompatibleArchitectures=[]
    )
    assert empty["CompatibleRuntimes"] == [] and empty["CompatibleArchitectures"] == []
    with pytest.raises(ClientError) as excinfo:
        lambda_client.publish_layer_version(
            LayerName=layer_name(), Content={"ZipFile": LIB},
            CompatibleRuntimes=["invalidruntime", "invalidruntime2", "nodejs20.x"],
            CompatibleArchitectures=["invalidarch", "x86_64"],
        )
    status, code, message = error_of(excinfo)
    assert (status, code) == (400, "ValidationException")
    assert message.startswith(
        "2 validation errors detected: Value '[invalidruntime, invalidruntime2, nodejs20.x]' at 'compatibleRuntimes' "
        "failed to satisfy constraint: Member must satisfy enum value set: [nodejs20.x, python3.14, provided.al2023,"
    )
    assert message.endswith(
        "; Value '[invalidarch, x86_64]' at 'compatibleArchitectures' failed to satisfy constraint: Member must "
        "satisfy constraint: [Member must satisfy enum value set: [x86_64, arm64], Member must not be null]"
    )
    with pytest.raises(ClientError) as excinfo:
        lambda_client.publish_layer_version(LayerName=layer_name(), Content={"ZipFile": b"not a zip"})
    assert error_of(excinfo) == (
        400, "InvalidParameterValueException",
        "Could not unzip uploaded file. Please check your file, then try to upload again.",
    )
    with pytest.raises(ClientError) as excinfo:
        unvalidated_client.publish_layer_version(LayerName="bad name!", Content={"ZipFile": LIB})
    assert error_of(excinfo)[:2] == (400, "ValidationException")
    assert "at 'layerName' failed to satisfy constraint: Member must satisfy regular expression pattern" in (
        error_of(excinfo)[2]
    )


def test_list_filters_and_pagination(lambda_client):
    name = layer_name()
    for runtimes, architectures in (([PY_RUNTIME], ["x86_64"]), (["nodejs20.x"], ["arm64"]), ([PY_RUNTIME], None)):
        extra = {"CompatibleArchitectures": architectures} if architectures else {}
        lambda_client.publish_layer_version(
            LayerName=name, Content={"ZipFile": LIB}, CompatibleRuntimes=runtimes, **extra
        )
    by_runtime = lambda_client.list_layer_versions(LayerName=name, CompatibleRuntime=PY_RUNTIME)["LayerVersions"]
    assert [item["Version"] for item in by_runtime] == [3, 1]
    by_architecture = lambda_client.list_layer_versions(LayerName=name, CompatibleArchitecture="arm64")
    assert [item["Version"] for item in by_architecture["LayerVersions"]] == [2]
    page = lambda_client.list_layer_versions(LayerName=name, MaxItems=2)
    assert [item["Version"] for item in page["LayerVersions"]] == [3, 2] and page["NextMarker"]
    rest = lambda_client.list_layer_versions(LayerName=name, MaxItems=2, Marker=page["NextMarker"])
    assert [item["Version"] for item in rest["LayerVersions"]] == [1] and "NextMarker" not in rest

    matching = lambda_client.list_layers(CompatibleRuntime="nodejs20.x", CompatibleArchitecture="arm64")["Layers"]
    mine = [layer for layer in matching if layer["LayerName"] == name]
    assert mine[0]["LatestMatchingVersion"]["Version"] == 2
    others = [layer_name() for _ in range(2)]
    for other in others:
        lambda_client.publish_layer_version(LayerName=other, Content={"ZipFile": LIB})
    names = [
        layer["LayerName"]
        for response in lambda_client.get_paginator("list_layers").paginate(PaginationConfig={"PageSize": 1})
        for layer in response["Layers"]
    ]
    assert names == sorted(names) and {name, *others} <= set(names) and len(names) == len(set(names))
    with pytest.raises(ClientError) as excinfo:
        lambda_client.list_layers(MaxItems=51)
    assert error_of(excinfo) == (
        400, "ValidationException",
        "1 validation error detected: Value '51' at 'maxItems' failed to satisfy constraint: Member must have value "
        "less than or equal to 50",
    )


def test_layer_version_permissions(lambda_client, unvalidated_client):
    name = layer_name()
    lambda_client.publish_layer_version(LayerName=name, Content={"ZipFile": LIB})
    with pytest.raises(ClientError) as excinfo:
        lambda_client.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert error_of(excinfo) == (404, "ResourceNotFoundException", "No policy is associated with the given resource.")

    added = lambda_client.add_layer_version_permission(
        LayerName=name, VersionNumber=1, StatementId="s1", Action="lambda:GetLayerVersion", Principal="*"
    )
    assert added["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert json.loads(added["Statement"]) == {
        "Sid": "s1", "Effect": "Allow", "Principal": "*", "Action": "lambda:GetLayerVersion",
        "Resource": layer_arn(name, 1),
    }
    account = lambda_client.add_layer_version_permission(
        LayerName=name, VersionNumber=1, StatementId="s2", Action="lambda:GetLayerVersion",
        Principal="223456789012", RevisionId=added["RevisionId"],
    )
    assert json.loads(account["Statement"])["Principal"] == {"AWS": "arn:aws:iam::223456789012:root"}
    org = lambda_client.add_layer_version_permission(
        LayerName=name, VersionNumber=1, StatementId="org", Action="lambda:GetLayerVersion", Principal="*",
        OrganizationId="o-abcdefghij",
    )
    assert json.loads(org["Statement"])["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "o-abcdefghij"}}
    policy = lambda_client.get_layer_version_policy(LayerName=name, VersionNumber=1)
    document = json.loads(policy["Policy"])
    assert document["Version"] == "2012-10-17" and document["Id"] == "default"
    assert [statement["Sid"] for statement in document["Statement"]] == ["s1", "s2", "org"]
    assert policy["RevisionId"] == org["RevisionId"] != account["RevisionId"]

    def add(statement_id: str, **extra: object) -> tuple[int, str, str]:
        with pytest.raises(ClientError) as excinfo:
            unvalidated_client.add_layer_version_permission(
                **{"LayerName": name, "VersionNumber": 1, "StatementId": statement_id,
                   "Action": "lambda:GetLayerVersion", "Principal": "*", **extra}
            )
        return error_of(excinfo)

    assert add("s1") == (
        409, "ResourceConflictException",
        "The statement id (s1) provided already exists. Please provide a new statement id, or remove the existing "
        "statement.",
    )
    wrong_revision = (
        412, "PreconditionFailedException",
        "The Revision Id provided does not match the latest Revision Id. Call the GetLayerPolicy API to retrieve the "
        "latest Revision Id",
    )
    assert add("s3", RevisionId="wrong") == wrong_revision
    assert add("s3", Action="*") == (
        400, "ValidationException",
        "1 validation error detected: Value '*' at 'action' failed to satisfy constraint: Member must satisfy "
        "regular expression pattern: lambda:GetLayerVersion",
    )
    missing_layer = f"Layer version {layer_arn(name + '-doesnotexist', 1)} does not exist."
    missing_version = f"Layer version {layer_arn(name, 2)} does not exist."
    for layer, version, message in ((f"{name}-doesnotexist", 1, missing_layer), (name, 2, missing_version)):
        with pytest.raises(ClientError) as excinfo:
            lambda_client.add_layer_version_permission(
                LayerName=layer, VersionNumber=version, StatementId="s9", Action="lambda:GetLayerVersion",
                Principal="*",
            )
        assert error_of(excinfo) == (404, "ResourceNotFoundException", message)
        with pytest.raises(ClientError) as excinfo:
            lambda_client.get_layer_version_policy(LayerName=layer, VersionNumber=version)
        assert error_of(excinfo) == (404, "ResourceNotFoundException", message)
        with pytest.raises(ClientError) as excinfo:
            lambda_client.remove_layer_version_permission(LayerName=layer, VersionNumber=version, StatementId="s1")
        assert error_of(excinfo) == (404, "ResourceNotFoundException", message)
    with pytest.raises(ClientError) as excinfo:
        lambda_client.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="doesnotexist")
    assert error_of(excinfo) == (
        404, "ResourceNotFoundException", "Statement doesnotexist is not found in resource policy."
    )
    with pytest.raises(ClientError) as excinfo:
        lambda_client.remove_layer_version_permission(
            LayerName=name, VersionNumber=1, StatementId="s2", RevisionId="wrong"
        )
    assert error_of(excinfo) == wrong_revision
    removed = lambda_client.remove_layer_version_permission(LayerName=name, VersionNumber=1, StatementId="s2")
    assert removed["ResponseMetadata"]["HTTPStatusCode"] == 204
    after = lambda_client.get_layer_version_policy(LayerName=name, VersionNumber=1)
    assert [statement["Sid"] for statement in json.loads(after["Policy"])["Statement"]] == ["s1", "org"]
    assert after["RevisionId"] != policy["RevisionId"]


def test_function_layer_references(lambda_client, make_function, lamina):
    name = layer_name()
    versions = [lambda_client.publish_layer_version(LayerName=name, Content={"ZipFile": LIB}) for _ in range(2)]
    other = lambda_client.publish_layer_version(LayerName=layer_name(), Content={"ZipFile": LIB})
    function = make_function(Layers=[versions[0]["LayerVersionArn"], other["LayerVersionArn"]])
    config = lambda_client.get_function_configuration(FunctionName=function)
    assert config["Layers"] == [
        {"Arn": versions[0]["LayerVersionArn"], "CodeSize": len(LIB)},
        {"Arn": other["LayerVersionArn"], "CodeSize": len(LIB)},
    ]

    def refused(layers: list[str]) -> tuple[int, str, str]:
        with pytest.raises(ClientError) as excinfo:
            lambda_client.update_function_configuration(FunctionName=function, Layers=layers)
        return error_of(excinfo)

    first, second = versions[0]["LayerVersionArn"], versions[1]["LayerVersionArn"]
    for layers, (left, right) in (([first, second], (first, second)), ([first, first], (first, first))):
        assert refused(layers) == (
            400, "InvalidParameterValueException",
            "Two different versions of the same layer are not allowed to be referenced in the same function. "
            f"{left} and {right} are versions of the same layer.",
        )
    for missing in (layer_arn("doesnotexist", 1), layer_arn(name, 9)):
        assert refused([missing]) == (400, "InvalidParameterValueException", f"Layer version {missing} does not exist.")
    status, code, message = refused([layer_arn(name)])
    assert (status, code) == (400, "ValidationException")
    assert message == (
        f"1 validation error detected: Value '[{layer_arn(name)}]' at 'layers' failed to satisfy constraint: Member "
        "must satisfy constraint: [Member must have length less than or equal to 2048, Member must have length "
        f"greater than or equal to 1, Member must satisfy regular expression pattern: {LAYER_ARN_PATTERN}, Member "
        "must not be null]"
    )
    six = [lambda_client.publish_layer_version(LayerName=layer_name(), Content={"ZipFile": LIB})["LayerVersionArn"]
           for _ in range(6)]
    assert refused(six) == (400, "InvalidParameterValueException", "Cannot reference more than 5 layers.")

    eu = boto3.client("lambda", endpoint_url=lamina.endpoint, region_name="eu-west-1", aws_access_key_id="test",
                      aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))
    foreign = eu.publish_layer_version(LayerName=name, Content={"ZipFile": LIB})
    assert foreign["LayerVersionArn"] == layer_arn(name, 1, region="eu-west-1")
    with pytest.raises(ClientError) as excinfo:
        make_function(Layers=[foreign["LayerVersionArn"]])
    assert error_of(excinfo) == (
        400, "InvalidParameterValueException",
        f"Layers are not in the same region as the function. Layers are expected to be in region {REGION}.",
    )

    # Deleting a layer version leaves the functions that use it unchanged (recorded from AWS).
    lambda_client.delete_layer_version(LayerName=name, VersionNumber=1)
    assert lambda_client.get_function_configuration(FunctionName=function)["Layers"] == config["Layers"]
    assert invoke_json(lambda_client, function, {"k": 1}) == {"k": 1}
    cleared = lambda_client.update_function_configuration(FunctionName=function, Layers=[])
    assert "Layers" not in cleared


def test_aws_cli_publishes_and_lists_layers(lamina, tmp_path: Path):
    package = tmp_path / "layer.zip"
    package.write_bytes(LIB)
    name = layer_name()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": REGION}

    def aws(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "awscli", "--endpoint-url", lamina.endpoint, "lambda", *args],
            capture_output=True, text=True, env=env, timeout=120,
        )

    published = aws("publish-layer-version", "--layer-name", name, "--zip-file", f"fileb://{package}",
                    "--compatible-runtimes", PY_RUNTIME)
    assert published.returncode == 0, published.stderr
    assert json.loads(published.stdout)["LayerVersionArn"] == layer_arn(name, 1)
    listed = aws("list-layer-versions", "--layer-name", name)
    assert [item["Version"] for item in json.loads(listed.stdout)["LayerVersions"]] == [1]
    missing = aws("get-layer-version", "--layer-name", name, "--version-number", "5")
    assert missing.returncode != 0 and "ResourceNotFoundException" in missing.stderr
    assert aws("delete-layer-version", "--layer-name", name, "--version-number", "1").returncode == 0


# -- /opt at run time ------------------------------------------------------------------------------------------------
PY_VERSION = PY_RUNTIME.removeprefix("python")
PROBE = """
import os, subprocess
def handler(event, context):
    import shared, only_first, site_mod
    try:
        open('/opt/python/new.py', 'w')
        writable = True
    except OSError:
        writable = False
    return {
        'shared': shared.WHO, 'only_first': only_first.WHO, 'site': site_mod.WHO,
        'tool': subprocess.run(['tool'], capture_output=True, text=True).stdout.strip(),
        'ld': os.environ['LD_LIBRARY_PATH'].split(':'), 'writable': writable,
    }
"""


def test_python_sees_layers_in_order_read_only(lambda_client, make_function):
    first = lambda_client.publish_layer_version(LayerName=layer_name(), Content={"ZipFile": zip_files({
        "python/shared.py": "WHO = 'first'\n",
        "python/only_first.py": "WHO = 'first'\n",
        "bin/tool": ("#!/bin/sh\necho tool-from-first\n", 0o755),
    })})
    second = lambda_client.publish_layer_version(LayerName=layer_name(), Content={"ZipFile": zip_files({
        "python/shared.py": "WHO = 'second'\n",
        f"python/lib/python{PY_VERSION}/site-packages/site_mod.py": "WHO = 'site-packages'\n",
    })})
    function = make_function(code=PROBE, Layers=[first["LayerVersionArn"], second["LayerVersionArn"]])
    result = invoke_json(lambda_client, function)
    assert result["shared"] == "second" and result["only_first"] == "first" and result["site"] == "site-packages"
    assert result["tool"] == "tool-from-first" and "/opt/lib" in result["ld"]
    assert result["writable"] is False
    swapped = make_function(code=PROBE, Layers=[second["LayerVersionArn"], first["LayerVersionArn"]])
    assert invoke_json(lambda_client, swapped)["shared"] == "first"


def test_node_finds_layer_modules(lambda_client, make_function):
    version = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout
    major = version.strip().lstrip("v").split(".")[0]
    layer = lambda_client.publish_layer_version(LayerName=layer_name(), Content={"ZipFile": zip_files({
        "nodejs/node_modules/greeter/index.js": "module.exports = (name) => `hello ${name} from a layer`;\n",
    })})
    function = make_function(
        {"index.js": "const greet = require('greeter');\nexports.handler = async (event) => greet(event.name);\n"},
        handler="index.handler", runtime=f"nodejs{major}.x", Layers=[layer["LayerVersionArn"]],
    )
    assert invoke_json(lambda_client, function, {"name": "node"}) == "hello node from a layer"


BOOTSTRAP = """#!/usr/bin/env python3
import json, os, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation"
while True:
    with urllib.request.urlopen(api + "/next") as event:
        request_id = event.headers["Lambda-Runtime-Aws-Request-Id"]
    answer = json.dumps({"bootstrap": "%s"}).encode()
    urllib.request.urlopen(urllib.request.Request(api + "/" + request_id + "/response", data=answer, method="POST"))
"""


def test_custom_runtime_bootstrap_from_a_layer(lambda_client, make_function):
    runtime = lambda_client.publish_layer_version(
        LayerName=layer_name(), Content={"ZipFile": zip_files({"bootstrap": (BOOTSTRAP % "layer", 0o755)})}
    )
    from_layer = make_function({"readme.txt": "code without bootstrap"}, handler="unused", runtime="provided.al2023",
                               Layers=[runtime["LayerVersionArn"]])
    assert invoke_json(lambda_client, from_layer) == {"bootstrap": "layer"}
    own = make_function({"bootstrap": (BOOTSTRAP % "code", 0o755)}, handler="unused", runtime="provided.al2023",
                        Layers=[runtime["LayerVersionArn"]])
    assert invoke_json(lambda_client, own) == {"bootstrap": "code"}  # /var/task/bootstrap comes first


def opt_mounts(data_dir: Path) -> list[str]:
    prefix = str((data_dir / "opt").resolve()) + "/"
    with open("/proc/self/mountinfo") as mountinfo:
        return [line.split()[4] for line in mountinfo if line.split()[4].startswith(prefix)]


@pytest.mark.skipif(os.geteuid() != 0, reason="overlay mounts need root")
def test_functions_share_one_read_only_view_of_the_same_layers(lambda_client, make_function, lamina):
    arns = [
        lambda_client.publish_layer_version(LayerName=layer_name(), Content={"ZipFile": zip_files({
            f"python/mod_{index}.py": f"WHO = {index}\n"})})["LayerVersionArn"]
        for index in range(2)
    ]
    code = "import mod_0, mod_1\ndef handler(event, context):\n    return [mod_0.WHO, mod_1.WHO]\n"
    functions = [make_function(code=code, Layers=arns) for _ in range(2)]
    before = set(opt_mounts(lamina.data_dir))
    for function in functions:
        assert invoke_json(lambda_client, function) == [0, 1]
    added = set(opt_mounts(lamina.data_dir)) - before
    assert len(added) == 1  # both functions' warm environments use the same overlay
    for function in functions:
        lambda_client.delete_function(FunctionName=function)
    # Unmounted with the last environment.
    wait_until(lambda: not set(opt_mounts(lamina.data_dir)) & added, timeout=10, what="the overlay unmounted")


def test_code_and_layers_share_the_unzipped_limit(lambda_client, make_function):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("big.bin", bytes(262_144_000 - 10))
    big = lambda_client.publish_layer_version(LayerName=layer_name(), Content={"ZipFile": buffer.getvalue()})
    code = "def handler(event, context):\n    return None\n"
    with pytest.raises(ClientError) as excinfo:
        make_function(code=code, Layers=[big["LayerVersionArn"]])
    status, error, message = error_of(excinfo)
    assert (status, error) == (400, "InvalidParameterValueException")
    assert re.fullmatch(
        r"Function code combined with layers exceeds the maximum allowed size of 262144000 bytes\. "
        r"The actual size is 2621440\d\d bytes\.", message
    )
