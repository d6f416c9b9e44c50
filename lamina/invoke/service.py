"""The invocation service: lease an environment, run one invocation, record its log."""
from __future__ import annotations

import os
import time

from lamina.model.function import FunctionConfig
from lamina.model.keys import FunctionKey
from lamina.invoke.concurrency import ConcurrencyLease, ConcurrencyLimits
from lamina.model.invocation import Invocation, InvocationOutcome
from lamina.invoke.pool import EnvironmentPool
from lamina.logs import format as log_format
from lamina.logs.invocation import InvocationLog
from lamina.logs.store import LogStore


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
