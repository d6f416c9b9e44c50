"""Function logs on disk, CloudWatch-like: per function a set of streams, each a sequence of timestamped events.

Layout: `root/<function key>/<stream>.<segment>.log`, names percent-encoded so any key or stream name is one safe
path component. Each line of a file is one event, `<epoch ms> <message>\\n`; the message is a line of output
without its newline. A stream is split into segments of a quarter of the function's budget, so retention can drop
old output of a long-lived environment too, not only whole streams.

Appending costs a list append, not a syscall: writes are buffered, and in the server one `lamina-log-writer` thread
(`start()`) writes them out every `flush_interval` seconds, or at once when the buffer passes 256 KB, so no file
write, retention check or directory removal runs on the event loop. Without `start()` (tools, tests) `flush()`
writes on the caller's thread, and a full buffer is flushed by the `append` that filled it. Readers need only the
files: `lamina logs --follow` can run in another process with its own `LogStore`.
"""
from __future__ import annotations

import contextlib
import heapq
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Callable, NamedTuple
from urllib.parse import unquote

MIB = 1 << 20
_FLUSH_BYTES = 256 * 1024
_SUFFIX = ".log"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")
_log = logging.getLogger("lamina.logs")


class LogEvent(NamedTuple):
    timestamp_ms: int
    stream_name: str
    message: str


