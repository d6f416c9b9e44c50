"""Server lifecycle: clean stop with no orphans, and no lost or half-applied state after `kill -9`."""
from __future__ import annotations

import base64
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

from botocore.exceptions import ClientError, EndpointConnectionError
from urllib3.exceptions import HTTPError

from conftest import PY_RUNTIME, ROLE, client_for, invoke_json, start_server, zip_files
from tests.support.polling import wait_until


def _children(pid: int) -> set[int]:
    """All descendants of `pid`."""
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = (task / "children").read_text().split()
            except OSError:
                continue
            for kid in map(int, kids):
                if kid not in found:
                    found.add(kid)
                    frontier.append(kid)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "State:\tZ" not in status.read_text()


def _create(client, name: str, answer: str | None = None, *, source: str | None = None) -> None:
    """A Python function returning `answer`, or running `source` as app.py."""
    source = source or f"def handler(e, c):\n    return {answer!r}\n"
    client.create_function(
        FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
        Code={"ZipFile": zip_files({"app.py": source})},
    )


def test_sigterm_stops_environments_and_leaves_no_orphans(tmp_path):
    server = start_server(tmp_path / "data")
    client = client_for(server.endpoint)
    names = [f"stop-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    for name in names:
        _create(client, name, name)
        assert invoke_json(client, name) == name
    sandboxes = _children(server.process.pid)
    assert len(sandboxes) >= 3
    assert server.stop(signal.SIGTERM) == 0
    wait_until(lambda: not [pid for pid in sandboxes if _alive(pid)], timeout=5, what="every sandbox gone")
    assert not list((tmp_path / "data" / "sandboxes").iterdir())


def test_kill_9_loses_nothing_acknowledged(tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    client = client_for(server.endpoint)
    acknowledged: dict[str, str] = {}
    stop = threading.Event()

    def writer() -> None:
        counter = 0
        while not stop.is_set():
            name = f"crash-{counter}"
            try:
                _create(client, name, f"v1-{counter}")
                acknowledged[name] = f"v1-{counter}"
                client.update_function_code(
                    FunctionName=name,
                    ZipFile=zip_files({"app.py": f"def handler(e, c):\n    return 'v2-{counter}'\n"}),
                )
                acknowledged[name] = f"v2-{counter}"
            except (ClientError, EndpointConnectionError, HTTPError, ConnectionError, OSError):
                return
            except Exception:  # noqa: BLE001 - any client failure once the server is gone ends the writer
                return
            counter += 1

    thread = threading.Thread(target=writer)
    thread.start()
    wait_until(lambda: len(acknowledged) >= 10, timeout=30, what="acknowledged writes before the kill")
    server.process.send_signal(signal.SIGKILL)
    server.process.wait()
    stop.set()
    thread.join(timeout=30)
    assert len(acknowledged) >= 3, acknowledged

    restarted = start_server(data_dir)
    try:
        client = client_for(restarted.endpoint)
        for name, answer in acknowledged.items():
            result = invoke_json(client, name)
            # Each function holds either its acknowledged code or, for an update in flight at the kill, the
            # next one: never a mix, never nothing.
            counter = name.split("-")[1]
            assert result in (answer, f"v2-{counter}"), (name, result)
        listed = {f["FunctionName"] for page in client.get_paginator("list_functions").paginate() for f in page["Functions"]}
        assert set(acknowledged) <= listed
        for name in listed:
            config = client.get_function_configuration(FunctionName=name)
            assert config["State"] == "Active" and config["CodeSize"] > 0
    finally:
        restarted.stop()


def test_idle_environments_are_evicted_after_keep_alive(tmp_path):
    server = start_server(tmp_path / "data", "--keep-alive", "1")
    try:
        client = client_for(server.endpoint)
        name = f"evict-{uuid.uuid4().hex[:6]}"
        _create(client, name, source="import os\ndef handler(e, c):\n    return os.getpid()\n")
        first = client.invoke(FunctionName=name, LogType="Tail")
        assert "Init Duration" in base64.b64decode(first["LogResult"]).decode()
        warm = client.invoke(FunctionName=name, LogType="Tail")
        assert "Init Duration" not in base64.b64decode(warm["LogResult"]).decode()
        environments = _children(server.process.pid)
        wait_until(lambda: not [pid for pid in environments if _alive(pid)], timeout=15, what="eviction")
        cold_again = client.invoke(FunctionName=name, LogType="Tail")
        assert "Init Duration" in base64.b64decode(cold_again["LogResult"]).decode()
    finally:
        server.stop()


def test_lamina_logs_prints_a_functions_log(tmp_path):
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    try:
        client = client_for(server.endpoint)
        name = f"logs-{uuid.uuid4().hex[:6]}"
        _create(client, name, source="def handler(e, c):\n    print('line from', e['who'])\n")
        response = client.invoke(FunctionName=name, Payload=b'{"who": "the test"}')
        request_id = response["ResponseMetadata"]["RequestId"]

        def printed_log() -> str:
            """What `lamina logs` prints, once it has the whole invocation (the log is written after the answer)."""
            printed = subprocess.run(
                [sys.executable, "-m", "lamina.cli", "logs", name, "--data-dir", str(data_dir)],
                capture_output=True, text=True, timeout=30,
            )
            assert printed.returncode == 0, printed.stderr
            return printed.stdout if f"REPORT RequestId: {request_id}" in printed.stdout else ""

        lines = wait_until(printed_log, timeout=20, what="the invocation's log").splitlines()
        assert any(line.endswith(f"START RequestId: {request_id} Version: $LATEST") for line in lines)
        assert any(line.endswith("line from the test") for line in lines)
        assert any(f"REPORT RequestId: {request_id}\tDuration:" in line for line in lines)

        follower = subprocess.Popen(
            [sys.executable, "-m", "lamina.cli", "logs", name, "--follow", "--data-dir", str(data_dir)],
            stdout=subprocess.PIPE, text=True,
        )
        try:
            second = client.invoke(FunctionName=name, Payload=b'{"who": "a follower"}')
            second_id = second["ResponseMetadata"]["RequestId"]
            deadline = time.monotonic() + 10
            seen = ""
            assert follower.stdout is not None
            while f"END RequestId: {second_id}" not in seen and time.monotonic() < deadline:
                seen += follower.stdout.readline()
            assert "line from a follower" in seen
        finally:
            follower.kill()
            follower.wait()
    finally:
        server.stop()


def test_what_a_runtime_writes_before_dying_idle_reaches_its_log(tmp_path):
    """A custom runtime that answers one event, then writes a line and exits instead of asking for the next."""
    bootstrap = r'''#!/usr/bin/python3
import os, sys, urllib.request
api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/invocation/"
with urllib.request.urlopen(api + "next") as event:
    request_id = event.headers["Lambda-Runtime-Aws-Request-Id"]
urllib.request.urlopen(urllib.request.Request(api + request_id + "/response", data=b'"done"', method="POST")).close()
print("written after the answer, while idle", flush=True)
sys.exit(3)
'''
    data_dir = tmp_path / "data"
    server = start_server(data_dir)
    try:
        client = client_for(server.endpoint)
        name = f"idle-{uuid.uuid4().hex[:6]}"
        client.create_function(FunctionName=name, Runtime="provided.al2023", Role=ROLE, Handler="x",
                               Code={"ZipFile": zip_files({"bootstrap": (bootstrap, 0o755)})})
        assert invoke_json(client, name) == "done"

        def logged() -> str:
            return subprocess.run([sys.executable, "-m", "lamina.cli", "logs", name, "--data-dir", str(data_dir)],
                                  capture_output=True, text=True, timeout=30).stdout

        wait_until(lambda: "written after the answer, while idle" in logged(), timeout=15)
        assert invoke_json(client, name) == "done"  # a fresh environment serves the next one
    finally:
        server.stop()
