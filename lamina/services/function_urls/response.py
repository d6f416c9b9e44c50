"""A BUFFERED function URL's answer: the function's result mapped to HTTP, and the front end's own error answers.

Every function returns `HttpResult` = (status, headers, body). The headers are the ones AWS decides; Content-Length,
Date, `x-amzn-RequestId` and `X-Amzn-Trace-Id` are the wiring's (the HTTP layer writes Content-Length itself).

Mapping (recorded cases in the comments are AWS's own, from tests/aws-recorded; "capture" means a native AWS capture
published by a third party; anything else is inferred and says so):

- an object with `statusCode` is an HTTP response: that status (a number or a numeric string, recorded `"418"`;
  outside 100-599, capture 700, AWS answers 502), its `headers` (names lower-cased, values that are not strings
  printed as Java does, capture `{bad=true}`), its `cookies` (one Set-Cookie each, after a Set-Cookie of `headers`),
  its `body` (a string as it is, recorded; anything else re-serialised as JSON, capture) and `isBase64Encoded`
  (the body decoded leniently, as Apache commons-codec does, capture); Content-Type defaults to application/json
  (recorded). `multiValueHeaders` is an API Gateway 1.0 field and payload 2.0 ignores it (inferred: not observed);
- a JSON string is the body itself, unquoted (recorded: `"hello"` answers `hello`, 5 bytes);
- any other JSON value (number, boolean, null, list, object without `statusCode`) answers 200 application/json with
  the value re-serialised as the front end does (recorded: `{"hello":"world"}` 17 bytes, `["hello",3,true]`,
  `3`, `3.1`, `true`; `javajson` has the rules);
- a payload the front end cannot read as JSON is a 502 like a function error (inferred).
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from lamina.services.function_urls import javajson

HttpResult = tuple[int, list[tuple[str, str]], bytes]

JSON_TYPE = "application/json"
CONTENT_TYPE = "Content-Type"
#: The response header names AWS uses (recorded: `x-amzn-RequestId` on a URL answer, `x-amzn-ErrorType` on a 403).
REQUEST_ID_HEADER = "x-amzn-RequestId"
ERROR_TYPE_HEADER = "x-amzn-ErrorType"
TRACE_ID_HEADER = "X-Amzn-Trace-Id"
#: A synchronous invocation's payload limit, in both directions (the Invoke API's, 6 MB).
MAX_PAYLOAD_BYTES = 6291456

#: The body of a 502: plain text, not JSON, although the Content-Type says JSON (recorded in the validated test of
#: test_lambda_url_invocation_exception, and in the capture with its headers).
INTERNAL_SERVER_ERROR = b"Internal Server Error"
#: A NONE URL whose function's policy does not allow lambda:InvokeFunctionUrl for `*` (recorded body; the header
#: and compact form recorded with the same message in test_lambda_url_persists_after_alias_delete).
FORBIDDEN_MESSAGE = (
    "Forbidden. For troubleshooting Function URL authorization issues, see: "
    "https://docs.aws.amazon.com/lambda/latest/dg/urls-auth.html"
)
#: AWS's text here is not known: this is the Invoke API's throttling message.
THROTTLED_MESSAGE = "Rate Exceeded."
#: AWS's text here is not known: this is the Invoke API's message for a request over its payload limit.
TOO_LARGE_MESSAGE = f"Request must be smaller than {MAX_PAYLOAD_BYTES} bytes for the InvokeFunction operation"

_SET_COOKIE = "set-cookie"
_BASE64 = {char: value for value, char in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
_BASE64.update({"-": 62, "_": 63})


class InvalidFunctionResponse(ValueError):
    """A result AWS cannot turn into HTTP (bad statusCode, not JSON): the client gets a 502."""


def map_buffered_result(payload: bytes) -> HttpResult:
    """The HTTP answer to a BUFFERED URL request whose function returned `payload` (its raw bytes) without error."""
    try:
        return _map(payload)
    except (InvalidFunctionResponse, RecursionError):  # RecursionError: nesting too deep to write back
        return function_error()


def _map(payload: bytes) -> HttpResult:
    if not payload:  # nothing to parse (a Node handler returning undefined); inferred from an empty stream's answer
        return 200, [(CONTENT_TYPE, JSON_TYPE)], b""
    try:
        value = javajson.loads(payload)
    except javajson.JavaJsonError as error:
        raise InvalidFunctionResponse(str(error)) from error
    if isinstance(value, dict) and "statusCode" in value:
        return _http_response(value)
    if isinstance(value, str):
        return 200, [(CONTENT_TYPE, JSON_TYPE)], javajson.encode(value)
    return 200, [(CONTENT_TYPE, JSON_TYPE)], javajson.encode(javajson.dumps(value))


def status_code(value: Any) -> int:
    """A result's `statusCode`: an integer or a numeric string (recorded `"418"`), 100-599 (capture: 700 is a 502)."""
    if isinstance(value, bool):
        raise InvalidFunctionResponse("statusCode is a boolean")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or not 100 <= value <= 599:
        raise InvalidFunctionResponse(f"invalid statusCode: {value!r}")
    return value


