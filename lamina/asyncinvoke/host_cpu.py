"""How busy the host's CPUs are, from /proc/stat: delivery workers are added only while some CPU is idle."""
from __future__ import annotations


class HostCpu:
    """`idle_share()` is the share of CPU time spent idle since the previous call (1.0 on the first)."""

    def __init__(self, path: str = "/proc/stat") -> None:
        self._path = path
        self._last: tuple[int, int] | None = None

    def _read(self) -> tuple[int, int]:
        with open(self._path) as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return idle, sum(fields[:8])

    def idle_share(self) -> float:
        try:
            current = self._read()
        except (OSError, ValueError, IndexError):
            return 1.0
        previous, self._last = self._last, current
        if previous is None or current[1] <= previous[1]:
            return 1.0
        return (current[0] - previous[0]) / (current[1] - previous[1])
