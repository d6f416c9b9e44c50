"""Each environment has its own network: a function reaches the outside (through NAT), and not Lamina's API,
the host's services, other environments or another Lamina on the same host. Each test performs the attack
from inside a real function against a real `lamina serve`."""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import pytest

from conftest import PY_RUNTIME, ROLE, client_for, invoke_json, start_server, zip_files
from tests.support.netns import outside_host
from tests.support.polling import wait_until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="network namespaces need root")

PROBE = r'''
import json, os, socket, struct, threading, urllib.request

LISTENERS = []

def _gateway():
    for line in open("/proc/net/route").read().splitlines()[1:]:
        fields = line.split()
        if fields[1] == "00000000":
            return socket.inet_ntoa(struct.pack("<I", int(fields[2], 16)))
    return None

def _own_address():
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("198.18.255.254", 9))
        return probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()

def _connect(target):
    host, port = target.rsplit(":", 1)
    try:
        conn = socket.create_connection((host, int(port)), timeout=3)
    except socket.timeout:
        return "timeout"
    except OSError as error:
        return type(error).__name__
    conn.close()
    return "connected"

def _fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.read(200).decode(errors="replace")
    except Exception as error:
        return "error:" + type(error).__name__

def handler(event, context):
    if event.get("listen"):
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("0.0.0.0", event["listen"]))
        server.listen(16)
        LISTENERS.append(server)
        threading.Thread(target=lambda: [server.accept()[0].sendall(b"secret") for _ in iter(int, 1)],
                         daemon=True).start()
    return {
        "runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"],
        "uid": os.getuid(),
        "gateway": _gateway(),
        "address": _own_address(),
        "connect": {target: _connect(target) for target in event.get("connect", [])},
        "fetch": {url: _fetch(url) for url in event.get("fetch", [])},
        "proc_net_tcp": open("/proc/net/tcp").read(),
    }
'''


