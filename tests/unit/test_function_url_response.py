"""Function URL response mapping (BUFFERED) and the front end's own answers, against AWS's recorded URL invocations
(../shared/reference/aws-recorded/test_lambda.snapshot.json) where a case is recorded."""
from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from lamina.services.function_urls import javajson
from lamina.services.function_urls.response import (
    ERROR_TYPE_HEADER,
    FORBIDDEN_MESSAGE,
    INTERNAL_SERVER_ERROR,
    MAX_PAYLOAD_BYTES,
    REQUEST_ID_HEADER,
    decode_base64_leniently,
    forbidden,
    function_error,
    function_timeout,
    http_headers,
    map_buffered_result,
    request_too_large,
    status_code,
    throttled,
    url_not_found,
)

RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "aws-recorded"
PREFIX = "tests/aws/services/lambda_/test_lambda.py::"

#: What each recorded test_lambda_url_invocation[...] case's Python handler returned (the parity suite's table).
RETURNED: dict[str, Any] = {
    "dict": {"hello": "world"},
    "http-response": {"statusCode": 200, "body": "body123"},
    "http-response-json": {"statusCode": 200, "body": json.dumps({"hello": "world"})},
    "list-mixed": ["hello", 3, True],
    "string": "hello",
    "integer": 3,
    "float": 3.1,
    "boolean": True,
}


def recorded(test: str) -> dict[str, Any]:
    path = RECORDINGS / "test_lambda.snapshot.json"
    if not path.is_file():
        pytest.skip(f"no AWS recordings at {RECORDINGS}")
    snapshot = json.loads(path.read_text())
    if PREFIX + test not in snapshot:
        pytest.skip(f"{test} is not recorded")
    return snapshot[PREFIX + test]["recorded-content"]


