"""What isolation this host can give, found by trying it, and what it cannot (said plainly).

Nothing is cached: the server calls this once at start and passes the result around.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from lamina.sandbox.bwrap import NAMESPACE_ARGS
from lamina.sandbox.cgroup_discovery import open_cgroup_driver
from lamina.sandbox.cgroups import CONTROLLERS, CgroupDriver, CgroupUnavailable

#: bubblewrap gained `--size` for tmpfs mounts in 0.8.0.
BWRAP_SIZE_VERSION = (0, 8)
PROBE_TIMEOUT_S = 5.0

_NO_NAMESPACES = ("functions run without mount, PID, IPC and UTS namespaces: they see the host's "
                  "filesystem, its /tmp (not size-limited) and the server's processes")
_CONTROLLER_LOSS = {
    "cpu": "no CPU share or quota: functions get as much CPU as the host has",
    "pids": "no process-count limit (pids.max) for functions",
}


@dataclass(frozen=True)
class HostCapabilities:
    bwrap_path: str | None          # None -> no namespaces (reduced isolation)
    setpriv_path: str | None        # drops to a per-environment uid inside the sandbox
    is_root: bool                   # root can mount a sized tmpfs and switch uids
    cgroups: CgroupDriver | None    # None -> no memory/cpu/pids limits
    missing: tuple[str, ...]        # one line per isolation feature NOT available, and its consequence
    bwrap_tmpfs_size: bool = False  # bwrap sizes its own /tmp tmpfs (`--size`, 0.8+)
    #: Host directories every sandbox binds (bootstraps, interpreters) -> views of them that show no host path
    #: (sandbox/views.py), bound instead.
    neutral_paths: Mapping[str, str] = field(default_factory=dict)


def detect_host_capabilities(scratch_root: Path, *, cgroup_parent: str = "lamina") -> HostCapabilities:
    """Probe bwrap (by running a sandbox), setpriv, root and cgroups.

    `cgroup_parent` names the parent group; give a second server (or a test run) its own.
    """
    scratch_root.mkdir(mode=0o700, parents=True, exist_ok=True)
    missing: list[str] = []
    is_root = os.geteuid() == 0
    bwrap_path, sized = _probe_bwrap(missing)
    setpriv_path = shutil.which("setpriv") if is_root else None
    if not is_root:
        missing.append(f"server is not root (uid {os.geteuid()}): every function runs as this same uid, "
                       "so functions can read each other's files and the server's")
    elif setpriv_path is None:
        missing.append("setpriv (util-linux) not found: functions run as root instead of a per-environment uid")
    if bwrap_path is not None and not sized and not is_root:
        missing.append("bubblewrap older than 0.8 (no --size) and server not root: "
                       "/tmp is not limited to EphemeralStorage")
    try:
        cgroups: CgroupDriver | None = open_cgroup_driver(cgroup_parent)
    except CgroupUnavailable as error:
        cgroups = None
        missing.append(f"no usable cgroups ({error}): MemorySize, CPU share and process count are not enforced")
    else:
        for controller in CONTROLLERS:
            if controller not in cgroups.controllers:
                missing.append(f"cgroup controller '{controller}' unavailable: {_CONTROLLER_LOSS[controller]}")
        if not cgroups.freezes:
            missing.append("no cgroup freezer: functions' background threads and processes keep running (and "
                           "logging) between invocations, and a kill can race a fork bomb")
    return HostCapabilities(bwrap_path, setpriv_path, is_root, cgroups, tuple(missing), sized)


def _probe_bwrap(missing: list[str]) -> tuple[str | None, bool]:
    """(bwrap path, whether it sizes tmpfs), or (None, False) with the reason added to `missing`."""
    path = shutil.which("bwrap")
    if path is None:
        missing.append(f"bubblewrap (bwrap) not found: {_NO_NAMESPACES}")
        return None, False
    try:
        version = subprocess.run([path, "--version"], capture_output=True, text=True,
                                 timeout=PROBE_TIMEOUT_S, check=False).stdout
        numbers = re.search(r"(\d+)\.(\d+)", version)
        sized = numbers is not None and (int(numbers[1]), int(numbers[2])) >= BWRAP_SIZE_VERSION
        size_args = ["--size", "65536"] if sized else []
        probe = subprocess.run(
            [path, "--ro-bind", "/", "/", *NAMESPACE_ARGS, "--proc", "/proc", "--dev", "/dev",
             *size_args, "--tmpfs", "/tmp", "--", path, "--version"],
            capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        missing.append(f"bubblewrap at {path} cannot run ({error}): {_NO_NAMESPACES}")
        return None, False
    if probe.returncode != 0:
        reason = probe.stderr.strip().splitlines()[-1:] or [f"exit status {probe.returncode}"]
        missing.append(f"bubblewrap cannot create a sandbox ({reason[0]}): {_NO_NAMESPACES}")
        return None, False
    return path, sized
