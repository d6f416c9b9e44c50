"""Mounts Lamina makes itself: sized tmpfs for a sandbox's /tmp (for hosts whose bwrap has no `--size`), and
read-only overlays that merge a function's layers into one /opt (bwrap before 0.9 has no overlay options).

mount(2) is called through ctypes rather than a `mount` subprocess: spawning a
process would cost milliseconds of the cold-start budget.
"""
from __future__ import annotations

import contextlib
import ctypes
import errno
import os
from pathlib import Path

_MS_RDONLY = 0x1
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MNT_DETACH = 0x2

_libc = ctypes.CDLL(None, use_errno=True)


def mount_tmpfs(target: Path, size_mb: int) -> None:
    """Mount a tmpfs of `size_mb` MiB, mode 1777, on `target` (needs CAP_SYS_ADMIN)."""
    options = f"size={size_mb}m,mode=1777".encode()
    if _libc.mount(b"tmpfs", os.fsencode(target), b"tmpfs", _MS_NOSUID | _MS_NODEV, options) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"mount tmpfs on {target}: {os.strerror(code)}")


def mount_overlay(target: Path, lower_dirs: list[Path]) -> None:
    """Mount a read-only overlayfs of `lower_dirs` (at least two) on `target`; the first is the top one (its files win).

    The directories are named by descriptor (`/proc/self/fd/N`): the kernel shows `lowerdir` as given in every
    sandbox's /proc/self/mountinfo, and host paths (the data directory's location) must not appear there.
    """
    with contextlib.ExitStack() as opened:
        fds = []
        for path in lower_dirs:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            opened.callback(os.close, fd)
            fds.append(fd)
        options = ("lowerdir=" + ":".join(f"/proc/self/fd/{fd}" for fd in fds)).encode()
        flags = _MS_RDONLY | _MS_NOSUID | _MS_NODEV
        if _libc.mount(b"overlay", os.fsencode(target), b"overlay", flags, options) != 0:
            code = ctypes.get_errno()
            raise OSError(code, f"mount overlay on {target}: {os.strerror(code)}")


def unmount(target: Path) -> None:
    """Lazily unmount `target`; a path that is not (or no longer) a mount point is fine."""
    if _libc.umount2(os.fsencode(target), _MNT_DETACH) != 0:
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOENT):
            raise OSError(code, f"umount {target}: {os.strerror(code)}")


def mounts_under(root: Path, mountinfo: Path = Path("/proc/self/mountinfo")) -> list[Path]:
    """Mount points strictly below `root`, deepest first so they can be unmounted in order."""
    prefix = str(root.resolve()).rstrip("/") + "/"
    found = []
    for line in mountinfo.read_text().splitlines():
        point = _unescape(line.split(" ", 5)[4])
        if point.startswith(prefix):
            found.append(Path(point))
    return sorted(found, key=lambda path: len(path.parts), reverse=True)


def _unescape(field: str) -> str:
    """mountinfo writes space, tab, newline and backslash as octal escapes (`\\040`)."""
    if "\\" not in field:
        return field
    return field.encode().decode("unicode_escape").encode("latin-1").decode()
