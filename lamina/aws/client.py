"""The three AWS calls asynchronous invocation needs: SQS SendMessage, SNS Publish, EventBridge PutEvents.

Requests go through boto3 (signing, retries and wire formats are its job) to one AWS-compatible endpoint when
Lamina is given one (`--aws-endpoint-url`: LocalStack, moto, ElasticMQ), else to AWS's regional endpoints.
Calls block, so callers run them in a worker thread.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any, Sequence

from botocore.exceptions import BotoCoreError, ClientError

TIMEOUT_SECONDS = 10.0


class AwsCallFailed(Exception):
    """The service refused the call or could not be reached."""


@dataclass(frozen=True)
class Arn:
    partition: str
    service: str
    region: str
    account: str
    resource: str

    @classmethod
    def parse(cls, text: str) -> "Arn":
        parts = text.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn":
            raise ValueError(f"not an ARN: {text}")
        return cls(*parts[1:])


@dataclass(frozen=True)
class MessageAttribute:
    name: str
    data_type: str  # String | Number
    value: str


class AwsClient:
    """boto3 clients per (service, region), created on first use."""

    def __init__(self, endpoint_url: str | None, *, read_timeout: float = TIMEOUT_SECONDS) -> None:
        self._endpoint_url = endpoint_url
        self._read_timeout = read_timeout
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def _client(self, service: str, region: str) -> Any:
        # boto3 and botocore's client machinery take ~0.2 s to import: only on the first send, not at start-up.
        import boto3
        from botocore.config import Config

        with self._lock:
            client = self._clients.get((service, region))
            if client is None:
                # Local emulators accept any credentials; real AWS needs the standard AWS_* variables.
                fallback = "test" if self._endpoint_url and "AWS_ACCESS_KEY_ID" not in os.environ else None
                client = boto3.session.Session().client(
                    service,
                    region_name=region,
                    endpoint_url=self._endpoint_url,
                    aws_access_key_id=fallback,
                    aws_secret_access_key=fallback,
                    config=Config(connect_timeout=TIMEOUT_SECONDS, read_timeout=self._read_timeout),
                )
                self._clients[(service, region)] = client
            return client

    def client(self, service: str, region: str) -> Any:
        """The boto3 client itself, for callers that make their own calls (the event source pollers)."""
        return self._client(service, region)

    def _call(self, service: str, region: str, operation: str, **params: Any) -> Any:
        try:
            return getattr(self._client(service, region), operation)(**params)
        except (ClientError, BotoCoreError) as error:
            raise AwsCallFailed(f"{service} {operation}: {error}") from error

    def sqs_send_message(self, queue_arn: str, body: str, attributes: Sequence[MessageAttribute] = ()) -> None:
        arn = Arn.parse(queue_arn)
        queue_url = self._call("sqs", arn.region, "get_queue_url", QueueName=arn.resource, QueueOwnerAWSAccountId=arn.account)
        params: dict[str, Any] = {"QueueUrl": queue_url["QueueUrl"], "MessageBody": body}
        if attributes:
            params["MessageAttributes"] = {
                attribute.name: {"DataType": attribute.data_type, "StringValue": attribute.value}
                for attribute in attributes
            }
        self._call("sqs", arn.region, "send_message", **params)

    def sns_publish(self, topic_arn: str, message: str, attributes: Sequence[MessageAttribute] = ()) -> None:
        params: dict[str, Any] = {"TopicArn": topic_arn, "Message": message}
        if attributes:
            params["MessageAttributes"] = {
                attribute.name: {"DataType": attribute.data_type, "StringValue": attribute.value}
                for attribute in attributes
            }
        self._call("sns", Arn.parse(topic_arn).region, "publish", **params)

    def events_put_event(self, bus_arn: str, source: str, detail_type: str, detail: str, resources: list[str]) -> None:
        entry = {"Source": source, "DetailType": detail_type, "Detail": detail, "EventBusName": bus_arn, "Resources": resources}
        answer = self._call("events", Arn.parse(bus_arn).region, "put_events", Entries=[entry])
        if answer.get("FailedEntryCount"):
            raise AwsCallFailed(f"events refused the entry: {answer.get('Entries')}")
