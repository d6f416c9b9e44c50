"""Function URLs and response streaming: what a URL costs beside a direct Invoke, and how soon a streamed chunk
reaches the client after the function wrote it.

1. URL request -> response beside Invoke. One no-op Python function (returns `{}`) with a BUFFERED `NONE` URL,
   called from one raw keep-alive client per path, in interleaved blocks: `POST .../invocations` (the Invoke API)
   and `GET /` to 127.0.0.1 with the URL's host in `Host` (the function-URL front door: the payload-2.0 event, the
   result mapping). The difference of the two p50s is the URL's overhead.
2. Time to first byte of a streamed response. A Node function (Lamina's bootstrap, `awslambda.streamifyResponse`)
   reads the host's CLOCK_MONOTONIC (`process.hrtime.bigint()`, ns), writes it as its first chunk, then ends. The
   client (a raw socket) reads its own CLOCK_MONOTONIC (`time.monotonic_ns()`) as soon as that chunk is in; the
   difference is the chunk's way from the function's write call to the client: the runtime's socket, Lamina's
   Runtime API, the stream, the client's socket. Both read the same kernel clock (the sandbox has no time
   namespace), so no offset is involved. Measured through a RESPONSE_STREAM URL and through
   InvokeWithResponseStream (the same chunk inside a PayloadChunk event), one invocation per operation.

Both functions have 1769 MB (one full vCPU after init, as on AWS) so the CPU quota of a small function does not
decide the figures.
"""
from __future__ import annotations

import argparse
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import harness as h

TARGET_URL_OVERHEAD_MS = 0.1
TARGET_TTFB_P50_MS = 1.0
MEMORY_MB = 1769
NODE_TIMESTAMP = """
export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  responseStream.write(String(process.hrtime.bigint()));
  responseStream.end();
});
"""


