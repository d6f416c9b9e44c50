"""Function URLs end to end: real HTTP clients (curl, http.client with the URL's Host) against a real server.

What AWS answers is from shared/reference/aws-recorded (TestLambdaURL, TestLambdaPermissions).
"""
from __future__ import annotations

import base64
import http.client
import json
import re
import subprocess
from urllib.parse import urlsplit

import pytest

from tests.support.polling import wait_until

FORBIDDEN = {"Message": "Forbidden. For troubleshooting Function URL authorization issues, see: "
                        "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"}
ECHO = "import json\ndef handler(event, context):\n    return {'statusCode': 200, 'body': json.dumps(event)}\n"
RESULTS = (
    "import json\n"
    "def handler(event, context):\n"
    "    return json.loads(event['body'])\n"
)


def public_url(lambda_client, name: str, qualifier: str | None = None, **settings: object) -> str:
    extra = {"Qualifier": qualifier} if qualifier else {}
    url = lambda_client.create_function_url_config(FunctionName=name, AuthType="NONE", **extra, **settings)
    lambda_client.add_permission(FunctionName=name, StatementId="public-url", Action="lambda:InvokeFunctionUrl",
                                 Principal="*", FunctionUrlAuthType="NONE", **extra)
    return url["FunctionUrl"]


def request(url: str, method: str = "GET", path: str = "/", body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, http.client.HTTPMessage, bytes]:
    """A request to the URL through 127.0.0.1 with the URL's host in the Host header (what glibc-resolving clients
    must do for *.localhost)."""
    parts = urlsplit(url)
    connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=60)
    try:
        connection.request(method, path, body=body, headers={"Host": parts.netloc, **(headers or {})})
        answer = connection.getresponse()
        return answer.status, answer.headers, answer.read()
    finally:
        connection.close()


@pytest.fixture
def echo_url(lambda_client, make_function) -> str:
    return public_url(lambda_client, make_function(code=ECHO))


def test_curl_reaches_the_url_by_name(echo_url) -> None:
    """curl resolves every *.localhost name to loopback (RFC 6761), so the FunctionUrl works as printed."""
    done = subprocess.run(["curl", "-s", "-i", f"{echo_url}hello?x=1"], capture_output=True, text=True, timeout=60)
    head, _, body = done.stdout.partition("\n\n")  # text mode reads \r\n as \n
    assert head.startswith("HTTP/1.1 200"), done.stdout
    assert "x-amzn-requestid" in head.lower()
    event = json.loads(body)
    assert (event["rawPath"], event["rawQueryString"], event["queryStringParameters"]) == ("/hello", "x=1", {"x": "1"})


def test_request_event_is_payload_format_2(echo_url) -> None:
    status, headers, body = request(echo_url, "POST", "/a%20b/c?k=1&k=2&z=", body=b'{"x": 1}',
                                    headers={"Content-Type": "application/json", "Cookie": "a=1; b=2",
                                             "User-Agent": "lamina-test", "X-Custom": "one"})
    assert status == 200, body
    event = json.loads(body)
    url_id = urlsplit(echo_url).hostname.split(".")[0]
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert (event["rawPath"], event["rawQueryString"]) == ("/a%20b/c", "k=1&k=2&z=")
    assert event["queryStringParameters"] == {"k": "1,2", "z": ""}
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["headers"]["x-custom"] == "one" and event["headers"]["user-agent"] == "lamina-test"
    assert (event["body"], event["isBase64Encoded"]) == ('{"x": 1}', False)
    context = event["requestContext"]
    assert (context["accountId"], context["apiId"], context["domainPrefix"]) == ("anonymous", url_id, url_id)
    assert context["domainName"] == urlsplit(echo_url).hostname
    assert context["http"]["method"] == "POST" and context["http"]["path"] == "/a b/c"
    assert context["http"]["sourceIp"] == "127.0.0.1" and context["http"]["userAgent"] == "lamina-test"
    assert context["requestId"] == headers["x-amzn-RequestId"]
    assert context["stage"] == "$default" and isinstance(context["timeEpoch"], int)


