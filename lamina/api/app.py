"""The API front: dispatch each HTTP request to its operation and map every failure to AWS's wire format."""
from __future__ import annotations

import logging
from typing import Awaitable
from urllib.parse import unquote

from lamina.api.router import Router
from lamina.api.wire import Call, error_response, region_of
from lamina.errors import LambdaError, RequestTooLargeException, ServiceException, UnknownOperationException
from lamina.http.server import BodyTooLarge, Request, Response

#: The largest request any operation accepts: CreateFunction with a 50 MB zip, base64-encoded in JSON.
MAX_REQUEST_BODY = 70167211
_log = logging.getLogger("lamina.api")


class ApiApp:
    def __init__(self, router: Router, default_region: str) -> None:
        self._router = router
        self._default_region = default_region

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        matched = self._router.match(request.method, request.path)
        if not matched:
            kind = "method" if matched is False else "operation"
            return error_response(UnknownOperationException(f"Unknown {kind}: {request.method} {request.path}"))
        handler, raw_params = matched
        params = {name: unquote(value) for name, value in raw_params.items()}
        call = Call(request, region_of(request, self._default_region), params)
        try:
            result = handler(call)
        except LambdaError as error:
            return error_response(error, call.request_id)
        if isinstance(result, Response):
            return result
        return self._finish(call, result)

    @staticmethod
    async def _finish(call: Call, pending: Awaitable[Response]) -> Response:
        try:
            return await pending
        except LambdaError as error:
            return error_response(error, call.request_id)

    @staticmethod
    def on_error(request: Request, error: BaseException) -> Response:
        """Last resort: never a traceback on the wire; the server log keeps it."""
        if isinstance(error, LambdaError):
            return error_response(error)
        if isinstance(error, BodyTooLarge):
            operation = "InvokeFunction" if request.path.endswith("/invocations") else "CreateFunction"
            return error_response(
                RequestTooLargeException(f"Request must be smaller than {MAX_REQUEST_BODY} bytes for the {operation} operation")
            )
        _log.error("unhandled error for %s %s", request.method, request.path, exc_info=error)
        return error_response(ServiceException("An internal error occurred in Lamina."))