def _host_addresses() -> list[str]:
    output = subprocess.run(["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True).stdout
    return [line.split()[3].split("/")[0] for line in output.splitlines() if " lmn" not in line]


def _port(endpoint: str) -> int:
    return int(endpoint.rsplit(":", 1)[1])


def _create(client, code: str = PROBE) -> str:
    name = f"net-{uuid.uuid4().hex[:10]}"
    client.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                           Code={"ZipFile": zip_files({"app.py": code})}, Timeout=30)
    return name


def test_a_function_cannot_reach_the_api_or_the_host(lambda_client, lamina):
    victim = _create(lambda_client)
    attacker = _create(lambda_client)
    invoke_json(lambda_client, victim)
    api_port = _port(lamina.endpoint)
    addresses = _host_addresses()
    view = invoke_json(lambda_client, attacker, {
        "fetch": [f"http://{address}:{api_port}/2015-03-31/functions/{victim}" for address in addresses],
        "connect": [f"{address}:{api_port}" for address in addresses],
    })
    gateway = view["gateway"]
    assert gateway is not None
    again = invoke_json(lambda_client, attacker, {
        "fetch": [f"http://{gateway}:{api_port}/2015-03-31/functions/{victim}"],
        "connect": [f"{gateway}:{api_port}", f"{gateway}:22"],
    })
    # The Runtime API is where AWS puts it, on the environment's own loopback.
    assert view["runtime_api"] == "127.0.0.1:9001"
    for outcome in [*view["fetch"].values(), *again["fetch"].values()]:
        assert outcome.startswith("error:"), outcome
        assert victim not in outcome
    for outcome in [*view["connect"].values(), *again["connect"].values()]:
        assert outcome != "connected"
    # /proc/net shows the environment's own sockets only: not the API's listener, not the host's.
    listening_ports = {int(line.split()[1].split(":")[1], 16) for line in view["proc_net_tcp"].splitlines()[1:]}
    assert api_port not in listening_ports
    assert listening_ports <= {9001} | {int(line.split()[2].split(":")[1], 16)
                                        for line in view["proc_net_tcp"].splitlines()[1:]}
    # The victim is untouched.
    assert lambda_client.get_function(FunctionName=victim)["Configuration"]["FunctionName"] == victim


def test_ports_a_function_binds_are_its_own(lambda_client, lamina):
    listener = _create(lambda_client)
    other = _create(lambda_client)
    bound = invoke_json(lambda_client, listener, {"listen": 8765})
    address = bound["address"]
    assert address is not None and address != bound["gateway"]
    # Not from another function: neither its address nor the Runtime API behind it.
    seen = invoke_json(lambda_client, other, {"connect": [f"{address}:8765", f"{address}:9001"]})
    assert set(seen["connect"].values()) <= {"ConnectionRefusedError", "timeout", "OSError"}
    # Not from the host.
    with pytest.raises(OSError):
        socket.create_connection((address, 8765), timeout=2).close()
    # It does work inside the function's own environment.
    own = invoke_json(lambda_client, listener, {"connect": ["127.0.0.1:8765"]})
    assert own["connect"]["127.0.0.1:8765"] == "connected"


def test_outbound_traffic_reaches_the_outside(lambda_client, lamina):
    name = _create(lambda_client)
    with outside_host() as outside:
        view = invoke_json(lambda_client, name, {"fetch": [outside.url]})
    assert "Directory listing" in view["fetch"][outside.url]


def _serve_tcp(port_holder: list[int], stop: threading.Event) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    port_holder.append(server.getsockname()[1])
    while not stop.is_set():
        try:
            conn, _ = server.accept()
        except socket.timeout:
            continue
        conn.sendall(b"hello from the host\n")
        conn.close()
    server.close()


def test_allow_host_port_opens_exactly_the_named_service(tmp_path):
    ports: list[int] = []
    stop = threading.Event()
    thread = threading.Thread(target=_serve_tcp, args=(ports, stop), daemon=True)
    thread.start()
    wait_until(lambda: ports, timeout=10, interval=0.01, what="the TCP server listening")
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    unlisted_port = closed.getsockname()[1]
    closed.listen(1)
    server = start_server(tmp_path / "data", "--allow-host-port", f"127.0.0.1:{ports[0]}")
    try:
        client = client_for(server.endpoint)
        code = PROBE + r'''
def read_line(event, context):
    conn = socket.create_connection(("127.0.0.1", event["port"]), timeout=3)
    return conn.recv(100).decode()
'''
        name = f"allow-{uuid.uuid4().hex[:8]}"
        client.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.read_line",
                               Code={"ZipFile": zip_files({"app.py": code})})
        assert invoke_json(client, name, {"port": ports[0]}) == "hello from the host\n"
        client.update_function_configuration(FunctionName=name, Handler="app.handler")
        client.get_waiter("function_updated_v2").wait(FunctionName=name)
        view = invoke_json(client, name, {"connect": [f"127.0.0.1:{unlisted_port}", f"127.0.0.1:{_port(server.endpoint)}"]})
        assert set(view["connect"].values()) == {"ConnectionRefusedError"}
    finally:
        server.stop()
        stop.set()
        closed.close()


def test_bad_allow_host_port_is_refused(tmp_path):
    for value in ("nonsense", "127.0.0.1:9001", "127.0.0.1:70000"):
        result = subprocess.run(
            [sys.executable, "-m", "lamina.cli", "serve", "--port", "0", "--data-dir", str(tmp_path / "d"),
             "--allow-host-port", value], capture_output=True, text=True, timeout=30)
        assert result.returncode == 2 and "--allow-host-port" in result.stderr, (value, result.stderr)


def _cgroup_dirs(data_dir: Path) -> set[Path]:
    """The environment cgroups of the server on `data_dir` (its parent group is named after the directory)."""
    parent = Path("/sys/fs/cgroup/memory") / ("lamina-" + hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12])
    return {child for child in parent.iterdir() if child.is_dir()} if parent.is_dir() else set()


