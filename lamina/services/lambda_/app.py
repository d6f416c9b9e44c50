"""The API front: dispatch each HTTP request to its operation and map every failure to AWS's wire format."""
from __future__ import annotations

import logging
from typing import Awaitable
from urllib.parse import unquote

from lamina.services.lambda_.invoke import MAX_EVENT_PAYLOAD, MAX_SYNC_PAYLOAD
from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call, error_response, region_of
from lamina.errors import (
    InvalidRequestContentException,
    LambdaError,
    RequestEntityTooLargeException,
    RequestHeaderFieldsTooLargeException,
    RequestTimeoutException,
    RequestTooLargeException,
    RequestURITooLongException,
    ServiceException,
    UnknownOperationException,
)
from lamina.http.server import BodyTooLarge, ConnectionLimiter, HttpError, HttpLimits, HttpProtocol, Request, Response
from lamina.store.space import storage_exhausted

#: The largest request any operation accepts: CreateFunction with a 50 MB zip, base64-encoded in JSON.
MAX_REQUEST_BODY = 70167211
#: What the other operations accept: a small JSON document or none (UpdateFunctionConfiguration's is a few KB).
MAX_JSON_BODY = 1048576
#: Bodies allowed above MAX_JSON_BODY. A larger Content-Length is answered 413 before the body is read, as AWS does.
BODY_LIMITS = {
    "CreateFunction": MAX_REQUEST_BODY,
    "UpdateFunctionCode": MAX_REQUEST_BODY,
    "PublishLayerVersion": MAX_REQUEST_BODY,
    "InvokeFunction": MAX_SYNC_PAYLOAD,  # an Event invoke's smaller limit is the handler's to check
    "InvokeAsync": MAX_EVENT_PAYLOAD,
}
#: Where AWS answers an oversized request with the modelled RequestTooLargeException; elsewhere it is
#: RequestEntityTooLargeException (recorded for CreateFunction).
_INVOKE_OPERATIONS = ("InvokeFunction", "InvokeAsync")
#: What the HTTP layer's refusals become on the wire.
_REFUSALS: dict[int, type[LambdaError]] = {
    400: InvalidRequestContentException,
    408: RequestTimeoutException,
    414: RequestURITooLongException,
    431: RequestHeaderFieldsTooLargeException,
}
_log = logging.getLogger("lamina.services.lambda_")


def api_limits(header_timeout: float, body_timeout: float, idle_timeout: float) -> HttpLimits:
    """An API connection's limits: request line and headers as AWS's front ends take them (16 KB, 100 headers), an
    8 KB URL, and the given timeouts (0: none)."""
    return HttpLimits(
        max_head=16384,
        max_headers=100,
        max_url=8192,
        header_timeout=header_timeout or None,
        body_timeout=body_timeout or None,
        idle_timeout=idle_timeout or None,
    )


class ApiApp:
    def __init__(self, router: Router, default_region: str) -> None:
        self._router = router
        self._default_region = default_region

    def protocol(self, limits: HttpLimits, connections: ConnectionLimiter | None = None) -> HttpProtocol:
        """The protocol of one API connection."""
        return HttpProtocol(
            self.handle,
            max_body=MAX_JSON_BODY,
            body_limit=self.body_limit,
            on_error=self.on_error,
            limits=limits,
            connections=connections,
        )

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        matched = self._router.match(request.method, request.path)
        if not matched:
            return _unknown(request, matched)
        route, raw_params = matched
        params = {name: unquote(value) for name, value in raw_params.items()}
        call = Call(request, region_of(request, self._default_region), params)
        try:
            result = route.handler(call)
        except LambdaError as error:
            return error_response(error, call.request_id)
        if isinstance(result, Response):
            return result
        return self._finish(call, result)

    def body_limit(self, method: str, path: str) -> int:
        """The largest body the operation at (method, path) accepts (asked only for bodies over MAX_JSON_BODY)."""
        matched = self._router.match(method, path)
        return BODY_LIMITS.get(matched[0].operation, MAX_JSON_BODY) if matched else MAX_JSON_BODY

    @staticmethod
    async def _finish(call: Call, pending: Awaitable[Response]) -> Response:
        try:
            return await pending
        except LambdaError as error:
            return error_response(error, call.request_id)

    def on_error(self, request: Request, error: BaseException) -> Response:
        """Last resort: never a traceback on the wire; the server log keeps it."""
        if isinstance(error, LambdaError):
            return error_response(error)
        if isinstance(error, BodyTooLarge):
            matched = self._router.match(request.method, request.path)
            if not matched:
                return _unknown(request, matched)
            operation = matched[0].operation
            too_large = RequestTooLargeException if operation in _INVOKE_OPERATIONS else RequestEntityTooLargeException
            return error_response(too_large(f"{error.message} for the {operation} operation"))
        if isinstance(error, HttpError):
            return error_response(_REFUSALS.get(error.status, InvalidRequestContentException)(error.message))
        exhausted = storage_exhausted(error)
        if exhausted is not None:
            _log.error("storage exhausted for %s %s: %s", request.method, request.path, error)
            return error_response(exhausted)
        _log.error("unhandled error for %s %s", request.method, request.path, exc_info=error)
        return error_response(ServiceException("An internal error occurred in Lamina."))


def _unknown(request: Request, matched: None | bool) -> Response:
    kind = "method" if matched is False else "operation"
    return error_response(UnknownOperationException(f"Unknown {kind}: {request.method} {request.path}"))
