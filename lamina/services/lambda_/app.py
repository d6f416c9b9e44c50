"""The Lambda service app: the gateway hands it the requests for Lambda; it matches each to its operation (route table
from the service model, `router.py`) and maps every failure to Lambda's REST-JSON error format."""
from __future__ import annotations

import logging
from typing import Awaitable
from urllib.parse import unquote

from lamina.services.lambda_.invoke import MAX_EVENT_PAYLOAD, MAX_SYNC_PAYLOAD
from lamina.services.lambda_.router import Router
from lamina.gateway.context import RequestContext
from lamina.services.lambda_.wire import Call, error_response
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
from lamina.http.messages import BodyTooLarge, HttpError, Request, Response
from lamina.store.space import storage_exhausted

#: The largest request any operation accepts: CreateFunction with a 50 MB zip, base64-encoded in JSON.
MAX_REQUEST_BODY = 70167211
#: What the other operations accept: a small JSON document or none (UpdateFunctionConfiguration's is a few KB).
MAX_JSON_BODY = 1048576
#: Bodies allowed above MAX_JSON_BODY, by the model's operation names. A larger Content-Length is answered 413 before
#: the body is read, as AWS does.
BODY_LIMITS = {
    "CreateFunction": MAX_REQUEST_BODY,
    "UpdateFunctionCode": MAX_REQUEST_BODY,
    "PublishLayerVersion": MAX_REQUEST_BODY,
    "Invoke": MAX_SYNC_PAYLOAD,  # an Event invoke's smaller limit is the handler's to check
    "InvokeWithResponseStream": MAX_SYNC_PAYLOAD,
    "InvokeAsync": MAX_EVENT_PAYLOAD,
}
#: Where AWS answers an oversized request with the modelled RequestTooLargeException; elsewhere it is
#: RequestEntityTooLargeException (recorded for CreateFunction).
_INVOKE_OPERATIONS = ("Invoke", "InvokeAsync", "InvokeWithResponseStream")
#: What AWS's messages call an operation where it is not the model's name ("... for the InvokeFunction operation").
_MESSAGE_NAMES = {"Invoke": "InvokeFunction"}
#: What the HTTP layer's refusals become on the wire.
_REFUSALS: dict[int, type[LambdaError]] = {
    400: InvalidRequestContentException,
    408: RequestTimeoutException,
    414: RequestURITooLongException,
    431: RequestHeaderFieldsTooLargeException,
}
_log = logging.getLogger("lamina.services.lambda_")


class LambdaApp:
    """The Lambda API (REST-JSON), one service app of the gateway; also the default one (unsigned requests, Lamina's
    own /lamina/ endpoints, Code.Location downloads)."""

    signing_name = "lambda"

    def __init__(self, router: Router) -> None:
        self._router = router

    def handle(self, request: Request, context: RequestContext) -> Response | Awaitable[Response]:
        matched = self._router.match(request.method, request.path, request.query)
        if not matched:
            return _unknown(request, matched, context.request_id)
        route, raw_params = matched
        context.operation = route.operation
        params = {name: unquote(value) for name, value in raw_params.items()}
        call = Call(request, context, params, route.status)
        try:
            result = route.handler(call)
        except LambdaError as error:
            return error_response(error, call.request_id)
        if isinstance(result, Response):
            return result
        return self._finish(call, result)

    def body_limit(self, request: Request) -> int:
        """The largest body the request's operation accepts (asked only for bodies over MAX_JSON_BODY)."""
        matched = self._router.match(request.method, request.path, request.query)
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
            matched = self._router.match(request.method, request.path, request.query)
            if not matched:
                return _unknown(request, matched)
            operation = matched[0].operation
            too_large = RequestTooLargeException if operation in _INVOKE_OPERATIONS else RequestEntityTooLargeException
            named = _MESSAGE_NAMES.get(operation, operation)
            return error_response(too_large(f"{error.message} for the {named} operation"))
        if isinstance(error, HttpError):
            return error_response(_REFUSALS.get(error.status, InvalidRequestContentException)(error.message))
        exhausted = storage_exhausted(error)
        if exhausted is not None:
            _log.error("storage exhausted for %s %s: %s", request.method, request.path, error)
            return error_response(exhausted)
        _log.error("unhandled error for %s %s", request.method, request.path, exc_info=error)
        return error_response(ServiceException("An internal error occurred in Lamina."))


def _unknown(request: Request, matched: None | bool, request_id: str | None = None) -> Response:
    kind = "method" if matched is False else "operation"
    return error_response(UnknownOperationException(f"Unknown {kind}: {request.method} {request.path}"), request_id)
