"""Memory, CPU and process-count limits for execution environments, and their freezer: what cgroup v1 and v2 share.

Every environment gets one group named after it under a parent group (`lamina`), so a
restarted server can find and remove what a crashed one left behind. The freezer stops an
idle environment between invocations (as AWS does) and makes a kill race-free against fork.

This module holds what the rest of Lamina programs against (`Cgroup`, `CgroupDriver`, `ResourceLimits`, the
constants) and the kill and teardown every version shares; each version's files live in `cgroup_v1.py` and
`cgroup_v2.py`, and `cgroup_discovery.py` picks the version the host mounts.
"""
from __future__ import annotations

import errno
import logging
import os
import signal
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

MIB = 1024 * 1024
#: AWS gives one vCPU per 1,769 MB of memory.
VCPU_MEMORY_MB = 1769
#: A short CFS period keeps throttling stalls short (latency jitter); 20 ms rather than
#: 10 ms so that 128 MB (0.072 vCPU) still gets more than the kernel's 1 ms minimum quota.
CPU_PERIOD_US = 20_000
MIN_CPU_QUOTA_US = 1_000
CONTROLLERS = ("memory", "cpu", "pids")
#: The v1 hierarchy that freezes groups; used alongside the limits, never as one.
FREEZER = "freezer"
#: An empty v1 group kept frozen for the server's life. The kernel enables its freezer fast path (a static key,
#: patched into the kernel's text) while any group is frozen: without this one, every freeze or thaw of an
#: environment while no other is frozen flips it, which costs 70-90 us instead of 3-9 us.
FREEZE_HOLD = "freeze-hold"
#: How long destroy() retries before it leaves a group for remove_stale().
DESTROY_TIMEOUT_S = 2.0
#: How long a kill waits for the group to report frozen before it signals anyway (a task in uninterruptible sleep
#: can hold a v1 group in FREEZING; whatever survives is killed by the next attempt).
FREEZE_WAIT_S = 0.1
#: Without a freezer, signalling members repeats for children forked meanwhile; pids.max bounds how many appear.
UNFROZEN_KILL_PASSES = 100


class CgroupUnavailable(Exception):
    """No usable hierarchy: the message says why, for the server's start-up report."""


@dataclass(frozen=True)
class ResourceLimits:
    memory_mb: int
    cpu_fraction: float
    pids_max: int = 1024

    @classmethod
    def for_memory(cls, memory_mb: int, pids_max: int = 1024) -> ResourceLimits:
        """AWS's sizing: CPU is proportional to memory."""
        return cls(memory_mb, memory_mb / VCPU_MEMORY_MB, pids_max)

    @property
    def memory_bytes(self) -> int:
        return self.memory_mb * MIB

    @property
    def cpu_quota_us(self) -> int:
        return max(MIN_CPU_QUOTA_US, round(self.cpu_fraction * CPU_PERIOD_US))

    @property
    def cpu_shares(self) -> int:
        """v1 shares: 1024 is one full CPU."""
        return max(2, round(1024 * self.cpu_fraction))

    @property
    def cpu_weight(self) -> int:
        """v2 weight: 100 is one full CPU."""
        return min(10_000, max(1, round(100 * self.cpu_fraction)))


