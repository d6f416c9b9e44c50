"""Server start-up: from spawning `lamina serve` until it prints its listening line, and SIGTERM to exit.

Each start gets a fresh data directory (the first-run path: schema, host checks, runtime discovery). A second
series restarts on one data directory holding functions, the everyday restart. The baseline, from the same run,
is spawning the same interpreter with `-c pass` and with `-c "import lamina.server"` (imports alone).
"""
from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import harness as h

TARGET_MS = 1000.0


#: `lamina serve` installs its SIGTERM handler just after printing the listening line; a SIGTERM sent in
#: between kills it without its clean stop. The pause keeps the stop figure about the clean path.
SETTLE_BEFORE_STOP_S = 0.2


def spawn_lamina(data_dir: Path) -> subprocess.Popen[bytes]:
    command = h.lamina_command(data_dir)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=h.REPO_DIR)


def start_once(data_dir: Path) -> tuple[float, float]:
    """(ms until the listening line, ms from SIGTERM to exit)."""
    started = time.perf_counter()
    process = spawn_lamina(data_dir)
    h.wait_for_listening(process)
    ready = (time.perf_counter() - started) * 1000
    time.sleep(SETTLE_BEFORE_STOP_S)
    stopping = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    if process.wait(timeout=30) != 0:
        raise RuntimeError(f"lamina serve exited with {process.returncode} on SIGTERM")
    return ready, (time.perf_counter() - stopping) * 1000


def populate(data_dir: Path, functions: int) -> None:
    """Give `data_dir` `functions` functions, each invoked once (so code trees and logs exist)."""
    process = spawn_lamina(data_dir)
    host, port = h.wait_for_listening(process)
    server = h.ServerProcess(process, host, port)
    try:
        client = h.lambda_client(server.endpoint)
        raw = h.RawClient(host, port)
        for _ in range(functions):
            h.check_invoke(raw, h.invoke_request(host, port, h.create_function(client)))
    finally:
        server.stop()


def spawn_ms(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, cwd=h.REPO_DIR)
    return (time.perf_counter() - started) * 1000


def run(starts: int, functions: int) -> h.Table:
    load_at_start = h.load_average()
    fresh: list[tuple[float, float]] = []
    restarts: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="lamina-bench-start-") as temp:
        root = Path(temp)
        for index in range(starts):
            fresh.append(start_once(root / f"fresh-{index}"))
        populate(root / "kept", functions)
        for _ in range(starts):
            restarts.append(start_once(root / "kept"))
    bare = [spawn_ms([sys.executable, "-c", "pass"]) for _ in range(starts)]
    imports = [spawn_ms([sys.executable, "-c", "import lamina.server"]) for _ in range(starts)]

    table = h.Table(
        f"Server start-up ({starts} starts each)",
        ["measurement", "p50 ms", "p99 ms", "max ms", "stop on SIGTERM p50 ms", f"target ready <= {TARGET_MS:g} ms"],
    )
    series_by_label = (
        ("`lamina serve`, fresh data dir", fresh),
        (f"`lamina serve`, data dir with {functions} functions", restarts),
    )
    for label, series in series_by_label:
        ready = h.Summary.of([value for value, _ in series])
        stop = h.Summary.of([value for _, value in series])
        table.add(label, h.fmt(ready.p50, 1), h.fmt(ready.p99, 1), h.fmt(ready.maximum, 1), h.fmt(stop.p50, 1),
                  "met" if ready.p50 <= TARGET_MS else "missed")
    baselines = (
        ("baseline: spawn `python -c pass`", bare),
        ('baseline: spawn `python -c "import lamina.server"`', imports),
    )
    for label, values in baselines:
        summary = h.Summary.of(values)
        table.add(label, h.fmt(summary.p50, 1), h.fmt(summary.p99, 1), h.fmt(summary.maximum, 1), "-", "(baseline)")
    table.notes.append(f"`python` is {sys.executable}. " + h.reproduce_line("startup.py"))
    table.notes.append(h.load_note(load_at_start))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--starts", type=int, default=20, help="starts per series (default %(default)s)")
    parser.add_argument("--functions", type=int, default=50,
                        help="functions in the kept data dir (default %(default)s)")
    args = parser.parse_args()
    print(run(args.starts, args.functions).markdown())


if __name__ == "__main__":
    main()
