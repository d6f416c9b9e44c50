"""Validation and extraction of deployment-package zips.

Uploads are untrusted: a zip can name paths outside the code root, carry symlinks that lead out of it, claim sizes
that are not true, or be a bomb. `inspect_zip` settles all of that in memory from the archive's directories, with
AWS's error messages, so a bad upload is refused before anything is stored. `extract_zip` repeats the checks on the
stored blob and counts the bytes it really writes, because declared sizes can lie.
"""
from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import lzma
import os
import re
import stat
import struct
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from lamina.errors import InvalidParameterValueException, RequestEntityTooLargeException
from lamina.store.fsutil import DirCursor, remove_tree

MAX_ZIPPED = 52_428_800
MAX_UNZIPPED = 262_144_000
MAX_MEMBERS = 20_000

_CORRUPT_MESSAGE = "Could not unzip uploaded file. Please check your file, then try to upload again."
# What a malformed archive can raise from zipfile and the decompressors it drives.
_ARCHIVE_ERRORS = (
    zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError, ValueError, struct.error,
    NotImplementedError, RuntimeError, zlib.error, lzma.LZMAError,
)
_SUPPORTED_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})
# Stored data cannot expand and deflate cannot beyond about 1032:1, so a member claiming more has a forged header.
# bzip2 and LZMA honestly reach 100000:1 on runs of zeros; for them only the unzipped-size total applies.
_MAX_RATIO = {zipfile.ZIP_STORED: 1, zipfile.ZIP_DEFLATED: 1100}
_RATIO_SLACK = 1024
_ENCRYPTED_FLAG = 0x1
_MAX_NAME_BYTES = 255
# A member's absolute path in the sandbox, "/var/task/" + name (the longer of its mount points, /opt being the other),
# must fit PATH_MAX (4096 with the terminating NUL): a longer path cannot be opened there.
_MAX_PATH_BYTES = 4096 - 1 - len("/var/task/")
_MAX_LINK_TARGET_BYTES = 4095
# Components walked while resolving one symlink (targets of links met on the way included); the kernel gives up
# after 40 links, and no honest package needs more than a few dozen steps.
_MAX_LINK_STEPS = 256
_WINDOWS_DRIVE = re.compile(r"[A-Za-z]:")
_COPY_CHUNK = 1 << 20

_END_OF_DIRECTORY = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_END_OF_DIRECTORY = b"PK\x06\x06"
_DIRECTORY_ENTRY = b"PK\x01\x02"
_END_SIZE, _ZIP64_LOCATOR_SIZE, _ZIP64_END_SIZE = 22, 20, 56

_Parts = tuple[str, ...]


@dataclass(frozen=True)
class ZipSummary:
    sha256_b64: str  # AWS CodeSha256: base64 of the raw SHA-256 digest of the zip bytes
    sha256_hex: str  # content address in the blob store
    size: int  # zipped bytes (CodeSize)
    unzipped_size: int  # declared total of the members


@dataclass
class _Plan:
    """What an archive will put on disk, once every member has been checked."""

    dirs: set[_Parts] = field(default_factory=set)
    files: list[tuple[zipfile.ZipInfo, _Parts, bool]] = field(default_factory=list)
    links: list[tuple[_Parts, str]] = field(default_factory=list)
    declared: int = 0


def inspect_zip(
    data: bytes, *, max_zipped: int = MAX_ZIPPED, max_unzipped: int = MAX_UNZIPPED, max_members: int = MAX_MEMBERS
) -> ZipSummary:
    """Check an uploaded package without writing anything, and give the sizes and hashes AWS reports for it."""
    if len(data) > max_zipped:
        # AWS answers 413 `RequestEntityTooLargeException` with this message (recorded).
        raise RequestEntityTooLargeException(f"Zipped size must be smaller than {max_zipped} bytes")
    with _open(data, max_members) as archive:
        plan = _survey(archive)
    if plan.declared > max_unzipped:
        raise _too_big(max_unzipped)
    digest = hashlib.sha256(data).digest()
    return ZipSummary(base64.b64encode(digest).decode("ascii"), digest.hex(), len(data), plan.declared)


