"""A full disk: recognised, answered plainly, and never a dead end.

Every write can meet a full file system (ENOSPC, a quota's EDQUOT, SQLite's SQLITE_FULL). The API answers those with
an AWS-shaped ServiceException that says so (`storage_exhausted`). SQLite needs free pages for its WAL even to delete,
so on a full disk DeleteFunction would fail like every other write and nothing could ever free space: a reserve file
in the data directory is given back to the file system before a delete when the disk is (nearly) full, and taken
again once there is room, so the server recovers by itself.
"""
from __future__ import annotations

import errno
import logging
import os
import sqlite3
from pathlib import Path

from lamina.errors import ServiceException

RESERVE_FILE = "storage-reserve"
RESERVE_BYTES = 8 << 20
#: Free bytes below which a delete first releases the reserve (a delete's WAL frames take a few pages).
_HEADROOM_BYTES = 1 << 20
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_SQLITE_FULL_MESSAGE = "database or disk is full"  # SQLite's text for SQLITE_FULL (sqlite_errorcode is 3.11+)
_log = logging.getLogger("lamina.store")


def is_storage_full(error: BaseException) -> bool:
    if isinstance(error, OSError):
        return error.errno in _FULL_ERRNOS
    return isinstance(error, sqlite3.Error) and str(error) == _SQLITE_FULL_MESSAGE


def storage_exhausted(error: BaseException) -> ServiceException | None:
    """The answer to a write that failed because the disk is full, or None for any other failure."""
    if not is_storage_full(error):
        return None
    return ServiceException(
        "Lamina's storage is exhausted: the file system holding its data directory is full, so the request failed. "
        "Retry once space has been freed there."
    )


def free_bytes(directory: Path) -> int:
    info = os.statvfs(directory)
    return info.f_bavail * info.f_frsize


class SpaceReserve:
    def __init__(self, data_dir: Path, size: int = RESERVE_BYTES) -> None:
        self._path = data_dir / RESERVE_FILE
        self._size = size

    def make_room(self) -> None:
        """Before a write that frees space (a delete): on a (nearly) full disk, give the reserve back."""
        if free_bytes(self._path.parent) >= _HEADROOM_BYTES or not self._path.exists():
            return
        self._path.unlink(missing_ok=True)
        _log.warning("storage is full: released the %d-byte reserve in %s so deletes can proceed",
                     self._size, self._path.parent)

    def replenish(self) -> None:
        """Take the reserve (again) when it is missing and there is room for it and as much again."""
        if self._path.exists() or free_bytes(self._path.parent) < 2 * self._size:
            return
        temporary = self._path.with_name(RESERVE_FILE + ".tmp")
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                os.posix_fallocate(fd, 0, self._size)  # real blocks: a sparse file would give nothing back
            finally:
                os.close(fd)
            os.replace(temporary, self._path)
        except OSError as error:
            temporary.unlink(missing_ok=True)
            _log.warning("could not reserve %d bytes in %s: %s", self._size, self._path.parent, error)
