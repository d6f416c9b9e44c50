"""Shared benchmark plumbing: a real `lamina serve` in a temp dir, a minimal baseline server, a raw HTTP client.

The raw client exists because boto3 spends more time per call (signing, botocore's parsers) than the server
does on a warm invoke: measuring through it would measure boto3. The same client code measures the baseline
server, so the two figures differ only by what sits behind the socket.
"""
from __future__ import annotations

import io
import json
import os
import platform
import re
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import boto3
from botocore.config import Config

BENCH_DIR = Path(__file__).resolve().parent
#: The checkout whose `lamina` is benchmarked (`python -m lamina.cli` runs with it as cwd); LAMINA_REPO points
#: at another one, e.g. a `git worktree` of an older commit, to compare two versions on the same machine.
REPO_DIR = Path(os.environ.get("LAMINA_REPO", BENCH_DIR.parent)).resolve()
PY_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"
ROLE = "arn:aws:iam::000000000000:role/lamina-bench"
REGION = "us-east-1"
NOOP_PYTHON = "def handler(event, context):\n    return {}\n"
NOOP_NODE = "exports.handler = async () => ({});\n"
START_TIMEOUT_S = 30.0
_LISTENING = re.compile(rb"listening on http://([\d.]+):(\d+)")


# -- servers ---------------------------------------------------------------------------------------------------------
@dataclass
class ServerProcess:
    """A server subprocess that printed its address; `stop()` sends SIGTERM and waits."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    temp_dir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def data_dir(self) -> Path:
        assert self.temp_dir is not None, "only Lamina servers have a data dir"
        return Path(self.temp_dir.name) / "data"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.temp_dir is not None:
            self.temp_dir.cleanup()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def lamina_command(data_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "lamina.cli", "serve", "--port", "0", "--data-dir", str(data_dir), *extra]


def wait_for_listening(process: subprocess.Popen[bytes], timeout: float = START_TIMEOUT_S) -> tuple[str, int]:
    """Read the child's stdout until it announces `listening on http://HOST:PORT`."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        found = _LISTENING.search(line)
        if found:
            return found.group(1).decode(), int(found.group(2))
    process.kill()
    process.wait()
    raise RuntimeError(f"server did not start: {shlex.join(map(str, process.args))}")  # type: ignore[arg-type]


def start_lamina(*extra: str, repo: Path = REPO_DIR) -> ServerProcess:
    """`lamina serve` of checkout `repo` on a free port with a fresh data dir, removed on stop (its stderr:
    server.log beside it)."""
    temp_dir = tempfile.TemporaryDirectory(prefix="lamina-bench-")
    data_dir = Path(temp_dir.name) / "data"
    with open(Path(temp_dir.name) / "server.log", "wb") as log_file:
        process = subprocess.Popen(
            lamina_command(data_dir, *extra), stdout=subprocess.PIPE, stderr=log_file, cwd=repo
        )
    try:
        host, port = wait_for_listening(process)
    except RuntimeError as error:
        log = (Path(temp_dir.name) / "server.log").read_text(errors="replace")
        temp_dir.cleanup()
        raise RuntimeError(f"{error}\n{log[-3000:]}") from None
    return ServerProcess(process, host, port, temp_dir)


def start_baseline() -> ServerProcess:
    """The minimal HTTP server (uvloop + httptools, answers 200 `{}`), the floor any Python server sits on."""
    process = subprocess.Popen(
        [sys.executable, str(BENCH_DIR / "baseline_server.py")], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    host, port = wait_for_listening(process)
    return ServerProcess(process, host, port)


# -- functions -------------------------------------------------------------------------------------------------------
def lambda_client(endpoint: str):
    return boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120),
    )


def zip_files(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), content)
    return buffer.getvalue()


NOOP_PYTHON_ZIP = zip_files({"app.py": NOOP_PYTHON})
NOOP_NODE_ZIP = zip_files({"index.js": NOOP_NODE})


def create_function(client, *, memory_mb: int = 128, runtime: str = PY_RUNTIME, name: str | None = None) -> str:
    """Create a no-op function and return its name."""
    name = name or f"bench-{uuid.uuid4().hex[:12]}"
    node = runtime.startswith("nodejs")
    client.create_function(
        FunctionName=name,
        Runtime=runtime,
        Role=ROLE,
        Handler="index.handler" if node else "app.handler",
        Code={"ZipFile": NOOP_NODE_ZIP if node else NOOP_PYTHON_ZIP},
        MemorySize=memory_mb,
        Timeout=30,
    )
    return name


def function_log(server: ServerProcess, name: str) -> str:
    """The function's log through `lamina logs`, after the server's periodic flush (every 0.2 s)."""
    time.sleep(0.5)
    command = [sys.executable, "-m", "lamina.cli", "logs", name, "--data-dir", str(server.data_dir)]
    return subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO_DIR).stdout


def node_runtime() -> str:
    """`nodejsNN.x` for the host's Node major version (Lamina runs the host's node)."""
    output = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True).stdout
    return f"nodejs{output.strip().lstrip('v').split('.')[0]}.x"


