"""Which cgroup version this host offers: reads the mount table and opens the v2 driver, else the v1 one.

Its own module because it is the one place that knows both versions (`cgroup_v1.py`, `cgroup_v2.py`), which in
turn build on `cgroups.py`; the start-up host check (`host.py`) is its only caller.
"""
from __future__ import annotations

from pathlib import Path

from lamina.sandbox.cgroup_v1 import V1CgroupDriver
from lamina.sandbox.cgroup_v2 import V2CgroupDriver
from lamina.sandbox.cgroups import CONTROLLERS, FREEZER, CgroupDriver, CgroupUnavailable


def open_cgroup_driver(parent: str = "lamina",
                       mountinfo: Path = Path("/proc/self/mountinfo")) -> CgroupDriver:
    """The v2 driver if a cgroup2 mount offers memory, else the v1 driver; probes by creating the parent."""
    v1: dict[str, Path] = {}
    v2: list[Path] = []
    for line in mountinfo.read_text().splitlines():
        fields, _, tail = line.partition(" - ")
        fstype, _source, super_options = (tail.split(" ") + ["", ""])[:3]
        point = Path(fields.split(" ")[4])
        if fstype == "cgroup2":
            v2.append(point)
        elif fstype == "cgroup":
            for option in super_options.split(","):
                if option in CONTROLLERS or option == FREEZER:
                    v1.setdefault(option, point)
    reasons = []
    for mount in v2:
        try:
            return V2CgroupDriver(mount, parent)
        except CgroupUnavailable as error:
            reasons.append(str(error))
    if v1:
        try:
            return V1CgroupDriver(v1, parent)
        except CgroupUnavailable as error:
            reasons.append(str(error))
    raise CgroupUnavailable("; ".join(reasons) or "no cgroup filesystem is mounted")
