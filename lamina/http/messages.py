"""What the HTTP layer and its handlers exchange: the parsed `Request` (read whole, or a `StreamedRequest` whose body
arrives through a `BodyStream`), the `Response` (whole or streamed), the chunked-encoding frames of a streamed body,
and the `HttpError`s a request is refused with before its handler runs (or, for a streamed request, that end its body).

It is its own module so that handlers (the API, the Runtime API, every service app) depend on these few types only,
not on the connection machinery in `protocol.py`.
"""
from __future__ import annotations

import asyncio
from collections import deque
from http import HTTPStatus
from typing import AsyncIterator, Awaitable, Callable, Union

_REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


#: How much of a streamed request's body may wait unconsumed before the connection stops reading (a read already
#: taken off the socket is still parsed, so at most this plus one read is held).
BODY_STREAM_HIGH_WATER = 1 << 20


class Request:
    """One parsed request; `headers` has lower-cased names, a repeated field's values joined as RFC 9110 allows
    (with ",", as function URL events show them, or "; " for Cookie, RFC 6265). Trailer fields of a chunked body
    read whole land in `headers` too.
    `client`: the address of the connection's peer (the source IP a function URL's event reports).

    `body_stream` and `trailers` are None here (class attributes: a request read whole pays nothing for them); a
    `StreamedRequest` has them."""

    __slots__ = ("method", "path", "query", "headers", "body", "keep_alive", "client")

    body_stream: BodyStream | None = None
    trailers: dict[str, str] | None = None

    def __init__(
        self, method: str, path: str, query: str, headers: dict[str, str], body: bytes, client: str = ""
    ) -> None:
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.keep_alive = True
        self.client = client


class StreamedRequest(Request):
    """A request dispatched as soon as its head is parsed (see HttpProtocol's `stream_body`): `body` stays b"", the
    body arrives through `body_stream` while the handler runs, and `trailers` (lower-cased names) is filled from the
    chunked body's trailer section by the time `body_stream` ends."""

    __slots__ = ("body_stream", "trailers")

    def __init__(self, head: Request, body_stream: BodyStream) -> None:
        super().__init__(head.method, head.path, head.query, head.headers, b"", head.client)
        self.keep_alive = head.keep_alive
        self.body_stream = body_stream
        self.trailers = {}


class BodyStream:
    """The body of a `StreamedRequest` as it arrives: an async iterator of the bytes received since the last step
    (whatever is queued is joined, so a slow consumer takes larger pieces, and a piece is never empty).

    The connection feeds it from the parser (`feed`, then `end`, or `fail` when the request is refused midway:
    a body over its limit, a stalled or malformed body, a connection lost before the body ended); iterating
    delivers what was received before the failure, then raises the failure. Back-pressure: once more than
    `high_water` bytes wait unconsumed, `pause` is called (the connection stops reading the socket), and `resume`
    once the consumer has taken the queue below half of that, or no longer wants the body (`abandon`).

    One consumer at a time. Everything runs on the event loop; nothing here blocks.
    """

    __slots__ = (
        "_chunks", "_queued", "_waiter", "_ended", "_error", "_interrupt", "_pause", "_resume", "_paused",
        "_high_water", "_discarding", "_end_waiters", "received",
    )

    def __init__(
        self,
        pause: Callable[[], None] = lambda: None,
        resume: Callable[[], None] = lambda: None,
        high_water: int = BODY_STREAM_HIGH_WATER,
    ) -> None:
        self._chunks: deque[bytes] = deque()
        self._queued = 0
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self._error: BaseException | None = None
        self._interrupt: BaseException | None = None
        self._pause = pause
        self._resume = resume
        self._paused = False
        self._high_water = high_water
        self._discarding = False
        self._end_waiters: list[asyncio.Future[None]] = []
        #: Body bytes received so far (abandoned ones included).
        self.received = 0

    # -- the producer's side (the connection) ------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        self.received += len(data)
        if self._discarding or self._ended:
            return
        self._chunks.append(data)
        self._queued += len(data)
        if self._queued > self._high_water and not self._paused:
            self._paused = True
            self._pause()
        self._wake()

    append = feed  # the connection's parser appends body pieces to a list, or to this

    def end(self) -> None:
        """The body ended (its trailers, if any, are in the request's `trailers`)."""
        if not self._ended:
            self._ended = True
            self._unpause()  # nothing more will be fed: reading goes on with the connection's next request
            self._finish()

    def fail(self, error: BaseException) -> None:
        """The body will not end: iterating raises `error` once what was received before it is consumed."""
        if not self._ended:
            self._ended = True
            self._error = error
            self._unpause()
            self._finish()

    def _finish(self) -> None:
        self._wake()
        waiters, self._end_waiters = self._end_waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    @property
    def ended(self) -> bool:
        """The producer is done: the body ended or failed."""
        return self._ended

    @property
    def error(self) -> BaseException | None:
        """Why the body did not end, once the producer is done (None: it ended)."""
        return self._error

    def when_ended(self) -> asyncio.Future[None]:
        """Resolves once the producer is done (`ended`), whether or not anyone consumes the body."""
        waiter = asyncio.get_running_loop().create_future()
        if self._ended:
            waiter.set_result(None)
        else:
            self._end_waiters.append(waiter)
        return waiter

    # -- the consumer's side -----------------------------------------------------------------------------------
    def __aiter__(self) -> BodyStream:
        return self

    async def __anext__(self) -> bytes:
        while not self._chunks:
            if self._error is not None:
                raise self._error
            if self._ended:
                raise StopAsyncIteration
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await waiter
            finally:
                self._waiter = None
            interrupt = self._interrupt
            if interrupt is not None:
                self._interrupt = None
                raise interrupt
        chunks = self._chunks
        data = chunks.popleft() if len(chunks) == 1 else b"".join(chunks)
        chunks.clear()
        self._queued = 0
        if self._paused:
            self._unpause()
        return data

    def abandon(self, interrupt: BaseException | None = None) -> None:
        """The consumer wants no more of the body: what is queued and what still arrives is dropped (counted in
        `received`), and reading is never paused for it again; `when_ended` still tells when the body is over. A
        step waiting for data at that moment raises `interrupt` (if given: say, from another task than the one
        iterating); a later step waits for the producer's end."""
        self._discarding = True
        self._chunks.clear()
        self._queued = 0
        self._unpause()
        waiter = self._waiter
        if interrupt is not None and waiter is not None and not waiter.done():
            self._interrupt = interrupt
            waiter.set_result(None)

    def _unpause(self) -> None:
        if self._paused:
            self._paused = False
            self._resume()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)


