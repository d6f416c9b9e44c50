"""CORS of a function URL, from its `Cors` config (the Lambda API's shape: AllowOrigins, AllowMethods, AllowHeaders,
ExposeHeaders, MaxAge, AllowCredentials), applied by the front end and never by the function.

Behaviour, from a native AWS capture published by a third party (no case is in tests/aws-recorded) unless marked:

- A preflight is an OPTIONS with both Origin and Access-Control-Request-Method; an OPTIONS lacking either goes to
  the function like any request. AWS answers a preflight itself, 200 with an empty body and Content-Type
  application/json. When the origin, the method or any requested header is not allowed, that is all it sends;
  otherwise it adds Access-Control-Allow-Origin, -Allow-Headers (the configured list, even when none was requested),
  Vary: Origin, -Allow-Methods, -Max-Age and, when configured, -Allow-Credentials: true. Lists are joined with `,`.
- An actual response to an allowed Origin gets Access-Control-Allow-Origin, Vary: Origin, the configured
  Expose-Headers (merged after the function's own, `x-handler,x-owned`) and Allow-Credentials: true; a function's
  own Allow-Origin or Allow-Credentials stays and AWS's is added beside it. The method is not checked there, and
  Allow-Methods, Allow-Headers and Max-Age belong to preflights only. No Origin or another origin: nothing added.
- No Cors config: nothing at all, and preflights go to the function (inferred).
- Inferred, not observed: origins compare exactly; `*` in AllowOrigins allows any origin and is answered `*`
  without Vary (the origin itself when credentials are allowed, which browsers require); `*` in AllowMethods or
  AllowHeaders allows any; methods compare case-insensitively, header names always; no AllowMethods allows none.
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Union

from lamina.services.function_urls.response import CONTENT_TYPE, JSON_TYPE, HttpResult

Headers = Union[Mapping[str, str], Iterable[tuple[str, str]]]

ALLOW_ORIGIN = "Access-Control-Allow-Origin"
ALLOW_HEADERS = "Access-Control-Allow-Headers"
ALLOW_METHODS = "Access-Control-Allow-Methods"
ALLOW_CREDENTIALS = "Access-Control-Allow-Credentials"
EXPOSE_HEADERS = "Access-Control-Expose-Headers"
MAX_AGE = "Access-Control-Max-Age"
VARY = "Vary"


def _header(headers: Headers, name: str) -> str | None:
    """One request header's value (names compared case-insensitively; repeated values joined with `,`)."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    values = [value for key, value in pairs if key.lower() == name]
    return ",".join(values) if values else None


def _list(cors: Mapping[str, Any], key: str) -> list[str]:
    value = cors.get(key)
    return [str(item) for item in value] if isinstance(value, (list, tuple)) else []


def is_configured(cors: Mapping[str, Any] | None) -> bool:
    """Whether the URL has CORS at all (an empty `Cors` is none)."""
    return bool(cors)


def is_preflight(method: str, headers: Headers) -> bool:
    """An OPTIONS with Origin and Access-Control-Request-Method (capture: without either, the function runs)."""
    return (method.upper() == "OPTIONS" and _header(headers, "origin") is not None
            and _header(headers, "access-control-request-method") is not None)


def allowed_origin(cors: Mapping[str, Any], origin: str | None) -> str | None:
    """The Access-Control-Allow-Origin value for this Origin, None when it is not allowed."""
    if origin is None:
        return None
    origins = _list(cors, "AllowOrigins")
    if origin in origins:
        return origin
    if "*" in origins:
        return origin if cors.get("AllowCredentials") is True else "*"
    return None


def _vary(allowed: str) -> list[tuple[str, str]]:
    return [] if allowed == "*" else [(VARY, "Origin")]


def _method_allowed(cors: Mapping[str, Any], method: str) -> bool:
    methods = [item.upper() for item in _list(cors, "AllowMethods")]
    return "*" in methods or method.strip().upper() in methods


def _headers_allowed(cors: Mapping[str, Any], requested: str | None) -> bool:
    if requested is None:
        return True
    allowed = {item.strip().lower() for item in _list(cors, "AllowHeaders")}
    if "*" in allowed:
        return True
    return all(name.strip().lower() in allowed for name in requested.split(",") if name.strip())


def preflight_response(cors: Mapping[str, Any] | None, method: str, headers: Headers) -> HttpResult | None:
    """AWS's own answer to a CORS preflight, or None when the request goes to the function (no CORS config, or not a
    preflight)."""
    if not is_configured(cors) or not is_preflight(method, headers):
        return None
    assert cors is not None
    answer: list[tuple[str, str]] = [(CONTENT_TYPE, JSON_TYPE)]
    allowed = allowed_origin(cors, _header(headers, "origin"))
    request_method = _header(headers, "access-control-request-method") or ""
    if (allowed is None or not _method_allowed(cors, request_method)
            or not _headers_allowed(cors, _header(headers, "access-control-request-headers"))):
        return 200, answer, b""
    answer.append((ALLOW_ORIGIN, allowed))
    allow_headers = _list(cors, "AllowHeaders")
    if allow_headers:
        answer.append((ALLOW_HEADERS, ",".join(allow_headers)))
    answer.extend(_vary(allowed))
    answer.append((ALLOW_METHODS, ",".join(_list(cors, "AllowMethods"))))
    if cors.get("MaxAge") is not None:
        answer.append((MAX_AGE, str(cors["MaxAge"])))
    if cors.get("AllowCredentials") is True:
        answer.append((ALLOW_CREDENTIALS, "true"))
    return 200, answer, b""


def actual_response_headers(cors: Mapping[str, Any] | None, request_headers: Headers,
                            response_headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The response headers with AWS's CORS headers added for an allowed Origin (a new list; the input is kept)."""
    headers = list(response_headers)
    if not is_configured(cors):
        return headers
    assert cors is not None
    allowed = allowed_origin(cors, _header(request_headers, "origin"))
    if allowed is None:
        return headers
    headers.append((ALLOW_ORIGIN, allowed))
    headers.extend(_vary(allowed))
    expose = _list(cors, "ExposeHeaders")
    if expose:
        joined = ",".join(expose)
        for position, (name, value) in enumerate(headers):
            if name.lower() == EXPOSE_HEADERS.lower():
                headers[position] = (name, f"{value},{joined}")
                break
        else:
            headers.append((EXPOSE_HEADERS, joined))
    if cors.get("AllowCredentials") is True:
        headers.append((ALLOW_CREDENTIALS, "true"))
    return headers
