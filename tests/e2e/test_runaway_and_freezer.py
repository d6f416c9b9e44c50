"""A runaway environment is killed without stalling the API, and idle environments are frozen between invocations.

Both run against their own `lamina serve`, so the cgroups under its parent group are only theirs.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import re
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import PY_RUNTIME, ROLE, RunningServer, client_for, invoke_json, start_server, zip_files
from tests.support.polling import wait_until

CGROUP_ROOT = Path("/sys/fs/cgroup")
FREEZE_HOLD = "freeze-hold"
needs_v1_freezer = pytest.mark.skipif(not (CGROUP_ROOT / "freezer").is_dir(), reason="needs the cgroup v1 freezer")

FORK_BOMB = """
import os

def handler(event, context):
    while True:  # every child runs this loop too; pids.max (1024) bounds them
        try:
            os.fork()
        except OSError:
            pass
"""

BACKGROUND_TICKER = """
import os, threading, time

ticks = 0

def tick():
    global ticks
    while True:
        ticks += 1
        with open("/tmp/ticks", "a") as out:
            out.write("x")
        print(f"tick {ticks}", flush=True)
        time.sleep(0.01)

threading.Thread(target=tick, daemon=True).start()

def handler(event, context):
    start, size_start = ticks, os.path.getsize("/tmp/ticks")
    time.sleep(0.2)
    return {"start": start, "end": ticks, "size_start": size_start, "size_end": os.path.getsize("/tmp/ticks")}
"""


def _cgroup_parent(server: RunningServer) -> str:
    """The server's parent group name (server.py: one per data directory)."""
    return "lamina-" + hashlib.sha256(str(server.data_dir.resolve()).encode()).hexdigest()[:12]


def _environment_groups(server: RunningServer) -> list[Path]:
    parent = _cgroup_parent(server)
    return [group for hierarchy in ("memory", "cpu", "pids", "freezer")
            if (CGROUP_ROOT / hierarchy / parent).is_dir()
            for group in (CGROUP_ROOT / hierarchy / parent).iterdir()
            if group.is_dir() and group.name != FREEZE_HOLD]


def _create(client, source: str, **settings: object) -> str:
    name = f"fn-{uuid.uuid4().hex[:12]}"
    client.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                           Code={"ZipFile": zip_files({"app.py": source})}, **settings)
    return name


@pytest.fixture
def server(tmp_path: Path):
    running = start_server(tmp_path / "data")
    yield running
    running.stop()


@needs_v1_freezer
def test_killing_a_fork_bomb_never_stalls_the_api(server: RunningServer) -> None:
    client, prober = client_for(server.endpoint), client_for(server.endpoint)
    bomb = _create(client, FORK_BOMB, MemorySize=256, Timeout=2)
    echo = _create(client, "def handler(event, context):\n    return event\n")
    latencies: list[tuple[float, float]] = []
    most_processes = 0
    stop = threading.Event()

    def probe() -> None:
        nonlocal most_processes
        calls = (lambda: prober.get_function(FunctionName=echo), lambda: prober.list_functions())
        while not stop.is_set():
            started = time.monotonic()
            calls[len(latencies) % 2]()
            latencies.append((started, time.monotonic() - started))
            for group in _environment_groups(server):
                if group.parent.parent.name == "pids":
                    with contextlib.suppress(OSError, ValueError):
                        most_processes = max(most_processes, int((group / "pids.current").read_text()))
            time.sleep(0.02)

    thread = threading.Thread(target=probe)
    thread.start()
    try:
        started = time.monotonic()
        response = client.invoke(FunctionName=bomb)
        answered = time.monotonic()
        payload = json.loads(response["Payload"].read())
        # The environment is killed at its timeout; its teardown runs while the API keeps answering.
        wait_until(lambda: not _environment_groups(server), timeout=10, interval=0.02, what="the cgroups removed")
        gone = time.monotonic()
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(timeout=10)

    during = [latency for at, latency in latencies if at >= started]
    assert len(during) > 50 and most_processes >= 100
    assert max(during) < 0.2, f"API stalled {max(during) * 1000:.0f} ms while the fork bomb was killed"
    assert response.get("FunctionError") == "Unhandled", payload
    assert payload["errorType"] == "Sandbox.Timedout", payload
    assert 1.9 < answered - started < 3.5
    assert _environment_groups(server) == []
    print(f"\nfork bomb killed: cgroup gone {(gone - answered) * 1000:.0f} ms after the timeout's answer; "
          f"API max {max(during) * 1000:.1f} ms over {len(during)} calls; bomb reached {most_processes} processes")
    assert invoke_json(client, echo, {"after": "bomb"}) == {"after": "bomb"}
    second = client.invoke(FunctionName=bomb)
    assert json.loads(second["Payload"].read())["errorType"] == "Sandbox.Timedout"


@needs_v1_freezer
def test_idle_environment_is_frozen_and_continues_after_thaw(server: RunningServer) -> None:
    client = client_for(server.endpoint)
    name = _create(client, BACKGROUND_TICKER)
    first = invoke_json(client, name)
    groups = [group for group in _environment_groups(server) if group.parent.parent.name == "freezer"]
    assert len(groups) == 1
    wait_until(lambda: (groups[0] / "freezer.state").read_text().strip() == "FROZEN", timeout=5, what="the freeze")
    time.sleep(1)  # idle while frozen: the ticker must not run
    response = client.invoke(FunctionName=name, LogType="Tail")
    second = json.loads(response["Payload"].read())
    log = base64.b64decode(response["LogResult"]).decode()

    # Idle for over 1 s at 100 ticks a second: only the ticks before the freeze (a few ms) happened in between.
    assert second["size_start"] - first["size_end"] <= 3, (first, second)
    assert second["start"] - first["end"] <= 3, (first, second)
    # Thawed, the thread goes on where it was.
    assert second["end"] - second["start"] >= 5, second
    ticks = [int(number) for number in re.findall(r"^tick (\d+)$", log, re.MULTILINE)]
    assert len([tick for tick in ticks if tick <= second["start"]]) <= 3, log
    assert any(tick > second["start"] for tick in ticks), log
