"""`lamina serve` runs the server; `lamina logs NAME [--follow]` prints a function's logs; `lamina queue` shows
queued asynchronous events."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from datetime import datetime, timezone
from pathlib import Path

from lamina import config as defaults
from lamina.config import ServerConfig


def _serve(args: argparse.Namespace) -> int:
    import uvloop

    from lamina.sandbox.host_slot import NoFreeSlot
    from lamina.server import LaminaServer
    from lamina.store.data_dir_lock import DataDirInUse

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    server_config = ServerConfig(
        host=args.host,
        port=args.port,
        data_dir=Path(args.data_dir).resolve(),
        account_id=args.account_id,
        default_region=args.region,
        keep_alive_seconds=args.keep_alive,
        public_url=args.public_url,
        url_domain=args.url_domain,
        s3_endpoint_url=args.s3_endpoint_url or None,
        concurrency_limit=args.concurrency_limit,
        async_retry_base_seconds=args.async_retry_base_seconds,
        aws_endpoint_url=args.aws_endpoint_url or None,
        code_storage_limit=args.code_storage_limit,
        allowed_host_ports=tuple(args.allow_host_port),
        http_header_timeout=args.http_header_timeout,
        http_body_timeout=args.http_body_timeout,
        http_idle_timeout=args.http_idle_timeout,
        max_connections=args.max_connections,
        max_connections_per_peer=args.max_connections_per_peer,
    )

    async def run() -> None:
        try:
            server = LaminaServer(server_config)
        except (DataDirInUse, NoFreeSlot) as error:
            print(f"lamina: {error}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        for line in server.capabilities.missing:
            print(f"lamina: reduced isolation: {line}", file=sys.stderr, flush=True)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await server.start()
        # Announced only once a signal at any later moment ends in a clean stop.
        print(f"Lamina listening on http://{server_config.host}:{server.port}", flush=True)
        await stopping.wait()
        await server.stop()
        print("Lamina stopped", flush=True)

    uvloop.run(run())
    return 0


def _logs(args: argparse.Namespace) -> int:
    from lamina.invoke.service import function_log_key
    from lamina.logs.store import LogStore
    from lamina.model.keys import FunctionKey

    store = LogStore(Path(args.data_dir).resolve() / "logs")
    key = function_log_key(FunctionKey(args.account_id, args.region, args.name))
    events = store.follow(key) if args.follow else store.read(key)
    try:
        for event in events:
            stamp = datetime.fromtimestamp(event.timestamp_ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]
            message = event.message if event.message.endswith("\n") else event.message + "\n"
            sys.stdout.write(f"{stamp}Z {event.stream_name} {message}")
            sys.stdout.flush()
    except KeyboardInterrupt:
        return 0
    return 0


def _queue(args: argparse.Namespace) -> int:
    import json
    import time

    from lamina.asyncinvoke.queue_store import QUEUE_FILE, read_stats

    now = time.time()
    rows = [entry.to_json(now) for entry in read_stats(Path(args.data_dir).resolve() / QUEUE_FILE)]
    if args.json:
        print(json.dumps({"Queues": rows}, indent=2))
        return 0
    columns = ("Account", "Region", "FunctionName", "Qualifier", "Depth", "OldestEventAgeSeconds", "Retrying")
    table = [columns] + [tuple("-" if row[name] is None else str(row[name]) for name in columns) for row in rows]
    widths = [max(len(line[index]) for line in table) for index in range(len(columns))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    return 0


def _host_port(text: str) -> str:
    from lamina.sandbox.firewall import HostPort
    from lamina.sandbox.network import RUNTIME_API_PORT

    try:
        entry = HostPort.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT with an IPv4 address or localhost ({error})") from None
    if entry.is_loopback and entry.port == RUNTIME_API_PORT:
        raise argparse.ArgumentTypeError(f"port {RUNTIME_API_PORT} on loopback is each function's own Runtime API")
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lamina", description="A self-hosted, drop-in AWS Lambda.")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the Lamina server")
    serve.add_argument("--host", default=defaults.DEFAULT_HOST, help="address to bind (default %(default)s)")
    serve.add_argument("--port", type=int, default=defaults.DEFAULT_PORT, help="port (default %(default)s)")
    serve.add_argument("--data-dir", default=str(defaults.DEFAULT_DATA_DIR), help="state directory (default %(default)s)")
    serve.add_argument("--account-id", default=defaults.DEFAULT_ACCOUNT_ID, help="account id in ARNs (default %(default)s)")
    serve.add_argument("--region", default=defaults.DEFAULT_REGION, help="region for unsigned requests (default %(default)s)")
    serve.add_argument("--keep-alive", type=float, default=600.0, help="seconds an idle environment is kept (default %(default)s)")
    serve.add_argument("--public-url", default=None, help="base URL clients use to reach this server (for Code.Location)")
    serve.add_argument(
        "--url-domain", default="localhost",
        help="domain of function URLs, <id>.lambda-url.<region>.<domain> (default %(default)s; curl and browsers "
        "resolve *.localhost to loopback)",
    )
    serve.add_argument(
        "--s3-endpoint-url",
        default=os.environ.get("LAMINA_S3_ENDPOINT_URL"),
        help="S3-compatible endpoint for code given as S3Bucket/S3Key (env LAMINA_S3_ENDPOINT_URL; credentials from "
        "the standard AWS environment variables)",
    )
    serve.add_argument(
        "--concurrency-limit", type=int, default=1000, help="account concurrent executions per region (default %(default)s)"
    )
    serve.add_argument(
        "--async-retry-base-seconds",
        type=float,
        default=60.0,
        help="wait before the first retry of a failed asynchronous event; the second waits twice as long "
        "(default %(default)s, as AWS)",
    )
    serve.add_argument(
        "--aws-endpoint-url",
        default=os.environ.get("LAMINA_AWS_ENDPOINT_URL"),
        help="AWS-compatible endpoint for SQS/SNS/EventBridge destinations and dead-letter queues "
        "(env LAMINA_AWS_ENDPOINT_URL; default: AWS itself, with the standard AWS credential variables)",
    )
    serve.add_argument(
        "--allow-host-port",
        action="append",
        default=[],
        type=_host_port,
        metavar="HOST:PORT",
        help="a service on the host that functions may connect to (repeatable); functions reach nothing else on "
        "the host, Lamina's API included. A loopback HOST is seen by functions at the same address",
    )
    serve.add_argument(
        "--code-storage-limit",
        type=defaults.parse_size,
        default=defaults.DEFAULT_CODE_STORAGE_LIMIT,
        metavar="BYTES",
        help="total extracted code (functions and layers, identical packages once) uploads may take; K, M, G "
        "suffixes (default 75G, AWS's code storage quota)",
    )
    for option, default, what in (
        ("--http-header-timeout", 20.0, "for a request's headers to arrive"),
        ("--http-body-timeout", 20.0, "a request body may stall"),
        ("--http-idle-timeout", 60.0, "an idle keep-alive API connection is kept"),
    ):
        help_text = f"seconds {what} (0: none; default {default:g})"
        serve.add_argument(option, type=float, default=default, metavar="SECONDS", help=help_text)
    serve.add_argument(
        "--max-connections",
        type=int,
        default=0,
        metavar="N",
        help="API connections open at once (default: the open-files limit less a reserve)",
    )
    serve.add_argument(
        "--max-connections-per-peer",
        type=int,
        default=0,
        metavar="N",
        help="API connections one client address may hold; more are closed at once "
        "(default: half of --max-connections)",
    )
    serve.set_defaults(run=_serve)

    queue = commands.add_parser("queue", help="show queued asynchronous events per function")
    queue.add_argument("--data-dir", default=str(defaults.DEFAULT_DATA_DIR), help="state directory (default %(default)s)")
    queue.add_argument("--json", action="store_true", help="print JSON instead of a table")
    queue.set_defaults(run=_queue)

    logs = commands.add_parser("logs", help="print a function's logs")
    logs.add_argument("name", help="function name")
    logs.add_argument("--follow", "-f", action="store_true", help="keep printing new log events")
    logs.add_argument("--data-dir", default=str(defaults.DEFAULT_DATA_DIR), help="state directory (default %(default)s)")
    logs.add_argument("--region", default=defaults.DEFAULT_REGION, help="the function's region (default %(default)s)")
    logs.add_argument(
        "--account-id", default=defaults.DEFAULT_ACCOUNT_ID,
        help="the function's account: the server's --account-id (default %(default)s)",
    )
    logs.set_defaults(run=_logs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
