"""Who is on the other end of a loopback TCP connection.

Environments share the host network (so outbound traffic works), which means any of them could connect to any
environment's Runtime API port. Each environment runs as its own uid, and the kernel records the owning uid of
every socket in /proc/net/tcp: accepting only connections whose client socket belongs to the environment's uid
keeps one function from reading or answering another's invocations.
"""
from __future__ import annotations

import socket
import struct


def _hex_address(host: str, port: int) -> str:
    packed = socket.inet_aton(host)
    return "%08X:%04X" % (struct.unpack("<I", packed)[0], port)


def loopback_socket_uid(host: str, port: int) -> int | None:
    """The uid owning the local TCP socket bound to host:port (the connecting side), or None if not found."""
    wanted = _hex_address(host, port)
    with open("/proc/net/tcp", "rb") as table:
        table.readline()
        for line in table:
            fields = line.split()
            if fields[1].decode() == wanted:
                return int(fields[7])
    return None