def test_binary_bodies_arrive_base64(echo_url) -> None:
    payload = bytes(range(256))
    status, _, body = request(echo_url, "PUT", "/", body=payload, headers={"Content-Type": "application/octet-stream"})
    event = json.loads(body)
    assert status == 200 and event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == payload


@pytest.mark.parametrize(("result", "expected_body"), [
    ("hello", b"hello"),
    ({"hello": "world"}, b'{"hello":"world"}'),
    (["hello", 3, True], b'["hello",3,true]'),
    (3, b"3"),
    (True, b"true"),
])
def test_plain_results_are_200_json(lambda_client, make_function, result, expected_body) -> None:
    url = public_url(lambda_client, make_function(code=RESULTS))
    status, headers, body = request(url, "POST", "/", body=json.dumps(result).encode(),
                                    headers={"Content-Type": "application/json"})
    assert (status, headers["Content-Type"], body) == (200, "application/json", expected_body)


def test_http_response_objects_map_status_headers_cookies(lambda_client, make_function) -> None:
    url = public_url(lambda_client, make_function(code=RESULTS))
    result = {"statusCode": 418, "headers": {"X-Tea": "pot", "Content-Type": "text/plain"},
              "cookies": ["a=1; Path=/", "b=2"], "body": base64.b64encode(b"\x00\x01").decode(),
              "isBase64Encoded": True}
    status, headers, body = request(url, "POST", "/", body=json.dumps(result).encode(),
                                    headers={"Content-Type": "application/json"})
    assert (status, headers["x-tea"], headers["content-type"], body) == (418, "pot", "text/plain", b"\x00\x01")
    assert headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2"]


def test_function_error_is_502(lambda_client, make_function) -> None:
    url = public_url(lambda_client, make_function(code="def handler(event, context):\n    raise ValueError('no')\n"))
    status, headers, body = request(url)
    assert (status, body) == (502, b"Internal Server Error")
    assert headers["x-amzn-RequestId"]


def test_throttled_url_is_429(lambda_client, make_function) -> None:
    name = make_function(code=ECHO)
    url = public_url(lambda_client, name)
    lambda_client.put_function_concurrency(FunctionName=name, ReservedConcurrentExecutions=0)
    status, headers, _ = request(url)
    assert (status, headers["x-amzn-ErrorType"]) == (429, "TooManyRequestsException")


def test_without_public_permission_the_url_is_forbidden(lambda_client, make_function) -> None:
    url = lambda_client.create_function_url_config(FunctionName=make_function(code=ECHO), AuthType="NONE")
    status, headers, body = request(url["FunctionUrl"], "POST", "/", body=b"text",
                                    headers={"Content-Type": "text/plain"})
    assert (status, headers["x-amzn-ErrorType"], json.loads(body)) == (403, "AccessDeniedException", FORBIDDEN)


def test_unknown_and_deleted_urls_answer_message_null(lambda_client, make_function, echo_url) -> None:
    unknown = echo_url.replace(urlsplit(echo_url).hostname.split(".")[0], "0123456789abcdefghijklmnopqrstuv")
    assert request(unknown)[::2] == (403, b'{"Message":null}')
    name = make_function(code=ECHO)
    url = public_url(lambda_client, name)
    assert request(url)[0] == 200
    lambda_client.delete_function_url_config(FunctionName=name)
    assert request(url)[::2] == (403, b'{"Message":null}')


def test_alias_url_runs_the_alias_version_and_403s_once_the_alias_is_gone(lambda_client, make_function) -> None:
    name = make_function(code="import os\ndef handler(event, context):\n"
                              "    return os.environ['AWS_LAMBDA_FUNCTION_VERSION']\n")
    version = lambda_client.publish_version(FunctionName=name)["Version"]
    lambda_client.create_alias(FunctionName=name, Name="live", FunctionVersion=version)
    url = public_url(lambda_client, name, qualifier="live")
    assert request(url)[::2] == (200, version.encode())
    lambda_client.delete_alias(FunctionName=name, Name="live")
    status, headers, body = request(url)
    assert (status, headers["x-amzn-ErrorType"], json.loads(body)) == (403, "AccessDeniedException", FORBIDDEN)


