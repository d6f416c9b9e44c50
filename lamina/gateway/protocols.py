"""AWS error wire formats of the protocols the gateway serves (the rest-json one, Lambda's, is
`services/lambda_/wire.py`'s error_response, since its body shape is Lambda's own)."""
from __future__ import annotations

import json
import uuid
from xml.sax.saxutils import escape

from lamina.http.messages import Response


class AwsError(Exception):
    """A protocol-neutral AWS error: its code, HTTP status and message; `sender` says whose fault it is (query
    protocol's `<Type>Sender|Receiver</Type>`)."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    @property
    def sender(self) -> bool:
        return self.status < 500


def json_error(error: AwsError, request_id: str | None = None, json_version: str = "1.1") -> Response:
    """The awsJson1_0 / awsJson1_1 error: `{"__type": code, "message": ...}`, the code in x-amzn-ErrorType too."""
    request_id = request_id or str(uuid.uuid4())
    body = json.dumps({"__type": error.code, "message": error.message}).encode()
    return Response(error.status, body, [
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", error.code),
        ("Content-Type", f"application/x-amz-json-{json_version}"),
    ])


def query_error(error: AwsError, request_id: str | None = None, xml_namespace: str | None = None) -> Response:
    """The query protocol's XML error (IAM, STS, CloudWatch's query form)."""
    request_id = request_id or str(uuid.uuid4())
    namespace = f' xmlns="{escape(xml_namespace)}"' if xml_namespace else ""
    body = (
        f"<ErrorResponse{namespace}><Error><Type>{'Sender' if error.sender else 'Receiver'}</Type>"
        f"<Code>{escape(error.code)}</Code><Message>{escape(error.message)}</Message></Error>"
        f"<RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return Response(error.status, body, [("x-amzn-RequestId", request_id), ("Content-Type", "text/xml")])


def _cbor_text(text: str) -> bytes:
    data = text.encode()
    size = len(data)
    if size < 24:
        head = bytes([0x60 + size])
    elif size < 0x100:
        head = bytes([0x78, size])
    elif size < 0x10000:
        head = bytes([0x79]) + size.to_bytes(2, "big")
    else:
        head = bytes([0x7A]) + size.to_bytes(4, "big")
    return head + data


def cbor_error(error: AwsError, request_id: str | None = None) -> Response:
    """The Smithy RPC v2 CBOR error (CloudWatch's first protocol in botocore): a CBOR map with `__type` and
    `message`."""
    request_id = request_id or str(uuid.uuid4())
    body = b"\xa2" + _cbor_text("__type") + _cbor_text(error.code) + _cbor_text("message") + _cbor_text(error.message)
    return Response(error.status, body, [
        ("x-amzn-RequestId", request_id),
        ("smithy-protocol", "rpc-v2-cbor"),
        ("Content-Type", "application/cbor"),
    ])
