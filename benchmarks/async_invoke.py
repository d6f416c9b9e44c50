"""Asynchronous invocation: acknowledged Event invokes per second, drain rate, and acceptance-to-handler latency.

1. Acceptance: client processes, each driving many keep-alive connections (one request in flight per
   connection, so many acknowledgements can share one commit), send `X-Amz-Invocation-Type: Event` invokes of
   a no-op function for a fixed time; every 202 means the event was committed and fsynced. Same-run baselines:
   the same clients sending synchronous invokes (the work each event will eventually cost) and DryRun invokes
   (the API's floor: parse, resolve, answer, no queue).
2. Drain: after the burst, the time until the queue is empty (Lamina's `GET /lamina/async-queue`), as events
   per second; baseline: the synchronous throughput measured in step 1.
3. Latency: 1,000 Event invokes sent one at a time with idle capacity (a warm environment waiting); the handler
   logs `time.time()` when it starts; latency = handler start - the moment the client got the 202. Baseline:
   the same handler invoked synchronously, request sent -> handler start.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import queue
import time
import urllib.request
import uuid
from multiprocessing.synchronize import Barrier

import harness as h

ACK_TARGET_PER_SECOND = 5000
LATENCY_TARGET_P50_MS = 5.0
SYNC_CLIENTS = 8
STAMP_PYTHON = "import time\ndef handler(event, context):\n    print('STAMP', event['m'], repr(time.time()))\n    return {}\n"
_ACCEPTED = {"Event": b"202", "RequestResponse": b"200", "DryRun": b"204"}


def load_client(host: str, port: int, name: str, invocation_type: str, connections: int, seconds: float,
                barrier: Barrier, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    """One client process: `connections` keep-alive sockets, each sending its next request when answered."""
    import uvloop

    body = b'{"bench": 1}'
    request = (
        f"POST /2015-03-31/functions/{name}/invocations HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"X-Amz-Invocation-Type: {invocation_type}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    accepted = _ACCEPTED[invocation_type]
    latencies: list[float] = []
    failures: list[bytes] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        clock = time.perf_counter
        done = loop.create_future()
        state = {"open": connections, "end": 0.0}

        class Connection(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                self.transport = transport
                self.buffer = b""
                self.sent = 0.0

            def send(self) -> None:
                self.sent = clock()
                self.transport.write(request)  # type: ignore[attr-defined]

            def data_received(self, data: bytes) -> None:
                self.buffer += data
                while True:
                    end = self.buffer.find(b"\r\n\r\n")
                    if end < 0:
                        return
                    head = self.buffer[:end]
                    length = h.header_value(head, b"content-length")
                    total = end + 4 + (int(length) if length else 0)
                    if len(self.buffer) < total:
                        return
                    now = clock()
                    if head[9:12] == accepted:
                        latencies.append((now - self.sent) * 1000)
                    else:
                        failures.append(self.buffer[:total][:300])
                    self.buffer = self.buffer[total:]
                    if now < state["end"]:
                        self.send()
                    else:
                        self.transport.close()
                        state["open"] -= 1
                        if state["open"] == 0 and not done.done():
                            done.set_result(None)

        opened = [(await loop.create_connection(Connection, host, port))[1] for _ in range(connections)]
        barrier.wait()
        started = clock()
        state["end"] = started + seconds
        for connection in opened:
            connection.send()
        await done
        results.put((clock() - started, latencies, failures[:3]))

    uvloop.run(main())


def burst(server: h.ServerProcess, name: str, invocation_type: str, processes: int, connections: int,
          seconds: float) -> tuple[float, list[float], float]:
    """(answers per second, latencies in ms, server CPU microseconds per answer)."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(processes + 1)
    results = context.Queue()
    workers = [
        context.Process(target=load_client,
                        args=(server.host, server.port, name, invocation_type, connections, seconds, barrier, results))
        for _ in range(processes)
    ]
    for worker in workers:
        worker.start()
    barrier.wait(timeout=60)
    cpu_before = h.cpu_seconds([server.pid])
    outcomes = []
    while len(outcomes) < processes:
        try:
            outcomes.append(results.get(timeout=seconds + 60))
        except queue.Empty:
            raise RuntimeError("a client process did not report") from None
    cpu = h.cpu_seconds([server.pid]) - cpu_before
    for worker in workers:
        worker.join()
    failures = [failure for _, _, found in outcomes for failure in found]
    if failures:
        raise RuntimeError(f"{invocation_type}: unexpected answers, e.g. {failures[0]!r}")
    latencies = [value for _, values, _ in outcomes for value in values]
    elapsed = max(duration for duration, _, _ in outcomes)
    return len(latencies) / elapsed, latencies, cpu / len(latencies) * 1e6


