"""The HTTP layer's incremental request bodies (lamina/http/protocol.py, `stream_body`): a chunked request the callback
picks is dispatched at the end of its head as a StreamedRequest, its body following through `body_stream` as it is
received, with back-pressure, its trailer fields in `trailers`, and the limits of a whole body. Real sockets on
loopback, under uvloop as `lamina serve` runs."""
from __future__ import annotations

import asyncio
import socket
from typing import Any, Awaitable, Callable

import uvloop

from lamina.http.limits import HttpLimits
from lamina.http.messages import (
    BODY_STREAM_HIGH_WATER,
    BodyTooLarge,
    HttpError,
    IncompleteBody,
    Request,
    Response,
    StreamedRequest,
)
from lamina.http.protocol import HttpProtocol


def _on_error(request: Request, error: BaseException) -> Response:
    return Response(error.status if isinstance(error, HttpError) else 500, type(error).__name__.encode())


async def _serve(
    handler: Callable[[Request], Any],
    *,
    stream_body: Callable[[Request], bool] = lambda request: request.path.startswith("/stream"),
    max_body: int = 64 << 20,
    limits: HttpLimits = HttpLimits(),
) -> tuple[asyncio.AbstractServer, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HttpProtocol(handler, max_body=max_body, on_error=_on_error, limits=limits, stream_body=stream_body),
        "127.0.0.1",
        0,
    )
    return server, server.sockets[0].getsockname()[1]


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _head(path: str = "/stream", extra: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n{extra}\r\n").encode()


async def _read_until_closed(reader: asyncio.StreamReader, timeout: float = 5) -> bytes:
    received = b""
    while chunk := await asyncio.wait_for(reader.read(65536), timeout):
        received += chunk
    return received


def _run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return uvloop.run(scenario())


def test_chunks_reach_the_handler_as_they_are_sent_and_trailers_after_the_body() -> None:
    got: asyncio.Queue[bytes] = asyncio.Queue()
    seen: dict[str, Any] = {}

    async def handler(request: Request) -> Response:
        if request.path == "/after":
            return Response(200, b"after")
        assert isinstance(request, StreamedRequest) and request.body == b""
        seen["trailers_at_start"] = dict(request.trailers)
        async for data in request.body_stream:  # type: ignore[union-attr]
            await got.put(data)
        seen["trailers"] = request.trailers
        seen["headers"] = request.headers
        return Response(200, b"done")

    async def scenario() -> bytes:
        server, port = await _serve(handler)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_head(extra="Trailer: X-Error-Type, X-Error-Body\r\n") + _chunk(b"first"))
            # The handler has the first chunk while the client has not sent (or even decided) the second.
            assert await asyncio.wait_for(got.get(), 2) == b"first"
            writer.write(_chunk(b"second"))
            assert await asyncio.wait_for(got.get(), 2) == b"second"
            writer.write(b"0\r\nX-Error-Type: Function.Boom\r\nX-Error-Body: eyJhIjoxfQ==\r\n\r\n")
            writer.write(b"GET /after HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            try:
                return await _read_until_closed(reader)
            finally:
                writer.close()

    raw = _run(scenario)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\n\r\ndone" in raw
    assert raw.count(b"HTTP/1.1 200 OK") == 2  # keep-alive went on: the pipelined GET was answered after it
    # httptools (llhttp) reports trailer fields through on_header after the last chunk; they land in `trailers`,
    # lower-cased like headers, and not in `headers`.
    assert seen["trailers_at_start"] == {}
    assert seen["trailers"] == {"x-error-type": "Function.Boom", "x-error-body": "eyJhIjoxfQ=="}
    assert "x-error-type" not in seen["headers"] and seen["headers"]["trailer"] == "X-Error-Type, X-Error-Body"


def test_a_request_with_a_content_length_is_read_whole_and_the_callback_is_not_asked() -> None:
    asked: list[str] = []
    seen: list[Request] = []

    def stream_body(request: Request) -> bool:
        asked.append(request.path)
        return True

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(200, b"got:" + request.body)

    async def scenario() -> bytes:
        server, port = await _serve(handler, stream_body=stream_body)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /stream HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                         b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            try:
                return await _read_until_closed(reader)
            finally:
                writer.close()

    raw = _run(scenario)
    assert b"got:hello" in raw and raw.count(b"HTTP/1.1 200 OK") == 2
    assert asked == []
    assert [type(request) for request in seen] == [Request, Request]
    assert seen[0].body_stream is None and seen[0].trailers is None and seen[0].body == b"hello"


def test_a_chunked_request_not_picked_is_read_whole_with_its_trailers_among_the_headers_as_before() -> None:
    seen: list[Request] = []

    def handler(request: Request) -> Response:
        seen.append(request)
        return Response(200, request.body)

    async def scenario() -> bytes:
        server, port = await _serve(handler)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_head("/whole", "Connection: close\r\n") + _chunk(b"ab") + _chunk(b"cd") + b"0\r\nX-T: 1\r\n\r\n")
            try:
                return await _read_until_closed(reader)
            finally:
                writer.close()

    raw = _run(scenario)
    assert raw.endswith(b"\r\n\r\nabcd")
    assert type(seen[0]) is Request and seen[0].headers["x-t"] == "1"