class ChunkedClient:
    """One keep-alive connection reading chunked responses: `first_chunk()` sends a request and returns the first
    body chunk and the CLOCK_MONOTONIC ns at which it was complete; `rest()` reads to the end of that response."""

    def __init__(self, host: str, port: int) -> None:
        self._sock = socket.create_connection((host, port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self._buffer += chunk

    def _chunk(self) -> tuple[bytes, int]:
        """The next chunk of the body (b"" for the last one) and when it was complete."""
        while True:
            line_end = self._buffer.find(b"\r\n")
            if line_end >= 0:
                size = int(self._buffer[:line_end].split(b";")[0], 16)
                end = line_end + 2 + size + 2
                if len(self._buffer) >= end:
                    data = self._buffer[line_end + 2 : line_end + 2 + size]
                    self._buffer = self._buffer[end:]
                    return data, time.monotonic_ns()
            self._fill()

    def first_chunk(self, request: bytes) -> tuple[bytes, int]:
        self._sock.sendall(request)
        while (end := self._buffer.find(b"\r\n\r\n")) < 0:
            self._fill()
        head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        if int(head[9:12]) != 200 or b"chunked" not in head.lower():
            raise RuntimeError(f"not a streamed answer: {head[:300]!r}")
        return self._chunk()

    def rest(self) -> bytes:
        pieces = []
        while (piece := self._chunk()[0]) != b"":
            pieces.append(piece)
        if self._buffer.startswith(b"\r\n"):  # the empty trailer section after the last chunk
            self._buffer = self._buffer[2:]
        return b"".join(pieces)


@dataclass
class Stream:
    label: str
    client: ChunkedClient
    request: bytes
    eventstream: bool
    ttfb_ms: list[float] = field(default_factory=list)

    def measure(self, count: int) -> None:
        for _ in range(count):
            data, received_ns = self.client.first_chunk(self.request)
            written_ns = int(_payload_of_event(data) if self.eventstream else data)
            self.ttfb_ms.append((received_ns - written_ns) / 1e6)
            self.client.rest()


def _payload_of_event(message: bytes) -> bytes:
    """The payload of one vnd.amazon.eventstream message (a PayloadChunk)."""
    total, headers = int.from_bytes(message[0:4], "big"), int.from_bytes(message[4:8], "big")
    return message[12 + headers : total - 4]


def url_request(url: str) -> bytes:
    """A request for the URL sent to 127.0.0.1 with the URL's host in `Host` (its FunctionUrl has Lamina's port)."""
    return f"GET / HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n\r\n".encode()


def stream_request(host: str, port: int, name: str) -> bytes:
    body = b"{}"
    return (
        f"POST /2021-11-15/functions/{name}/response-streaming-invocations HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


def public_url(client, name: str, mode: str) -> str:
    url = client.create_function_url_config(FunctionName=name, AuthType="NONE", InvokeMode=mode)["FunctionUrl"]
    client.add_permission(FunctionName=name, StatementId="public", Action="lambda:InvokeFunctionUrl", Principal="*",
                          FunctionUrlAuthType="NONE")
    return url


def run(requests: int, warmup: int, rounds: int) -> list[h.Table]:
    load_at_start = h.load_average()
    per_round = -(-requests // rounds)
    with h.start_lamina() as lamina:
        client = h.lambda_client(lamina.endpoint)
        noop = h.create_function(client, memory_mb=MEMORY_MB)
        noop_url = public_url(client, noop, "BUFFERED")
        streamer = f"bench-{time.time_ns():x}"
        client.create_function(FunctionName=streamer, Runtime=h.node_runtime(), Role=h.ROLE, Handler="app.handler",
                               Code={"ZipFile": h.zip_files({"app.mjs": NODE_TIMESTAMP})}, MemorySize=MEMORY_MB,
                               Timeout=30)
        streamer_url = public_url(client, streamer, "RESPONSE_STREAM")

        calls = {
            "Invoke (POST .../invocations)": (h.RawClient(lamina.host, lamina.port),
                                              h.invoke_request(lamina.host, lamina.port, noop)),
            "function URL (GET /, BUFFERED)": (h.RawClient(lamina.host, lamina.port),
                                               url_request(noop_url)),
        }
        latencies: dict[str, list[float]] = {label: [] for label in calls}
        for raw, request in calls.values():
            h.check_invoke(raw, request)
            h.time_calls(raw, request, warmup)
        streams = [
            Stream("RESPONSE_STREAM function URL", ChunkedClient(lamina.host, lamina.port),
                   url_request(streamer_url), eventstream=False),
            Stream("InvokeWithResponseStream", ChunkedClient(lamina.host, lamina.port),
                   stream_request(lamina.host, lamina.port, streamer), eventstream=True),
        ]
        for target in streams:
            target.measure(warmup)
            target.ttfb_ms.clear()
        for _ in range(rounds):
            for label, (raw, request) in calls.items():
                latencies[label] += h.time_calls(raw, request, per_round)
            for target in streams:
                target.measure(per_round)

    url_table = h.Table(
        "Function URL request -> response beside a direct Invoke (no-op Python handler, one keep-alive client each)",
        ["path", "requests", "p50 ms", "p99 ms", "mean ms", "max ms"],
    )
    summaries = {label: h.Summary.of(values) for label, values in latencies.items()}
    for label, summary in summaries.items():
        url_table.add(label, summary.count, h.fmt(summary.p50), h.fmt(summary.p99), h.fmt(summary.mean),
                      h.fmt(summary.maximum))
    invoke_p50, url_p50 = (summary.p50 for summary in summaries.values())
    overhead = url_p50 - invoke_p50
    url_table.notes.append(
        f"URL overhead (p50 difference): {overhead:.3f} ms, target <= {TARGET_URL_OVERHEAD_MS} ms: "
        f"{'met' if overhead <= TARGET_URL_OVERHEAD_MS else 'missed'}. MemorySize {MEMORY_MB}; {warmup} warm-up "
        f"requests per path, then {rounds} interleaved blocks of {per_round}."
    )

    stream_table = h.Table(
        "Time to first byte of a streamed response after the function writes its first chunk (Node, one "
        "invocation per operation)",
        ["path", "operations", "p50 ms", "p99 ms", "mean ms", "max ms", f"target p50 <= {TARGET_TTFB_P50_MS}"],
    )
    for target in streams:
        summary = h.Summary.of(target.ttfb_ms)
        stream_table.add(target.label, summary.count, h.fmt(summary.p50), h.fmt(summary.p99), h.fmt(summary.mean),
                         h.fmt(summary.maximum), "met" if summary.p50 <= TARGET_TTFB_P50_MS else "missed")
    stream_table.notes.append(
        "Function: `process.hrtime.bigint()` (CLOCK_MONOTONIC) written as the first chunk; client: "
        "`time.monotonic_ns()` once that chunk is read (raw socket, chunked framing parsed by hand). "
        f"MemorySize {MEMORY_MB}; {warmup} warm-up operations per path, interleaved with the table above. "
        + h.reproduce_line("url_and_streaming.py")
    )
    stream_table.notes.append(h.load_note(load_at_start))
    return [url_table, stream_table]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000,
                        help="measured requests (and streamed operations) per path (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=300, help="warm-up calls per path (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved blocks (default %(default)s)")
    args = parser.parse_args()
    for table in run(args.requests, args.warmup, args.rounds):
        print(table.markdown())


if __name__ == "__main__":
    main()
