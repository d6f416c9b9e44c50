"""The Lambda REST-JSON wire format: the call a handler gets, JSON bodies and AWS-shaped error responses."""
from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import parse_qs

from lamina.errors import InvalidRequestContentException, LambdaError
from lamina.gateway.context import RequestContext
from lamina.http.messages import Request, Response
from lamina.model.keys import Scope

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
    """One API request as an operation handler sees it: the HTTP request, its RequestContext (made once by the
    gateway), the decoded path parameters and the operation's success status (the model's responseCode)."""

    __slots__ = ("request", "context", "params", "status", "_query", "_scope")

    def __init__(self, request: Request, context: RequestContext, params: dict[str, str], status: int = 200) -> None:
        self.request = request
        self.context = context
        self.params = params
        self.status = status
        self._query: dict[str, list[str]] | None = None
        self._scope: Scope | None = None

    @property
    def request_id(self) -> str:
        return self.context.request_id

    @property
    def region(self) -> str:
        return self.context.region

    @property
    def account(self) -> str:
        return self.context.account

    @property
    def scope(self) -> Scope:
        """Where the request acts: the caller's account and the region it addressed (made on first use, once)."""
        scope = self._scope
        if scope is None:
            scope = self._scope = Scope(self.context.account, self.context.region)
        return scope

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

    def reply(
        self, document: Any = None, headers: list[tuple[str, str]] | None = None, *, status: int | None = None
    ) -> Response:
        """A success: `document` as JSON (none: an empty body) with the operation's status, the model's
        responseCode, unless `status` says otherwise (where AWS answers another one, e.g. Invoke's 202 for Event)."""
        all_headers = [("x-amzn-RequestId", self.request_id)]
        body = b""
        if document is not None:
            body = json.dumps(document).encode()
            all_headers.append(JSON_TYPE)
        if headers:
            all_headers.extend(headers)
        return Response(self.status if status is None else status, body, all_headers)


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


def error_response(error: LambdaError, request_id: str | None = None) -> Response:
    request_id = request_id or str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", error.code), JSON_TYPE]
    headers.extend(error.headers.items())
    return Response(error.status, json.dumps(error.body()).encode(), headers)