def test_reading_pauses_while_the_consumer_is_behind_and_resumes_when_it_drains() -> None:
    total = 24 << 20
    state: dict[str, Any] = {}

    async def handler(request: Request) -> Response:
        stream = request.body_stream
        assert stream is not None
        await asyncio.sleep(0.5)  # nothing consumed: the connection must stop reading
        state["held"] = stream.received
        size = 0
        async for data in stream:
            size += len(data)
            state["largest"] = max(state.get("largest", 0), len(data))
        state["size"] = size
        return Response(200, b"%d" % size)

    async def scenario() -> bytes:
        server, port = await _serve(handler)
        async with server:
            loop = asyncio.get_running_loop()
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setblocking(False)
            try:
                piece = b"x" * (1 << 20)
                body = _head(extra="Connection: close\r\n") + _chunk(piece) * (total // len(piece)) + b"0\r\n\r\n"
                await loop.sock_sendall(sock, body)
                received = b""
                while data := await asyncio.wait_for(loop.sock_recv(sock, 65536), 5):
                    received += data
                return received
            finally:
                sock.close()

    raw = _run(scenario)
    assert raw.endswith(b"\r\n\r\n%d" % total)
    assert state["size"] == total
    # Held: the high-water mark plus what one read had already taken off the socket (uvloop reads 256 KiB at most).
    assert BODY_STREAM_HIGH_WATER <= state["held"] <= BODY_STREAM_HIGH_WATER + (512 << 10)
    assert state["largest"] <= BODY_STREAM_HIGH_WATER + (512 << 10)


def test_the_body_timeout_does_not_run_while_the_consumer_holds_reading_but_a_stalled_client_is_refused() -> None:
    limits = HttpLimits(body_timeout=0.2)
    outcomes: list[Any] = []

    async def slow_consumer(request: Request) -> Response:
        await asyncio.sleep(0.7)  # reading paused for several body-timeout periods: the client is not at fault
        size = 0
        try:
            async for data in request.body_stream:  # type: ignore[union-attr]
                size += len(data)
        except HttpError as error:
            outcomes.append(error)
            raise
        outcomes.append(size)
        return Response(200, b"%d" % size)

    async def scenario() -> tuple[bytes, bytes]:
        server, port = await _serve(slow_consumer, limits=limits)
        async with server:
            loop = asyncio.get_running_loop()
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setblocking(False)
            try:
                body = _head(extra="Connection: close\r\n") + _chunk(b"y" * (16 << 20)) + b"0\r\n\r\n"
                await loop.sock_sendall(sock, body)
                held = b""
                while data := await asyncio.wait_for(loop.sock_recv(sock, 65536), 5):
                    held += data
            finally:
                sock.close()
            # A client that stops sending midway is refused through the stream: 408 is the handler's answer.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_head() + _chunk(b"partial"))
            try:
                stalled = await _read_until_closed(reader)
            finally:
                writer.close()
            return held, stalled

    held, stalled = _run(scenario)
    assert held.endswith(b"\r\n\r\n%d" % (16 << 20))
    assert stalled.startswith(b"HTTP/1.1 408 ") and b"Connection: close" in stalled
    assert outcomes[0] == 16 << 20
    assert isinstance(outcomes[1], HttpError) and outcomes[1].status == 408


def test_a_body_over_its_limit_midway_ends_the_stream_and_the_handlers_answer_is_the_last() -> None:
    events: list[Any] = []

    async def handler(request: Request) -> Response:
        try:
            async for data in request.body_stream:  # type: ignore[union-attr]
                events.append(len(data))
        except BodyTooLarge as error:
            events.append(error)
            return Response(413, b"too large for me")
        return Response(200, b"complete")

    async def scenario() -> bytes:
        server, port = await _serve(handler, max_body=1000)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_head() + _chunk(b"a" * 600))
            await asyncio.sleep(0.05)
            writer.write(_chunk(b"b" * 600))  # 1,200 bytes across two chunks: over the limit
            await asyncio.sleep(0.05)
            try:
                writer.write(_chunk(b"c" * 600) + b"0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")  # discarded
            except ConnectionError:
                pass
            try:
                return await _read_until_closed(reader)
            finally:
                writer.close()

    raw = _run(scenario)
    assert raw.startswith(b"HTTP/1.1 413 ") and raw.endswith(b"too large for me")
    assert raw.count(b"HTTP/1.1") == 1 and b"Connection: close" in raw
    assert events[0] == 600 and isinstance(events[-1], BodyTooLarge) and events[-1].limit == 1000


