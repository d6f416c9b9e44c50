"""What one HTTP connection may hold and how long it may take (lamina/http/protocol.py), and how the API front answers
a refused request (lamina/services/lambda_/app.py). Real sockets on loopback, under uvloop as `lamina serve` runs."""
from __future__ import annotations

import asyncio
import inspect
import json
import resource
import select
import socket
import time
from typing import Any, Callable

import botocore.session
import pytest
import uvloop

from lamina.services.lambda_.aliases import AliasOperations
from lamina.services.lambda_.app import LambdaApp
from lamina.services.lambda_.async_invoke import AsyncInvokeOperations
from lamina.services.lambda_.code import CodeDownloads
from lamina.services.lambda_.concurrency import ConcurrencyOperations
from lamina.services.lambda_.functions import FunctionOperations
from lamina.services.lambda_.invoke import InvokeOperations
from lamina.services.lambda_.layers import LayerOperations
from lamina.services.lambda_.permissions import PermissionOperations
from lamina.services.lambda_.router import Router
from lamina.services.lambda_.tags import TagOperations
from lamina.services.lambda_.versions import VersionOperations
from lamina.http.limits import ConnectionLimiter, HttpLimits, raise_open_files_limit
from lamina.http.messages import BodyTooLarge, HttpError, Request, Response
from lamina.http.protocol import MAX_QUEUED_REQUESTS, HttpProtocol
from tests.support.polling import async_wait_until

LIMITS = HttpLimits(max_head=1024, max_headers=10, max_url=256)
GET = b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"


def _on_error(request: Request, error: BaseException) -> Response:
    status = error.status if isinstance(error, HttpError) else 500
    return Response(status, str(error).encode())


async def _serve(handler: Callable[[Request], Any] = lambda request: Response(200, b"ok:" + request.body), **options):
    """A listener on a free port; `protocols` collects each connection's protocol."""
    loop = asyncio.get_running_loop()
    protocols: list[HttpProtocol] = []
    options.setdefault("max_body", 1 << 20)

    def factory() -> HttpProtocol:
        protocols.append(HttpProtocol(handler, on_error=_on_error, **options))
        return protocols[-1]

    server = await loop.create_server(factory, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], protocols


async def _read_all(reader: asyncio.StreamReader, timeout: float = 5) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when the close came."""
    started, received = time.monotonic(), b""
    while chunk := await asyncio.wait_for(reader.read(65536), timeout):
        received += chunk
    return received, time.monotonic() - started


async def _exchange(port: int, data: bytes, **bind: Any) -> tuple[bytes, float]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, **bind)
    writer.write(data)
    try:
        return await _read_all(reader)
    finally:
        writer.close()


def _run(scenario: Callable[[], Any]) -> Any:
    return uvloop.run(scenario())


def test_heads_over_the_limits_are_refused_and_the_connection_closed() -> None:
    async def scenario() -> list[bytes]:
        server, port, _ = await _serve(limits=LIMITS)
        async with server:
            return [
                (await _exchange(port, request))[0]
                for request in (
                    b"GET /ok HTTP/1.1\r\nX-Big: " + b"a" * 2000 + b"\r\n\r\n",
                    b"GET /ok HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % index for index in range(11)) + b"\r\n",
                    b"GET /" + b"q" * 300 + b" HTTP/1.1\r\n\r\n",
                    b"BREW /ok HTTP/1.1\r\n\r\n",
                    GET.replace(b"\r\n\r\n", b"\r\nBad Header\r\n\r\n"),
                    b"GET /ok HTTP/1.1\r\nConnection: close\r\n" + b"X-A: 1\r\n" * 20 + b"\r\n",
                )
            ]

    big, many, long_url, brew, malformed, repeated = _run(scenario)
    assert big.startswith(b"HTTP/1.1 431 ")
    assert big.endswith(b"Request line and headers must be smaller than 1024 bytes")
    assert b"Connection: close\r\n" in big
    assert many.startswith(b"HTTP/1.1 431 ") and many.endswith(b"Request must have at most 10 headers")
    assert long_url.startswith(b"HTTP/1.1 414 ") and long_url.endswith(b"Request URI must be smaller than 256 bytes")
    assert brew.startswith(b"HTTP/1.1 400 ")
    assert brew.endswith(b"Could not parse the HTTP request: Invalid method encountered")
    assert malformed.startswith(b"HTTP/1.1 400 ") and b"Invalid header token" in malformed
    assert repeated.startswith(b"HTTP/1.1 200 ")  # one name repeated: one entry, well within the size limit


def test_an_unfinished_head_is_cut_as_soon_as_it_passes_the_limit() -> None:
    """The server answers while the client is still sending its endless header: it held at most one read more."""
    async def scenario() -> tuple[int, bytes]:
        server, port, _ = await _serve(limits=LIMITS)
        async with server:
            return await asyncio.to_thread(_send_until_answered, port, b"GET /ok HTTP/1.1\r\nX-Endless: ", 1 << 20)

    sent, answer = _run(scenario)
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert sent < 64 * 1024


def _send_until_answered(port: int, start: bytes, most: int, piece: bytes = b"a" * 512) -> tuple[int, bytes]:
    """Sends `start`, then `piece` after `piece` until the server answers (or `most` bytes went out)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(start)
        sent = len(start)
        while sent < most and not select.select([sock], [], [], 0.002)[0]:
            sock.sendall(piece)
            sent += len(piece)
        sock.settimeout(5)
        return sent, sock.recv(65536)


