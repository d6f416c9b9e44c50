"""Isolation of execution environments: bubblewrap namespaces, cgroup limits, per-environment uids."""
from __future__ import annotations

from lamina.sandbox.cgroups import Cgroup, CgroupDriver, CgroupUnavailable, ResourceLimits
from lamina.sandbox.host import HostCapabilities, detect_host_capabilities
from lamina.sandbox.process import SandboxProcess, SandboxSpec, remove_stale_sandboxes

__all__ = [
    "Cgroup", "CgroupDriver", "CgroupUnavailable", "HostCapabilities", "ResourceLimits",
    "SandboxProcess", "SandboxSpec", "detect_host_capabilities", "remove_stale_sandboxes",
]
