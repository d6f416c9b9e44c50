"""Trees of any depth (removal, size, extraction), the code storage quota, sizes on the command line, full disks."""
from __future__ import annotations

import errno
import io
import os
import shutil
import sqlite3
import subprocess
import zipfile
from pathlib import Path

import pytest

from lamina.config import parse_size
from lamina.errors import CodeStorageExceededException, InvalidParameterValueException
from lamina.store.blobs import STORAGE_EXCEEDED, CodeStore
from lamina.store.codezip import extract_zip, inspect_zip
from lamina.store.fsutil import DirCursor, remove_tree, tree_size
from lamina.store.space import storage_exhausted

CORRUPT = "Could not unzip uploaded file. Please check your file, then try to upload again."
DEPTH = 3000  # "d/" * 3000 is 6000 bytes: past PATH_MAX, and past Python's recursion limit


def deep_tree(root: Path, depth: int = DEPTH) -> None:
    """root/d/d/.../d/f with `depth` levels, plus a file and a symlink out of the tree on every 100th level."""
    root.mkdir()
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(depth):
            if level % 100 == 0:
                with open(os.open("file", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as handle:
                    handle.write(b"x" * 10)
                os.symlink("/etc", "out", dir_fd=fd)
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
        with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "wb") as handle:
            handle.write(b"bottom")
    finally:
        os.close(fd)


def test_remove_tree_goes_beyond_path_max_and_the_recursion_limit_without_following_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("mine")
    root = tmp_path / "tree"
    deep_tree(root)
    (root / "link-out").symlink_to(outside)
    assert tree_size(root) == 30 * 10 + len(b"bottom")
    remove_tree(root)
    assert not root.exists()
    assert (outside / "keep").read_text() == "mine"


def test_remove_tree_takes_files_links_and_missing_paths(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(tmp_path / "file")
    remove_tree(tmp_path / "link")
    assert (tmp_path / "file").exists()
    remove_tree(tmp_path / "file")
    remove_tree(tmp_path / "missing")
    assert list(tmp_path.iterdir()) == []


def test_cursor_moves_between_branches_and_refuses_symlinks(tmp_path: Path) -> None:
    for branch in ("a/b/c", "a/x", "y"):
        (tmp_path / branch).mkdir(parents=True)
    (tmp_path / "a/b/c/marker").write_text("c")
    (tmp_path / "a/jump").symlink_to(tmp_path / "y")
    cursor = DirCursor(tmp_path)
    try:
        for parts in [("a", "b", "c"), ("a", "x"), ("y",), ("a", "b", "c"), ("a",), ()]:
            cursor.move(parts)
            assert os.path.samestat(os.fstat(cursor.fd), os.stat(tmp_path.joinpath(*parts)))
        with pytest.raises(OSError):
            cursor.move(("a", "jump"))
    finally:
        cursor.close()


def zip_of(entries: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_deep_packages_extract_below_a_long_root_and_paths_past_path_max_are_refused(tmp_path: Path) -> None:
    deepest = "a/" * 2040 + "f.txt"  # 4085 bytes: "/var/task/" + it is the longest path PATH_MAX allows
    package = tmp_path / "code.zip"
    package.write_bytes(zip_of({deepest: b"ok"}))
    dest = tmp_path / ("long" * 50) / "tree"
    assert extract_zip(package, dest) == 2
    assert tree_size(dest) == 2
    remove_tree(dest)  # pytest's own clean-up of old temporary directories recurses
    for name in ("a/" * 2041 + "f.txt", "b" * 256):
        with pytest.raises(InvalidParameterValueException) as caught:
            inspect_zip(zip_of({name: b"x"}))
        assert caught.value.message == CORRUPT


def bomb(name: str, size: int) -> bytes:
    """A zip of a few hundred bytes that extracts to `size` bytes of zeros (bzip2 reaches 100000:1 on them)."""
    return zip_of({name: bytes(size)}, zipfile.ZIP_BZIP2)


def test_quota_counts_extracted_trees_once_and_refuses_what_would_pass_it(tmp_path: Path) -> None:
    referenced: set[str] = set()
    store = CodeStore(tmp_path / "code", limit=5 << 20, referenced=lambda: set(referenced))
    first, second = bomb("a", 2 << 20), bomb("b", 2 << 20)
    assert len(first) < 1000
    for data in (first, first, second):  # the same package twice is one tree
        with store.ingest(data) as summary:
            referenced.add(summary.sha256_hex)
    assert store.usage() == {"ExtractedCodeSize": 4 << 20, "CodeStorageLimit": 5 << 20, "Trees": 2}
    third = bomb("c", 2 << 20)
    with pytest.raises(CodeStorageExceededException) as caught:
        with store.ingest(third):
            pytest.fail("refused content reached the caller")
    assert (caught.value.status, caught.value.message) == (400, STORAGE_EXCEEDED)
    assert sorted(path.name for path in (tmp_path / "code/trees").iterdir()) == sorted(referenced)
    assert len(list((tmp_path / "code/blobs").iterdir())) == 2
    referenced.discard(inspect_zip(first).sha256_hex)  # deleting a function frees its quota at once
    with store.ingest(third) as summary:
        referenced.add(summary.sha256_hex)
    assert store.usage()["ExtractedCodeSize"] == 4 << 20


def test_a_failed_caller_takes_its_new_content_back_and_collection_spares_pinned_content(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "code")
    with pytest.raises(RuntimeError):
        with store.ingest(zip_of({"app.py": b"1"})):
            store.collect_garbage(grace=0.0)  # an upload in flight is not garbage
            assert len(list((tmp_path / "code/trees").iterdir())) == 1
            raise RuntimeError("the record could not be committed")
    assert list((tmp_path / "code/trees").iterdir()) == []
    assert list((tmp_path / "code/blobs").iterdir()) == []


def test_unreferenced_trees_outlive_their_blobs_for_the_grace_period(tmp_path: Path) -> None:
    store = CodeStore(tmp_path / "code")
    with store.ingest(zip_of({"app.py": b"1"})) as summary:
        pass
    store.collect_garbage()
    assert not store.blob_path(summary.sha256_hex).exists()
    assert (tmp_path / "code/trees" / summary.sha256_hex).is_dir()  # a busy environment may still run from it
    assert store.usage()["ExtractedCodeSize"] == 0
    store.collect_garbage(grace=0.0)
    assert list((tmp_path / "code/trees").iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("chattr") is None, reason="needs root and chattr")
def test_start_up_collection_quarantines_what_it_cannot_remove_and_measures_the_rest(tmp_path: Path) -> None:
    kept = zip_of({"app.py": b"12345"})
    store = CodeStore(tmp_path / "code")
    with store.ingest(kept) as summary:
        pass
    stuck = tmp_path / "code/trees/stuck"
    stuck.mkdir()
    (stuck / "file").write_text("x")
    if subprocess.run(["chattr", "+i", str(stuck / "file")], capture_output=True).returncode != 0:
        pytest.skip("the file system has no immutable attribute")
    try:
        restarted = CodeStore(tmp_path / "code", referenced=lambda: {summary.sha256_hex})
        restarted.collect_garbage(grace=0.0)
        assert restarted.usage()["ExtractedCodeSize"] == 5
        assert not stuck.exists()
        [moved] = (tmp_path / "code/quarantine").iterdir()
        assert moved.name.startswith("stuck.")
    finally:
        subprocess.run(["chattr", "-R", "-i", str(tmp_path / "code")], check=False)


@pytest.mark.parametrize(("text", "size"), [
    ("75G", 75 * 2**30), ("512M", 512 * 2**20), ("100k", 102400), ("1234", 1234), (" 2T ", 2 * 2**40),
])
def test_sizes_take_binary_suffixes(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "G", "1.5G", "-1", "10X", "10GB"])
def test_malformed_sizes_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_size(text)


def test_full_disk_errors_get_a_plain_answer_and_nothing_else_does() -> None:
    for error in (OSError(errno.ENOSPC, "No space left on device"), sqlite3.OperationalError("database or disk is full")):
        answer = storage_exhausted(error)
        assert answer is not None and answer.status == 500 and answer.code == "ServiceException"
        assert answer.message.startswith("Lamina's storage is exhausted")
    assert storage_exhausted(OSError(errno.EACCES, "Permission denied")) is None
    assert storage_exhausted(sqlite3.OperationalError("database is locked")) is None
