"""InvokeWithResponseStream's body: PayloadChunks from a stream or a buffered result, then InvokeComplete with the
error fields of a function error, read back with botocore's own parser."""
from __future__ import annotations

import asyncio
import json

from lamina.http.messages import BodyStream
from lamina.model.invocation import InvocationOutcome, platform_error
from lamina.runtime_api.streaming import ResponseStream
from lamina.services.lambda_.streaming_invoke import complete_error, event_stream
from tests.unit.test_function_url_streaming import parse_with_botocore


class _Started:
    """A StreamedInvocation stand-in: a head, and the final outcome `finish()` gives."""

    def __init__(self, head: InvocationOutcome, final: InvocationOutcome) -> None:
        self.head, self._final, self.abandoned = head, final, 0

    async def finish(self) -> InvocationOutcome:
        return self._final

    def abandon(self) -> None:
        self.abandoned += 1


async def _body(started: _Started) -> bytes:
    return b"".join([part async for part in event_stream(started)])  # type: ignore[arg-type]


def test_a_buffered_result_is_one_chunk_and_an_empty_one_none() -> None:
    result = InvocationOutcome(b'{"a":1}', log_tail="TG9n")
    events = parse_with_botocore(asyncio.run(_body(_Started(result, result))))
    assert events == [{"PayloadChunk": {"Payload": b'{"a":1}'}}, {"InvokeComplete": {"LogResult": "TG9n"}}]
    empty = InvocationOutcome(b"")
    assert parse_with_botocore(asyncio.run(_body(_Started(empty, empty)))) == [{"InvokeComplete": {}}]


def test_a_stream_is_forwarded_piece_by_piece_then_its_error() -> None:
    async def scenario() -> bytes:
        body = BodyStream()
        stream = ResponseStream("req", "text/plain", body, {})
        head = InvocationOutcome(b"", "text/plain", stream=stream)
        final = InvocationOutcome(b'{"errorMessage":"boom","errorType":"TypeError","trace":[]}', "application/json",
                                  "Unhandled", stream=stream, error_type="TypeError")
        started = _Started(head, final)
        pieces = event_stream(started)  # type: ignore[arg-type]
        body.feed(b"one")
        first = await pieces.__anext__()
        body.feed(b"two")
        body.end()
        rest = [part async for part in pieces]
        assert started.abandoned == 1
        return first + b"".join(rest)

    events = parse_with_botocore(asyncio.run(scenario()))
    assert events == [{"PayloadChunk": {"Payload": b"one"}}, {"PayloadChunk": {"Payload": b"two"}},
                      {"InvokeComplete": {"ErrorCode": "TypeError", "ErrorDetails": "boom"}}]


def test_error_fields() -> None:
    assert complete_error(InvocationOutcome(b"{}")) == (None, None)
    timeout = platform_error("Sandbox.Timedout", "RequestId: r Error: Task timed out after 3.00 seconds")
    assert complete_error(timeout) == ("Sandbox.Timedout", "RequestId: r Error: Task timed out after 3.00 seconds")
    handled = InvocationOutcome(json.dumps({"errorType": "ValueError", "errorMessage": "no"}).encode(),
                                function_error="Unhandled")
    assert complete_error(handled) == ("ValueError", "no")
    raw = InvocationOutcome(b"not json", function_error="Unhandled", error_type="Custom.Failure")
    assert complete_error(raw) == ("Custom.Failure", "not json")
    assert complete_error(InvocationOutcome(b"[]", function_error="Unhandled")) == ("Unhandled", "[]")
