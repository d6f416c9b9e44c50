"""Memory of one idle warm environment: USS (private memory) of the sandbox's processes, per runtime.

An environment is the process tree under one of the server's children (bwrap, bwrap's PID-namespace init,
the runtime). USS = Private_Clean + Private_Dirty from /proc/PID/smaps_rollup: memory that goes away when
the environment stops (shared libraries and the page cache are not counted). Measured after the first
invoke and again after 1,000 warm invokes, on several environments per runtime. Baselines from the same run:
the same interpreters idling in a bare `sleep`.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass

import harness as h

MIB = 1024 * 1024
SETTLE_S = 1.0


def memory_bytes(pid: int) -> tuple[int, int]:
    """(USS, private anonymous memory) of one process, from /proc/PID/smaps_rollup."""
    fields: dict[str, int] = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            name, _, rest = line.partition(":")
            if name in ("Private_Clean", "Private_Dirty", "Anonymous"):
                fields[name] = int(rest.split()[0]) * 1024
    return fields["Private_Clean"] + fields["Private_Dirty"], fields["Anonymous"]


@dataclass(frozen=True)
class Sample:
    uss: int
    anonymous: int
    breakdown: str


def tree_sample(tree: list[int]) -> Sample:
    """Totals over the environment's processes, with a per-process USS breakdown (`bwrap 0.1 + ... python3.11 7.8`)."""
    parts = [(h.comm(pid), *memory_bytes(pid)) for pid in tree]
    return Sample(
        sum(uss for _, uss, _ in parts),
        sum(anonymous for _, _, anonymous in parts),
        " + ".join(f"{name} {uss / MIB:.1f}" for name, uss, _ in parts),
    )


def sample_environments(runtimes: list[str], per_runtime: int, invokes: int, baseline_pids: list[int],
                        ) -> tuple[dict[tuple[str, str], list[Sample]], list[Sample]]:
    """Start `per_runtime` environments per runtime; sample them after their first invoke and after `invokes`
    more, then sample the baseline processes while the environments still run."""
    measured: dict[tuple[str, str], list[Sample]] = {}
    with h.start_lamina() as lamina:
        client = h.lambda_client(lamina.endpoint)
        raw = h.RawClient(lamina.host, lamina.port)
        envs: list[tuple[str, bytes, list[int]]] = []
        for runtime in runtimes:
            for _ in range(per_runtime):
                request = h.invoke_request(lamina.host, lamina.port, h.create_function(client, runtime=runtime))
                before = set(h.sandbox_trees(lamina.pid))
                h.check_invoke(raw, request)
                new = [tree for top, tree in h.sandbox_trees(lamina.pid).items() if top not in before]
                if len(new) != 1:
                    raise RuntimeError(f"expected one new environment, found {len(new)}")
                envs.append((runtime, request, new[0]))
        time.sleep(SETTLE_S)
        for runtime, _request, tree in envs:
            measured.setdefault((runtime, "after its first invoke"), []).append(tree_sample(tree))
        for _runtime, request, _tree in envs:
            h.time_calls(raw, request, invokes)
        time.sleep(SETTLE_S)
        for runtime, _request, tree in envs:
            measured.setdefault((runtime, f"after {invokes:,} warm invokes"), []).append(tree_sample(tree))
        return measured, [tree_sample([pid]) for pid in baseline_pids]


def run(per_runtime: int, invokes: int) -> h.Table:
    load_at_start = h.load_average()
    runtimes = [h.PY_RUNTIME, h.node_runtime()]
    python = os.path.realpath(sys.executable)
    sleep = "import time; time.sleep(600)"
    baselines = [
        (f'`{os.path.basename(python)} -c "{sleep}"`', [python, "-c", sleep]),
        ("the same with `-S` (no site-packages, as in the sandbox)", [python, "-S", "-c", sleep]),
        ('`node -e "setTimeout(() => {}, 600000)"`', ["node", "-e", "setTimeout(() => {}, 600000)"]),
    ]
    # The baselines idle through the whole run and are sampled while the environments run: a file page (such as an
    # interpreter's binary) counts in the USS of a process only while no other process maps it, so each side keeps
    # the other's binaries shared whatever the number of environments.
    idle = [subprocess.Popen(argv, stdin=subprocess.DEVNULL) for _, argv in baselines]
    try:
        measured, idle_samples = sample_environments(runtimes, per_runtime, invokes, [process.pid for process in idle])
    finally:
        for process in idle:
            process.kill()
            process.wait()
    table = h.Table(
        "Memory of one idle warm environment (MB = 2^20 bytes)",
        ["environment", "when", "USS MB (median)", "USS min-max", "private anonymous MB (median)",
         "USS by process (median env)"],
    )
    for (runtime, when), samples in sorted(measured.items(), key=lambda item: runtimes.index(item[0][0])):
        ordered = sorted(samples, key=lambda sample: sample.uss)
        median = ordered[len(ordered) // 2]
        anonymous = sorted(sample.anonymous for sample in samples)[len(samples) // 2]
        spread = f"{ordered[0].uss / MIB:.1f}-{ordered[-1].uss / MIB:.1f}"
        table.add(f"Lamina {runtime}, no-op handler", when, h.fmt(median.uss / MIB, 1), spread,
                  h.fmt(anonymous / MIB, 1), median.breakdown)
    for (label, _argv), sample in zip(baselines, idle_samples):
        table.add(f"baseline: {label}", "idle", h.fmt(sample.uss / MIB, 1), "-", h.fmt(sample.anonymous / MIB, 1), "-")
    table.notes.append(
        "USS = Private_Clean + Private_Dirty (smaps_rollup). The baselines idle alongside the environments, so that "
        f"interpreter binaries count as shared on both sides. Environments per runtime: {per_runtime}. "
        + h.reproduce_line("memory.py")
    )
    table.notes.append(h.load_note(load_at_start))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--environments", type=int, default=3, help="environments per runtime (default %(default)s)")
    parser.add_argument("--invokes", type=int, default=1000,
                        help="warm invokes before the second sample (default %(default)s)")
    args = parser.parse_args()
    print(run(args.environments, args.invokes).markdown())


if __name__ == "__main__":
    main()
