"""Read-only views of host directories that show no host path inside a sandbox.

A bind mount shows its source path (the data directory, the virtualenv, the interpreter's prefix) in every
sandbox's /proc/self/mountinfo. A read-only overlayfs of the directory (plus an empty one, since overlayfs needs
two lower layers without an upper one), named by descriptor, shows `/` and `/proc/self/fd/N` instead. One view
per directory is shared by every environment using it: mounted on first use, unmounted after the last.
Where Lamina cannot mount (not root), the directory itself is used.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
from pathlib import Path
from typing import Iterator

from lamina.sandbox.mounts import mount_overlay, mounts_under, unmount

log = logging.getLogger(__name__)


class NeutralViews:
    def __init__(self, root: Path, *, can_mount: bool) -> None:
        self._root = root
        self._can_mount = can_mount
        self._users: dict[Path, int] = {}
        self._pinned: list[contextlib.ExitStack] = []
        self._empty = root / "empty"
        if root.is_dir():
            for mount in mounts_under(root):
                unmount(mount)
        self._empty.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def view(self, source: Path) -> Iterator[Path]:
        """The path to bind instead of `source`, held until the block ends."""
        target = self._acquire(source)
        try:
            yield target
        finally:
            self._release(source, target)

    def pin(self, source: Path) -> Path:
        """A view held until close(): for what every environment uses (bootstraps, interpreters)."""
        stack = contextlib.ExitStack()
        self._pinned.append(stack)
        return stack.enter_context(self.view(source))

    def close(self) -> None:
        while self._pinned:
            self._pinned.pop().close()

    def _target(self, source: Path) -> Path:
        return self._root / hashlib.sha256(str(source).encode()).hexdigest()[:32]

    def _acquire(self, source: Path) -> Path:
        target = self._target(source)
        users = self._users.get(source, 0)
        if users:
            self._users[source] = users + 1
            return target
        if not self._can_mount:
            return source
        target.mkdir(exist_ok=True)
        try:
            mount_overlay(target, [source, self._empty])
        except OSError as error:
            log.warning("cannot mount a neutral view of %s (%s): sandboxes see its host path", source, error)
            return source
        self._users[source] = 1
        return target

    def _release(self, source: Path, target: Path) -> None:
        if target == source:
            return
        users = self._users[source] - 1
        if users:
            self._users[source] = users
            return
        del self._users[source]
        unmount(target)
        with contextlib.suppress(OSError):
            target.rmdir()
