"""Function logs: AWS's platform lines, the 4 KB invocation tail, and the on-disk store with retention and follow."""
from __future__ import annotations

import base64
import re
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from lamina.logs import (
    InvocationLog,
    LogStore,
    end_line,
    init_start_line,
    log_group_name,
    report_line,
    start_line,
    stream_name,
    timeout_line,
)
from tests.support.polling import wait_until

KEY = "us-east-1/my-func"
STREAM = "2024/05/01/[$LATEST]0123456789abcdef0123456789abcdef"


# -- format ---------------------------------------------------------------------------------------------------------

def test_platform_lines_match_recorded_aws_output() -> None:
    assert start_line("rid", "$LATEST") == "START RequestId: rid Version: $LATEST"
    assert start_line("rid", "1") == "START RequestId: rid Version: 1"
    assert end_line("rid") == "END RequestId: rid"
    assert report_line("rid", 3.01, 128, 36, init_duration_ms=110.1) == (
        "REPORT RequestId: rid\tDuration: 3.01 ms\tBilled Duration: 4 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 36 MB\tInit Duration: 110.10 ms\t"
    )
    assert report_line("rid", 2.9, 128, 36) == (
        "REPORT RequestId: rid\tDuration: 2.90 ms\tBilled Duration: 3 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 36 MB\t"
    )
    assert init_start_line("python:3.10.v11", "arn:aws:lambda:us-east-1::runtime:abc") == (
        "INIT_START Runtime Version: python:3.10.v11\tRuntime Version ARN: arn:aws:lambda:us-east-1::runtime:abc"
    )


@pytest.mark.parametrize(("duration", "billed"), [(3.0, 3), (3.001, 3), (3.006, 4), (0.2, 1), (0.0, 1), (999.5, 1000)])
def test_billed_duration_rounds_the_shown_duration_up(duration: float, billed: int) -> None:
    assert f"\tBilled Duration: {billed} ms\t" in report_line("rid", duration, 128, 1)


def test_timeout_line_has_aws_timestamp() -> None:
    at = datetime(2020, 11, 10, 5, 46, 57, 874000, tzinfo=timezone.utc).timestamp()
    assert timeout_line("rid", 3, at) == "2020-11-10T05:46:57.874Z rid Task timed out after 3.00 seconds"


def test_names_follow_cloudwatch_conventions() -> None:
    at = datetime(2024, 5, 1, 23, 59, tzinfo=timezone.utc).timestamp()
    first, second = stream_name("$LATEST", at), stream_name("$LATEST", at)
    assert re.fullmatch(r"2024/05/01/\[\$LATEST\][0-9a-f]{32}", first)
    assert first != second
    assert re.fullmatch(r"2024/05/01/\[7\][0-9a-f]{32}", stream_name("7", at))
    assert log_group_name("my-func") == "/aws/lambda/my-func"


# -- invocation log -------------------------------------------------------------------------------------------------

def test_invocation_log_keeps_order_and_starts_platform_lines_on_their_own_line() -> None:
    log = InvocationLog()
    log.line(start_line("rid", "$LATEST"))
    log.write(b"hello\n")
    log.write(b"no newline")
    log.write(b"")
    log.line(end_line("rid"))
    log.write(b"")
    log.line("REPORT RequestId: rid\t")
    assert log.getvalue() == (
        b"START RequestId: rid Version: $LATEST\nhello\nno newline\nEND RequestId: rid\nREPORT RequestId: rid\t\n"
    )


def test_tail_is_exactly_the_last_4096_bytes() -> None:
    log = InvocationLog()
    log.line(start_line("rid", "$LATEST"))
    for index in range(700):
        log.write(b"line %d of output\n" % index)
    log.write(b"x" * 3000)
    log.line(end_line("rid"))
    full = log.getvalue()
    tail = base64.b64decode(log.tail_base64())
    assert len(full) > 8192
    assert tail == full[-4096:]
    assert log.tail(10) == full[-10:]


def test_tail_of_a_short_log_is_all_of_it() -> None:
    log = InvocationLog()
    log.line(start_line("rid", "$LATEST"))
    log.write("ünïcode\n".encode())
    assert base64.b64decode(log.tail_base64()) == log.getvalue()
    assert InvocationLog().tail_base64() == ""


