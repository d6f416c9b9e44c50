"""The same-run baseline: a minimal keep-alive HTTP/1.1 server that answers every request 200 `{}`.

uvloop + httptools is the stack Lamina's own HTTP layer runs on, so the gap between this and Lamina is what
Lamina does per invoke (routing, the pool, two Runtime API round trips to the sandbox), not the socket floor.
Prints `listening on http://127.0.0.1:PORT` like `lamina serve`.
"""
from __future__ import annotations

import asyncio
import signal

import httptools
import uvloop

_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class MinimalProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            assert self._transport is not None
            self._transport.close()

    def on_message_complete(self) -> None:
        assert self._transport is not None
        self._transport.write(_RESPONSE)


async def serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(MinimalProtocol, "127.0.0.1", 0)
    print(f"listening on http://127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    stopping = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopping.set)
    loop.add_signal_handler(signal.SIGINT, stopping.set)
    await stopping.wait()
    server.close()


if __name__ == "__main__":
    uvloop.run(serve())