def test_cors_preflight_and_actual_responses(lambda_client, make_function) -> None:
    url = public_url(lambda_client, make_function(code=ECHO), Cors={
        "AllowOrigins": ["https://app.example"], "AllowMethods": ["GET", "POST"], "AllowHeaders": ["x-custom"],
        "ExposeHeaders": ["x-exposed"], "MaxAge": 300,
    })
    status, headers, body = request(url, "OPTIONS", "/", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "x-custom",
    })
    assert (status, body) == (200, b"")  # answered by the front door: the echo function would return a body
    assert headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "POST" in headers["Access-Control-Allow-Methods"] and headers["Access-Control-Max-Age"] == "300"
    status, headers, _ = request(url, "GET", "/", headers={"Origin": "https://app.example"})
    assert status == 200 and headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert headers["Access-Control-Expose-Headers"] == "x-exposed"
    _, headers, _ = request(url, "GET", "/", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in headers


def test_no_cors_headers_without_cors_config(echo_url) -> None:
    _, headers, _ = request(echo_url, "GET", "/", headers={"Origin": "https://app.example"})
    assert not [name for name in headers if name.lower().startswith("access-control-")]


def test_request_over_6_mb_is_413(echo_url) -> None:
    status, _, _ = request(echo_url, "POST", "/", body=b"x" * (6 * 1024 * 1024 + 1),
                           headers={"Content-Type": "text/plain"})
    assert status == 413


def test_url_goes_with_its_function(lambda_client, make_function) -> None:
    name = make_function(code=ECHO)
    url = public_url(lambda_client, name)
    assert request(url)[0] == 200
    lambda_client.delete_function(FunctionName=name)
    wait_until(lambda: request(url)[::2] == (403, b'{"Message":null}'), timeout=10)


def test_repeated_headers_are_joined_and_the_source_ip_is_the_peer(echo_url) -> None:
    parts = urlsplit(echo_url)
    connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=60)
    try:
        connection.putrequest("GET", "/", skip_host=True)
        connection.putheader("Host", parts.netloc)
        connection.putheader("X-Multi", "one")
        connection.putheader("X-Multi", "two")
        connection.putheader("Cookie", "a=1")
        connection.putheader("Cookie", "b=2")
        connection.putheader("X-Forwarded-For", "203.0.113.9")  # a client cannot choose its sourceIp
        connection.endheaders()
        event = json.loads(connection.getresponse().read())
    finally:
        connection.close()
    assert event["headers"]["x-multi"] == "one,two"
    assert event["cookies"] == ["a=1", "b=2"]
    assert event["requestContext"]["http"]["sourceIp"] == "127.0.0.1"


def test_url_domain_option_names_and_routes_the_urls(tmp_path) -> None:
    from conftest import PY_RUNTIME, ROLE, client_for, start_server, zip_files

    server = start_server(tmp_path / "data", "--url-domain", "fn.example.test")
    try:
        client = client_for(server.endpoint)
        client.create_function(FunctionName="web", Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                               Code={"ZipFile": zip_files({"app.py": ECHO})})
        url = public_url(client, "web")
        port = urlsplit(server.endpoint).port
        assert re.fullmatch(rf"http://[a-z0-9]{{32}}\.lambda-url\.us-east-1\.fn\.example\.test:{port}/", url)
        status, _, body = request(url)
        assert status == 200 and json.loads(body)["requestContext"]["domainName"] == urlsplit(url).hostname
        # the same id under another domain is not one of this server's URLs
        elsewhere = url.replace("fn.example.test", "localhost")
        assert request(elsewhere)[::2] == (403, b'{"Message":null}')
    finally:
        server.stop()
