"""AWS's platform log lines and CloudWatch names, byte for byte.

Tools parse these lines (Duration, Max Memory Used, the timeout text), so they copy the recorded AWS output exactly,
tabs and trailing tab included. Lines are returned without their newline.
"""
from __future__ import annotations

import math
import uuid
from datetime import datetime, timezone


def log_group_name(function_name: str) -> str:
    return f"/aws/lambda/{function_name}"


def stream_name(version: str, now: float) -> str:
    """`YYYY/MM/DD/[<version>]<32 hex>` for a new execution environment; `now` is epoch seconds (UTC date)."""
    day = datetime.fromtimestamp(now, timezone.utc).strftime("%Y/%m/%d")
    return f"{day}/[{version}]{uuid.uuid4().hex}"


def init_start_line(runtime_version: str, runtime_version_arn: str) -> str:
    """The line AWS logs before a cold start's init, e.g. `INIT_START Runtime Version: python:3.10.v11\\t...`."""
    return f"INIT_START Runtime Version: {runtime_version}\tRuntime Version ARN: {runtime_version_arn}"


def start_line(request_id: str, version: str) -> str:
    return f"START RequestId: {request_id} Version: {version}"


def end_line(request_id: str) -> str:
    return f"END RequestId: {request_id}"


def report_line(
    request_id: str,
    duration_ms: float,
    memory_size_mb: int,
    max_memory_used_mb: int,
    init_duration_ms: float | None = None,
) -> str:
    """The REPORT line; `init_duration_ms` only on a cold start. Billing rounds the shown duration up to 1 ms."""
    line = (
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
        f"Billed Duration: {billed_ms(duration_ms)} ms\tMemory Size: {memory_size_mb} MB\t"
        f"Max Memory Used: {max_memory_used_mb} MB\t"
    )
    if init_duration_ms is not None:
        line += f"Init Duration: {init_duration_ms:.2f} ms\t"
    return line


def billed_ms(duration_ms: float) -> int:
    """Rounded up from the two-decimal figure the line shows, so `Duration: 3.00 ms` never bills 4 ms; at least 1."""
    return max(1, math.ceil(round(duration_ms, 2)))


def timeout_line(request_id: str, seconds: float, at: float) -> str:
    """`2020-11-10T05:46:57.874Z <id> Task timed out after 3.00 seconds`; `at` is epoch seconds."""
    return f"{iso_timestamp(at)} {request_id} Task timed out after {seconds:.2f} seconds"


def iso_timestamp(at: float) -> str:
    """UTC with milliseconds and a `Z`, the form Lambda's own log lines use."""
    milliseconds = round(at * 1000)  # rounded, not truncated: 0.874 is 0.87399... as a float
    moment = datetime.fromtimestamp(milliseconds // 1000, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{milliseconds % 1000:03d}Z"
