"""The payload-format-2.0 event of a function URL request, against the events AWS recorded through its echo fixture
(../shared/reference/aws-recorded/test_lambda.snapshot.json, TestLambdaURL::test_lambda_url_echo_http_fixture_* and
test_lambda_url_form_payload).

The fixture's function answers with parts of its event: `args` = queryStringParameters (`{}` when absent), `data` =
body, `domain` = requestContext.domainName, `headers`, `method`, `origin` = requestContext.http.sourceIp and `path` =
requestContext.http.path; the trim variant drops headers starting with `x-amzn` or `x-forwarded-`. The recording
replaces volatile values with placeholders, one per distinct value (`<origin:1>` marks both the origin and
x-forwarded-for: the same value), and keeps JSON object texts parsed.
"""
from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from lamina.services.function_urls.event import (
    ANONYMOUS,
    build_event,
    encode_body,
    is_text,
    new_trace_id,
    query_parameters,
    request_time,
    split_target,
)

RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "aws-recorded"
PREFIX = "tests/aws/services/lambda_/test_lambda.py::TestLambdaURL::"
URL_ID = "abcdefghij0123456789klmnopqrstuv"
HOST = f"{URL_ID}.lambda-url.us-east-1.on.aws"
NOW = 1796109392.123  # 01/Dec/2026:07:16:32.123 UTC
TRACE = re.compile(r"Root=1-[0-9a-f]{8}-[0-9a-f]{24}")


def recorded(test: str) -> dict[str, Any]:
    path = RECORDINGS / "test_lambda.snapshot.json"
    if not path.is_file():
        pytest.skip(f"no AWS recordings at {RECORDINGS}")
    snapshot = json.loads(path.read_text())
    if PREFIX + test not in snapshot:
        pytest.skip(f"{test} is not recorded")
    return snapshot[PREFIX + test]["recorded-content"]["url_response"]


