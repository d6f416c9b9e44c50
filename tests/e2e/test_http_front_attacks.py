"""The HTTP front's bounds, each tried as an attacker would against a real `lamina serve`: endless headers, slowloris,
idle keep-alive connections, one client opening more connections than its share, a 1 GB Content-Length, unknown
methods and oversized query strings."""
from __future__ import annotations

import json
import selectors
import socket
import threading
import time
import uuid
from typing import Iterator
from urllib.parse import urlsplit

import pytest
from botocore.exceptions import ClientError

from conftest import PY_RUNTIME, ROLE, RunningServer, client_for, start_server, zip_files
from tests.support.polling import wait_until

PER_PEER = 50


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server with 1-second header, body and idle timeouts."""
    server = start_server(
        tmp_path_factory.mktemp("http-fast") / "data",
        "--http-header-timeout", "1", "--http-body-timeout", "1", "--http-idle-timeout", "1",
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def capped(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """A server (default timeouts) where one client address may hold PER_PEER connections."""
    server = start_server(tmp_path_factory.mktemp("http-capped") / "data", "--max-connections-per-peer", str(PER_PEER))
    yield server
    server.stop()


def _address(server: RunningServer) -> tuple[str, int]:
    parts = urlsplit(server.endpoint)
    return parts.hostname or "127.0.0.1", parts.port or 80


def _connect(server: RunningServer, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(_address(server), source_address=(source, 0))
    sock.settimeout(5)
    return sock


def _until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def _aws_error(answer: bytes) -> tuple[int, dict[str, str], dict[str, object]]:
    """(status, lower-cased headers, JSON body) of one AWS-shaped error response."""
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value for name, value in (line.split(": ", 1) for line in lines[1:])}
    assert headers["content-type"] == "application/json" and headers["x-amzn-requestid"]
    return int(lines[0].split()[1]), headers, json.loads(body)


def _readable(sock: socket.socket) -> bool:
    with selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_READ)
        return bool(selector.select(0))


def _rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_endless_headers_are_refused_early_and_the_server_memory_stays_bounded(fast):
    """4 connections each offering 32 MiB of one unfinished header (today: the server grew by 100s of MB)."""
    def flood(results: list[tuple[int, bytes]]) -> None:
        with _connect(fast) as sock:
            sock.sendall(b"GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nX-Endless: ")
            sent, piece = 0, b"a" * 65536
            while sent < 32 << 20 and not _readable(sock):
                sock.sendall(piece)
                sent += len(piece)
            results.append((sent, _until_closed(sock)))

    before = _rss_kb(fast.process.pid)
    results: list[tuple[int, bytes]] = []
    threads = [threading.Thread(target=flood, args=(results,)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    grown_kb = _rss_kb(fast.process.pid) - before
    assert len(results) == 4
    for sent, answer in results:
        status, headers, body = _aws_error(answer)
        assert (status, headers["x-amzn-errortype"]) == (431, "RequestHeaderFieldsTooLargeException")
        assert body == {"Type": "User", "message": "Request line and headers must be smaller than 16384 bytes"}
        assert sent < 32 << 20  # answered while the client was still sending (what was sent sat in socket buffers)
    assert grown_kb < 16 * 1024


def test_slowloris_connections_are_closed_after_the_header_timeout(fast):
    """300 connections each trickling a header line every 200 ms, never finishing the head."""
    started = time.monotonic()
    open_socks = {_connect(fast, "127.0.0.3"): b"" for _ in range(300)}
    for sock in open_socks:
        sock.setblocking(False)
        sock.send(b"GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\n")
    closed: dict[socket.socket, tuple[bytes, float]] = {}
    with selectors.DefaultSelector() as selector:
        for sock in open_socks:
            selector.register(sock, selectors.EVENT_READ)
        while open_socks and time.monotonic() - started < 5:
            for key, _ in selector.select(0.2):
                sock = key.fileobj  # type: ignore[assignment]
                try:
                    chunk = sock.recv(65536)
                except ConnectionResetError:  # the server's linger ended before this loop read its FIN: closed too
                    chunk = b""
                if chunk:
                    open_socks[sock] += chunk
                    continue
                closed[sock] = (open_socks.pop(sock), time.monotonic() - started)
                selector.unregister(sock)
            for sock in open_socks:
                try:
                    sock.send(b"X-Slow: a\r\n")
                except OSError:
                    pass
    for sock in list(open_socks) + list(closed):
        sock.close()
    assert not open_socks, f"{len(open_socks)} of 300 slowloris connections still open after 5 s"
    for answer, after in closed.values():
        assert answer.startswith(b"HTTP/1.1 408"), (answer[:300], after)
        status, headers, body = _aws_error(answer)
        assert (status, headers["x-amzn-errortype"]) == (408, "RequestTimeoutException")
        assert body["message"] == "Request headers not received within 1 s"
        assert 0.9 < after < 4


def test_idle_keep_alive_connections_are_closed_but_long_invokes_and_parked_runtimes_are_not(fast):
    with _connect(fast) as sock:
        sock.sendall(b"GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\n\r\n")
        answered = time.monotonic()
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
        assert _until_closed(sock) == b""  # closed, without a word, once idle for the idle timeout
        assert 0.9 < time.monotonic() - answered < 3
    # An invoke longer than every HTTP timeout is answered; the runtime's `next`, parked between invokes for longer
    # than them too, is not cut (the Runtime API has no such timeouts).
    client = client_for(fast.endpoint)
    name = f"slow-{uuid.uuid4().hex[:8]}"
    code = "import time\ndef handler(event, context):\n    time.sleep(event['sleep'])\n    return 'slept'\n"
    client.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                           Code={"ZipFile": zip_files({"app.py": code})}, Timeout=10)
    assert json.load(client.invoke(FunctionName=name, Payload=b'{"sleep": 1.5}')["Payload"]) == "slept"
    time.sleep(1.5)
    response = client.invoke(FunctionName=name, Payload=b'{"sleep": 0}')
    assert "FunctionError" not in response and json.load(response["Payload"]) == "slept"
    client.delete_function(FunctionName=name)


def test_a_client_over_its_connection_share_is_cut_off_and_others_are_still_served(capped):
    attacker = [_connect(capped, "127.0.0.2") for _ in range(PER_PEER + 30)]
    try:
        for sock in attacker[PER_PEER:]:  # the 30 over the share are closed at once, without a word
            try:
                assert sock.recv(1) == b""
            except ConnectionResetError:
                pass
        assert not any(_readable(sock) for sock in attacker[:PER_PEER])  # the first PER_PEER stay open
        # Meanwhile a well-behaved client is served, and the attacker's held connections still work.
        assert client_for(capped.endpoint).list_functions()["ResponseMetadata"]["HTTPStatusCode"] == 200
        attacker[0].sendall(b"GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert _until_closed(attacker[0]).startswith(b"HTTP/1.1 200 ")
    finally:
        for sock in attacker:
            sock.close()

    def served_again() -> bool:
        try:
            with _connect(capped, "127.0.0.2") as again:
                again.sendall(b"GET /2015-03-31/functions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return _until_closed(again).startswith(b"HTTP/1.1 200 ")
        except OSError:  # still over the share: closed at once
            return False

    # Closed connections give their places back, once the server has seen them close.
    wait_until(served_again, timeout=10, what="the places given back")


@pytest.mark.parametrize(
    ("method", "path", "error_type", "body"),
    [
        ("POST", "/2015-03-31/functions/any/invocations", "RequestTooLargeException",
         {"Type": "User", "message": "Request must be smaller than 6291456 bytes for the InvokeFunction operation"}),
        ("GET", "/2015-03-31/functions/any", "RequestEntityTooLargeException",
         {"Message": "Request must be smaller than 1048576 bytes for the GetFunction operation"}),
        ("POST", "/2015-03-31/functions", "RequestEntityTooLargeException",  # AWS's recorded answer
         {"Message": "Request must be smaller than 70167211 bytes for the CreateFunction operation"}),
    ],
)
def test_a_content_length_over_the_operations_limit_is_answered_413_before_the_body_is_sent(
    capped, method, path, error_type, body
):
    with _connect(capped) as sock:
        started = time.monotonic()
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n\r\n".encode())
        answer = _until_closed(sock)  # no body byte sent: the answer comes, then the close
        assert time.monotonic() - started < 1
    status, headers, document = _aws_error(answer)
    assert (status, headers["x-amzn-errortype"], document) == (413, error_type, body)
    assert headers["connection"] == "close"


def test_unknown_methods_and_oversized_query_strings_get_aws_errors(capped):
    with _connect(capped) as sock:
        sock.sendall(b"BREW /2015-03-31/functions HTTP/1.1\r\nHost: x\r\n\r\n")
        status, headers, body = _aws_error(_until_closed(sock))
    assert (status, headers["x-amzn-errortype"]) == (400, "InvalidRequestContentException")
    assert body == {"Type": "User", "message": "Could not parse the HTTP request: Invalid method encountered"}
    with pytest.raises(ClientError) as excinfo:
        client_for(capped.endpoint).list_functions(Marker="m" * 20000)
    assert excinfo.value.response["ResponseMetadata"]["HTTPStatusCode"] == 414
    assert excinfo.value.response["Error"] == {
        "Code": "RequestURITooLongException", "Message": "Request URI must be smaller than 8192 bytes"
    }
