"""Isolation claims, tested from inside a function: it sees nothing of the host or of other functions."""
from __future__ import annotations

import json

from conftest import invoke_json

PROBE = r'''
import json, os, socket

def handler(event, context):
    found = {}
    for path in event.get("paths", []):
        try:
            with open(path, "rb") as handle:
                found[path] = handle.read(64).decode(errors="replace")
        except OSError as error:
            found[path] = type(error).__name__
    runtime_api = {}
    for port in event.get("ports", []):
        outcome = "refused"
        try:
            conn = socket.create_connection(("127.0.0.1", port), timeout=2)
            conn.settimeout(2)
            conn.sendall(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: x\r\n\r\n")
            data = conn.recv(4096)
            outcome = "closed" if not data else "answered:" + data.decode(errors="replace")[:80]
        except socket.timeout:
            outcome = "hung"
        except (ConnectionResetError, ConnectionRefusedError, BrokenPipeError) as error:
            outcome = type(error).__name__
        runtime_api[str(port)] = outcome
    pids = [p for p in os.listdir("/proc") if p.isdigit()]
    cmdlines = []
    for pid in pids:
        try:
            cmdlines.append(open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode())
        except OSError:
            pass
    secret = event.get("write_secret")
    if secret:
        with open("/tmp/secret", "w") as handle:
            handle.write(secret)
    return {
        "files": found,
        "runtime_api": runtime_api,
        "own_runtime_api": os.environ["AWS_LAMBDA_RUNTIME_API"],
        "pids": pids,
        "cmdlines": cmdlines,
        "root_listing": sorted(os.listdir("/")),
        "tmp_listing": sorted(os.listdir("/tmp")),
        "uid": os.getuid(),
        "task_writable": os.access("/var/task", os.W_OK),
    }
'''


def test_functions_cannot_see_each_other_or_the_host(lambda_client, make_function, lamina):
    victim = make_function(code=PROBE + "\nSECRET_IN_CODE = 'victim-code-secret'\n")
    attacker = make_function(code=PROBE)
    victim_view = invoke_json(lambda_client, victim, {"write_secret": "victim-tmp-secret"})
    victim_port = int(victim_view["own_runtime_api"].rsplit(":", 1)[1])
    code_trees = lamina.data_dir / "code" / "trees"
    victim_code = next(path for path in code_trees.glob("*/app.py") if "victim-code-secret" in path.read_text())
    attacker_view = invoke_json(
        lambda_client,
        attacker,
        {
            "paths": [
                "/tmp/secret",
                str(victim_code),
                str(lamina.data_dir / "lamina.db"),
                "/etc/shadow",
                "/proc/1/environ",
            ],
            "ports": [victim_port],
        },
    )
    files = attacker_view["files"]
    assert files["/tmp/secret"] == "FileNotFoundError"
    assert files[str(victim_code)] == "FileNotFoundError"
    assert files[str(lamina.data_dir / "lamina.db")] == "FileNotFoundError"
    assert files["/etc/shadow"] == "FileNotFoundError"
    assert "victim" not in json.dumps(files)
    assert attacker_view["tmp_listing"] == []
    # The victim's Runtime API refuses the attacker outright: no event can be read or answered.
    assert attacker_view["runtime_api"][str(victim_port)] in ("closed", "ConnectionResetError", "BrokenPipeError")
    # Own PID namespace: only the sandbox's processes, none of the host's or the server's.
    assert len(attacker_view["pids"]) <= 4
    assert not any("lamina" in line and "serve" in line for line in attacker_view["cmdlines"])
    assert attacker_view["uid"] != victim_view["uid"] and attacker_view["uid"] != 0
    assert attacker_view["task_writable"] is False
    assert "work" not in attacker_view["root_listing"]
    # The victim still works, and its /tmp still holds what it wrote.
    again = invoke_json(lambda_client, victim, {"paths": ["/tmp/secret"]})
    assert again["files"]["/tmp/secret"] == "victim-tmp-secret"


def test_outbound_network_works(lambda_client, make_function, lamina):
    code = r'''
import urllib.request
def handler(event, context):
    with urllib.request.urlopen(event["url"], timeout=5) as response:
        return response.status
'''
    name = make_function(code=code)
    assert invoke_json(lambda_client, name, {"url": f"{lamina.endpoint}/2016-08-19/account-settings"}) == 200


def test_tmp_is_limited_to_ephemeral_storage(lambda_client, make_function):
    code = r'''
def handler(event, context):
    written = 0
    try:
        with open("/tmp/fill", "wb") as handle:
            for _ in range(2048):
                handle.write(b"x" * (1024 * 1024))
                written += 1
    except OSError as error:
        return {"written_mb": written, "error": error.strerror}
    return {"written_mb": written, "error": None}
'''
    # /tmp is a tmpfs, whose pages count toward the memory limit: leave room above the 512 MB of /tmp.
    name = make_function(code=code, MemorySize=1024, EphemeralStorage={"Size": 512})
    result = invoke_json(lambda_client, name)
    assert result["error"] is not None
    assert 400 <= result["written_mb"] <= 512
