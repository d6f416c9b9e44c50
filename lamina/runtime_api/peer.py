"""Who is on the other end of a loopback TCP connection.

Environments share the host network (so outbound traffic works), which means any of them could connect to any
environment's Runtime API port. Each environment runs as its own uid, and the kernel records the owning uid of
every socket in /proc/net/tcp: accepting only connections whose client socket belongs to the environment's uid
keeps one function from reading or answering another's invocations.
"""
from __future__ import annotations

import socket
import struct

_ESTABLISHED = b"01"


def _hex_address(host: str, port: int) -> bytes:
    packed = socket.inet_aton(host)
    return b"%08X:%04X" % (struct.unpack("<I", packed)[0], port)


def loopback_socket_uid(client: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The uid owning the established client socket of the connection client -> server, or None.

    Both ends and the state are matched: a TIME_WAIT entry left by an earlier connection on the same ephemeral
    port belongs to uid 0 and must not be mistaken for the live one.
    """
    local, remote = _hex_address(*client), _hex_address(*server)
    with open("/proc/net/tcp", "rb") as table:
        table.readline()
        for line in table:
            fields = line.split()
            if fields[1] == local and fields[2] == remote and fields[3] == _ESTABLISHED:
                return int(fields[7])
    return None
