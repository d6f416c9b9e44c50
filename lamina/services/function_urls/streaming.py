"""Streamed responses: the HTTP-integration prelude a streaming function writes for a RESPONSE_STREAM URL, and the
`application/vnd.amazon.eventstream` framing of InvokeWithResponseStream.

The prelude. A function that sets the stream's content type to `application/vnd.awslambda.http-integration-response`
(Node's `awslambda.HttpResponseStream.from`) writes `{"statusCode":..., "headers":{...}, "cookies":[...]}`, then 8 NUL
bytes, then the body. `HttpIntegrationStream` reads that as it arrives: the status and headers once, then body bytes.
Header names, cookies and Content-Type are mapped as for a buffered result (`response.http_headers`; a native
capture shows the same mapping for streams). With any other content type the whole stream is the body, sent with
that Content-Type, status 200 (capture). Inferred, not observed: a prelude without statusCode answers 200 and one
without Content-Type `application/octet-stream` (the Runtime API's default for streams); an empty stream answers 200
with its declared type, or application/json for the prelude type (capture, on a BUFFERED URL) or none; a stream that
ends inside its prelude, or a prelude that is not a JSON object, cannot be answered (`PreludeError`: the wiring
answers 502 if nothing was sent yet). Behind a BUFFERED URL the same prelude is read from the whole response
(`integration_result`); a streamed response of any other type is mapped as a buffered result.

The event stream. Each message is: total length and headers length (big-endian uint32), the CRC32 of those 8
bytes, the headers (name length byte, name, type 7 = string, uint16 length, value), the payload, the CRC32 of all
before it. InvokeWithResponseStream sends one PayloadChunk event (`:event-type` PayloadChunk, `:content-type`
application/octet-stream, `:message-type` event) per piece the function wrote, then one InvokeComplete
(`application/json` payload: `{}`, or `{"ErrorCode":..., "ErrorDetails":..., "LogResult":...}` with the fields it
has; a native capture shows `{}` and `{"LogResult":"..."}`), in that header order.
"""
from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass, field
from typing import Iterator, Union

from lamina.services.function_urls import javajson
from lamina.services.function_urls.response import (
    CONTENT_TYPE,
    JSON_TYPE,
    InvalidFunctionResponse,
    http_headers,
    status_code,
)

HTTP_INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
EVENTSTREAM_CONTENT_TYPE = "application/vnd.amazon.eventstream"
#: The Runtime API's default Content-Type of a streamed response.
STREAM_DEFAULT_CONTENT_TYPE = "application/octet-stream"
PRELUDE_DELIMITER = b"\x00" * 8
#: How much prelude is read before giving up on a delimiter (Lamina's bound; AWS's is not documented).
MAX_PRELUDE_BYTES = 1024 * 1024
#: botocore's limits on one message: a longer payload must be split over several PayloadChunk events.
MAX_EVENT_PAYLOAD = 24 * 1024 * 1024
MAX_EVENT_HEADERS = 128 * 1024

_STRING_HEADER = 7
_UINT32 = struct.Struct(">I")
_LENGTHS = struct.Struct(">II")


class PreludeError(ValueError):
    """The stream's HTTP-integration prelude cannot be read (not JSON, no delimiter, too long, bad statusCode)."""


@dataclass(frozen=True)
class StreamHead:
    """The HTTP status line and headers of a streamed URL response."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)


StreamPart = Union[StreamHead, bytes]


def head_from_prelude(prelude: bytes) -> StreamHead:
    """The status and headers of one prelude's JSON (`statusCode`, `headers`, `cookies`)."""
    try:
        metadata = javajson.loads(prelude)
    except javajson.JavaJsonError as error:
        raise PreludeError(f"prelude is not JSON: {error}") from error
    if not isinstance(metadata, dict):
        raise PreludeError("prelude is not a JSON object")
    try:
        status = status_code(metadata["statusCode"]) if metadata.get("statusCode") is not None else 200
    except InvalidFunctionResponse as error:
        raise PreludeError(str(error)) from error
    try:
        headers = http_headers(metadata.get("headers"), metadata.get("cookies"),
                               default_content_type=STREAM_DEFAULT_CONTENT_TYPE)
    except RecursionError as error:  # a header value nested too deep to print
        raise PreludeError("prelude headers nested too deep") from error
    return StreamHead(status, headers)