def extract_zip(zip_path: Path, dest: Path, *, max_unzipped: int = MAX_UNZIPPED) -> int:
    """Unpack a package into `dest`, all or nothing, and return the bytes written; an existing `dest` is already the
    content (content-addressed: 0 bytes written).

    The tree is built in a hidden sibling and renamed into place, so a crash never leaves a partial `dest`; a crashed
    sibling is named `.<dest name>.*.partial` for the owner to sweep. File contents are not fsynced: the tree is
    derived from the fsynced blob and can be rebuilt, and a sync per file would make large packages slow.
    """
    if dest.exists():
        return 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    data = zip_path.read_bytes()
    with _open(data, MAX_MEMBERS) as archive:
        plan = _survey(archive)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".partial", dir=dest.parent))
        try:
            written = _materialise(archive, plan, staging, max_unzipped)
            os.chmod(staging, 0o755)
            try:
                os.rename(staging, dest)
            except OSError:
                if not dest.exists():
                    raise
                remove_tree(staging)  # a concurrent extraction of the same content won
                return 0
        except BaseException:
            with contextlib.suppress(OSError):  # what is left is a `.partial` sibling, swept by the owner
                remove_tree(staging)
            raise
    return written


def _corrupt() -> InvalidParameterValueException:
    return InvalidParameterValueException(_CORRUPT_MESSAGE)


def _too_big(limit: int) -> InvalidParameterValueException:
    return InvalidParameterValueException(f"Unzipped size must be smaller than {limit} bytes")


def _open(data: bytes, max_members: int) -> zipfile.ZipFile:
    try:
        if _entry_count(data) > max_members:
            raise _corrupt()
        return zipfile.ZipFile(io.BytesIO(data))
    except _ARCHIVE_ERRORS as error:
        raise _corrupt() from error


def _entry_count(data: bytes) -> int:
    """Central-directory entries, counted by signature in the directory's bytes.

    Hand-parsed because ZipFile builds a ZipInfo per entry (about 6 µs each): a 50 MB upload can list a million
    empty members, seconds of CPU before their number could be checked. zipfile reads exactly this byte range.
    """
    end = data.rfind(_END_OF_DIRECTORY, max(0, len(data) - _END_SIZE - 0xFFFF))
    if end < 0:
        raise zipfile.BadZipFile("no end of central directory")
    (directory_size,) = struct.unpack_from("<I", data, end + 12)
    locator = end - _ZIP64_LOCATOR_SIZE
    if locator >= 0 and data[locator:locator + 4] == _ZIP64_LOCATOR:
        end = locator - _ZIP64_END_SIZE
        if end < 0 or data[end:end + 4] != _ZIP64_END_OF_DIRECTORY:
            raise zipfile.BadZipFile("bad zip64 end of central directory")
        (directory_size,) = struct.unpack_from("<Q", data, end + 40)
    return data.count(_DIRECTORY_ENTRY, max(0, end - directory_size), end)


def _survey(archive: zipfile.ZipFile) -> _Plan:
    """Check every member and decide what each becomes; raise AWS's unzip error for anything unsafe or broken."""
    members: dict[_Parts, tuple[str, zipfile.ZipInfo]] = {}
    try:
        for info in archive.infolist():
            path = _member_path(info.filename)
            kind = _kind(info)
            _check_encoding(info)
            archive.open(info).close()  # verifies the local header is where the directory says, without inflating
            if not path:
                continue  # the root itself, e.g. "./"
            previous = members.get(path)
            if previous is not None and previous[0] != kind:
                raise _corrupt()
            members[path] = (kind, info)  # a repeated name: the last copy wins, as with unzip
        targets = {path: _link_target(archive, info) for path, (kind, info) in members.items() if kind == "link"}
    except _ARCHIVE_ERRORS as error:
        raise _corrupt() from error
    plan = _Plan()
    for path, (kind, info) in members.items():
        for depth in range(1, len(path)):
            parent = members.get(path[:depth])
            if parent is not None and parent[0] != "dir":
                raise _corrupt()  # a member inside a file or behind a symlink: writing it would follow the link
            plan.dirs.add(path[:depth])
        if kind == "dir":
            plan.dirs.add(path)
        elif kind == "link":
            if _escapes(path, targets[path], targets):
                raise _corrupt()
            plan.links.append((path, targets[path]))
        else:
            plan.files.append((info, path, bool((info.external_attr >> 16) & 0o111)))
        plan.declared += info.file_size
    return plan


