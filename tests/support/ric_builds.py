"""Cached builds of the real AWS runtime interface clients, for end-to-end tests.

Lamina claims AWS's own runtime clients run unchanged on it, so the tests run those
clients rather than look-alikes. Getting them is slow (aws-lambda-ric compiles curl and
aws-lambda-cpp from source), so each build is made once per version, interpreter and
Node ABI under ~/.cache/lamina-tests and reused by every later run. A file lock lets
several pytest workers ask at once: one builds, the others wait and reuse it.

`scripts/test.sh` runs this file as a script before pytest, so tests never pay for a build.
"""
from __future__ import annotations

import fcntl
import functools
import io
import json
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: The Python client: the newest 4.x release at the time the cache entry was built.
AWSLAMBDARIC_REQUIREMENT = "awslambdaric>=4,<5"
#: aws-lambda-ric 4.x declares `engines: node >= 22`; 3.3.0 is the last release for older Node.
NODE_RIC_VERSION = "4.0.2"
NODE_RIC_VERSION_BEFORE_NODE22 = "3.3.0"

_PIP_TIMEOUT_S = 600
_NPM_TIMEOUT_S = 1800
# A fixed timestamp makes zip_dir deterministic, so equal trees give equal CodeSha256.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class BuildError(RuntimeError):
    """A client could not be built; the message carries the tool's output."""


def cache_root() -> Path:
    """Where builds live; outside the repo so fresh clones and `git clean` keep them."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lamina-tests"


def awslambdaric_site(python_version: str = "3.11") -> Path:
    """A directory with awslambdaric and its dependencies, importable by CPython `python_version`.

    Put it on PYTHONPATH (or zip it next to a `bootstrap`) and run
    `python3 -m awslambdaric module.handler`. Wheels are chosen for the requested
    interpreter, not the one running this code, so any 3.x the host lacks still works.
    """
    dest = _awslambdaric_dest(python_version)
    return _cached(dest, lambda tmp: _pip_install_site(tmp, python_version))


@functools.lru_cache(maxsize=None)
def system_python_version(interpreter: str = "/usr/bin/python3") -> str:
    """`major.minor` of the interpreter Lamina's sandbox exposes, to pass to awslambdaric_site.

    The pyenv interpreters are not visible inside the sandbox, so a provided.al2023
    bootstrap must exec this one, and the site's C extension must match its version.
    """
    return _run([interpreter, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], timeout=60).strip()


def node_ric_modules(version: str | None = None) -> Path:
    """A directory holding `node_modules/aws-lambda-ric` from npm, built for the host Node.

    The package is as npm installed it (its own install scripts compile the native
    client), minus `deps/` and `build/`: C sources and build trees only its install
    scripts use (3.3.0's clean-up glob fails under dash and leaves ~150 MB behind).
    Its build-time dependencies (node-gyp & co.) are left out for the same reason.
    `version` defaults to the newest release whose `engines` accepts the host Node.
    """
    version = version or _default_node_ric_version()
    dest = _node_dest(version)
    return _cached(dest, lambda tmp: _npm_install_ric(tmp, version))


def node_ric_entry(modules_dir: Path) -> str:
    """The RIC's start script relative to `modules_dir` (its `bin`), e.g. for a bootstrap."""
    package = modules_dir / "node_modules" / "aws-lambda-ric"
    bin_field = json.loads((package / "package.json").read_text())["bin"]
    script = bin_field if isinstance(bin_field, str) else bin_field["aws-lambda-ric"]
    return (Path("node_modules/aws-lambda-ric") / script).as_posix()


def zip_dir(root: Path, extra_files: dict[str, tuple[bytes, int]] | None = None) -> bytes:
    """Zip `root` (plus `extra_files`: name -> (content, unix mode)) as a deployment package.

    Unix modes are kept so executables stay executable once Lamina unpacks the code;
    symlinks are stored as symlinks, as `zip --symlinks` does. An extra file replaces a
    file of the same name from `root`.
    """
    extra = extra_files or {}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(_tree(root)):
            name = path.relative_to(root).as_posix()
            if name in extra:
                continue
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                _write_entry(archive, name, os.readlink(path).encode(), mode)
            elif stat.S_ISDIR(mode):
                _write_entry(archive, name + "/", b"", mode)
            else:
                _write_entry(archive, name, path.read_bytes(), mode)
        for name, (content, mode) in sorted(extra.items()):
            _write_entry(archive, name, content, mode if stat.S_IFMT(mode) else stat.S_IFREG | mode)
    return buffer.getvalue()


def _tree(root: Path) -> Iterator[Path]:
    """Every entry under `root`, without following symlinked directories."""
    for entry in os.scandir(root):
        path = Path(entry.path)
        yield path
        if entry.is_dir(follow_symlinks=False):
            yield from _tree(path)


def _write_entry(archive: zipfile.ZipFile, name: str, content: bytes, mode: int) -> None:
    info = zipfile.ZipInfo(name, date_time=_ZIP_EPOCH)
    info.create_system = 3  # unix, so readers honour the mode in external_attr
    info.external_attr = (mode & 0xFFFF) << 16
    if stat.S_ISDIR(mode):
        info.external_attr |= 0x10  # MS-DOS directory flag
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, content)


