"""Streamed responses: the HTTP-integration prelude of RESPONSE_STREAM URLs, read chunk by chunk, and the event
stream of InvokeWithResponseStream, checked by decoding it with botocore's own parser."""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any, Iterator

import botocore.eventstream
import botocore.parsers
import botocore.session
import pytest

from lamina.services.function_urls.streaming import (
    HTTP_INTEGRATION_CONTENT_TYPE,
    MAX_PRELUDE_BYTES,
    PRELUDE_DELIMITER,
    HttpIntegrationStream,
    PreludeError,
    StreamHead,
    encode_message,
    head_from_prelude,
    invoke_complete,
    payload_chunk,
    payload_chunks,
)

RECORDINGS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "aws-recorded"
RECORDED = "tests/aws/services/lambda_/test_lambda.py::TestLambdaURL::test_function_url_with_response_streaming"


def node_stream(metadata: dict[str, Any], *writes: bytes) -> bytes:
    """What Node's awslambda.HttpResponseStream.from writes: the JSON prelude, 8 NUL bytes, then the body."""
    return json.dumps(metadata, separators=(",", ":")).encode() + PRELUDE_DELIMITER + b"".join(writes)


def read(content_type: str | None, chunks: list[bytes]) -> tuple[StreamHead, bytes, int]:
    """(head, body, index of the chunk the head came with) of a stream fed in these chunks."""
    stream = HttpIntegrationStream(content_type)
    head, body, at = None, b"", -1
    for index, chunk in enumerate(chunks + [None]):  # type: ignore[list-item]
        parts = stream.feed(chunk) if chunk is not None else stream.finish()
        for part in parts:
            if isinstance(part, StreamHead):
                assert head is None and body == b""
                head, at = part, index
            else:
                assert head is not None and part
                body += part
    assert head is not None
    return head, body, at


def test_recorded_stream() -> None:
    """AWS's recorded answer to a streaming function: status 200 and the text it wrote."""
    if not (RECORDINGS / "test_lambda.snapshot.json").is_file():
        pytest.skip(f"no AWS recordings at {RECORDINGS}")
    snapshot = json.loads((RECORDINGS / "test_lambda.snapshot.json").read_text())
    if RECORDED not in snapshot:
        pytest.skip("not recorded")
    answer = snapshot[RECORDED]["recorded-content"]
    data = node_stream({"statusCode": 200, "headers": {"Content-Type": "text/plain"}},
                       answer["response_data"].encode())
    head, body, _ = read(HTTP_INTEGRATION_CONTENT_TYPE, [data])
    assert head.status == answer["response_status"]
    assert body.decode() == answer["response_data"]


def test_prelude_split_anywhere() -> None:
    """The head comes once, with the chunk that completes the delimiter, whatever the chunking."""
    metadata = {"statusCode": 206, "headers": {"Content-Type": "application/x-owned-stream", "X-Owned": "stream"},
                "cookies": ["s=1; Path=/", "t=2; HttpOnly"]}
    data = node_stream(metadata, b"A\x00\xff\n", b'{"token":"t"}')
    end = data.index(PRELUDE_DELIMITER) + len(PRELUDE_DELIMITER)
    expected = StreamHead(206, [("Content-Type", "application/x-owned-stream"), ("x-owned", "stream"),
                                ("Set-Cookie", "s=1; Path=/"), ("Set-Cookie", "t=2; HttpOnly")])
    for cut in range(1, len(data)):
        head, body, at = read(HTTP_INTEGRATION_CONTENT_TYPE, [data[:cut], data[cut:]])
        assert (head, body) == (expected, b'A\x00\xff\n{"token":"t"}')
        assert at == (0 if cut >= end else 1)
    head, body, _ = read(HTTP_INTEGRATION_CONTENT_TYPE, [bytes([byte]) for byte in data])
    assert (head, body) == (expected, b'A\x00\xff\n{"token":"t"}')


