"""How execution environments get their sandbox: a launcher spawns one from a SandboxSpec and returns a handle.

Today's launcher is bubblewrap (process.py); a zygote launcher (fork from a pre-initialised interpreter) or a
microVM launcher implements the same two protocols and slots in without the environment's lifecycle changing.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from lamina.sandbox.host import HostCapabilities
from lamina.sandbox.process import SandboxProcess, SandboxSpec


class SandboxHandle(Protocol):
    """A running sandbox as its environment drives it."""

    pid: int
    #: The runtime's combined stdout/stderr (non-blocking) and a descriptor readable once the sandbox exited.
    output_fd: int
    exit_fd: int

    def poll(self) -> int | None:
        """The exit status once it exited (negative: killed by that signal), else None."""

    def peak_memory_mb(self) -> int | None: ...

    def apply_cpu_limit(self) -> None:
        """Start capping CPU at the memory-proportional share (AWS lets init burst)."""

    def freeze(self) -> None: ...

    def thaw(self) -> None: ...

    def try_destroy(self) -> bool:
        """One non-blocking step of the teardown; True once everything is gone (the teardown thread calls it)."""


class SandboxLauncher(Protocol):
    #: Whether sandboxes see Lamina's fixed paths (/var/task, /var/runtime, /opt) rather than host paths.
    sandboxed: bool

    def spawn(self, spec: SandboxSpec) -> SandboxHandle: ...


class BubblewrapLauncher:
    """Sandboxes as bubblewrap processes in their own namespaces and cgroup (or plain processes, reduced)."""

    def __init__(self, caps: HostCapabilities, scratch_root: Path) -> None:
        self._caps = caps
        self._scratch_root = scratch_root
        self.sandboxed = caps.bwrap_path is not None

    def spawn(self, spec: SandboxSpec) -> SandboxHandle:
        return SandboxProcess.spawn(spec, self._caps, self._scratch_root)
