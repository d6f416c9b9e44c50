"""The event Lambda hands a function for a batch of SQS messages, member for member as AWS builds it.

Why its own module: the shape is a contract with function code (recorded in
shared/reference/aws-recorded/test_lambda_integration_sqs.snapshot.json): the member order, the system attributes
Lambda passes on (and their order), and message attributes in Lambda's lower-camel shape with binary values base64.
"""
from __future__ import annotations

import base64
import json
from typing import Any

#: The system attributes of a record, in the order AWS lists them (the FIFO ones only on FIFO queues).
SYSTEM_ATTRIBUTES = (
    "ApproximateReceiveCount", "SentTimestamp", "SequenceNumber", "MessageGroupId", "SenderId",
    "MessageDeduplicationId", "ApproximateFirstReceiveTimestamp", "AWSTraceHeader", "DeadLetterQueueSourceArn",
)


def _binary(value: Any) -> str:
    return base64.b64encode(value if isinstance(value, bytes) else bytes(value)).decode()


def message_attribute(attribute: dict[str, Any]) -> dict[str, Any]:
    """One of ReceiveMessage's MessageAttributes in Lambda's shape (stringValue or binaryValue, the two lists,
    dataType)."""
    shaped: dict[str, Any] = {}
    if "StringValue" in attribute:
        shaped["stringValue"] = attribute["StringValue"]
    if "BinaryValue" in attribute:
        shaped["binaryValue"] = _binary(attribute["BinaryValue"])
    shaped["stringListValues"] = list(attribute.get("StringListValues") or [])
    shaped["binaryListValues"] = [_binary(value) for value in attribute.get("BinaryListValues") or []]
    shaped["dataType"] = attribute["DataType"]
    return shaped


def record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One message of ReceiveMessage's answer as a record of the event."""
    attributes = message.get("Attributes") or {}
    shaped: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {name: attributes[name] for name in SYSTEM_ATTRIBUTES if name in attributes},
        "messageAttributes": {
            name: message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
    }
    if message.get("MD5OfMessageAttributes"):
        shaped["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    shaped["md5OfBody"] = message.get("MD5OfBody")
    shaped["eventSource"] = "aws:sqs"
    shaped["eventSourceARN"] = queue_arn
    shaped["awsRegion"] = region
    return shaped


def event_payload(messages: list[dict[str, Any]], queue_arn: str, region: str) -> bytes:
    """The invocation payload for a batch: `{"Records": [...]}` in the order the messages were received."""
    return json.dumps({"Records": [record(message, queue_arn, region) for message in messages]}).encode()
