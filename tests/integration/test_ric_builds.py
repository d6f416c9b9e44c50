"""The test-support builds of AWS's runtime clients really serve an invocation, and the CI entry fails loudly."""
from __future__ import annotations

import http.server
import json
import os
import queue
import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.support.ric_builds import (
    awslambdaric_site,
    node_ric_entry,
    node_ric_modules,
    system_python_version,
    zip_dir,
)

REPO = Path(__file__).resolve().parents[2]
EVENT = {"hello": "world"}
FUNCTION_ARN = "arn:aws:lambda:us-east-1:000000000000:function:ric-smoke"


@contextmanager
def runtime_api_serving_one_event() -> Iterator[tuple[str, queue.Queue[tuple[str, bytes]]]]:
    """A minimal Runtime API: one event on the first /next, later /next calls hang like a frozen sandbox."""
    posts: queue.Queue[tuple[str, bytes]] = queue.Queue()
    served = threading.Event()
    release = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if served.is_set():
                release.wait(30)
                return
            served.set()
            body = json.dumps(EVENT).encode()
            self.send_response(200)
            self.send_header("Lambda-Runtime-Aws-Request-Id", "req-1")
            self.send_header("Lambda-Runtime-Deadline-Ms", "9999999999999")
            self.send_header("Lambda-Runtime-Invoked-Function-Arn", FUNCTION_ARN)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            posts.put((self.path, self.rfile.read(int(self.headers.get("Content-Length", "0")))))
            self.send_response(202)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", posts
    finally:
        release.set()
        server.shutdown()
        server.server_close()


def unzip(archive: bytes, dest: Path) -> Path:
    """Unpack with Info-ZIP, which applies the archive's unix modes (zipfile.extractall would not)."""
    dest.mkdir()
    (dest.parent / "code.zip").write_bytes(archive)
    subprocess.run(["unzip", "-q", str(dest.parent / "code.zip"), "-d", str(dest)], check=True)
    return dest


def invoke_once(task: Path, command: list[str]) -> tuple[str, dict[str, object]]:
    """Run a runtime client against the mock Runtime API and return what it posted back."""
    with runtime_api_serving_one_event() as (address, posts):
        env = {
            "PATH": "/usr/bin:/bin",
            "LAMBDA_TASK_ROOT": str(task),
            "_HANDLER": "app.handler",
            "AWS_LAMBDA_RUNTIME_API": address,
            "AWS_LAMBDA_FUNCTION_NAME": "ric-smoke",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
            "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/ric-smoke",
            "AWS_LAMBDA_LOG_STREAM_NAME": "smoke",
        }
        process = subprocess.Popen(command, cwd=task, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            path, body = posts.get(timeout=20)
        except queue.Empty:
            process.kill()
            pytest.fail(f"runtime client posted nothing:\n{process.communicate()[0].decode(errors='replace')}")
        finally:
            process.kill()
            process.wait()
    return path, json.loads(body)


def test_zip_dir_keeps_modes_symlinks_and_extra_files(tmp_path: Path) -> None:
    root = tmp_path / "src"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "tool").write_text("#!/bin/sh\necho hi\n")
    (root / "pkg" / "tool").chmod(0o755)
    (root / "pkg" / "data.txt").write_text("data")
    (root / "pkg" / "data.txt").chmod(0o600)
    (root / "link").symlink_to("pkg/data.txt")
    (root / "replaced.txt").write_text("from the tree")
    extra = {"bootstrap": (b"#!/bin/sh\nexit 0\n", 0o755), "replaced.txt": (b"from extra", 0o644)}

    archive = zip_dir(root, extra)
    out = unzip(archive, tmp_path / "out")

    assert archive == zip_dir(root, extra), "equal trees must give equal bytes (stable CodeSha256)"
    assert os.access(out / "pkg" / "tool", os.X_OK) and os.access(out / "bootstrap", os.X_OK)
    assert (out / "pkg" / "data.txt").stat().st_mode & 0o777 == 0o600
    assert os.readlink(out / "link") == "pkg/data.txt"
    assert (out / "replaced.txt").read_text() == "from extra"
    assert subprocess.run([str(out / "pkg" / "tool")], capture_output=True, text=True).stdout == "hi\n"


def test_awslambdaric_site_serves_an_invocation_from_a_provided_bootstrap(tmp_path: Path) -> None:
    site = awslambdaric_site(system_python_version())
    bootstrap = b'#!/bin/sh\nexport PYTHONPATH="$LAMBDA_TASK_ROOT"\nexec /usr/bin/python3 -m awslambdaric "$_HANDLER"\n'
    handler = b"def handler(event, context):\n    return {'event': event, 'arn': context.invoked_function_arn}\n"
    task = unzip(zip_dir(site, {"bootstrap": (bootstrap, 0o755), "app.py": (handler, 0o644)}), tmp_path / "task")

    path, result = invoke_once(task, [str(task / "bootstrap")])

    assert path == "/2018-06-01/runtime/invocation/req-1/response"
    assert result == {"event": EVENT, "arn": FUNCTION_ARN}


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_node_ric_modules_serve_an_invocation(tmp_path: Path) -> None:
    modules = node_ric_modules()
    handler = b"export const handler = async (event, context) => ({ event, arn: context.invokedFunctionArn });\n"
    task = unzip(zip_dir(modules, {"app.mjs": (handler, 0o644)}), tmp_path / "task")

    path, result = invoke_once(task, ["node", str(task / node_ric_entry(modules)), "app.handler"])

    assert path == "/2018-06-01/runtime/invocation/req-1/response"
    assert result == {"event": EVENT, "arn": FUNCTION_ARN}


@pytest.mark.parametrize(
    ("test_source", "expected_status"),
    [(None, 5), ("def test_fails():\n    assert False\n", 1)],
    ids=["no-tests-collected", "failing-test"],
)
def test_ci_entry_fails_on_empty_or_failing_runs(tmp_path: Path, test_source: str | None, expected_status: int) -> None:
    if test_source is not None:
        (tmp_path / "test_sample.py").write_text(test_source)

    done = subprocess.run(["bash", str(REPO / ".ci" / "run"), str(tmp_path)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=120)

    assert done.returncode == expected_status, done.stdout + done.stderr
    assert ("collected no tests" in done.stderr) == (expected_status == 5)