Trailers = Callable[[], "list[tuple[str, str]]"]


class Response:
    """A response. `body` is bytes (sent with Content-Length), or an async iterator of bytes, which is streamed with
    `Transfer-Encoding: chunked` as it is produced (writing pauses while the client does not read); `trailers`, for a
    streamed body only, is called once the body ended and its header fields are sent after the last chunk."""

    __slots__ = ("status", "headers", "body", "trailers")

    def __init__(
        self,
        status: int,
        body: bytes | AsyncIterator[bytes] = b"",
        headers: list[tuple[str, str]] | None = None,
        trailers: Trailers | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else []
        self.trailers = trailers

    def _head(self, keep_alive: bool) -> list[bytes]:
        head = [b"HTTP/1.1 %d %s\r\n" % (self.status, _REASONS.get(self.status, b"Unknown"))]
        for name, value in self.headers:
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        if not keep_alive:
            head.append(b"Connection: close\r\n")
        return head

    def encode(self, keep_alive: bool) -> bytes:
        """The whole response, for a bytes body."""
        head = self._head(keep_alive)
        head.append(b"Content-Length: %d\r\n\r\n" % len(self.body))  # type: ignore[arg-type]
        return b"".join(head) + self.body  # type: ignore[operator]

    def encode_streamed_head(self, keep_alive: bool) -> bytes:
        """Status line and headers of a streamed (chunked) response."""
        head = self._head(keep_alive)
        head.append(b"Transfer-Encoding: chunked\r\n\r\n")
        return b"".join(head)


def encode_chunk(data: bytes) -> bytes:
    """One chunk of a chunked body (never empty: an empty chunk ends the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def encode_last_chunk(trailers: list[tuple[str, str]] | None = None) -> bytes:
    """The last chunk, with the trailer fields if any."""
    fields = b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in trailers or ())
    return b"0\r\n" + fields + b"\r\n"


HandlerResult = Union[Response, Awaitable[Response]]
Handler = Callable[[Request], HandlerResult]


class HttpError(Exception):
    """A request refused by this layer before its handler ran; `status` says why (400, 408, 413, 414, 431)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class IncompleteBody(HttpError):
    """A streamed request's body will not be received to its end: the connection closed first, or the handler
    answered first (nothing is read after that answer)."""

    def __init__(self) -> None:
        super().__init__(400, "The request body was not received to its end")


class BodyTooLarge(HttpError):
    """A body over its limit, refused on its Content-Length or as soon as a chunked body grows past it."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"Request must be smaller than {limit} bytes")
        self.limit = limit

