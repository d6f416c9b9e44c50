"""Streamed responses on the Runtime API (lamina/runtime_api/server.py, streaming.py): a runtime's chunked `POST
.../response` with `Lambda-Runtime-Function-Response-Mode: streaming` reaches the target as a ResponseStream at its
head, chunk by chunk as sent, with the trailers' error, AWS's size limit and bandwidth cap, and the runtime's answer
once its body ended. A fake target; real HTTP clients (http.client with encode_chunked, raw sockets for trailers)."""
from __future__ import annotations

import asyncio
import base64
import http.client
import json
import socket
import statistics
import threading
import time
from typing import Any, Awaitable, Callable, Iterator

import pytest
import uvloop

from lamina.http.messages import Response
from lamina.runtime_api.server import MAX_RESPONSE_BYTES, PREFIX, RuntimeApiEndpoint
from lamina.runtime_api.streaming import (
    BANDWIDTH_BURST_BYTES,
    BANDWIDTH_RATE,
    MAX_STREAMED_RESPONSE_BYTES,
    ResponseStream,
    StreamEnd,
    StreamLimits,
)

REQUEST_ID = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
STREAM_HEADERS = {
    "Lambda-Runtime-Function-Response-Mode": "streaming",
    "Trailer": "Lambda-Runtime-Function-Error-Type, Lambda-Runtime-Function-Error-Body",
}


class BufferedTarget:
    """An environment's side as today: no `invocation_stream`."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, bytes, str]] = []

    def next_invocation(self) -> Response:
        return Response(200, b"{}", [("Lambda-Runtime-Aws-Request-Id", "next-id")])

    def invocation_response(self, request_id: str, body: bytes, content_type: str) -> bool:
        self.responses.append((request_id, body, content_type))
        return request_id == REQUEST_ID

    def invocation_error(self, request_id: str, body: bytes) -> bool:
        return request_id == REQUEST_ID

    def response_too_large(self, request_id: str) -> bool:
        return True

    def init_error(self, body: bytes, error_type: str) -> bool:
        return False


class StreamingTarget(BufferedTarget):
    """Takes streams for REQUEST_ID and hands each to `consume` (default: read it all, noting when each chunk came)."""

    def __init__(self, consume: Callable[[ResponseStream, "StreamingTarget"], Awaitable[None]] | None = None) -> None:
        super().__init__()
        self.streams: list[ResponseStream] = []
        self.chunks: list[tuple[float, bytes]] = []
        self.got_chunk = threading.Event()
        self.done = asyncio.Event()
        self._consume = consume or StreamingTarget.read_all

    async def read_all(self, target: StreamingTarget) -> None:  # type: ignore[misc]  # self is the stream here
        async for chunk in self:  # type: ignore[attr-defined]
            target.note(chunk)

    def note(self, chunk: bytes) -> None:
        self.chunks.append((time.perf_counter(), chunk))
        self.got_chunk.set()

    def invocation_stream(self, request_id: str, stream: ResponseStream) -> bool:
        if request_id != REQUEST_ID:
            return False
        self.streams.append(stream)

        async def run() -> None:
            try:
                await self._consume(stream, self)
            finally:
                self.done.set()

        asyncio.ensure_future(run())
        return True

    @property
    def body(self) -> bytes:
        return b"".join(chunk for _, chunk in self.chunks)


def _run(target: Any, scenario: Callable[[int], Awaitable[Any]], **options: Any) -> Any:
    async def main() -> Any:
        endpoint = RuntimeApiEndpoint(target, None, **options)
        port = await endpoint.start()
        try:
            return await scenario(port)
        finally:
            endpoint.close()

    return uvloop.run(main())


def _path(request_id: str = REQUEST_ID) -> str:
    return f"{PREFIX}invocation/{request_id}/response"


def _head(request_id: str = REQUEST_ID, content_type: str | None = "text/plain", extra: str = "") -> bytes:
    lines = [f"POST {_path(request_id)} HTTP/1.1", "Host: 127.0.0.1", "Transfer-Encoding: chunked"]
    lines += [f"{name}: {value}" for name, value in STREAM_HEADERS.items()]
    if content_type is not None:
        lines.append(f"Content-Type: {content_type}")
    return ("\r\n".join(lines) + "\r\n" + extra + "\r\n").encode()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _answer(raw: bytes) -> tuple[int, dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body) if body else {}


async def _exchange(port: int, parts: list[bytes | float], *, close: bool = False) -> bytes:
    """Sends `parts` (bytes, or a float: seconds to wait) on one connection; what came back until it closed or,
    after one answer, went quiet."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for part in parts:
            if isinstance(part, float):
                await asyncio.sleep(part)
            else:
                writer.write(part)
        if close:
            writer.transport.abort()
            return b""
        received = b""
        while True:
            try:
                data = await asyncio.wait_for(reader.read(65536), 0.5 if received else 5)
            except asyncio.TimeoutError:
                return received
            if not data:
                return received
            received += data
    finally:
        writer.close()


