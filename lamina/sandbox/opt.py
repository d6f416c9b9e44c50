"""The /opt a function's environments see: its layers merged in order, each extracted once and shared read-only.

No layers: an empty /opt. One layer: its extracted tree, bound as is. Several: a read-only overlayfs of the trees
(the last layer on top, so its files win, as AWS's in-order extraction would), mounted on first use and unmounted
when the last environment using that combination stops. A host that cannot mount overlayfs (not root) gets a merged
tree of hard links instead, built once per combination: the file contents are still the one extracted copy.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

from lamina.sandbox.mounts import mount_overlay, mounts_under, unmount
from lamina.store.fsutil import DirCursor, remove_tree

log = logging.getLogger(__name__)


class OptViews:
    def __init__(self, root: Path, *, can_mount: bool) -> None:
        self._root = root
        self._can_mount = can_mount
        self._users: dict[str, int] = {}
        self._remove_stale()

    @contextlib.contextmanager
    def view(self, layers: Sequence[Path]) -> Iterator[Path | None]:
        """The host directory to bind at /opt for `layers` (in function order), held until the context exits."""
        layers = _last_occurrences(layers)
        if len(layers) <= 1:
            yield layers[0] if layers else None
            return
        key = hashlib.sha256("\0".join(str(path) for path in layers).encode()).hexdigest()[:32]
        target = self._acquire(key, layers)
        try:
            yield target
        finally:
            self._release(key)

    def _acquire(self, key: str, layers: Sequence[Path]) -> Path:
        overlay = self._root / f"overlay-{key}"
        if self._users.get(key):
            self._users[key] += 1
            return overlay
        if self._can_mount and not (self._root / f"linked-{key}").exists():
            overlay.mkdir(parents=True, exist_ok=True)
            try:
                mount_overlay(overlay, list(reversed(layers)))
            except OSError as error:
                log.warning("overlayfs failed (%s): these layers are merged with hard links instead", error)
                overlay.rmdir()
            else:
                self._users[key] = 1
                return overlay
        return self._linked_tree(key, layers)

    def _release(self, key: str) -> None:
        if key not in self._users:
            return  # a merged tree of links: it stays
        users = self._users[key] - 1
        if users > 0:
            self._users[key] = users
            return
        self._users.pop(key, None)
        overlay = self._root / f"overlay-{key}"
        unmount(overlay)
        with contextlib.suppress(OSError):
            overlay.rmdir()

    def _linked_tree(self, key: str, layers: Sequence[Path]) -> Path:
        """A merged copy of the layers made of hard links; kept until restart (it costs inodes, not data)."""
        target = self._root / f"linked-{key}"
        if target.exists():
            return target
        self._root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self._root))
        try:
            for layer in layers:
                _merge_into(layer, staging)
            os.chmod(staging, 0o755)
            os.rename(staging, target)
        except BaseException:
            with contextlib.suppress(OSError):
                remove_tree(staging)
            raise
        return target

    def _remove_stale(self) -> None:
        """After a crash: overlays and merged trees left by a server that is gone."""
        if self._root.is_dir():
            for mount in mounts_under(self._root):
                unmount(mount)
            try:
                remove_tree(self._root)
            except OSError as error:  # never a reason not to start: merged trees are rebuilt or reused as they are
                log.warning("could not remove stale /opt views in %s: %s", self._root, error)
        self._root.mkdir(parents=True, exist_ok=True)


def _last_occurrences(layers: Sequence[Path]) -> list[Path]:
    """Identical layers (same content) listed twice: only the later copy matters, and overlayfs refuses repeats."""
    kept: list[Path] = []
    for layer in reversed(layers):
        if layer not in kept:
            kept.insert(0, layer)
    return kept


def _merge_into(source: Path, target: Path) -> None:
    """Put `source`'s entries over `target`'s: a file or link replaces whatever was there, directories merge.

    Iterative, one directory descriptor per side (see lamina.store.fsutil), so a layer of any depth merges.
    """
    from_cursor, to_cursor = DirCursor(source), DirCursor(target)
    try:
        pending: list[tuple[str, ...]] = [()]
        while pending:
            parts = pending.pop()
            from_cursor.move(parts)
            to_cursor.move(parts)
            src, dst = from_cursor.fd, to_cursor.fd
            with os.scandir(src) as listing:
                entries = list(listing)
            for entry in entries:
                name = entry.name
                try:
                    existing: int | None = os.lstat(name, dir_fd=dst).st_mode
                except FileNotFoundError:
                    existing = None
                if entry.is_dir(follow_symlinks=False):
                    if existing is None or not stat.S_ISDIR(existing):
                        remove_tree(name, dir_fd=dst)
                        os.mkdir(name, dir_fd=dst)
                        os.chmod(name, stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode), dir_fd=dst)
                    pending.append(parts + (name,))
                    continue
                remove_tree(name, dir_fd=dst)
                if entry.is_symlink():
                    os.symlink(os.readlink(name, dir_fd=src), name, dir_fd=dst)
                    continue
                try:
                    os.link(name, name, src_dir_fd=src, dst_dir_fd=dst, follow_symlinks=False)
                except OSError:  # another file system: a copy
                    mode = stat.S_IMODE(entry.stat(follow_symlinks=False).st_mode)
                    with open(os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=src), "rb") as original, \
                            open(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode, dir_fd=dst), "wb") as copy:
                        shutil.copyfileobj(original, copy)
                        os.fchmod(copy.fileno(), mode)
    finally:
        from_cursor.close()
        to_cursor.close()
