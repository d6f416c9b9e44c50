"""End-to-end fixtures: a real `lamina serve` process, real boto3 clients, real functions."""
from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import boto3
import pytest
from botocore.config import Config

REGION = "us-east-1"
ROLE = "arn:aws:iam::000000000000:role/lamina-test"
PY_RUNTIME = f"python{sys.version_info.major}.{sys.version_info.minor}"


def zip_files(files: dict[str, str | bytes | tuple[str | bytes, int]]) -> bytes:
    """An in-memory zip; a value may be (content, unix mode) to set permissions such as 0o755."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, value in files.items():
            content, mode = value if isinstance(value, tuple) else (value, 0o644)
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, content)
    return buffer.getvalue()


@dataclass
class RunningServer:
    process: subprocess.Popen[str]
    endpoint: str
    data_dir: Path
    stderr_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=timeout)


def start_server(data_dir: Path, *extra: str) -> RunningServer:
    """Start `lamina serve` on a free port and wait until it prints its endpoint."""
    data_dir.mkdir(parents=True, exist_ok=True)
    stderr_path = data_dir.parent / f"{data_dir.name}-server-{uuid.uuid4().hex[:6]}.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "lamina.cli", "serve", "--port", "0", "--data-dir", str(data_dir), *extra],
        stdout=subprocess.PIPE,
        stderr=open(stderr_path, "w"),
        text=True,
    )
    deadline = time.monotonic() + 20
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        found = re.search(r"listening on (http://\S+)", line)
        if found:
            return RunningServer(process, found.group(1), data_dir, stderr_path)
    process.kill()
    raise RuntimeError(f"lamina serve did not start: {stderr_path.read_text()}")


def client_for(endpoint: str, service: str = "lambda", **config: object):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, read_timeout=120, **config),
    )


@pytest.fixture(scope="session")
def lamina(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("lamina") / "data")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto's standalone server (S3, SQS, SNS, EventBridge) on a free port; it prints the URL it bound."""
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with open(log, "w") as output:
        process = subprocess.Popen([sys.executable, "-m", "moto.server", "-p0"], stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 30
        while not (found := re.search(r"Running on (http://\S+)", log.read_text())):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto server did not start: {log.read_text()}")
            time.sleep(0.1)
        yield found.group(1)
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="session")
def lambda_client(lamina: RunningServer):
    return client_for(lamina.endpoint)


@pytest.fixture(scope="session")
def unvalidated_client(lamina: RunningServer):
    """A client that skips botocore's own parameter checks, to reach the server's validation."""
    return client_for(lamina.endpoint, parameter_validation=False)


@pytest.fixture
def make_function(lambda_client) -> Iterator[Callable[..., str]]:
    created: list[str] = []

    def create(
        files: dict[str, str | bytes | tuple[str | bytes, int]] | None = None,
        *,
        code: str | None = None,
        handler: str = "app.handler",
        runtime: str = PY_RUNTIME,
        **settings: object,
    ) -> str:
        name = f"fn-{uuid.uuid4().hex[:12]}"
        if files is None:
            files = {"app.py": code or "def handler(event, context):\n    return event\n"}
        lambda_client.create_function(
            FunctionName=name,
            Runtime=runtime,
            Role=ROLE,
            Handler=handler,
            Code={"ZipFile": zip_files(files)},
            **settings,
        )
        created.append(name)
        return name

    yield create
    for name in created:
        try:
            lambda_client.delete_function(FunctionName=name)
        except lambda_client.exceptions.ResourceNotFoundException:
            pass


def invoke_json(client, name: str, payload: object = None) -> object:
    """Invoke synchronously and decode the JSON result, failing on any function error."""
    response = client.invoke(FunctionName=name, Payload=json.dumps(payload if payload is not None else {}))
    body = response["Payload"].read()
    assert "FunctionError" not in response, body
    return json.loads(body)


def sandbox_processes() -> list[int]:
    """PIDs of bubblewrap processes (sandboxes) on the host."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as comm:
                    if comm.read().strip() == "bwrap":
                        pids.append(int(entry))
            except OSError:
                continue
    return pids