def write_value(path: Path, value: str | int) -> None:
    """One write(2) per value: cgroupfs rejects values split across writes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        os.write(fd, str(value).encode())
    finally:
        os.close(fd)


def check_group_name(name: str) -> None:
    """Refuses a name that is not one directory entry (a parent or an environment's group)."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"invalid cgroup name {name!r}")


def _rmdir(path: Path) -> None:
    try:
        path.rmdir()
    except FileNotFoundError:
        pass


class FreezerSwitch:
    """A group's freeze control file, kept open: freezing and thawing between invocations are one pwrite(2) each
    (opening the file every time would cost more than the write)."""

    def __init__(self, path: Path, frozen: bytes, thawed: bytes) -> None:
        self.path = path
        self._values = {True: frozen, False: thawed}
        self._fd: int | None = None

    def set(self, frozen: bool) -> bool:
        """Best effort (False if it failed): an environment that cannot be frozen just keeps running."""
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_CLOEXEC)
            os.pwrite(self._fd, self._values[frozen], 0)
        except OSError as error:
            log.debug("cannot %s %s: %s", "freeze" if frozen else "thaw", self.path, error)
            return False
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Cgroup(ABC):
    """One environment's group (one directory per v1 hierarchy, a single one on v2)."""

    def __init__(self, dirs: tuple[Path, ...], limits: ResourceLimits | None, freezer: FreezerSwitch | None) -> None:
        self.dirs = dirs
        self.limits = limits
        self.procs_paths: tuple[str, ...] = tuple(str(path / "cgroup.procs") for path in dirs)
        self.freezer = freezer
        self._destroyed = False
        self._peak_fd: int | None = None

    @abstractmethod
    def apply_cpu_limit(self) -> None:
        """Cap CPU time at the limits' fraction of one CPU (only after init: AWS bursts init)."""

    @abstractmethod
    def peak_memory_bytes(self) -> int | None:
        """Highest memory use the kernel recorded for the group, if it records one."""

    @abstractmethod
    def is_frozen(self) -> bool:
        """Whether every member has stopped (a freeze takes effect asynchronously)."""

    @abstractmethod
    def _lift_cpu_limit(self) -> None:
        """Remove the CPU quota: killed tasks need CPU time to exit, and a throttled fork bomb takes seconds to."""

    def _read_counter(self, path: Path) -> int | None:
        """Read a counter file through a descriptor kept open: it is read after every invoke, and os.pread costs
        about 1.5 µs where opening the file each time costs about 23 µs."""
        try:
            if self._peak_fd is None:
                self._peak_fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            return int(os.pread(self._peak_fd, 32, 0))
        except (OSError, ValueError):
            return None

    def freeze(self) -> None:
        """Stop every member where it is (no-op without a freezer); thaw() lets them continue."""
        if self.freezer is not None:
            self.freezer.set(True)

    def thaw(self) -> None:
        if self.freezer is not None:
            self.freezer.set(False)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for path in self.procs_paths:
            try:
                with open(path) as procs:
                    found.update(int(pid) for pid in procs.read().split())
            except FileNotFoundError:
                continue
        return found

    def kill_all(self) -> None:
        """SIGKILL every member so that no fork can outrun it: freeze, signal all, thaw (a frozen v1 task dies only
        once thawed). The group is left thawed."""
        if self._destroyed:
            return
        self._lift_cpu_limit_for_kill()
        try:
            self._signal_members(1 if self._freeze_for_kill() else UNFROZEN_KILL_PASSES)
        finally:
            self.thaw()

    def _lift_cpu_limit_for_kill(self) -> None:
        try:
            self._lift_cpu_limit()
        except OSError as error:
            log.debug("cannot lift the CPU quota of %s: %s", self.dirs[0], error)

    def _freeze_for_kill(self) -> bool:
        if self.freezer is None or not self.freezer.set(True):
            return False
        deadline = time.monotonic() + FREEZE_WAIT_S
        while not self.is_frozen():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.0005)
        return True

    def _signal_members(self, passes: int) -> None:
        killed: set[int] = set()
        for _ in range(passes):
            fresh = self.pids() - killed
            if not fresh:
                return
            for pid in fresh:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            killed |= fresh

    def try_destroy(self) -> bool:
        """One attempt that never waits: kill what is left, or remove the group once it is empty. True once gone;
        False while members are still exiting (try again later)."""
        if self._destroyed:
            return True
        if self.pids():
            self.kill_all()
            return False
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None
        if self.freezer is not None:
            self.freezer.close()
        for path in self.dirs:
            try:
                path.rmdir()
            except FileNotFoundError:
                pass
            except OSError as error:
                # The kernel may still hold the exiting tasks' references for a moment.
                if error.errno == errno.EBUSY:
                    return False
                raise
        self._destroyed = True
        return True

    def destroy(self, timeout: float = DESTROY_TIMEOUT_S) -> None:
        """try_destroy() until the group is gone, blocking (start-up, clean stop, a failed spawn). Idempotent.

        A group that will not empty in time is left (and logged) for remove_stale().
        """
        deadline = time.monotonic() + timeout
        while not self.try_destroy():
            if time.monotonic() > deadline:
                log.warning("cgroup %s still has processes; left for remove_stale", self.dirs[0])
                return
            time.sleep(0.001)


class CgroupDriver(ABC):
    """Creates environment groups under a parent group on one cgroup version."""

    version: int
    #: The subset of CONTROLLERS this host lets us use; memory is always among them.
    controllers: frozenset[str]
    #: The parent group's directory in every hierarchy used.
    parent_dirs: tuple[Path, ...]
    #: Whether groups can be frozen (v1 freezer hierarchy, v2 cgroup.freeze).
    freezes: bool

    @abstractmethod
    def create(self, name: str, limits: ResourceLimits) -> Cgroup:
        """A new group with memory, pids and CPU weight set; the CPU quota waits for apply_cpu_limit()."""

    @abstractmethod
    def attach(self, name: str) -> Cgroup:
        """The existing group `name` (limits unknown), e.g. to destroy it."""

    def remove_stale(self) -> None:
        """Kill and remove every group under the parent: leftovers of a crashed server."""
        names = {child.name for parent in self.parent_dirs if parent.is_dir()
                 for child in parent.iterdir() if child.is_dir()} - {FREEZE_HOLD}
        for name in sorted(names):
            self.attach(name).destroy()

    def remove_parents(self) -> None:
        """Remove the parent groups on a clean stop, so per-data-dir parents do not pile up."""
        self.remove_stale()
        for parent in self.parent_dirs:
            _rmdir(parent / FREEZE_HOLD)
            _rmdir(parent)
