"""The invocation service: lease an environment, run one invocation, record its log.

`invoke` answers a buffered caller: one outcome, the whole response. A function that streams its response
(`Lambda-Runtime-Function-Response-Mode: streaming`) is read whole for it, as AWS's Invoke does: at most
`MAX_RESPONSE_BYTES` (6 MiB + 100 bytes; past that the rest is dropped and the caller gets
Function.ResponseSizeTooLarge), its mid-stream error (trailers, timeout) as a function error. `invoke_streamed`
answers a caller that delivers the response as it comes (InvokeWithResponseStream, RESPONSE_STREAM function URLs):
it returns once the response began, with the leases still held, and the invocation (its concurrency slot, its
environment, its log) ends when the stream's outcome is known, whether or not anybody still reads it.
"""
from __future__ import annotations

import asyncio
import logging
import os
import time

from lamina.model.function import FunctionConfig
from lamina.model.keys import FunctionKey
from lamina.invoke.concurrency import ConcurrencyLease, ConcurrencyLimits
from lamina.model.invocation import Invocation, InvocationOutcome, ResponseBody, platform_error
from lamina.invoke.pool import EnvironmentPool
from lamina.logs import format as log_format
from lamina.logs.invocation import InvocationLog
from lamina.logs.store import LogStore
from lamina.runtime_api.server import MAX_RESPONSE_BYTES

_log = logging.getLogger(__name__)


def new_trace_id() -> str:
    """An X-Ray trace header as AWS passes it in Lambda-Runtime-Trace-Id."""
    random = os.urandom(20).hex()
    return f"Root=1-{int(time.time()):08x}-{random[:24]};Parent={random[24:40]};Sampled=0"


def function_log_key(key: FunctionKey) -> str:
    """Where a function's logs live in the log store: under its account and region (functions are regional, like
    on AWS)."""
    return f"{key.account}/{key.region}/{key.name}"


def move_legacy_logs(logs: LogStore, account: str) -> int:
    """Once, at start-up: logs written before the key carried the account (`<region>/<name>`) are the configured
    account's; move them under their key, so no stored log is lost. Returns how many functions' logs moved."""
    return logs.rename_keys(lambda key: f"{account}/{key}" if key.count("/") == 1 else None)