def test_chunks_reach_the_consumer_as_the_runtime_sends_them_through_http_client() -> None:
    target = StreamingTarget()
    answers: dict[str, Any] = {}

    def client(port: int) -> None:
        def body() -> Iterator[bytes]:
            yield b"first "
            # The consumer has the first chunk while the runtime is still producing the response.
            answers["incremental"] = target.got_chunk.wait(5)
            yield b"second"

        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.request("POST", _path(), body=body(), headers={**STREAM_HEADERS, "Content-Type": "text/event-stream"},
                           encode_chunked=True)
        response = connection.getresponse()
        answers["status"], answers["body"] = response.status, json.loads(response.read())
        connection.close()

    async def scenario(port: int) -> None:
        await asyncio.to_thread(client, port)
        await asyncio.wait_for(target.done.wait(), 5)

    _run(target, scenario)
    assert answers == {"incremental": True, "status": 202, "body": {"status": "OK"}}
    assert [chunk for _, chunk in target.chunks] == [b"first ", b"second"]
    stream = target.streams[0]
    assert (stream.request_id, stream.content_type) == (REQUEST_ID, "text/event-stream")
    assert stream.outcome is not None and stream.outcome.end is StreamEnd.COMPLETED and stream.outcome.size == 12
    assert target.responses == []


def test_a_mid_stream_error_in_the_trailers_is_the_outcome_and_the_runtime_is_answered_202() -> None:
    target = StreamingTarget()
    error = {"errorType": "TypeError", "errorMessage": "boom", "trace": ["TypeError: boom"]}
    encoded = base64.b64encode(json.dumps(error).encode()).decode()

    async def scenario(port: int) -> bytes:
        raw = await _exchange(port, [
            _head(content_type=None) + _chunk(b"partial "), 0.02,
            b"0\r\nLambda-Runtime-Function-Error-Type: TypeError\r\n"
            + f"Lambda-Runtime-Function-Error-Body: {encoded}\r\n\r\n".encode(),
        ])
        await asyncio.wait_for(target.done.wait(), 5)
        return raw

    raw = _run(target, scenario)
    assert _answer(raw) == (202, {"status": "OK"})
    stream = target.streams[0]
    assert stream.content_type == "application/octet-stream"  # the Runtime API's default for streams
    assert target.body == b"partial "
    assert stream.outcome is not None
    assert (stream.outcome.end, stream.outcome.error_type) == (StreamEnd.FUNCTION_ERROR, "TypeError")
    assert json.loads(stream.outcome.error_body) == error