def header(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [value for key, value in headers if key.lower() == name.lower()]


# ---- the recorded invocations ------------------------------------------------------------------------------------

@pytest.mark.parametrize("case", sorted(RETURNED))
def test_recorded_result_mapping(case: str) -> None:
    """The runtime sends Python's json.dumps of the result (`{"hello": "world"}`, with spaces); AWS's answer is
    recorded byte count, Content-Type and text."""
    answer = recorded(f"TestLambdaURL::test_lambda_url_invocation[{case}]")["lambda_url_invocation"]
    status, headers, body = map_buffered_result(json.dumps(RETURNED[case]).encode())
    assert status == answer["statuscode"]
    assert header(headers, "Content-Type") == [answer["headers"]["Content-Type"]]
    assert str(len(body)) == answer["headers"]["Content-Length"]
    content = answer["content"]
    # the recording keeps JSON object texts parsed; anything else is the text itself
    assert (json.loads(body) if isinstance(content, dict) else body.decode()) == content


def test_recorded_string_is_sent_unquoted() -> None:
    answer = recorded("TestLambdaURL::test_lambda_url_invocation[string]")["lambda_url_invocation"]
    assert map_buffered_result(b'"hello"')[2] == answer["content"].encode() == b"hello"


def test_recorded_forbidden_message() -> None:
    message = recorded("TestLambdaPermissions::test_lambda_permission_url_invocation")[
        "lambda_url_invocation_missing_permission"]["Message"]
    status, headers, body = forbidden()
    assert message == FORBIDDEN_MESSAGE
    assert (status, json.loads(body)) == (403, {"Message": message})
    assert body == b'{"Message":"Forbidden. For troubleshooting Function URL authorization issues, see: ' \
                   b'https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"}'


def test_recorded_forbidden_after_alias_delete() -> None:
    answer = recorded("TestLambdaURL::test_lambda_url_persists_after_alias_delete")[
        "invoke_deleted_alias_url_response_delayed"]
    status, headers, body = forbidden()
    assert status == answer["status_code"]
    assert json.loads(body) == answer["content"]
    for name, value in answer["headers"].items():
        assert header(headers, name) == [value]


def test_recorded_request_id_header_name() -> None:
    answer = recorded("TestRequestIdHandling::test_request_id_invoke_url")["lambda_url_invocation"]
    assert REQUEST_ID_HEADER in answer["headers"]


def test_unknown_url() -> None:
    """The validated test_lambda_url_non_existing_url asserts the exact text, status and both headers."""
    recorded("TestLambdaURL::test_lambda_url_non_existing_url")
    status, headers, body = url_not_found()
    assert (status, body) == (403, b'{"Message":null}')
    assert header(headers, "Content-Type") == ["application/json"]
    assert header(headers, "x-amzn-ErrorType") == ["AccessDeniedException"]


def test_function_error() -> None:
    """The validated test_lambda_url_invocation_exception asserts `Internal Server Error` and 502."""
    recorded("TestLambdaURL::test_lambda_url_invocation_exception")
    assert function_error() == (502, [("Content-Type", "application/json")], b"Internal Server Error")
    assert function_timeout() == function_error()


# ---- statusCode results ---------------------------------------------------------------------------------------

def test_explicit_response_with_headers_cookies_and_status() -> None:
    status, headers, body = map_buffered_result(json.dumps({
        "statusCode": 202,
        "headers": {"Content-Type": "application/x-owned", "X-Owned": "yes", "Set-Cookie": "header=c"},
        "cookies": ["a=1; Path=/", "b=2; HttpOnly"],
        "body": "accepted\n",
    }).encode())
    assert (status, body) == (202, b"accepted\n")
    assert headers == [("Content-Type", "application/x-owned"), ("x-owned", "yes"), ("set-cookie", "header=c"),
                       ("set-cookie", "a=1; Path=/"), ("set-cookie", "b=2; HttpOnly")]


def test_cookies_alone_are_set_cookie_headers() -> None:
    status, headers, body = map_buffered_result(json.dumps({
        "statusCode": 201, "headers": {"Content-Type": "application/octet-stream"}, "cookies": ["binary=yes"],
        "body": base64.b64encode(b"A\x00\xff\n").decode(), "isBase64Encoded": True}).encode())
    assert (status, body) == (201, b"A\x00\xff\n")
    assert headers == [("Content-Type", "application/octet-stream"), ("Set-Cookie", "binary=yes")]


@pytest.mark.parametrize("value, expected", [(201, 201), ("418", 418), (200.0, 200), (100, 100), (599, 599)])
def test_status_codes(value: Any, expected: int) -> None:
    assert map_buffered_result(json.dumps({"statusCode": value, "body": "x"}).encode())[0] == expected
    assert status_code(value) == expected


@pytest.mark.parametrize("value", [700, 99, 600, "abc", " 418", True, None, 200.5, [200], "٤١٨"])
def test_bad_status_codes_are_502(value: Any) -> None:
    assert map_buffered_result(json.dumps({"statusCode": value, "body": "x"}).encode()) == function_error()


def test_default_content_type_and_missing_body() -> None:
    assert map_buffered_result(b'{"statusCode": 204}') == (204, [("Content-Type", "application/json")], b"")


def test_header_values_that_are_not_strings_print_as_java() -> None:
    headers = map_buffered_result(json.dumps({"statusCode": 200, "headers": {
        "x-owned": {"bad": True}, "X-Number": 7, "x-float": 1.5, "x-list": ["a", 2], "x-bool": False,
        "x-null": None}, "body": "b"}).encode())[1]
    assert headers == [("Content-Type", "application/json"), ("x-owned", "{bad=true}"), ("x-number", "7"),
                       ("x-float", "1.5"), ("x-list", "[a, 2]"), ("x-bool", "false")]


def test_non_string_body_is_reserialised() -> None:
    result = map_buffered_result(b'{"statusCode": 200, "body": {"not": "string", "url": "a/b", "n": [1.5]}}')
    assert result == (200, [("Content-Type", "application/json")], b'{"not":"string","url":"a\\/b","n":[1.5]}')


def test_base64_body_decodes_leniently() -> None:
    """`!!!not-base64!!!` decodes as commons-codec does: `!` skipped, `-` read as `+`."""
    body = map_buffered_result(b'{"statusCode": 200, "body": "!!!not-base64!!!", "isBase64Encoded": true}')[2]
    assert base64.b64encode(body) == b"not+base6w=="


@pytest.mark.parametrize("text, expected", [
    ("QUJD", b"ABC"), ("QUI=", b"AB"), ("QUI", b"AB"), ("QQ", b"A"), ("Q", b""), ("", b""),
    ("QUJD\nREVG", b"ABCDEF"), ("-_-_", base64.b64decode("+/+/")), ("QQ==QUJD", b"A"), ("QU Jé D", b"ABC"),
])
def test_lenient_base64(text: str, expected: bytes) -> None:
    assert decode_base64_leniently(text) == expected


def test_is_base64_encoded_must_be_true() -> None:
    assert map_buffered_result(b'{"statusCode": 200, "body": "QUJD", "isBase64Encoded": "true"}')[2] == b"QUJD"


# ---- other JSON values -----------------------------------------------------------------------------------------

def test_object_members_in_java_hashmap_order() -> None:
    """AWS re-serialises in a java.util.HashMap's order (a native capture: a function's {event, token, requestId}
    arrived as requestId, event, token; an echoed event's members as headers, isBase64Encoded, rawPath, ...)."""
    body = map_buffered_result(json.dumps({"event": {"version": "2.0", "routeKey": "$default", "rawPath": "/",
                                                     "rawQueryString": "", "headers": {}, "requestContext": {},
                                                     "isBase64Encoded": False},
                                           "token": "t", "requestId": "r"}).encode())[2]
    assert body == (b'{"requestId":"r","event":{"headers":{},"isBase64Encoded":false,"rawPath":"\\/",'
                    b'"routeKey":"$default","requestContext":{},"version":"2.0","rawQueryString":""},"token":"t"}')


@pytest.mark.parametrize("payload, expected", [
    (b"null", b"null"), (b"42", b"42"), (b"-0", b"0"), (b"1.0", b"1.0"), (b"1e20", b"1.0E20"),
    (b"0.0001", b"1.0E-4"), (b"123456789.5", b"1.234567895E8"), (b"1e400", b"null"), (b"[]", b"[]"),
    (b'"a/b"', b"a/b"), (b'["a/b", "\\u0001\\u2028\\u00e9"]', b'["a\\/b","\\u0001\\u2028\xc3\xa9"]'),
    (b'{"a": 1, "a": 2}', b'{"a":2}'), (b'"\\ud800"', b"?"),
])
def test_json_values(payload: bytes, expected: bytes) -> None:
    assert map_buffered_result(payload) == (200, [("Content-Type", "application/json")], expected)


@pytest.mark.parametrize("payload", [b"not json", b"NaN", b"[Infinity]", b"9223372036854775808", b"{", b" "])
def test_unreadable_results_are_502(payload: bytes) -> None:
    assert map_buffered_result(payload) == function_error()


@pytest.mark.parametrize("depth", [400, 900, 5000])
def test_deep_results_never_crash(depth: int) -> None:
    nested = b"[" * depth + b"]" * depth
    assert map_buffered_result(nested) in (function_error(), (200, [("Content-Type", "application/json")], nested))
    deep_header = b'{"statusCode": 200, "headers": {"x": ' + nested + b"}}"
    assert map_buffered_result(deep_header)[0] in (200, 502)


def test_empty_result() -> None:
    assert map_buffered_result(b"") == (200, [("Content-Type", "application/json")], b"")


def test_long_limits_are_kept() -> None:
    assert map_buffered_result(b"[9223372036854775807,-9223372036854775808]")[2] == \
        b"[9223372036854775807,-9223372036854775808]"


def _index(key: str, capacity: int) -> int:
    code = javajson.string_hash(key)
    return (code ^ (code >> 16)) & (capacity - 1)


def test_hashmap_order_grows_past_three_quarters() -> None:
    """12 keys fit a table of 16, the 13th doubles it to 32."""
    keys = "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo lima mike".split()
    in_16, in_32 = (sorted(keys, key=lambda k: (_index(k, size), keys.index(k))) for size in (16, 32))
    assert in_16 != in_32
    assert javajson.hashmap_order(keys) == in_32
    assert javajson.hashmap_order(keys[:12]) == [key for key in in_16 if key != "mike"]


def test_hashmap_order_grows_on_a_long_chain() -> None:
    """A 9th key in one chain of a table below 64 doubles the table (treeifyBin) instead of making a tree."""
    candidates = [f"key{i}" for i in range(2000)]
    chain = [key for key in candidates if _index(key, 16) == 5]
    split = [key for key in chain if _index(key, 32) == 5][:5] + [key for key in chain if _index(key, 32) == 21][:4]
    assert len(split) == 9
    assert javajson.hashmap_order(split[:8]) == split[:8]  # one chain of 8 in a table of 16: insertion order
    assert javajson.hashmap_order(split) == sorted(split, key=lambda k: (_index(k, 32), split.index(k)))


def test_string_hash_is_javas() -> None:
    assert javajson.string_hash("") == 0
    assert javajson.string_hash("Aa") == javajson.string_hash("BB") == 2112
    assert javajson.string_hash("hello") == 99162322
    assert javajson.string_hash("\U0001f600") == (31 * 0xD83D + 0xDE00)


# ---- the front end's error answers ---------------------------------------------------------------------------

def test_throttled() -> None:
    status, headers, body = throttled()
    assert (status, json.loads(body)) == (429, {"Message": "Rate Exceeded."})
    assert header(headers, ERROR_TYPE_HEADER) == ["TooManyRequestsException"]


def test_request_too_large() -> None:
    status, headers, body = request_too_large()
    assert status == 413
    assert json.loads(body) == {"Message": f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the "
                                           "InvokeFunction operation"}
    assert MAX_PAYLOAD_BYTES == 6 * 1024 * 1024


def test_internal_server_error_text() -> None:
    assert INTERNAL_SERVER_ERROR == b"Internal Server Error"


def test_http_headers_defaults() -> None:
    assert http_headers(None, None) == [("Content-Type", "application/json")]
    assert http_headers({"content-type": "text/html"}, ["c=1"], default_content_type="x/y") == \
        [("Content-Type", "text/html"), ("Set-Cookie", "c=1")]
    assert http_headers("nonsense", "nonsense", default_content_type="x/y") == [("Content-Type", "x/y")]
