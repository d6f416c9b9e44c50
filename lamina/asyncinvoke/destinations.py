"""Sending invocation records to OnSuccess/OnFailure destinations and failed events to dead-letter queues.

A Lamina function as destination is invoked asynchronously inside Lamina (its event goes through the same
durable queue). SQS, SNS and EventBridge targets go to the AWS-compatible endpoint Lamina is configured with.
"""
from __future__ import annotations

import asyncio
import logging
import uuid
from concurrent.futures import Executor
from typing import Any, Awaitable, Callable

from lamina.asyncinvoke.events import QueuedEvent
from lamina.asyncinvoke.records import dead_letter_attributes, encode_record
from lamina.aws.client import Arn, AwsCallFailed, AwsClient
from lamina.model.arns import parse_function_name
from lamina.model.keys import FunctionKey

#: SQS, SNS and EventBridge take 256 KB messages; an asynchronous invoke takes 1 MB.
SERVICE_MESSAGE_LIMIT = 262144
FUNCTION_EVENT_LIMIT = 1048576
#: Attempts per send, with these pauses between them (seconds).
SEND_PAUSES = (1.0, 4.0)
_log = logging.getLogger("lamina.asyncinvoke.destinations")

#: enqueue(function, qualifier, request_id, payload): accept an asynchronous event durably.
Enqueue = Callable[[FunctionKey, "str | None", str, bytes], Awaitable[None]]


class Destinations:
    def __init__(self, aws: AwsClient, enqueue: Enqueue, executor: Executor | None = None) -> None:
        """`executor`: where the blocking boto3 sends run (the server's `destinations` pool; None: the default)."""
        self._aws = aws
        self._enqueue = enqueue
        self._executor = executor

    async def send_record(self, destination: str, record: dict[str, Any], function_arn: str) -> None:
        """Deliver an invocation record; failures are retried a little, then logged."""
        arn = Arn.parse(destination)
        success = record["requestContext"]["condition"] == "Success"
        if arn.service == "lambda":
            target = parse_function_name(destination)
            payload = encode_record(record, FUNCTION_EVENT_LIMIT).encode()
            # The destination ARN names its account and region (EventInvokeConfig accepts only the caller's own).
            function = FunctionKey(arn.account, arn.region, target.name)
            await self._enqueue(function, target.qualifier, str(uuid.uuid4()), payload)
            return
        text = encode_record(record, SERVICE_MESSAGE_LIMIT)
        if arn.service == "sqs":
            await self._call(destination, self._aws.sqs_send_message, destination, text)
        elif arn.service == "sns":
            await self._call(destination, self._aws.sns_publish, destination, text)
        elif arn.service == "events":
            detail_type = f"Lambda Function Invocation Result - {'Success' if success else 'Failure'}"
            resources = [destination, function_arn]
            await self._call(destination, self._aws.events_put_event, destination, "lambda", detail_type, text, resources)
        else:
            _log.error("destination %s: Lamina cannot deliver to %s", destination, arn.service)

    async def send_dead_letter(self, target: str, event: QueuedEvent) -> None:
        """The original event, unchanged, with RequestID/ErrorCode/ErrorMessage attributes."""
        arn = Arn.parse(target)
        body = event.payload.decode(errors="replace")
        attributes = dead_letter_attributes(event.request_id, event.last_result)
        if arn.service == "sqs":
            await self._call(target, self._aws.sqs_send_message, target, body, attributes)
        elif arn.service == "sns":
            await self._call(target, self._aws.sns_publish, target, body, attributes)
        else:
            _log.error("dead-letter target %s is neither an SQS queue nor an SNS topic", target)

    async def _call(self, target: str, send: Callable[..., None], *args: Any) -> None:
        for pause in (*SEND_PAUSES, None):
            try:
                await asyncio.get_running_loop().run_in_executor(self._executor, send, *args)
                return
            except AwsCallFailed as error:
                if pause is None:
                    _log.error("could not deliver to %s: %s", target, error)
                    return
                _log.warning("delivery to %s failed, retrying in %.0f s: %s", target, pause, error)
                await asyncio.sleep(pause)