class InvocationService:
    def __init__(self, pool: EnvironmentPool, logs: LogStore, concurrency: ConcurrencyLimits) -> None:
        self._pool = pool
        self._logs = logs
        self._concurrency = concurrency

    async def invoke(
        self,
        config: FunctionConfig,
        request_id: str,
        payload: bytes,
        invoked_arn: str,
        *,
        client_context: str | None = None,
        cognito_identity: str | None = None,
        want_log_tail: bool = False,
        concurrency_lease: ConcurrencyLease | None = None,
    ) -> InvocationOutcome:
        """Run one invocation; 429 when over a concurrency limit, unless the caller already holds a lease."""
        invocation = Invocation(
            request_id=request_id,
            payload=payload,
            invoked_arn=invoked_arn,
            trace_id=new_trace_id(),
            client_context=client_context,
            cognito_identity=cognito_identity,
        )
        async with concurrency_lease or self._concurrency.acquire(config) as slot:
            async with self._pool.lease(config, provisioned=slot.provisioned) as environment:
                environment.invoke(invocation)
                outcome = await invocation.future
                if outcome.stream is not None:
                    outcome = await read_whole(invocation, outcome.stream)
        log = self._invocation_log(config, invocation)
        assert invocation.report is not None
        outcome.duration_ms = invocation.report.duration_ms
        self._logs.append(function_log_key(config.key), environment.log_stream, log.getvalue())
        if want_log_tail:
            outcome.log_tail = log.tail_base64()
        return outcome

    async def invoke_streamed(
        self,
        config: FunctionConfig,
        request_id: str,
        payload: bytes,
        invoked_arn: str,
        *,
        client_context: str | None = None,
        want_log_tail: bool = False,
    ) -> StreamedInvocation:
        """Start one invocation and return once its response began: 429 (TooManyRequestsException) or a platform
        error are raised before that, as from `invoke`."""
        invocation = Invocation(
            request_id=request_id,
            payload=payload,
            invoked_arn=invoked_arn,
            trace_id=new_trace_id(),
            client_context=client_context,
        )
        began: asyncio.Future[InvocationOutcome] = asyncio.get_running_loop().create_future()
        task = asyncio.ensure_future(self._run_streamed(config, invocation, began, want_log_tail))
        try:
            head = await asyncio.shield(began)
        except asyncio.CancelledError:
            began.add_done_callback(_discard_unread)  # nobody will read what the function streams
            raise
        return StreamedInvocation(head, task)

    async def _run_streamed(
        self, config: FunctionConfig, invocation: Invocation, began: asyncio.Future[InvocationOutcome],
        want_log_tail: bool,
    ) -> InvocationOutcome | None:
        try:
            async with self._concurrency.acquire(config) as slot:
                async with self._pool.lease(config, provisioned=slot.provisioned) as environment:
                    environment.invoke(invocation)
                    outcome = await invocation.future
                    began.set_result(outcome)
                    if outcome.stream is not None:
                        assert invocation.ended is not None
                        outcome = await invocation.ended
        except BaseException as error:
            if began.done():
                raise
            if isinstance(error, asyncio.CancelledError):
                began.cancel()
                raise
            began.set_exception(error)  # the caller's to raise; the task itself ends quietly
            return None
        log = self._invocation_log(config, invocation)
        assert invocation.report is not None
        outcome.duration_ms = invocation.report.duration_ms
        self._logs.append(function_log_key(config.key), environment.log_stream, log.getvalue())
        if want_log_tail:
            outcome.log_tail = log.tail_base64()
        return outcome

    @staticmethod
    def _invocation_log(config: FunctionConfig, invocation: Invocation) -> InvocationLog:
        report = invocation.report
        assert report is not None
        log = InvocationLog()
        log.line(log_format.start_line(invocation.request_id, config.version))
        log.write(report.output)
        if report.timed_out:
            log.line(log_format.timeout_line(invocation.request_id, float(config.timeout), time.time()))
        log.line(log_format.end_line(invocation.request_id))
        log.line(
            log_format.report_line(
                invocation.request_id,
                duration_ms=report.duration_ms,
                memory_size_mb=config.memory_size,
                max_memory_used_mb=report.max_memory_mb or 0,
                init_duration_ms=report.init_duration_ms,
            )
        )
        return log


class StreamedInvocation:
    """An invocation whose response has begun. `head` is its first outcome: with `stream` set, the runtime's
    streamed response to read (once) as it comes; otherwise the whole buffered result. `finish()` gives the final
    outcome once the invocation ended (for a stream: how it ended, `function_error` set for an error after the head),
    with the log written and `log_tail` set if asked for."""

    __slots__ = ("head", "_task")

    def __init__(self, head: InvocationOutcome, task: asyncio.Future[InvocationOutcome | None]) -> None:
        self.head = head
        self._task = task
        task.add_done_callback(_log_failure)  # a caller that never asks for the end still has a failure logged

    async def finish(self) -> InvocationOutcome:
        outcome = await asyncio.shield(self._task)
        assert outcome is not None  # None only when the invocation failed before its head, which `head` raised
        return outcome

    def abandon(self) -> None:
        """The caller will not read the stream any more (its client went away): the function runs on, its output
        is dropped."""
        stream = self.head.stream
        if stream is not None and stream.outcome is None:
            stream.discard()


def _log_failure(task: asyncio.Future[InvocationOutcome | None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        _log.error("a streamed invocation failed after its response began", exc_info=task.exception())


def _discard_unread(began: asyncio.Future[InvocationOutcome]) -> None:
    if not began.cancelled() and began.exception() is None and began.result().stream is not None:
        stream = began.result().stream
        assert stream is not None
        stream.discard()


async def read_whole(invocation: Invocation, stream: ResponseBody) -> InvocationOutcome:
    """A streamed response for a buffered caller, once the invocation ended: the whole body (at most
    MAX_RESPONSE_BYTES), or the error it ended with."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in stream:
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            stream.discard()  # the function runs on, as on AWS; nobody reads what it still sends
            break
        chunks.append(chunk)
    assert invocation.ended is not None
    final = await invocation.ended
    if final.function_error is not None:
        return final
    if size > MAX_RESPONSE_BYTES:
        return platform_error(
            "Function.ResponseSizeTooLarge",
            f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
        )
    return InvocationOutcome(b"".join(chunks), stream.content_type)
