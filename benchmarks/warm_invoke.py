"""Warm-invoke latency of a no-op Python function from one raw keep-alive HTTP client on loopback.

Measures Lamina at 128 MB (CPU-capped at 128/1769 of a CPU after init, like AWS) and at 1769 MB (one full
vCPU), and the minimal baseline server with the same client. The targets are measured in interleaved blocks
so that the machine's noise (other tenants, CPU frequency) lands on all of them alike. Beside the latency,
the CPU time the server process and the sandbox's processes spent per invoke (from /proc/PID/stat) shows
where the time goes.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import harness as h

TARGET_P50_MS = 0.7
TARGET_P99_MS = 3.0
MEMORY_SIZES = (128, 1769)


@dataclass
class Target:
    label: str
    client: h.RawClient
    request: bytes
    server_pids: list[int]
    sandbox_pids: list[int]
    latencies: list[float] = field(default_factory=list)
    server_cpu_s: float = 0.0
    sandbox_cpu_s: float = 0.0

    def measure(self, count: int) -> None:
        server, sandbox = h.cpu_seconds(self.server_pids), h.cpu_seconds(self.sandbox_pids)
        self.latencies += h.time_calls(self.client, self.request, count)
        self.server_cpu_s += h.cpu_seconds(self.server_pids) - server
        self.sandbox_cpu_s += h.cpu_seconds(self.sandbox_pids) - sandbox


def verdict(summary: h.Summary) -> str:
    p50 = "met" if summary.p50 <= TARGET_P50_MS else "missed"
    p99 = "met" if summary.p99 <= TARGET_P99_MS else "missed"
    return f"p50 {p50}, p99 {p99}"


def lamina_target(lamina: h.ServerProcess, client, memory: int) -> Target:
    """A new function at `memory` MB, invoked once so that its (single) environment exists."""
    name = h.create_function(client, memory_mb=memory)
    raw = h.RawClient(lamina.host, lamina.port)
    request = h.invoke_request(lamina.host, lamina.port, name)
    before = set(h.sandbox_trees(lamina.pid))
    h.check_invoke(raw, request)
    sandbox = [pid for top, tree in h.sandbox_trees(lamina.pid).items() if top not in before for pid in tree]
    return Target(f"Lamina, MemorySize {memory}", raw, request, [lamina.pid], sandbox)


def run(invokes: int, warmup: int, rounds: int) -> h.Table:
    load_at_start = h.load_average()
    per_round = -(-invokes // rounds)
    with h.start_baseline() as baseline, h.start_lamina() as lamina:
        client = h.lambda_client(lamina.endpoint)
        targets = [
            Target(
                "baseline: minimal uvloop+httptools server",
                h.RawClient(baseline.host, baseline.port),
                h.invoke_request(baseline.host, baseline.port, "baseline"),
                [baseline.pid],
                [],
            ),
            *(lamina_target(lamina, client, memory) for memory in MEMORY_SIZES),
        ]
        for target in targets:
            h.time_calls(target.client, target.request, warmup)
        for _ in range(rounds):
            for target in targets:
                target.measure(per_round)
    table = h.Table(
        "Warm invoke latency (no-op Python handler, one keep-alive client)",
        ["server", "invokes", "p50 ms", "p99 ms", "mean ms", "max ms", "server CPU us/invoke",
         "sandbox CPU us/invoke", f"target p50 <= {TARGET_P50_MS}, p99 <= {TARGET_P99_MS}"],
    )
    for target in targets:
        summary = h.Summary.of(target.latencies)
        baseline_row = target.label.startswith("baseline")
        table.add(
            target.label, summary.count, h.fmt(summary.p50), h.fmt(summary.p99), h.fmt(summary.mean),
            h.fmt(summary.maximum), f"{target.server_cpu_s / summary.count * 1e6:.0f}",
            "-" if baseline_row else f"{target.sandbox_cpu_s / summary.count * 1e6:.0f}",
            "(baseline)" if baseline_row else verdict(summary),
        )
    table.notes.append(
        f"{warmup} warm-up invokes per target first; then {rounds} interleaved blocks of {per_round}. CPU columns: "
        "user+system time of the server process (all threads) and of the environment's processes, per invoke "
        "(10 ms clock ticks: about +-20 us). " + h.reproduce_line("warm_invoke.py")
    )
    table.notes.append(h.load_note(load_at_start))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invokes", type=int, default=2000, help="measured invokes per target (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=500, help="warm-up invokes per target (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved blocks (default %(default)s)")
    args = parser.parse_args()
    print(run(args.invokes, args.warmup, args.rounds).markdown())


if __name__ == "__main__":
    main()