def test_body_nul_bytes_after_the_prelude_are_body() -> None:
    data = node_stream({"statusCode": 200}, PRELUDE_DELIMITER * 2)
    head, body, _ = read(HTTP_INTEGRATION_CONTENT_TYPE + "; charset=utf-8", [data])
    assert head == StreamHead(200, [("Content-Type", "application/octet-stream")])
    assert body == PRELUDE_DELIMITER * 2


def test_stream_without_prelude() -> None:
    """capture: another content type is the body itself, status 200, with that Content-Type."""
    stream = HttpIntegrationStream("application/x-no-metadata")
    assert stream.head is None
    assert stream.feed(b"{\x00") == [StreamHead(200, [("Content-Type", "application/x-no-metadata")]), b"{\x00"]
    assert stream.feed(PRELUDE_DELIMITER) == [PRELUDE_DELIMITER]
    assert stream.feed(b"") == [] and stream.finish() == []
    assert read(None, [b"x"])[0] == StreamHead(200, [("Content-Type", "application/octet-stream")])


def test_empty_streams() -> None:
    assert read(HTTP_INTEGRATION_CONTENT_TYPE, [])[:2] == (StreamHead(200, [("Content-Type", "application/json")]),
                                                           b"")
    assert read("text/plain", [b""])[:2] == (StreamHead(200, [("Content-Type", "text/plain")]), b"")
    assert read(None, [])[0] == StreamHead(200, [("Content-Type", "application/json")])
    assert read(HTTP_INTEGRATION_CONTENT_TYPE, [node_stream({"statusCode": 404})])[:2] == \
        (StreamHead(404, [("Content-Type", "application/octet-stream")]), b"")


@pytest.mark.parametrize("prelude", [b"not json", b"[1]", b'{"statusCode": 700}', b'{"statusCode": "x"}', b"NaN"])
def test_bad_preludes(prelude: bytes) -> None:
    with pytest.raises(PreludeError):
        HttpIntegrationStream(HTTP_INTEGRATION_CONTENT_TYPE).feed(prelude + PRELUDE_DELIMITER + b"body")


def test_deep_prelude_headers_are_a_prelude_error() -> None:
    nested = b"[" * 900 + b"]" * 900
    try:
        head = head_from_prelude(b'{"headers": {"x": ' + nested + b"}}")
    except PreludeError:
        return
    assert head.headers[1][0] == "x"


def test_cut_and_endless_preludes() -> None:
    stream = HttpIntegrationStream(HTTP_INTEGRATION_CONTENT_TYPE)
    assert stream.feed(b'{"statusCode":200}' + PRELUDE_DELIMITER[:7]) == []
    with pytest.raises(PreludeError):
        stream.finish()
    endless = HttpIntegrationStream(HTTP_INTEGRATION_CONTENT_TYPE)
    assert endless.feed(b" " * MAX_PRELUDE_BYTES) == []
    with pytest.raises(PreludeError):
        endless.feed(b" ")


def test_head_from_prelude() -> None:
    assert head_from_prelude(b'{"statusCode":"201","headers":{"content-type":"text/csv","X-N":1}}') == \
        StreamHead(201, [("Content-Type", "text/csv"), ("x-n", "1")])
    assert head_from_prelude(b"{}") == StreamHead(200, [("Content-Type", "application/octet-stream")])


# ---- the InvokeWithResponseStream event stream ---------------------------------------------------------------

class RawStream:
    """The raw HTTP body botocore's EventStream reads, in chunks of the given size."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data, self._size = data, size

    def stream(self) -> Iterator[bytes]:
        for start in range(0, len(self._data), self._size):
            yield self._data[start:start + self._size]


def parse_with_botocore(data: bytes, chunk: int = 7) -> list[dict[str, Any]]:
    """The events boto3's invoke_with_response_stream yields for this body."""
    model = botocore.session.get_session().get_service_model("lambda")
    output = model.operation_model("InvokeWithResponseStream").output_shape
    parser = botocore.parsers.create_parser(model.metadata["protocol"])
    response = {"status_code": 200, "headers": {"Content-Type": "application/vnd.amazon.eventstream"},
                "body": RawStream(data, chunk), "context": {"operation_name": "InvokeWithResponseStream"}}
    parsed = parser.parse(response, output)
    return list(parsed["EventStream"])


