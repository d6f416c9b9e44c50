"""One streamed function response on its way from the Runtime API to whoever delivers it: `ResponseStream`.

Why an object of its own: three parties touch a streamed response and none should know the others. The Runtime API
endpoint (`server.py`) receives the runtime's `POST .../response` with `Lambda-Runtime-Function-Response-Mode:
streaming` and a chunked body; the environment decides whether that request id is the current invocation and how
the invocation ended; the Invoke path (InvokeWithResponseStream, function URLs) writes the bytes to a client as they
come. A `ResponseStream` is the one thing handed from the first to the others: an async iterator of the body's
chunks, forwarded as they arrive (no buffering of its own), then an outcome (`StreamOutcome`): completed; the
function's error from the `Lambda-Runtime-Function-Error-Type` / `-Error-Body` (base64) trailers; over the size
limit; truncated (the runtime's request ended before its body did: a crash, a broken chunked framing); or aborted by
the environment (timeout, crash, stop). It is also the one place AWS's limits on streamed responses are enforced,
whoever consumes.

What is enforced (AWS: docs.aws.amazon.com/lambda/latest/dg/configuration-response-streaming.html; where the docs
are silent, RAPID's behaviour in aws-lambda-runtime-interface-emulator, lambda/core/directinvoke and
lambda/core/bandwidthlimiter):

- Size: `MAX_STREAMED_RESPONSE_BYTES`, 200 MiB (AWS's documented maximum since July 2025; it was a 20 MB soft limit
  before, which `StreamLimits(max_bytes=20 * 1024 * 1024)` restores). The consumer gets the first 200 MiB, then the
  stream ends with `Function.ResponseSizeTooLarge`; the rest of the runtime's body is read and dropped, and the
  runtime is answered 413 `RequestEntityTooLarge` once it ended (the HTTP layer stops reading at twice the limit).
- Bandwidth: a token bucket as RAPID's: `BANDWIDTH_BURST_BYTES` (6 MiB) that starts full and refills at
  `BANDWIDTH_RATE` (2 MiB/s). So the first 6 MiB go out uncapped, then 2 MiB/s, and a response that never has more
  than 6 MiB ahead of that rate is never slowed. A chunk that overdraws the bucket is held back until the bucket is
  even again; while it is held the runtime's connection fills and pauses (the HTTP layer's back-pressure), so the
  function is slowed, not Lamina's memory filled.
- Errors reported in trailers: `Lambda-Runtime-Function-Error-Type` (any non-empty string) makes the outcome a
  function error, with `Lambda-Runtime-Function-Error-Body` base64-decoded (kept as sent if it is not base64). As on
  AWS the runtime is answered 202: the response was delivered, its error travels to the caller.
- A body that ends early is `Runtime.TruncatedResponse` (runtime answered 400 `TruncatedHTTPRequest` if it is still
  there); an abort carries the environment's own error type (say `Sandbox.Timedout`); the runtime is then answered
  400 `InvalidRequestID` like any response for an invocation that is no longer current, and its request is cut.

Only one task iterates a stream. It never raises for what the runtime did: iteration just ends, and `outcome` says
how. Everything runs on the event loop.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import enum
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

from lamina.http.messages import BodyStream, BodyTooLarge, HttpError

#: The Runtime API's Content-Type of a streamed response that names none.
STREAM_DEFAULT_CONTENT_TYPE = "application/octet-stream"
MAX_STREAMED_RESPONSE_BYTES = 200 * 1024 * 1024
BANDWIDTH_BURST_BYTES = 6 * 1024 * 1024
BANDWIDTH_RATE = 2 * 1024 * 1024  # bytes per second
ERROR_TYPE_TRAILER = "lambda-runtime-function-error-type"
ERROR_BODY_TRAILER = "lambda-runtime-function-error-body"
OVERSIZED_ERROR_TYPE = "Function.ResponseSizeTooLarge"
TRUNCATED_ERROR_TYPE = "Runtime.TruncatedResponse"


class StreamEnd(enum.Enum):
    COMPLETED = "completed"
    #: The runtime reported an error in the trailers (after streaming part of the body, or none of it).
    FUNCTION_ERROR = "function_error"
    OVERSIZED = "oversized"
    #: The runtime's request ended before its body did.
    TRUNCATED = "truncated"
    #: The environment ended it (`ResponseStream.abort`).
    ABORTED = "aborted"


@dataclass(frozen=True)
class StreamOutcome:
    """How a streamed response ended; `size` is what the consumer was given (or would have been: see `discard`).
    `error_type` is None only for COMPLETED; `error_body` is the function's (decoded trailer) or Lamina's
    `{"errorMessage", "errorType"}` JSON."""

    end: StreamEnd
    size: int
    error_type: str | None = None
    error_body: bytes = b""


@dataclass(frozen=True)
class StreamLimits:
    """AWS's limits on one streamed response (see the module docstring)."""

    max_bytes: int = MAX_STREAMED_RESPONSE_BYTES
    burst_bytes: int = BANDWIDTH_BURST_BYTES
    rate: float = BANDWIDTH_RATE

    @property
    def http_limit(self) -> int:
        """Where the Runtime API stops reading a streamed body at all: past `max_bytes` the rest is read only to be
        dropped (so the runtime can finish and read its 413), up to this."""
        return 2 * self.max_bytes


