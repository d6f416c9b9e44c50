"""The fake Runtime API (fake_runtime_api.py) taught chunked request bodies, for streamed responses.

A `POST .../response` with `Transfer-Encoding: chunked` is read chunk by chunk: each chunk is recorded with the
moment it arrived (`time.monotonic_ns()`, the clock Node's `process.hrtime.bigint()` reads on Linux) as soon as it
arrives, so a test sees the first chunk while the function is still writing, then the trailers. It is answered
once its body ended, as Lamina's Runtime API answers. `GET /gate/N` (any connection) is answered only once a
streamed response has N chunks, so a handler can prove its first chunk reached the Runtime API before it finished.
"""
from __future__ import annotations

import socket
import time
from dataclasses import dataclass, field

from tests.support.fake_runtime_api import FakeRuntimeApi, Recorded, _Connection, _encode, _Handler

GATE_PREFIX = "/gate/"
GATE_TIMEOUT_SECONDS = 5.0


@dataclass
class StreamedRecord(Recorded):
    """A chunked request: its chunks (arrival in ns, bytes) as they came, then its trailers (lower-cased)."""

    chunks: list[tuple[int, bytes]] = field(default_factory=list)
    trailers: dict[str, str] = field(default_factory=dict)
    complete: bool = False
    raw_sizes: list[str] = field(default_factory=list)


class _StreamingConnection(_Connection):
    fake: "FakeStreamingRuntimeApi"

    def read_request(self) -> Recorded | None:
        pipelined = bool(self.buffer)
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                return None
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("utf-8").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        self.buffer = rest
        if headers.get("transfer-encoding", "").lower() != "chunked":
            length = int(headers.get("content-length", "0"))
            while len(self.buffer) < length:
                if not self._fill():
                    return None
            body, self.buffer = self.buffer[:length], self.buffer[length:]
            return Recorded(method, path, headers, body, self.number, pipelined)
        record = StreamedRecord(method, path, headers, b"", self.number, pipelined)
        self.fake._stream_started(record)
        while True:
            line = self._line()
            if line is None:
                return None
            record.raw_sizes.append(line)
            size = int(line.split(";")[0], 16)
            if size == 0:
                break
            while len(self.buffer) < size + 2:
                if not self._fill():
                    return None
            data, self.buffer = self.buffer[:size], self.buffer[size + 2:]
            self.fake._chunk_arrived(record, data)
        while (line := self._line()) not in ("", None):
            name, _, value = line.partition(":")
            record.trailers[name.strip().lower()] = value.strip()
        if line is None:
            return None
        record.body = b"".join(data for _, data in record.chunks)
        self.fake._stream_ended(record)
        return record

    def _line(self) -> str | None:
        while b"\r\n" not in self.buffer:
            if not self._fill():
                return None
        line, _, self.buffer = self.buffer.partition(b"\r\n")
        return line.decode("latin-1")


class _StreamingHandler(_Handler):
    def handle(self) -> None:
        fake = self.server.fake
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _StreamingConnection(self.request, fake._connection_number())
        connection.fake = fake  # type: ignore[assignment]
        while True:
            request = connection.read_request()
            if request is None:
                return
            answer = fake._dispatch(request)
            if answer is None:
                return
            try:
                self.request.sendall(answer)
            except OSError:
                return


class FakeStreamingRuntimeApi(FakeRuntimeApi):
    """FakeRuntimeApi plus streamed responses: `stream(request_id)` is the live record of one."""

    def __init__(self) -> None:
        super().__init__()
        self._server.RequestHandlerClass = _StreamingHandler
        self._streams: dict[str, StreamedRecord] = {}

    def stream(self, request_id: str, chunks: int = 1, timeout: float = 10.0) -> StreamedRecord:
        """The streamed response for `request_id` once it has `chunks` chunks (0: once it began)."""
        return self._wait(
            lambda: (found if (found := self._streams.get(request_id)) and len(found.chunks) >= chunks else None),
            timeout,
            f"no stream with {chunks} chunks for {request_id}",
        )

    def _stream_started(self, record: StreamedRecord) -> None:
        with self._changed:
            self._streams[record.path.split("/")[-2]] = record
            self._changed.notify_all()

    def _chunk_arrived(self, record: StreamedRecord, data: bytes) -> None:
        with self._changed:
            record.chunks.append((time.monotonic_ns(), data))
            self._changed.notify_all()

    def _stream_ended(self, record: StreamedRecord) -> None:
        with self._changed:
            record.complete = True
            self._changed.notify_all()

    def _dispatch(self, request: Recorded) -> bytes | None:
        if request.method == "GET" and request.path.startswith(GATE_PREFIX):
            wanted = int(request.path[len(GATE_PREFIX):])
            deadline = time.monotonic() + GATE_TIMEOUT_SECONDS
            with self._changed:
                while not any(len(record.chunks) >= wanted for record in self._streams.values()):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return _encode(504, b"gate timed out", {})
                    self._changed.wait(remaining)
            return _encode(200, b"open", {})
        return super()._dispatch(request)

