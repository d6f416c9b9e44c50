"""Warm-invoke latency while cold starts and control-plane writes run in parallel (issue 8, section 5).

One raw keep-alive client invokes a warm no-op Python function in a loop, first alone (quiet), then while other
processes load the same server:
- cold starters: each creates new functions and invokes each once (a cold start: code ingest, a new sandbox);
- control-plane writers: each loops UpdateFunctionConfiguration, TagResource and PublishVersion on its own
  function (SQLite writes, a publish's transaction, environment retirement).
The load is bounded in count and in time (whichever ends first). Work that runs on the event loop (database
writes, log flushes, teardown) shows up here as the warm invoke's p99 and max; work on executors does not.
"""
from __future__ import annotations

import argparse
import multiprocessing
import time
import uuid
from pathlib import Path

import harness as h


def cold_starter(endpoint: str, count: int, deadline: float, results) -> None:
    client = h.lambda_client(endpoint)
    done, latencies = 0, []
    for _ in range(count):
        if time.time() >= deadline:
            break
        name = h.create_function(client, name=f"cold-{uuid.uuid4().hex[:12]}")
        started = time.perf_counter()
        client.invoke(FunctionName=name, Payload=b"{}")
        latencies.append((time.perf_counter() - started) * 1000)
        done += 1
    results.put(("cold", done, latencies))


def writer(endpoint: str, count: int, deadline: float, results) -> None:
    client = h.lambda_client(endpoint)
    name = h.create_function(client, name=f"write-{uuid.uuid4().hex[:12]}")
    arn = client.get_function(FunctionName=name)["Configuration"]["FunctionArn"]
    done, latencies = 0, []
    for index in range(count):
        if time.time() >= deadline:
            break
        started = time.perf_counter()
        client.update_function_configuration(FunctionName=name, Description=f"round {index}")
        client.tag_resource(Resource=arn, Tags={"round": str(index)})
        client.publish_version(FunctionName=name)
        latencies.append((time.perf_counter() - started) * 1000 / 3)
        done += 3
    results.put(("write", done, latencies))


def run(quiet_invokes: int, cold_workers: int, cold_per_worker: int, writers: int, writes_per_writer: int,
        seconds: float, repo: Path = h.REPO_DIR) -> h.Table:
    load_at_start = h.load_average()
    context = multiprocessing.get_context("spawn")
    with h.start_lamina(repo=repo) as lamina:
        client = h.lambda_client(lamina.endpoint)
        name = h.create_function(client, memory_mb=1769)  # a full vCPU: the server is measured, not the quota
        raw = h.RawClient(lamina.host, lamina.port)
        request = h.invoke_request(lamina.host, lamina.port, name)
        h.check_invoke(raw, request)
        h.time_calls(raw, request, 500)
        quiet = h.time_calls(raw, request, quiet_invokes)

        results = context.Queue()
        deadline = time.time() + seconds
        processes = [
            context.Process(target=cold_starter, args=(lamina.endpoint, cold_per_worker, deadline, results))
            for _ in range(cold_workers)
        ] + [
            context.Process(target=writer, args=(lamina.endpoint, writes_per_writer, deadline, results))
            for _ in range(writers)
        ]
        for process in processes:
            process.start()
        time.sleep(1.0)  # the children import boto3 first; measure once they are loading the server
        loaded: list[float] = []
        started = time.monotonic()
        while any(process.is_alive() for process in processes):
            loaded += h.time_calls(raw, request, 100)
        loaded_seconds = time.monotonic() - started
        outcomes = [results.get(timeout=30) for _ in processes]
        for process in processes:
            process.join()
        raw.close()
    cold = [latency for kind, _, values in outcomes if kind == "cold" for latency in values]
    writes = [latency for kind, _, values in outcomes if kind == "write" for latency in values]
    table = h.Table(
        f"Warm invoke latency under mixed load (no-op Python handler at 1769 MB, one keep-alive client): {repo}",
        ["phase", "invokes", "p50 ms", "p99 ms", "mean ms", "max ms"],
    )
    for label, values in (("quiet (nothing else running)", quiet),
                          (f"loaded ({loaded_seconds:.1f} s of cold starts and control-plane writes)", loaded)):
        summary = h.Summary.of(values)
        table.add(label, summary.count, h.fmt(summary.p50), h.fmt(summary.p99), h.fmt(summary.mean),
                  h.fmt(summary.maximum))
    if cold:
        summary = h.Summary.of(cold)
        table.add(f"(load) cold starts: first invoke of a new function, through boto3", summary.count,
                  h.fmt(summary.p50, 1), h.fmt(summary.p99, 1), h.fmt(summary.mean, 1), h.fmt(summary.maximum, 1))
    if writes:
        summary = h.Summary.of(writes)
        table.add("(load) control-plane writes, per call, through boto3", summary.count * 3,
                  h.fmt(summary.p50, 1), h.fmt(summary.p99, 1), h.fmt(summary.mean, 1), h.fmt(summary.maximum, 1))
    table.notes.append(
        f"{cold_workers} cold-start processes ({cold_per_worker} new functions each at most), {writers} writer "
        f"processes ({writes_per_writer} rounds of UpdateFunctionConfiguration + TagResource + PublishVersion each "
        f"at most), all stopped after {seconds:.0f} s; the warm client measures for as long as any of them runs. "
        + h.reproduce_line("mixed_load.py")
    )
    table.notes.append(h.load_note(load_at_start))
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quiet-invokes", type=int, default=2000, help="warm invokes with no load (%(default)s)")
    parser.add_argument("--cold-workers", type=int, default=2, help="cold-start processes (%(default)s)")
    parser.add_argument("--cold-per-worker", type=int, default=100, help="new functions per process (%(default)s)")
    parser.add_argument("--writers", type=int, default=2, help="control-plane writer processes (%(default)s)")
    parser.add_argument("--writes-per-writer", type=int, default=150, help="write rounds per writer (%(default)s)")
    parser.add_argument("--seconds", type=float, default=30.0, help="time bound of the load (%(default)s)")
    parser.add_argument("--compare", type=Path, help="another checkout, measured alternately with this one")
    parser.add_argument("--rounds", type=int, default=1, help="runs per checkout (alternating with --compare)")
    args = parser.parse_args()
    print(h.machine_line())
    repos = [args.compare.resolve(), h.REPO_DIR] if args.compare else [h.REPO_DIR]
    for _ in range(args.rounds):
        for repo in repos:
            print(run(args.quiet_invokes, args.cold_workers, args.cold_per_worker, args.writers,
                      args.writes_per_writer, args.seconds, repo).markdown(), flush=True)


if __name__ == "__main__":
    main()
