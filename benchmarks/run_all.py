"""Run every benchmark, one after the other (each in its own process with its own servers), and write the tables.

Each script is a separate process so that one benchmark's servers, environments and memory are gone before the
next starts measuring. The scripts run at their default sizes; run one directly to change its sizes.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import harness as h

SCRIPTS = ("warm_invoke.py", "throughput.py", "cold_start.py", "memory.py", "startup.py", "async_invoke.py")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=h.BENCH_DIR / "results.md",
                        help="Markdown file for the tables (default %(default)s)")
    parser.add_argument("--only", nargs="*", choices=SCRIPTS, help="run only these scripts")
    args = parser.parse_args()
    sections = [
        f"## Lamina benchmarks\n\nMachine: {h.machine_line()}.\nReproduce all: `python3 benchmarks/run_all.py`\n"
    ]
    failed = []
    for script in args.only or SCRIPTS:
        started = time.monotonic()
        print(f"running {script} ...", file=sys.stderr, flush=True)
        result = subprocess.run([sys.executable, str(h.BENCH_DIR / script)], capture_output=True, text=True)
        print(f"  {script} took {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
        if result.returncode != 0:
            failed.append(script)
            sections.append(f"### {script} FAILED (exit {result.returncode})\n\n```\n{result.stderr[-3000:]}\n```\n")
        else:
            sections.append(result.stdout.strip() + "\n")
    report = "\n".join(sections)
    args.output.write_text(report)
    print(report)
    print(f"tables written to {args.output}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
