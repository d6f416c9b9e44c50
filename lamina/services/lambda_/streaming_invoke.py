"""InvokeWithResponseStream: Invoke whose answer is delivered as the function writes it, as an
`application/vnd.amazon.eventstream` of PayloadChunk events and one final InvokeComplete.

Name, qualifier, payload and ClientContext are handled as Invoke's, and so are throttles (429), unknown functions
(404) and platform failures (500), all answered before the stream starts. Then the answer is 200 with
`Content-Type: application/vnd.amazon.eventstream` (so boto3's and the JS SDK's ResponseStreamContentType read
that, as from AWS), the function's own stream content type in `X-Amzn-Remapped-Content-Type` (what AWS's front end
sends; `application/json` for a function that answered buffered), `X-Amz-Executed-Version`, and a chunked body:

- a function that streams: one PayloadChunk per piece the runtime sent (as received; split only past botocore's
  24 MiB event limit), then InvokeComplete;
- a function that does not: its whole response as one PayloadChunk (none when it is empty), then InvokeComplete;
- InvokeComplete is `{}`, with `LogResult` (base64 of the log's last 4 KB) when LogType is Tail, and, for a function
  error (the runtime's error trailers, an `/error` before any byte, a timeout, crash, oversized or truncated
  stream), `ErrorCode` (the error type: the trailer's, or the platform's such as Sandbox.Timedout) and `ErrorDetails`
  (the error's errorMessage, or its body when that is not an error document). What was streamed before the error
  stays delivered; an error the function answered buffered is also its PayloadChunk.

InvocationType is RequestResponse or DryRun (the model's enum; DryRun answers 204 without running the function, as
the API reference documents) and LogType None or Tail, checked with the model's messages.
"""
from __future__ import annotations

import json
from typing import AsyncIterator

from lamina.control.functions import FunctionService
from lamina.control.validation import LAMBDA
from lamina.errors import RequestTooLargeException
from lamina.http.messages import Response
from lamina.invoke.service import InvocationService, StreamedInvocation
from lamina.model.arns import merge_qualifier, parse_function_name
from lamina.model.invocation import InvocationOutcome
from lamina.services.function_urls.streaming import (
    EVENTSTREAM_CONTENT_TYPE,
    MAX_EVENT_PAYLOAD,
    invoke_complete,
    payload_chunk,
    payload_chunks,
)
from lamina.services.lambda_.invoke import MAX_SYNC_PAYLOAD, decode_client_context, runtime_payload
from lamina.services.lambda_.router import Router
from lamina.services.lambda_.wire import Call
from lamina.validation.constraints import raise_if_any

OPERATION = "InvokeWithResponseStream"
REMAPPED_CONTENT_TYPE = "X-Amzn-Remapped-Content-Type"


class StreamingInvokeOperations:
    def __init__(self, functions: FunctionService, invocations: InvocationService) -> None:
        self._functions = functions
        self._invocations = invocations

    def register(self, router: Router) -> None:
        router.operation(OPERATION, self.invoke)

    async def invoke(self, call: Call) -> Response:
        headers = call.request.headers
        invocation_type = headers.get("x-amz-invocation-type", "RequestResponse")
        log_type = headers.get("x-amz-log-type")
        members: dict[str, str] = {"InvocationType": invocation_type}
        if log_type is not None:
            members["LogType"] = log_type
        raise_if_any(LAMBDA.problems(OPERATION, members))
        ref = parse_function_name(call.params["FunctionName"])
        qualifier = merge_qualifier(ref, call.query("Qualifier"))
        config = self._functions.resolve(call.scope, ref, qualifier, routed=True)
        payload = call.request.body
        if len(payload) > MAX_SYNC_PAYLOAD:
            raise RequestTooLargeException(
                f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the {OPERATION} operation"
            )
        if invocation_type == "DryRun":
            return call.reply(status=204)
        started = await self._invocations.invoke_streamed(
            config,
            call.request_id,
            runtime_payload(config, payload),
            config.key.arn(qualifier if qualifier else None),
            client_context=decode_client_context(headers.get("x-amz-client-context")),
            want_log_tail=log_type == "Tail",
        )
        head = started.head
        content_type = head.stream.content_type if head.stream is not None else head.content_type
        response_headers = [
            ("x-amzn-RequestId", call.request_id),
            ("Content-Type", EVENTSTREAM_CONTENT_TYPE),
            (REMAPPED_CONTENT_TYPE, content_type),
            ("X-Amz-Executed-Version", config.version),
        ]
        return Response(call.status, event_stream(started), response_headers)


async def event_stream(started: StreamedInvocation) -> AsyncIterator[bytes]:
    """The eventstream body: PayloadChunks as the function's response arrives, then InvokeComplete."""
    head = started.head
    stream = head.stream
    try:
        if stream is None:
            for event in payload_chunks(head.payload):
                yield event
        else:
            async for chunk in stream:
                if len(chunk) <= MAX_EVENT_PAYLOAD:
                    yield payload_chunk(chunk)
                else:
                    yield b"".join(payload_chunks(chunk))
    finally:
        started.abandon()  # no-op once read to the end; otherwise the client went away
    final = await started.finish()
    error_code, error_details = complete_error(final)
    yield invoke_complete(error_code, error_details, final.log_tail)


def complete_error(outcome: InvocationOutcome) -> tuple[str | None, str | None]:
    """InvokeComplete's ErrorCode and ErrorDetails for a final outcome (both None without a function error)."""
    if outcome.function_error is None:
        return None, None
    error_type, details = outcome.error_type, None
    try:
        document = json.loads(outcome.payload)
    except (ValueError, UnicodeDecodeError):
        document = None
    if isinstance(document, dict):
        if error_type is None and isinstance(document.get("errorType"), str):
            error_type = document["errorType"]
        if isinstance(document.get("errorMessage"), str):
            details = document["errorMessage"]
    if details is None:
        details = outcome.payload.decode("utf-8", "replace")
    return error_type or outcome.function_error, details
