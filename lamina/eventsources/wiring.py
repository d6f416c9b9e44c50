"""Builds the poller manager with the source adapters Lamina has (SQS today), for server.py.

Why its own module: the server only starts and stops the manager; which adapter serves which source, and what each
is given (the AWS client, the executor, the invoker), is decided here.
"""
from __future__ import annotations

import asyncio
from concurrent.futures import Executor
from typing import Awaitable, Callable

from lamina.aws.client import AwsClient
from lamina.control.event_source_mappings import EventSourceMappingService
from lamina.control.functions import FunctionService
from lamina.eventsources.invoker import BatchInvoker
from lamina.eventsources.manager import PollerManager
from lamina.eventsources.results import ResultRecorder
from lamina.eventsources.sqs import SqsPoller
from lamina.eventsources.sqs_client import READ_TIMEOUT_SECONDS, SqsQueue
from lamina.invoke.service import InvocationService
from lamina.model.event_source_mapping import EventSourceMapping, SourceKind


def event_source_pollers(
    mappings: EventSourceMappingService,
    functions: FunctionService,
    invocations: InvocationService,
    *,
    aws_endpoint_url: str | None,
    executor: Executor,
) -> PollerManager:
    aws = AwsClient(aws_endpoint_url, read_timeout=READ_TIMEOUT_SECONDS)
    invoker = BatchInvoker(functions, invocations)

    def sqs(mapping: EventSourceMapping, stop: asyncio.Event) -> Callable[[], Awaitable[None]] | None:
        if mapping.event_source_arn is None:
            return None
        results = ResultRecorder(mappings, mapping.uuid, mapping.last_processing_result, shown=False)
        poller = SqsPoller(mapping, SqsQueue(aws, mapping.event_source_arn), invoker, results, executor, stop)
        return poller.run

    return PollerManager(mappings, {SourceKind.SQS: sqs})
