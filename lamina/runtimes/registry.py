"""Which Lambda runtimes this host can run, and how to launch each one in an execution environment.

Managed runtimes use the host's own interpreters (found once at start-up) with Lamina's bootstraps; `provided.*`
runs the function's own `bootstrap`. Interpreters are launched by their real path, never through a shim.
"""
from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

#: Only the bootstraps are bound at /var/runtime, so function code cannot import Lamina modules.
BOOTSTRAPS_DIR = Path(__file__).resolve().parent / "bootstraps"
PYTHON_VERSIONS = ("3.9", "3.10", "3.11", "3.12", "3.13")
PROVIDED_RUNTIMES = ("provided.al2023", "provided.al2")
TASK_ROOT = "/var/task"
RUNTIME_ROOT = "/var/runtime"
LANG_ROOT = "/var/lang"
BASE_PATH = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin"
BASE_LD_LIBRARY_PATH = (
    "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:/var/task/lib:/opt/lib"
)


@dataclass(frozen=True)
class Interpreter:
    version: str
    executable: str  # real path of the binary
    prefix: str


@dataclass(frozen=True)
class RuntimeLaunch:
    """Everything the sandbox needs to start one runtime (paths as seen inside the sandbox)."""

    argv: list[str]
    env: dict[str, str]
    ro_binds: list[tuple[str, str]] = field(default_factory=list)
    masks: list[str] = field(default_factory=list)


class RuntimeUnavailable(Exception):
    """The runtime is valid on AWS but this host cannot run it; the message names what is missing."""


def _python_candidates(version: str) -> list[str]:
    """System interpreters first: distributions build them with PGO/LTO, which cuts a cold start's init by ~20 ms
    against a default source build (pyenv), and they live under /usr, which every sandbox already sees."""
    found = [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    if f"{sys.version_info.major}.{sys.version_info.minor}" == version:
        found.append(os.path.realpath(sys.executable))
    pyenv_root = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    return found + sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)


def _host_package_dirs(interpreter: Interpreter) -> list[str]:
    """Where the interpreter finds installed packages: site-packages, and Debian's dist-packages for /usr builds."""
    version = interpreter.version
    dirs = [f"{interpreter.prefix}/lib/python{version}/site-packages"]
    if interpreter.prefix == "/usr":
        dirs += ["/usr/lib/python3/dist-packages", f"/usr/lib/python{version}/dist-packages",
                 f"/usr/local/lib/python{version}/dist-packages", f"/usr/local/lib/python{version}/site-packages"]
    return dirs


def discover_pythons() -> dict[str, Interpreter]:
    interpreters: dict[str, Interpreter] = {}
    for version in PYTHON_VERSIONS:
        for candidate in _python_candidates(version):
            real = os.path.realpath(candidate)
            if os.path.isfile(real) and os.access(real, os.X_OK):
                prefix = os.path.dirname(os.path.dirname(real))
                interpreters[version] = Interpreter(version, real, prefix)
                break
    return interpreters