def test_a_head_that_begins_after_a_body_in_the_same_read_is_not_mistaken_for_a_long_one() -> None:
    async def scenario() -> bytes:
        server, port, _ = await _serve(limits=LIMITS)
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            # One read: a 5,000-byte body, then the start of the next head; the rest of that head comes later.
            writer.write(b"POST /ok HTTP/1.1\r\nContent-Length: 5000\r\n\r\n" + b"b" * 5000 + b"GET /ok HTTP/1.1\r\nHo")
            await asyncio.sleep(0.05)
            writer.write(b"st: x\r\nConnection: close\r\n\r\n")
            received, _ = await _read_all(reader)
            writer.close()
            return received

    received = _run(scenario)
    assert received.count(b"HTTP/1.1 200 OK") == 2, received[:300]


def test_a_body_over_its_limit_is_refused_before_it_is_sent() -> None:
    """`body_limit` names the limit per request; a Content-Length over it is answered at once, a chunked body as soon
    as it grows past it."""
    async def scenario() -> tuple[tuple[bytes, float], bytes, bytes, list[tuple[str, str]]]:
        asked: list[tuple[str, str]] = []

        def body_limit(request: Request) -> int:
            asked.append((request.method, request.path))
            return 4096 if request.path == "/big" else 100

        server, port, _ = await _serve(max_body=100, body_limit=body_limit)
        async with server:
            declared = await _exchange(port, b"POST /small HTTP/1.1\r\nContent-Length: 1000000000\r\n\r\n")
            allowed = (await _exchange(port, b"POST /big HTTP/1.1\r\nConnection: close\r\nContent-Length: 3000\r\n\r\n"
                                       + b"x" * 3000))[0]
            small = (await _exchange(port, b"POST /small HTTP/1.1\r\nConnection: close\r\nContent-Length: 50\r\n\r\n"
                                     + b"y" * 50))[0]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /big HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n")
            for _ in range(5):  # 5 KB of a body that never ends
                writer.write(b"400\r\n" + b"z" * 1024 + b"\r\n")
            chunked, _ = await _read_all(reader)
            writer.close()
            return declared, allowed + small, chunked, asked

    (declared, took), answered, chunked, asked = _run(scenario)
    assert declared.startswith(b"HTTP/1.1 413 ") and declared.endswith(b"Request must be smaller than 100 bytes")
    assert took < 0.5
    assert answered.count(b"HTTP/1.1 200 OK") == 2 and b"ok:" + b"x" * 3000 in answered
    assert chunked.startswith(b"HTTP/1.1 413 ") and chunked.endswith(b"Request must be smaller than 4096 bytes")
    # Asked only for bodies that may exceed max_body: the 1 GB one, the 3,000-byte one and the chunked one.
    assert asked == [("POST", "/small"), ("POST", "/big"), ("POST", "/big")]


