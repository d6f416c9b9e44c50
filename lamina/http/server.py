"""A lean HTTP/1.1 server protocol for asyncio, on httptools' parser.

Why not a framework: the invoke path and the Runtime API are the hot path (three HTTP messages per warm invoke),
and a framework's per-request machinery costs more than the whole round trip budget (0.7 ms p50). Parsing is
httptools (llhttp, the parser behind Node and uvicorn); this module only frames requests and responses. It
supports keep-alive, pipelining (responses are written in request order) and `Expect: 100-continue`.
"""
from __future__ import annotations

import asyncio
import functools
from collections import deque
from http import HTTPStatus
from typing import Awaitable, Callable, Union

import httptools

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


class Request:
    """One parsed request; `headers` has lower-cased names (the last value wins)."""

    __slots__ = ("method", "path", "query", "headers", "body", "keep_alive")

    def __init__(self, method: str, path: str, query: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.keep_alive = True


class Response:
    __slots__ = ("status", "headers", "body")

    def __init__(self, status: int, body: bytes = b"", headers: list[tuple[str, str]] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else []

    def encode(self, keep_alive: bool) -> bytes:
        head = [b"HTTP/1.1 %d %s\r\n" % (self.status, _REASONS.get(self.status, b"Unknown"))]
        for name, value in self.headers:
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        if not keep_alive:
            head.append(b"Connection: close\r\n")
        head.append(b"Content-Length: %d\r\n\r\n" % len(self.body))
        return b"".join(head) + self.body


HandlerResult = Union[Response, Awaitable[Response]]
Handler = Callable[[Request], HandlerResult]


class HttpProtocol(asyncio.Protocol):
    """Parses requests off one connection and hands them, in order, to `handler`."""

    def __init__(
        self,
        handler: Handler,
        *,
        max_body: int,
        on_error: Callable[[Request, BaseException], Response],
        accept: Callable[[asyncio.Transport], bool] | None = None,
        on_close: Callable[["HttpProtocol"], None] | None = None,
        hold_pipelined: bool = False,
    ) -> None:
        self._handler = handler
        self._max_body = max_body
        self._on_error = on_error
        self._accept = accept
        self._on_close = on_close
        self._hold_pipelined = hold_pipelined
        self._held: list[bytes] = []
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._queue: deque[Request] = deque()
        self._busy = False
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._too_large = False
        self.closed = False

    # -- asyncio.Protocol --------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop transports are not asyncio subclasses
        if self._accept is not None and not self._accept(transport):
            transport.abort()
            self.closed = True

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserUpgrade, httptools.HttpParserError):
            self._fail(400)
            return
        # Dispatch once the whole chunk is parsed, so pipelined requests are all queued (see hold_pipelined).
        if not self._busy:
            self._drain()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._queue.clear()
        if self._on_close is not None:
            self._on_close(self)

    # -- httptools callbacks -------------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0
        self._too_large = False

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        length = self._headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self._max_body:
            self._too_large = True
        elif self._headers.get("expect", "").lower() == "100-continue" and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._max_body:
            self._too_large = True
        if not self._too_large:
            self._body.append(body)

    def on_message_complete(self) -> None:
        parsed = httptools.parse_url(self._url)
        request = Request(
            self._parser.get_method().decode("ascii"),
            parsed.path.decode("latin-1"),
            parsed.query.decode("latin-1") if parsed.query else "",
            self._headers,
            b"".join(self._body),
        )
        request.keep_alive = self._parser.should_keep_alive()
        if self._too_large:
            request.body = b""
            self._queue.append(_TooLarge(request))
        else:
            self._queue.append(request)

    # -- dispatch ------------------------------------------------------------------------------------------------
    def _drain(self) -> None:
        while self._queue and not self.closed:
            request = self._queue.popleft()
            if isinstance(request, _TooLarge):
                self._write(request.request, self._on_error(request.request, BodyTooLarge()))
                continue
            try:
                result = self._handler(request)
            except Exception as error:  # noqa: BLE001 - every failure becomes an AWS-shaped response
                result = self._on_error(request, error)
            if isinstance(result, Response):
                self._write(request, result)
                continue
            self._busy = True
            if isinstance(result, asyncio.Future):
                # A bare future (a parked Runtime API `next`): a callback is much cheaper than a Task per request.
                result.add_done_callback(functools.partial(self._future_done, request))
            else:
                asyncio.ensure_future(self._finish(request, result))
            return

    async def _finish(self, request: Request, pending: Awaitable[Response]) -> None:
        try:
            response = await pending
        except Exception as error:  # noqa: BLE001
            response = self._on_error(request, error)
        self._busy = False
        self._write(request, response)
        self._drain()

    def _future_done(self, request: Request, future: asyncio.Future[Response]) -> None:
        if future.cancelled():
            response = self._on_error(request, asyncio.CancelledError())
        elif future.exception() is not None:
            response = self._on_error(request, future.exception())  # type: ignore[arg-type]
        else:
            response = future.result()
        self._busy = False
        self._write(request, response)
        self._drain()

    def _write(self, request: Request, response: Response) -> None:
        if self._transport is None or self.closed:
            return
        data = response.encode(request.keep_alive)
        if self._hold_pipelined and self._queue and request.keep_alive:
            # A client that pipelined its next request is waiting for that answer anyway (a runtime's `next` after its
            # `response`): send both in one write, saving a loopback send and wake-up per invoke.
            self._held.append(data)
            return
        if self._held:
            data = b"".join(self._held) + data
            self._held.clear()
        self._transport.write(data)
        if not request.keep_alive:
            self._transport.close()
            self.closed = True

    def _fail(self, status: int) -> None:
        if self._transport is not None and not self.closed:
            self._transport.write(Response(status).encode(False))
            self._transport.close()
        self.closed = True


class BodyTooLarge(Exception):
    """Raised into the error mapper when a request body exceeds the server's limit."""


class _TooLarge:
    __slots__ = ("request",)

    def __init__(self, request: Request) -> None:
        self.request = request

