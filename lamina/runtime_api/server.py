"""The Runtime API 2018-06-01 endpoint of one execution environment.

Each environment gets its own listener: normally 127.0.0.1:9001 inside the environment's own network
namespace (sandbox/network.py), which nothing else can reach. On a host without network namespaces it is an
ephemeral port on the shared loopback, and only connections from the environment's own uid are accepted
(see peer.py), so no runtime can fetch or answer another environment's invocations.

A response posted with `Lambda-Runtime-Function-Response-Mode: streaming` goes to the target as a `ResponseStream`
(streaming.py) as soon as its head arrives: a chunked body is forwarded as it is received (the HTTP layer's
streamed request bodies), with the function's mid-stream error in its trailers, and the runtime is answered once
its body ended (202, or 413 past the size limit). Every other response is read whole and handed over as bytes, as
before. A target without `invocation_stream` gets streaming-mode responses read whole through
`invocation_response`. Once a streamed response has begun, RAPID refuses a further `/response` or `/error` for it
(403 InvalidStateTransition): a runtime reports a mid-stream error in the stream's trailers instead.
"""
from __future__ import annotations

import asyncio
import json
import socket
from typing import Protocol

from lamina.http.messages import BodyTooLarge, HttpError, Request, Response
from lamina.http.protocol import HttpProtocol
from lamina.runtime_api.peer import loopback_socket_uid
from lamina.runtime_api.streaming import (
    STREAM_DEFAULT_CONTENT_TYPE,
    ResponseStream,
    StreamEnd,
    StreamLimits,
)

PREFIX = "/2018-06-01/runtime/"
MAX_RESPONSE_BYTES = 6291556
_ACCEPTED = Response(202, b'{"status":"OK"}', [("Content-Type", "application/json")])