def _http_response(result: dict[str, Any]) -> HttpResult:
    status = status_code(result["statusCode"])
    headers = http_headers(result.get("headers"), result.get("cookies"))
    body = result.get("body")
    if body is None:
        return status, headers, b""
    text = body if isinstance(body, str) else javajson.dumps(body)  # capture: {"not": "string"} -> {"not":"string"}
    if result.get("isBase64Encoded") is True:
        return status, headers, decode_base64_leniently(text)
    return status, headers, javajson.encode(text)


def http_headers(headers: Any, cookies: Any, *, default_content_type: str = JSON_TYPE) -> list[tuple[str, str]]:
    """The response headers of a result's (or a stream prelude's) `headers` and `cookies`.

    Content-Type comes first, under AWS's own spelling (the function's value, else `default_content_type`); the other
    names are lower-cased as AWS sends them (capture: `X-Owned` arrives as `x-owned`); values that are not strings
    are printed the Java way (capture); a null value is left out (inferred). Each cookie is its own Set-Cookie,
    after one the function put in `headers` (capture: `set-cookie: header=c`, then `a=1; Path=/`, `b=2; HttpOnly`).
    """
    content_type = default_content_type
    named: list[tuple[str, str]] = []
    if isinstance(headers, Mapping):
        for name, value in headers.items():
            if value is None:
                continue
            text = value if isinstance(value, str) else javajson.java_text(value)
            lower = str(name).lower()
            if lower == "content-type":
                content_type = text
            else:
                named.append((lower, text))
    cookie_name = _SET_COOKIE if any(name == _SET_COOKIE for name, _ in named) else "Set-Cookie"
    if isinstance(cookies, (list, tuple)):
        named.extend((cookie_name, cookie if isinstance(cookie, str) else javajson.java_text(cookie))
                     for cookie in cookies if cookie is not None)
    return [(CONTENT_TYPE, content_type)] + named


def decode_base64_leniently(text: str) -> bytes:
    """Base64 as Apache commons-codec decodes it (capture: `!!!not-base64!!!` answers the bytes of `not+base64`):
    both alphabets, anything else skipped, stop at the first `=`, a trailing group of 2 or 3 characters kept."""
    values: list[int] = []
    for char in text:
        if char == "=":
            break
        value = _BASE64.get(char)
        if value is not None:
            values.append(value)
    out = bytearray()
    whole = len(values) - len(values) % 4
    for index in range(0, whole, 4):
        bits = (values[index] << 18) | (values[index + 1] << 12) | (values[index + 2] << 6) | values[index + 3]
        out += bits.to_bytes(3, "big")
    rest = values[whole:]
    if len(rest) == 2:
        out.append(((rest[0] << 6) | rest[1]) >> 4)
    elif len(rest) == 3:
        out += (((rest[0] << 12) | (rest[1] << 6) | rest[2]) >> 2).to_bytes(2, "big")
    return bytes(out)


def _json_message(message: str | None) -> bytes:
    """`{"Message":...}` as the front end writes its errors: compact (recorded `{"Message":null}`; that `/` is not
    escaped here, unlike in re-serialised results, is inferred)."""
    return json.dumps({"Message": message}, separators=(",", ":")).encode()


def function_error() -> HttpResult:
    """The function failed (an unhandled error, or a result AWS cannot map): 502, recorded body and Content-Type."""
    return 502, [(CONTENT_TYPE, JSON_TYPE)], INTERNAL_SERVER_ERROR


def function_timeout() -> HttpResult:
    """The function timed out: 502 like any failure of the function (inferred: the body of a timeout is not recorded;
    AWS's front end answers every failed invocation it has seen with this one)."""
    return function_error()


def throttled() -> HttpResult:
    """Reserved or account concurrency exhausted: 429 (AWS's documentation). The body and error type are the Invoke
    API's, inferred: AWS's exact text for a URL is not recorded."""
    return 429, [(CONTENT_TYPE, JSON_TYPE), (ERROR_TYPE_HEADER, "TooManyRequestsException")], \
        _json_message(THROTTLED_MESSAGE)


def url_not_found() -> HttpResult:
    """A URL id no function has: 403 `{"Message":null}` (the validated test_lambda_url_non_existing_url)."""
    return 403, [(CONTENT_TYPE, JSON_TYPE), (ERROR_TYPE_HEADER, "AccessDeniedException")], _json_message(None)


def forbidden() -> HttpResult:
    """A NONE URL the function's resource policy does not open to `*` (recorded), or an AWS_IAM URL whose caller is
    not allowed: 403 with AWS's troubleshooting message."""
    return 403, [(CONTENT_TYPE, JSON_TYPE), (ERROR_TYPE_HEADER, "AccessDeniedException")], \
        _json_message(FORBIDDEN_MESSAGE)


def request_too_large() -> HttpResult:
    """A request body (or the event it makes) over the 6 MB payload limit: 413, refused before invoking. AWS's body
    for a URL is not recorded: this is the Invoke API's message and error type (inferred)."""
    return 413, [(CONTENT_TYPE, JSON_TYPE), (ERROR_TYPE_HEADER, "RequestEntityTooLargeException")], \
        _json_message(TOO_LARGE_MESSAGE)