def test_events_decode_in_botocore() -> None:
    data = payload_chunk(b"A\x00\xff\n") + payload_chunk(b'{"v":1}') + invoke_complete()
    assert parse_with_botocore(data) == [{"PayloadChunk": {"Payload": b"A\x00\xff\n"}},
                                         {"PayloadChunk": {"Payload": b'{"v":1}'}}, {"InvokeComplete": {}}]


def test_invoke_complete_fields() -> None:
    events = parse_with_botocore(invoke_complete("Sandbox.Timedout", "Task timed out after 1.00 seconds", "TG9n"))
    assert events == [{"InvokeComplete": {"ErrorCode": "Sandbox.Timedout",
                                          "ErrorDetails": "Task timed out after 1.00 seconds", "LogResult": "TG9n"}}]
    assert parse_with_botocore(invoke_complete(log_result="TG9n")) == [{"InvokeComplete": {"LogResult": "TG9n"}}]


def test_message_layout() -> None:
    """capture: header order and values; `{}` as the payload of a bare InvokeComplete."""
    buffer = botocore.eventstream.EventStreamBuffer()
    buffer.add_data(payload_chunk(b"xyz") + invoke_complete())
    chunk, complete = list(buffer)
    assert list(chunk.headers.items()) == [(":event-type", "PayloadChunk"), (":content-type",
                                                                           "application/octet-stream"),
                                           (":message-type", "event")]
    assert chunk.payload == b"xyz"
    assert complete.headers[":event-type"] == "InvokeComplete"
    assert complete.headers[":content-type"] == "application/json" and complete.payload == b"{}"


def test_message_bytes() -> None:
    message = encode_message([("a", "b")], b"hi")
    headers = b"\x01a\x07\x00\x01b"
    total = 12 + len(headers) + 2 + 4
    lengths = struct.pack(">II", total, len(headers))
    assert message[:8] == lengths
    assert message[8:12] == struct.pack(">I", zlib.crc32(lengths))
    assert message[12:-4] == headers + b"hi"
    assert message[-4:] == struct.pack(">I", zlib.crc32(message[:-4]))
    assert len(encode_message([], b"")) == 16


def test_corruption_is_detected() -> None:
    data = bytearray(payload_chunk(b"payload"))
    data[-6] ^= 1
    with pytest.raises(botocore.eventstream.ChecksumMismatch):
        parse_with_botocore(bytes(data))


def test_large_payloads_are_split() -> None:
    events = list(payload_chunks(b"x" * 10, size=4))
    assert len(events) == 3
    assert parse_with_botocore(b"".join(events), chunk=5) == [
        {"PayloadChunk": {"Payload": b"xxxx"}}, {"PayloadChunk": {"Payload": b"xxxx"}},
        {"PayloadChunk": {"Payload": b"xx"}}]
    assert list(payload_chunks(b"")) == []
    with pytest.raises(ValueError):
        encode_message([], b"x" * (24 * 1024 * 1024 + 1))


def test_a_whole_integration_response_gives_its_prelude_head() -> None:
    from lamina.services.function_urls.streaming import integration_result, is_http_integration

    body = b'{"statusCode":201,"headers":{"X-A":"1"}}' + b"\x00" * 8 + b"body"
    assert is_http_integration(HTTP_INTEGRATION_CONTENT_TYPE + "; charset=utf-8") and not is_http_integration(None)
    assert integration_result(body, HTTP_INTEGRATION_CONTENT_TYPE) == (
        201, [("Content-Type", "application/octet-stream"), ("x-a", "1")], b"body")
    with pytest.raises(PreludeError):
        integration_result(b'{"statusCode":201}', HTTP_INTEGRATION_CONTENT_TYPE)