def _member_path(name: str) -> _Parts:
    """The member's path components under the root; absolute names, `..` and backslash forms of them are refused.

    Backslashes stay literal in the name, as AWS keeps them, but count as separators for the safety check.
    """
    pieces = name.replace("\\", "/").split("/")
    if name.startswith(("/", "\\")) or _WINDOWS_DRIVE.match(name) or ".." in pieces:
        raise _corrupt()
    path = tuple(piece for piece in name.split("/") if piece not in ("", "."))
    sizes = [len(part.encode("utf-8", "surrogateescape")) for part in path]
    if any(size > _MAX_NAME_BYTES for size in sizes) or sum(sizes) + len(sizes) - 1 > _MAX_PATH_BYTES:
        raise _corrupt()
    return path


def _kind(info: zipfile.ZipInfo) -> str:
    """`file`, `dir` or `link` from the unix mode in the high bits of external_attr; devices and fifos are refused."""
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "link"
    if info.is_dir() or kind == stat.S_IFDIR:
        return "dir"
    if kind in (0, stat.S_IFREG):
        return "file"
    raise _corrupt()


def _check_encoding(info: zipfile.ZipInfo) -> None:
    if info.flag_bits & _ENCRYPTED_FLAG or info.compress_type not in _SUPPORTED_METHODS:
        raise _corrupt()
    ratio = _MAX_RATIO.get(info.compress_type)
    if ratio is not None and info.file_size > info.compress_size * ratio + _RATIO_SLACK:
        raise _corrupt()


def _link_target(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> str:
    if info.file_size > _MAX_LINK_TARGET_BYTES:
        raise _corrupt()
    raw = archive.read(info)
    if not raw or len(raw) > _MAX_LINK_TARGET_BYTES or b"\x00" in raw:
        raise _corrupt()
    return raw.decode("utf-8")


def _escapes(link: _Parts, target: str, links: dict[_Parts, str]) -> bool:
    """Whether following `link` can leave the root, resolving the archive's own links on the way as the kernel would.

    A purely lexical check is not enough: with `a/b/up -> ../..`, the target `a/b/up/../..` looks inside but is not.
    """
    if target.startswith("/"):
        return True
    current = list(link[:-1])
    pending = target.split("/")[::-1]
    steps = 0
    while pending:
        steps += 1
        if steps > _MAX_LINK_STEPS:
            return True
        part = pending.pop()
        if part in ("", "."):
            continue
        if part == "..":
            if not current:
                return True
            current.pop()
            continue
        current.append(part)
        followed = links.get(tuple(current))
        if followed is not None:
            if followed.startswith("/"):
                return True
            current.pop()
            pending.extend(followed.split("/")[::-1])
    return False


def _materialise(archive: zipfile.ZipFile, plan: _Plan, root: Path, max_unzipped: int) -> int:
    """Write the plan under `root`: dirs 0755, files 0644 or 0755, never a special bit, links last; returns the
    bytes written.

    Links come last so no file is ever written through one (the survey already refused members behind links). Paths
    are walked relative to a directory descriptor, sorted so that each step is short: the data directory's own path
    plus a deep member can pass PATH_MAX.
    """
    cursor = DirCursor(root)
    try:
        for path in sorted(plan.dirs):
            cursor.move(path[:-1])
            os.mkdir(path[-1], dir_fd=cursor.fd)
            # mkdir's mode is cut by the umask; the sandbox's other uid must read the tree
            os.chmod(path[-1], 0o755, dir_fd=cursor.fd)
        written = 0
        for info, path, executable in sorted(plan.files, key=lambda file: file[1]):
            cursor.move(path[:-1])
            written = _copy_member(archive, info, cursor.fd, path[-1], 0o755 if executable else 0o644,
                                   written, max_unzipped)
        for path, target in sorted(plan.links):
            cursor.move(path[:-1])
            os.symlink(target, path[-1], dir_fd=cursor.fd)
    finally:
        cursor.close()
    return written


def _copy_member(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, dir_fd: int, name: str, mode: int, written: int, limit: int
) -> int:
    """Copy one member, counting the bytes that really come out; returns the running total."""
    try:
        source = archive.open(info)
    except _ARCHIVE_ERRORS as error:
        raise _corrupt() from error
    # O_EXCL and O_NOFOLLOW: an existing path (or link) is never written through.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    with source, open(os.open(name, flags, mode, dir_fd=dir_fd), "wb") as sink:
        os.fchmod(sink.fileno(), mode)
        while True:
            try:
                chunk = source.read(_COPY_CHUNK)
            except _ARCHIVE_ERRORS as error:
                raise _corrupt() from error
            if not chunk:
                return written
            written += len(chunk)
            if written > limit:
                raise _too_big(limit)
            sink.write(chunk)