def queue_depth(server: h.ServerProcess) -> int:
    with urllib.request.urlopen(f"{server.endpoint}/lamina/async-queue") as answer:
        return sum(entry["Depth"] for entry in json.loads(answer.read())["Queues"])


def drain(server: h.ServerProcess, timeout: float = 600) -> float:
    """Seconds until the queue is empty."""
    started = time.monotonic()
    while queue_depth(server) > 0:
        if time.monotonic() - started > timeout:
            raise RuntimeError("the queue did not drain")
        time.sleep(0.05)
    return time.monotonic() - started


def stamps(server: h.ServerProcess, name: str, expected: int) -> dict[str, float]:
    """marker -> handler start time, from the function's log."""
    found: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while len(found) < expected and time.monotonic() < deadline:
        for line in h.function_log(server, name).splitlines():
            parts = line.split()
            if "STAMP" in parts:
                index = parts.index("STAMP")
                found[parts[index + 1]] = float(parts[index + 2])
    return found


def latency(server: h.ServerProcess, name: str, count: int, invocation_type: str) -> list[float]:
    """Milliseconds from acceptance (Event: 202 received; sync: request sent) to handler start."""
    client = h.RawClient(server.host, server.port)
    marks: dict[str, float] = {}
    for _ in range(count):
        marker = uuid.uuid4().hex
        body = json.dumps({"m": marker}).encode()
        request = h.invoke_request(server.host, server.port, name, body)
        if invocation_type == "Event":
            request = request.replace(b"\r\n\r\n", b"\r\nX-Amz-Invocation-Type: Event\r\n\r\n", 1)
        sent = time.time()
        status, answer = client.call(request)
        marks[marker] = time.time() if invocation_type == "Event" else sent
        if status not in (200, 202):
            raise RuntimeError(f"HTTP {status}: {answer[:300]!r}")
        time.sleep(0.003)  # the environment is idle again before the next event
    client.close()
    started = stamps(server, name, count)
    return [(started[marker] - mark) * 1000 for marker, mark in marks.items() if marker in started]


