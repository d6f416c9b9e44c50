"""A lean HTTP/1.1 server protocol for asyncio, on httptools' parser: parsing, limits and timeouts, dispatch to the
handler in request order, and the streaming write path.

Why not a framework: the invoke path and the Runtime API are the hot path (three HTTP messages per warm invoke),
and a framework's per-request machinery costs more than the whole round trip budget (0.7 ms p50). Parsing is
httptools (llhttp, the parser behind Node and uvicorn); this module only frames requests and responses. It
supports keep-alive, pipelining (responses are written in request order) and `Expect: 100-continue`, and streams a
response whose body is an async iterator of bytes (`Transfer-Encoding: chunked`, optional trailers; the iterator is
not asked for more while the transport's buffer is over its high-water mark).

A request can also be streamed in: when `stream_body(request)` says so at the end of a chunked request's head, the
request is dispatched at once as a `StreamedRequest`, its body following through `request.body_stream` as it is
received (reading pauses while more than `BODY_STREAM_HIGH_WATER` bytes wait unconsumed) and its trailer fields
collected in `request.trailers` (llhttp reports them through `on_header` after the last chunk). Its limits are the
same as a whole body's (size across chunks, the body timeout, which does not run while the consumer holds reading
paused), but a refusal midway cannot be a separate answer any more: it ends the body stream with the `HttpError`,
the handler's answer is the connection's last, and the rest of what the client sends is discarded while we linger.
A handler that answers before its streamed body ended gets the same: its answer, then no more reading.

It also enforces what one connection can hold (`HttpLimits` in `limits.py`: head size, header count, URL length,
header, body and idle timeouts; a body limit checked on Content-Length before any body byte is read) and how many
connections one peer can open (`ConnectionLimiter`). A refused request is answered through `on_error` with an
`HttpError` (`messages.py`), then the connection is closed.
"""
from __future__ import annotations

import asyncio
import fcntl
import functools
import logging
import struct
import termios
from collections import deque
from typing import AsyncIterator, Awaitable, Callable, NoReturn

import httptools

from lamina.http.limits import ConnectionLimiter, HttpLimits
from lamina.http.messages import (
    BodyStream,
    BodyTooLarge,
    Handler,
    HttpError,
    IncompleteBody,
    Request,
    Response,
    StreamedRequest,
    encode_chunk,
    encode_last_chunk,
)

_log = logging.getLogger("lamina.http")

#: After a refusal our side is shut and what the client still sends is discarded this long, so that a client busy
#: sending a body it was refused reads the answer rather than a connection reset.
LINGER_SECONDS = 2.0
#: Parsed requests waiting behind a busy one; reading pauses above this, so pipelining cannot buffer without bound.
MAX_QUEUED_REQUESTS = 32
#: A connection that has sent nothing when its header timeout fires is looked at once more this much later.
FRESH_GRACE_SECONDS = 0.05

# Where a connection is: between requests, inside a request's head, inside its body, or answered a refusal.
_IDLE, _HEAD, _BODY, _LINGER = 0, 1, 2, 3


