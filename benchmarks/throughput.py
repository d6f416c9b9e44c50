"""Throughput: N client processes, each with its own keep-alive socket, invoking a no-op function back to back.

Clients are processes, not threads, so the client side's GIL does not cap the figure. All clients first warm
up together (so Lamina has started one environment per concurrent client), wait on a barrier, then count
completed invokes for a fixed time. The baseline is the same clients against the minimal HTTP server. The
CPU time of the server, the sandboxes and the clients over the measured window shows where the 2 cores go.
"""
from __future__ import annotations

import argparse
import multiprocessing
import queue
import time
from dataclasses import dataclass
from multiprocessing.synchronize import Barrier

import harness as h

TARGET_PER_SECOND = 3000
MEMORY_SIZES = (128, 1769)


@dataclass
class Result:
    label: str
    rate: float
    latencies: list[float]
    cpu_s: dict[str, float]  # "server", "sandboxes", "clients" -> CPU seconds over the window
    environments: str


def client_worker(host: str, port: int, name: str, warmup_s: float, seconds: float, barrier: Barrier,
                  results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One client: warm up, wait for the others, then invoke until the deadline; reports its latencies."""
    client = h.RawClient(host, port)
    request = h.invoke_request(host, port, name)
    deadline = time.monotonic() + warmup_s
    while time.monotonic() < deadline:
        h.time_calls(client, request, 10)
    barrier.wait()
    latencies: list[float] = []
    clock = time.perf_counter
    started = clock()
    end = started + seconds
    while True:
        before = clock()
        if before >= end:
            break
        status, body = client.call(request)
        latencies.append((clock() - before) * 1000)
        if status != 200:
            raise RuntimeError(f"HTTP {status}: {body[:300]!r}")
    results.put((clock() - started, latencies))
    client.close()


def measure(server: h.ServerProcess, name: str, clients: int, warmup_s: float, seconds: float,
            label: str) -> Result:
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(clients + 1)  # the clients and this process, which takes the CPU readings
    results = context.Queue()
    workers = [
        context.Process(
            target=client_worker, args=(server.host, server.port, name, warmup_s, seconds, barrier, results)
        )
        for _ in range(clients)
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=warmup_s + 60)
    groups = {
        "server": [server.pid],
        "sandboxes": [pid for tree in h.sandbox_trees(server.pid).values() for pid in tree],
        "clients": [worker.pid for worker in workers if worker.pid is not None],
    }
    cpu_before = {group: h.cpu_seconds(pids) for group, pids in groups.items()}
    outcomes = []
    deadline = time.monotonic() + seconds + 60
    while len(outcomes) < clients:
        try:
            outcomes.append(results.get(timeout=0.5))
        except queue.Empty:
            if any(worker.exitcode not in (None, 0) for worker in workers) or time.monotonic() > deadline:
                for worker in workers:
                    worker.kill()
                raise RuntimeError("a client process failed (its traceback is above)") from None
        if len(outcomes) == 1:  # the window closes with the first client to finish
            cpu_after = {group: h.cpu_seconds(pids) for group, pids in groups.items()}
    for worker in workers:
        worker.join()
    elapsed = max(duration for duration, _ in outcomes)
    latencies = [value for _, values in outcomes for value in values]
    cpu = {group: cpu_after[group] - cpu_before[group] for group in groups}
    environments = str(h.function_log(server, name).count("Init Duration")) if server.temp_dir is not None else "-"
    return Result(label, len(latencies) / elapsed, latencies, cpu, environments)


def run(clients: int, warmup_s: float, seconds: float) -> h.Table:
    load_at_start = h.load_average()
    results: list[Result] = []
    with h.start_baseline() as baseline:
        label = "baseline: minimal uvloop+httptools server"
        results.append(measure(baseline, "baseline", clients, warmup_s, seconds, label))
    with h.start_lamina() as lamina:
        client = h.lambda_client(lamina.endpoint)
        for memory in MEMORY_SIZES:
            name = h.create_function(client, memory_mb=memory)
            results.append(measure(lamina, name, clients, warmup_s, seconds, f"Lamina, MemorySize {memory}"))
            client.delete_function(FunctionName=name)  # its environments go before the next size starts
            time.sleep(0.5)
    table = h.Table(
        f"Throughput ({clients} client processes, keep-alive, no-op Python handler, {seconds:g} s)",
        ["server", "invokes/s", "invokes", "p50 ms", "p99 ms", "CPU us/invoke: server / sandboxes / clients",
         "environments started", f"target >= {TARGET_PER_SECOND}/s"],
    )
    for result in results:
        summary = h.Summary.of(result.latencies)
        count = summary.count
        cpu = " / ".join(
            "-" if group == "sandboxes" and result.label.startswith("baseline")
            else f"{result.cpu_s[group] / count * 1e6:.0f}"
            for group in ("server", "sandboxes", "clients")
        )
        goal = "(baseline)" if result.label.startswith("baseline") else (
            "met" if result.rate >= TARGET_PER_SECOND else "missed")
        table.add(result.label, f"{result.rate:,.0f}", count, h.fmt(summary.p50), h.fmt(summary.p99), cpu,
                  result.environments, goal)
    table.notes.append(
        f"{warmup_s:g} s of concurrent warm-up per target first. `environments started`: cold starts over warm-up and "
        "measurement (from the function's log); more than the client count means environments were replaced. "
        + h.reproduce_line("throughput.py")
    )
    table.notes.append(h.load_note(load_at_start))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=8, help="client processes (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per target (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up seconds per target (default %(default)s)")
    args = parser.parse_args()
    print(run(args.clients, args.warmup, args.seconds).markdown())


if __name__ == "__main__":
    main()
