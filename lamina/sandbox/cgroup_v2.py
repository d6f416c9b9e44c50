"""cgroup v2: one unified hierarchy, controllers enabled down to the parent group, and one directory per group.

Kept apart from cgroup v1 because the two share only the protocol in `cgroups.py`: v2's files (`memory.max`,
`cpu.max`, `cgroup.freeze`, `cgroup.kill`, `memory.oom.group`) and its atomic kill are its own.
"""
from __future__ import annotations

from pathlib import Path

from lamina.sandbox.cgroups import (
    CONTROLLERS,
    CPU_PERIOD_US,
    Cgroup,
    CgroupDriver,
    CgroupUnavailable,
    FreezerSwitch,
    ResourceLimits,
    check_group_name,
    write_value,
)


class V2Cgroup(Cgroup):
    def __init__(self, path: Path, limits: ResourceLimits | None, controllers: frozenset[str], freezes: bool) -> None:
        super().__init__((path,), limits, FreezerSwitch(path / "cgroup.freeze", b"1", b"0") if freezes else None)
        self.path = path
        self._controllers = controllers

    def apply_cpu_limit(self) -> None:
        if "cpu" in self._controllers and self.limits is not None:
            write_value(self.path / "cpu.max", f"{self.limits.cpu_quota_us} {CPU_PERIOD_US}")

    def _lift_cpu_limit(self) -> None:
        if "cpu" in self._controllers:
            write_value(self.path / "cpu.max", f"max {CPU_PERIOD_US}")

    def peak_memory_bytes(self) -> int | None:
        return self._read_counter(self.path / "memory.peak")

    def is_frozen(self) -> bool:
        try:
            return "frozen 1" in (self.path / "cgroup.events").read_text().splitlines()
        except OSError:
            return False

    def kill_all(self) -> None:
        kill_file = self.path / "cgroup.kill"
        if self._destroyed or not kill_file.exists():
            super().kill_all()
            return
        # Atomic, race-free against fork (Linux 5.14+), and it kills frozen members too; thaw for tidiness.
        self._lift_cpu_limit_for_kill()
        write_value(kill_file, 1)
        self.thaw()


class V2CgroupDriver(CgroupDriver):
    """cgroup v2: one unified hierarchy; controllers are enabled down to the parent group."""

    version = 2

    def __init__(self, mount: Path, parent: str = "lamina") -> None:
        check_group_name(parent)
        try:
            offered = set((mount / "cgroup.controllers").read_text().split())
        except OSError as error:
            raise CgroupUnavailable(f"cannot read {mount}/cgroup.controllers: {error.strerror}") from None
        self.controllers = frozenset(CONTROLLERS) & offered
        if "memory" not in self.controllers:
            raise CgroupUnavailable(f"cgroup v2 at {mount} offers no memory controller")
        self.parent = mount / parent
        self.parent_dirs = (self.parent,)
        enable = " ".join(f"+{name}" for name in sorted(self.controllers))
        try:
            enabled = {name.lstrip("+") for name in (mount / "cgroup.subtree_control").read_text().split()}
            if not self.controllers <= enabled:
                write_value(mount / "cgroup.subtree_control", enable)
            self.parent.mkdir(exist_ok=True)
            write_value(self.parent / "cgroup.subtree_control", enable)
        except OSError as error:
            raise CgroupUnavailable(f"cannot enable {enable} under {mount}: {error.strerror}") from None
        self._swap = (self.parent / "memory.swap.max").exists()
        self._oom_group = (self.parent / "memory.oom.group").exists()
        self.freezes = (self.parent / "cgroup.freeze").exists()

    def create(self, name: str, limits: ResourceLimits) -> Cgroup:
        check_group_name(name)
        group = V2Cgroup(self.parent / name, limits, self.controllers, self.freezes)
        group.path.mkdir()
        try:
            write_value(group.path / "memory.max", limits.memory_bytes)
            if self._swap:
                write_value(group.path / "memory.swap.max", 0)
            if self._oom_group:
                # An OOM kill takes the whole environment down, as AWS does.
                write_value(group.path / "memory.oom.group", 1)
            if "pids" in self.controllers:
                write_value(group.path / "pids.max", limits.pids_max)
            if "cpu" in self.controllers:
                write_value(group.path / "cpu.weight", limits.cpu_weight)
        except BaseException:
            group.path.rmdir()
            raise
        return group

    def attach(self, name: str) -> Cgroup:
        check_group_name(name)
        return V2Cgroup(self.parent / name, None, self.controllers, self.freezes)
