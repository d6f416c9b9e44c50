"""Lamina's own bootstraps as their tests start them, against the fake Runtime API, and the function code they run.

Where the runtime contract is the same for both languages, the samples define the same handler under the same name
(`app.echo`, `app.fail`, `pkg/sub/mod.fn`, a missing `nomod`, a `broken` module...), so one test can drive either
runtime (tests/unit/test_runtime_contract.py); what only one language has (Python's Decimal encoding, Node's
callbacks) sits beside them under names of its own, for test_python_bootstrap.py and test_node_bootstrap.py.

A test module imports the fixtures `api`, `task_root` and `start` from here and provides `runtime` (a `Bootstrap`)
itself, as a fixture or by parametrizing it.
"""
from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest

from tests.support.fake_runtime_api import FakeRuntimeApi, RuntimeProcess

BOOTSTRAPS = Path(__file__).resolve().parents[2] / "lamina" / "runtimes" / "bootstraps"
#: The timestamp both runtimes put on their log lines.
TIMESTAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

PYTHON_APP = '''
import logging, os, sys
from decimal import Decimal

# -- the handlers the runtime-contract suite calls on every runtime --
def echo(event, context):
    return {"echo": event}

def nothing(event, context):
    return None

def unserialisable(event, context):
    return {1, 2}

def fail(event, context):
    def inner():
        raise ValueError("bad thing")
    inner()

def fields(event, context):
    return {
        "aws_request_id": context.aws_request_id,
        "function_name": context.function_name,
        "function_version": context.function_version,
        "invoked_function_arn": context.invoked_function_arn,
        "memory_limit_in_mb": context.memory_limit_in_mb,
        "log_group_name": context.log_group_name,
        "log_stream_name": context.log_stream_name,
        "remaining": context.get_remaining_time_in_millis(),
        "trace": os.environ.get("_X_AMZN_TRACE_ID"),
    }

# -- Python only --
def raw(event, context):
    return b"\\x00raw"

def numbers(event, context):
    return {"d": Decimal("1.10"), "big": Decimal("12345678901234567890.5"), "b": b"bytes"}

def extras(event, context):
    cc = context.client_context
    return {
        "identity": [context.identity.cognito_identity_id, context.identity.cognito_identity_pool_id],
        "client_context": None if cc is None else {
            "custom": cc.custom, "env": cc.env,
            "client": None if cc.client is None else [cc.client.installation_id, cc.client.app_title],
        },
        "w3c": context.w3c(),
    }

def chatty(event, context):
    print("printed", event["n"])
    logging.warning("warned %s", event["n"])
    logging.info("hidden unless the level allows it")
    context.log("via context\\n")
    return event["n"]

def paths(event, context):
    return sys.path

def kind(event, context):
    return [type(event).__name__, event.decode() if isinstance(event, bytes) else event]
'''

#: A module that does not compile, and the same message Python gives for it (its wording differs between versions).
PYTHON_SYNTAX_ERROR = "def handler(event, context):\n    x = = 1\n"

PYTHON_FILES = {
    "app.py": PYTHON_APP,
    "pkg/__init__.py": "",
    "pkg/sub/__init__.py": "",
    "pkg/sub/mod.py": "def fn(event, context):\n    return ['nested', event]\n",
    "broken.py": PYTHON_SYNTAX_ERROR,
    "imports.py": "import gone\n",
}

NODE_APP = """
// -- the handlers the runtime-contract suite calls on every runtime --
export const echo = async (event) => ({ echo: event });
export const nothing = async () => undefined;
export const unserialisable = async () => { const a = {}; a.self = a; return a; };
export const fail = async () => {
  throw new TypeError("bad thing");
};
export const fields = async (event, context) => ({
  aws_request_id: context.awsRequestId,
  function_name: context.functionName,
  function_version: context.functionVersion,
  invoked_function_arn: context.invokedFunctionArn,
  memory_limit_in_mb: context.memoryLimitInMB,
  log_group_name: context.logGroupName,
  log_stream_name: context.logStreamName,
  remaining: context.getRemainingTimeInMillis(),
  trace: process.env._X_AMZN_TRACE_ID ?? null,
});

// -- Node.js only --
export const context = async (event, context) => {
  console.log("hello", event);
  return { event, context: JSON.parse(JSON.stringify(context)) };
};
export const chatty = async (event) => {
  console.log("multi\\nline", { n: event.n });
  console.info("info");
  console.warn("warn");
  console.error("error");
  console.debug("debug");
  return event.n;
};
"""

