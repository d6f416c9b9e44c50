"""Deployment-package zips: AWS's hashes and error messages, unsafe archives refused, extraction all or nothing."""
from __future__ import annotations

import base64
import hashlib
import io
import os
import stat
import struct
import time
import zipfile
from pathlib import Path

import pytest

from lamina.errors import InvalidParameterValueException, RequestEntityTooLargeException
from lamina.store.codezip import extract_zip, inspect_zip

CORRUPT = "Could not unzip uploaded file. Please check your file, then try to upload again."
FILE, EXEC, LINK = 0o100644, 0o100755, stat.S_IFLNK | 0o777


def make_zip(entries: list[tuple[str, bytes, int]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data, mode in entries:
            info = zipfile.ZipInfo(name)
            info.external_attr = mode << 16
            info.compress_type = method
            archive.writestr(info, data)
    return buffer.getvalue()


def forge_size(data: bytes, file_size: int) -> bytes:
    """Rewrite the uncompressed size of a one-member zip in both headers, as a hostile uploader would."""
    forged = bytearray(data)
    struct.pack_into("<I", forged, 22, file_size)  # local file header
    struct.pack_into("<I", forged, forged.find(b"PK\x01\x02") + 24, file_size)  # central directory entry
    return bytes(forged)


def refused(data: bytes, **limits: int) -> str:
    with pytest.raises(InvalidParameterValueException) as caught:
        inspect_zip(data, **limits)
    assert caught.value.status == 400
    return caught.value.message


def test_summary_gives_aws_code_sha256_and_sizes() -> None:
    source = b"def handler(event, context):\n    return 1\n"
    data = make_zip([("index.py", source, FILE), ("lib/", b"", 0o40755), ("lib/data.bin", b"x" * 5000, FILE)])
    summary = inspect_zip(data)
    digest = hashlib.sha256(data).digest()
    assert summary.sha256_b64 == base64.b64encode(digest).decode()
    assert summary.sha256_hex == digest.hex()
    assert summary.size == len(data)
    assert summary.unzipped_size == len(source) + 5000


@pytest.mark.parametrize("data", [
    b"",
    b"this is not a zip file at all",
    os.urandom(4096),
    make_zip([("a.py", b"print(1)\n" * 100, FILE)])[:-30],  # truncated: the end of the central directory is gone
    make_zip([("a.py", b"print(1)\n" * 100, FILE)])[40:],  # headers no longer where the directory says
], ids=["empty", "text", "random", "truncated", "shifted"])
def test_corrupt_archives_get_aws_message(data: bytes) -> None:
    assert refused(data) == CORRUPT


def test_zipped_size_over_limit_is_413_with_aws_message() -> None:
    data = make_zip([("a.bin", os.urandom(3000), FILE)], zipfile.ZIP_STORED)
    with pytest.raises(RequestEntityTooLargeException) as caught:
        inspect_zip(data, max_zipped=2048)
    assert caught.value.status == 413
    assert caught.value.message == "Zipped size must be smaller than 2048 bytes"
    assert inspect_zip(data, max_zipped=len(data)).size == len(data)


def test_bomb_over_unzipped_limit_names_the_limit() -> None:
    bomb = make_zip([("zeros", bytes(10 << 20), FILE)])
    assert len(bomb) < 20_000
    assert refused(bomb, max_unzipped=1 << 20) == "Unzipped size must be smaller than 1048576 bytes"
    assert inspect_zip(bomb, max_unzipped=10 << 20).unzipped_size == 10 << 20


def test_declared_sizes_are_summed_against_the_default_limit() -> None:
    # bzip2 honestly reaches huge ratios, so only the total can stop this one.
    data = forge_size(make_zip([("big", bytes(1000), FILE)], zipfile.ZIP_BZIP2), 300_000_000)
    assert refused(data) == "Unzipped size must be smaller than 262144000 bytes"


def test_deflate_member_claiming_an_impossible_ratio_is_refused() -> None:
    data = forge_size(make_zip([("a", os.urandom(2000), FILE)]), 100_000_000)
    assert refused(data, max_unzipped=1 << 30) == CORRUPT


@pytest.mark.parametrize("name", [
    "../evil", "a/../../evil", "a/b/../../../evil", "/etc/passwd", "//etc/passwd", "..\\evil",
    "a\\..\\..\\evil", "\\windows\\evil", "C:\\evil", "c:evil", "./../evil",
])
def test_paths_leaving_the_root_are_refused(name: str) -> None:
    assert refused(make_zip([("ok.py", b"1", FILE), (name, b"pwned", FILE)])) == CORRUPT


def test_dot_segments_and_backslashes_inside_names_are_kept() -> None:
    data = make_zip([("./a.py", b"1", FILE), ("dir\\b.py", b"2", FILE), ("x//y.py", b"3", FILE)])
    assert inspect_zip(data).unzipped_size == 3


@pytest.mark.parametrize("links", [
    [("passwd", "/etc/passwd")],
    [("a/passwd", "../../etc/passwd")],
    [("a/up", ".."), ("a/b/up", "../../..")],
    # Each link alone stays inside, but `t` goes through `a/b/up` (the root) and then one level above it.
    [("a/b/up", "../.."), ("t", "a/b/up/..")],
    [("x", "y"), ("y", "x")],
], ids=["absolute", "relative", "two-levels", "chained", "loop"])
def test_symlinks_that_can_leave_the_root_are_refused(links: list[tuple[str, str]]) -> None:
    entries = [("a/b/file", b"1", FILE)] + [(name, target.encode(), LINK) for name, target in links]
    assert refused(make_zip(entries)) == CORRUPT


def test_members_behind_a_symlink_are_refused() -> None:
    # Writing `lnk/x` would follow the link; here it points inside, but the next archive's might not.
    data = make_zip([("sub/keep", b"1", FILE), ("lnk", b"sub", LINK), ("lnk/x", b"2", FILE)])
    assert refused(data) == CORRUPT


def test_device_entries_and_file_dir_clashes_are_refused() -> None:
    assert refused(make_zip([("dev", b"", stat.S_IFCHR | 0o666)])) == CORRUPT
    assert refused(make_zip([("a", b"file", FILE), ("a/b", b"under a file", FILE)])) == CORRUPT
    assert refused(make_zip([("a", b"file", FILE), ("a/", b"", 0o40755)])) == CORRUPT


def test_member_count_is_limited() -> None:
    entries = [(f"f{i}", b"", FILE) for i in range(30_000)]
    assert refused(make_zip(entries, zipfile.ZIP_STORED)) == CORRUPT
    small = make_zip([("a", b"", FILE), ("b", b"", FILE), ("c", b"", FILE)])
    assert inspect_zip(small, max_members=3).unzipped_size == 0
    assert refused(small, max_members=2) == CORRUPT


def test_inspect_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    inspect_zip(make_zip([("a/b.py", b"1", FILE), ("l", b"a/b.py", LINK)]))
    with pytest.raises(InvalidParameterValueException):
        inspect_zip(make_zip([("../x", b"1", FILE)]))
    assert list(tmp_path.iterdir()) == []


def test_a_50mb_upload_is_checked_quickly() -> None:
    data = make_zip([(f"lib/{i}.bin", os.urandom(50_000), FILE) for i in range(1000)], zipfile.ZIP_STORED)
    assert len(data) > 50_000_000
    started = time.perf_counter()
    summary = inspect_zip(data)
    assert time.perf_counter() - started < 1.5
    assert summary.unzipped_size == 50_000_000


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "code.zip"
    path.write_bytes(data)
    return path


def test_extract_sets_safe_modes_keeping_the_exec_bit(tmp_path: Path) -> None:
    data = make_zip([
        ("bootstrap", b"#!/bin/sh\n", EXEC), ("lib/a.py", b"a = 1\n", FILE), ("secret", b"s", 0o100600),
        ("suid", b"x", 0o104755), ("private/", b"", 0o40700), ("private/n", b"n", 0o100000), ("bare", b"b", 0),
    ])
    dest = tmp_path / "trees" / "abc"
    previous = os.umask(0o077)
    try:
        extract_zip(write(tmp_path, data), dest)
    finally:
        os.umask(previous)
    modes = {str(p.relative_to(dest)): stat.S_IMODE(p.lstat().st_mode) for p in dest.rglob("*")}
    assert modes == {"bootstrap": 0o755, "lib": 0o755, "lib/a.py": 0o644, "secret": 0o644, "suid": 0o755,
                     "private": 0o755, "private/n": 0o644, "bare": 0o644}
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert (dest / "bootstrap").read_bytes() == b"#!/bin/sh\n"
    assert os.access(dest / "bootstrap", os.X_OK)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["abc"]


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_extract_recreates_safe_symlinks_and_keeps_duplicates_last(tmp_path: Path) -> None:
    data = make_zip([("lib/tool.js", b"old", FILE), ("lib/tool.js", b"new", FILE),
                     ("bin/tool", b"../lib/tool.js", LINK)])
    dest = tmp_path / "tree"
    extract_zip(write(tmp_path, data), dest)
    assert os.readlink(dest / "bin/tool") == "../lib/tool.js"
    assert (dest / "bin/tool").read_bytes() == b"new"


def test_existing_destination_is_left_alone(tmp_path: Path) -> None:
    dest = tmp_path / "tree"
    dest.mkdir()
    (dest / "marker").write_text("already here")
    extract_zip(write(tmp_path, make_zip([("a.py", b"1", FILE)])), dest)
    assert [p.name for p in dest.iterdir()] == ["marker"]


def test_lying_size_header_is_caught_while_extracting_and_leaves_nothing(tmp_path: Path) -> None:
    data = forge_size(make_zip([("a.bin", bytes(2 << 20), FILE)]), 10)
    assert inspect_zip(data, max_unzipped=1 << 20).unzipped_size == 10  # the headers alone look fine
    dest = tmp_path / "trees" / "abc"
    with pytest.raises(InvalidParameterValueException) as caught:
        extract_zip(write(tmp_path, data), dest, max_unzipped=1 << 20)
    assert caught.value.message == CORRUPT
    assert list(dest.parent.iterdir()) == []


def test_extract_counts_real_bytes_and_aborts_past_the_limit(tmp_path: Path) -> None:
    data = make_zip([("a.bin", os.urandom(600_000), FILE), ("b.bin", os.urandom(600_000), FILE)])
    dest = tmp_path / "trees" / "abc"
    with pytest.raises(InvalidParameterValueException) as caught:
        extract_zip(write(tmp_path, data), dest, max_unzipped=1 << 20)
    assert caught.value.message == "Unzipped size must be smaller than 1048576 bytes"
    assert list(dest.parent.iterdir()) == []


def test_extract_refuses_unsafe_archives_without_touching_anything(tmp_path: Path) -> None:
    data = make_zip([("ok.py", b"1", FILE), ("../../evil", b"pwned", FILE)])
    dest = tmp_path / "a" / "b" / "tree"
    with pytest.raises(InvalidParameterValueException):
        extract_zip(write(tmp_path, data), dest)
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["a", "b", "code.zip"]
