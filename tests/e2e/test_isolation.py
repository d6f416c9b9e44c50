"""Isolation claims, tested from inside a function: it sees nothing of the host or of other functions."""
from __future__ import annotations

import json
import uuid

from conftest import PY_RUNTIME, invoke_json, zip_files

from lamina.runtimes.registry import RuntimeCatalog

PROBE = r'''
import json, os

def handler(event, context):
    found = {}
    for path in event.get("paths", []):
        try:
            with open(path, "rb") as handle:
                found[path] = handle.read(64).decode(errors="replace")
        except OSError as error:
            found[path] = type(error).__name__
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
        },
    )
    files = attacker_view["files"]
    assert files["/tmp/secret"] == "FileNotFoundError"
    assert files[str(victim_code)] == "FileNotFoundError"
    assert files[str(lamina.data_dir / "lamina.db")] == "FileNotFoundError"
    assert files["/etc/shadow"] == "FileNotFoundError"
    assert "victim" not in json.dumps(files)
    assert attacker_view["tmp_listing"] == []
    # Own PID namespace: only the sandbox's processes, none of the host's or the server's.
    assert len(attacker_view["pids"]) <= 4
    assert not any("lamina" in line and "serve" in line for line in attacker_view["cmdlines"])
    assert attacker_view["uid"] != victim_view["uid"] and attacker_view["uid"] != 0
    assert attacker_view["task_writable"] is False
    assert "work" not in attacker_view["root_listing"]
    # The victim still works, and its /tmp still holds what it wrote.
    again = invoke_json(lambda_client, victim, {"paths": ["/tmp/secret"]})
    assert again["files"]["/tmp/secret"] == "victim-tmp-secret"


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


def test_no_host_path_or_kernel_detail_is_visible(lambda_client, make_function, lamina):
    code = r'''
import glob, sys
def handler(event, context):
    found = {}
    for path in ["/proc/self/mountinfo", "/proc/self/maps", "/proc/cmdline", "/proc/kallsyms", "/proc/keys",
                 "/proc/timer_list"]:
        try:
            found[path] = open(path, errors="replace").read()
        except OSError as error:
            found[path] = type(error).__name__
    found["executable"] = sys.executable
    found["sys.path"] = " ".join(sys.path)
    return found
'''
    layer_zip = zip_files({"python/layer_mod.py": "X = 1\n"})
    layer = lambda_client.publish_layer_version(LayerName=f"l-{uuid.uuid4().hex[:8]}", Content={"ZipFile": layer_zip})
    # The server's own interpreter, and one from outside /usr (pyenv) where the host has one.
    outside_usr = [f"python{version}" for version, interpreter in RuntimeCatalog.discover().pythons.items()
                   if interpreter.prefix != "/usr"]
    for runtime in sorted({PY_RUNTIME, *outside_usr[:1]}):
        name = make_function(code=code, runtime=runtime, Layers=[layer["LayerVersionArn"]])
        seen = invoke_json(lambda_client, name)
        text = json.dumps(seen)
        for host_path in (str(lamina.data_dir), str(lamina.data_dir.parent), "/work", ".venv", "/root", "site-packages/lamina"):
            assert host_path not in text, (runtime, host_path)
        for masked in ("/proc/cmdline", "/proc/kallsyms", "/proc/keys", "/proc/timer_list"):
            assert seen[masked] in ("", "FileNotFoundError"), masked