def test_two_servers_on_one_host_stay_apart(tmp_path):
    first = start_server(tmp_path / "one")
    second = start_server(tmp_path / "two")
    try:
        client_one, client_two = client_for(first.endpoint), client_for(second.endpoint)
        name_one, name_two = _create(client_one), _create(client_two)
        view_two = invoke_json(client_two, name_two, {"listen": 8766})
        view_one = invoke_json(client_one, name_one, {
            "connect": [f"{view_two['address']}:9001", f"{view_two['address']}:8766", f"{view_two['gateway']}:9001"],
            "fetch": [f"http://{view_two['gateway']}:{_port(second.endpoint)}/2015-03-31/functions/"],
        })
        # Distinct uid ranges and subnets, and nothing of the other server reachable.
        assert view_one["uid"] != view_two["uid"]
        assert view_one["address"].split(".")[:2] != view_two["address"].split(".")[:2]
        assert set(view_one["connect"].values()) <= {"ConnectionRefusedError", "timeout", "OSError"}
        assert all(outcome.startswith("error:") for outcome in view_one["fetch"].values())
        # Both keep serving their own invocations many times over.
        for _ in range(20):
            assert invoke_json(client_one, name_one)["uid"] == view_one["uid"]
            assert invoke_json(client_two, name_two)["uid"] == view_two["uid"]
    finally:
        first.stop()
        second.stop()


def test_a_second_server_on_a_data_dir_in_use_touches_nothing(tmp_path):
    first = start_server(tmp_path / "data")
    try:
        client = client_for(first.endpoint)
        name = _create(client)
        warm_uid = invoke_json(client, name)["uid"]
        groups_before = _cgroup_dirs(first.data_dir)
        assert groups_before
        result = subprocess.run(
            [sys.executable, "-m", "lamina.cli", "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
            capture_output=True, text=True, timeout=30)
        assert result.returncode == 1
        assert "in use by another lamina serve" in result.stderr and str(first.process.pid) in result.stderr
        assert "Traceback" not in result.stderr
        assert _cgroup_dirs(first.data_dir) >= groups_before
        # The live server's warm environment survived: the same environment (same uid) answers.
        assert invoke_json(client, name)["uid"] == warm_uid
        assert client.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name
    finally:
        first.stop()


def test_a_function_cannot_hold_more_than_its_share_of_forwarded_connections(tmp_path):
    """100 connections from one function to an allowed host port: the host sees at most 64 at once."""
    held: list[socket.socket] = []
    ready = threading.Event()
    stop = threading.Event()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(256)
    listener.settimeout(0.2)

    def serve() -> None:
        ready.set()
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except socket.timeout:
                continue
            conn.sendall(b"hi\n")
            held.append(conn)  # never closed while the test runs: the function's side stays connected

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait()
    port = listener.getsockname()[1]
    server = start_server(tmp_path / "data", "--allow-host-port", f"127.0.0.1:{port}")
    try:
        client = client_for(server.endpoint)
        code = r'''
import socket
def handler(event, context):
    conns, answered = [], 0
    for _ in range(event["count"]):
        conn = socket.create_connection(("127.0.0.1", event["port"]), timeout=3)
        conns.append(conn)
    for conn in conns:
        try:
            answered += conn.recv(3) == b"hi\n"
        except OSError:
            pass
    return answered
'''
        name = f"many-{uuid.uuid4().hex[:8]}"
        client.create_function(FunctionName=name, Runtime=PY_RUNTIME, Role=ROLE, Handler="app.handler",
                               Code={"ZipFile": zip_files({"app.py": code})}, Timeout=30)
        answered = invoke_json(client, name, {"count": 100, "port": port})
        assert 0 < answered <= 64
        assert len(held) <= 64
        assert client.get_function(FunctionName=name)["Configuration"]["FunctionName"] == name
    finally:
        server.stop()
        stop.set()
        thread.join(timeout=5)
        for conn in held:
            conn.close()
        listener.close()
