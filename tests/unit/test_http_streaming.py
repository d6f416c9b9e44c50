"""The HTTP layer's streaming write path (lamina/http/protocol.py): a Response whose body is an async iterator is sent
with Transfer-Encoding: chunked as it is produced, with trailers, pausing while the client does not read. Real sockets
on loopback, under uvloop as `lamina serve` runs."""
from __future__ import annotations

import asyncio
import socket
from typing import Any, AsyncIterator, Callable

import httptools
import uvloop

from lamina.http.messages import HttpError, Request, Response
from lamina.http.protocol import HttpProtocol


def _on_error(request: Request, error: BaseException) -> Response:
    return Response(error.status if isinstance(error, HttpError) else 500, str(error).encode())


async def _serve(handler: Callable[[Request], Any]) -> tuple[asyncio.AbstractServer, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: HttpProtocol(handler, max_body=1 << 20, on_error=_on_error),
                                      "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


class _Parsed:
    """Responses parsed off one connection by httptools (chunked framing and trailers included)."""

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.messages: list[dict[str, Any]] = []

    def on_message_begin(self) -> None:
        self.messages.append({"headers": {}, "body": b"", "complete": False})

    def on_header(self, name: bytes, value: bytes) -> None:
        self.messages[-1]["headers"][name.decode().lower()] = value.decode()

    def on_body(self, body: bytes) -> None:
        self.messages[-1]["body"] += body

    def on_message_complete(self) -> None:
        self.messages[-1]["complete"] = True
        self.messages[-1]["status"] = self.parser.get_status_code()


async def _read_until_closed(reader: asyncio.StreamReader) -> bytes:
    received = b""
    while chunk := await asyncio.wait_for(reader.read(65536), 5):
        received += chunk
    return received


def test_a_streamed_body_is_sent_chunked_with_trailers_and_keep_alive_goes_on() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"hello "
        yield b""  # nothing to send: no chunk (an empty one would end the body)
        await asyncio.sleep(0.01)
        yield b"world"

    def handler(request: Request) -> Response:
        if request.path == "/stream":
            return Response(200, body(), [("Content-Type", "text/plain")], trailers=lambda: [("X-Checksum", "42")])
        return Response(200, b"after")

    async def scenario() -> bytes:
        server, port = await _serve(handler)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            # Pipelined: the second answer must wait for the end of the stream and come after it.
            writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n"
                         b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            try:
                return await _read_until_closed(reader)
            finally:
                writer.close()

    raw = uvloop.run(scenario())
    assert b"Transfer-Encoding: chunked\r\n" in raw and b"Content-Length" not in raw.split(b"\r\n\r\n", 1)[0]
    assert b"6\r\nhello \r\n5\r\nworld\r\n0\r\nX-Checksum: 42\r\n\r\n" in raw
    parsed = _Parsed()
    parsed.parser.feed_data(raw)
    assert [(m["status"], m["body"], m["complete"]) for m in parsed.messages] == [
        (200, b"hello world", True), (200, b"after", True)]


def test_a_stream_pauses_while_the_client_does_not_read() -> None:
    """Back-pressure: with the client not reading, the body's iterator is not asked for more once the transport's
    buffer is full; when the client reads, it goes on to the end."""
    chunk = b"x" * 65536
    total = 400  # 25 MB: far more than socket buffers and the transport's high-water mark hold
    produced = [0]

    async def body() -> AsyncIterator[bytes]:
        for _ in range(total):
            produced[0] += 1
            yield chunk

    async def scenario() -> tuple[int, int, int]:
        server, port = await _serve(lambda request: Response(200, body()))
        async with server:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await asyncio.sleep(0.5)
            stalled = produced[0]
            await asyncio.sleep(0.3)
            still = produced[0]
            sock.setblocking(False)
            received = 0
            loop = asyncio.get_running_loop()
            while True:
                data = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), 5)
                if not data:
                    break
                received += len(data)
            sock.close()
            return stalled, still, received

    stalled, still, received = uvloop.run(scenario())
    assert stalled < total // 2 and still == stalled, (stalled, still)
    assert produced[0] == total
    assert received > total * len(chunk)


def test_a_body_that_fails_midway_aborts_the_connection_and_is_closed() -> None:
    state = {"closed": False}

    class Body:
        def __init__(self) -> None:
            self.sent = False

        def __aiter__(self) -> "Body":
            return self

        async def __anext__(self) -> bytes:
            if not self.sent:
                self.sent = True
                return b"partial"
            raise RuntimeError("the producer failed")

        async def aclose(self) -> None:
            state["closed"] = True

    async def scenario() -> bytes:
        server, port = await _serve(lambda request: Response(200, Body()))
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            try:
                return await _read_until_closed(reader)
            except ConnectionResetError:
                return b"reset"
            finally:
                writer.close()

    raw = uvloop.run(scenario())
    assert state["closed"]  # the body's aclose ran
    assert b"0\r\n\r\n" not in raw  # never a complete body: the client can tell it was cut short


def test_an_async_handler_can_return_a_stream() -> None:
    async def body() -> AsyncIterator[bytes]:
        yield b"a"

    async def handler(request: Request) -> Response:
        await asyncio.sleep(0)
        return Response(201, body())

    async def scenario() -> bytes:
        server, port = await _serve(handler)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            try:
                return await _read_until_closed(reader)
            finally:
                writer.close()

    raw = uvloop.run(scenario())
    assert raw.startswith(b"HTTP/1.1 201 ") and raw.endswith(b"1\r\na\r\n0\r\n\r\n")
