"""Content-addressed code store: zips by SHA-256, and their extracted trees for /var/task.

A blob is written to a temporary file, fsynced and renamed before the database refers to it, so a crash leaves
at worst an unreferenced blob (collected at start-up), never a record pointing at a half-written zip.
"""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

from lamina.store.codezip import extract_zip


class CodeStore:
    def __init__(self, root: Path) -> None:
        self._blobs = root / "blobs"
        self._trees = root / "trees"
        self._blobs.mkdir(parents=True, exist_ok=True)
        self._trees.mkdir(parents=True, exist_ok=True)
        self._extract_lock = threading.Lock()

    def blob_path(self, sha256_hex: str) -> Path:
        return self._blobs / f"{sha256_hex}.zip"

    def put(self, sha256_hex: str, data: bytes) -> None:
        target = self.blob_path(sha256_hex)
        if target.exists():
            return
        temporary = target.with_suffix(f".tmp-{os.getpid()}-{threading.get_ident()}")
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        directory = os.open(self._blobs, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def tree(self, sha256_hex: str) -> Path:
        """The extracted code, made on first use (extraction is atomic, so a crash leaves no partial tree)."""
        target = self._trees / sha256_hex
        if not target.exists():
            with self._extract_lock:
                if not target.exists():
                    extract_zip(self.blob_path(sha256_hex), target)
        return target

    def collect_garbage(self, referenced: set[str]) -> None:
        """Remove blobs and trees nothing refers to, and temporaries a crash left behind."""
        for path in self._blobs.iterdir():
            address = path.name.split(".", 1)[0]
            if path.suffix != ".zip" or address not in referenced:
                path.unlink(missing_ok=True)
        for path in self._trees.iterdir():
            if path.name not in referenced:
                shutil.rmtree(path, ignore_errors=True)