def test_a_malformed_chunk_and_a_lost_connection_end_the_stream_with_an_error() -> None:
    errors: list[BaseException] = []
    done = asyncio.Event

    async def scenario() -> bytes:
        finished = done()

        async def handler(request: Request) -> Response:
            try:
                async for _ in request.body_stream:  # type: ignore[union-attr]
                    pass
            except HttpError as error:
                errors.append(error)
                finished.set()
                raise
            return Response(200, b"")

        server, port = await _serve(handler)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_head() + _chunk(b"ok") + b"zz\r\nnot hex\r\n")
            try:
                raw = await _read_until_closed(reader)
            finally:
                writer.close()
            finished.clear()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_head() + _chunk(b"half"))
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.transport.abort()  # the client (a runtime) dies midway
            await asyncio.wait_for(finished.wait(), 2)
            return raw

    raw = _run(scenario)
    assert raw.startswith(b"HTTP/1.1 400 ")
    assert errors[0].status == 400 and not isinstance(errors[0], IncompleteBody)
    assert isinstance(errors[1], IncompleteBody)


def test_a_handler_that_answers_before_its_body_ended_is_the_last_answer_and_the_rest_is_discarded() -> None:
    async def scenario() -> tuple[bytes, bool]:
        server, port = await _serve(lambda request: Response(403, b"not you"))
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_head() + _chunk(b"unwanted"))
            answer = await asyncio.wait_for(reader.readuntil(b"not you"), 2)
            writer.write(_chunk(b"more") * 100 + b"0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n")  # discarded
            rest = await asyncio.wait_for(reader.read(), 3)  # our side is shut: EOF, nothing more
            writer.close()
            return answer + rest, True

    raw, _ = _run(scenario)
    assert raw.startswith(b"HTTP/1.1 403 ") and b"Connection: close" in raw and raw.endswith(b"not you")


def test_a_streamed_request_behind_a_busy_one_waits_its_turn_with_its_body_buffered() -> None:
    order: list[str] = []

    async def handler(request: Request) -> Response:
        if request.path == "/slow":
            await asyncio.sleep(0.2)
            order.append("slow")
            return Response(200, b"slow")
        order.append("stream-start")
        body = b""
        async for data in request.body_stream:  # type: ignore[union-attr]
            body += data
        return Response(200, b"streamed:" + body + b":" + request.trailers.get("x-t", "").encode())  # type: ignore

    async def scenario() -> bytes:
        server, port = await _serve(handler)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" + _head(extra="Connection: close\r\n")
                         + _chunk(b"queued") + b"0\r\nX-T: t\r\n\r\n")
            try:
                return await _read_until_closed(reader)
            finally:
                writer.close()

    raw = _run(scenario)
    assert order == ["slow", "stream-start"]
    assert raw.index(b"slow") < raw.index(b"streamed:queued:t")
