"""Warm-invoke latency of two Lamina checkouts side by side: one server each, running at the same time, timed in
interleaved blocks by the same raw keep-alive client, beside the minimal baseline server. This is how a change to
the hot path is judged on a noisy machine: sequential runs of warm_invoke.py differ by more than the change.

Make the other checkout with `git worktree add /tmp/lamina-before <commit>` (it runs with this venv's packages).
"""
from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

import harness as h


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("other", type=Path, help="the checkout to compare this one with (e.g. a worktree of main)")
    parser.add_argument("--rounds", type=int, default=8, help="interleaved blocks (default %(default)s)")
    parser.add_argument("--block", type=int, default=500, help="invokes per target per block (default %(default)s)")
    parser.add_argument("--warmup", type=int, default=500, help="warm-up invokes per target (default %(default)s)")
    args = parser.parse_args()
    load = h.load_average()
    targets: list[tuple[str, h.RawClient, bytes, list[float]]] = []
    with contextlib.ExitStack() as servers:
        baseline = servers.enter_context(h.start_baseline())
        targets.append(("baseline: minimal uvloop+httptools server", h.RawClient(baseline.host, baseline.port),
                        h.invoke_request(baseline.host, baseline.port, "baseline"), []))
        for label, repo in (("other", args.other.resolve()), ("this", h.REPO_DIR)):
            server = servers.enter_context(h.start_lamina(repo=repo))
            client = h.lambda_client(server.endpoint)
            for memory in (1769, 128):
                name = h.create_function(client, memory_mb=memory)
                raw = h.RawClient(server.host, server.port)
                request = h.invoke_request(server.host, server.port, name)
                h.check_invoke(raw, request)
                targets.append((f"{label} checkout ({repo}), MemorySize {memory}", raw, request, []))
        for _, raw, request, _ in targets:
            h.time_calls(raw, request, args.warmup)
        for _ in range(args.rounds):
            for _, raw, request, latencies in targets:
                latencies += h.time_calls(raw, request, args.block)
    table = h.Table("Warm invoke, two checkouts side by side", ["server", "invokes", "p50 ms", "p99 ms", "mean ms"])
    for label, _, _, latencies in targets:
        summary = h.Summary.of(latencies)
        table.add(label, summary.count, h.fmt(summary.p50), h.fmt(summary.p99), h.fmt(summary.mean))
    table.notes += [f"{args.warmup} warm-up invokes per target, then {args.rounds} interleaved blocks of {args.block}.",
                    h.reproduce_line("compare_versions.py", [str(args.other)]), h.load_note(load)]
    print(table.markdown())


if __name__ == "__main__":
    main()