def test_a_response_over_the_size_limit_is_cut_there_and_the_runtime_answered_413_once_its_body_ended() -> None:
    target = StreamingTarget()
    limits = StreamLimits(max_bytes=1000)

    async def scenario(port: int) -> tuple[bytes, bytes, bytes]:
        next_request = f"GET {PREFIX}invocation/next HTTP/1.1\r\nHost: x\r\n\r\n".encode()
        raw = await _exchange(port, [_head() + _chunk(b"a" * 600), 0.02, _chunk(b"b" * 600), 0.02,
                                     _chunk(b"c" * 700) + b"0\r\n\r\n" + next_request])
        await asyncio.wait_for(target.done.wait(), 5)
        delivered = target.body
        # Past twice the limit the HTTP layer stops reading: the same answer, then the connection is closed.
        target.done.clear()
        cut = await _exchange(port, [_head() + _chunk(b"d" * 1500), 0.02, _chunk(b"e" * 1500)])
        await asyncio.wait_for(target.done.wait(), 5)
        return raw, cut, delivered

    raw, cut, delivered = _run(target, scenario, stream_limits=limits)
    first, _, rest = raw.partition(b"HTTP/1.1 200")
    too_large = (413, {
        "errorMessage": "Exceeded maximum allowed payload size (1000 bytes).", "errorType": "RequestEntityTooLarge",
    })
    assert _answer(first) == too_large and b"Connection: close" not in first
    assert b"next-id" in rest  # the connection went on: the runtime's next request was answered
    assert _answer(cut) == too_large and b"Connection: close" in cut
    assert [stream.outcome.end for stream in target.streams] == [StreamEnd.OVERSIZED] * 2  # type: ignore[union-attr]
    assert delivered == b"a" * 600 + b"b" * 400
    outcome = target.streams[0].outcome
    assert outcome is not None and (outcome.end, outcome.size) == (StreamEnd.OVERSIZED, 1000)
    assert outcome.error_type == "Function.ResponseSizeTooLarge"
    assert json.loads(outcome.error_body)["errorMessage"] == (
        "Response payload size exceeded maximum allowed payload size (1000 bytes)."
    )


def test_a_runtime_that_dies_midway_truncates_the_stream() -> None:
    target = StreamingTarget()

    async def scenario(port: int) -> None:
        await _exchange(port, [_head() + _chunk(b"so far"), 0.05], close=True)
        await asyncio.wait_for(target.done.wait(), 5)

    _run(target, scenario)
    outcome = target.streams[0].outcome
    assert target.body == b"so far"
    assert outcome is not None and (outcome.end, outcome.error_type) == (StreamEnd.TRUNCATED, "Runtime.TruncatedResponse")


def test_a_broken_chunked_body_truncates_the_stream_and_is_answered_400() -> None:
    target = StreamingTarget()

    async def scenario(port: int) -> bytes:
        raw = await _exchange(port, [_head() + _chunk(b"ok") + b"zz\r\n"])
        await asyncio.wait_for(target.done.wait(), 5)
        return raw

    raw = _run(target, scenario)
    assert _answer(raw) == (400, {"errorMessage": "HTTP request detected as truncated", "errorType": "TruncatedHTTPRequest"})
    assert target.streams[0].outcome.end is StreamEnd.TRUNCATED  # type: ignore[union-attr]


def test_an_unknown_request_id_is_refused_at_once_while_its_body_is_still_coming() -> None:
    target = StreamingTarget()

    async def scenario(port: int) -> bytes:
        return await _exchange(port, [_head("not-current") + _chunk(b"x")])

    raw = _run(target, scenario)
    assert _answer(raw) == (400, {"errorMessage": "Invalid request ID: not-current", "errorType": "InvalidRequestID"})
    assert b"Connection: close" in raw and target.streams == []