def test_header_timeout_runs_from_the_first_byte_and_a_silent_connection_is_closed() -> None:
    async def scenario() -> tuple[tuple[bytes, float], tuple[bytes, float], tuple[bytes, float]]:
        server, port, _ = await _serve(limits=HttpLimits(header_timeout=0.3))
        async with server:
            slow = _exchange(port, b"GET /ok HTTP/1.1\r\nHost: x\r\n")
            silent = _exchange(port, b"")

            async def keeps_trickling() -> tuple[bytes, float]:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(b"GET /ok HTTP/1.1\r\n")
                for index in range(20):  # a byte every 50 ms: progress, but the head never completes
                    writer.write(b"X-%d: y\r\n" % index)
                    await asyncio.sleep(0.05)
                    if reader.at_eof() or len(reader._buffer):  # type: ignore[attr-defined]
                        break
                try:
                    return await _read_all(reader)
                finally:
                    writer.close()

            return await asyncio.gather(slow, silent, keeps_trickling())

    (slow, slow_took), (silent, silent_took), (trickle, _) = _run(scenario)
    assert slow.startswith(b"HTTP/1.1 408 ") and slow.endswith(b"Request headers not received within 0.3 s")
    assert 0.25 < slow_took < 1.0
    assert silent == b"" and 0.25 < silent_took < 1.0
    assert trickle.startswith(b"HTTP/1.1 408 ")


def test_idle_keep_alive_connections_are_closed_but_a_busy_request_is_not_cut() -> None:
    async def scenario() -> tuple[bytes, float]:
        async def slow(request: Request) -> Response:
            await asyncio.sleep(0.6)  # longer than every timeout: a request being handled has none
            return Response(200, b"slow")

        server, port, _ = await _serve(
            lambda request: slow(request) if request.path == "/slow" else Response(200, b"fast"),
            limits=HttpLimits(header_timeout=0.2, body_timeout=0.2, idle_timeout=0.3),
        )
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
            received, took = await _read_all(reader)
            writer.close()
            return received, took

    received, took = _run(scenario)
    assert received.index(b"slow") < received.index(b"fast")
    assert b"Connection: close" not in received  # closed for idleness, not refused
    assert 0.85 < took < 1.6  # 0.6 s handling, then 0.3 s idle


def test_a_stalled_body_is_refused_but_a_slow_steady_one_is_not() -> None:
    async def scenario() -> tuple[bytes, bytes]:
        server, port, _ = await _serve(limits=HttpLimits(body_timeout=0.3))
        async with server:
            stalled = (await _exchange(port, b"POST /ok HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc"))[0]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"POST /ok HTTP/1.1\r\nConnection: close\r\nContent-Length: 10\r\n\r\n")
            for byte in b"0123456789":  # 1 s in all, a byte every 100 ms
                writer.write(bytes([byte]))
                await asyncio.sleep(0.1)
            steady, _ = await _read_all(reader)
            writer.close()
            return stalled, steady

    stalled, steady = _run(scenario)
    assert stalled.startswith(b"HTTP/1.1 408 ")
    assert stalled.endswith(b"Request body stalled: nothing received for 0.3 s")
    assert steady.startswith(b"HTTP/1.1 200 ") and steady.endswith(b"ok:0123456789")


def test_connections_over_the_per_peer_or_total_cap_are_closed_at_once() -> None:
    async def scenario() -> dict[str, list[bool]]:
        limiter = ConnectionLimiter(total=5, per_peer=3)
        server, port, _ = await _serve(connections=limiter)

        async def served(source: str) -> tuple[bool, asyncio.StreamWriter]:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
            writer.write(GET)
            try:
                return (await asyncio.wait_for(reader.read(100), 5)).startswith(b"HTTP/1.1 200"), writer
            except ConnectionResetError:
                return False, writer

        async with server:
            first = [await served("127.0.0.2") for _ in range(4)]
            other = [await served("127.0.0.3") for _ in range(3)]
            first[0][1].close()
            await async_wait_until(lambda: limiter._by_peer.get("127.0.0.2") == 2, what="the closed one released")
            again = [await served("127.0.0.2")]
            for _, writer in first + other + again:
                writer.close()
            groups = {"first": first, "other": other, "again": again}
            return {label: [ok for ok, _ in group] for label, group in groups.items()}

    outcome = _run(scenario)
    assert outcome["first"] == [True, True, True, False]  # 3 per peer
    assert outcome["other"] == [True, True, False]  # 5 in all
    assert outcome["again"] == [True]  # a closed connection frees its place


