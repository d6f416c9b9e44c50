"""A stand-in for "the outside" in tests: an HTTP server in a network namespace of its own, reached from the host
through a veth pair, so a function's outbound traffic really leaves its environment, crosses the host's NAT and
comes back, without sending anything beyond this machine."""
from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Iterator


#: http.server's own server_bind resolves the host's name (getfqdn), which waits out DNS in a namespace without it.
_SERVER = """
import http.server, socketserver, sys
class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
Server((sys.argv[1], int(sys.argv[2])), http.server.SimpleHTTPRequestHandler).serve_forever()
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


@dataclass
class OutsideHost:
    namespace: str
    address: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.address}:{self.port}/"


@contextlib.contextmanager
def outside_host(octet: int = 7) -> Iterator[OutsideHost]:
    """An HTTP server at 198.18.<octet>.2 (RFC 2544 test range) in its own namespace; the host routes to it."""
    tag = uuid.uuid4().hex[:6]
    namespace, host_end = f"lamina-outside-{tag}", f"lto{tag}"
    host_address, outside_address = f"198.18.{octet}.1", f"198.18.{octet}.2"
    _ip("netns", "add", namespace)
    server: subprocess.Popen[bytes] | None = None
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", "eth0", "netns", namespace)
        _ip("addr", "add", f"{host_address}/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        _ip("-n", namespace, "addr", "add", f"{outside_address}/30", "dev", "eth0")
        _ip("-n", namespace, "link", "set", "eth0", "up")
        _ip("-n", namespace, "link", "set", "lo", "up")
        _ip("-n", namespace, "route", "add", "default", "via", host_address)
        port = 8080
        server = subprocess.Popen(
            ["ip", "netns", "exec", namespace, sys.executable, "-c", _SERVER, outside_address, str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        outside = OutsideHost(namespace, outside_address, port)
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(outside.url, timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield outside
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        subprocess.run(["ip", "link", "del", host_end], capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)