def event_for(target: str, headers: list[tuple[str, str]], body: bytes, **extra: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = dict(method="POST", target=target, headers=headers, body=body,
                                     source_ip="203.0.113.9", url_id=URL_ID, region="us-east-1",
                                     request_id="11111111-2222-3333-4444-555555555555", now=NOW)
    arguments.update(extra)
    return build_event(**arguments)


def echo(event: dict[str, Any], trim: bool) -> dict[str, Any]:
    """What the recorded echo function answers for an event."""
    headers = event["headers"]
    if trim:
        headers = {k: v for k, v in headers.items() if not (k.startswith("x-amzn") or k.startswith("x-forwarded-"))}
    return {
        "args": event.get("queryStringParameters", {}),
        "data": event.get("body", ""),
        "domain": event["requestContext"]["domainName"],
        "headers": headers,
        "method": event["requestContext"]["http"]["method"],
        "origin": event["requestContext"]["http"]["sourceIp"],
        "path": event["requestContext"]["http"]["path"],
    }


def matches(recording: Any, ours: Any, placeholders: dict[str, Any]) -> bool:
    """Whether our value fits the recorded one: equal, or the same value wherever the same placeholder stands."""
    if isinstance(recording, str) and re.fullmatch(r"<[a-z0-9-]+:\d+>", recording):
        return placeholders.setdefault(recording, ours) == ours
    if isinstance(recording, dict) and isinstance(ours, dict):
        return recording.keys() == ours.keys() and all(matches(v, ours[k], placeholders) for k, v in recording.items())
    if isinstance(recording, dict) and isinstance(ours, str):  # a JSON text the recording keeps parsed
        return recording == json.loads(ours)
    return recording == ours


#: The echo requests as python-requests sent them (its default headers; `Connection: keep-alive` included). The
#: default case's URL, `/pa2%Fth/1?q=query&multiQuery=foo&multiQuery=%2Fbar`, goes out with `%` quoted as `%25`.
JSON_REQUEST = [("Host", HOST), ("user-agent", "test/echo"), ("Accept-Encoding", "gzip, deflate"), ("Accept", "*/*"),
                ("Connection", "keep-alive"), ("content-type", "application/json"),
                ("ExTrA-HeadErs", "With WeiRd CapS"), ("Content-Length", "14")]


def test_recorded_default_echo() -> None:
    """Every header AWS added, the decoded path, the decoded and joined query parameters, the text body."""
    recording = recorded("test_lambda_url_echo_http_fixture_default")
    event = event_for("/pa2%25Fth/1?q=query&multiQuery=foo&multiQuery=%2Fbar", JSON_REQUEST, b'{"foo": "bar"}',
                      tls_version="TLSv1.3", tls_cipher_suite="TLS_AES_128_GCM_SHA256", scheme="https",
                      server_port=443)
    ours = echo(event, trim=False)
    placeholders: dict[str, Any] = {}
    assert matches(recording, ours, placeholders), (recording, ours)
    assert placeholders["<domain:1>"] == HOST and placeholders["<origin:1>"] == "203.0.113.9"
    assert TRACE.fullmatch(ours["headers"]["x-amzn-trace-id"])
    assert (ours["headers"]["x-forwarded-proto"], ours["headers"]["x-forwarded-port"]) == ("https", "443")
    assert event["rawPath"] == "/pa2%25Fth/1" and event["isBase64Encoded"] is False


def test_recorded_trimmed_echo() -> None:
    recording = recorded("test_lambda_url_echo_http_fixture_trim_x_headers")
    event = event_for("/path/1?q=query", JSON_REQUEST, b'{"foo": "bar"}')
    assert matches(recording, echo(event, trim=True), {})


def test_recorded_form_payload_is_base64() -> None:
    """multipart/form-data is base64 although every byte is ASCII; no query means no queryStringParameters."""
    recording = recorded("test_lambda_url_form_payload")
    body = (b"\r\n--4efd159eae0c4f4e125a5a509e073d85\r\n"
            b'Content-Disposition: form-data; name="formfield"\r\n\r\n'
            b"not a file, just a field"
            b"\r\n--4efd159eae0c4f4e125a5a509e073d85\r\n"
            b'Content-Disposition: form-data; name="foo"; filename="foo"\r\n'
            b"Content-Type: text/plain;\r\n\r\n"
            b"bar"
            b"\r\n\r\n--4efd159eae0c4f4e125a5a509e073d85--\r\n")
    headers = [("Host", HOST), ("User-Agent", "python/test-request"), ("Accept-Encoding", "gzip, deflate"),
               ("Accept", "*/*"), ("Connection", "keep-alive"),
               ("Content-Type", "multipart/form-data; boundary=4efd159eae0c4f4e125a5a509e073d85"),
               ("Content-Length", str(len(body)))]
    event = event_for("/test/value", headers, body)
    assert matches(recording, echo(event, trim=True), {})
    assert event["isBase64Encoded"] is True and base64.b64decode(event["body"]) == body
    assert "queryStringParameters" not in event and event["rawQueryString"] == ""


# ---- the event's fields -------------------------------------------------------------------------------------------

def test_shape_and_order() -> None:
    event = event_for("/my/path?a=1&a=2&b=x", [("Host", HOST), ("Cookie", "c1=v1; c2=v2"), ("User-Agent", "agent")],
                      b"hi", method="GET")
    assert list(event) == ["version", "routeKey", "rawPath", "rawQueryString", "cookies", "headers",
                           "queryStringParameters", "requestContext", "body", "isBase64Encoded"]
    assert event["version"] == "2.0" and event["routeKey"] == "$default"
    assert event["queryStringParameters"] == {"a": "1,2", "b": "x"}
    assert event["cookies"] == ["c1=v1", "c2=v2"]
    assert event["body"] == "aGk=" and event["isBase64Encoded"] is True  # no Content-Type: base64
    context = event["requestContext"]
    assert list(context) == ["accountId", "apiId", "domainName", "domainPrefix", "http", "requestId", "routeKey",
                             "stage", "time", "timeEpoch"]
    assert context == {
        "accountId": ANONYMOUS, "apiId": URL_ID, "domainName": HOST, "domainPrefix": URL_ID,
        "http": {"method": "GET", "path": "/my/path", "protocol": "HTTP/1.1", "sourceIp": "203.0.113.9",
                 "userAgent": "agent"},
        "requestId": "11111111-2222-3333-4444-555555555555", "routeKey": "$default", "stage": "$default",
        "time": "01/Dec/2026:07:16:32 +0000", "timeEpoch": 1796109392123,
    }


def test_headers_lowercased_joined_and_cookie_kept() -> None:
    event = event_for("/", [("Host", HOST), ("X-Repeat", "one"), ("x-repeat", "two,three"), ("Cookie", "a=1; b=two"),
                            ("Cookie", "c=3"), ("Keep-Alive", "timeout=5"), ("Connection", "close")], b"")
    headers = event["headers"]
    assert headers["x-repeat"] == "one,two,three"
    assert headers["cookie"] == "a=1; b=two,c=3"
    assert event["cookies"] == ["a=1", "b=two", "c=3"]
    assert "connection" not in headers and "keep-alive" not in headers
    assert list(headers)[:3] == ["host", "x-repeat", "cookie"]
    assert list(headers)[3:] == ["x-amzn-trace-id", "x-forwarded-proto", "x-forwarded-port", "x-forwarded-for"]


def test_front_end_headers() -> None:
    event = event_for("/", [("Host", f"{HOST}:9000"), ("X-Forwarded-Proto", "https"), ("X-Forwarded-Port", "1"),
                            ("X-Amzn-Tls-Version", "fake"), ("X-Forwarded-For", "198.51.100.7")], b"")
    headers = event["headers"]
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-port"] == "9000"
    assert headers["x-forwarded-for"] == "198.51.100.7, 203.0.113.9"
    assert "x-amzn-tls-version" not in headers
    assert headers["host"] == f"{HOST}:9000" and event["requestContext"]["domainName"] == HOST
    assert TRACE.fullmatch(headers["x-amzn-trace-id"])


def test_server_port_and_given_domain() -> None:
    event = event_for("/", [("Host", HOST)], b"", server_port=8080, domain_name="example.test")
    assert event["headers"]["x-forwarded-port"] == "8080"
    assert event["requestContext"]["domainName"] == "example.test"
    assert event_for("/", [], b"")["requestContext"]["domainName"] == f"{URL_ID}.lambda-url.us-east-1.localhost"
    assert event_for("/", [], b"")["headers"]["x-forwarded-port"] == "80"


def test_trace_header() -> None:
    incoming = "Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1"
    assert event_for("/", [("X-Amzn-Trace-Id", incoming)], b"")["headers"]["x-amzn-trace-id"] == incoming
    assert TRACE.fullmatch(event_for("/", [("X-Amzn-Trace-Id", "junk")], b"")["headers"]["x-amzn-trace-id"])
    assert event_for("/", [], b"", trace_id="Root=1-x")["headers"]["x-amzn-trace-id"] == "Root=1-x"
    assert new_trace_id(NOW).startswith(f"Root=1-{int(NOW):08x}-")
    assert new_trace_id(NOW) != new_trace_id(NOW)


def test_no_body_no_query_no_cookies() -> None:
    event = event_for("/", [("Host", HOST), ("Content-Type", "application/octet-stream")], b"", method="GET")
    assert "body" not in event and event["isBase64Encoded"] is False
    assert "queryStringParameters" not in event and "cookies" not in event
    assert event["rawQueryString"] == ""
    assert event["requestContext"]["http"]["userAgent"] == ""


@pytest.mark.parametrize("content_type, text", [
    ("text/plain", True), ("text/html; charset=utf-8", True), ("TEXT/CSV", True), ("application/json", True),
    ("application/json; charset=UTF-8", True), ("application/xml", True), ("application/javascript", True),
    ("application/x-www-form-urlencoded", False), ("multipart/form-data; boundary=x", False),
    ("application/octet-stream", False), ("image/png", False), (None, False), ("", False),
    ("application/vnd.api+json", False),
])
def test_text_or_base64(content_type: str | None, text: bool) -> None:
    assert is_text(content_type) is text
    body, encoded = encode_body(b"a=1&b=%C3%A9", content_type)
    assert encoded is not text
    assert body == ("a=1&b=%C3%A9" if text else base64.b64encode(b"a=1&b=%C3%A9").decode())


def test_text_that_is_not_utf8_goes_base64() -> None:
    assert encode_body(b"\xff\xfe", "text/plain") == ("//4=", True)
    assert encode_body("é".encode(), "text/plain") == ("é", False)
    assert encode_body(b"", "text/plain") == (None, False)


def test_paths_and_queries() -> None:
    assert split_target("/a%20b/c?x=1&y=%2F#frag") == ("/a%20b/c", "x=1&y=%2F")
    assert split_target("") == ("/", "")
    event = event_for("/a%20b/c%2Fd+e?x=a+b&flag&x=%E2%82%AC&empty=", [], b"")
    assert event["rawPath"] == "/a%20b/c%2Fd+e"
    assert event["requestContext"]["http"]["path"] == "/a b/c/d+e"
    assert event["rawQueryString"] == "x=a+b&flag&x=%E2%82%AC&empty="
    assert event["queryStringParameters"] == {"x": "a b,€", "flag": "", "empty": ""}
    assert query_parameters("") is None and query_parameters("&&") is None


def test_iam_requests() -> None:
    iam = {"iam": {"accessKey": "AKIA", "accountId": "111122223333", "callerId": "AIDA", "cognitoIdentity": None,
                   "principalOrgId": None, "userArn": "arn:aws:iam::111122223333:user/u", "userId": "AIDA"}}
    context = event_for("/", [], b"", account_id="123456789012", authorizer=iam)["requestContext"]
    assert context["accountId"] == "123456789012"
    assert list(context)[:3] == ["accountId", "apiId", "authorizer"] and context["authorizer"] == iam


def test_time_format() -> None:
    assert request_time(0) == "01/Jan/1970:00:00:00 +0000"
    assert request_time(1583348638.390) == "04/Mar/2020:19:03:58 +0000"
    assert event_for("/", [], b"", now=1583348638.390)["requestContext"]["timeEpoch"] == 1583348638390


def test_event_is_json() -> None:
    event = event_for("/", [("Host", HOST)], "ü".encode(), protocol="HTTP/1.0")
    assert json.loads(json.dumps(event)) == event
    assert event["requestContext"]["http"]["protocol"] == "HTTP/1.0"