def test_open_files_limit_is_raised_and_the_caps_leave_a_reserve() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert raise_open_files_limit() == hard == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    default = ConnectionLimiter.within(20000)
    assert (default.total, default.per_peer) == (15000, 7500)
    small = ConnectionLimiter.within(1024)
    assert (small.total, small.per_peer) == (512, 256)
    given = ConnectionLimiter.within(20000, total=100, per_peer=10)
    assert (given.total, given.per_peer) == (100, 10)


def test_pipelining_behind_a_busy_request_pauses_reading_and_everything_is_answered_in_order() -> None:
    """Requests queued behind a busy one stop further reads (one read's worth is parsed, as it arrived)."""
    async def scenario() -> tuple[int, int, bytes]:
        release = asyncio.Event()

        async def blocked(request: Request) -> Response:
            await release.wait()
            return Response(200, b"first")

        server, port, protocols = await _serve(
            lambda request: blocked(request) if request.path == "/block" else Response(200, request.path.encode())
        )
        async with server:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /block HTTP/1.1\r\n\r\n" + b"".join(b"GET /%d HTTP/1.1\r\n\r\n" % i for i in range(100)))
            await async_wait_until(lambda: protocols and len(protocols[0]._queue) >= 100, what="the first read parsed")
            first_read = len(protocols[0]._queue)
            writer.write(b"".join(b"GET /%d HTTP/1.1\r\n\r\n" % i for i in range(100, 2000)))
            writer.write(b"GET /last HTTP/1.1\r\nConnection: close\r\n\r\n")
            await asyncio.sleep(0.1)  # time to read more, which it must not
            later = len(protocols[0]._queue)
            release.set()
            received, _ = await _read_all(reader)
            writer.close()
            return first_read, later, received

    first_read, later, received = _run(scenario)
    assert first_read == 100 > MAX_QUEUED_REQUESTS
    assert later == first_read  # not read while over the cap
    bodies = [part.rsplit(b"\r\n\r\n", 1)[-1] for part in received.split(b"HTTP/1.1 200 OK")[1:]]
    assert bodies == [b"first"] + [b"/%d" % i for i in range(2000)] + [b"/last"]


def test_an_upgrade_request_is_answered_as_http_1_1_then_closed() -> None:
    async def scenario() -> bytes:
        server, port, _ = await _serve()
        async with server:
            return (await _exchange(port, b"GET /ok HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"))[0]

    received = _run(scenario)
    assert received.startswith(b"HTTP/1.1 200 ") and b"Connection: close" in received


# -- the API front's answers ---------------------------------------------------------------------------------------
class _Unused:
    """Stands in for the operations' services: routing needs only the handlers."""

    def __getattr__(self, name: str) -> _Unused:
        return self


def _api() -> tuple[LambdaApp, Router]:
    """The API's real route table."""
    router = Router()
    for group in (InvokeOperations, AsyncInvokeOperations, FunctionOperations, TagOperations, PermissionOperations,
                  ConcurrencyOperations, LayerOperations, VersionOperations, AliasOperations, CodeDownloads):
        group(*[_Unused()] * len(inspect.signature(group).parameters)).register(router)  # type: ignore[arg-type]
    return LambdaApp(router), router