def run(processes: int, connections: int, seconds: float, latency_count: int) -> list[h.Table]:
    load_at_start = h.load_average()
    with h.start_lamina() as lamina:
        client = h.lambda_client(lamina.endpoint)
        noop = h.create_function(client)
        stamp = f"stamp-{uuid.uuid4().hex[:8]}"
        client.create_function(FunctionName=stamp, Runtime=h.PY_RUNTIME, Role=h.ROLE, Handler="app.handler",
                               Code={"ZipFile": h.zip_files({"app.py": STAMP_PYTHON})}, Timeout=30)
        h.check_invoke(h.RawClient(lamina.host, lamina.port), h.invoke_request(lamina.host, lamina.port, noop))

        # Synchronous concurrency is what the environments can serve, not what the queue can: 8 clients, as in
        # throughput.py, after a warm-up that starts their environments.
        burst(lamina, noop, "RequestResponse", SYNC_CLIENTS, 1, 2.0)
        sync_rate, sync_latencies, sync_cpu = burst(lamina, noop, "RequestResponse", SYNC_CLIENTS, 1, seconds)
        dry_rate, dry_latencies, dry_cpu = burst(lamina, noop, "DryRun", processes, connections, seconds)
        burst_started = time.monotonic()
        ack_rate, ack_latencies, ack_cpu = burst(lamina, noop, "Event", processes, connections, seconds)
        accepted = len(ack_latencies)
        left = queue_depth(lamina)
        drain_s = drain(lamina)
        total_s = time.monotonic() - burst_started
        environments = len(h.sandbox_trees(lamina.pid))

        sync_start = latency(lamina, stamp, latency_count, "RequestResponse")
        async_start = latency(lamina, stamp, latency_count, "Event")

    tables = []
    acceptance = h.Table(
        f"Asynchronous acceptance ({processes} client processes x {connections} keep-alive connections, no-op "
        f"Python handler, {seconds:g} s each)",
        ["request", "answers/s", "answers", "p50 ms", "p99 ms", "server CPU us/answer", f"target >= {ACK_TARGET_PER_SECOND}/s"],
    )
    for label, rate, values, cpu, goal in (
        ("Event (202 after the commit's fsync)", ack_rate, ack_latencies, ack_cpu,
         "met" if ack_rate >= ACK_TARGET_PER_SECOND else "missed"),
        (f"baseline: RequestResponse (sync invoke, {SYNC_CLIENTS} clients)", sync_rate, sync_latencies, sync_cpu, "(baseline)"),
        ("baseline: DryRun (API floor, no queue)", dry_rate, dry_latencies, dry_cpu, "(baseline)"),
    ):
        summary = h.Summary.of(values)
        acceptance.add(label, f"{rate:,.0f}", summary.count, h.fmt(summary.p50), h.fmt(summary.p99), f"{cpu:.0f}", goal)
    acceptance.notes.append(
        "During a burst acknowledging has priority over delivery (workers slow down, never stop); the backlog "
        "drains afterwards. " + h.reproduce_line("async_invoke.py")
    )
    tables.append(acceptance)

    drain_table = h.Table(
        "Asynchronous drain (the burst above, delivered through the normal invoke path)",
        ["figure", "value"],
    )
    drain_table.add("events accepted in the burst", f"{accepted:,}")
    drain_table.add("still queued when the burst ended", f"{left:,}")
    drain_table.add("drain after the burst", f"{left:,} events in {drain_s:.1f} s = {left / drain_s if drain_s else 0:,.0f}/s")
    drain_table.add("end to end (burst start to empty queue)", f"{accepted:,} events in {total_s:.1f} s = {accepted / total_s:,.0f}/s")
    drain_table.add("baseline: sync invokes/s, same clients", f"{sync_rate:,.0f}/s")
    drain_table.add("environments at the end", str(environments))
    tables.append(drain_table)

    latency_table = h.Table(
        f"Acceptance to handler start, idle capacity ({latency_count} sequential events)",
        ["path", "samples", "p50 ms", "p99 ms", f"target p50 <= {LATENCY_TARGET_P50_MS:g} ms"],
    )
    async_summary, sync_summary = h.Summary.of(async_start), h.Summary.of(sync_start)
    latency_table.add("Event: 202 received -> handler starts", async_summary.count, h.fmt(async_summary.p50),
                      h.fmt(async_summary.p99), "met" if async_summary.p50 <= LATENCY_TARGET_P50_MS else "missed")
    latency_table.add("baseline: sync request sent -> handler starts", sync_summary.count, h.fmt(sync_summary.p50),
                      h.fmt(sync_summary.p99), "(baseline)")
    latency_table.notes.append(
        "The handler logs time.time() as it starts; the same clock as the client. The Event figure can be below "
        "zero: delivery starts as soon as the commit completes, in parallel with the 202 on its way out."
    )
    latency_table.notes.append(h.load_note(load_at_start))
    tables.append(latency_table)
    return tables


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=4, help="client processes (default %(default)s)")
    parser.add_argument("--connections", type=int, default=16, help="connections per process (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=5.0, help="seconds per burst (default %(default)s)")
    parser.add_argument("--latency-count", type=int, default=1000, help="sequential events (default %(default)s)")
    args = parser.parse_args()
    for table in run(args.processes, args.connections, args.seconds, args.latency_count):
        print(table.markdown())


if __name__ == "__main__":
    main()
