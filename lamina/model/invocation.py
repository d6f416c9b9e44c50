"""One invocation in flight, and what it produced."""
from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import AsyncIterator, Protocol


class ResponseBody(Protocol):
    """A response the runtime streams (`runtime_api.streaming.ResponseStream`): its chunks as they arrive, once.

    `outcome` stays None until the stream ended for its reader; `discard()` tells it nobody reads the rest."""

    @property
    def content_type(self) -> str: ...

    @property
    def size(self) -> int: ...

    @property
    def outcome(self) -> object | None: ...

    def __aiter__(self) -> AsyncIterator[bytes]: ...

    def discard(self) -> None: ...


@dataclass
class InvocationOutcome:
    """The caller-visible result: the runtime's bytes, and `Unhandled` for any function error.

    `stream` is set when the runtime streamed its response (`Lambda-Runtime-Function-Response-Mode: streaming`): the
    first outcome a caller gets then has an empty payload and the stream to read; the final one (`Invocation.ended`)
    says how it ended: no function error, or the error's body with `error_type` (a trailer's
    `Lambda-Runtime-Function-Error-Type`, or the platform's: Sandbox.Timedout, Function.ResponseSizeTooLarge...)."""

    payload: bytes
    content_type: str = "application/json"
    function_error: str | None = None
    log_tail: str | None = None
    #: How long the function itself ran (what REPORT's Duration says); asynchronous workers size themselves by it.
    duration_ms: float = 0.0
    stream: ResponseBody | None = None
    error_type: str | None = None


def platform_error(error_type: str, message: str) -> InvocationOutcome:
    """An error Lamina itself reports for the function (timeout, crash, oversized response)."""
    body = json.dumps({"errorType": error_type, "errorMessage": message}).encode()
    return InvocationOutcome(body, function_error="Unhandled", error_type=error_type)


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
    #: For a streamed response only (`begin_stream`): the final outcome, once the stream ended and `report` is set.
    ended: asyncio.Future[InvocationOutcome] | None = None

    def finish(self, outcome: InvocationOutcome) -> None:
        """The invocation is over (`report` is set): its outcome goes to `future`, or, once a stream began, to
        `ended`."""
        if not self.future.done():
            self.future.set_result(outcome)
        elif self.ended is not None and not self.ended.done():
            self.ended.set_result(outcome)

    def begin_stream(self, stream: ResponseBody) -> None:
        """The runtime began streaming its response: the caller gets the stream now (`future`), the final outcome
        when the invocation ends (`ended`)."""
        self.ended = self.future.get_loop().create_future()
        if not self.future.done():
            self.future.set_result(InvocationOutcome(b"", stream.content_type, stream=stream))
