"""Cold start: the first invoke of a new no-op Python function, end to end from a raw keep-alive client.

Only the invoke call is timed: functions are created beforehand in batches (CreateFunction is not part of a
cold start) and deleted after their batch, so at most one batch of environments is alive at a time. Each
invoke's `Init Duration` (sandbox spawn to the runtime's first `GET /next`, from the REPORT log line) is
reported beside it to show how the time splits. Baselines from the same run: spawning the runtime's own
interpreter with `-S -c pass` (no site-packages, as in the sandbox), the same inside a plain bwrap sandbox, and
a warm invoke of the same server.
"""
from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time

import harness as h

TARGET_P50_MS = 100.0
#: Lets the server finish tearing down the deleted functions' environments before the next batch is timed.
SETTLE_S = 0.2
_INIT_DURATION = re.compile(r"Init Duration: ([\d.]+) ms")


def spawn_times(argv: list[str], count: int) -> list[float]:
    """ms from fork to exit of `argv`, `count` times."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)
        times.append((time.perf_counter() - started) * 1000)
    return times


def bwrap_argv(python: str) -> list[str] | None:
    """`python -c pass` in a plain bwrap sandbox: the host's / read-only, own PID/IPC/UTS namespaces, and the
    interpreter's site-packages hidden as Lamina hides it (its .pth files cost tens of ms on this host)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None
    site_packages = sysconfig.get_path("purelib")
    return [bwrap, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--proc", "/proc",
            "--dev", "/dev", "--tmpfs", "/tmp", "--tmpfs", site_packages, "--die-with-parent", "--",
            python, "-c", "pass"]


def init_duration(head: bytes) -> float | None:
    """Init Duration from the REPORT line of the invocation's log tail (X-Amz-Log-Result)."""
    tail = h.header_value(head, b"x-amz-log-result")
    found = _INIT_DURATION.search(base64.b64decode(tail).decode(errors="replace")) if tail else None
    return float(found.group(1)) if found else None


def run(count: int, batch: int, memory: int, baseline_count: int) -> h.Table:
    load_at_start = h.load_average()
    python = os.path.realpath(sys.executable)  # Lamina runs python3.X functions on this interpreter
    cold: list[float] = []
    inits: list[float] = []
    rests: list[float] = []  # end to end minus Init Duration, per invoke
    with h.start_lamina() as lamina:
        client = h.lambda_client(lamina.endpoint)
        raw = h.RawClient(lamina.host, lamina.port)
        while len(cold) < count:
            names = [h.create_function(client, memory_mb=memory) for _ in range(min(batch, count - len(cold)))]
            for name in names:
                request = h.invoke_request(lamina.host, lamina.port, name, log_tail=True)
                started = time.perf_counter()
                status, body = raw.call(request)
                cold.append((time.perf_counter() - started) * 1000)
                if status != 200 or body != b"{}":
                    raise RuntimeError(f"cold invoke failed: HTTP {status} {body[:300]!r}")
                duration = init_duration(raw.last_head)
                if duration is not None:
                    inits.append(duration)
                    rests.append(cold[-1] - duration)
            warm_name = names[-1]  # the last one stays, for the warm baseline
            for name in names if len(cold) < count else names[:-1]:
                client.delete_function(FunctionName=name)
            time.sleep(SETTLE_S)
        warm_request = h.invoke_request(lamina.host, lamina.port, warm_name)
        h.time_calls(raw, warm_request, 200)
        warm = h.time_calls(raw, warm_request, 1000)
    bare = spawn_times([python, "-S", "-c", "pass"], baseline_count)
    sandboxed_argv = bwrap_argv(python)
    sandboxed = spawn_times(sandboxed_argv, baseline_count) if sandboxed_argv else []

    table = h.Table(
        f"Cold start (first invoke of a new no-op Python function, MemorySize {memory})",
        ["measurement", "samples", "p50 ms", "p99 ms", "mean ms", "max ms", f"target p50 <= {TARGET_P50_MS:g} ms"],
    )

    def row(label: str, values: list[float], goal: str) -> None:
        summary = h.Summary.of(values)
        table.add(label, summary.count, h.fmt(summary.p50, 1), h.fmt(summary.p99, 1), h.fmt(summary.mean, 1),
                  h.fmt(summary.maximum, 1), goal)

    cold_summary = h.Summary.of(cold)
    row("Lamina cold invoke (end to end)", cold, "met" if cold_summary.p50 <= TARGET_P50_MS else "missed")
    if inits:
        row("  of which Init Duration (REPORT line: sandbox spawn to the runtime's first /next)", inits, "-")
        row("  the rest (request, Runtime API endpoint set-up, the invoke itself)", rests, "-")
    row("baseline: warm invoke, same server", warm, "(baseline)")
    interpreter = os.path.basename(python)
    row(f"baseline: spawn `{interpreter} -S -c pass` (no site-packages, like the sandbox)", bare, "(baseline)")
    if sandboxed:
        label = f"baseline: spawn `bwrap ... {interpreter} -c pass` (plain sandbox, site-packages hidden)"
        row(label, sandboxed, "(baseline)")
    table.notes.append(
        f"Functions created in batches of {batch} before their first invoke (not timed), deleted after. "
        + h.reproduce_line("cold_start.py")
    )
    table.notes.append(h.load_note(load_at_start))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1000, help="cold starts to time (default %(default)s)")
    parser.add_argument("--batch", type=int, default=50, help="functions created per batch (default %(default)s)")
    parser.add_argument("--memory", type=int, default=128, help="MemorySize of the functions (default %(default)s)")
    parser.add_argument("--baseline-count", type=int, default=200, help="spawns per baseline (default %(default)s)")
    args = parser.parse_args()
    print(run(args.count, args.batch, args.memory, args.baseline_count).markdown())


if __name__ == "__main__":
    main()
