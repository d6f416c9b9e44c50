"""CORS of function URLs: preflights answered without the function, headers added to actual responses.

tests/aws-recorded has no CORS case; the expectations marked "capture" are what a native AWS capture (published by a
third party) shows for this config; the rest is the behaviour cors.py documents as inferred.
"""
from __future__ import annotations

from typing import Any

import pytest

from lamina.services.function_urls.cors import (
    actual_response_headers,
    allowed_origin,
    is_configured,
    is_preflight,
    preflight_response,
)

CORS: dict[str, Any] = {
    "AllowCredentials": True,
    "AllowHeaders": ["x-allowed", "content-type"],
    "AllowMethods": ["GET", "POST"],
    "AllowOrigins": ["https://allowed.example"],
    "ExposeHeaders": ["x-owned"],
    "MaxAge": 321,
}
ORIGIN = "https://allowed.example"
HANDLER = [("Content-Type", "text/plain"), ("access-control-allow-origin", "https://handler.example"),
           ("access-control-allow-credentials", "false"), ("access-control-expose-headers", "x-handler"),
           ("access-control-allow-methods", "DELETE"), ("access-control-allow-headers", "x-handler"),
           ("access-control-max-age", "17")]
PREFLIGHT_HEADERS = [("Content-Type", "application/json"), ("Access-Control-Allow-Origin", ORIGIN),
                     ("Access-Control-Allow-Headers", "x-allowed,content-type"), ("Vary", "Origin"),
                     ("Access-Control-Allow-Methods", "GET,POST"), ("Access-Control-Max-Age", "321"),
                     ("Access-Control-Allow-Credentials", "true")]


def preflight(cors: Any, **headers: str) -> Any:
    names = {"origin": "Origin", "method": "Access-Control-Request-Method",
             "request_headers": "Access-Control-Request-Headers"}
    return preflight_response(cors, "OPTIONS", [(names[key], value) for key, value in headers.items()])


def test_full_preflight() -> None:
    """capture: status, headers and their order, empty body, for a request of allowed method and headers."""
    assert preflight(CORS, origin=ORIGIN, method="POST", request_headers="x-allowed,content-type") == \
        (200, PREFLIGHT_HEADERS, b"")


def test_preflight_without_requested_headers_still_lists_them() -> None:
    assert preflight(CORS, origin=ORIGIN, method="POST") == (200, PREFLIGHT_HEADERS, b"")


@pytest.mark.parametrize("headers", [
    {"origin": "https://other.example", "method": "POST", "request_headers": "x-allowed"},  # capture
    {"origin": ORIGIN, "method": "DELETE"},  # capture
    {"origin": ORIGIN, "method": "POST", "request_headers": "x-not-allowed"},  # capture
    {"origin": ORIGIN, "method": "POST", "request_headers": "x-allowed, x-not-allowed"},
])
def test_refused_preflights_get_no_cors_headers(headers: dict[str, str]) -> None:
    assert preflight(CORS, **headers) == (200, [("Content-Type", "application/json")], b"")


def test_header_names_compare_case_insensitively() -> None:
    assert preflight(CORS, origin=ORIGIN, method="post", request_headers=" X-Allowed ,Content-Type")[1] == \
        PREFLIGHT_HEADERS


@pytest.mark.parametrize("method, headers", [
    ("OPTIONS", [("Origin", ORIGIN)]),  # capture: no Access-Control-Request-Method, the function runs
    ("OPTIONS", [("Access-Control-Request-Method", "POST")]),  # capture: no Origin, the function runs
    ("GET", [("Origin", ORIGIN), ("Access-Control-Request-Method", "POST")]),
])
def test_not_preflights(method: str, headers: list[tuple[str, str]]) -> None:
    assert not is_preflight(method, headers)
    assert preflight_response(CORS, method, headers) is None


