"""Host services an operator allows (`--allow-host-port 127.0.0.1:5432`), seen by functions at the same address.

An environment's loopback is its own, so Lamina listens on the allowed address inside the environment's
namespace and joins each connection to that address on the host. Only the named ports pass, and each
environment may hold a bounded number of connections, so a function cannot exhaust the server's descriptors.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import socket

from lamina.sandbox.firewall import HostPort

log = logging.getLogger(__name__)

MAX_CONNECTIONS_PER_ENVIRONMENT = 64
_CHUNK = 65536


class PortForwarder:
    def __init__(self, sockets: dict[HostPort, socket.socket]) -> None:
        self._sockets = sockets
        self._servers: list[asyncio.base_events.Server] = []
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        for target, sock in self._sockets.items():
            self._servers.append(await asyncio.start_server(
                lambda reader, writer, target=target: self._accepted(reader, writer, target), sock=sock))

    def close(self) -> None:
        for server in self._servers:
            server.close()
        self._servers.clear()
        for task in list(self._connections):
            task.cancel()

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: HostPort) -> None:
        if len(self._connections) >= MAX_CONNECTIONS_PER_ENVIRONMENT:
            writer.transport.abort()
            return
        task = asyncio.ensure_future(self._join(reader, writer, target))
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    @staticmethod
    async def _join(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: HostPort) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(target.host, target.port)
        except OSError as error:
            log.info("forwarding to %s:%d failed: %s", target.host, target.port, error)
            writer.transport.abort()
            return
        try:
            await asyncio.gather(_copy(reader, upstream_writer), _copy(upstream_reader, writer))
        finally:
            for end in (writer, upstream_writer):
                end.transport.abort()


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError, OSError):
        while data := await source.read(_CHUNK):
            sink.write(data)
            await sink.drain()
        if sink.can_write_eof():
            sink.write_eof()
