"""A small threaded fake of the Lambda Runtime API 2018-06-01, and a runner for real runtime processes against it.

It parses requests itself (rather than through http.server) so it can see pipelining: each recorded request notes
whether its bytes were already buffered when the previous request on the connection finished.
"""
from __future__ import annotations

import json
import os
import queue
import select
import socket
import socketserver
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

PREFIX = "/2018-06-01/runtime/"
DEFAULT_ARN = "arn:aws:lambda:us-east-1:123456789012:function:fn"
DEFAULT_TRACE = "Root=1-65f0a1b2-0123456789abcdef01234567;Parent=0123456789abcdef;Sampled=0"


@dataclass
class Recorded:
    """One request as the fake saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int
    pipelined: bool

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class _Event:
    request_id: str
    body: bytes
    headers: dict[str, str]
    response_status: int = 202


@dataclass
class _Connection:
    sock: socket.socket
    number: int
    buffer: bytes = b""

    def read_request(self) -> Recorded | None:
        pipelined = bool(self.buffer)
        while b"\r\n\r\n" not in self.buffer:
            if not self._fill():
                return None
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("utf-8").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        self.buffer = rest
        while len(self.buffer) < length:
            if not self._fill():
                return None
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return Recorded(method, path, headers, body, self.number, pipelined)

    def _fill(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except OSError:
            return False
        self.buffer += chunk
        return bool(chunk)


def _encode(status: int, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


class _Handler(socketserver.BaseRequestHandler):
    server: "_Server"

    def handle(self) -> None:
        fake = self.server.fake
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection = _Connection(self.request, fake._connection_number())
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


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: "FakeRuntimeApi"


class FakeRuntimeApi:
    """Queue events with `push`, then wait for what the runtime posts with `result` / `init_error`."""

    def __init__(self) -> None:
        self._events: queue.Queue[_Event] = queue.Queue()
        self._statuses: dict[str, int] = {}
        self._results: dict[str, Recorded] = {}
        self._init_errors: list[Recorded] = []
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._connections = 0
        self.requests: list[Recorded] = []
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host}:{port}"

    @property
    def connections(self) -> int:
        return self._connections

    def __enter__(self) -> "FakeRuntimeApi":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def push(
        self,
        event: Any = None,
        *,
        raw: bytes | None = None,
        request_id: str | None = None,
        timeout_ms: int = 3000,
        arn: str = DEFAULT_ARN,
        trace_id: str | None = DEFAULT_TRACE,
        client_context: Any = None,
        identity: Any = None,
        content_type: str = "application/json",
        response_status: int = 202,
    ) -> str:
        """Queue one invocation; returns its request id."""
        request_id = request_id or str(uuid.uuid4())
        headers = {
            "Content-Type": content_type,
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + timeout_ms),
            "Lambda-Runtime-Invoked-Function-Arn": arn,
        }
        if trace_id is not None:
            headers["Lambda-Runtime-Trace-Id"] = trace_id
        if client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = json.dumps(client_context)
        if identity is not None:
            headers["Lambda-Runtime-Cognito-Identity"] = json.dumps(identity)
        body = raw if raw is not None else json.dumps(event).encode()
        self._events.put(_Event(request_id, body, headers, response_status))
        return request_id

    def result(self, request_id: str, timeout: float = 10.0) -> Recorded:
        """The response or error posted for `request_id` (see `.path` to tell which)."""
        return self._wait(lambda: self._results.get(request_id), timeout, f"no result for {request_id}")

    def init_error(self, timeout: float = 10.0) -> Recorded:
        return self._wait(lambda: self._init_errors[0] if self._init_errors else None, timeout, "no init error")

    def next_requests(self) -> list[Recorded]:
        """The runtime's `GET .../invocation/next` calls so far."""
        with self._changed:
            return [request for request in self.requests if request.path.endswith("/invocation/next")]

    def _wait(self, probe: Any, timeout: float, message: str) -> Recorded:
        deadline = time.monotonic() + timeout
        with self._changed:
            while (found := probe()) is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(message)
                self._changed.wait(remaining)
        return found

    def _connection_number(self) -> int:
        with self._changed:
            self._connections += 1
            return self._connections

    def _dispatch(self, request: Recorded) -> bytes | None:
        with self._changed:
            self.requests.append(request)
        if not request.path.startswith(PREFIX):
            return _encode(404, b"{}", {})
        tail = request.path[len(PREFIX):]
        if request.method == "GET" and tail == "invocation/next":
            return self._next()
        if request.method == "POST" and tail == "init/error":
            return self._record(lambda: self._init_errors.append(request), 202)
        parts = tail.split("/")
        if request.method == "POST" and len(parts) == 3 and parts[2] in ("response", "error"):
            status = self._statuses.get(parts[1], 202) if parts[2] == "response" else 202
            return self._record(lambda: self._results.setdefault(parts[1], request), status)
        return _encode(404, b"{}", {})

    def _next(self) -> bytes | None:
        while not self._stopping.is_set():
            try:
                event = self._events.get(timeout=0.05)
            except queue.Empty:
                continue
            self._statuses[event.request_id] = event.response_status
            return _encode(200, event.body, event.headers)
        return None

    def _record(self, store: Any, status: int) -> bytes:
        with self._changed:
            store()
            self._changed.notify_all()
        body = b'{"status":"OK"}' if status == 202 else b'{"errorMessage":"rejected","errorType":"Rejected"}'
        return _encode(status, body, {"Content-Type": "application/json"})


FUNCTION_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "fn",
    "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
    "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/fn",
    "AWS_LAMBDA_LOG_STREAM_NAME": "2024/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
    "AWS_REGION": "us-east-1",
}


class RuntimeProcess:
    """A runtime started as Lamina starts it; its combined stdout and stderr is the function's log."""

    def __init__(
        self, argv: Sequence[str], api: FakeRuntimeApi, task_root: Path, handler: str, env: dict[str, str] | None = None
    ) -> None:
        full_env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AWS_LAMBDA_RUNTIME_API": api.address,
            "_HANDLER": handler,
            "LAMBDA_TASK_ROOT": str(task_root),
            "LAMBDA_RUNTIME_DIR": str(Path(argv[-1]).resolve().parent.parent),  # argv ends with <dir>/<lang>/bootstrap
            **FUNCTION_ENV,
            **(env or {}),
        }
        read_fd, write_fd = os.pipe()
        self._process = subprocess.Popen(
            list(argv), cwd=task_root, env=full_env, stdin=subprocess.DEVNULL, stdout=write_fd, stderr=write_fd
        )
        os.close(write_fd)
        self._fd = read_fd
        self._output = b""

    @property
    def log(self) -> str:
        """Everything the runtime has written so far, without waiting for more."""
        while select.select([self._fd], [], [], 0)[0]:
            chunk = os.read(self._fd, 65536)
            if not chunk:
                break
            self._output += chunk
        return self._output.decode("utf-8", "replace")

    def wait(self, timeout: float = 10.0) -> int:
        return self._process.wait(timeout)

    @property
    def returncode(self) -> int | None:
        return self._process.poll()

    def stop(self) -> str:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        text = self.log
        os.close(self._fd)
        return text