def test_no_cors_config_answers_nothing() -> None:
    headers = {"origin": ORIGIN, "access-control-request-method": "POST"}
    assert is_preflight("options", headers)
    assert preflight_response(None, "OPTIONS", headers) is None
    assert preflight_response({}, "OPTIONS", headers) is None
    assert not is_configured({}) and is_configured(CORS)
    assert actual_response_headers(None, headers, HANDLER) == HANDLER
    assert actual_response_headers({}, headers, HANDLER) == HANDLER


def test_actual_response_with_allowed_origin() -> None:
    """capture: AWS's Allow-Origin and Allow-Credentials beside the function's, Expose-Headers merged after the
    function's, Vary added, the function's other CORS headers untouched."""
    headers = actual_response_headers(CORS, {"origin": ORIGIN}, HANDLER)
    assert headers == [
        ("Content-Type", "text/plain"), ("access-control-allow-origin", "https://handler.example"),
        ("access-control-allow-credentials", "false"), ("access-control-expose-headers", "x-handler,x-owned"),
        ("access-control-allow-methods", "DELETE"), ("access-control-allow-headers", "x-handler"),
        ("access-control-max-age", "17"), ("Access-Control-Allow-Origin", ORIGIN), ("Vary", "Origin"),
        ("Access-Control-Allow-Credentials", "true"),
    ]
    assert HANDLER[3] == ("access-control-expose-headers", "x-handler")  # the input list is not changed


def test_actual_response_without_function_cors_headers() -> None:
    """capture (a stream's head): the configured Expose-Headers on their own."""
    assert actual_response_headers(CORS, [("Origin", ORIGIN)], [("Content-Type", "x/y")]) == [
        ("Content-Type", "x/y"), ("Access-Control-Allow-Origin", ORIGIN), ("Vary", "Origin"),
        ("Access-Control-Expose-Headers", "x-owned"), ("Access-Control-Allow-Credentials", "true")]


@pytest.mark.parametrize("request_headers", [{"origin": "https://other.example"}, {}, {"origin": ORIGIN.upper()}])
def test_actual_response_for_other_origins_is_unchanged(request_headers: dict[str, str]) -> None:
    assert actual_response_headers(CORS, request_headers, HANDLER) == HANDLER


def test_wildcard_origin() -> None:
    anywhere = {"AllowOrigins": ["*"], "AllowMethods": ["*"], "AllowHeaders": ["*"]}
    assert allowed_origin(anywhere, "https://x.example") == "*"
    assert allowed_origin({**anywhere, "AllowCredentials": True}, "https://x.example") == "https://x.example"
    assert allowed_origin(anywhere, None) is None
    assert preflight(anywhere, origin="https://x.example", method="PATCH", request_headers="x-anything") == (
        200, [("Content-Type", "application/json"), ("Access-Control-Allow-Origin", "*"),
              ("Access-Control-Allow-Headers", "*"), ("Access-Control-Allow-Methods", "*")], b"")
    assert actual_response_headers(anywhere, {"Origin": "https://x.example"}, []) == \
        [("Access-Control-Allow-Origin", "*")]


def test_minimal_config() -> None:
    only_origins = {"AllowOrigins": [ORIGIN]}
    assert preflight(only_origins, origin=ORIGIN, method="GET") == (200, [("Content-Type", "application/json")], b"")
    assert preflight({**only_origins, "AllowMethods": ["GET"]}, origin=ORIGIN, method="GET") == (
        200, [("Content-Type", "application/json"), ("Access-Control-Allow-Origin", ORIGIN), ("Vary", "Origin"),
              ("Access-Control-Allow-Methods", "GET")], b"")
    assert preflight({**only_origins, "AllowMethods": ["GET"]}, origin=ORIGIN, method="GET",
                     request_headers="x-a") == (200, [("Content-Type", "application/json")], b"")
    assert actual_response_headers(only_origins, {"origin": ORIGIN}, []) == \
        [("Access-Control-Allow-Origin", ORIGIN), ("Vary", "Origin")]
    assert preflight({**only_origins, "AllowMethods": ["GET"], "MaxAge": 0}, origin=ORIGIN, method="GET")[1][-1] == \
        ("Access-Control-Max-Age", "0")
