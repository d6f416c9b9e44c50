"""Function logs: AWS's platform lines, the per-invocation tail, and the per-function store on disk."""
from __future__ import annotations

from lamina.logs.format import (
    end_line,
    init_start_line,
    log_group_name,
    report_line,
    start_line,
    stream_name,
    timeout_line,
)
from lamina.logs.invocation import InvocationLog
from lamina.logs.store import LogEvent, LogStore

__all__ = [
    "InvocationLog",
    "LogEvent",
    "LogStore",
    "end_line",
    "init_start_line",
    "log_group_name",
    "report_line",
    "start_line",
    "stream_name",
    "timeout_line",
]