# -- the raw keep-alive client ---------------------------------------------------------------------------------------
def invoke_request(host: str, port: int, name: str, body: bytes = b'{"bench": 1}', *, log_tail: bool = False) -> bytes:
    """`log_tail` asks for the invocation's log tail (X-Amz-Log-Type: Tail), answered in X-Amz-Log-Result."""
    tail = "X-Amz-Log-Type: Tail\r\n" if log_tail else ""
    return (
        f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\nContent-Type: application/json\r\n{tail}Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


class RawClient:
    """One keep-alive connection; `call()` sends a request and reads the response framed by Content-Length.

    Hand-rolled on purpose (hot path of the measurement): http.client adds tens of microseconds per call of
    object and header-parsing overhead, which would blur a sub-millisecond figure.
    """

    def __init__(self, host: str, port: int) -> None:
        self._sock = socket.create_connection((host, port))
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._buffer = b""
        self.last_head = b""

    def call(self, request: bytes) -> tuple[int, bytes]:
        """Returns (status, body)."""
        self._sock.sendall(request)
        buffer = self._buffer
        end = buffer.find(b"\r\n\r\n")
        while end < 0:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buffer += chunk
            end = buffer.find(b"\r\n\r\n")
        head = buffer[:end]
        length = _content_length(head)
        total = end + 4 + length
        while len(buffer) < total:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("server closed the connection")
            buffer += chunk
        self._buffer = buffer[total:]
        self.last_head = head
        return int(head[9:12]), buffer[end + 4 : total]

    def close(self) -> None:
        self._sock.close()


def header_value(head: bytes, name: bytes) -> bytes | None:
    """The value of header `name` (lower case) in a response head, or None."""
    start = head.lower().find(b"\r\n" + name + b":")
    if start < 0:
        return None
    line_end = head.find(b"\r\n", start + 2)
    return head[start + 3 + len(name) : line_end if line_end > 0 else len(head)].strip()


def _content_length(head: bytes) -> int:
    value = header_value(head, b"content-length")
    return int(value) if value is not None else 0


def time_calls(client: RawClient, request: bytes, count: int) -> list[float]:
    """Latencies in ms of `count` sequential calls; raises if any answer is not 200 without a function error."""
    latencies: list[float] = []
    clock = time.perf_counter
    for _ in range(count):
        started = clock()
        status, body = client.call(request)
        latencies.append((clock() - started) * 1000)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    return latencies


def check_invoke(client: RawClient, request: bytes) -> None:
    """One invoke that must return the no-op handler's `{}` (so a misconfigured function fails loudly)."""
    status, body = client.call(request)
    if status != 200 or json.loads(body) != {}:
        raise RuntimeError(f"unexpected answer HTTP {status}: {body[:300]!r}")


# -- processes -------------------------------------------------------------------------------------------------------
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    pending, found = children(pid), []
    while pending:
        child = pending.pop()
        found.append(child)
        pending += children(child)
    return found


def comm(pid: int) -> str:
    return Path(f"/proc/{pid}/comm").read_text().strip()


def sandbox_trees(server_pid: int) -> dict[int, list[int]]:
    """Each of the server's sandboxes (a top-level bwrap child) with its whole process tree."""
    return {child: [child, *descendants(child)] for child in children(server_pid) if comm(child) == "bwrap"}


def cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU time of the processes (all their threads); exited ones count as 0."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / _CLOCK_TICKS


# -- statistics and tables -------------------------------------------------------------------------------------------
def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 2,000 samples is the 1,980th smallest)."""
    ordered = sorted(values)
    rank = max(1, -(-int(round(fraction * 1000)) * len(ordered) // 1000))
    return ordered[rank - 1]


@dataclass
class Summary:
    count: int
    p50: float
    p99: float
    mean: float
    maximum: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        return cls(
            len(values), percentile(values, 0.50), percentile(values, 0.99), statistics.fmean(values), max(values)
        )


def fmt(value: float, digits: int = 3) -> str:
    return f"{value:.{digits}f}"


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, *cells: object) -> None:
        self.rows.append([str(cell) for cell in cells])

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.headers) + " |", "|" + "---|" * len(self.headers)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.notes:
            lines += ["", " ".join(self.notes)]
        return "\n".join(lines) + "\n"


def machine_line() -> str:
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**30
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB, Linux {platform.release()}, "
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M %Z')}"
    )


def load_average() -> float:
    return os.getloadavg()[0]


def load_note(load_at_start: float) -> str:
    """The host's 1-minute load average at the start and end of a measurement: other work on a 2-core machine
    inflates every figure (the same-run baselines absorb some of it, not all)."""
    return f"Load average (1 min) {load_at_start:.1f} at start, {os.getloadavg()[0]:.1f} at end."


def reproduce_line(script: str, args: Iterable[str] = ()) -> str:
    command = " ".join(["python3", f"benchmarks/{script}", *args])
    return f"Reproduce: `{command}`"
