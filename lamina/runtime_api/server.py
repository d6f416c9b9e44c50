"""The Runtime API 2018-06-01 endpoint of one execution environment.

Each environment gets its own listener: normally 127.0.0.1:9001 inside the environment's own network
namespace (sandbox/network.py), which nothing else can reach. On a host without network namespaces it is an
ephemeral port on the shared loopback, and only connections from the environment's own uid are accepted
(see peer.py), so no runtime can fetch or answer another environment's invocations.
"""
from __future__ import annotations

import asyncio
import json
import socket
from typing import Protocol

from lamina.http.server import BodyTooLarge, HttpError, HttpProtocol, Request, Response
from lamina.runtime_api.peer import loopback_socket_uid

PREFIX = "/2018-06-01/runtime/"
MAX_RESPONSE_BYTES = 6291556
_ACCEPTED = Response(202, b'{"status":"OK"}', [("Content-Type", "application/json")])


def _error(status: int, error_type: str, message: str) -> Response:
    body = json.dumps({"errorMessage": message, "errorType": error_type}).encode()
    return Response(status, body, [("Content-Type", "application/json")])


class RuntimeApiTarget(Protocol):
    """What the endpoint drives: the environment's side of the protocol."""

    def next_invocation(self) -> Response | asyncio.Future[Response]: ...

    def invocation_response(self, request_id: str, body: bytes, content_type: str) -> bool: ...

    def invocation_error(self, request_id: str, body: bytes) -> bool: ...

    def response_too_large(self, request_id: str) -> bool: ...

    def init_error(self, body: bytes, error_type: str) -> bool: ...


class RuntimeApiEndpoint:
    def __init__(self, target: RuntimeApiTarget, expected_uid: int | None) -> None:
        self._target = target
        self._expected_uid = expected_uid
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
        return _error(400, "InvalidRequestID", f"Invalid request ID: {request_id}")
