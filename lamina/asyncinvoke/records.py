"""What destinations and dead-letter queues receive: AWS's invocation record and DLQ message attributes."""
from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from lamina.asyncinvoke.events import AttemptResult, QueuedEvent
from lamina.aws.client import MessageAttribute

SUCCESS = "Success"
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"
#: A DLQ message carries at most this much of the error message.
MAX_DLQ_ERROR_MESSAGE = 1024


def _timestamp(moment: datetime | None = None) -> str:
    """`2019-11-14T18:16:05.568Z`, as in AWS's records."""
    moment = moment or datetime.now(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _decoded(payload: bytes) -> Any:
    """Payloads appear parsed when they are JSON, else as text."""
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return payload.decode(errors="replace")


def invocation_record(event: QueuedEvent, function_arn: str, condition: str) -> dict[str, Any]:
    """The record for OnSuccess/OnFailure; `function_arn` is qualified (`…:$LATEST`, version or alias)."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": _timestamp(),
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": function_arn,
            "condition": condition,
            "approximateInvokeCount": event.attempts,
        },
        "requestPayload": _decoded(event.payload),
    }
    result = event.last_result
    if result is not None:
        context: dict[str, Any] = {"statusCode": 200, "executedVersion": result.executed_version}
        if result.function_error is not None:
            context["functionError"] = result.function_error
        record["responseContext"] = context
        record["responsePayload"] = _decoded(result.payload)
    return record


def encode_record(record: dict[str, Any], limit: int) -> str:
    """The record as JSON; over the destination's size limit AWS leaves the payloads out."""
    text = json.dumps(record)
    if len(text.encode()) <= limit:
        return text
    trimmed = {key: value for key, value in record.items() if key not in ("requestPayload", "responsePayload")}
    return json.dumps(trimmed)


def dead_letter_attributes(request_id: str, result: AttemptResult | None) -> list[MessageAttribute]:
    """RequestID, ErrorCode (the attempt's status; 429 when the event never ran) and ErrorMessage."""
    if result is None:
        code, message = "429", "Rate Exceeded."
    else:
        code, message = "200", _error_message(result.payload)
    return [
        MessageAttribute("RequestID", "String", request_id),
        MessageAttribute("ErrorCode", "Number", code),
        MessageAttribute("ErrorMessage", "String", message[:MAX_DLQ_ERROR_MESSAGE] or "Unknown error"),
    ]


def _error_message(payload: bytes) -> str:
    decoded = _decoded(payload)
    if isinstance(decoded, dict) and isinstance(decoded.get("errorMessage"), str):
        return decoded["errorMessage"]
    return payload.decode(errors="replace")