class HttpIntegrationStream:
    """Reads a streamed function response chunk by chunk: `feed` returns the parts now known, the StreamHead once
    (before any body) and then body bytes; `finish` returns what the end of the stream completes.

    `content_type` is the one the runtime declared for the stream (the response's Content-Type); only the
    HTTP-integration type has a prelude."""

    def __init__(self, content_type: str | None) -> None:
        self._framed = is_http_integration(content_type)
        self._declared = content_type
        self._buffer = bytearray()
        self._head: StreamHead | None = None

    @property
    def head(self) -> StreamHead | None:
        """The head once known (for a stream without prelude, as soon as there is data)."""
        return self._head

    def feed(self, data: bytes) -> list[StreamPart]:
        if not data:
            return []
        if not self._framed:
            return self._plain(bytes(data))
        if self._head is not None:
            return [bytes(data)]
        start = max(0, len(self._buffer) - len(PRELUDE_DELIMITER) + 1)
        self._buffer += data
        end = self._buffer.find(PRELUDE_DELIMITER, start)
        if end < 0:
            if len(self._buffer) > MAX_PRELUDE_BYTES:
                raise PreludeError(f"no prelude delimiter in the first {MAX_PRELUDE_BYTES} bytes")
            return []
        self._head = head_from_prelude(bytes(self._buffer[:end]))
        body = bytes(self._buffer[end + len(PRELUDE_DELIMITER):])
        self._buffer.clear()
        return [self._head, body] if body else [self._head]

    def _plain(self, data: bytes) -> list[StreamPart]:
        if self._head is None:
            self._head = StreamHead(200, [(CONTENT_TYPE, self._declared or STREAM_DEFAULT_CONTENT_TYPE)])
            return [self._head, data]
        return [data]

    def finish(self) -> list[StreamPart]:
        """The end of the stream: a head still owed (an empty stream), or PreludeError for a cut prelude."""
        if self._head is not None:
            return []
        if self._framed and self._buffer:
            raise PreludeError("the stream ended inside its prelude")
        declared = None if self._framed else self._declared
        self._head = StreamHead(200, [(CONTENT_TYPE, declared or JSON_TYPE)])
        return [self._head]


def is_http_integration(content_type: str | None) -> bool:
    return (content_type or "").split(";", 1)[0].strip().lower() == HTTP_INTEGRATION_CONTENT_TYPE


def integration_result(body: bytes, content_type: str) -> tuple[int, list[tuple[str, str]], bytes]:
    """A whole HTTP-integration response (a streaming function behind a BUFFERED URL, read whole): its prelude's
    status and headers, and the rest as the body. PreludeError if the prelude cannot be read."""
    parser = HttpIntegrationStream(content_type)
    parts = parser.feed(body) + parser.finish()
    head = parts[0]
    assert isinstance(head, StreamHead)
    return head.status, head.headers, b"".join(part for part in parts[1:] if isinstance(part, bytes))


def _string_header(name: str, value: str) -> bytes:
    encoded_name, encoded_value = name.encode("utf-8"), value.encode("utf-8")
    return (bytes([len(encoded_name)]) + encoded_name + bytes([_STRING_HEADER])
            + struct.pack(">H", len(encoded_value)) + encoded_value)


def encode_message(headers: list[tuple[str, str]], payload: bytes) -> bytes:
    """One vnd.amazon.eventstream message with string headers."""
    encoded_headers = b"".join(_string_header(name, value) for name, value in headers)
    if len(encoded_headers) > MAX_EVENT_HEADERS:
        raise ValueError("event stream headers too long")
    if len(payload) > MAX_EVENT_PAYLOAD:
        raise ValueError("event stream payload too long: split it (payload_chunks)")
    total = 12 + len(encoded_headers) + len(payload) + 4
    lengths = _LENGTHS.pack(total, len(encoded_headers))
    message = lengths + _UINT32.pack(zlib.crc32(lengths)) + encoded_headers + payload
    return message + _UINT32.pack(zlib.crc32(message))


def _event(event_type: str, content_type: str, payload: bytes) -> bytes:
    return encode_message([(":event-type", event_type), (":content-type", content_type),
                           (":message-type", "event")], payload)


def payload_chunk(data: bytes) -> bytes:
    """A PayloadChunk event carrying bytes the function wrote."""
    return _event("PayloadChunk", STREAM_DEFAULT_CONTENT_TYPE, data)


def payload_chunks(data: bytes, size: int = MAX_EVENT_PAYLOAD) -> Iterator[bytes]:
    """PayloadChunk events for `data`, split so none is over `size` bytes (nothing for empty data)."""
    for start in range(0, len(data), size):
        yield payload_chunk(data[start:start + size])


def invoke_complete(error_code: str | None = None, error_details: str | None = None,
                    log_result: str | None = None) -> bytes:
    """The final InvokeComplete event: `{}` or the fields given, compact, in the model's order."""
    fields = {"ErrorCode": error_code, "ErrorDetails": error_details, "LogResult": log_result}
    body = json.dumps({key: value for key, value in fields.items() if value is not None}, separators=(",", ":"))
    return _event("InvokeComplete", JSON_TYPE, body.encode("utf-8"))
