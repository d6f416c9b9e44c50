"""A streamed response through the environment: the invocation gets the stream at its head and ends with it; /error
and a second response are refused once it began; a timeout aborts it with Sandbox.Timedout. A launcher stands in for
the sandbox (tests/unit/test_environment_lifecycle.py), and the stream's body is fed by hand."""
from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

from lamina.http.messages import BodyStream
from lamina.invoke.environment import ExecutionEnvironment
from lamina.invoke.states import EnvironmentState
from lamina.invoke.service import read_whole
from lamina.model.invocation import Invocation
from lamina.runtime_api.streaming import ResponseStream, StreamEnd
from tests.unit.test_environment_lifecycle import _environment


async def _busy(tmp_path: Path, timeout: int = 3) -> tuple[ExecutionEnvironment, Invocation]:
    environment, _launcher = _environment(tmp_path, [])
    environment.config.timeout = timeout  # type: ignore[misc]
    await environment.start()
    invocation = Invocation("req-1", b"{}", "arn", "trace")
    environment.invoke(invocation)
    environment.next_invocation()
    assert environment.state is EnvironmentState.BUSY
    return environment, invocation


def test_the_invocation_gets_the_stream_at_its_head_and_ends_with_it(tmp_path: Path) -> None:
    async def scenario() -> None:
        environment, invocation = await _busy(tmp_path)
        body, trailers = BodyStream(), {}
        stream = ResponseStream("req-1", "text/plain", body, trailers)
        assert not environment.invocation_stream("req-2", stream)
        assert environment.invocation_stream("req-1", stream)
        head = await invocation.future
        assert head.stream is stream and head.content_type == "text/plain" and head.payload == b""
        assert environment.state is EnvironmentState.BUSY and invocation.ended is not None
        # Once the response began, neither /error nor another /response is taken (RAPID: InvalidStateTransition).
        assert not environment.invocation_error("req-1", b"{}") and environment.response_started("req-1")
        assert not environment.invocation_response("req-1", b"x", "text/plain")
        assert not environment.invocation_stream("req-1", ResponseStream.whole("req-1", "text/plain", b"x"))
        assert not environment.response_started("req-2")
        body.feed(b"first,")
        iterator = stream.__aiter__()
        assert await iterator.__anext__() == b"first,"
        assert not invocation.ended.done()
        body.feed(b"second")
        body.end()
        assert [chunk async for chunk in stream] == [b"second"]
        final = await asyncio.wait_for(invocation.ended, 1)
        assert final.function_error is None and invocation.report is not None
        assert environment.state is EnvironmentState.IDLE and not environment.response_started("req-1")
        environment.stop()

    asyncio.run(scenario())


def test_an_error_in_the_trailers_is_the_invocations_error(tmp_path: Path) -> None:
    async def scenario() -> None:
        environment, invocation = await _busy(tmp_path)
        body = BodyStream()
        error = json.dumps({"errorMessage": "boom", "errorType": "TypeError"}).encode()
        trailers = {"lambda-runtime-function-error-type": "TypeError",
                    "lambda-runtime-function-error-body": base64.b64encode(error).decode()}
        stream = ResponseStream("req-1", "application/octet-stream", body, trailers)
        environment.invocation_stream("req-1", stream)
        await invocation.future
        body.feed(b"partial")
        body.end()
        outcome = await read_whole(invocation, stream)  # what a buffered Invoke of this function gets
        assert (outcome.function_error, outcome.error_type, outcome.payload) == ("Unhandled", "TypeError", error)
        assert environment.state is EnvironmentState.IDLE
        environment.stop()

    asyncio.run(scenario())


def test_a_timeout_mid_stream_aborts_it_and_stops_the_environment(tmp_path: Path) -> None:
    async def scenario() -> None:
        environment, invocation = await _busy(tmp_path, timeout=1)
        body = BodyStream()
        stream = ResponseStream("req-1", "text/plain", body, {})
        environment.invocation_stream("req-1", stream)
        await invocation.future
        body.feed(b"first,")
        received = [chunk async for chunk in stream]  # ends when the timeout aborts the stream
        assert received == [b"first,"]
        assert stream.outcome is not None and stream.outcome.end is StreamEnd.ABORTED
        assert stream.outcome.error_type == "Sandbox.Timedout"
        final = await asyncio.wait_for(invocation.ended, 1)
        assert final.error_type == "Sandbox.Timedout" and final.function_error == "Unhandled"
        assert b"Task timed out after 1.00 seconds" in final.payload
        assert invocation.report is not None and invocation.report.timed_out
        assert environment.state is EnvironmentState.STOPPED

    asyncio.run(scenario())


def test_a_buffered_reader_drops_what_is_over_6_mb(tmp_path: Path) -> None:
    async def scenario() -> None:
        environment, invocation = await _busy(tmp_path)
        body = BodyStream()
        stream = ResponseStream("req-1", "text/plain", body, {})
        environment.invocation_stream("req-1", stream)
        await invocation.future
        reading = asyncio.ensure_future(read_whole(invocation, stream))
        for _ in range(7):
            body.feed(b"x" * (1024 * 1024))
            await asyncio.sleep(0)
        body.end()
        outcome = await asyncio.wait_for(reading, 5)
        assert outcome.function_error == "Unhandled" and outcome.error_type == "Function.ResponseSizeTooLarge"
        assert environment.state is EnvironmentState.IDLE
        environment.stop()

    asyncio.run(scenario())
