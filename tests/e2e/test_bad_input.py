"""Hostile request bodies and packages get AWS's 4xx, never a 500, and stored content never stops the server."""
from __future__ import annotations

import base64
import http.client
import json
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from lamina.store.fsutil import remove_tree

from conftest import PY_RUNTIME, ROLE, RunningServer, client_for, invoke_json, start_server, zip_files
from tests.support.client_errors import error_of

UNPARSEABLE = "Could not parse request body into json: "
TOO_DEEP = "Document nesting depth exceeds the maximum allowed"
CORRUPT = "Could not unzip uploaded file. Please check your file, then try to upload again."
ECHO = {"app.py": "def handler(event, context):\n    return event\n"}
NESTED = {"list": b"[" * 100_000, "object": b'{"a":' * 100_000}


def raw(server: RunningServer, method: str, path: str, body: bytes = b"",
        headers: dict[str, str] | None = None) -> tuple[int, str | None, dict[str, object]]:
    """One request over http.client (boto3 cannot send a body that is not its own JSON)."""
    connection = http.client.HTTPConnection(urlsplit(server.endpoint).netloc, timeout=60)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        payload = response.read()
        return response.status, response.getheader("x-amzn-ErrorType"), json.loads(payload) if payload else {}
    finally:
        connection.close()


@pytest.fixture(scope="module")
def target(lambda_client) -> str:
    """A function and a layer for the operations that need one to exist."""
    name = f"bad-input-{uuid.uuid4().hex[:8]}"
    lambda_client.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                                  Code={"ZipFile": zip_files(ECHO)})
    yield name
    lambda_client.delete_function(FunctionName=name)


OPERATIONS = [  # (operation, method, path): every kind of JSON body Lamina reads
    ("CreateFunction", "POST", "/2015-03-31/functions"),
    ("UpdateFunctionConfiguration", "PUT", "/2015-03-31/functions/{name}/configuration"),
    ("UpdateFunctionCode", "PUT", "/2015-03-31/functions/{name}/code"),
    ("PublishVersion", "POST", "/2015-03-31/functions/{name}/versions"),
    ("CreateAlias", "POST", "/2015-03-31/functions/{name}/aliases"),
    ("AddPermission", "POST", "/2015-03-31/functions/{name}/policy"),
    ("TagResource", "POST", "/2017-03-31/tags/arn:aws:lambda:us-east-1:000000000000:function:{name}"),
    ("PutFunctionConcurrency", "PUT", "/2017-10-31/functions/{name}/concurrency"),
    ("PutFunctionEventInvokeConfig", "PUT", "/2019-09-25/functions/{name}/event-invoke-config"),
    ("PutProvisionedConcurrencyConfig", "PUT", "/2019-09-30/functions/{name}/provisioned-concurrency?Qualifier=1"),
    ("PublishLayerVersion", "POST", "/2018-10-31/layers/bad-input-layer/versions"),
]


@pytest.mark.parametrize("shape", sorted(NESTED))
@pytest.mark.parametrize(("operation", "method", "path"), OPERATIONS, ids=[op[0] for op in OPERATIONS])
def test_deeply_nested_json_is_an_unparseable_body(lamina, target, operation, method, path, shape):
    status, error_type, body = raw(lamina, method, path.format(name=target), NESTED[shape])
    assert (status, error_type) == (400, "InvalidRequestContentException"), body
    assert body == {"Type": "User", "message": UNPARSEABLE + TOO_DEEP}


@pytest.mark.parametrize("shape", sorted(NESTED))
@pytest.mark.parametrize("invocation_type", ["RequestResponse", "Event"])
def test_deeply_nested_invoke_payload_gets_aws_payload_framing(lamina, target, shape, invocation_type):
    status, error_type, body = raw(lamina, "POST", f"/2015-03-31/functions/{target}/invocations", NESTED[shape],
                                   {"X-Amz-Invocation-Type": invocation_type})
    assert (status, error_type) == (400, "InvalidRequestContentException"), body
    assert body["message"] == (
        f"{UNPARSEABLE}Could not parse payload into json: {TOO_DEEP}\n"
        " at [Source: REDACTED (`StreamReadFeature.INCLUDE_SOURCE_IN_LOCATION` disabled); line: 1, column: 1]"
    )
    status, error_type, _ = raw(lamina, "POST", f"/2014-11-13/functions/{target}/invoke-async", NESTED[shape])
    assert (status, error_type) == (400, "InvalidRequestContentException")


def test_deeply_nested_client_context_is_refused(lamina, target):
    context = base64.b64encode(b"[" * 2500).decode()  # under the 3583-byte limit, past the parser's depth
    status, error_type, body = raw(lamina, "POST", f"/2015-03-31/functions/{target}/invocations", b"{}",
                                   {"X-Amz-Client-Context": context})
    assert (status, error_type) == (400, "InvalidRequestContentException")
    assert body["message"] == "Client context must be a valid Base64-encoded JSON object."


def lone_surrogate(value: str) -> str:
    return f"{UNPARSEABLE}Invalid string: lone surrogate \\u{ord(value[-1]):04x} (not a Unicode character)"


