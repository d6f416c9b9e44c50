"""Content-addressed code store: zips by SHA-256, their extracted trees for /var/task, and the quota on the trees.

A blob is written to a temporary file, fsynced and renamed before the database refers to it, so a crash leaves
at worst an unreferenced blob (collected later), never a record pointing at a half-written zip. Uploads go through
`ingest`, which refuses content that would take the extracted trees past the code storage limit (each stored tree
counted once, however many functions share it) or that does not fit on the disk, holds the content for its caller
until the record referring to it is committed, and takes back what it added if the caller fails.
"""
from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Callable, Iterator

from lamina.config import DEFAULT_CODE_STORAGE_LIMIT
from lamina.errors import CodeStorageExceededException
from lamina.store.codezip import MAX_ZIPPED, ZipSummary, extract_zip, inspect_zip
from lamina.store.fsutil import quarantine, remove_tree, tree_size
from lamina.store.space import is_storage_full

#: AWS's message (its SDKs print "CodeStorageExceededException: Code storage limit exceeded.").
STORAGE_EXCEEDED = "Code storage limit exceeded."
#: An unreferenced tree is removed only after this long: it may still be /var/task of an environment finishing an
#: invocation (up to 900 s) of a version just deleted or updated. Its bytes stop counting at once.
TREE_GRACE_SECONDS = 1200.0
_log = logging.getLogger("lamina.store")


class CodeStore:
    def __init__(
        self, root: Path, *, limit: int = DEFAULT_CODE_STORAGE_LIMIT, referenced: Callable[[], set[str]] = set
    ) -> None:
        """`referenced()` gives the content addresses committed records refer to (function versions, layers)."""
        self._blobs = root / "blobs"
        self._trees = root / "trees"
        self._quarantine = root / "quarantine"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._trees.mkdir(parents=True, exist_ok=True)
        self._limit = limit
        self._referenced = referenced
        self._lock = threading.Lock()  # uploads, extraction and collection, one at a time
        self._sizes: dict[str, int] = {}  # bytes of each tree on disk
        self._pins: Counter[str] = Counter()  # content being ingested, not yet referred to by a committed record
        self._unreferenced_since: dict[str, float] = {}

    def blob_path(self, sha256_hex: str) -> Path:
        return self._blobs / f"{sha256_hex}.zip"

    def put(self, sha256_hex: str, data: bytes) -> None:
        """Store a zip; a failed write (a full disk) leaves nothing behind."""
        target = self.blob_path(sha256_hex)
        if target.exists():
            return
        temporary = target.with_suffix(f".tmp-{os.getpid()}-{threading.get_ident()}")
        try:
            with open(temporary, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        directory = os.open(self._blobs, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    @contextlib.contextmanager
    def ingest(self, data: bytes, *, max_zipped: int = MAX_ZIPPED) -> Iterator[ZipSummary]:
        """Check and store an uploaded package (zip and tree) for a caller that commits, inside the block, a record
        referring to it; garbage collection leaves it alone meanwhile.

        Over the limit or on a full disk: AWS's CodeStorageExceededException, with nothing written. If the block fails,
        what this call added and nothing else uses is removed again.
        """
        summary = inspect_zip(data, max_zipped=max_zipped)
        address = summary.sha256_hex
        with self._lock:
            self._check_limit(address, summary.unzipped_size)
            self._pins[address] += 1
            try:
                extracted = self._store(address, data)
            except BaseException:
                self._unpin(address, discard=False)
                raise
        committed = False
        try:
            yield summary
            committed = True
        finally:
            with self._lock:
                self._unpin(address, discard=extracted and not committed)

    def tree(self, sha256_hex: str) -> Path:
        """The extracted code, made again if it went missing (extraction is atomic: a crash leaves no partial tree)."""
        target = self._trees / sha256_hex
        if not target.exists():
            with self._lock:
                if not target.exists():
                    self._sizes[sha256_hex] = extract_zip(self.blob_path(sha256_hex), target)
        return target

    def usage(self) -> dict[str, int]:
        """For operators: the extracted bytes the limit applies to, the limit, and how many trees they are."""
        with self._lock:
            kept = self._kept()
            return {
                "ExtractedCodeSize": self._used(kept),
                "CodeStorageLimit": self._limit,
                "Trees": len(kept & self._sizes.keys()),
            }

    def collect_garbage(self, grace: float = TREE_GRACE_SECONDS) -> None:
        """Remove unreferenced blobs and temporaries a crash left at once, unreferenced trees after `grace` seconds
        (0 at start-up, when no environment runs), and measure kept trees not measured yet.

        What cannot be removed or measured is quarantined and reported: stored content never stops the server.
        """
        with self._lock:
            kept = self._kept()
            now = time.monotonic()
            for path in self._blobs.iterdir():
                if path.suffix != ".zip" or path.stem not in kept:
                    self._remove(path)
            for path in self._trees.iterdir():
                if path.name in kept:
                    self._unreferenced_since.pop(path.name, None)
                    if path.name not in self._sizes:
                        self._measure(path)
                elif now - self._unreferenced_since.setdefault(path.name, now) >= grace:
                    self._remove(path)

    def _kept(self) -> set[str]:
        return self._referenced() | set(self._pins)

    def _used(self, kept: set[str]) -> int:
        return sum(self._sizes.get(address, 0) for address in kept)

    def _check_limit(self, address: str, declared: int) -> None:
        """Content already kept costs nothing more; new content counts its declared size, which bounds what
        extraction writes (zipfile stops each member at its declared size)."""
        kept = self._kept()
        if address in kept:
            return
        used = self._used(kept)
        if used + self._sizes.get(address, declared) > self._limit:
            _log.warning("code upload refused: %d bytes of extracted code stored, %d more would pass the limit of %d",
                         used, declared, self._limit)
            raise CodeStorageExceededException(STORAGE_EXCEEDED)

    def _store(self, address: str, data: bytes) -> bool:
        """Blob and tree for `address`; True when this call extracted the tree."""
        blob = self.blob_path(address)
        new_blob = not blob.exists()
        try:
            self.put(address, data)
            tree = self._trees / address
            if tree.exists():
                return False
            self._sizes[address] = extract_zip(blob, tree)
            return True
        except BaseException as error:
            if new_blob:
                blob.unlink(missing_ok=True)
            if isinstance(error, OSError) and is_storage_full(error):
                _log.warning("code upload refused: the disk holding %s is full (%s)", self._blobs, error)
                raise CodeStorageExceededException(STORAGE_EXCEEDED) from error
            raise

    def _unpin(self, address: str, *, discard: bool) -> None:
        self._pins[address] -= 1
        if self._pins[address]:
            return
        del self._pins[address]
        if discard and address not in self._referenced():
            self._remove(self.blob_path(address))
            self._remove(self._trees / address)

    def _remove(self, path: Path) -> None:
        try:
            remove_tree(path)
        except OSError as error:
            quarantine(path, self._quarantine, error)
        self._sizes.pop(path.name, None)
        self._unreferenced_since.pop(path.name, None)

    def _measure(self, tree: Path) -> None:
        try:
            self._sizes[tree.name] = tree_size(tree)
        except OSError as error:
            quarantine(tree, self._quarantine, error)  # made again from its blob when next used
