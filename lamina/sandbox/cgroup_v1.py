"""cgroup v1: one hierarchy per controller (memory, cpu, pids) plus the freezer's, and a group directory in each.

Kept apart from cgroup v2 because the two share only the protocol in `cgroups.py`: v1's files, its freezer
hierarchy and the frozen FREEZE_HOLD group that keeps the kernel's freezer fast path on are its own.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from lamina.sandbox.cgroups import (
    CONTROLLERS,
    CPU_PERIOD_US,
    FREEZE_HOLD,
    FREEZER,
    Cgroup,
    CgroupDriver,
    CgroupUnavailable,
    FreezerSwitch,
    ResourceLimits,
    check_group_name,
    write_value,
)

#: The logger of all cgroup code (its name, as before v1 and v2 had their own modules).
log = logging.getLogger("lamina.sandbox.cgroups")


class V1Cgroup(Cgroup):
    def __init__(self, hierarchy_dirs: dict[str, Path], limits: ResourceLimits | None) -> None:
        freezer_dir = hierarchy_dirs.get(FREEZER)
        freezer = None if freezer_dir is None else FreezerSwitch(freezer_dir / "freezer.state", b"FROZEN", b"THAWED")
        super().__init__(tuple(dict.fromkeys(hierarchy_dirs.values())), limits, freezer)
        self._by_controller = hierarchy_dirs

    def apply_cpu_limit(self) -> None:
        cpu = self._by_controller.get("cpu")
        if cpu is None or self.limits is None:
            return
        write_value(cpu / "cpu.cfs_period_us", CPU_PERIOD_US)
        write_value(cpu / "cpu.cfs_quota_us", self.limits.cpu_quota_us)

    def _lift_cpu_limit(self) -> None:
        if "cpu" in self._by_controller:
            write_value(self._by_controller["cpu"] / "cpu.cfs_quota_us", -1)

    def peak_memory_bytes(self) -> int | None:
        return self._read_counter(self._by_controller["memory"] / "memory.max_usage_in_bytes")

    def is_frozen(self) -> bool:
        """Reading freezer.state is also what moves a v1 group from FREEZING to FROZEN."""
        if self.freezer is None:
            return False
        try:
            return self.freezer.path.read_text().strip() == "FROZEN"
        except OSError:
            return False


class V1CgroupDriver(CgroupDriver):
    """cgroup v1: one hierarchy per controller (cpu may be co-mounted with cpuacct)."""

    version = 1

    def __init__(self, hierarchies: dict[str, Path], parent: str = "lamina") -> None:
        """`hierarchies` maps each available controller (and the freezer) to its mount point; memory is required."""
        check_group_name(parent)
        if "memory" not in hierarchies:
            raise CgroupUnavailable("cgroup v1 has no memory hierarchy")
        self.controllers = frozenset(hierarchies) & frozenset(CONTROLLERS)
        self._parents = {name: hierarchies[name] / parent for name in self.controllers}
        self.parent_dirs = tuple(dict.fromkeys(self._parents.values()))
        for path in self.parent_dirs:
            try:
                path.mkdir(exist_ok=True)
            except OSError as error:
                raise CgroupUnavailable(f"cannot create {path}: {error.strerror}") from None
            if not os.access(path, os.W_OK):
                raise CgroupUnavailable(f"{path} is not writable")
        self._memsw = (self._parents["memory"] / "memory.memsw.limit_in_bytes").exists()
        self.freezes = FREEZER in hierarchies and self._open_freezer(hierarchies[FREEZER] / parent)

    def _open_freezer(self, parent: Path) -> bool:
        """Use the freezer hierarchy if its parent group (and the frozen FREEZE_HOLD in it) can be made."""
        try:
            parent.mkdir(exist_ok=True)
            (parent / FREEZE_HOLD).mkdir(exist_ok=True)
            write_value(parent / FREEZE_HOLD / "freezer.state", "FROZEN")
        except OSError as error:
            log.warning("cgroup freezer unusable (%s): idle environments keep running", error)
            return False
        self._parents[FREEZER] = parent
        self.parent_dirs = tuple(dict.fromkeys((*self.parent_dirs, parent)))  # it may share a mount
        return True

    def create(self, name: str, limits: ResourceLimits) -> Cgroup:
        check_group_name(name)
        group = V1Cgroup({controller: parent / name for controller, parent in self._parents.items()}, limits)
        made: list[Path] = []
        try:
            for path in group.dirs:
                path.mkdir()
                made.append(path)
            memory = group._by_controller["memory"]
            write_value(memory / "memory.limit_in_bytes", limits.memory_bytes)
            if self._memsw:
                write_value(memory / "memory.memsw.limit_in_bytes", limits.memory_bytes)
            if "cpu" in group._by_controller:
                write_value(group._by_controller["cpu"] / "cpu.shares", limits.cpu_shares)
            if "pids" in group._by_controller:
                write_value(group._by_controller["pids"] / "pids.max", limits.pids_max)
        except BaseException:
            for path in reversed(made):
                path.rmdir()
            raise
        return group

    def attach(self, name: str) -> Cgroup:
        check_group_name(name)
        return V1Cgroup({controller: parent / name for controller, parent in self._parents.items()}, None)
