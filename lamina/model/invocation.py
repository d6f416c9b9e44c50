"""One invocation in flight, and what it produced."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field


@dataclass
class InvocationOutcome:
    """The caller-visible result: the runtime's bytes, and `Unhandled` for any function error."""

    payload: bytes
    content_type: str = "application/json"
    function_error: str | None = None
    log_tail: str | None = None
    #: How long the function itself ran (what REPORT's Duration says); asynchronous workers size themselves by it.
    duration_ms: float = 0.0


def platform_error(error_type: str, message: str) -> InvocationOutcome:
    """An error Lamina itself reports for the function (timeout, crash, oversized response)."""
    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    return InvocationOutcome(body, function_error="Unhandled")


@dataclass
class InvocationReport:
    """What the platform lines (REPORT) need about one finished invocation."""

    duration_ms: float
    init_duration_ms: float | None
    max_memory_mb: int | None
    output: bytes
    timed_out: bool = False


@dataclass
class Invocation:
    request_id: str
    payload: bytes
    invoked_arn: str
    trace_id: str
    client_context: str | None = None
    cognito_identity: str | None = None
    report: InvocationReport | None = None
    future: asyncio.Future[InvocationOutcome] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def finish(self, outcome: InvocationOutcome) -> None:
        if not self.future.done():
            self.future.set_result(outcome)