def _error(status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return Response(status, body, [("Content-Type", "application/json")])


def _response_already_started(action: str) -> Response:
    """RAPID's answer to a `/response` or `/error` while a streamed response is open: its runtime state machine is
    in InvocationResponse, which allows neither (aws-lambda-runtime-interface-emulator, lambda/core/states.go and
    rapi/handler/invocation{response,error}.go)."""
    target = "InvocationErrorResponse" if action == "error" else "InvocationResponse"
    return _error(
        403,
        "InvalidStateTransition",
        f"State transition from InvocationResponse to {target} failed for runtime. "
        "Error: State transition is not allowed",
    )


class RuntimeApiTarget(Protocol):
    """What the endpoint drives: the environment's side of the protocol."""

    def next_invocation(self) -> Response | asyncio.Future[Response]: ...

    def invocation_response(self, request_id: str, body: bytes, content_type: str) -> bool: ...

    def invocation_error(self, request_id: str, body: bytes) -> bool: ...

    def response_too_large(self, request_id: str) -> bool: ...

    def init_error(self, body: bytes, error_type: str) -> bool: ...

    def invocation_stream(self, request_id: str, stream: ResponseStream) -> bool:
        """A streamed response began for `request_id`: False if that is not the current invocation (the runtime is
        answered 400 InvalidRequestID at once). Otherwise the target owns `stream`: it iterates it (or `discard`s
        it), and `abort`s it if the invocation ends first. Called as soon as the request's head arrives."""
        ...

    def response_started(self, request_id: str) -> bool:
        """Whether `request_id` is the current invocation and its streamed response has begun: asked (of a target
        with `invocation_stream`) only after it refused a `/response` or `/error`, which RAPID then answers 403
        InvalidStateTransition (its runtime is in InvocationResponse) instead of 400 InvalidRequestID."""
        ...


class RuntimeApiEndpoint:
    def __init__(
        self, target: RuntimeApiTarget, expected_uid: int | None, stream_limits: StreamLimits = StreamLimits()
    ) -> None:
        self._target = target
        self._expected_uid = expected_uid
        self._stream_limits = stream_limits
        self._streams = callable(getattr(target, "invocation_stream", None))
        self._started = getattr(target, "response_started", None) if self._streams else None
        self._server: asyncio.base_events.Server | None = None
        self.port = 0

    async def start(self, sock: socket.socket | None = None) -> int:
        """Serve `sock` (a listener made inside the environment's namespace), or a fresh loopback port."""
        loop = asyncio.get_running_loop()
        address = {"sock": sock} if sock is not None else {"host": "127.0.0.1", "port": 0}
        self._server = await loop.create_server(
            lambda: HttpProtocol(
                self.handle,
                max_body=MAX_RESPONSE_BYTES * 2,
                on_error=self._on_error,
                accept=self._accept,
                hold_pipelined=True,
                body_limit=self._body_limit if self._streams else None,
                stream_body=self._is_streamed if self._streams else None,
            ),
            **address,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    def close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def _accept(self, transport: asyncio.Transport) -> bool:
        if self._expected_uid is None:
            return True
        client = transport.get_extra_info("peername")[:2]
        server = transport.get_extra_info("sockname")[:2]
        return loopback_socket_uid(client, server) == self._expected_uid

    @staticmethod
    def _is_streamed(request: Request) -> bool:
        """Asked for chunked requests only: a streaming-mode response is dispatched before its body."""
        return (
            request.headers.get("lambda-runtime-function-response-mode") == "streaming"
            and request.method == "POST"
            and request.path.endswith("/response")
        )

    def _body_limit(self, request: Request) -> int:
        if request.headers.get("lambda-runtime-function-response-mode") == "streaming" and (
            "transfer-encoding" in request.headers
        ):
            return self._stream_limits.http_limit
        return MAX_RESPONSE_BYTES * 2

    @staticmethod
    def _on_error(request: Request, error: BaseException) -> Response:
        if isinstance(error, BodyTooLarge):
            return _error(413, "RequestEntityTooLarge", "Request body too large.")
        if isinstance(error, HttpError):
            return _error(error.status, "InvalidRequest", error.message)
        return _error(500, "ServiceException", "Internal error in the Runtime API.")

    def handle(self, request: Request) -> Response | asyncio.Future[Response]:
        path = request.path
        if not path.startswith(PREFIX):
            return _error(404, "InvalidRequest", f"Unknown path {path}")
        tail = path[len(PREFIX):]
        if tail == "invocation/next" and request.method == "GET":
            return self._target.next_invocation()
        if request.method != "POST":
            return _error(405, "MethodNotAllowed", f"{request.method} is not allowed on {path}")
        if tail == "init/error":
            error_type = request.headers.get("lambda-runtime-function-error-type", "Runtime.Unknown")
            if self._target.init_error(request.body, error_type):
                return _ACCEPTED
            return _error(403, "InvalidStateTransition", "Init error reported outside the init phase.")
        parts = tail.split("/")
        if len(parts) != 3 or parts[0] != "invocation":
            return _error(404, "InvalidRequest", f"Unknown path {path}")
        request_id, action = parts[1], parts[2]
        if action == "response":
            mode = request.headers.get("lambda-runtime-function-response-mode")
            if mode is not None and mode != "streaming":
                return _error(400, "InvalidFunctionResponseMode", f"Unsupported response mode {mode}")
            if mode is not None and self._streams:
                return self._stream_response(request, request_id)
            if len(request.body) > MAX_RESPONSE_BYTES:
                self._target.response_too_large(request_id)
                return _error(
                    413,
                    "RequestEntityTooLarge",
                    f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
                )
            accepted = self._target.invocation_response(
                request_id, request.body, request.headers.get("content-type", "application/json")
            )
        elif action == "error":
            accepted = self._target.invocation_error(request_id, request.body)
        else:
            return _error(404, "InvalidRequest", f"Unknown path {path}")
        if accepted:
            return _ACCEPTED
        if self._started is not None and self._started(request_id):
            return _response_already_started(action)
        return _error(400, "InvalidRequestID", f"Invalid request ID: {request_id}")

    def _stream_response(self, request: Request, request_id: str) -> Response | asyncio.Future[Response]:
        content_type = request.headers.get("content-type", STREAM_DEFAULT_CONTENT_TYPE)
        if request.body_stream is not None:
            stream = ResponseStream(request_id, content_type, request.body_stream, request.trailers, self._stream_limits)
        else:  # streaming mode, but sent with a Content-Length
            stream = ResponseStream.whole(request_id, content_type, request.body, self._stream_limits)
        if not self._target.invocation_stream(request_id, stream):
            if self._started is not None and self._started(request_id):
                return _response_already_started("response")
            return _error(400, "InvalidRequestID", f"Invalid request ID: {request_id}")
        return asyncio.ensure_future(self._answer_stream(stream))

    async def _answer_stream(self, stream: ResponseStream) -> Response:
        """The runtime's answer, once its streamed body is over (as RAPID answers: after the copy ended)."""
        outcome = await stream.finished()
        if outcome.end is StreamEnd.OVERSIZED:
            return _error(
                413,
                "RequestEntityTooLarge",
                f"Exceeded maximum allowed payload size ({stream.limits.max_bytes} bytes).",
            )
        if outcome.end is StreamEnd.TRUNCATED:
            return _error(400, "TruncatedHTTPRequest", "HTTP request detected as truncated")
        if outcome.end is StreamEnd.ABORTED:
            return _error(400, "InvalidRequestID", f"Invalid request ID: {stream.request_id}")
        return _ACCEPTED