def _machine() -> str:
    return platform.machine().lower()


def _awslambdaric_dest(python_version: str) -> Path:
    tag = "cp" + python_version.replace(".", "")
    return cache_root() / f"awslambdaric-4.x-{tag}-{_machine()}"


def _node_dest(version: str) -> Path:
    return cache_root() / f"aws-lambda-ric-{version}-node{_node_info()['major']}-{_machine()}"


@functools.lru_cache(maxsize=1)
def _node_info() -> dict[str, str]:
    node = shutil.which("node")
    if node is None:
        raise BuildError("node is not on PATH; aws-lambda-ric needs Node.js and npm")
    script = "console.log(JSON.stringify({major: process.versions.node.split('.')[0], execPath: process.execPath}))"
    return json.loads(_run([node, "-e", script], timeout=60))


def _default_node_ric_version() -> str:
    return NODE_RIC_VERSION if int(_node_info()["major"]) >= 22 else NODE_RIC_VERSION_BEFORE_NODE22


@contextmanager
def _locked(dest: Path) -> Iterator[None]:
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.parent / f"{dest.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _cached(dest: Path, build: Callable[[Path], None]) -> Path:
    """Build into a scratch dir and rename it into place, so `dest` exists only when complete."""
    if dest.is_dir():
        return dest
    with _locked(dest):
        if dest.is_dir():
            return dest
        scratch = Path(tempfile.mkdtemp(prefix=f"{dest.name}.building-", dir=dest.parent))
        scratch.chmod(0o755)  # mkdtemp makes it 0700; sandboxed readers may run as another user
        try:
            build(scratch)
            scratch.rename(dest)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    return dest


def _run(cmd: list[str], *, timeout: float, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run quietly; on failure raise with the command's output, which is all a reader needs."""
    try:
        done = subprocess.run(
            cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{' '.join(cmd)} timed out after {timeout:.0f}s") from exc
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-20000:]
        raise BuildError(f"{' '.join(cmd)} exited {done.returncode}:\n{output}")
    return done.stdout


def _pip_install_site(target: Path, python_version: str) -> None:
    machine = _machine()
    # provided.al2023 has glibc 2.34; older pip does not expand manylinux_2_x tags itself.
    platforms = [f"manylinux_2_34_{machine}", f"manylinux_2_28_{machine}", f"manylinux2014_{machine}"]
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
           "--target", str(target), "--only-binary=:all:", "--implementation", "cp",
           "--python-version", python_version]
    for tag in platforms:
        cmd += ["--platform", tag]
    _run([*cmd, AWSLAMBDARIC_REQUIREMENT], timeout=_PIP_TIMEOUT_S)


def _npm_env() -> dict[str, str]:
    env = dict(os.environ, npm_config_ignore_scripts="false", npm_config_update_notifier="false")
    # node-gyp downloads Node's headers unless told where they are; the build host may
    # only reach the npm registry, and a distro/NodeSource Node ships its headers.
    prefix = Path(_node_info()["execPath"]).resolve().parent.parent
    if "npm_config_nodedir" not in env and (prefix / "include" / "node" / "node.h").is_file():
        env["npm_config_nodedir"] = str(prefix)
    return env


def _npm_install_ric(dest: Path, version: str) -> None:
    npm = shutil.which("npm")
    if npm is None:
        raise BuildError("npm is not on PATH; aws-lambda-ric needs Node.js and npm")
    with tempfile.TemporaryDirectory(prefix="lamina-npm-") as work_dir:
        work = Path(work_dir)
        # allowScripts: npm 12 runs a dependency's install scripts only when allowed.
        manifest = {"name": "lamina-ric-build", "private": True, "allowScripts": {"aws-lambda-ric": True}}
        (work / "package.json").write_text(json.dumps(manifest))
        _run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--no-bin-links",
              f"aws-lambda-ric@{version}"], cwd=work, env=_npm_env(), timeout=_NPM_TIMEOUT_S)
        package = work / "node_modules" / "aws-lambda-ric"
        if not any(package.rglob("rapid-client.node")):
            raise BuildError(f"npm installed aws-lambda-ric@{version} but its install scripts built no rapid-client.node")
        shutil.copytree(package, dest / "node_modules" / "aws-lambda-ric", symlinks=True,
                        ignore=lambda directory, _names: ["deps", "build"] if Path(directory) == package else [])


def _prepare_all() -> None:
    """Build whatever is missing, announcing only the slow first-run case."""
    python_version = system_python_version()
    version = _default_node_ric_version()
    if not (_awslambdaric_dest(python_version).is_dir() and _node_dest(version).is_dir()):
        print(f"preparing runtime interface clients in {cache_root()} (first run only; "
              "aws-lambda-ric compiles curl and aws-lambda-cpp, a few minutes)...", file=sys.stderr)
    awslambdaric_site(python_version)
    node_ric_modules(version)


if __name__ == "__main__":
    try:
        _prepare_all()
    except BuildError as error:
        sys.exit(f"ric_builds: {error}")