def test_route_operation_names_are_the_service_models() -> None:
    """Route names are botocore's (AWS's 413 messages call Invoke InvokeFunction: app.py's _MESSAGE_NAMES)."""
    _, router = _api()
    model = botocore.session.get_session().get_service_model("lambda")
    served = 0
    for name in model.operation_names:
        http = model.operation_model(name).http
        path, _, query = http["requestUri"].replace("{", "").replace("}", "").partition("?")
        matched = router.match(http["method"], path, query)
        if matched:
            served += 1
            assert matched[0].operation == name  # type: ignore[index]
    assert served >= 40


def _error(response: Response) -> tuple[int, str, dict[str, Any]]:
    return response.status, dict(response.headers)["x-amzn-ErrorType"], json.loads(response.body)


@pytest.mark.parametrize(
    ("method", "path", "limit", "expected"),
    [
        ("POST", "/2015-03-31/functions/f/invocations", 6291456,
         (413, "RequestTooLargeException",
          {"Type": "User", "message": "Request must be smaller than 6291456 bytes for the InvokeFunction operation"})),
        ("POST", "/2015-03-31/functions", 70167211,  # recorded from AWS
         (413, "RequestEntityTooLargeException",
          {"Message": "Request must be smaller than 70167211 bytes for the CreateFunction operation"})),
        ("GET", "/2015-03-31/functions/f", 1048576,
         (413, "RequestEntityTooLargeException",
          {"Message": "Request must be smaller than 1048576 bytes for the GetFunction operation"})),
        ("POST", "/2014-11-13/functions/f/invoke-async", 1048576,
         (413, "RequestTooLargeException",
          {"Type": "User", "message": "Request must be smaller than 1048576 bytes for the InvokeAsync operation"})),
        ("POST", "/nowhere", 1048576,
         (404, "UnknownOperationException", {"Message": "Unknown operation: POST /nowhere"})),
    ],
)
def test_oversized_bodies_get_aws_errors_with_the_operations_limit(method, path, limit, expected) -> None:
    app, _ = _api()
    assert app.body_limit(Request(method, path, "", {}, b"")) == limit
    assert _error(app.on_error(Request(method, path, "", {}, b""), BodyTooLarge(limit))) == expected


def test_other_refusals_are_aws_shaped() -> None:
    app, _ = _api()
    request = Request("", "", "", {}, b"")
    assert [_error(app.on_error(request, HttpError(status, "why")))[:2] for status in (400, 408, 414, 431)] == [
        (400, "InvalidRequestContentException"),
        (408, "RequestTimeoutException"),
        (414, "RequestURITooLongException"),
        (431, "RequestHeaderFieldsTooLargeException"),
    ]
    assert _error(app.on_error(request, HttpError(431, "why")))[2] == {"Type": "User", "message": "why"}


def test_a_fresh_connection_whose_first_bytes_wait_unread_is_not_dropped_as_silent() -> None:
    """A loop running late (a busy host) may reach a connection's header timeout before reading the bytes its client
    sent long ago: those bytes, still in the kernel, keep the connection (a silent one is still dropped)."""

    class Transport(asyncio.Transport):
        def __init__(self, sock: socket.socket) -> None:
            super().__init__()
            self.sock, self.closed = sock, False

        def get_extra_info(self, name: str, default: Any = None) -> Any:
            return {"socket": self.sock, "peername": ("127.0.0.1", 1)}.get(name, default)

        def close(self) -> None:
            self.closed = True

        def abort(self) -> None:
            self.closed = True

        def get_write_buffer_size(self) -> int:
            return 0

    async def scenario() -> tuple[bool, bool]:
        server_side, client_side = socket.socketpair()
        with server_side, client_side:
            transport = Transport(server_side)
            protocol = HttpProtocol(lambda request: Response(200), on_error=_on_error, max_body=1024,
                                    limits=HttpLimits(header_timeout=0.05))
            protocol.connection_made(transport)
            client_side.sendall(b"GET / HTTP/1.1\r\n")  # arrived, but the protocol has not been handed it
            await asyncio.sleep(0.25)  # the header timeout and its grace both pass
            kept = not transport.closed
            server_side.recv(1024)  # now nothing waits: the connection is a silent one
            await asyncio.sleep(0.25)
            return kept, transport.closed

    kept, dropped_later = _run(scenario)
    assert kept and dropped_later