def test_an_abort_ends_the_stream_at_once_and_cuts_the_runtimes_request() -> None:
    async def consume(stream: ResponseStream, target: StreamingTarget) -> None:
        async for chunk in stream:
            target.note(chunk)
            stream.abort("Sandbox.Timedout", b'{"errorMessage":"Task timed out after 1.00 seconds"}')

    target = StreamingTarget(consume)

    async def scenario(port: int) -> bytes:
        raw = await _exchange(port, [_head() + _chunk(b"one"), 0.1, _chunk(b"two")])
        await asyncio.wait_for(target.done.wait(), 5)
        return raw

    raw = _run(target, scenario)
    assert _answer(raw)[0] == 400 and b"Connection: close" in raw
    assert target.body == b"one"
    outcome = target.streams[0].outcome
    assert outcome is not None and (outcome.end, outcome.error_type) == (StreamEnd.ABORTED, "Sandbox.Timedout")


def test_a_discarded_stream_is_read_to_its_end_and_dropped_so_the_runtime_finishes() -> None:
    async def consume(stream: ResponseStream, target: StreamingTarget) -> None:
        async for chunk in stream:
            target.note(chunk)
            stream.discard()  # the client went away
        target.note(b"<end>")

    target = StreamingTarget(consume)
    big = b"z" * (4 << 20)  # far over the back-pressure mark: the runtime would stall if it were not drained

    async def scenario(port: int) -> tuple[bytes, Any]:
        raw = await _exchange(port, [_head() + _chunk(b"seen"), 0.05, _chunk(big) + b"0\r\n\r\n"])
        return raw, await target.streams[0].finished()

    raw, finished = _run(target, scenario)
    assert _answer(raw) == (202, {"status": "OK"})
    assert target.body == b"seen<end>"
    assert finished.end is StreamEnd.COMPLETED and finished.size == 4


def test_past_the_burst_the_response_is_held_to_the_bandwidth_rate() -> None:
    limits = StreamLimits(burst_bytes=64 << 10, rate=512 << 10)
    target = StreamingTarget()

    async def scenario(port: int) -> float:
        start = time.perf_counter()
        body = b"".join(_chunk(b"r" * (16 << 10)) for _ in range(20))  # 320 KiB: 64 uncapped, 256 at 512 KiB/s
        await _exchange(port, [_head() + body + b"0\r\n\r\n"])
        await asyncio.wait_for(target.done.wait(), 5)
        return time.perf_counter() - start

    elapsed = _run(target, scenario, stream_limits=limits)
    assert len(target.body) == 320 << 10
    assert 0.4 <= elapsed <= 2.0
    # The burst went through at once: the first 64 KiB were with the consumer well before the rate applied.
    first = target.chunks[0][0]
    within_burst = [at for at, _ in target.chunks if at - first < 0.05]
    assert sum(len(chunk) for at, chunk in target.chunks if at in within_burst) >= 48 << 10


def test_aws_limits_are_the_defaults() -> None:
    assert (MAX_STREAMED_RESPONSE_BYTES, BANDWIDTH_BURST_BYTES, BANDWIDTH_RATE) == (200 << 20, 6 << 20, 2 << 20)
    assert StreamLimits().http_limit == 400 << 20


