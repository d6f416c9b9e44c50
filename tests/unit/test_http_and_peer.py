"""The lean HTTP protocol (pipelining, 100-continue, body limits) and the Runtime API peer check."""
from __future__ import annotations

import asyncio
import os
import socket

import pytest

from lamina.http.messages import BodyTooLarge, Request, Response
from lamina.http.protocol import HttpProtocol
from lamina.runtime_api.peer import loopback_socket_uid


def _on_error(request: Request, error: BaseException) -> Response:
    return Response(413 if isinstance(error, BodyTooLarge) else 500, type(error).__name__.encode())


async def _serve(handler) -> tuple[asyncio.base_events.Server, int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: HttpProtocol(handler, max_body=1024, on_error=_on_error), "127.0.0.1", 0
    )
    return server, server.sockets[0].getsockname()[1]


async def _exchange(port: int, data: bytes, expect_responses: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    received = b""
    while received.count(b"HTTP/1.1 ") < expect_responses:
        chunk = await asyncio.wait_for(reader.read(65536), 5)
        if not chunk:
            break
        received += chunk
    writer.close()
    return received


def test_pipelined_requests_are_answered_in_order_even_when_the_first_is_slow() -> None:
    async def scenario() -> bytes:
        async def slow(request: Request) -> Response:
            await asyncio.sleep(0.05)
            return Response(200, b"first:" + request.body)

        def handler(request: Request):
            if request.path == "/slow":
                return slow(request)
            return Response(202, b"second:" + request.body)

        server, port = await _serve(handler)
        try:
            both = (
                b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nA"
                b"POST /fast HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nB"
            )
            return await _exchange(port, both, 2)
        finally:
            server.close()

    received = asyncio.run(scenario())
    assert received.index(b"first:A") < received.index(b"second:B")
    assert received.startswith(b"HTTP/1.1 200 OK\r\n")


def test_expect_continue_and_chunked_and_oversized_bodies() -> None:
    async def scenario() -> tuple[bytes, bytes, bytes]:
        server, port = await _serve(lambda request: Response(200, request.body))
        try:
            continued = await _exchange(
                port, b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", 2
            )
            chunked = await _exchange(
                port, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 1
            )
            too_big = await _exchange(port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n" + b"x" * 5000, 1)
            return continued, chunked, too_big
        finally:
            server.close()

    continued, chunked, too_big = asyncio.run(scenario())
    assert continued.startswith(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK") and continued.endswith(b"hi")
    assert chunked.endswith(b"\r\n\r\nabc")
    assert too_big.startswith(b"HTTP/1.1 413") and too_big.endswith(b"BodyTooLarge")


def test_handler_exceptions_become_error_responses_not_dropped_connections() -> None:
    async def scenario() -> bytes:
        def broken(request: Request) -> Response:
            raise RuntimeError("boom")

        server, port = await _serve(broken)
        try:
            return await _exchange(port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1)
        finally:
            server.close()

    assert asyncio.run(scenario()).startswith(b"HTTP/1.1 500")


def test_peer_uid_of_a_live_loopback_connection() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    client = socket.create_connection(listener.getsockname())
    accepted, peer = listener.accept()
    try:
        assert loopback_socket_uid(peer, listener.getsockname()) == os.getuid()
        assert loopback_socket_uid(peer, ("127.0.0.1", 1)) is None
    finally:
        for sock in (client, accepted, listener):
            sock.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to connect as another uid")
def test_peer_uid_sees_the_connecting_process_uid() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    child = os.fork()
    if child == 0:
        os.setuid(54321)
        sock = socket.create_connection(listener.getsockname())
        sock.recv(1)
        os._exit(0)
    accepted, peer = listener.accept()
    try:
        assert loopback_socket_uid(peer, listener.getsockname()) == 54321
    finally:
        accepted.close()
        os.waitpid(child, 0)
        listener.close()


def test_hold_pipelined_answers_lone_requests_at_once_and_pipelined_ones_in_order() -> None:
    async def scenario() -> tuple[bytes, bytes]:
        loop = asyncio.get_running_loop()

        def handler(request: Request):
            if request.path == "/next":
                parked: asyncio.Future[Response] = loop.create_future()
                loop.call_later(0.05, parked.set_result, Response(200, b"event"))
                return parked
            return Response(202, b"accepted")

        server = await loop.create_server(
            lambda: HttpProtocol(handler, max_body=1024, on_error=_on_error, hold_pipelined=True), "127.0.0.1", 0
        )
        port = server.sockets[0].getsockname()[1]
        try:
            lone = await _exchange(port, b"POST /response HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 1)
            pipelined = await _exchange(
                port,
                b"POST /response HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
                2,
            )
            return lone, pipelined
        finally:
            server.close()

    lone, pipelined = asyncio.run(scenario())
    assert lone.startswith(b"HTTP/1.1 202") and lone.endswith(b"accepted")
    assert pipelined.index(b"accepted") < pipelined.index(b"event")
