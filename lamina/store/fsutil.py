"""Directory trees of any depth: walked, measured, removed and moved aside without recursion or long paths.

An uploaded package may nest directories far deeper than Python's recursion limit (shutil.rmtree and os.walk recurse
on 3.11) and, below the data directory, deeper than PATH_MAX. Everything here therefore works iteratively, from one
directory descriptor that moves through the tree one component at a time.
"""
from __future__ import annotations

import logging
import os
import stat
import time
from pathlib import Path
from typing import Callable, Union

_log = logging.getLogger("lamina.store")
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
Parts = tuple[str, ...]
StrPath = Union[str, Path]


class DirCursor:
    """One open directory that moves around a tree by single components.

    Only one name at a time reaches the kernel, so no path is ever too long, and one descriptor serves any depth (one
    per level could exhaust RLIMIT_NOFILE). Going up uses `..`, which assumes nobody else moves the tree's directories
    meanwhile: true of the trees Lamina builds and owns.
    """

    def __init__(self, root: StrPath, dir_fd: int | None = None) -> None:
        self.fd = os.open(root, _DIRECTORY & ~os.O_NOFOLLOW, dir_fd=dir_fd)
        self.at: Parts = ()

    def move(self, parts: Parts) -> None:
        """Make the cursor's directory `root/parts...` (each part one name, never a symlink)."""
        common = min(len(self.at), len(parts))
        if parts[:common] != self.at[:common]:  # moving to another branch, not just up or down
            common = next(index for index, (mine, theirs) in enumerate(zip(self.at, parts)) if mine != theirs)
        while len(self.at) > common:
            self._step("..")
            self.at = self.at[:-1]
        for name in parts[common:]:
            self._step(name)
            self.at = self.at + (name,)

    def close(self) -> None:
        os.close(self.fd)

    def _step(self, name: str) -> None:
        fd = os.open(name, _DIRECTORY, dir_fd=self.fd)
        os.close(self.fd)
        self.fd = fd


def _walk(
    path: StrPath,
    on_entry: Callable[[int, os.DirEntry[str]], None],
    on_leave: Callable[[int, str], None] | None = None,
    *,
    dir_fd: int | None = None,
) -> None:
    """Depth first through the directory `path`: `on_entry(fd, entry)` for each non-directory, with `fd` its directory;
    then, if given, `on_leave(parent_fd, name)` once a directory's contents are done (`path` itself last)."""
    parent, name = os.path.split(os.path.normpath(path))
    cursor = DirCursor(parent or ".", dir_fd)
    try:
        pending: list[tuple[Parts, bool]] = [((name,), False)]
        while pending:
            parts, finished = pending.pop()
            if finished:
                assert on_leave is not None
                cursor.move(parts[:-1])
                on_leave(cursor.fd, parts[-1])
                continue
            cursor.move(parts)
            if on_leave is not None:
                pending.append((parts, True))
            with os.scandir(cursor.fd) as listing:
                entries = list(listing)
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append((parts + (entry.name,), False))
                else:
                    on_entry(cursor.fd, entry)
    finally:
        cursor.close()


def remove_tree(path: StrPath, *, dir_fd: int | None = None) -> None:
    """Remove `path` (a directory tree of any depth, a file or a link); a missing `path` is not an error."""
    try:
        mode = os.lstat(path, dir_fd=dir_fd).st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(mode):
        os.unlink(path, dir_fd=dir_fd)
        return
    _walk(
        path,
        lambda fd, entry: os.unlink(entry.name, dir_fd=fd),
        lambda fd, name: os.rmdir(name, dir_fd=fd),
        dir_fd=dir_fd,
    )


def tree_size(path: StrPath) -> int:
    """Bytes in the regular files under `path`: what extracting its package wrote."""
    total = 0

    def count(_fd: int, entry: os.DirEntry[str]) -> None:
        nonlocal total
        info = entry.stat(follow_symlinks=False)
        if stat.S_ISREG(info.st_mode):
            total += info.st_size

    _walk(path, count)
    return total


def quarantine(path: Path, into: Path, error: OSError) -> None:
    """Move what could not be processed aside, so start-up and garbage collection go on; the server log says where."""
    target = into / f"{path.name}.{time.time_ns()}"
    try:
        into.mkdir(parents=True, exist_ok=True)
        os.rename(path, target)
    except OSError as failure:
        _log.error("could not process %s (%s) nor move it aside (%s): left in place", path, error, failure)
        return
    _log.error("could not process %s (%s): moved to %s; remove it once inspected", path, error, target)