def test_a_streaming_mode_response_sent_with_a_content_length_is_one_chunk() -> None:
    target = StreamingTarget()

    async def scenario(port: int) -> bytes:
        body = b"whole"
        head = (f"POST {_path()} HTTP/1.1\r\nHost: x\r\nLambda-Runtime-Function-Response-Mode: streaming\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        raw = await _exchange(port, [head + body])
        await asyncio.wait_for(target.done.wait(), 5)
        return raw

    raw = _run(target, scenario)
    assert _answer(raw) == (202, {"status": "OK"}) and [c for _, c in target.chunks] == [b"whole"]


@pytest.mark.parametrize("target_kind", ["streaming", "buffered"])
def test_a_buffered_response_keeps_todays_path(target_kind: str) -> None:
    target = StreamingTarget() if target_kind == "streaming" else BufferedTarget()

    async def scenario(port: int) -> list[bytes]:
        answers = []
        for body in (b'{"ok":1}', b"x" * (MAX_RESPONSE_BYTES + 1)):
            head = (f"POST {_path()} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            answers.append(await _exchange(port, [head + body]))
        return answers

    accepted, too_large = _run(target, scenario)
    assert _answer(accepted) == (202, {"status": "OK"}) and _answer(too_large)[0] == 413
    assert target.responses == [(REQUEST_ID, b'{"ok":1}', "application/json")]


def test_without_invocation_stream_a_streamed_response_is_read_whole_as_before() -> None:
    target = BufferedTarget()

    async def scenario(port: int) -> bytes:
        return await _exchange(port, [_head() + _chunk(b"ab"), 0.02, _chunk(b"cd") + b"0\r\n\r\n"])

    raw = _run(target, scenario)
    assert _answer(raw) == (202, {"status": "OK"})
    assert target.responses == [(REQUEST_ID, b"abcd", "text/plain")]


def test_time_to_first_byte_from_the_runtimes_write_to_the_consumer() -> None:
    """The issue's target is p50 <= 1 ms; asserted loosely here (a shared CI machine), measured in the report."""
    target = StreamingTarget()
    delays: list[float] = []

    def runtime(port: int) -> None:
        for _ in range(30):
            target.got_chunk.clear()
            target.chunks.clear()
            sock = socket.create_connection(("127.0.0.1", port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.sendall(_head())
            time.sleep(0.005)  # the head is parsed and the stream handed over; now the function writes
            sent = time.perf_counter()
            sock.sendall(_chunk(b"first byte"))
            assert target.got_chunk.wait(5)
            delays.append(target.chunks[0][0] - sent)
            sock.sendall(b"0\r\n\r\n")
            sock.recv(65536)
            sock.close()

    async def scenario(port: int) -> None:
        await asyncio.to_thread(runtime, port)

    _run(target, scenario)
    assert statistics.median(delays) < 0.005


class OpenStreamTarget(StreamingTarget):
    """Like an environment: once REQUEST_ID's stream began, its /error and another /response are refused."""

    def invocation_error(self, request_id: str, body: bytes) -> bool:
        return request_id == REQUEST_ID and not self.streams

    def invocation_response(self, request_id: str, body: bytes, content_type: str) -> bool:
        return request_id == REQUEST_ID and not self.streams

    def invocation_stream(self, request_id: str, stream: ResponseStream) -> bool:
        return not self.streams and super().invocation_stream(request_id, stream)

    def response_started(self, request_id: str) -> bool:
        return request_id == REQUEST_ID and bool(self.streams)


def test_error_and_response_after_a_stream_began_are_refused_as_rapid_does() -> None:
    target = OpenStreamTarget()
    refusal = "State transition from InvocationResponse to {} failed for runtime. Error: State transition is not allowed"

    async def scenario(port: int) -> list[tuple[int, dict[str, Any]]]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(_head() + _chunk(b"started"))
        await asyncio.sleep(0.05)
        answers = [_answer(await _exchange(port, [
            f"POST {PREFIX}invocation/{REQUEST_ID}/error HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}".encode()
        ])), _answer(await _exchange(port, [
            f"POST {_path()} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}".encode()
        ])), _answer(await _exchange(port, [
            f"POST {PREFIX}invocation/other/error HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{{}}".encode()
        ]))]
        writer.write(b"0\r\n\r\n")
        await asyncio.wait_for(target.done.wait(), 5)
        writer.close()
        return answers

    error_refused, response_refused, unknown = _run(target, scenario)
    assert error_refused == (403, {"errorType": "InvalidStateTransition",
                                   "errorMessage": refusal.format("InvocationErrorResponse")})
    assert response_refused == (403, {"errorType": "InvalidStateTransition",
                                      "errorMessage": refusal.format("InvocationResponse")})
    assert unknown[0] == 400 and unknown[1]["errorType"] == "InvalidRequestID"
    assert target.body == b"started"
