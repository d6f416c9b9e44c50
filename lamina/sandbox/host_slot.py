"""A host-wide slot for each running server, so two servers on one host never share what isolates their
environments: the slot names the server's uid range, its subnet and the prefix of its network interfaces.

A slot is an `flock` on `/run/lamina/slot-<n>.lock`, held for the server's life; the kernel drops it when the
process dies (even by kill -9), so a crashed server never keeps its slot.
"""
from __future__ import annotations

import fcntl
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

SLOT_DIR = Path("/run/lamina")
SLOT_COUNT = 64
#: Environments run as uids from FIRST_UID on, UIDS_PER_SLOT of them per slot.
FIRST_UID = 200_000
UIDS_PER_SLOT = 65_536
#: Every slot's environments get addresses from 100.64.0.0/10 (shared address space, RFC 6598), a /16 each.
SANDBOX_NETWORK = "100.64.0.0/10"


class NoFreeSlot(Exception):
    """Every slot is held: too many servers run on this host."""


@dataclass
class HostSlot:
    index: int
    _fd: int

    @property
    def first_uid(self) -> int:
        return FIRST_UID + self.index * UIDS_PER_SLOT

    @property
    def uid_count(self) -> int:
        return UIDS_PER_SLOT

    @property
    def subnet_prefix(self) -> tuple[int, int]:
        """The first two octets of this slot's /16."""
        return 100, 64 + self.index

    @property
    def interface_prefix(self) -> str:
        """Host-side interface names start with this; `lmn*` matches every slot's."""
        return f"lmn{self.index}x"

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def slot_directory() -> Path:
    """/run/lamina for root; a per-user directory otherwise (such a server switches no uids and makes no networks)."""
    if os.geteuid() == 0:
        return SLOT_DIR
    return Path(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()) / f"lamina-{os.geteuid()}"


def claim_host_slot(directory: Path | None = None) -> HostSlot:
    """The lowest free slot, locked until release() or the process's end."""
    directory = directory or slot_directory()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for index in range(SLOT_COUNT):
        fd = os.open(directory / f"slot-{index}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return HostSlot(index, fd)
    raise NoFreeSlot(f"all {SLOT_COUNT} Lamina slots on this host are in use ({directory})")