class LogStore:
    def __init__(self, root: Path, *, max_bytes_per_function: int = 64 * MIB, flush_interval: float = 0.2) -> None:
        self._root = root
        self._max_bytes = max_bytes_per_function
        self._segment_bytes = max(1, max_bytes_per_function // 4)
        self._flush_interval = flush_interval
        self._lock = threading.Lock()  # guards the buffer; held only for list operations
        self._io_lock = threading.Lock()  # one flush at a time, so chunks reach the files in append order
        self._pending: dict[tuple[str, str], list[tuple[int, bytes]]] = {}
        self._pending_bytes = 0
        self._last_flush = time.monotonic()
        self._segments: dict[tuple[str, str], tuple[int, int]] = {}  # (key, stream) -> (segment, its size)
        self._usage: dict[str, int] = {}  # bytes on disk per function key
        self._dropping = False  # the last write failed (reported once per run of failures)
        self._wake = threading.Event()
        self._stopping = False
        self._writer: threading.Thread | None = None
        self._doomed: list[str] = []  # function keys whose directories the writer removes

    def start(self) -> None:
        """Hand every write to the `lamina-log-writer` thread (until `close()`)."""
        self._stopping = False
        self._writer = threading.Thread(target=self._run_writer, name="lamina-log-writer", daemon=True)
        self._writer.start()

    def _run_writer(self) -> None:
        while not self._stopping:
            self._wake.wait(self._flush_interval)
            self._wake.clear()
            try:
                self._remove_doomed()
                self.flush()
            except Exception:  # noqa: BLE001 - the writer must outlive one bad round (a full disk is handled inside)
                _log.exception("writing function logs failed")

    def append(self, function_key: str, stream_name: str, data: bytes) -> None:
        """Buffer output for a stream; each line becomes an event stamped now (a trailing partial line too)."""
        if not data:
            return
        stamp = time.time_ns() // 1_000_000
        with self._lock:
            self._pending.setdefault((function_key, stream_name), []).append((stamp, data))
            self._pending_bytes += len(data)
            full = self._pending_bytes >= _FLUSH_BYTES
        if full:
            if self._writer is not None:
                self._wake.set()
            else:
                self.flush()

    def flush(self) -> None:
        with self._io_lock:
            with self._lock:
                pending, self._pending = self._pending, {}
                self._pending_bytes = 0
                self._last_flush = time.monotonic()
            written: dict[str, set[Path]] = {}
            for (key, stream), chunks in pending.items():
                try:
                    path = self._write(key, stream, _encode(chunks))
                except OSError as error:  # a full disk: this output is lost, not the server's later logging
                    if not self._dropping:
                        _log.warning("function output dropped, logs cannot be written: %s", error)
                    self._dropping = True
                    continue
                self._dropping = False
                written.setdefault(key, set()).add(path)
            for key, paths in written.items():
                self._enforce_budget(key, paths)

    def close(self) -> None:
        """Stop the writer thread (if started) and write what is buffered."""
        writer, self._writer = self._writer, None
        if writer is not None:
            self._stopping = True
            self._wake.set()
            writer.join()
        self._remove_doomed()
        self.flush()

    def delete_function(self, function_key: str) -> None:
        """Forget a function's output at once; its directory is removed by the writer thread (or here, unstarted)."""
        with self._lock:
            self._pending = {k: v for k, v in self._pending.items() if k[0] != function_key}
            self._doomed.append(function_key)
        if self._writer is not None:
            self._wake.set()
        else:
            self._remove_doomed()

    def rename_keys(self, new_key: Callable[[str], str | None]) -> int:
        """Move each function's logs to the key `new_key(key)` names (None: they stay), by renaming its directory; a
        one-time migration at start-up, before `start()` and any append. Returns how many functions' logs moved.

        Should the new key's directory exist already, the files are moved into it one by one (stream files are unique
        per environment); a file of the same name there stays behind, in the old directory, rather than be lost.
        """
        moved = 0
        with self._io_lock:
            try:
                with os.scandir(self._root) as scan:
                    entries = [entry for entry in scan if entry.is_dir(follow_symlinks=False)]
            except FileNotFoundError:
                return 0
            for entry in sorted(entries, key=lambda entry: entry.name):
                key = unquote(entry.name)
                target = new_key(key)
                if target is None or target == key:
                    continue
                destination = self._directory(target)
                if not destination.exists():
                    os.rename(entry.path, destination)
                else:
                    source = Path(entry.path)
                    for path in list(source.iterdir()):
                        if not (destination / path.name).exists():
                            path.rename(destination / path.name)
                    with contextlib.suppress(OSError):
                        source.rmdir()
                for stale in (key, target):
                    self._usage.pop(stale, None)
                    self._segments = {k: v for k, v in self._segments.items() if k[0] != stale}
                moved += 1
        return moved

    def _remove_doomed(self) -> None:
        with self._lock:
            doomed, self._doomed = self._doomed, []
        if not doomed:
            return
        with self._io_lock:
            for function_key in doomed:
                self._segments = {k: v for k, v in self._segments.items() if k[0] != function_key}
                self._usage.pop(function_key, None)
                shutil.rmtree(self._directory(function_key), ignore_errors=True)

    def read(self, function_key: str, *, since_ms: int | None = None) -> Iterator[LogEvent]:
        """All events of a function, oldest first across its streams."""
        self.flush()
        sources = []
        for path in self._files(function_key):
            first = _first_timestamp(path)
            if first is not None:
                sources.append((first, str(path)))
        events = _merge(sources)
        if since_ms is None:
            return events
        return (event for event in events if event.timestamp_ms >= since_ms)

    def follow(
        self, function_key: str, poll_interval: float = 0.2, *, since_ms: int | None = None
    ) -> Iterator[LogEvent]:
        """Existing events, then new ones as they are flushed, forever (the caller stops iterating).

        Each poll's events are yielded in time order; an event flushed late may come after a newer one yielded
        by an earlier poll.
        """
        offsets: dict[Path, int] = {}
        while True:
            self.flush()
            batch: list[LogEvent] = []
            present = set(self._files(function_key))
            for path in present:
                batch.extend(_read_new(path, offsets))
            for path in offsets.keys() - present:
                del offsets[path]
            batch.sort(key=lambda event: event.timestamp_ms)
            for event in batch:
                if since_ms is None or event.timestamp_ms >= since_ms:
                    yield event
            if not batch:
                time.sleep(poll_interval)

    def _directory(self, function_key: str) -> Path:
        return self._root / _quote(function_key)

    def _files(self, function_key: str) -> list[Path]:
        try:
            with os.scandir(self._directory(function_key)) as entries:
                return [Path(entry.path) for entry in entries if entry.name.endswith(_SUFFIX)]
        except FileNotFoundError:
            return []

    def _write(self, key: str, stream: str, blob: bytes) -> Path:
        directory = self._directory(key)
        if key not in self._usage:
            directory.mkdir(parents=True, exist_ok=True)
            self._usage[key] = sum(path.stat().st_size for path in self._files(key))
        segment, size = self._segments.get((key, stream)) or _last_segment(directory, _quote(stream))
        if size >= self._segment_bytes:
            segment, size = segment + 1, 0
        path = directory / f"{_quote(stream)}.{segment}{_SUFFIX}"
        with open(path, "ab") as handle:
            handle.write(blob)
        self._segments[(key, stream)] = (segment, size + len(blob))
        self._usage[key] += len(blob)
        return path

    def _enforce_budget(self, key: str, keep: set[Path]) -> None:
        """Over budget, delete least recently written segments, never one just written (that keeps the newest)."""
        if self._usage[key] <= self._max_bytes:
            return
        files = []
        for path in self._files(key):
            try:
                info = path.stat()
            except FileNotFoundError:
                continue
            # Segment number breaks mtime ties (coarse clocks): within a stream it is the true order.
            files.append((info.st_mtime_ns, _segment_number(path.name), path.name, path, info.st_size))
        files.sort()
        total = sum(size for *_, size in files)
        for _, segment, _, path, size in files:
            if total <= self._max_bytes:
                break
            if path in keep:
                continue
            path.unlink(missing_ok=True)
            total -= size
            stream = _stream_of(path)
            active = self._segments.get((key, stream))
            if active is not None and active[0] == segment:
                del self._segments[(key, stream)]  # its next write starts from what is left on disk
        self._usage[key] = total


def _quote(name: str) -> str:
    """Percent-encode everything but letters, digits, `_` and `-`: no `/`, no `.`, so never `..` or a separator."""
    return _UNSAFE.sub(lambda match: "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8")), name)