class _Interrupted(Exception):
    """Wakes a step waiting for the body when the stream is aborted or discarded from elsewhere."""


def _platform_error(error_type: str, message: str) -> bytes:
    return json.dumps({"errorMessage": message, "errorType": error_type}).encode()


class ResponseStream:
    """The chunks of one streamed response as the runtime sends them, then its `outcome`. See the module docstring.

    The consumer iterates (`async for chunk in stream`), or calls `discard()` when it has nobody to deliver to any
    more (the function keeps running, as on AWS, and its body is read and dropped). The environment calls `abort()`
    when it ends the invocation. The Runtime API endpoint awaits `finished()` to answer the runtime.
    """

    __slots__ = (
        "request_id", "content_type", "limits", "size", "outcome", "_body", "_trailers", "_finished", "_tokens",
        "_refilled_at", "_clock", "_drainer",
    )

    def __init__(
        self,
        request_id: str,
        content_type: str,
        body: BodyStream,
        trailers: Mapping[str, str] | None = None,
        limits: StreamLimits = StreamLimits(),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.request_id = request_id
        self.content_type = content_type
        self.limits = limits
        #: Bytes handed to the consumer so far.
        self.size = 0
        #: How the stream ended, once it did for the consumer (the runtime's request may still be draining).
        self.outcome: StreamOutcome | None = None
        self._body = body
        self._trailers = trailers if trailers is not None else {}
        self._finished: asyncio.Future[StreamOutcome] = asyncio.get_running_loop().create_future()
        self._tokens = float(limits.burst_bytes)
        self._clock = clock
        self._refilled_at = clock()
        self._drainer: asyncio.Task[None] | None = None

    @classmethod
    def whole(
        cls, request_id: str, content_type: str, data: bytes, limits: StreamLimits = StreamLimits()
    ) -> ResponseStream:
        """A streaming-mode response the runtime sent with a Content-Length: one chunk, no trailers."""
        body = BodyStream()
        if data:
            body.feed(data)
        body.end()
        return cls(request_id, content_type, body, {}, limits)

    # -- the consumer's side ------------------------------------------------------------------------------------
    def __aiter__(self) -> ResponseStream:
        return self

    async def __anext__(self) -> bytes:
        if self.outcome is not None:
            raise StopAsyncIteration
        try:
            data = await self._body.__anext__()
        except StopAsyncIteration:
            self._conclude(self._from_trailers(), body_over=True)
            raise
        except _Interrupted:
            raise StopAsyncIteration from None
        except HttpError as error:
            self._conclude(self._from_error(error), body_over=True)
            raise StopAsyncIteration from None
        if self.outcome is not None:  # aborted or discarded while this chunk was on its way
            raise StopAsyncIteration
        room = self.limits.max_bytes - self.size
        if len(data) > room:
            data = data[:room]
            self.size += len(data)
            message = f"Response payload size exceeded maximum allowed payload size ({self.limits.max_bytes} bytes)."
            outcome = StreamOutcome(
                StreamEnd.OVERSIZED, self.size, OVERSIZED_ERROR_TYPE, _platform_error(OVERSIZED_ERROR_TYPE, message)
            )
            self._conclude(outcome, body_over=False)
            if not data:
                raise StopAsyncIteration
            return data
        self.size += len(data)
        delay = self._throttle(len(data))
        if delay > 0:
            await asyncio.sleep(delay)
        return data

    async def read(self) -> bytes:
        """The whole body (for a consumer that delivers it buffered); `outcome` says how it ended."""
        return b"".join([chunk async for chunk in self])

    def discard(self) -> None:
        """Nobody will read the rest (the client went away): the runtime's body is read to its end and dropped.
        `outcome` is still what the runtime's request made of it."""
        if self.outcome is None and self._drainer is None:
            self._body.abandon(_Interrupted())
            self._drainer = asyncio.ensure_future(self._drain(None))

    def abort(self, error_type: str, error_body: bytes = b"") -> None:
        """The environment ended the invocation (timeout, crash, stop): the stream ends now with `error_type`, and
        the runtime's request is answered (then cut). No-op once the stream has an outcome."""
        if self.outcome is None:
            self._body.abandon(_Interrupted())
            self._conclude(StreamOutcome(StreamEnd.ABORTED, self.size, error_type, error_body), body_over=True)

    # -- the Runtime API's and the environment's side -----------------------------------------------------------
    async def finished(self) -> StreamOutcome:
        """The outcome, once the runtime's request is over (its body read to the end, dropped or not, or cut)."""
        return await asyncio.shield(self._finished)

    def on_finished(self, callback: Callable[[ResponseStream, StreamOutcome], None]) -> None:
        """Calls `callback(stream, outcome)` (soon, on the loop) when `finished()` would return: how the environment
        learns that the invocation's response is over, without a task of its own."""
        self._finished.add_done_callback(lambda future: callback(self, future.result()))

    # -- internals --------------------------------------------------------------------------------------------
    def _throttle(self, size: int) -> float:
        """Takes `size` bytes from the bucket; the seconds to hold them back (0 within the burst)."""
        now = self._clock()
        limits = self.limits
        self._tokens = min(float(limits.burst_bytes), self._tokens + (now - self._refilled_at) * limits.rate)
        self._refilled_at = now
        self._tokens -= size
        return -self._tokens / limits.rate if self._tokens < 0 else 0.0

    def _conclude(self, outcome: StreamOutcome, *, body_over: bool) -> None:
        if self.outcome is not None:
            return
        self.outcome = outcome
        if body_over:
            self._finish(outcome)
        elif self._drainer is None:
            self._body.abandon()
            self._drainer = asyncio.ensure_future(self._drain(outcome))

    async def _drain(self, outcome: StreamOutcome | None) -> None:
        """Waits for the end of a body nobody reads any more; `outcome` (None: what the body's end makes it)."""
        await self._body.when_ended()
        if outcome is None:
            error = self._body.error
            outcome = self._from_trailers() if error is None else self._from_error(error)
            if self.outcome is None:
                self.outcome = outcome
        self._finish(self.outcome or outcome)

    def _finish(self, outcome: StreamOutcome) -> None:
        if not self._finished.done():
            self._finished.set_result(outcome)

    def _from_trailers(self) -> StreamOutcome:
        error_type = self._trailers.get(ERROR_TYPE_TRAILER, "")
        if not error_type:
            return StreamOutcome(StreamEnd.COMPLETED, self.size)
        encoded = self._trailers.get(ERROR_BODY_TRAILER, "")
        try:
            error_body = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            error_body = encoded.encode("latin-1", "replace")
        return StreamOutcome(StreamEnd.FUNCTION_ERROR, self.size, error_type, error_body)

    def _from_error(self, error: BaseException) -> StreamOutcome:
        if isinstance(error, BodyTooLarge):  # the HTTP layer's own stop, past `http_limit`
            message = f"Response payload size exceeded maximum allowed payload size ({self.limits.max_bytes} bytes)."
            return StreamOutcome(
                StreamEnd.OVERSIZED, self.size, OVERSIZED_ERROR_TYPE, _platform_error(OVERSIZED_ERROR_TYPE, message)
            )
        reason = error.message if isinstance(error, HttpError) else str(error)
        message = f"The runtime's streamed response ended before its body did: {reason}"
        return StreamOutcome(
            StreamEnd.TRUNCATED, self.size, TRUNCATED_ERROR_TYPE, _platform_error(TRUNCATED_ERROR_TYPE, message)
        )