@pytest.mark.parametrize(("member", "value"), [
    ("Handler", "\ud800"), ("Description", "docs \udfff"), ("S3Bucket", "\ud800"), ("S3Key", "key\udc00"),
    ("S3ObjectVersion", "\udbff"),
])
def test_lone_surrogates_are_refused_on_create(unvalidated_client, member, value):
    settings: dict[str, object] = {"Handler": "app.handler", "Code": {"ZipFile": zip_files(ECHO)}}
    if member.startswith("S3"):
        settings["Code"] = {"S3Bucket": "bucket", "S3Key": "key", member: value}
    else:
        settings[member] = value
    with pytest.raises(ClientError) as caught:
        unvalidated_client.create_function(FunctionName=f"s-{uuid.uuid4().hex[:8]}", Runtime=PY_RUNTIME, Role=ROLE,
                                           **settings)
    assert error_of(caught) == (400, "InvalidRequestContentException", lone_surrogate(value))


UPDATES = [  # (operation, its arguments besides FunctionName / Resource)
    ("update_function_configuration", {"Handler": "\ud800"}),
    ("update_function_configuration", {"Description": "\udc00"}),
    ("update_function_configuration", {"Environment": {"Variables": {"KEY": "\udc00"}}}),
    ("update_function_code", {"S3Bucket": "b", "S3Key": "\ud800"}),
    ("update_function_code", {"S3Bucket": "\ud800", "S3Key": "k", "S3ObjectVersion": "\ud800"}),
    ("tag_resource", {"Tags": {"key\ud800": "value"}}),
]


@pytest.mark.parametrize(("operation", "arguments"), UPDATES)
def test_lone_surrogates_are_refused_on_updates_and_tags(unvalidated_client, target, operation, arguments):
    if operation == "tag_resource":
        arguments = {"Resource": unvalidated_client.get_function(FunctionName=target)["Configuration"]["FunctionArn"],
                     **arguments}
    else:
        arguments = {"FunctionName": target, **arguments}
    surrogate = next(char for char in json.dumps(arguments, ensure_ascii=False) if "\ud800" <= char <= "\udfff")
    with pytest.raises(ClientError) as caught:
        getattr(unvalidated_client, operation)(**arguments)
    assert error_of(caught) == (400, "InvalidRequestContentException", lone_surrogate(surrogate))


def test_surrogates_as_raw_utf8_bytes_are_refused_and_paired_ones_are_text(lamina, lambda_client, target):
    body = b'{"Description": "\xed\xa0\x80"}'  # what json.loads would decode to a lone surrogate
    status, error_type, answer = raw(lamina, "PUT", f"/2015-03-31/functions/{target}/configuration", body)
    assert (status, error_type) == (400, "InvalidRequestContentException"), answer
    updated = lambda_client.update_function_configuration(FunctionName=target, Description="party \U0001F389")
    assert updated["Description"] == "party \U0001F389"  # boto3 sends it as the escapes \ud83c\udf89


@pytest.mark.parametrize("name", ["a/" * 2041 + "f.txt", "d" * 256 + "/f.txt", ("x" * 200 + "/") * 21 + "f"])
def test_member_paths_past_path_max_or_name_max_cannot_be_unzipped(lambda_client, name):
    package = zip_files({**ECHO, name: "deep"})
    with pytest.raises(ClientError) as caught:
        lambda_client.create_function(FunctionName=f"p-{uuid.uuid4().hex[:8]}", Runtime=PY_RUNTIME, Role=ROLE,
                                      Handler="app.handler", Code={"ZipFile": package})
    assert error_of(caught) == (400, "InvalidParameterValueException", CORRUPT)


DEEP_READER = "def handler(event, context):\n    return open('/var/task/' + event['path']).read()\n"


def test_a_deep_tree_neither_stops_start_up_nor_serving(tmp_path: Path):
    """A 5 KB zip nesting 1200 directories: deleted, its tree is collected at start-up; kept, it still serves."""
    deep, kept = "a/" * 1200 + "f.txt", "b/" * 1200 + "f.txt"
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    try:
        client = client_for(server.endpoint)
        for name, path in (("gone", deep), ("kept", kept)):
            package = zip_files({"app.py": DEEP_READER, path: f"content of {name}"})
            assert len(package) < 8000
            client.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                                   Code={"ZipFile": package})
            assert invoke_json(client, name, {"path": path}) == f"content of {name}"
        client.delete_function(FunctionName="gone")
    finally:
        server.stop()
    server = start_server(data_dir)
    try:
        client = client_for(server.endpoint)
        assert invoke_json(client, "kept", {"path": kept}) == "content of kept"
        assert [f["FunctionName"] for f in client.list_functions()["Functions"]] == ["kept"]
        assert [tree.name for tree in (data_dir / "code/trees").iterdir()] == [_address(client, "kept")]
        status, _, usage = raw(server, "GET", "/lamina/code-storage")
        assert status == 200 and usage["Trees"] == 1
        assert usage["ExtractedCodeSize"] == len(DEEP_READER) + len("content of kept")
    finally:
        server.stop()
        remove_tree(data_dir)  # pytest's own clean-up of old temporary directories recurses
    assert "Traceback" not in server.stderr_path.read_text()


def _address(client, name: str) -> str:
    """The content address (hex SHA-256) the server stores a function's code under."""
    location = client.get_function(FunctionName=name)["Code"]["Location"]
    return location.rsplit("/", 1)[1].removesuffix(".zip")
