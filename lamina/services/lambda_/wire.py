"""The Lambda REST-JSON wire format: request context, JSON bodies and AWS-shaped error responses."""
from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qs

from lamina.errors import InvalidRequestContentException, LambdaError
from lamina.http.server import Request, Response

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/")
JSON_TYPE = ("Content-Type", "application/json")
#: Jackson's word for it; Python's parser gives up at its recursion limit, AWS's at 1000 levels.
TOO_DEEP = "Document nesting depth exceeds the maximum allowed"
# What can decode to a surrogate code point: a \uD800-\uDFFF escape, or its bytes in UTF-8 (which json.loads lets
# through). Paired escapes (emoji) match too; only the parsed strings tell a lone one.
_SURROGATE_SOURCE = re.compile(rb"\\u[dD][89a-fA-F]|\xed[\xa0-\xbf]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def parse_json(raw: bytes | str) -> Any:
    """json.loads, with nesting past the interpreter's recursion limit a ValueError like any unreadable document
    (a RecursionError would otherwise end as a 500)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError(TOO_DEEP) from None


def _lone_surrogate(document: Any) -> str | None:
    """A lone surrogate in any string of the document (key or value), found without recursion."""
    pending = [document]
    while pending:
        value = pending.pop()
        if isinstance(value, dict):
            pending.extend(value)
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, str) and (found := _SURROGATE.search(value)):
            return found.group()
    return None


class Call:
    """One API request as an operation handler sees it."""

    __slots__ = ("request", "request_id", "region", "params", "_query")

    def __init__(self, request: Request, region: str, params: dict[str, str]) -> None:
        self.request = request
        self.request_id = str(uuid.uuid4())
        self.region = region
        self.params = params
        self._query: dict[str, list[str]] | None = None

    def query(self, name: str) -> str | None:
        if self._query is None:
            self._query = parse_qs(self.request.query, keep_blank_values=True)
        values = self._query.get(name)
        return values[-1] if values else None

    def json_body(self) -> dict[str, Any]:
        body = self.request.body
        if not body:
            return {}
        try:
            document = parse_json(body)
        except (ValueError, UnicodeDecodeError) as error:
            raise InvalidRequestContentException(f"Could not parse request body into json: {error}") from error
        if not isinstance(document, dict):
            raise InvalidRequestContentException("Could not parse request body into json: expected a JSON object")
        if _SURROGATE_SOURCE.search(body) and (surrogate := _lone_surrogate(document)) is not None:
            raise _surrogate_error(surrogate)
        return document

    def reply(self, status: int, document: Any = None, headers: list[tuple[str, str]] | None = None) -> Response:
        all_headers = [("x-amzn-RequestId", self.request_id)]
        body = b""
        if document is not None:
            body = json.dumps(document).encode()
            all_headers.append(JSON_TYPE)
        if headers:
            all_headers.extend(headers)
        return Response(status, body, all_headers)


def _surrogate_error(surrogate: str) -> InvalidRequestContentException:
    """A lone surrogate is not a Unicode character, so no string holding one can be stored or encoded as UTF-8.

    What AWS answers is not on record (Jackson, its parser, accepts the escape). I-JSON (RFC 7493) makes such a
    document invalid, and the fault can sit in any string of the body (a tag key as well as Handler) rather than break
    one member's constraint, so the answer is AWS's one for unreadable bodies, InvalidRequestContentException.
    """
    return InvalidRequestContentException(
        f"Could not parse request body into json: Invalid string: lone surrogate \\u{ord(surrogate):04x} "
        "(not a Unicode character)"
    )


def region_of(request: Request, default: str) -> str:
    """The region from the SigV4 credential scope (header or presigned query), else the server default."""
    match = _CREDENTIAL_SCOPE.search(request.headers.get("authorization", ""))
    if match is None and "X-Amz-Credential" in request.query:
        credential = parse_qs(request.query).get("X-Amz-Credential", [""])[0]
        parts = credential.split("/")
        return parts[2] if len(parts) > 2 else default
    return match.group(1) if match else default


def error_response(error: LambdaError, request_id: str | None = None) -> Response:
    request_id = request_id or str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", error.code), JSON_TYPE]
    headers.extend(error.headers.items())
    return Response(error.status, json.dumps(error.body()).encode(), headers)
