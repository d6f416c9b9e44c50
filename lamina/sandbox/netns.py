"""Network namespaces as file descriptors, entered by one thread at a time.

Namespaces belong to threads, not processes: a thread that calls setns() moves alone, and what it creates
(sockets, child processes) lives in the namespace it is in at that moment. So Lamina makes an environment's
listeners (its Runtime API on 127.0.0.1:9001) inside the environment's namespace, and starts the sandbox from
a thread that stepped into it, without the rest of the server ever leaving the host's network.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import socket
import struct
from typing import Iterator

CLONE_NEWNET = 0x40000000
_SIOCSIFFLAGS = 0x8914
_IFF_UP, _IFF_LOOPBACK, _IFF_RUNNING = 0x1, 0x8, 0x40

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")


def current_namespace() -> int:
    """An fd of the calling thread's network namespace."""
    return os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)


@contextlib.contextmanager
def entered(namespace_fd: int, home_fd: int) -> Iterator[None]:
    """Run the block in `namespace_fd`'s network namespace, then return the thread to `home_fd`'s."""
    _check(_libc.setns(namespace_fd, CLONE_NEWNET), "setns into an environment's network")
    try:
        yield
    finally:
        _check(_libc.setns(home_fd, CLONE_NEWNET), "setns back to the host network")


@contextlib.contextmanager
def fresh_namespace(home_fd: int) -> Iterator[int]:
    """Make a new network namespace with its loopback up, run the block inside it, and yield its fd.

    The thread is back in `home_fd`'s namespace when the block ends; the caller owns the fd.
    """
    _check(_libc.unshare(CLONE_NEWNET), "unshare a network namespace")
    try:
        namespace_fd = current_namespace()
        _loopback_up()
        yield namespace_fd
    finally:
        _check(_libc.setns(home_fd, CLONE_NEWNET), "setns back to the host network")


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as control:
        flags = struct.pack("16sH", b"lo", _IFF_UP | _IFF_LOOPBACK | _IFF_RUNNING)
        fcntl.ioctl(control.fileno(), _SIOCSIFFLAGS, flags)


def listener(host: str, port: int, backlog: int = 64) -> socket.socket:
    """A listening TCP socket in the calling thread's current namespace."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def write_sysctl(name: str, value: str) -> None:
    """A net.* sysctl of the calling thread's current namespace (procfs resolves it at open time)."""
    with open(f"/proc/sys/{name.replace('.', '/')}", "w") as handle:
        handle.write(value)