def test_tail_inside_one_big_chunk() -> None:
    log = InvocationLog()
    log.write(bytes(range(256)) * 40)
    assert log.tail() == (bytes(range(256)) * 40)[-4096:]


# -- store ----------------------------------------------------------------------------------------------------------

def messages(store: LogStore, key: str = KEY, **options: int) -> list[str]:
    return [event.message for event in store.read(key, **options)]


def files(root: Path) -> list[Path]:
    return sorted(path for path in root.rglob("*") if path.is_file())


def test_events_round_trip_with_timestamps_and_stream_names(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    before = time.time_ns() // 1_000_000
    store.append(KEY, STREAM, b"START RequestId: r Version: $LATEST\nhello\n\nno newline")
    after = time.time_ns() // 1_000_000
    events = list(store.read(KEY))
    assert [event.message for event in events] == ["START RequestId: r Version: $LATEST", "hello", "", "no newline"]
    assert {event.stream_name for event in events} == {STREAM}
    assert all(before <= event.timestamp_ms <= after for event in events)
    assert [path.parent.name for path in files(tmp_path)] == ["us-east-1%2Fmy-func"]


def test_read_merges_streams_in_time_order_and_filters_by_time(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    for index, stream in enumerate(["a", "b", "a", "c", "b"]):
        store.append(KEY, stream, b"event %d\n" % index)
        time.sleep(0.003)
    events = list(store.read(KEY))
    assert [event.message for event in events] == [f"event {index}" for index in range(5)]
    assert [event.stream_name for event in events] == ["a", "b", "a", "c", "b"]
    assert messages(store, since_ms=events[2].timestamp_ms) == ["event 2", "event 3", "event 4"]
    assert messages(store, "us-east-1/other") == []


def test_writes_wait_for_a_flush(tmp_path: Path) -> None:
    store = LogStore(tmp_path, flush_interval=0.05)
    store.append(KEY, STREAM, b"buffered\n")
    assert files(tmp_path) == []
    store.flush()
    assert [path.read_bytes().split(b" ", 1)[1] for path in files(tmp_path)] == [b"buffered\n"]
    store.append(KEY, STREAM, b"x" * 300_000)  # past the buffer threshold, unstarted: written by this append
    assert sum(path.stat().st_size for path in files(tmp_path)) > 300_000
    store.append(KEY, STREAM, b"last\n")
    store.close()
    assert messages(LogStore(tmp_path), KEY)[-1] == "last"


def test_the_writer_thread_writes_on_its_interval_and_at_once_when_the_buffer_fills(tmp_path: Path) -> None:
    store = LogStore(tmp_path, flush_interval=0.05)
    store.start()
    writer_threads: list[str] = []
    write = store._write

    def recording_write(*args):
        writer_threads.append(threading.current_thread().name)
        return write(*args)

    store._write = recording_write  # type: ignore[method-assign]
    store.append(KEY, STREAM, b"buffered\n")
    assert files(tmp_path) == [], "append only buffers"
    wait_until(lambda: files(tmp_path) != [], timeout=5, interval=0.005)
    store._flush_interval = 60.0  # from now on only a full buffer wakes the writer
    time.sleep(0.1)
    store.append(KEY, STREAM, b"x" * 300_000)
    wait_until(lambda: sum(path.stat().st_size for path in files(tmp_path)) > 300_000, timeout=5, interval=0.005)
    store.append(KEY, STREAM, b"last\n")
    store.delete_function("us-east-1/other")
    store.close()  # stops the writer, then writes what is left
    assert set(writer_threads[:2]) == {"lamina-log-writer"}
    assert messages(LogStore(tmp_path), KEY)[-1] == "last"


def test_a_deleted_functions_logs_are_removed_by_the_writer(tmp_path: Path) -> None:
    store = LogStore(tmp_path, flush_interval=0.02)
    store.start()
    store.append(KEY, STREAM, b"gone soon\n")
    wait_until(lambda: files(tmp_path) != [], timeout=5, interval=0.005)
    store.delete_function(KEY)
    wait_until(lambda: files(tmp_path) == [], timeout=5, interval=0.005)
    store.close()


def test_keys_and_stream_names_cannot_leave_the_root(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    store = LogStore(root)
    store.append("../../escape", "../x/./..", b"contained\n")
    store.append("..", ".", b"also contained\n")
    store.flush()
    assert all(root in path.parents for path in tmp_path.rglob("*") if path != root)
    assert len(files(root)) == 2
    assert [event.stream_name for event in store.read("../../escape")] == ["../x/./.."]
    assert messages(store, "..") == ["also contained"]


def test_retention_drops_oldest_streams_and_keeps_the_newest(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes_per_function=4000)
    line = b"y" * 985 + b"\n"
    for index in range(10):
        store.append(KEY, f"stream-{index}", line)
        store.flush()
        time.sleep(0.02)
    store.append("us-east-1/other", "s", line)  # another function's budget is separate
    store.flush()
    remaining = {event.stream_name for event in store.read(KEY)}
    assert "stream-9" in remaining
    assert "stream-0" not in remaining
    assert sum(path.stat().st_size for path in (tmp_path / "us-east-1%2Fmy-func").iterdir()) <= 4000
    assert len(remaining) >= 3
    assert messages(store, "us-east-1/other") == ["y" * 985]


def test_one_long_lived_stream_is_bounded_too(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes_per_function=4000)
    for index in range(40):
        store.append(KEY, STREAM, b"%04d " % index + b"z" * 200 + b"\n")
        store.flush()
        time.sleep(0.002)
    kept = messages(store)
    assert kept[-1].startswith("0039 ")
    assert not kept[0].startswith("0000 ")
    assert [int(message[:4]) for message in kept] == list(range(40 - len(kept), 40))
    assert sum(path.stat().st_size for path in files(tmp_path)) <= 4000


def test_the_stream_being_written_survives_even_alone_over_budget(tmp_path: Path) -> None:
    store = LogStore(tmp_path, max_bytes_per_function=1000)
    store.append(KEY, "old", b"old\n")
    store.flush()
    store.append(KEY, STREAM, b"big " * 1000 + b"\n")
    store.flush()
    assert [event.stream_name for event in store.read(KEY)] == [STREAM]


def test_delete_function_removes_files_and_pending_output(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.append(KEY, STREAM, b"flushed\n")
    store.flush()
    store.append(KEY, STREAM, b"pending\n")
    store.append("us-east-1/kept", STREAM, b"kept\n")
    store.delete_function(KEY)
    assert messages(store) == []
    assert messages(store, "us-east-1/kept") == ["kept"]
    store.append(KEY, STREAM, b"again\n")
    assert messages(store) == ["again"]


def test_read_skips_a_line_still_being_written(tmp_path: Path) -> None:
    store = LogStore(tmp_path)
    store.append(KEY, STREAM, b"whole\n")
    store.flush()
    [path] = files(tmp_path)
    with open(path, "ab") as handle:
        handle.write(b"1700000000000 half a li")
    assert messages(store) == ["whole"]


@pytest.mark.timeout(10)
def test_follow_yields_existing_then_appended_events(tmp_path: Path) -> None:
    writer, reader = LogStore(tmp_path), LogStore(tmp_path)
    writer.append(KEY, "a", b"one\n")
    time.sleep(0.003)  # across streams only the timestamps order events
    writer.append(KEY, "b", b"two\n")
    writer.flush()
    events = reader.follow(KEY, poll_interval=0.01)
    assert [next(events).message, next(events).message] == ["one", "two"]

    def later() -> None:
        time.sleep(0.1)
        writer.append(KEY, "c", b"three\n")
        writer.flush()

    thread = threading.Thread(target=later)
    thread.start()
    event = next(events)
    thread.join()
    assert (event.stream_name, event.message) == ("c", "three")


@pytest.mark.timeout(20)
def test_follow_sees_another_process_writing(tmp_path: Path) -> None:
    events = LogStore(tmp_path).follow(KEY, poll_interval=0.02)
    script = textwrap.dedent(f"""
        import sys, time
        from pathlib import Path
        from lamina.logs import LogStore
        store = LogStore(Path({str(tmp_path)!r}))
        for index in range(3):
            store.append({KEY!r}, {STREAM!r}, b"from child %d\\n" % index)
            store.flush()
            time.sleep(0.02)
    """)
    child = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[2])
    try:
        seen = [next(events).message for _ in range(3)]
    finally:
        child.wait(timeout=10)
    assert child.returncode == 0
    assert seen == ["from child 0", "from child 1", "from child 2"]