class HttpProtocol(asyncio.Protocol):
    """Parses requests off one connection and hands them, in order, to `handler`.

    `max_body` is the body every request may have; `body_limit(request)` is asked (on Content-Length, or at the
    start of a chunked body; the request has its method, path, query and headers, not yet its body) for the limit of a
    request that may exceed it. `stream_body(request)` is asked at the start of a chunked body (after `body_limit`)
    whether to dispatch the request before its body, as a `StreamedRequest`; requests with a Content-Length are
    always read whole, so the common path pays nothing for streaming.
    """

    __slots__ = (
        "_handler", "_max_body", "_on_error", "_body_limit", "_limits", "_max_head", "_max_url", "_connections",
        "_peer", "_client", "_accept", "_on_close", "_hold_pipelined", "_held", "_parser", "_transport", "_loop", "_queue",
        "_busy", "_state", "_begun", "_fresh", "_graced", "_url", "_headers", "_head_size", "_head_bytes",
        "_request", "_body", "_body_size", "_body_mark", "_limit", "_stopping", "_refused", "_read_paused",
        "_write_paused", "_writable", "_deadline", "_timer", "_timer_at", "closed", "_stream_body", "_body_stream",
        "_stream_full", "_linger_on_close",
    )

    def __init__(
        self,
        handler: Handler,
        *,
        max_body: int,
        on_error: Callable[[Request, BaseException], Response],
        body_limit: Callable[[Request], int] | None = None,
        limits: HttpLimits = HttpLimits(),
        connections: ConnectionLimiter | None = None,
        accept: Callable[[asyncio.Transport], bool] | None = None,
        on_close: Callable[["HttpProtocol"], None] | None = None,
        hold_pipelined: bool = False,
        stream_body: Callable[[Request], bool] | None = None,
    ) -> None:
        self._handler = handler
        self._max_body = max_body
        self._on_error = on_error
        self._body_limit = body_limit
        self._limits = limits
        self._max_head = limits.max_head  # the two limits checked per parser callback
        self._max_url = limits.max_url
        self._connections = connections
        self._peer: str | None = None
        self._client = ""
        self._accept = accept
        self._on_close = on_close
        self._hold_pipelined = hold_pipelined
        self._held: list[bytes] = []
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[Request | _Refusal] = deque()  # a StreamedRequest is queued at the end of its head
        self._busy = False
        self._state = _IDLE
        self._begun = 0  # requests begun on this connection
        self._fresh = True  # no request begun yet: the header timeout runs from the connection's opening
        self._graced = False
        self._url = b""
        self._headers: dict[str, str] = {}
        self._head_size = 0  # bytes of the parsed header lines
        self._head_bytes = 0  # bytes received while the head is unfinished
        self._request: Request | None = None
        self._body: list[bytes] = []
        self._body_size = 0
        self._body_mark = 0  # the body's size when its stall timer was last armed
        self._limit = max_body
        self._stopping: HttpError | None = None  # raised in a parser callback, to stop the parser
        self._refused = False
        self._read_paused = False
        self._write_paused = False
        self._writable: asyncio.Future[None] | None = None  # a streamed body waiting for the client to read
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self.closed = False
        self._stream_body = stream_body
        self._body_stream: BodyStream | None = None  # the streamed body being received
        self._stream_full = False  # reading paused because the streamed body's consumer is behind
        self._linger_on_close = False  # the last answer went out before its request's body ended: linger, then close

    # -- asyncio.Protocol --------------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop transports are not asyncio subclasses
        self._loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        address = self._client = str(peer[0]) if isinstance(peer, tuple) else str(peer or "")
        if self._connections is not None:
            if not self._connections.admit(address):
                transport.abort()
                self.closed = True
                return
            self._peer = address
        if self._accept is not None and not self._accept(self._transport):  # type: ignore[arg-type]
            transport.abort()
            self.closed = True
            return
        self._expire_in(self._limits.header_timeout)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # the rest of a refused request, discarded while we linger
        state, begun = self._state, self._begun
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # `Upgrade:` (h2c, websocket) or CONNECT: answer the request as HTTP/1.1, then close.
            last = self._queue[-1] if self._queue else None
            if isinstance(last, Request):
                last.keep_alive = False
            self._refused = True
        except httptools.HttpParserError as error:
            self._refuse(self._stopping or HttpError(400, f"Could not parse the HTTP request: {error}"))
            return
        if self._state == _HEAD and (self._begun == begun or (self._begun == begun + 1 and state == _IDLE)):
            # This read ends inside an unfinished head that spans all of it (a head that began after another request
            # in the same read is counted from the next read on): what the parser buffers stays bounded.
            self._head_bytes += len(data)
            if self._head_bytes > self._max_head:
                self._refuse(_head_too_large(self._limits))
                return
        if len(self._queue) >= MAX_QUEUED_REQUESTS:
            self._update_reading()
        if not self._busy:
            # Dispatch once the whole chunk is parsed, so pipelined requests are all queued (see hold_pipelined).
            self._drain()

    def pause_writing(self) -> None:
        self._write_paused = True
        self._update_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()
        self._update_reading()

    def _wake_writer(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._queue.clear()
        self._wake_writer()
        stream = self._body_stream
        if stream is not None:
            self._body_stream = None
            stream.fail(IncompleteBody())
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._peer is not None and self._connections is not None:
            self._connections.release(self._peer)
            self._peer = None
        if self._on_close is not None:
            self._on_close(self)

    # -- httptools callbacks -------------------------------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._state = _HEAD
        self._begun += 1
        if self._fresh:
            self._fresh = False
        else:
            self._expire_in(self._limits.header_timeout)
        self._url = b""
        self._headers = {}
        self._head_size = self._head_bytes = self._body_size = 0
        self._body = []
        self._limit = self._max_body

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > self._max_url:
            self._stop(HttpError(414, f"Request URI must be smaller than {self._max_url} bytes"))

    def on_header(self, name: bytes, value: bytes) -> None:
        field = name.decode("latin-1").lower()
        headers = self._headers
        if field in headers:  # a repeated field: one value, as RFC 9110 (and RFC 6265 for Cookie) join them
            headers[field] += ("; " if field == "cookie" else ",") + value.decode("latin-1")
        else:
            headers[field] = value.decode("latin-1")
        self._head_size += len(name) + len(value) + 4
        if self._head_size > self._max_head:
            self._stop(_head_too_large(self._limits))

    def on_headers_complete(self) -> None:
        limits = self._limits
        if len(self._headers) > limits.max_headers:  # repeats of one name count once: they cost no memory
            self._stop(HttpError(431, f"Request must have at most {limits.max_headers} headers"))
        if len(self._url) + self._head_size > self._max_head:
            self._stop(_head_too_large(limits))
        self._state = _BODY
        try:
            parsed = httptools.parse_url(self._url)
        except httptools.HttpParserInvalidURLError:
            self._stop(HttpError(400, "Could not parse the HTTP request: invalid request target"))
        headers = self._headers
        request = self._request = Request(
            self._parser.get_method().decode("ascii"),
            parsed.path.decode("latin-1"),
            parsed.query.decode("latin-1") if parsed.query else "",
            headers,
            b"",
            self._client,
        )
        request.keep_alive = self._parser.should_keep_alive()
        length = headers.get("content-length")
        declared = int(length) if length is not None and length.isdigit() else 0
        chunked = "transfer-encoding" in headers
        if declared > self._limit or (chunked and self._body_limit is not None):
            if self._body_limit is not None:
                self._limit = self._body_limit(request)
            if declared > self._limit:
                self._stop(BodyTooLarge(self._limit))
        if declared or chunked:
            self._body_mark = 0
            self._expire_in(limits.body_timeout)
        if chunked and self._stream_body is not None and self._stream_body(request):
            self._start_stream(request)
        if headers.get("expect", "").lower() == "100-continue" and self._transport is not None:
            self._transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _start_stream(self, head: Request) -> None:
        """Queue `head` now as a StreamedRequest; its body chunks and trailer fields go to the stream from here on."""
        stream = self._body_stream = BodyStream(self._pause_for_stream, self._resume_for_stream)
        request = self._request = StreamedRequest(head, stream)
        self._body = stream  # type: ignore[assignment]  # on_body appends: feed the stream instead
        self._headers = request.trailers  # type: ignore[assignment]  # fields after the body are its trailers
        self._queue.append(request)

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._limit:
            self._stop(BodyTooLarge(self._limit))
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._state = _IDLE
        self._deadline = None  # no timeout while the request is handled (an invoke, a parked `next`)
        request = self._request
        assert request is not None
        self._request = None
        stream = self._body_stream
        if stream is not None:  # dispatched already: its body ends here
            self._body_stream = None
            stream.end()
            return
        request.body = b"".join(self._body)
        self._queue.append(request)

    # -- dispatch ------------------------------------------------------------------------------------------------
    def _drain(self) -> None:
        while self._queue and not self.closed:
            request = self._queue.popleft()
            if type(request) is not Request:
                if isinstance(request, _Refusal):
                    self._write_refusal(request)
                    return
                self._dispatch_streamed(request)  # type: ignore[arg-type]
                break
            try:
                result = self._handler(request)
            except Exception as error:  # noqa: BLE001 - every failure becomes an AWS-shaped response
                result = self._on_error(request, error)
            if isinstance(result, Response):
                if self._write(request, result):
                    continue
                self._busy = True  # a streamed body: the stream's task drains the queue when it ends
                break
            self._busy = True
            if isinstance(result, asyncio.Future):
                # A bare future (a parked Runtime API `next`): a callback is much cheaper than a Task per request.
                result.add_done_callback(functools.partial(self._future_done, request))
            else:
                asyncio.ensure_future(self._finish(request, result))
            break
        if self._read_paused:
            self._update_reading()
        if not self._busy and self._state == _IDLE and not self.closed:
            self._expire_in(self._limits.idle_timeout)

    def _dispatch_streamed(self, request: StreamedRequest) -> None:
        self._busy = True
        try:
            result = self._handler(request)
        except Exception as error:  # noqa: BLE001
            result = self._on_error(request, error)
        asyncio.ensure_future(self._finish_streamed(request, result))

    async def _finish_streamed(self, request: StreamedRequest, result: Response | Awaitable[Response]) -> None:
        if isinstance(result, Response):
            response = result
        else:
            try:
                response = await result
            except Exception as error:  # noqa: BLE001
                response = self._on_error(request, error)
        self._busy = False
        if self._request is request:
            # Answered before its body ended: nothing is read after this answer (the client may still be sending).
            self._refused = True
            self._deadline = None
            self._body_stream = self._request = None
            request.body_stream.fail(IncompleteBody())  # type: ignore[union-attr]
            request.keep_alive = False
            self._linger_on_close = True
        if self._write(request, response):
            self._drain()
        else:
            self._busy = True

    async def _finish(self, request: Request, pending: Awaitable[Response]) -> None:
        try:
            response = await pending
        except Exception as error:  # noqa: BLE001
            response = self._on_error(request, error)
        self._busy = False
        if self._write(request, response):
            self._drain()
        else:
            self._busy = True

    def _future_done(self, request: Request, future: asyncio.Future[Response]) -> None:
        if future.cancelled():
            response = self._on_error(request, asyncio.CancelledError())
        elif future.exception() is not None:
            response = self._on_error(request, future.exception())  # type: ignore[arg-type]
        else:
            response = future.result()
        self._busy = False
        if self._write(request, response):
            self._drain()
        else:
            self._busy = True

    def _write(self, request: Request, response: Response) -> bool:
        """Writes `response`; False when its body is streamed by a task that goes on with the queue once it ends."""
        if self._transport is None or self.closed:
            return True
        if not isinstance(response.body, (bytes, bytearray)):
            asyncio.ensure_future(self._stream(request, response))
            return False
        data = response.encode(request.keep_alive)
        if self._hold_pipelined and self._queue and request.keep_alive:
            # A client that pipelined its next request is waiting for that answer anyway (a runtime's `next` after its
            # `response`): send both in one write, saving a loopback send and wake-up per invoke.
            self._held.append(data)
            return True
        if self._held:
            data = b"".join(self._held) + data
            self._held.clear()
        self._transport.write(data)
        if not request.keep_alive:
            self._close_after_answer()
        return True

    def _close_after_answer(self) -> None:
        if self._linger_on_close:
            self._linger()
        else:
            assert self._transport is not None
            self._transport.close()
            self.closed = True

    async def _stream(self, request: Request, response: Response) -> None:
        """Writes a streamed body chunk by chunk as its iterator yields them, waiting while the transport's buffer is
        over its high-water mark (pause_writing), then the last chunk and trailers. A body that fails midway cannot be
        answered any more: the connection is aborted, so the client sees a truncated body rather than a complete one."""
        transport = self._transport
        assert transport is not None
        body: AsyncIterator[bytes] = response.body  # type: ignore[assignment]
        head = response.encode_streamed_head(request.keep_alive)
        if self._held:
            head = b"".join(self._held) + head
            self._held.clear()
        complete = False
        try:
            transport.write(head)
            async for data in body:
                if self.closed:
                    break
                if data:
                    transport.write(encode_chunk(data))
                if self._write_paused and not self.closed:
                    assert self._loop is not None
                    self._writable = self._loop.create_future()
                    await self._writable
            else:
                if not self.closed:
                    transport.write(encode_last_chunk(response.trailers() if response.trailers else None))
                    complete = True
        except Exception:  # noqa: BLE001 - the head is out: nothing left to answer with
            _log.exception("streamed response body failed for %s %s", request.method, request.path)
        finally:
            close = getattr(body, "aclose", None)
            if close is not None:
                try:
                    await close()
                except Exception:  # noqa: BLE001
                    _log.exception("closing a streamed response body failed")
        self._busy = False
        if self.closed:
            return
        if not complete:
            transport.abort()
            self.closed = True
            return
        if not request.keep_alive:
            self._close_after_answer()
            return
        self._drain()

    # -- limits ----------------------------------------------------------------------------------------------------
    def _stop(self, error: HttpError) -> NoReturn:
        """From a parser callback: stop parsing here; data_received refuses the request."""
        self._stopping = error
        raise error

    def _refuse(self, error: HttpError) -> None:
        """Stop reading requests; answer `error` after the answers already due, then close. A streamed request
        already queued or dispatched gets `error` through its body stream instead, and its answer is the last."""
        self._refused = True
        self._deadline = None
        stream = self._body_stream
        if stream is not None:
            self._body_stream = None
            self._request.keep_alive = False  # type: ignore[union-attr]
            self._request = None
            self._linger_on_close = True
            stream.fail(error)
            if not self._busy:
                self._drain()  # refused in the very read that began it: not dispatched yet
            return
        request = self._request or Request("", "", "", {}, b"")
        request.keep_alive = False
        self._queue.append(_Refusal(request, error))
        if not self._busy:
            self._drain()

    def _write_refusal(self, refusal: _Refusal) -> None:
        transport = self._transport
        if transport is None:
            return
        data = self._on_error(refusal.request, refusal.error).encode(False)
        if self._held:
            data = b"".join(self._held) + data
            self._held.clear()
        transport.write(data)
        self._linger()

    def _linger(self) -> None:
        """After the connection's last answer: shut our side, discard what the client still sends for a while."""
        assert self._transport is not None
        self._refused = True
        if self._transport.can_write_eof():
            self._transport.write_eof()
        self._state = _LINGER
        self._expire_in(LINGER_SECONDS)

    def _update_reading(self) -> None:
        """Reading pauses while the client does not read its answers or has many requests queued: either would
        otherwise make this connection buffer without bound."""
        pause = self._write_paused or self._stream_full or len(self._queue) >= MAX_QUEUED_REQUESTS
        if pause != self._read_paused and self._transport is not None and not self.closed:
            self._read_paused = pause
            if pause:
                self._transport.pause_reading()
            else:
                self._transport.resume_reading()

    def _pause_for_stream(self) -> None:
        self._stream_full = True
        self._update_reading()

    def _resume_for_stream(self) -> None:
        self._stream_full = False
        self._update_reading()

    def _expire_in(self, seconds: float | None) -> None:
        """Moves the connection's one deadline. Its timer is re-armed only when it would fire too late, so a busy
        keep-alive connection costs a float store per request, not a timer."""
        if seconds is None:
            self._deadline = None
            return
        assert self._loop is not None
        deadline = self._deadline = self._loop.time() + seconds
        if self._timer is None or deadline < self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self._loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline

    def _on_timer(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self.closed or self._transport is None:
            return
        assert self._loop is not None
        if self._loop.time() < deadline:
            self._timer = self._loop.call_at(deadline, self._on_timer)
            self._timer_at = deadline
        elif self._state == _HEAD:
            self._refuse(HttpError(408, f"Request headers not received within {self._limits.header_timeout:g} s"))
        elif self._fresh and not self._graced:
            # Nothing read yet, but the first bytes may have arrived in this very loop iteration, unread behind the
            # timer: look again after the next poll, so a slow client is answered 408 and a silent one dropped.
            self._graced = True
            self._timer = self._loop.call_later(FRESH_GRACE_SECONDS, self._on_timer)
            self._timer_at = self._loop.time() + FRESH_GRACE_SECONDS
        elif self._fresh and _unread_bytes(self._transport):
            # Its first bytes are in the socket, not read yet: a loop running late (a busy host) reads them next.
            self._timer = self._loop.call_later(FRESH_GRACE_SECONDS, self._on_timer)
            self._timer_at = self._loop.time() + FRESH_GRACE_SECONDS
        elif self._state == _BODY and (self._body_size != self._body_mark or self._stream_full):
            # The body moved since the timer was armed (checked here rather than per read), or we hold it (a streamed
            # body's consumer is behind): another period.
            self._body_mark = self._body_size
            self._expire_in(self._limits.body_timeout)
        elif self._state == _BODY:
            self._refuse(HttpError(408, f"Request body stalled: nothing received for {self._limits.body_timeout:g} s"))
        else:  # idle between requests, or done lingering after a refusal
            if self._state == _LINGER or self._transport.get_write_buffer_size():
                self._transport.abort()  # nothing more to say, or a client that does not read what it is sent
            else:
                self._transport.close()
            self.closed = True


def _unread_bytes(transport: asyncio.BaseTransport) -> int:
    """Bytes the kernel holds for this connection that the loop has not read yet (FIONREAD; 0 when unknown)."""
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
    except OSError:
        return 0


def _head_too_large(limits: HttpLimits) -> HttpError:
    return HttpError(431, f"Request line and headers must be smaller than {limits.max_head} bytes")


class _Refusal:
    __slots__ = ("request", "error")

    def __init__(self, request: Request, error: HttpError) -> None:
        self.request = request
        self.error = error