def discover_node() -> Interpreter | None:
    node = shutil.which("node")
    if node is None:
        return None
    real = os.path.realpath(node)
    try:
        output = subprocess.run([real, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.match(r"v(\d+)\.", output.strip())
    if match is None:
        return None
    return Interpreter(match.group(1), real, os.path.dirname(os.path.dirname(real)))


def _interpreter_paths(interpreter: Interpreter, sandboxed: bool) -> tuple[str, str, list[tuple[str, str]]]:
    """(prefix, executable, binds) as the sandbox sees them: an interpreter outside /usr is bound at /var/lang,
    where AWS's runtimes keep theirs, so no host path (a pyenv prefix) shows inside."""
    if not sandboxed or interpreter.prefix == "/usr":
        return interpreter.prefix, interpreter.executable, []
    executable = LANG_ROOT + interpreter.executable[len(interpreter.prefix):]
    return LANG_ROOT, executable, [(interpreter.prefix, LANG_ROOT)]


class RuntimeCatalog:
    """Resolves a runtime name to a launch plan; `sandboxed=False` gives host paths for reduced isolation."""

    def __init__(self, pythons: dict[str, Interpreter], node: Interpreter | None) -> None:
        self.pythons = pythons
        self.node = node

    @classmethod
    def discover(cls) -> "RuntimeCatalog":
        return cls(discover_pythons(), discover_node())

    def interpreter_prefixes(self) -> list[Path]:
        """Host directories that environments bind for their interpreter (none for those under /usr)."""
        found = [*self.pythons.values(), *([self.node] if self.node is not None else [])]
        return sorted({Path(interpreter.prefix) for interpreter in found if interpreter.prefix != "/usr"})

    def available(self) -> list[str]:
        names = [f"python{version}" for version in self.pythons]
        if self.node is not None:
            names.append(f"nodejs{self.node.version}.x")
        return names + list(PROVIDED_RUNTIMES)

    def check(self, runtime: str) -> None:
        """Raise RuntimeUnavailable naming what this host lacks for `runtime`."""
        if runtime.startswith("python"):
            version = runtime.removeprefix("python")
            if version not in self.pythons:
                found = ", ".join(sorted(self.pythons)) or "none"
                raise RuntimeUnavailable(
                    f"The runtime {runtime} is not available on this Lamina host: no Python {version} interpreter "
                    f"was found (found: {found})."
                )
        elif runtime.startswith("nodejs"):
            wanted = runtime.removeprefix("nodejs").removesuffix(".x")
            if self.node is None:
                raise RuntimeUnavailable(
                    f"The runtime {runtime} is not available on this Lamina host: Node.js was not found on PATH."
                )
            if self.node.version != wanted:
                raise RuntimeUnavailable(
                    f"The runtime {runtime} is not available on this Lamina host: Node.js {wanted} was not found "
                    f"(found Node.js {self.node.version} at {self.node.executable})."
                )
        elif runtime not in PROVIDED_RUNTIMES:
            raise RuntimeUnavailable(f"The runtime {runtime} is not available on this Lamina host.")

    def launch(self, runtime: str, *, task_root: str, opt_root: str, sandboxed: bool) -> RuntimeLaunch:
        self.check(runtime)
        runtime_root = RUNTIME_ROOT if sandboxed else str(BOOTSTRAPS_DIR)
        if runtime.startswith("python"):
            return self._python(self.pythons[runtime.removeprefix("python")], runtime, runtime_root, sandboxed)
        if runtime.startswith("nodejs"):
            assert self.node is not None
            return self._node(self.node, runtime, runtime_root, task_root, opt_root, sandboxed)
        return self._provided(task_root)

    @staticmethod
    def _python(interpreter: Interpreter, runtime: str, runtime_root: str, sandboxed: bool) -> RuntimeLaunch:
        prefix, executable, binds = _interpreter_paths(interpreter, sandboxed)
        inside = Interpreter(interpreter.version, executable, prefix)
        return RuntimeLaunch(
            argv=[executable, f"{runtime_root}/python/bootstrap.py"],
            env={"AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}", "PYTHONUNBUFFERED": "1"},
            ro_binds=binds,
            # The host's packages would leak into functions (with their .pth start-up cost), as AWS's runtime has none.
            masks=[inside_dir for host_dir, inside_dir in zip(_host_package_dirs(interpreter), _host_package_dirs(inside))
                   if os.path.isdir(host_dir)] if sandboxed else [],
        )

    @staticmethod
    def _node(
        node: Interpreter, runtime: str, runtime_root: str, task_root: str, opt_root: str, sandboxed: bool
    ) -> RuntimeLaunch:
        _prefix, executable, binds = _interpreter_paths(node, sandboxed)
        node_path = ":".join(
            [
                f"{opt_root}/nodejs/node{node.version}/node_modules",
                f"{opt_root}/nodejs/node_modules",
                f"{runtime_root}/node_modules",
                runtime_root,
                task_root,
            ]
        )
        return RuntimeLaunch(
            argv=[executable, f"{runtime_root}/nodejs/bootstrap.mjs"],
            env={"AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}", "NODE_PATH": node_path},
            ro_binds=binds,
        )

    @staticmethod
    def _provided(task_root: str) -> RuntimeLaunch:
        """The function's own `bootstrap`; the environment checks it exists before starting (Runtime.InvalidEntrypoint)."""
        return RuntimeLaunch(argv=[f"{task_root}/bootstrap"], env={})