def _segment_number(file_name: str) -> int:
    return int(file_name.split(".")[1])


def _last_segment(directory: Path, quoted_stream: str) -> tuple[int, int]:
    """The newest segment of a stream already on disk and its size, or a fresh first segment."""
    found = [
        (_segment_number(entry.name), entry.stat().st_size)
        for entry in os.scandir(directory)
        if entry.name.startswith(quoted_stream + ".") and entry.name.endswith(_SUFFIX)
    ]
    return max(found) if found else (0, 0)


def _encode(chunks: list[tuple[int, bytes]]) -> bytes:
    """Buffered chunks as event lines: every line of a chunk gets the chunk's timestamp."""
    out: list[bytes] = []
    for stamp, data in chunks:
        prefix = b"%d " % stamp
        if data.endswith(b"\n"):
            data = data[:-1]
        out.append(prefix + data.replace(b"\n", b"\n" + prefix) + b"\n")
    return b"".join(out)


def _decode(line: bytes, stream: str) -> LogEvent | None:
    stamp, _, message = line[:-1].partition(b" ")
    if not stamp.isdigit():
        return None  # a line torn by a crash mid-write
    return LogEvent(int(stamp), stream, message.decode("utf-8", "replace"))


def _stream_of(path: Path) -> str:
    return unquote(path.name.split(".", 1)[0])


def _first_timestamp(path: Path) -> int | None:
    try:
        with open(path, "rb") as handle:
            for line in handle:
                event = _decode(line, "") if line.endswith(b"\n") else None
                if event is not None:
                    return event.timestamp_ms
    except FileNotFoundError:
        pass
    return None


def _events(path: Path) -> Iterator[LogEvent]:
    stream = _stream_of(path)
    try:
        with open(path, "rb") as handle:
            for line in handle:
                if not line.endswith(b"\n"):
                    return  # still being written
                event = _decode(line, stream)
                if event is not None:
                    yield event
    except FileNotFoundError:
        return


def _merge(sources: list[tuple[int, str]]) -> Iterator[LogEvent]:
    """K-way merge by timestamp that opens a file only once its first event is due.

    A function can have thousands of short streams; opening them all at once, as heapq.merge would, could run out
    of file descriptors, while this holds open only the streams that overlap in time.
    """
    sources.sort()
    heap: list[tuple[int, int, LogEvent, Iterator[LogEvent]]] = []
    index = 0
    while heap or index < len(sources):
        while index < len(sources) and (not heap or sources[index][0] <= heap[0][0]):
            events = _events(Path(sources[index][1]))
            index += 1
            event = next(events, None)
            if event is not None:
                heapq.heappush(heap, (event.timestamp_ms, index, event, events))
        if not heap:
            continue
        _, order, event, events = heapq.heappop(heap)
        yield event
        following = next(events, None)
        if following is not None:
            heapq.heappush(heap, (following.timestamp_ms, order, following, events))


def _read_new(path: Path, offsets: dict[Path, int]) -> list[LogEvent]:
    """Complete lines added to `path` since the last call; a file that shrank was replaced, so it is read anew."""
    offset = offsets.get(path, 0)
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size < offset:
                offset = 0
            handle.seek(offset)
            data = handle.read()
    except FileNotFoundError:
        return []
    complete = data[: data.rfind(b"\n") + 1]
    offsets[path] = offset + len(complete)
    stream = _stream_of(path)
    events = (_decode(line + b"\n", stream) for line in complete.split(b"\n")[:-1])
    return [event for event in events if event is not None]