NODE_FILES = {
    "app.mjs": NODE_APP,
    "pkg/sub/mod.js": "exports.fn = async (event) => ['nested', event];\n",
    "broken.js": "const x = ;\n",
    "cb.js": """
exports.waits = (event, context, callback) => {
  setTimeout(() => console.log("timer fired"), 30);
  callback(null, { waited: event });
};
exports.early = (event, context, callback) => {
  context.callbackWaitsForEmptyEventLoop = false;
  setTimeout(() => console.log("timer fired"), 1000);
  callback(null, "early");
};
exports.succeed = (event, context) => context.succeed({ succeeded: event });
exports.failWith = (event, context) => context.fail(event === "nothing" ? undefined : new Error("failed"));
exports.done = (event, context) => context.done(null, "done");
exports.stringError = (event, context, callback) => callback("string error");
exports.sync = () => 42;
exports.twice = async (event, context) => { context.succeed("first"); return "second"; };
exports.uncaught = () => { setTimeout(() => { throw new Error("later"); }, 5); };
exports.rejects = () => { Promise.reject(new Error("nope")); };
exports.nested = { deeper: { fn: async (event) => ["nested", event] } };
""",
    "lib/deep.cjs": "module.exports.handler = async (event) => ['cjs', event];\n",
    "esm/package.json": '{"type": "module"}',
    "esm/app.js": "export const handler = async (event) => ['esm-js', event];\n",
    "notfn.js": "exports.value = 5;\n",
}


@dataclass(frozen=True)
class Bootstrap:
    """One of Lamina's bootstraps: how to start it, the sample code it runs, and what differs in how it behaves."""

    name: str
    script: Path
    #: The interpreter that runs `script`; None when the host has none (its tests are skipped).
    interpreter: str | None
    files: Mapping[str, str]
    #: The runtime's exit status after it reported an init error.
    init_error_exit: int

    def argv(self, interpreter: str | None = None) -> list[str]:
        return [interpreter or self.interpreter or self.name, str(self.script)]

    def line(self, path: str, code: str) -> int:
        """Line number of `code` in the sample file `path`, so traceback assertions follow edits to the samples."""
        return [line.strip() for line in self.files[path].splitlines()].index(code) + 1

    def param(self, *values: object, id: str | None = None) -> object:
        """A `pytest.param` of this runtime (and `values`), skipped when the host lacks the interpreter."""
        missing = pytest.mark.skipif(self.interpreter is None, reason=f"{self.name} is not installed")
        return pytest.param(self, *values, id=id or self.name, marks=missing)


PYTHON = Bootstrap("python", BOOTSTRAPS / "python" / "bootstrap.py", os.path.realpath(sys.executable), PYTHON_FILES, 1)
NODE = Bootstrap("node", BOOTSTRAPS / "nodejs" / "bootstrap.mjs", shutil.which("node"), NODE_FILES, 129)


@pytest.fixture
def api() -> Iterator[FakeRuntimeApi]:
    with FakeRuntimeApi() as fake:
        yield fake


@pytest.fixture
def task_root(runtime: Bootstrap, tmp_path: Path) -> Path:
    """The function's code directory (/var/task), holding the runtime's samples."""
    for name, text in runtime.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


@pytest.fixture
def start(runtime: Bootstrap, api: FakeRuntimeApi, task_root: Path) -> Iterator[Callable[..., RuntimeProcess]]:
    """`start(handler, env=None, interpreter=None)` runs the bootstrap against `api`; stopped after the test."""
    started: list[RuntimeProcess] = []

    def run(handler: str, env: dict[str, str] | None = None, interpreter: str | None = None) -> RuntimeProcess:
        process = RuntimeProcess(runtime.argv(interpreter), api, task_root, handler, env)
        started.append(process)
        return process

    yield run
    for process in started:
        process.stop()
